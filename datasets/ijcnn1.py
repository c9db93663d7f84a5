import numpy as np
from benchopt import BaseDataset

from benchmark_utils.data.svmlight import (
    download_ijcnn1,
    ijcnn1_files,
    load_ijcnn1,
)
from benchmark_utils.problems.regularization import (
    INNER_INITS,
    PENALTIES,
    RegularizationProblem,
)
from benchmark_utils.provenance import KeyedOnDataFiles
from benchmark_utils.seeding import dataset_seed
from benchmark_utils.validation import (
    check_bool,
    check_choice,
    check_device,
    check_dtype,
)

#: LIBSVM's ijcnn1.tr / ijcnn1.val sizes; ijcnn1.bz2 is their concatenation.
N_TRAIN = 35000
#: Lagged values a row shares with its neighbours (see the Dataset's doc).
LAG = 9
SPLITS = ("window", "contiguous", "random")


def train_val_indices(n_samples, split="window", seed=0):
    """Rows of ijcnn1.bz2 used for training and validation (in file order
    for "window" and "contiguous": the file's labels are already well
    mixed; in a seeded random order for "random"). See the Dataset's
    docstring."""
    check_choice(split, "split", SPLITS)
    n_val = n_samples - N_TRAIN
    if split == "contiguous":
        return np.arange(N_TRAIN), np.arange(N_TRAIN, n_samples)
    rng = np.random.default_rng(seed)
    if split == "random":
        perm = rng.permutation(n_samples)
        return perm[:N_TRAIN], perm[N_TRAIN:]
    start = int(rng.integers(0, N_TRAIN + 1))
    rows = np.arange(n_samples)
    val = rows[start:start + n_val]
    train = np.concatenate([rows[:max(start - LAG, 0)],
                            rows[start + n_val + LAG:]])
    return train, val


class Dataset(KeyedOnDataFiles, BaseDataset):
    """ijcnn1 (LIBSVM), regularization selection for logistic regression.

    Files ``ijcnn1.bz2`` (49990 samples) and ``ijcnn1.t.bz2`` (91701, the
    test set) in ``<data_home>/ijcnn1/``, downloaded by ``prepare()``
    (``benchopt prepare . -d ijcnn1``; a run downloads nothing) when
    missing. The 22 features are used as LIBSVM gives them (already scaled
    to [-1, 1]); labels -1 / +1, no bias. A file with another number of
    rows or features, or labels other than exactly {-1, +1}, is refused
    with an error naming it (``benchmark_utils/data/svmlight.py``).

    The rows are consecutive windows of one time series (row i+1 repeats 9
    of the 10 lagged values of row i, with no break over the whole file),
    so a random split would put nearly identical rows on both sides. Splits:

    - ``"window"`` (default): validation = 14990 consecutive rows (the size
      of LIBSVM's ijcnn1.val) starting at a seeded random row, train = the
      other rows except the 9 on each side of the window, which share
      lagged values with it (35000 rows, fewer by up to 18). Each
      repetition draws its window (``random_state=None``).
    - ``"contiguous"``: LIBSVM's own split, fixed: train = the first 35000
      rows, validation = the last 14990 (the sizes of ijcnn1.tr and
      ijcnn1.val, which ijcnn1.bz2 concatenates; the .tr / .val files are
      not at hand to compare row by row).
    - ``"random"``: a seeded split of the same sizes, for comparison (it
      leaks near-duplicate rows across the split).

    ``penalty="feature"``: one hyperparameter exp(x_k) per feature (22);
    ``"class"``: a single one (binary problem). ``value_function`` reports
    h(x) = f(x, y*(x)) (a warm-started Newton-CG solve, a few ms here).

    Start: W = 0 (``inner_init="zero"``, the default; ``"solved"``: W =
    y*(x0), solved when the data are loaded) and every x_k =
    ``outer_init``, by default -8.5, the best
    single penalty on the validation loss: h at a constant x = c, with
    exact inner solves, is 0.659 (c = 0), 0.318 (-4), 0.163 (-8), 0.1615
    (-8.5, the minimum), 0.164 (-9), 0.173 (-10), 0.187 (-16). For c >= -6
    the solved model predicts the majority class only (test accuracy
    0.905); at -8.5 it reaches 0.913. The bilevel solvers start from the
    answer of a grid search on one penalty, and their task is to improve on
    it with one penalty per feature (exact hypergradient descent from -8
    reaches h = 0.1215, validation accuracy 0.953, test accuracy 0.917).
    The inner problem (22 weights) is solved in milliseconds: from W = 0,
    Inner-Only reaches y*(x0) in 9 Newton steps, and StocBiO and
    Implicit-GD end 10 s runs at the same h(x) as from y*(x0); SOBA, with
    its small inner step, ends at h = 0.1575 from W = 0 against 0.1413
    from y*(x0) (docs/STARTING_POINTS.md).
    """

    name = "ijcnn1"
    requirements = ["pip::torch", "pip::scikit-learn", "pip::scipy"]
    parameters = {
        "penalty": ["feature"],
        "split": ["window"],
        # None: a new draw at every repetition (benchmark_utils/seeding.py)
        "random_state": [None],
        "outer_init": [-8.5],
        "value_function": [True],
        "inner_init": ["zero"],
        "dtype": ["float32"],
        "device": ["cpu"],
    }
    test_parameters = {"penalty": ["feature", "class"]}
    prepare_cache_ignore = "all"

    def data_files(self):
        return ijcnn1_files()

    def prepare(self):
        download_ijcnn1()

    def get_data(self):
        check_choice(self.penalty, "penalty", PENALTIES)
        check_choice(self.inner_init, "inner_init", INNER_INITS)
        check_choice(self.split, "split", SPLITS)
        if self.split == "contiguous" and self.random_state is not None:
            raise ValueError(
                f"random_state={self.random_state!r} has no effect with "
                "split='contiguous' (a fixed split): leave it at None, or "
                "use split='window' or 'random'.")
        check_bool(self.value_function, "value_function")
        seed = dataset_seed(self)
        X, y, X_test, y_test = load_ijcnn1()
        train, val = train_val_indices(X.shape[0], self.split, seed)
        problem = RegularizationProblem(
            X[train].toarray(), y[train], X[val].toarray(), y[val],
            X_test.toarray(), y_test, penalty=self.penalty,
            outer_init=self.outer_init, value_function=self.value_function,
            inner_init=self.inner_init, dtype=check_dtype(self.dtype),
            device=check_device(self.device),
        )
        return dict(problem=problem)
