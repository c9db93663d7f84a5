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
1/2 ||W||^2) and ``W = 0`` (``inner_init="zero"``) or ``W = y*(x0)``
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
  features only: they are computed on those rows (the batch's entries
  sorted by feature once per batch, then a CSR product) and added into the
  rows of the result;
- the penalty terms exp(x) * W, exp(x) * V and the cross product
  exp(x_k) <W_k, V_k> touch every row: each is one pass over W (and V),
  written straight into the oracle's result, with no zero-filled buffer;
- full-batch oracles at one point share the logits X W, kept while the same
  unmodified ``inner_var`` tensor is passed again (Newton-CG's products and
  line search, a Neumann series): a full-batch H v then costs two sparse
  products, as a full-batch gradient does.

:meth:`RegularizationProblem.inner_preconditioner` gives the diagonal of the
full-batch Hessian, which the Newton-CG solve uses as its preconditioner.
"""
import warnings

import numpy as np
import torch
import torch.nn.functional as F

from benchmark_utils.batches import block_of, take
from benchmark_utils.memory import keep_freed_memory
from benchmark_utils.problems.base import BilevelProblem
from benchmark_utils.problems.implicit import (
    power_iteration,
    solve_inner,
    warm_value_function,
)
from benchmark_utils.validation import (
    check_choice,
    check_device,
    check_dtype,
    check_finite,
)

PENALTIES = ("feature", "class")
INNER_INITS = ("zero", "solved")
#: From this size of W (bytes), freed memory is kept for reuse
#: (:mod:`benchmark_utils.memory`): each oracle returns vectors of W's size.
KEEP_MEMORY_BYTES = 1 << 20


def _csr(crow, col, val, size):
    """A torch CSR tensor with 32-bit indices (MKL's product takes them as
    they are; with 64-bit ones torch converts them at every product), built
    without torch's "beta" warning."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor")
        return torch.sparse_csr_tensor(
            crow.to(torch.int32), col.to(torch.int32), val, size=size,
            check_invariants=False)


def _is_sparse(X):
    if isinstance(X, torch.Tensor):
        return X.layout != torch.strided
    try:
        import scipy.sparse as sp
    except ImportError:  # pragma: no cover
        return False
    return sp.issparse(X)


def _transpose(crow, col, val, n_columns, compact=True):
    """``(features, XT)`` of a CSR matrix with ``n_columns`` columns: its
    transpose as CSR, restricted to its distinct column indices
    ``features`` (sorted) when ``compact``, else over every column
    (``features`` is then None)."""
    n_rows = crow.numel() - 1
    counts = crow[1:] - crow[:-1]
    row = torch.repeat_interleave(
        torch.arange(n_rows, device=col.device), counts,
        output_size=col.numel())
    order = torch.sort(col * n_rows + row).indices  # by feature, then row
    if compact:
        features, per_feature = torch.unique_consecutive(
            col.index_select(0, order), return_counts=True)
    else:
        features, per_feature = None, torch.bincount(col,
                                                     minlength=n_columns)
    n_out = per_feature.numel()
    t_crow = torch.zeros(n_out + 1, dtype=torch.int64, device=col.device)
    torch.cumsum(per_feature, 0, out=t_crow[1:])
    return features, _csr(t_crow, row.index_select(0, order),
                          val.index_select(0, order), (n_out, n_rows))


class _SparseBatch:
    """The rows of a sparse design for one batch: ``X`` (CSR, n x
    n_features) for X_b W, and on first use ``XT``, X_b^T restricted to the
    batch's distinct ``features``, for X_b^T G."""

    __slots__ = ("n", "X", "_arrays", "_transposed")

    def __init__(self, crow, col, val, n_features):
        self.n = crow.numel() - 1
        self.X = _csr(crow, col, val, (self.n, n_features))
        self._arrays = (crow, col, val, n_features)
        self._transposed = None

    def transposed(self):
        if self._transposed is None:
            self._transposed = _transpose(*self._arrays)
        return self._transposed


