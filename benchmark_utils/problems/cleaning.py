"""Data hyper-cleaning: what every inner model shares.

A classifier ``phi(y; a)`` (logits of sample ``a`` under the inner
variable ``y``) trained on corrupted labels, each training sample weighted
by the sigmoid of its outer variable:

    g(x, y) = mean_{i in batch} sigmoid(s x_i) CE(phi(y; a_i), b_i)
              + reg/2 ||y||^2
    f(x, y) = mean_{j in validation} CE(phi(y; a_j), b_j)

A batch ``idx`` indexes the training set for g and the validation set for
f; ``grad_x g`` and ``J v`` are dense vectors of size n_train, zero
outside the batch (summed over repeated indices, as autograd does).

The fixed scale ``s`` (``outer_scale``, default sqrt(n_train)) sets the
weight of sample i to sigmoid of the logit s x_i. Without it (s = 1) the
gradient of h is O(1 / sqrt(n_train)) in norm and its Hessian
O(1 / n_train), so step sizes that suit y barely move x; with
s = sqrt(n_train) both are O(1) whatever n_train (measured on the linear
model: ||grad h(x0)|| = 0.65-0.77 for 1000 to 20000 training samples),
the same scale as y's. The solutions are the same logits, only their
coordinates change, alike for every solver. The outer start is the logit
``outer_init`` (default -2: weights sigmoid(-2) = 0.12) for every sample.

Metrics: validation and test accuracy, the F1 score of the samples flagged
as corrupted (weight below 1/2) against the true corruption mask, and
optionally the value function h(x) = f(x, y*(x)).

:class:`CleaningProblem` holds all of this; a subclass
(:mod:`~benchmark_utils.problems.hyper_cleaning` for the linear model,
:mod:`~benchmark_utils.problems.networks` for networks) adds the model:
the inputs it reads, its start, its predictions and its oracles.
:meth:`CleaningProblem.from_raw` builds a problem from raw features and
clean labels.
"""
import math

import numpy as np
import torch

from benchmark_utils.batches import add_at, take
from benchmark_utils.data.cleaning import (
    check_classes,
    cleaning_f1,
    corrupt_labels,
    standardize,
)
from benchmark_utils.problems.base import BilevelProblem
from benchmark_utils.problems.implicit import solve_inner, warm_value_function
from benchmark_utils.validation import (
    check_bool,
    check_device,
    check_dtype,
    check_finite,
    check_interval,
    check_positive,
)


class Split:
    """One split: the model's inputs ``A`` (one sample per row of dim 0)
    and the integer ``labels``."""

    def __init__(self, A, labels):
        self.A = A
        self.labels = labels

    def rows(self, idx):
        """(inputs, labels) of a batch: views for a block, else gathers;
        read-only."""
        if idx is None:
            return self.A, self.labels
        return take(self.A, idx), take(self.labels, idx)


def _features(X, name, dtype, device):
    X = torch.as_tensor(np.asarray(X) if not isinstance(X, torch.Tensor)
                        else X).to(dtype=dtype, device=device)
    if X.ndim != 2:
        raise ValueError(f"X_{name} must be a 2-D matrix, got shape "
                         f"{tuple(X.shape)}.")
    return X


def _labels(labels, n_rows, name, device):
    labels = torch.as_tensor(np.array(labels)).to(
        dtype=torch.int64, device=device).reshape(-1)
    if len(labels) != n_rows:
        raise ValueError(f"X_{name} has {n_rows} rows but y_{name} has "
                         f"{len(labels)} labels.")
    return labels


