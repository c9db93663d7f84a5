"""Regularization selection: logistic regression with learned L2 penalties.

Inner variable ``y``: the weights ``W`` of a linear classifier without bias,
of shape ``(n_features, K)`` flattened row-major (``y = W.reshape(-1)``), with
``K = 1`` for two classes (binary logistic loss) and ``K = n_classes``
otherwise (multinomial softmax cross-entropy). Outer variable ``x``: log
penalty strengths,

    g(x, y) = mean_{i in train} CE(W; a_i, b_i)
              + 1/2 sum_k exp(x_k) ||W_k||^2
    f(x, y) = mean_{j in validation} CE(W; a_j, b_j)

where ``W_k`` is row ``k`` of ``W`` (``penalty="feature"``: one
hyperparameter per feature, ``x`` in R^n_features) or column ``k``
(``penalty="class"``: one per class, ``x`` in R^K, so R^1 for binary).
g is strongly convex in y for every x, so y*(x) and h(x) = f(x, y*(x)) exist.

Starting point: ``x = outer_init`` (0 by default, i.e. a penalty
1/2 ||W||^2; within +-log(largest float of the dtype), 88 in float32 and
709 in float64: beyond, exp(x) overflows and the first gradient is already
nan) and ``W = 0`` (``inner_init="zero"``) or ``W = y*(x0)``
(``inner_init="solved"``: the inner problem solved at construction by
:func:`~benchmark_utils.problems.implicit.solve_inner`, so that no solver's
timed run pays for it and every solver starts from the same model).

Closed-form oracles share one forward pass: the logits ``Z = X W`` give
the sigmoid / softmax probabilities reused by the gradient, the
Hessian-vector product and the cross product (``inner_oracles`` computes
them once, with the batch rows gathered once). The design
matrices may be dense (numpy / torch) or sparse (scipy sparse or torch sparse
COO / CSR): sparse inputs stay sparse (torch CSR) end to end, and a minibatch
``idx`` gathers its rows straight from the CSR arrays.

Where the work goes on a large sparse problem (20newsgroups: W has 2.6 M
entries, a batch of 64 posts touches about 4 k of its 130 k rows):

- the data terms of a minibatch oracle, X_b^T G, are nonzero on the batch's
  features only: they are added into the rows of the result
  (:mod:`benchmark_utils.problems.design`);
- the penalty terms exp(x) * W, exp(x) * V and the cross product
  exp(x_k) <W_k, V_k> touch every row: each is one pass over W (and V),
  written straight into the oracle's result, with no zero-filled buffer;
- full-batch oracles at one point share the logits X W, kept while the same
  unmodified ``inner_var`` tensor is passed again (Newton-CG's products and
  line search, a Neumann series): a full-batch H v then costs two sparse
  products, as a full-batch gradient does;
- freed memory is kept for reuse (:mod:`benchmark_utils.memory`), so that
  the oracles' 10 MB results do not page-fault at every call.

:meth:`RegularizationProblem.inner_preconditioner` gives the Newton-CG solve
and the hypergradient's conjugate gradient a diagonal preconditioner built
from the diagonal of the full-batch Hessian.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F

from benchmark_utils.batches import take
from benchmark_utils.memory import keep_freed_memory
from benchmark_utils.problems.base import BilevelProblem
from benchmark_utils.problems.design import Design
from benchmark_utils.problems.implicit import (
    power_iteration,
    solve_inner,
    warm_value_function,
)
from benchmark_utils.threads import default_thread_count
from benchmark_utils.validation import (
    check_bool,
    check_choice,
    check_device,
    check_dtype,
    check_finite,
    check_interval,
)

PENALTIES = ("feature", "class")
INNER_INITS = ("zero", "solved")
#: From this size of W (bytes), freed memory is kept for reuse
#: (:mod:`benchmark_utils.memory`): each oracle returns vectors of W's size.
KEEP_MEMORY_BYTES = 1 << 20


class _Split:
    """A design matrix and its class indices (0..n_classes-1)."""

    def __init__(self, X, labels, dtype, device):
        self.design = Design(X, dtype, device)
        self.labels = labels.to(device)
        self.target = labels.to(device=device, dtype=dtype)  # binary 0 / 1
        if self.design.n_samples != len(labels):
            raise ValueError(
                f"X has {self.design.n_samples} rows but there are "
                f"{len(labels)} labels.")
        # [inner_var, its version, X W, probabilities or None] of the last
        # full-batch forward pass
        self._full = None

    def full_forward(self, inner_var, W):
        """``[inner_var, version, X W, P or None]`` on all rows: kept while
        the same ``inner_var`` tensor comes back unmodified (its version
        counter, which every in-place write increments, is unchanged), so
        that the full-batch oracles at one point share one product. Not
        kept for tensors that autograd tracks (each call must build its own
        graph) or that carry no version counter (inference mode)."""
        entry = self._full
        if entry is not None and entry[0] is inner_var and \
                entry[1] == inner_var._version:
            return entry
        Z = self.design.matmul(None, W)
        if inner_var.requires_grad or inner_var.is_inference():
            return [inner_var, None, Z, None]
        self._full = [inner_var, inner_var._version, Z, None]
        return self._full


def _encode_labels(labels, classes, name):
    labels = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor)
                        else labels).ravel()
    pos = np.searchsorted(classes, labels).clip(0, len(classes) - 1)
    bad = classes[pos] != labels
    if bad.any():
        raise ValueError(f"{name} holds labels {np.unique(labels[bad])[:5]} "
                         f"that are not among the classes {classes[:20]} of "
                         f"the training labels.")
    return torch.from_numpy(pos.astype(np.int64))


class RegularizationProblem(BilevelProblem):
    """Regularization selection for logistic regression; see module doc.

    Parameters
    ----------
    X_train, y_train : training split (inner problem g). ``X_*`` are dense
        (numpy, torch) or sparse (scipy, torch COO / CSR) matrices with the
        same number of columns; labels are any values, the classes are the
        sorted distinct training labels (for two classes the larger one is
        the positive class: -1 / +1 -> 0 / 1).
    X_val, y_val : validation split (outer problem f).
    X_test, y_test : optional test split for ``test_accuracy``.
    penalty : "feature" or "class".
    value_function : bool, report h(x) = f(x, y*(x)) in ``metrics``, with
        y*(x) from :func:`solve_inner` warm started at the previous solution.
    outer_init : float, the starting value of every coordinate of x.
    inner_init : "zero" (W = 0) or "solved" (W = y*(x0), solved here to
        ``inner_tol``; the first value-function solve then starts there).
    inner_tol : tolerance of that solve (relative gradient norm, floored at
        10 machine epsilons of ``dtype`` by :func:`solve_inner`).
    dtype, device : of the variables and data.
    """

    outer_depends_on_x = False

    def __init__(self, X_train, y_train, X_val, y_val, X_test=None,
                 y_test=None, penalty="feature", value_function=False,
                 outer_init=0.0, inner_init="zero", inner_tol=1e-6,
                 dtype=torch.float32, device="cpu"):
        check_choice(penalty, "penalty", PENALTIES)
        check_choice(inner_init, "inner_init", INNER_INITS)
        device, dtype = check_device(device), check_dtype(dtype)
        bound = math.floor(math.log(torch.finfo(dtype).max))
        outer_init = check_interval(check_finite(outer_init, "outer_init"),
                                    "outer_init", -bound, bound,
                                    closed="both")
        train_labels = np.asarray(y_train.cpu() if isinstance(
            y_train, torch.Tensor) else y_train).ravel()
        self.classes = np.unique(train_labels)
        if len(self.classes) < 2:
            raise ValueError("The training labels must hold at least 2 "
                             f"classes, got {self.classes}.")
        self.n_classes = len(self.classes)
        self.binary = self.n_classes == 2
        self.penalty = penalty
        self.with_value_function = check_bool(value_function,
                                              "value_function")

        splits = dict(train=(X_train, y_train), val=(X_val, y_val))
        if X_test is not None:
            splits["test"] = (X_test, y_test)
        self.splits = {
            name: _Split(X, _encode_labels(y, self.classes, f"y_{name}"),
                         dtype, device)
            for name, (X, y) in splits.items()
        }
        self.n_features = self.splits["train"].design.shape[1]
        for name, split in self.splits.items():
            if split.design.shape[1] != self.n_features:
                raise ValueError(
                    f"X_{name} has {split.design.shape[1]} columns, X_train "
                    f"has {self.n_features}.")
        self.n_out = 1 if self.binary else self.n_classes
        dim_outer = self.n_features if penalty == "feature" else self.n_out
        self._y_star = None  # warm start of the value function solves
        super().__init__(
            len(self.splits["train"].labels), len(self.splits["val"].labels),
            inner_var0=torch.zeros(self.n_features * self.n_out, dtype=dtype,
                                   device=device),
            outer_var0=torch.full((dim_outer,), float(outer_init),
                                  dtype=dtype, device=device),
        )
        if self.dim_inner * self.inner_var0.element_size() >= \
                KEEP_MEMORY_BYTES and self.device.type == "cpu":
            keep_freed_memory()
        self.inner_init = inner_init
        # at construction, so that no solver's timed run pays for them; on
        # the CPU with one thread, as the solvers run (benchmark_utils/
        # threads.py: two threads stalled on a busy machine)
        with default_thread_count():
            self.inner_hessian_bound()
            if inner_init == "solved":
                y0, self.inner_init_grad_norm = solve_inner(
                    self, self.outer_var0, tol=inner_tol)
                self.inner_var0 = y0
                self._y_star = y0.clone()

    # -- helpers --------------------------------------------------------------
    def _w(self, inner_var):
        return inner_var.view(self.n_features, self.n_out)

    def _reg(self, outer_var):
        """exp(x) broadcastable against W."""
        e = outer_var.exp()
        return e[:, None] if self.penalty == "feature" else e[None, :]

    def _pair_sums(self, W, V):
        """sum_c W_kc V_kc per row k (``penalty="feature"``) or sum_k
        W_kc V_kc per column c (``"class"``): the sums the penalty's x
        derivatives weigh by exp(x)."""
        if self.penalty == "class":
            return (W * V).sum(dim=0)
        if W.shape[1] == 1:
            return W[:, 0] * V[:, 0]
        # a batch of n_features (1 x K) @ (K x 1) products: one pass over W
        # and V, without the (n_features, K) temporary of (W * V).sum(1)
        return torch.bmm(W.unsqueeze(1), V.unsqueeze(2)).view(-1)

    def _targets(self, split, idx):
        if idx is None:
            return split.labels, split.target
        return take(split.labels, idx), take(split.target, idx)

    def _loss(self, Z, labels, target):
        if self.binary:
            z = Z[:, 0]
            return (F.softplus(z) - target * z).mean()
        return F.cross_entropy(Z, labels)

    def _probs(self, Z):
        return torch.sigmoid(Z) if self.binary else torch.softmax(Z, dim=1)

    def _residual(self, P, labels, target):
        """d CE / d Z for each sample (not divided by n)."""
        if self.binary:
            return P - target[:, None]
        G = P.clone()
        G[torch.arange(len(labels), device=G.device), labels] -= 1
        return G

    def _curvature(self, P, dZ):
        """d2 CE / d Z2 applied to the directions dZ (not divided by n)."""
        if self.binary:
            return P * (1 - P) * dZ
        PdZ = P * dZ
        return PdZ - P * PdZ.sum(dim=1, keepdim=True)

    def _forward(self, split_name, inner_var, idx, probs=True):
        """``(batch, Z, P)`` of a split: the batch rows, the logits
        X_b W and (``probs``) their probabilities; the full batch's are
        shared between calls at the same point (:meth:`_Split.full_forward`).
        """
        split = self.splits[split_name]
        W = self._w(inner_var)
        if idx is None:
            entry = split.full_forward(inner_var, W)
            if probs and entry[3] is None:
                entry[3] = self._probs(entry[2])
            return None, entry[2], entry[3]
        batch = split.design.rows(idx)
        Z = split.design.matmul(batch, W)
        return batch, Z, self._probs(Z) if probs else None

    def _data_loss(self, split_name, inner_var, idx):
        split = self.splits[split_name]
        _, Z, _ = self._forward(split_name, inner_var, idx, probs=False)
        return self._loss(Z, *self._targets(split, idx))

    def _data_grad(self, split_name, inner_var, idx):
        split = self.splits[split_name]
        batch, _, P = self._forward(split_name, inner_var, idx)
        G = self._residual(P, *self._targets(split, idx)) / len(P)
        return split.design.rmatmul(batch, G)

    def inner_hessian_bound(self):
        # The logistic loss's curvature in the logits is at most 1/4 (binary)
        # or 1/2 (softmax), so H <= c lambda_max(X^T X / n) + max_k exp(x_k):
        # a bound wherever the penalties stay below their starting values.
        if getattr(self, "_hessian_bound", None) is None:
            design = self.splits["train"].design
            n = design.n_samples

            def gram(v):
                return design.rmatmul(None, design.matmul(
                    None, v[:, None]))[:, 0] / n
            curvature = 0.25 if self.binary else 0.5
            top = power_iteration(gram, self.n_features, n_iter=30,
                                  dtype=self.dtype, device=self.device)
            self._hessian_bound = curvature * 1.05 * top + float(
                self.outer_var0.exp().max())
        return self._hessian_bound

    def inner_preconditioner(self, inner_var, outer_var):
        """A preconditioner of the full-batch H at (x, y) for conjugate
        gradient (:func:`solve_inner`, :func:`hypergradient`): the function
        ``r -> r / sqrt(d)``, M = diag(sqrt(d)), with d the diagonal of H,
        ``(X * X)^T c / n + exp(x)``, c the logistic curvatures P (1 - P)
        (exact for the softmax: its Hessian's diagonal in the logits). It
        costs one sparse product, no oracle call.

        The square root, not d itself: measured on 20newsgroups at x = -12
        (float32), the Hessian-vector products of a cold solve / a warm
        solve / the hypergradient's system were 164 / 134 / 172 with M =
        diag(sqrt(d)), 279 / 117 / 336 with M = diag(d) (Jacobi) and
        240 / 337 / 163 without preconditioner. There the diagonal spans
        four decades (exp(-12) on features absent from the training split,
        about 1e-2 on frequent ones), and dividing by all of it slows the
        residual's decrease on the frequent features' coupled directions.
        """
        _, _, P = self._forward("train", inner_var, None)
        design = self.splits["train"].design
        inverse = design.squared_rmatmul(P * (1 - P) / len(P)).add_(
            self._reg(outer_var)).rsqrt_().reshape(-1)
        return lambda r: r * inverse

    # -- losses ---------------------------------------------------------------
    def inner(self, inner_var, outer_var, idx=None):
        W = self._w(inner_var)
        penalty = 0.5 * (outer_var.exp() @ self._pair_sums(W, W))
        return self._data_loss("train", inner_var, idx) + penalty

    def outer(self, inner_var, outer_var, idx=None):
        return self._data_loss("val", inner_var, idx)

    # -- closed-form oracles --------------------------------------------------
    def _penalty_grad_x(self, outer_var, W, V):
        return outer_var.exp() * self._pair_sums(W, V)

    def grad_inner_y(self, inner_var, outer_var, idx=None):
        split = self.splits["train"]
        batch, _, P = self._forward("train", inner_var, idx)
        G = self._residual(P, *self._targets(split, idx)) / len(P)
        return split.design.rmatmul_ridge(
            batch, G, self._w(inner_var), self._reg(outer_var)).view(-1)

    def grad_inner_x(self, inner_var, outer_var, idx=None):
        W = self._w(inner_var)
        return 0.5 * self._penalty_grad_x(outer_var, W, W)

    def grad_inner(self, inner_var, outer_var, idx=None):
        return (self.grad_inner_y(inner_var, outer_var, idx),
                self.grad_inner_x(inner_var, outer_var, idx))

    def grad_outer_y(self, inner_var, outer_var, idx=None):
        return self._data_grad("val", inner_var, idx).reshape(-1)

    def hvp(self, inner_var, outer_var, v, idx=None):
        design = self.splits["train"].design
        batch, _, P = self._forward("train", inner_var, idx)
        V = self._w(v)
        HdZ = self._curvature(P, design.matmul(batch, V)) / len(P)
        return design.rmatmul_ridge(batch, HdZ, V,
                                    self._reg(outer_var)).view(-1)

    def cross(self, inner_var, outer_var, v, idx=None):
        return self._penalty_grad_x(outer_var, self._w(inner_var),
                                    self._w(v))

    def inner_oracles(self, inner_var, outer_var, v, idx=None):
        """(grad_y g, H v, J v) sharing the batch rows and the probabilities.

        X W and X V (and X^T G, X^T H dZ) are separate products: one product
        with the concatenation [W, V] was measured slower for torch's sparse
        CSR kernels (and no faster for dense ones).
        """
        split = self.splits["train"]
        design = split.design
        batch, _, P = self._forward("train", inner_var, idx)
        W, V = self._w(inner_var), self._w(v)
        n = len(P)
        G = self._residual(P, *self._targets(split, idx)) / n
        HdZ = self._curvature(P, design.matmul(batch, V)) / n
        e = outer_var.exp()
        reg = e[:, None] if self.penalty == "feature" else e[None, :]
        grad = design.rmatmul_ridge(batch, G, W, reg).view(-1)
        hv = design.rmatmul_ridge(batch, HdZ, V, reg).view(-1)
        return grad, hv, e * self._pair_sums(W, V)

    # -- metrics --------------------------------------------------------------
    def predict(self, inner_var, split_name):
        """Class indices (0..n_classes-1) predicted on a split."""
        design = self.splits[split_name].design
        Z = design.matmul(None, self._w(inner_var))
        if self.binary:
            return (Z[:, 0] > 0).long()
        return Z.argmax(dim=1)

    def accuracy(self, inner_var, split_name):
        pred = self.predict(inner_var, split_name)
        return float((pred == self.splits[split_name].labels).double()
                     .mean())

    def value_function(self, outer_var, tol=1e-6, max_iter=50):
        """h(x) = f(x, y*(x)), y*(x) by Newton-CG warm started at the last
        solution; returns ``(h, inner_grad_norm_at_solution)``."""
        return warm_value_function(self, outer_var, tol, max_iter)

    def metrics(self, inner_var, outer_var):
        out = dict(val_accuracy=self.accuracy(inner_var, "val"))
        if "test" in self.splits:
            out["test_accuracy"] = self.accuracy(inner_var, "test")
        if self.with_value_function:
            out["value_function"] = self.value_function(outer_var)[0]
        return out

    def nbytes(self):
        """Memory held by the data tensors (bytes)."""
        return sum(s.design.nbytes() + s.labels.numel() * 8
                   + s.target.numel() * s.target.element_size()
                   for s in self.splits.values())