class _Design:
    """A design matrix (dense tensor or torch CSR) with its row batches.

    ``rows(idx)`` returns the batch (``None`` stands for all rows; a dense
    batch is its rows, a sparse one a :class:`_SparseBatch`);
    ``matmul(batch, W)`` is ``X_b @ W``, ``rmatmul(batch, G)`` is
    ``X_b^T @ G`` and ``rmatmul_ridge(batch, G, W, reg)`` is
    ``X_b^T @ G + reg * W``. For a sparse full batch the transpose is
    precomputed as CSR; the batches of ``sampling="blocks"`` (fixed
    consecutive rows) keep their sorted entries from one draw to the next.
    """

    #: cached block batches hold at most this many times the entries of X
    BLOCK_CACHE = 2

    def __init__(self, X, dtype, device):
        self.sparse = _is_sparse(X)
        self._squared_t = None  # (X * X)^T, for the Hessian's diagonal
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
        # 64-bit copies for the batch gathers, 32-bit ones in the CSR tensors
        self.crow = crow.to(device=device, dtype=torch.int64)
        self.col = col.to(device=device, dtype=torch.int64)
        self.val = val.to(device=device, dtype=dtype)
        self.X = _csr(self.crow, self.col, self.val, self.shape)
        _, self.XT = _transpose(self.crow, self.col, self.val, self.shape[1],
                                compact=False)
        self._blocks = {}
        self._block_entries = 0

    @property
    def n_samples(self):
        return self.shape[0]

    def nbytes(self):
        if not self.sparse:
            return self.X.numel() * self.X.element_size()
        tensors = (self.crow, self.col, self.val, self.X.crow_indices(),
                   self.X.col_indices(), self.XT.crow_indices(),
                   self.XT.col_indices(), self.XT.values())
        return sum(t.numel() * t.element_size() for t in tensors)

    def rows(self, idx=None):
        if idx is None:
            return None
        if not self.sparse:
            return take(self.X, idx)
        block = block_of(idx)
        if block is not None:
            cached = self._blocks.get(block)
            if cached is not None:
                return cached
            # consecutive rows: slices of the CSR arrays
            crow = self.crow.narrow(0, block[0], block[1] + 1)
            first, last = int(crow[0]), int(crow[-1])
            batch = _SparseBatch(crow - first, self.col[first:last],
                                 self.val[first:last], self.shape[1])
            if self._block_entries + last - first <= \
                    self.BLOCK_CACHE * self.val.numel():
                batch.transposed()
                self._blocks[block] = batch
                self._block_entries += last - first
            return batch
        idx = idx.to(self.crow.device)
        # (index_select: several times faster than indexing with a tensor)
        start = self.crow.index_select(0, idx)
        counts = self.crow.index_select(0, idx + 1) - start
        crow = torch.zeros(idx.numel() + 1, dtype=torch.int64,
                           device=idx.device)
        torch.cumsum(counts, 0, out=crow[1:])
        total = int(crow[-1])
        pos = torch.arange(total, device=idx.device) + \
            torch.repeat_interleave(start - crow[:-1], counts,
                                    output_size=total)
        return _SparseBatch(crow, self.col.index_select(0, pos),
                            self.val.index_select(0, pos), self.shape[1])

    def matmul(self, batch, W):
        if not self.sparse:
            return (self.X if batch is None else batch) @ W
        return torch.sparse.mm(self.X if batch is None else batch.X, W)

    def rmatmul(self, batch, G):
        if not self.sparse:
            return (self.X if batch is None else batch).T @ G
        if batch is None:
            return torch.sparse.mm(self.XT, G)
        features, XT = batch.transposed()
        return G.new_zeros(self.shape[1], G.shape[1]).index_copy_(
            0, features, torch.sparse.mm(XT, G))

    def rmatmul_ridge(self, batch, G, W, reg):
        """``X_b^T G + reg * W`` in one new tensor: the ridge term written
        first (one pass over W), the data term added into the rows of the
        batch's features only."""
        if not self.sparse:
            return torch.mul(W, reg).addmm_(
                (self.X if batch is None else batch).T, G)
        if batch is None:
            return torch.sparse.mm(self.XT, G).addcmul_(W, reg)
        features, XT = batch.transposed()
        return torch.mul(W, reg).index_add_(0, features,
                                            torch.sparse.mm(XT, G))

    def squared_rmatmul(self, C):
        """``(X * X)^T C`` on all rows (the data part of the Hessian's
        diagonal)."""
        if self._squared_t is None:
            if self.sparse:
                XT = self.XT
                self._squared_t = _csr(XT.crow_indices(), XT.col_indices(),
                                       XT.values() ** 2, XT.shape)
            else:
                self._squared_t = (self.X ** 2).T.contiguous()
        if not self.sparse:
            return self._squared_t @ C
        return torch.sparse.mm(self._squared_t, C)


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
        outer_init = check_finite(outer_init, "outer_init")
        device, dtype = check_device(device), check_dtype(dtype)
        train_labels = np.asarray(y_train.cpu() if isinstance(
            y_train, torch.Tensor) else y_train).ravel()
        self.classes = np.unique(train_labels)
        if len(self.classes) < 2:
            raise ValueError("The training labels must hold at least 2 "
                             f"classes, got {self.classes}.")
        self.n_classes = len(self.classes)
        self.binary = self.n_classes == 2
        self.penalty = penalty
        self.with_value_function = bool(value_function)

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
        # at construction, so that no solver's timed run pays for them
        self.inner_hessian_bound()
        self.inner_init = inner_init
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
        """The inverse of the diagonal of the full-batch H at (x, y), as a
        function ``r -> r / diag(H)`` (the preconditioner of
        :func:`solve_inner`'s conjugate gradient). The diagonal is
        ``(X * X)^T c / n + exp(x)``, with c the logistic curvatures
        P (1 - P) (exact for the softmax: its Hessian's diagonal in the
        logits); it costs one sparse product, no oracle call."""
        _, _, P = self._forward("train", inner_var, None)
        design = self.splits["train"].design
        diagonal = design.squared_rmatmul(P * (1 - P) / len(P)).add_(
            self._reg(outer_var)).reshape(-1)
        return lambda r: r / diagonal

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