class CleaningProblem(BilevelProblem):
    """Data hyper-cleaning (see the module docstring).

    Parameters
    ----------
    X_train, y_train : preprocessed training features (n_train, n_features)
        and their (corrupted) labels in 0..n_classes-1: the inner problem.
    X_val, y_val : clean validation split: the outer problem.
    X_test, y_test : optional test split for ``test_accuracy``.
    reg : float > 0, the ridge (reg / 2) ||y||^2.
    n_classes : int, default: 1 + the largest label seen.
    corruption_mask : optional boolean array (n_train,), True where the
        training label was corrupted; enables the ``cleaning_f1`` metric.
    outer_init : float, starting logit s x_i of every sample.
    outer_scale : float > 0 or None, the scale s of the logits s x_i
        (None: sqrt(n_train)).
    value_function : bool, report h(x) = f(x, y*(x)) in ``metrics``.
    dtype, device : of the variables and the data.

    A subclass implements :meth:`_inputs` (the model's inputs from the
    features), :meth:`_inner_start`, :meth:`predict` and the losses and
    oracles.
    """

    outer_depends_on_x = False

    def __init__(self, X_train, y_train, X_val, y_val, X_test=None,
                 y_test=None, reg=0.4, n_classes=None, corruption_mask=None,
                 outer_init=-2.0, outer_scale=None, value_function=True,
                 dtype=torch.float32, device="cpu"):
        check_positive(reg, "reg")
        outer_init = check_finite(outer_init, "outer_init")
        device, dtype = check_device(device), check_dtype(dtype)
        raw = dict(train=(X_train, y_train), val=(X_val, y_val))
        if X_test is not None:
            raw["test"] = (X_test, y_test)
        self.splits, n_features = {}, None
        for name, (X, labels) in raw.items():
            X = _features(X, name, dtype, device)
            if n_features is None:
                n_features = X.shape[1]
            elif X.shape[1] != n_features:
                raise ValueError(f"X_{name} has {X.shape[1]} features, "
                                 f"X_train has {n_features}.")
            self.splits[name] = Split(self._inputs(X, name),
                                      _labels(labels, len(X), name, device))
        self.n_features = n_features
        self.n_classes = check_classes(
            [split.labels for split in self.splits.values()], n_classes)
        self.reg = float(reg)
        n_train = len(self.splits["train"].labels)
        self.corruption_mask = None
        if corruption_mask is not None:
            mask = torch.as_tensor(np.asarray(corruption_mask),
                                   dtype=torch.bool)
            if mask.shape != (n_train,):
                raise ValueError(f"corruption_mask must have shape "
                                 f"({n_train},), got {tuple(mask.shape)}.")
            self.corruption_mask = mask.to(device)
        self.outer_scale = float(
            math.sqrt(n_train) if outer_scale is None
            else check_positive(outer_scale, "outer_scale"))
        self.with_value_function = check_bool(value_function,
                                              "value_function")
        self._y_star = None  # warm start of the value-function solves
        super().__init__(
            n_train, len(self.splits["val"].labels),
            inner_var0=self._inner_start(dtype, device),
            outer_var0=torch.full((n_train,),
                                  float(outer_init) / self.outer_scale,
                                  dtype=dtype, device=device),
        )
        # at construction, so that no solver's timed run pays for it
        self.inner_hessian_bound()

    @classmethod
    def from_raw(cls, X_train, y_train, X_val, y_val, X_test=None,
                 y_test=None, ratio=0.5, random_state=0, n_classes=None,
                 **kwargs):
        """The problem from raw features and clean labels: every feature
        standardized with the training split's mean and standard deviation
        (features with zero training variance only centered), so pixels
        never enter as raw 0-255 values; the training labels corrupted with
        probability ``ratio`` (:func:`~benchmark_utils.data.cleaning.
        corrupt_labels`, seeded by ``random_state``), the true mask kept for
        ``cleaning_f1`` and the clean labels as ``clean_labels``.
        ``kwargs``: the class's other parameters."""
        check_interval(ratio, "ratio", 0, 1, closed="left")
        y_train = np.asarray(y_train, dtype=np.int64)
        labels = [y_train, np.asarray(y_val)]
        if y_test is not None:
            labels.append(np.asarray(y_test))
        n_classes = check_classes(labels, n_classes)
        noisy, mask = corrupt_labels(y_train, ratio, n_classes, random_state)
        if X_test is None:
            X_train, X_val = standardize(X_train, X_val)
        else:
            X_train, X_val, X_test = standardize(X_train, X_val, X_test)
        problem = cls(X_train=X_train, y_train=noisy, X_val=X_val,
                      y_val=y_val, X_test=X_test, y_test=y_test,
                      n_classes=n_classes, corruption_mask=mask, **kwargs)
        problem.clean_labels = torch.as_tensor(y_train,
                                               device=problem.device)
        return problem

    # -- what a model adds ----------------------------------------------------
    def _inputs(self, X, split_name):
        """The model's inputs from a split's features X (n, n_features)."""
        raise NotImplementedError

    def _inner_start(self, dtype, device):
        """inner_var0 (``n_classes`` is set)."""
        raise NotImplementedError

    def predict(self, inner_var, split_name):
        """The predicted class of every sample of a split."""
        raise NotImplementedError

    # -- x-directions ---------------------------------------------------------
    def outer_support(self, idx, which="inner"):
        # x_i weighs training sample i in g only
        if which == "outer" or idx is None:
            return super().outer_support(idx, which)
        return idx

    def _x_direction(self, outer_var, idx, values, s):
        """d/dx of the batch mean of sigmoid(c x_i) values_i (c: the
        scale, ``s``: sigmoid of the batch's c x): c values_i s_i (1 - s_i)
        / n at the batch's coordinates of a dense vector (summed over
        repeats). Overwrites ``values``."""
        # s - s^2 in one op: 1 - s would wrap the Python scalar in a tensor
        values.mul_(torch.addcmul(s, s, s, value=-1))
        alpha = self.outer_scale / s.shape[0]
        if idx is None:
            return values.mul_(alpha)
        return add_at(torch.zeros_like(outer_var), idx, values, alpha=alpha)

    # -- metrics --------------------------------------------------------------
    def accuracy(self, inner_var, split_name):
        """Fraction of correctly classified samples (not the error rate).
        For ``"train"`` it is measured against the corrupted labels."""
        pred = self.predict(inner_var, split_name)
        return float((pred == self.splits[split_name].labels).double()
                     .mean())

    def flagged(self, outer_var):
        """Samples flagged as corrupted: weight sigmoid(s x_i) < 0.5, i.e.
        x_i < 0."""
        return outer_var < 0

    def value_function(self, outer_var, inner_var=None, tol=None,
                       max_iter=50):
        """h(x) = f(x, y*(x)) and ||grad_y g(x, y*)||, y* by Newton-CG
        (:func:`~benchmark_utils.problems.implicit.solve_inner`). When g
        is strongly convex in y, y*(x) is unique and the solve starts from
        the previous call's solution; otherwise g has many stationary
        points and the solve starts from ``inner_var`` (default: the
        start), so that h is the one of the solver's current basin.

        Default ``tol`` (relative to max(1, ||grad_y g|| at the start)):
        1e-4 in float32, whose rounding floors ||grad_y g|| near 1e-5 on
        20000 FashionMNIST samples (a smaller tol never stops before
        ``max_iter``); 1e-8 in float64. The error on h is about
        ||grad_y f|| ||grad_y g|| / reg, far below what the metric needs.
        """
        if tol is None:
            tol = 1e-4 if self.dtype == torch.float32 else 1e-8
        if self.strongly_convex:
            return warm_value_function(self, outer_var, tol, max_iter)
        y_star, gnorm = solve_inner(self, outer_var, inner_var=inner_var,
                                    tol=tol, max_iter=max_iter)
        return float(self.outer(y_star, outer_var)), gnorm

    def metrics(self, inner_var, outer_var):
        out = dict(val_accuracy=self.accuracy(inner_var, "val"))
        if "test" in self.splits:
            out["test_accuracy"] = self.accuracy(inner_var, "test")
        if self.corruption_mask is not None:
            out["cleaning_f1"] = cleaning_f1(self.flagged(outer_var),
                                             self.corruption_mask)
        if self.with_value_function:
            out["value_function"] = self.value_function(outer_var,
                                                        inner_var)[0]
        return out
