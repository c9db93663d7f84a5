"""What the hyper-cleaning data sets (``datasets/mnist.py``,
``datasets/fashion_mnist.py``) share: their parameters, the checks of
those parameters, and the problem they build from raw splits."""
import numpy as np

from benchmark_utils.problems.hyper_cleaning import make_hyper_cleaning
from benchmark_utils.problems.networks import (
    ACTIVATIONS,
    NETWORKS,
    make_network_hyper_cleaning,
)
from benchmark_utils.validation import (
    check_choice,
    check_device,
    check_interval,
    check_positive,
    check_positive_int,
)

#: Parameters shared by the hyper-cleaning data sets: corruption
#: ``ratio``, split sizes, ridge, seed of the split and of the corruption,
#: the ``value_function`` metric (an inner solve of ~1 s on 20000 samples
#: at every logged point: off by default so that evaluation stays a few
#: ms) and the device.
DATASET_PARAMETERS = {
    "ratio": [0.5],
    # scale s of the logits s x_i: "sqrt" (sqrt(n_train)) or a number
    # (1: x is the logit itself)
    "outer_scale": ["sqrt"],
    "n_train": [20000],
    "n_val": [5000],
    "reg": [0.4],
    "random_state": [0],
    "value_function": [False],
    "device": ["cpu"],
    # inner model: "linear" (benchmark_utils/problems/hyper_cleaning.py),
    # "mlp" or "cnn" (benchmark_utils/problems/networks.py); ``hidden``
    # (units) and ``activation`` ("relu" or "identity") shape the MLP only
    "model": ["linear"],
    "hidden": [300],
    "activation": ["relu"],
}

#: The accepted values of ``model``.
MODELS = ("linear", *NETWORKS)


def check_dataset_parameters(dataset):
    """Validate a data set's :data:`DATASET_PARAMETERS`; returns
    ``(seed, n_train, n_val)``."""
    check_interval(dataset.ratio, "ratio", 0, 1, closed="left")
    if dataset.outer_scale != "sqrt":
        try:
            check_positive(dataset.outer_scale, "outer_scale")
        except ValueError:
            raise ValueError(f"outer_scale must be 'sqrt' or a number > 0, "
                             f"got {dataset.outer_scale!r}.") from None
    check_positive(dataset.reg, "reg")
    seed = check_positive_int(dataset.random_state, "random_state",
                              allow_zero=True)
    check_device(dataset.device)
    check_choice(dataset.model, "model", MODELS)
    check_positive_int(dataset.hidden, "hidden")
    check_choice(dataset.activation, "activation", ACTIVATIONS)
    return (seed, check_positive_int(dataset.n_train, "n_train"),
            check_positive_int(dataset.n_val, "n_val"))


def dataset_problem(dataset, seed, X_train, y_train, X_val, y_val, X_test,
                    y_test):
    """The problem of a hyper-cleaning data set from its raw 10-class
    splits, with the data set's parameters (the corruption is seeded by
    ``[seed, 1]``; the split draws use ``[seed, 0]``; a network's start
    ``[seed, 2]``)."""
    common = dict(
        ratio=dataset.ratio, reg=dataset.reg, n_classes=10,
        random_state=np.random.default_rng([seed, 1]),
        device=check_device(dataset.device),
        outer_scale=(None if dataset.outer_scale == "sqrt"
                     else dataset.outer_scale),
        value_function=bool(dataset.value_function))
    if dataset.model == "linear":
        return make_hyper_cleaning(X_train, y_train, X_val, y_val, X_test,
                                   y_test, **common)
    return make_network_hyper_cleaning(
        dataset.model, X_train, y_train, X_val, y_val, X_test, y_test,
        hidden=dataset.hidden, activation=dataset.activation,
        init_seed=int(np.random.default_rng([seed, 2]).integers(2 ** 62)),
        **common)
