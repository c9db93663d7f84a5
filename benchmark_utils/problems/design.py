"""Design matrices of linear models, dense or sparse, and their row batches.

:class:`Design` holds one split's matrix X (a dense tensor, or a sparse
one kept sparse) and computes the products a linear model's oracles need
on a batch of its rows: ``X_b W``, ``X_b^T G`` and ``X_b^T G + reg * W``.

Sparse matrices, on the full batch: torch CSR tensors with 32-bit indices
(MKL's kernels take them as they are; with 64-bit ones torch converts
them at every product), X^T precomputed as CSR.

Sparse matrices, on a minibatch. The data term X_b^T G of a batch of 64
posts is nonzero on its few thousand features only, and the products are
small (10 k entries x 20 classes): what they cost is gathering the rows
and reaching those features.

- On the CPU, the rows are gathered by scipy's CSR row indexing (one C++
  call), X_b W is scipy's CSR product, and X_b^T G is added into the rows
  of a result that already holds the ridge term by scipy's CSC kernel,
  which accumulates into its output (``csc_matvecs``: Y += A X, reading
  the batch's CSR arrays as the CSC arrays of its transpose), instead of
  building a zero-filled result and adding it. The kernel is scipy's
  private ``scipy.sparse._sparsetools.csc_matvecs``; without it the data
  term is computed by scipy's public product and the ridge term added to
  it (one pass more). A batch whose inputs autograd tracks uses the torch
  path (torch's products have derivatives, scipy's do not).
- Elsewhere (CUDA), torch only: the rows are gathered from the CSR arrays,
  and for X_b^T G the batch's entries are sorted by feature once (a CSR
  matrix of X_b^T restricted to the batch's features); its product is
  added into those rows with ``index_add_``. The batches of
  ``sampling="blocks"`` (fixed consecutive rows) keep that sorted matrix
  from one draw to the next.
"""
import warnings

import numpy as np
import torch

from benchmark_utils.batches import block_of, take

try:  # Y += A X for a CSC matrix A: X_b^T G added into a given result
    from scipy.sparse._sparsetools import csc_matvecs as _add_transposed
except ImportError:  # a scipy without it: the public product
    _add_transposed = None


def is_sparse(X):
    if isinstance(X, torch.Tensor):
        return X.layout != torch.strided
    try:
        import scipy.sparse as sp
    except ImportError:  # pragma: no cover
        return False
    return sp.issparse(X)


def _csr(crow, col, val, size):
    """A torch CSR tensor with 32-bit indices, built without torch's "beta"
    warning."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor")
        return torch.sparse_csr_tensor(
            crow.to(torch.int32), col.to(torch.int32), val, size=size,
            check_invariants=False)


def transpose(crow, col, val, n_columns, compact=True):
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


class HostBatch:
    """The rows of a sparse design for one batch, on the CPU: ``X``, a
    scipy CSR matrix (n x n_features, 32-bit indices)."""

    __slots__ = ("X", "n", "_torch")

    def __init__(self, X):
        self.X = X
        self.n = X.shape[0]
        self._torch = None

    def torch_batch(self):
        """The same rows as a :class:`SparseBatch`, for inputs that
        autograd tracks."""
        if self._torch is None:
            X = self.X
            self._torch = SparseBatch(
                torch.from_numpy(X.indptr.astype(np.int64)),
                torch.from_numpy(X.indices.astype(np.int64)),
                torch.from_numpy(X.data), X.shape[1])
        return self._torch


class SparseBatch:
    """The rows of a sparse design for one batch, in torch: ``X`` (CSR, n x
    n_features) for X_b W, and on first use X_b^T restricted to the
    batch's distinct features, for X_b^T G (:func:`transpose`)."""

    __slots__ = ("n", "X", "_arrays", "_transposed")

    def __init__(self, crow, col, val, n_features):
        self.n = crow.numel() - 1
        self.X = _csr(crow, col, val, (self.n, n_features))
        self._arrays = (crow, col, val, n_features)
        self._transposed = None

    def transposed(self):
        if self._transposed is None:
            self._transposed = transpose(*self._arrays)
        return self._transposed


