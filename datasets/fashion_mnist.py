import numpy as np
from benchopt import BaseDataset

from benchmark_utils.data.idx import (
    FASHION_MNIST_KEY,
    download_idx,
    load_fashion_mnist,
)
from benchmark_utils.problems.hyper_cleaning import (
    make_hyper_cleaning,
    split_pool,
)
from benchmark_utils.validation import (
    check_device,
    check_interval,
    check_positive,
    check_positive_int,
)


class Dataset(BaseDataset):
    """FashionMNIST data hyper-cleaning (benchmark_utils/problems/hyper_cleaning.py).

    Files: the four upstream IDX files (``train-images-idx3-ubyte.gz``, ...)
    in ``<data_home>/fashion-mnist/``, else in Debian's
    ``/usr/share/datasets/fashion-mnist/``; ``prepare()`` downloads them from
    FashionMNIST's host when neither holds them.

    Train (``n_train``) and validation (``n_val``) images are disjoint seeded
    (``random_state``) draws from the official 60000 training images; test =
    the official 10000 test images. Features are standardized with the mean
    and std of the training draw. Each training label is replaced with
    probability ``ratio`` by a uniformly drawn different class (seeded by
    ``random_state``). Inner: multinomial logistic regression (784 x 10
    weights + 10 biases) with ridge ``reg / 2 ||y||^2``; outer: one logit per
    training sample, start x_i = -2, W = 0, b = 0.
    """

    name = "fashion_mnist"
    requirements = ["pip::torch"]
    parameters = {
        "ratio": [0.5],
        "n_train": [20000],
        "n_val": [5000],
        "reg": [0.4],
        "random_state": [0],
        # h(x) needs an inner solve (~1 s on 20000 samples) at every logged
        # point: off by default so that evaluation stays a few ms.
        "value_function": [False],
        "device": ["cpu"],
    }
    test_parameters = {"n_train": [500], "n_val": [200]}
    prepare_cache_ignore = "all"

    def prepare(self):
        download_idx(FASHION_MNIST_KEY)

    def get_data(self):
        check_interval(self.ratio, "ratio", 0, 1, closed="left")
        check_positive(self.reg, "reg")
        seed = check_positive_int(self.random_state, "random_state",
                                  allow_zero=True)
        device = check_device(self.device)
        n_train = check_positive_int(self.n_train, "n_train")
        n_val = check_positive_int(self.n_val, "n_val")
        X, y, X_test, y_test = load_fashion_mnist()
        train, val = split_pool(len(X), n_train, n_val,
                                np.random.default_rng([seed, 0]))
        problem = make_hyper_cleaning(
            X[train], y[train], X[val], y[val], X_test, y_test,
            ratio=self.ratio, reg=self.reg, n_classes=10,
            random_state=np.random.default_rng([seed, 1]), device=device,
            value_function=bool(self.value_function),
        )
        return dict(problem=problem)
