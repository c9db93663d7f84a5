"""Data hyper-cleaning with a multinomial logistic regression.

Inner variable ``y``: the weights ``W`` (n_features x n_classes) and the
bias ``b`` (n_classes) of a linear classifier, stored class by class: ``y``
is the row-major flattening of the (n_classes, n_features + 1) matrix
``[W; b]^T`` (row k: the weights of class k, then its bias), and the
features carry a last constant column of ones. This layout makes both
products of a gradient use MKL's fastest paths (see ``_logits_t``).
Outer variable ``x``: one scaled logit per (corrupted) training sample,

    g(x, y) = mean_{i in batch} sigmoid(s x_i) CE(y; a_i, b_i) + reg/2 ||y||^2
    f(x, y) = mean_{j in validation} CE(y; a_j, b_j)

with a fixed scale ``s`` (``outer_scale``, default sqrt(n_train)): the
weight of sample i is sigmoid of the logit s x_i. Without the scale (s = 1)
the gradient of h is O(1 / sqrt(n_train)) in norm and its Hessian
O(1 / n_train), so step sizes that suit y barely move x; with
s = sqrt(n_train) both are O(1) whatever n_train (measured: ||grad h(x0)||
= 0.65-0.77 for 1000 to 20000 training samples), the same scale as y's. The
solutions are the same logits, only their coordinates change, alike for
every solver.

(the bias is regularized too, so g is reg-strongly convex in y for every x
and y*(x), h(x) = f(x, y*(x)) exist). A batch ``idx`` indexes the training
set for g and the validation set for f; ``grad_x g`` and ``J v`` are dense
vectors of size n_train, zero outside the batch (summed over repeated
indices, as autograd does).

:func:`make_hyper_cleaning` builds the problem from raw features: it
standardizes every feature with the mean and standard deviation of the
training split (features with zero training variance are only centered),
so pixels never enter as raw 0-255 values, then corrupts the training labels
with :func:`corrupt_labels`. Defaults follow the setup of the F2SA-Adam
report (Yang, Jiang, Tatli, Xiao), taken from benchopt's bilevel benchmark:
start W = 0, b = 0, logits s x_i = -2 (weights 0.12), and reg = 0.4 (its
0.2 ||W||^2).
"""
import math

import numpy as np
import torch

from benchmark_utils.batches import add_at, take
from benchmark_utils.problems import compiled
from benchmark_utils.problems.base import BilevelProblem
from benchmark_utils.problems.implicit import (
    power_iteration,
    warm_value_function,
)
from benchmark_utils.seeding import dataset_seed
from benchmark_utils.validation import (
    check_bool,
    check_choice,
    check_device,
    check_dtype,
    check_finite,
    check_interval,
    check_positive,
    check_positive_int,
)


def _generator(random_state):
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, torch.Generator):
        seed = int(torch.randint(0, 2 ** 63 - 1, (1,),
                                 generator=random_state))
        return np.random.default_rng(seed)
    return np.random.default_rng(
        check_positive_int(random_state, "random_state", allow_zero=True))


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
    rng = _generator(random_state)
    mask = rng.random(len(labels)) < ratio
    shift = rng.integers(1, n_classes, size=len(labels))
    noisy = np.where(mask, (labels + shift) % n_classes, labels)
    return noisy, mask


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


class _Split:
    """Features with a trailing column of ones, integer and one-hot labels."""

    def __init__(self, X, labels, dtype, device, n_classes=None):
        X = torch.as_tensor(np.asarray(X) if not isinstance(X, torch.Tensor)
                            else X).to(dtype=dtype, device=device)
        if X.ndim != 2:
            raise ValueError(f"features must be a 2-D matrix, got shape "
                             f"{tuple(X.shape)}.")
        ones = torch.ones(len(X), 1, dtype=dtype, device=device)
        self.A = torch.cat([X, ones], dim=1).contiguous()
        self.labels = torch.as_tensor(np.array(labels)).to(
            dtype=torch.int64, device=device).reshape(-1)
        if len(self.labels) != len(self.A):
            raise ValueError(f"{len(self.A)} feature rows but "
                             f"{len(self.labels)} labels.")
        self.onehot_t = None

    def set_classes(self, n_classes):
        """One-hot labels, transposed: (n_classes, n_samples)."""
        self.onehot_t = torch.nn.functional.one_hot(
            self.labels, n_classes).to(self.A.dtype).T.contiguous()

    def rows(self, idx, labels=True):
        """(features, one-hot labels transposed, or None if not ``labels``)
        of the batch: views for a block, else index_select (~2x faster than
        advanced indexing for a 64-row batch on CPU). Read-only."""
        if idx is None:
            return self.A, self.onehot_t
        return (take(self.A, idx),
                take(self.onehot_t, idx, dim=1) if labels else None)


