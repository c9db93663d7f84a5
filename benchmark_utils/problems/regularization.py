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

Starting point: ``W = 0`` and ``x = outer_init`` (0 by default, i.e. a
penalty 1/2 ||W||^2), within +-log(largest float of the dtype) (88 in
float32, 709 in float64): beyond, exp(x) overflows and the first gradient
is already nan.

Closed-form oracles share one forward pass: the logits ``Z = X W`` give
the sigmoid / softmax probabilities reused by the gradient, the
Hessian-vector product and the cross product (``inner_oracles`` computes
them once, with the batch rows gathered once). The design
matrices may be dense (numpy / torch) or sparse (scipy sparse or torch sparse
COO / CSR): sparse inputs stay sparse (torch CSR) end to end, and a minibatch
``idx`` gathers its rows straight from the CSR arrays.
"""
import math
import warnings

import numpy as np
import torch
import torch.nn.functional as F

from benchmark_utils.batches import block_of, take
from benchmark_utils.problems.base import BilevelProblem
from benchmark_utils.problems.implicit import (
    power_iteration,
    warm_value_function,
)
from benchmark_utils.validation import (
    check_bool,
    check_choice,
    check_device,
    check_dtype,
    check_finite,
    check_interval,
)


def _csr(crow, col, val, size):
    """A torch CSR tensor (without torch's "beta" warning)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor")
        return torch.sparse_csr_tensor(crow, col, val, size=size,
                                       check_invariants=False)

PENALTIES = ("feature", "class")


def _is_sparse(X):
    if isinstance(X, torch.Tensor):
        return X.layout != torch.strided
    try:
        import scipy.sparse as sp
    except ImportError:  # pragma: no cover
        return False
    return sp.issparse(X)


class _Design:
    """A design matrix (dense tensor or torch CSR) with its row batches.

    ``rows(idx)`` returns the batch (``None`` stands for all rows; a
    sparse batch is the CSR arrays of the rows plus each entry's row);
    ``matmul(batch, W)`` is ``X_b @ W`` and ``rmatmul(batch, G)`` is
    ``X_b^T @ G``. For a sparse full batch the transpose is precomputed as
    CSR; a sparse minibatch scatters its products with ``index_add_``.
    """

    def __init__(self, X, dtype, device):
        self.sparse = _is_sparse(X)
        if not self.sparse:
            X = torch.as_tensor(np.asarray(X) if not isinstance(
                X, torch.Tensor) else X)
            if X.ndim != 2:
                raise ValueError(f"X must be a 2-D matrix, got shape "
                                 f"{tuple(X.shape)}.")
            self.X = X.to(device=device, dtype=dtype).contiguous()
            self.shape = tuple(self.X.shape)
            return
        if isinstance(X, torch.Tensor):
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Sparse CSR tensor")
                if X.layout == torch.sparse_coo:
                    X = X.coalesce().to_sparse_csr()
                elif X.layout != torch.sparse_csr:
                    X = X.to_sparse_csr()
            crow, col, val = X.crow_indices(), X.col_indices(), X.values()
            shape = tuple(X.shape)
        else:
            X = X.tocsr()
            X.sort_indices()
            crow = torch.from_numpy(X.indptr.astype(np.int64))
            col = torch.from_numpy(X.indices.astype(np.int64))
            val = torch.from_numpy(np.asarray(X.data))
            shape = X.shape
        self.shape = tuple(int(s) for s in shape)
        self.crow = crow.to(device=device, dtype=torch.int64)
        self.col = col.to(device=device, dtype=torch.int64)
        self.val = val.to(device=device, dtype=dtype)
        self.X = _csr(self.crow, self.col, self.val, self.shape)
        # X^T as CSR for the full-batch products X^T G.
        row = torch.repeat_interleave(
            torch.arange(self.shape[0], device=device),
            self.crow[1:] - self.crow[:-1])
        order = torch.argsort(self.col * self.shape[0] + row)
        t_counts = torch.bincount(self.col, minlength=self.shape[1])
        t_crow = torch.zeros(self.shape[1] + 1, dtype=torch.int64,
                             device=device)
        t_crow[1:] = torch.cumsum(t_counts, 0)
        self.XT = _csr(t_crow, row[order], self.val[order],
                   (self.shape[1], self.shape[0]))

    @property
    def n_samples(self):
        return self.shape[0]

    def nbytes(self):
        if not self.sparse:
            return self.X.numel() * self.X.element_size()
        tensors = (self.crow, self.col, self.val,
                   self.XT.crow_indices(), self.XT.col_indices(),
                   self.XT.values())
        return sum(t.numel() * t.element_size() for t in tensors)

    def rows(self, idx=None):
        if idx is None:
            return None
        if not self.sparse:
            return take(self.X, idx)
        block = block_of(idx)
        if block is not None:
            # consecutive rows: slices of the CSR arrays
            crow = self.crow.narrow(0, block[0], block[1] + 1)
            first, last = int(crow[0]), int(crow[-1])
            crow = crow - first
            col = self.col[first:last]
            val = self.val[first:last]
            counts = crow[1:] - crow[:-1]
        else:
            idx = idx.to(self.crow.device)
            start = self.crow[idx]
            counts = self.crow[idx + 1] - start
            crow = torch.zeros(len(idx) + 1, dtype=torch.int64,
                               device=idx.device)
            torch.cumsum(counts, 0, out=crow[1:])
            total = int(crow[-1])
            pos = torch.arange(total, device=idx.device) + \
                torch.repeat_interleave(start - crow[:-1], counts,
                                        output_size=total)
            col, val = self.col[pos], self.val[pos]
        n = counts.shape[0]
        return (crow, col, val, torch.repeat_interleave(
            torch.arange(n, device=crow.device), counts,
            output_size=col.shape[0]))

    def matmul(self, batch, W):
        if not self.sparse:
            return (self.X if batch is None else batch) @ W
        if batch is None:
            return torch.sparse.mm(self.X, W)
        crow, col, val, _ = batch
        Xb = _csr(crow, col, val, (len(crow) - 1, self.shape[1]))
        return torch.sparse.mm(Xb, W)

    def rmatmul(self, batch, G):
        if not self.sparse:
            return (self.X if batch is None else batch).T @ G
        if batch is None:
            return torch.sparse.mm(self.XT, G)
        _, col, val, row = batch
        out = torch.zeros(self.shape[1], G.shape[1], dtype=G.dtype,
                          device=G.device)
        return out.index_add_(0, col, val[:, None] * G[row])


class _Split:
    """A design matrix and its class indices (0..n_classes-1)."""

    def __init__(self, X, labels, dtype, device):
        self.design = _Design(X, dtype, device)
        self.labels = labels.to(device)
        self.target = labels.to(device=device, dtype=dtype)  # binary 0 / 1
        if self.design.n_samples != len(labels):
            raise ValueError(
                f"X has {self.design.n_samples} rows but there are "
                f"{len(labels)} labels.")


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
    dtype, device : of the variables and data.
    """

    outer_depends_on_x = False

    def __init__(self, X_train, y_train, X_val, y_val, X_test=None,
                 y_test=None, penalty="feature", value_function=False,
                 outer_init=0.0, dtype=torch.float32, device="cpu"):
        check_choice(penalty, "penalty", PENALTIES)
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
        # Axis of W summed in ||W_k||^2, and the shape of exp(x) against W.
        self._axis = 1 if penalty == "feature" else 0
        dim_outer = self.n_features if penalty == "feature" else self.n_out
        self._y_star = None  # warm start of the value function solves
        super().__init__(
            len(self.splits["train"].labels), len(self.splits["val"].labels),
            inner_var0=torch.zeros(self.n_features * self.n_out, dtype=dtype,
                                   device=device),
            outer_var0=torch.full((dim_outer,), float(outer_init),
                                  dtype=dtype, device=device),
        )
        # at construction, so that no solver's timed run pays for it
        self.inner_hessian_bound()

    # -- helpers --------------------------------------------------------------
    def _w(self, inner_var):
        return inner_var.view(self.n_features, self.n_out)

    def _reg(self, outer_var):
        """exp(x) broadcastable against W."""
        e = outer_var.exp()
        return e[:, None] if self.penalty == "feature" else e[None, :]

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

    def _data_loss(self, split_name, inner_var, idx):
        split = self.splits[split_name]
        batch = split.design.rows(idx)
        labels, target = self._targets(split, idx)
        Z = split.design.matmul(batch, self._w(inner_var))
        return self._loss(Z, labels, target)

    def _data_grad(self, split_name, inner_var, idx):
        split = self.splits[split_name]
        batch = split.design.rows(idx)
        labels, target = self._targets(split, idx)
        W = self._w(inner_var)
        P = self._probs(split.design.matmul(batch, W))
        G = self._residual(P, labels, target) / len(labels)
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

    # -- losses ---------------------------------------------------------------
    def inner(self, inner_var, outer_var, idx=None):
        W = self._w(inner_var)
        penalty = 0.5 * (self._reg(outer_var) * W ** 2).sum()
        return self._data_loss("train", inner_var, idx) + penalty

    def outer(self, inner_var, outer_var, idx=None):
        return self._data_loss("val", inner_var, idx)

    # -- closed-form oracles --------------------------------------------------
    def _penalty_grad_x(self, outer_var, W, V):
        return outer_var.exp() * (W * V).sum(dim=self._axis)

    def grad_inner_y(self, inner_var, outer_var, idx=None):
        W = self._w(inner_var)
        grad = self._data_grad("train", inner_var, idx) \
            + self._reg(outer_var) * W
        return grad.reshape(-1)

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
        batch = design.rows(idx)
        W, V = self._w(inner_var), self._w(v)
        P = self._probs(design.matmul(batch, W))
        HdZ = self._curvature(P, design.matmul(batch, V)) / len(P)
        return (design.rmatmul(batch, HdZ)
                + self._reg(outer_var) * V).reshape(-1)

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
        batch = design.rows(idx)
        labels, target = self._targets(split, idx)
        W, V = self._w(inner_var), self._w(v)
        P = self._probs(design.matmul(batch, W))
        n = len(P)
        G = self._residual(P, labels, target) / n
        HdZ = self._curvature(P, design.matmul(batch, V)) / n
        reg = self._reg(outer_var)
        grad = (design.rmatmul(batch, G) + reg * W).reshape(-1)
        hv = (design.rmatmul(batch, HdZ) + reg * V).reshape(-1)
        return grad, hv, self._penalty_grad_x(outer_var, W, V)

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