def _tracked(*tensors):
    return any(t.requires_grad for t in tensors)


class Design:
    """A design matrix (dense tensor or sparse) with its row batches.

    ``rows(idx)`` returns the batch (``None`` stands for all rows; a dense
    batch is its rows, a sparse one a :class:`HostBatch` on the CPU, a
    :class:`SparseBatch` elsewhere); ``matmul(batch, W)`` is ``X_b @ W``,
    ``rmatmul(batch, G)`` is ``X_b^T @ G`` and ``rmatmul_ridge(batch, G,
    W, reg)`` is ``X_b^T @ G + reg * W``, each a new tensor; see the module
    docstring for how. ``host``: the scipy copy of a sparse X on the CPU
    (None elsewhere, or to use the torch path).
    """

    #: cached block batches (torch path) hold at most this many times the
    #: entries of X
    BLOCK_CACHE = 2

    def __init__(self, X, dtype, device):
        self.sparse = is_sparse(X)
        self.host = None
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
        _, self.XT = transpose(self.crow, self.col, self.val, self.shape[1],
                               compact=False)
        self._blocks = {}
        self._block_entries = 0
        if self.val.device.type == "cpu":
            import scipy.sparse as sp
            self.host = sp.csr_matrix(
                (self.val.numpy(), self.col.numpy().astype(np.int32),
                 self.crow.numpy().astype(np.int32)), shape=self.shape)

    @property
    def n_samples(self):
        return self.shape[0]

    def nbytes(self):
        if not self.sparse:
            return self.X.numel() * self.X.element_size()
        tensors = (self.crow, self.col, self.val, self.X.crow_indices(),
                   self.X.col_indices(), self.XT.crow_indices(),
                   self.XT.col_indices(), self.XT.values())
        host = 0 if self.host is None else (
            self.host.indptr.nbytes + self.host.indices.nbytes)
        return host + sum(t.numel() * t.element_size() for t in tensors)

    def rows(self, idx=None):
        if idx is None:
            return None
        if not self.sparse:
            return take(self.X, idx)
        block = block_of(idx)
        if self.host is not None:
            if block is not None:
                return HostBatch(self.host[block[0]:block[0] + block[1]])
            return HostBatch(self.host[idx.numpy()])
        if block is not None:
            cached = self._blocks.get(block)
            if cached is not None:
                return cached
            # consecutive rows: slices of the CSR arrays
            crow = self.crow.narrow(0, block[0], block[1] + 1)
            first, last = int(crow[0]), int(crow[-1])
            batch = SparseBatch(crow - first, self.col[first:last],
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
        return SparseBatch(crow, self.col.index_select(0, pos),
                           self.val.index_select(0, pos), self.shape[1])

    def matmul(self, batch, W):
        if not self.sparse:
            return (self.X if batch is None else batch) @ W
        if batch is None:
            return torch.sparse.mm(self.X, W)
        if isinstance(batch, HostBatch):
            if not _tracked(W):
                return torch.from_numpy(batch.X @ W.numpy())
            batch = batch.torch_batch()
        return torch.sparse.mm(batch.X, W)

    def rmatmul(self, batch, G):
        if not self.sparse:
            return (self.X if batch is None else batch).T @ G
        if batch is None:
            return torch.sparse.mm(self.XT, G)
        if isinstance(batch, HostBatch):
            if not _tracked(G):
                return torch.from_numpy(batch.X.T @ G.contiguous().numpy())
            batch = batch.torch_batch()
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
        if isinstance(batch, HostBatch) and not _tracked(G, W, reg):
            X, G = batch.X, G.contiguous().numpy()
            if _add_transposed is None:
                return torch.from_numpy(X.T @ G).addcmul_(W, reg)
            out = torch.mul(W, reg)
            _add_transposed(self.shape[1], X.shape[0], G.shape[1],
                            X.indptr, X.indices, X.data, G.ravel(),
                            out.numpy().ravel())
            return out
        if isinstance(batch, HostBatch):
            batch = batch.torch_batch()
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