# Batch quantities are kept transposed, (n_classes, batch): the logits
# W^T A_b^T come from one mm (measured 1.9x faster than A_b W for a 64 x 785
# batch and 10 classes on CPU), the softmax over dim 0 of a contiguous
# (K, n) tensor runs a ~3x faster kernel than over the last dim of (n, K),
# and the backward product G^T A_b lands directly in y's layout.
def check_labels(labels, n_classes=None):
    """The number of classes of the splits' label tensors ``labels``:
    ``n_classes``, or the largest label + 1; refuses labels outside
    0..n_classes-1 and fewer than 2 classes."""
    max_label = max(int(lab.max()) for lab in labels)
    min_label = min(int(lab.min()) for lab in labels)
    if n_classes is None:
        n_classes = max_label + 1
    if min_label < 0 or max_label >= n_classes or n_classes < 2:
        raise ValueError(f"labels must lie in 0..n_classes-1 with "
                         f"n_classes >= 2; got labels in [{min_label}, "
                         f"{max_label}] and n_classes={n_classes}.")
    return int(n_classes)


def cleaning_setup(n_train, corruption_mask, outer_scale, device):
    """``(corruption_mask, outer_scale)`` of a hyper-cleaning problem: the
    mask as a bool tensor of shape (n_train,) on ``device`` (or None), and
    the scale s of weight_i = sigmoid(s x_i), sqrt(n_train) by default."""
    mask = None
    if corruption_mask is not None:
        mask = torch.as_tensor(np.asarray(corruption_mask), dtype=torch.bool)
        if mask.shape != (n_train,):
            raise ValueError(f"corruption_mask must have shape "
                             f"({n_train},), got {tuple(mask.shape)}.")
        mask = mask.to(device)
    scale = float(math.sqrt(n_train) if outer_scale is None
                  else check_positive(outer_scale, "outer_scale"))
    return mask, scale


def _cross_entropy(Zt, Yt):
    """Per-sample CE from transposed logits and one-hot labels."""
    return -(torch.log_softmax(Zt, dim=0) * Yt).sum(dim=0)


def _residual(Pt, Yt, idx):
    """P - Y, in place on a batch's P (the full batch's P is cached)."""
    return Pt - Yt if idx is None else Pt.sub_(Yt)


def _curvature(Pt, dZt):
    """(diag(P) - P P^T) dZ per sample (transposed): d2 CE / d Z2 dZ."""
    PdZ = Pt * dZt
    return PdZ.sub_(Pt * PdZ.sum(dim=0))


# -- minibatch kernels ------------------------------------------------------
# With ``compiled`` set (a solver's ``compile=True``), minibatch oracles run
# these pure functions of one batch through compiled kernels
# (benchmark_utils.problems.compiled): y (and v) in y's layout, the batch's
# rows A (with their 1), transposed one-hot labels Yt and outer variables
# x_b. They return tuples, x-directions as the batch's values (the oracle
# scatters them into a dense vector). The formulas are those of the eager
# code below, written without in-place operations for the tracer: (P - Y) s
# for the gradient, (diag(P) - P P^T) dZ s for H v, sum_k (P - Y) dZ for
# J v, the products of W and V sharing one product with A.
# tests/test_compiled.py checks that both implementations agree.
def _weights(x_b, scale, n):
    """(sigmoid(c x_b), c s (1 - s) / n: d weight / d x_b over n)."""
    s = torch.sigmoid(x_b * scale)
    return s, (s - s * s) * (scale / n)


