"""What the hyper-cleaning data sets (``datasets/mnist.py``,
``datasets/fashion_mnist.py``) share: their parameters, the checks of
those parameters, and the problem they build from raw splits."""
import numpy as np
import torch

from benchmark_utils.problems.hyper_cleaning import make_hyper_cleaning
from benchmark_utils.problems.networks import (
    ACTIVATIONS,
    NETWORKS,
    make_network_hyper_cleaning,
)
from benchmark_utils.seeding import dataset_seed
from benchmark_utils.validation import (
    check_bool,
    check_choice,
    check_device,
    check_interval,
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
    # None: a new draw of the split and corruption at every repetition
    # (benchmark_utils/seeding.py); an int: that fixed draw
    "random_state": [None],
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


def check_dataset_parameters(dataset, n_train=None, n_val=None):
    """Validate a data set's :data:`DATASET_PARAMETERS`; returns
    ``(seed, n_train, n_val)``. ``n_train``, ``n_val``: the sizes to use
    instead of the data set's own (a data set whose sizes default to
    None)."""
    check_interval(dataset.ratio, "ratio", 0, 1, closed="left")
    # the problems compute in float32: a larger number used to end in a raw
    # "cannot be converted to type float without overflow" at the first step
    largest = float(torch.finfo(torch.float32).max)
    if dataset.outer_scale != "sqrt":
        try:
            check_interval(dataset.outer_scale, "outer_scale", 0, largest)
        except ValueError:
            raise ValueError(f"outer_scale must be 'sqrt' or a number in "
                             f"(0, {largest:.4g}] (float32), got "
                             f"{dataset.outer_scale!r}.") from None
    check_interval(dataset.reg, "reg", 0, largest)
    seed = dataset_seed(dataset)
    check_device(dataset.device)
    check_bool(dataset.value_function, "value_function")
    check_model_parameters(dataset)
    n_train = dataset.n_train if n_train is None else n_train
    n_val = dataset.n_val if n_val is None else n_val
    return (seed, check_positive_int(n_train, "n_train"),
            check_positive_int(n_val, "n_val"))


def check_model_parameters(dataset):
    """``model`` and the MLP's ``hidden`` and ``activation``: the linear
    model and the CNN ignore those two, so a value other than the default
    is refused for them instead of naming results after a setting that
    changed nothing."""
    # getattr: data sets built before these parameters existed are linear
    model = check_choice(getattr(dataset, "model", "linear"), "model",
                         MODELS)
    hidden = check_positive_int(getattr(dataset, "hidden", 300), "hidden")
    activation = check_choice(getattr(dataset, "activation", "relu"),
                              "activation", ACTIVATIONS)
    if model != "mlp":
        for name, value in (("hidden", hidden), ("activation", activation)):
            default = DATASET_PARAMETERS[name][0]
            if value != default:
                raise ValueError(
                    f"{name}={value!r} has no effect with model={model!r} "
                    f"(only model='mlp' uses it): leave {name} at its "
                    f"default {default!r}, or use model='mlp'.")


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
