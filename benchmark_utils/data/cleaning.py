"""What data hyper-cleaning does to a data set: seeded train / validation
draws, standardization, label corruption, the classes of the labels, and
the F1 score of the flagged samples.

Used by the hyper-cleaning problems (``benchmark_utils/problems/
cleaning.py``) and by the data sets that build them
(``benchmark_utils/datasets.py``).
"""
import numpy as np
import torch

from benchmark_utils.validation import check_interval, check_positive_int


def as_generator(random_state):
    """A numpy Generator from an int seed, a numpy Generator (returned as
    is) or a torch Generator (one draw of it seeds the new one)."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, torch.Generator):
        seed = int(torch.randint(0, 2 ** 63 - 1, (1,),
                                 generator=random_state))
        return np.random.default_rng(seed)
    return np.random.default_rng(
        check_positive_int(random_state, "random_state", allow_zero=True))


def split_pool(n_pool, n_train, n_val, random_state=0):
    """Disjoint seeded draws of ``n_train`` and ``n_val`` indices among
    ``n_pool`` (a permutation of the pool: its first n_train entries, then
    the next n_val). Returns two int64 arrays in that random order, so that
    consecutive samples make random batches (``sampling="blocks"``)."""
    n_train = check_positive_int(n_train, "n_train")
    n_val = check_positive_int(n_val, "n_val")
    if n_train + n_val > n_pool:
        raise ValueError(f"n_train + n_val must be <= {n_pool} (the images "
                         f"available), got {n_train} + {n_val}.")
    perm = as_generator(random_state).permutation(n_pool)
    return perm[:n_train], perm[n_train:n_train + n_val]


def standardize(X_train, *others):
    """Standardize with the training split's mean and standard deviation
    (computed in float64; features constant on the training split keep a
    scale of 1, as scikit-learn's StandardScaler does). Returns float64
    arrays in the order given."""
    X_train = np.asarray(X_train, dtype=np.float64)
    mean = X_train.mean(axis=0)
    std = X_train.std(axis=0)
    std[std == 0] = 1.0
    return tuple((np.asarray(X, dtype=np.float64) - mean) / std
                 for X in (X_train, *others))


def corrupt_labels(labels, ratio, n_classes=None, random_state=0):
    """Replace each label with probability ``ratio`` by a different class.

    The new class is drawn uniformly among the ``n_classes - 1`` other
    classes, so the returned boolean ``mask`` is exactly the set of changed
    labels and its expected mean is ``ratio`` (the F2SA-Adam report's scheme
    drew among all classes, changing a fraction ``ratio (K - 1) / K``
    only).
    ``random_state``: an int, a numpy Generator or a torch Generator.
    Returns ``(noisy_labels, mask)`` as numpy arrays (int64, bool).
    """
    labels = np.asarray(labels, dtype=np.int64)
    check_interval(ratio, "ratio", 0, 1, closed="left")
    if n_classes is None:
        n_classes = int(labels.max()) + 1
    if n_classes < 2:
        raise ValueError(f"n_classes must be >= 2, got {n_classes}.")
    rng = as_generator(random_state)
    mask = rng.random(len(labels)) < ratio
    shift = rng.integers(1, n_classes, size=len(labels))
    noisy = np.where(mask, (labels + shift) % n_classes, labels)
    return noisy, mask


def check_classes(labels, n_classes=None):
    """The number of classes of the label arrays or tensors ``labels`` (one
    per split): ``n_classes``, or the largest label + 1; refuses labels
    outside 0..n_classes-1 and fewer than 2 classes."""
    max_label = max(int(lab.max()) for lab in labels)
    min_label = min(int(lab.min()) for lab in labels)
    if n_classes is None:
        n_classes = max_label + 1
    if min_label < 0 or max_label >= n_classes or n_classes < 2:
        raise ValueError(f"labels must lie in 0..n_classes-1 with "
                         f"n_classes >= 2; got labels in [{min_label}, "
                         f"{max_label}] and n_classes={n_classes}.")
    return int(n_classes)


def cleaning_f1(flagged, mask):
    """F1 score of ``flagged`` (predicted corrupted) against the true
    ``mask``: 2 TP / (2 TP + FP + FN).

    Degenerate case: with nothing corrupted and nothing flagged the
    prediction is perfect and the score is 1.0; whenever one side is empty
    and the other not, TP = 0 and the score is 0.0.
    """
    flagged = torch.as_tensor(flagged, dtype=torch.bool)
    mask = torch.as_tensor(mask, dtype=torch.bool).to(flagged.device)
    tp = int((flagged & mask).sum())
    fp = int((flagged & ~mask).sum())
    fn = int((~flagged & mask).sum())
    if tp + fp + fn == 0:
        return 1.0
    return 2 * tp / (2 * tp + fp + fn)