def _stacked_forward(y, v, A, K):
    stacked = torch.cat([y.view(K, -1), v.view(K, -1)])
    ZdZt = torch.mm(stacked, A.T)
    return stacked, torch.softmax(ZdZt[:K], dim=0), ZdZt[K:]


def _k_grad_inner(y, x_b, A, Yt, *, K, reg, scale):
    s, slope = _weights(x_b, scale, A.shape[0])
    Wt = y.view(K, -1)
    logp = torch.log_softmax(torch.mm(Wt, A.T), dim=0)
    grad_y = torch.addmm(Wt, (logp.exp() - Yt) * s, A, beta=reg,
                         alpha=1.0 / A.shape[0])
    return grad_y.reshape(-1), -(logp * Yt).sum(dim=0) * slope


def _k_grad_inner_y(y, x_b, A, Yt, *, K, reg, scale):
    s = torch.sigmoid(x_b * scale)
    Wt = y.view(K, -1)
    Pt = torch.softmax(torch.mm(Wt, A.T), dim=0)
    grad_y = torch.addmm(Wt, (Pt - Yt) * s, A, beta=reg,
                         alpha=1.0 / A.shape[0])
    return (grad_y.reshape(-1),)


def _k_grad_inner_x(y, x_b, A, Yt, *, K, reg, scale):
    _, slope = _weights(x_b, scale, A.shape[0])
    logp = torch.log_softmax(torch.mm(y.view(K, -1), A.T), dim=0)
    return (-(logp * Yt).sum(dim=0) * slope,)


def _k_hvp(y, v, x_b, A, *, K, reg, scale):
    s = torch.sigmoid(x_b * scale)
    _, Pt, dZt = _stacked_forward(y, v, A, K)
    PdZ = Pt * dZt
    hvp = torch.addmm(v.view(K, -1), (PdZ - Pt * PdZ.sum(dim=0)) * s, A,
                      beta=reg, alpha=1.0 / A.shape[0])
    return (hvp.reshape(-1),)


def _k_cross(y, v, x_b, A, Yt, *, K, reg, scale):
    _, slope = _weights(x_b, scale, A.shape[0])
    _, Pt, dZt = _stacked_forward(y, v, A, K)
    return (((Pt - Yt) * dZt).sum(dim=0) * slope,)


def _k_inner_oracles(y, v, x_b, A, Yt, *, K, reg, scale):
    s, slope = _weights(x_b, scale, A.shape[0])
    stacked, Pt, dZt = _stacked_forward(y, v, A, K)
    Rt = Pt - Yt
    PdZ = Pt * dZt
    Gt = torch.cat([Rt, PdZ - Pt * PdZ.sum(dim=0)]) * s
    out = torch.addmm(stacked, Gt, A, beta=reg, alpha=1.0 / A.shape[0])
    return (out[:K].reshape(-1), out[K:].reshape(-1),
            (Rt * dZt).sum(dim=0) * slope)


def _k_grad_outer_y(y, A, Yt, *, K, reg, scale):
    Rt = torch.softmax(torch.mm(y.view(K, -1), A.T), dim=0) - Yt
    return (torch.mm(Rt, A).mul(1.0 / A.shape[0]).reshape(-1),)


