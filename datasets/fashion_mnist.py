import numpy as np
from benchopt import BaseDataset

from benchmark_utils.data.cleaning import split_pool
from benchmark_utils.data.idx import (
    FASHION_MNIST_KEY,
    download_idx,
    idx_files,
    load_fashion_mnist,
)
from benchmark_utils.datasets import (
    DATASET_PARAMETERS,
    check_dataset_parameters,
    dataset_problem,
)
from benchmark_utils.provenance import KeyedOnDataFiles


class Dataset(KeyedOnDataFiles, BaseDataset):
    """FashionMNIST data hyper-cleaning
    (``benchmark_utils/problems/cleaning.py``).

    Files: the four upstream IDX files (``train-images-idx3-ubyte.gz``, ...)
    in ``<data_home>/fashion-mnist/``, else in Debian's
    ``/usr/share/datasets/fashion-mnist/``; ``prepare()`` (``benchopt
    prepare . -d fashion_mnist``; a run downloads nothing) downloads them
    from FashionMNIST's host when neither holds them. Loading refuses files
    that differ from the known facts (60000 / 10000 images of 28x28, labels
    0..9 with all 10 classes present), naming the file.

    Train (``n_train``) and validation (``n_val``) images are disjoint seeded
    (``random_state``) draws from the official 60000 training images; test =
    the official 10000 test images. Features are standardized with the mean
    and std of the training draw. Each training label is replaced with
    probability ``ratio`` by a uniformly drawn different class (seeded by
    ``random_state``). Inner (``model="linear"``, the default): multinomial
    logistic regression (784 x 10 weights + 10 biases) with ridge
    ``reg / 2 ||y||^2``, start W = 0, b = 0; outer: one logit per training
    sample, start x_i = -2. ``model="mlp"`` (``hidden`` units,
    ``activation`` "relu" or "identity") or ``"cnn"``: a network instead,
    seeded start (``benchmark_utils/problems/networks.py``).
    """

    name = "fashion_mnist"
    requirements = ["pip::torch"]
    parameters = dict(DATASET_PARAMETERS)
    test_parameters = {"n_train": [500], "n_val": [200]}
    prepare_cache_ignore = "all"

    def data_files(self):
        return idx_files(FASHION_MNIST_KEY)

    def prepare(self):
        download_idx(FASHION_MNIST_KEY)

    def get_data(self):
        seed, n_train, n_val = check_dataset_parameters(self)
        X, y, X_test, y_test = load_fashion_mnist()
        train, val = split_pool(len(X), n_train, n_val,
                                np.random.default_rng([seed, 0]))
        problem = dataset_problem(self, seed, X[train], y[train], X[val],
                                  y[val], X_test, y_test)
        return dict(problem=problem)
