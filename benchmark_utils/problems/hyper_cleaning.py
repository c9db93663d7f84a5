"""Data hyper-cleaning with a multinomial logistic regression.

The problem of :mod:`~benchmark_utils.problems.cleaning` with a linear
classifier. Inner variable ``y``: the weights ``W`` (n_features x
n_classes) and the bias ``b`` (n_classes), stored class by class: ``y`` is
the row-major flattening of the (n_classes, n_features + 1) matrix
``[W; b]^T`` (row k: the weights of class k, then its bias), and the
features carry a last constant column of ones. This layout makes both
products of a gradient use MKL's fastest paths (see ``_logits_t``).

    g(x, y) = mean_{i in batch} sigmoid(s x_i) CE(y; a_i, b_i) + reg/2 ||y||^2
    f(x, y) = mean_{j in validation} CE(y; a_j, b_j)

(the bias is regularized too, so g is reg-strongly convex in y for every x
and y*(x), h(x) = f(x, y*(x)) exist).

:func:`make_hyper_cleaning` builds the problem from raw features
(:meth:`~benchmark_utils.problems.cleaning.CleaningProblem.from_raw`:
standardization with the training split's statistics, label corruption).
Defaults follow the setup of the F2SA-Adam report (Yang, Jiang, Tatli,
Xiao), taken from benchopt's bilevel benchmark: start W = 0, b = 0, logits
s x_i = -2 (weights 0.12), and reg = 0.4 (its 0.2 ||W||^2).
"""
import torch

from benchmark_utils.batches import take
from benchmark_utils.problems.cleaning import CleaningProblem
from benchmark_utils.problems.implicit import power_iteration


# Batch quantities are kept transposed, (n_classes, batch): the logits
# W^T A_b^T come from one mm (measured 1.9x faster than A_b W for a 64 x 785
# batch and 10 classes on CPU), the softmax over dim 0 of a contiguous
# (K, n) tensor runs a ~3x faster kernel than over the last dim of (n, K),
# and the backward product G^T A_b lands directly in y's layout.
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


class HyperCleaningProblem(CleaningProblem):
    """Data hyper-cleaning with a linear classifier (see the module
    docstring); the parameters are
    :class:`~benchmark_utils.problems.cleaning.CleaningProblem`'s, with
    the inner start W = 0, b = 0.
    """

    def __init__(self, *args, **kwargs):
        self._p_cache = None  # (y, softmax probabilities) of the full batch
        super().__init__(*args, **kwargs)
        for split in self.splits.values():
            # one-hot labels, transposed: (n_classes, n_samples)
            split.onehot_t = torch.nn.functional.one_hot(
                split.labels, self.n_classes).to(self.dtype).T.contiguous()

    def _inputs(self, X, split_name):
        ones = torch.ones(len(X), 1, dtype=X.dtype, device=X.device)
        return torch.cat([X, ones], dim=1).contiguous()

    def _inner_start(self, dtype, device):
        return torch.zeros((self.n_features + 1) * self.n_classes,
                           dtype=dtype, device=device)

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

    def _logits_t(self, A, inner_var):
        """Transposed logits (n_classes, batch)."""
        return torch.mm(self._wt(inner_var), A.T)

    def _rows(self, split_name, idx, labels=True):
        """(rows, transposed one-hot labels or None if not ``labels``) of a
        batch of a split: views for a block, else index_select (~2x faster
        than advanced indexing for a 64-row batch on CPU). Read-only."""
        split = self.splits[split_name]
        if idx is None:
            return split.A, split.onehot_t
        return (take(split.A, idx),
                take(split.onehot_t, idx, dim=1) if labels else None)

    def _train_batch(self, outer_var, idx, labels=True):
        """(rows, transposed one-hot labels or None, weights
        sigmoid(c x_i)) of a training batch."""
        A, Yt = self._rows("train", idx, labels)
        x = outer_var if idx is None else take(outer_var, idx)
        return A, Yt, torch.sigmoid(x * self.outer_scale)

    # -- losses ---------------------------------------------------------------
    def inner(self, inner_var, outer_var, idx=None):
        A, Yt, s = self._train_batch(outer_var, idx)
        ce = _cross_entropy(self._logits_t(A, inner_var), Yt)
        return (s * ce).mean() + 0.5 * self.reg * inner_var @ inner_var

    def outer(self, inner_var, outer_var, idx=None):
        A, Yt = self._rows("val", idx)
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

    def grad_inner(self, inner_var, outer_var, idx=None):
        A, Yt, s = self._train_batch(outer_var, idx)
        # CE from the logits (log-sum-exp), not from the cached P.
        logp = torch.log_softmax(self._logits_t(A, inner_var), dim=0)
        ce = -(logp * Yt).sum(dim=0)
        grad_y = self._backward(logp.exp_().sub_(Yt).mul_(s), A, inner_var)
        grad_x = self._x_direction(outer_var, idx, ce, s)
        return grad_y, grad_x

    def grad_inner_y(self, inner_var, outer_var, idx=None):
        A, Yt, s = self._train_batch(outer_var, idx)
        Pt, _ = self._forward(A, inner_var, idx)
        return self._backward(_residual(Pt, Yt, idx).mul_(s), A, inner_var)

    def grad_inner_x(self, inner_var, outer_var, idx=None):
        A, Yt, s = self._train_batch(outer_var, idx)
        ce = _cross_entropy(self._logits_t(A, inner_var), Yt)
        return self._x_direction(outer_var, idx, ce, s)

    def grad_outer_y(self, inner_var, outer_var, idx=None):
        A, Yt = self._rows("val", idx)
        Pt = torch.softmax(self._logits_t(A, inner_var), dim=0)
        return self._backward(Pt.sub_(Yt), A)

    def hvp(self, inner_var, outer_var, v, idx=None):
        A, _, s = self._train_batch(outer_var, idx, labels=False)
        Pt, dZt = self._forward(A, inner_var, idx, v)
        return self._backward(_curvature(Pt, dZt).mul_(s), A, v)

    def cross(self, inner_var, outer_var, v, idx=None):
        A, Yt, s = self._train_batch(outer_var, idx)
        Pt, dZt = self._forward(A, inner_var, idx, v)
        rdz = _residual(Pt, Yt, idx).mul_(dZt).sum(dim=0)
        return self._x_direction(outer_var, idx, rdz, s)

    def inner_oracles(self, inner_var, outer_var, v, idx=None):
        """(grad_y g, H v, J v) from one read of the batch rows, one
        product [W, V]^T A^T and one product [G, H dZ]^T A."""
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

    def predict(self, inner_var, split_name):
        A = self.splits[split_name].A
        return self._logits_t(A, inner_var).argmax(dim=0)


def make_hyper_cleaning(X_train, y_train, X_val, y_val, X_test=None,
                        y_test=None, **kwargs):
    """A :class:`HyperCleaningProblem` from raw features and clean labels
    (:meth:`~benchmark_utils.problems.cleaning.CleaningProblem.from_raw`:
    ``ratio``, ``random_state``, and the problem's parameters)."""
    return HyperCleaningProblem.from_raw(X_train, y_train, X_val, y_val,
                                         X_test, y_test, **kwargs)