class HyperCleaningProblem(BilevelProblem):
    """Data hyper-cleaning (see the module docstring).

    Parameters
    ----------
    X_train, y_train : preprocessed training features (n_train, n_features)
        and their (corrupted) labels in 0..n_classes-1: the inner problem.
    X_val, y_val : clean validation split: the outer problem.
    X_test, y_test : optional test split for ``test_accuracy``.
    reg : float > 0, the ridge (reg / 2) ||y||^2 on weights and bias.
    n_classes : int, default: 1 + the largest label seen.
    corruption_mask : optional boolean array (n_train,), True where the
        training label was corrupted; enables the ``cleaning_f1`` metric.
    outer_init : float, starting LOGIT of every sample (default -2: weights
        sigmoid(-2) = 0.12), i.e. x_i = outer_init / s. The inner start is
        W = 0, b = 0.
    outer_scale : float > 0 or None, the scale s of the logits s x_i
        (None: sqrt(n_train)).
    value_function : bool, report h(x) = f(x, y*(x)) in ``metrics`` (y*(x)
        by Newton-CG warm started at the previous solution).
    dtype, device : of the variables and the data (float32, cpu default).
    """

    outer_depends_on_x = False
    traceable = True

    def __init__(self, X_train, y_train, X_val, y_val, X_test=None,
                 y_test=None, reg=0.4, n_classes=None, corruption_mask=None,
                 outer_init=-2.0, outer_scale=None, value_function=True,
                 dtype=torch.float32, device="cpu"):
        check_positive(reg, "reg")
        outer_init = check_finite(outer_init, "outer_init")
        device, dtype = check_device(device), check_dtype(dtype)
        splits = dict(train=(X_train, y_train), val=(X_val, y_val))
        if X_test is not None:
            splits["test"] = (X_test, y_test)
        self.splits = {name: _Split(X, y, dtype, device)
                       for name, (X, y) in splits.items()}
        dim = self.splits["train"].A.shape[1]
        for name, split in self.splits.items():
            if split.A.shape[1] != dim:
                raise ValueError(f"X_{name} has {split.A.shape[1] - 1} "
                                 f"features, X_train has {dim - 1}.")
        self.n_classes = check_labels(
            [split.labels for split in self.splits.values()], n_classes)
        for split in self.splits.values():
            split.set_classes(self.n_classes)
        self.n_features = dim - 1
        self.reg = float(reg)
        n_train = len(self.splits["train"].labels)
        self.corruption_mask, self.outer_scale = cleaning_setup(
            n_train, corruption_mask, outer_scale, device)
        self.with_value_function = check_bool(value_function,
                                              "value_function")
        self._y_star = None  # warm start of the value-function solves
        self._p_cache = None  # (y, softmax probabilities) of the full batch
        super().__init__(
            n_train, len(self.splits["val"].labels),
            inner_var0=torch.zeros(dim * self.n_classes, dtype=dtype,
                                   device=device),
            outer_var0=torch.full((n_train,),
                                  float(outer_init) / self.outer_scale,
                                  dtype=dtype, device=device),
        )
        # at construction, so that no solver's timed run pays for it
        self.inner_hessian_bound()

    # -- helpers --------------------------------------------------------------
    def _wt(self, inner_var):
        """[W; b]^T as a (n_classes, n_features + 1) view: the layout of y."""
        return inner_var.view(self.n_classes, -1)

    def _w(self, inner_var):
        """[W; b] as a (n_features + 1, n_classes) (transposed) view."""
        return self._wt(inner_var).T

    def weights_and_bias(self, inner_var):
        Wb = self._w(inner_var)
        return Wb[:-1], Wb[-1]

    def inner_hessian_bound(self):
        # For every (x, y): the softmax cross-entropy's curvature in the
        # logits is at most 1/2 and the weights sigmoid(x_i) at most 1, so
        # H <= (1/2) lambda_max(A^T A / n) + reg (A: rows with their 1).
        if getattr(self, "_hessian_bound", None) is None:
            A = self.splits["train"].A
            gram = power_iteration(lambda v: A.T @ (A @ v) / A.shape[0],
                                   A.shape[1], n_iter=30, dtype=A.dtype,
                                   device=A.device)
            self._hessian_bound = 0.5 * 1.05 * gram + self.reg
        return self._hessian_bound

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
        return self._scatter(outer_var, idx, values, alpha)

    def _scatter(self, outer_var, idx, values, alpha=1):
        """A dense x-direction: ``alpha * values`` at the batch's
        coordinates (summed over repeats), zero elsewhere."""
        return add_at(torch.zeros_like(outer_var), idx, values, alpha=alpha)

    def _logits_t(self, A, inner_var):
        """Transposed logits (n_classes, batch)."""
        return torch.mm(self._wt(inner_var), A.T)

    def _train_batch(self, outer_var, idx, labels=True):
        """(rows, transposed one-hot labels or None, weights
        sigmoid(c x_i)) of a training batch."""
        if idx is None:
            split = self.splits["train"]
            return split.A, split.onehot_t, torch.sigmoid(
                outer_var * self.outer_scale)
        A, Yt = self.splits["train"].rows(idx, labels)
        return A, Yt, torch.sigmoid(take(outer_var, idx) * self.outer_scale)

    # -- losses ---------------------------------------------------------------
    def inner(self, inner_var, outer_var, idx=None):
        A, Yt, s = self._train_batch(outer_var, idx)
        ce = _cross_entropy(self._logits_t(A, inner_var), Yt)
        return (s * ce).mean() + 0.5 * self.reg * inner_var @ inner_var

    def outer(self, inner_var, outer_var, idx=None):
        A, Yt = self.splits["val"].rows(idx)
        return _cross_entropy(self._logits_t(A, inner_var), Yt).mean()

    # -- closed-form oracles --------------------------------------------------
    # A minibatch oracle costs a few dozen microseconds on CPU, so the number
    # of tensor operations matters as much as the products: the forward
    # products of W and V share one [W, V]^T A^T (one read of A), the
    # backward ones share one [G, H dZ]^T A, whose (2K, D) result is already
    # in y's layout, and addmm folds the 1 / n and the ridge term into that
    # product. The softmax probabilities of the last full training batch are
    # cached (compared to y exactly), so that the Hessian-vector products of
    # a CG solve at a fixed y cost one forward and one backward product each.
    def _forward(self, A, inner_var, idx, v=None, stacked=None):
        """Training-batch (P^T, (A V)^T or None); ``stacked``: [W, V]^T if
        the caller already built it."""
        if idx is None:
            cached = self._p_cache
            if cached is not None and cached[0].shape == inner_var.shape \
                    and torch.equal(cached[0], inner_var):
                return cached[1], (None if v is None
                                   else self._logits_t(A, v))
        K = self.n_classes
        if v is None:
            Pt, dZt = torch.softmax(self._logits_t(A, inner_var), dim=0), None
        else:
            if stacked is None:
                stacked = torch.cat([self._wt(inner_var), self._wt(v)])
            ZdZt = torch.mm(stacked, A.T)
            Pt, dZt = torch.softmax(ZdZt[:K], dim=0), ZdZt[K:]
        if idx is None:
            self._p_cache = (inner_var.detach().clone(), Pt)
        return Pt, dZt

    def _backward(self, Gt, A, base=None):
        """G^T A / n + reg * base, flattened to y's layout (``base`` None:
        no ridge term)."""
        n = A.shape[0]
        if base is None:
            return torch.mm(Gt, A).mul_(1.0 / n).view(-1)
        return torch.addmm(self._wt(base), Gt, A, beta=self.reg,
                           alpha=1.0 / n).view(-1)

    def _kernel(self, kernel, *tensors):
        return compiled.call(kernel, *tensors, K=self.n_classes, reg=self.reg,
                             scale=self.outer_scale)

    def _rows(self, outer_var, idx, labels=True):
        """(rows, transposed one-hot labels or None, outer variables) of a
        training minibatch: views for a block, else gathers."""
        A, Yt = self.splits["train"].rows(idx, labels)
        return A, Yt, take(outer_var, idx)

    def grad_inner(self, inner_var, outer_var, idx=None):
        if self.compiled and idx is not None:
            A, Yt, x_b = self._rows(outer_var, idx)
            grad_y, grad_x = self._kernel(_k_grad_inner, inner_var, x_b, A,
                                          Yt)
            return grad_y, self._scatter(outer_var, idx, grad_x)
        A, Yt, s = self._train_batch(outer_var, idx)
        # CE from the logits (log-sum-exp), not from the cached P.
        logp = torch.log_softmax(self._logits_t(A, inner_var), dim=0)
        ce = -(logp * Yt).sum(dim=0)
        grad_y = self._backward(logp.exp_().sub_(Yt).mul_(s), A, inner_var)
        grad_x = self._x_direction(outer_var, idx, ce, s)
        return grad_y, grad_x

    def grad_inner_y(self, inner_var, outer_var, idx=None):
        if self.compiled and idx is not None:
            A, Yt, x_b = self._rows(outer_var, idx)
            return self._kernel(_k_grad_inner_y, inner_var, x_b, A, Yt)[0]
        A, Yt, s = self._train_batch(outer_var, idx)
        Pt, _ = self._forward(A, inner_var, idx)
        return self._backward(_residual(Pt, Yt, idx).mul_(s), A, inner_var)

    def grad_inner_x(self, inner_var, outer_var, idx=None):
        if self.compiled and idx is not None:
            A, Yt, x_b = self._rows(outer_var, idx)
            values, = self._kernel(_k_grad_inner_x, inner_var, x_b, A, Yt)
            return self._scatter(outer_var, idx, values)
        A, Yt, s = self._train_batch(outer_var, idx)
        ce = _cross_entropy(self._logits_t(A, inner_var), Yt)
        return self._x_direction(outer_var, idx, ce, s)

    def grad_outer_y(self, inner_var, outer_var, idx=None):
        A, Yt = self.splits["val"].rows(idx)
        if self.compiled and idx is not None:
            return self._kernel(_k_grad_outer_y, inner_var, A, Yt)[0]
        Pt = torch.softmax(self._logits_t(A, inner_var), dim=0)
        return self._backward(Pt.sub_(Yt), A)

    def hvp(self, inner_var, outer_var, v, idx=None):
        if self.compiled and idx is not None:
            A, _, x_b = self._rows(outer_var, idx, labels=False)
            return self._kernel(_k_hvp, inner_var, v, x_b, A)[0]
        A, _, s = self._train_batch(outer_var, idx, labels=False)
        Pt, dZt = self._forward(A, inner_var, idx, v)
        return self._backward(_curvature(Pt, dZt).mul_(s), A, v)

    def cross(self, inner_var, outer_var, v, idx=None):
        if self.compiled and idx is not None:
            A, Yt, x_b = self._rows(outer_var, idx)
            values, = self._kernel(_k_cross, inner_var, v, x_b, A, Yt)
            return self._scatter(outer_var, idx, values)
        A, Yt, s = self._train_batch(outer_var, idx)
        Pt, dZt = self._forward(A, inner_var, idx, v)
        rdz = _residual(Pt, Yt, idx).mul_(dZt).sum(dim=0)
        return self._x_direction(outer_var, idx, rdz, s)

    def inner_oracles(self, inner_var, outer_var, v, idx=None):
        """(grad_y g, H v, J v) from one read of the batch rows, one
        product [W, V]^T A^T and one product [G, H dZ]^T A."""
        if self.compiled and idx is not None:
            A, Yt, x_b = self._rows(outer_var, idx)
            grad_y, hvp, jv = self._kernel(_k_inner_oracles, inner_var, v,
                                           x_b, A, Yt)
            return grad_y, hvp, self._scatter(outer_var, idx, jv)
        A, Yt, s = self._train_batch(outer_var, idx)
        stacked = torch.cat([self._wt(inner_var), self._wt(v)])
        Pt, dZt = self._forward(A, inner_var, idx, v, stacked)
        Rt = Pt - Yt
        jv = self._x_direction(outer_var, idx, (Rt * dZt).sum(dim=0), s)
        # [G, H dZ]^T A / n + reg [W, V]^T: both ridge terms in one addmm
        Gt = torch.cat([Rt, _curvature(Pt, dZt)]).mul_(s)
        out = torch.addmm(stacked, Gt, A, beta=self.reg,
                          alpha=1.0 / A.shape[0])
        K = self.n_classes
        return out[:K].reshape(-1), out[K:].reshape(-1), jv

    # -- metrics --------------------------------------------------------------
    def predict(self, inner_var, split_name):
        A = self.splits[split_name].A
        return self._logits_t(A, inner_var).argmax(dim=0)

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

    def value_function(self, outer_var, tol=None, max_iter=50):
        """h(x) = f(x, y*(x)), y*(x) by Newton-CG warm started at the last
        solution; returns ``(h, inner_grad_norm_at_solution)``.

        Default ``tol`` (relative to max(1, ||grad_y g|| at the start)):
        1e-4 in float32, whose rounding floors ||grad_y g|| near 1e-5 on
        20000 FashionMNIST samples (a smaller tol never stops before
        ``max_iter``); 1e-8 in float64. The error on h is about
        ||grad_y f|| ||grad_y g|| / reg, far below what the metric needs.
        """
        if tol is None:
            tol = 1e-4 if self.dtype == torch.float32 else 1e-8
        return warm_value_function(self, outer_var, tol, max_iter)

    def metrics(self, inner_var, outer_var):
        out = dict(val_accuracy=self.accuracy(inner_var, "val"))
        if "test" in self.splits:
            out["test_accuracy"] = self.accuracy(inner_var, "test")
        if self.corruption_mask is not None:
            out["cleaning_f1"] = cleaning_f1(self.flagged(outer_var),
                                             self.corruption_mask)
        if self.with_value_function:
            out["value_function"] = self.value_function(outer_var)[0]
        return out


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


def make_hyper_cleaning(X_train, y_train, X_val, y_val, X_test=None,
                        y_test=None, ratio=0.5, reg=0.4, random_state=0,
                        n_classes=None, outer_init=-2.0, outer_scale=None,
                        value_function=True, dtype=torch.float32,
                        device="cpu"):
    """Build a :class:`HyperCleaningProblem` from raw features and clean
    labels: standardize (training-split statistics), corrupt the training
    labels with probability ``ratio`` (:func:`corrupt_labels`, seeded by
    ``random_state``) and keep the true mask for ``cleaning_f1``."""
    check_interval(ratio, "ratio", 0, 1, closed="left")
    y_train = np.asarray(y_train, dtype=np.int64)
    if n_classes is None:
        labels = [y_train, np.asarray(y_val)]
        if y_test is not None:
            labels.append(np.asarray(y_test))
        n_classes = int(max(lab.max() for lab in labels)) + 1
    noisy, mask = corrupt_labels(y_train, ratio, n_classes, random_state)
    if X_test is None:
        X_train, X_val = standardize(X_train, X_val)
    else:
        X_train, X_val, X_test = standardize(X_train, X_val, X_test)
    problem = HyperCleaningProblem(
        X_train, noisy, X_val, y_val, X_test, y_test, reg=reg,
        n_classes=n_classes, corruption_mask=mask, outer_init=outer_init,
        outer_scale=outer_scale, value_function=value_function, dtype=dtype,
        device=device)
    problem.clean_labels = torch.as_tensor(y_train, device=problem.device)
    return problem


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
    perm = _generator(random_state).permutation(n_pool)
    return perm[:n_train], perm[n_train:n_train + n_val]


#: Parameters shared by the hyper-cleaning data sets (``datasets/mnist.py``,
#: ``datasets/fashion_mnist.py``): corruption ``ratio``, split sizes, ridge,
#: seed of the split and of the corruption, the ``value_function`` metric
#: (an inner solve of ~1 s on 20000 samples at every logged point: off by
#: default so that evaluation stays a few ms) and the device.
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
    # inner model: "linear" (this module's closed-form problem), "mlp" or
    # "cnn" (benchmark_utils/problems/networks.py); ``hidden`` (units) and
    # ``activation`` ("relu" or "identity") shape the MLP only
    "model": ["linear"],
    "hidden": [300],
    "activation": ["relu"],
}


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
                         ["linear", "mlp", "cnn"])
    hidden = check_positive_int(getattr(dataset, "hidden", 300), "hidden")
    activation = check_choice(getattr(dataset, "activation", "relu"),
                              "activation", ["relu", "identity"])
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
    model = getattr(dataset, "model", "linear")
    if model != "linear":
        from benchmark_utils.problems.networks import (
            make_network_hyper_cleaning,
        )
        return make_network_hyper_cleaning(
            model, X_train, y_train, X_val, y_val, X_test, y_test,
            hidden=dataset.hidden, activation=dataset.activation,
            ratio=dataset.ratio, reg=dataset.reg, n_classes=10,
            random_state=np.random.default_rng([seed, 1]),
            init_seed=int(np.random.default_rng([seed, 2]).integers(2 ** 62)),
            device=check_device(dataset.device),
            outer_scale=(None if dataset.outer_scale == "sqrt"
                         else dataset.outer_scale),
            value_function=bool(dataset.value_function),
        )
    return make_hyper_cleaning(
        X_train, y_train, X_val, y_val, X_test, y_test,
        ratio=dataset.ratio, reg=dataset.reg, n_classes=10,
        random_state=np.random.default_rng([seed, 1]),
        device=check_device(dataset.device),
        outer_scale=(None if dataset.outer_scale == "sqrt"
                     else dataset.outer_scale),
        value_function=bool(dataset.value_function),
    )
