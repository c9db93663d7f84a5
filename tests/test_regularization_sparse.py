"""RegularizationProblem's sparse minibatch and full-batch paths against the
formulas written out on dense matrices, and SOBA's iterates against a loop
that uses those formulas on the same batches."""
import numpy as np
import pytest
import scipy.sparse as sp
import torch

from benchmark_utils.batches import RecordingSampler, contiguous_blocks
from benchmark_utils.problems import design
from benchmark_utils.problems.regularization import RegularizationProblem

N_FEATURES = 12


def _data(n_classes, seed=0):
    """Sparse splits with empty rows, features absent from the training
    split (columns 10, 11) and from the validation split (column 0)."""
    rng = np.random.default_rng(seed)

    def split(n, absent):
        X = rng.standard_normal((n, N_FEATURES))
        X *= rng.random((n, N_FEATURES)) < 0.3
        X[:, absent] = 0
        X[[1, 4]] = 0
        labels = np.concatenate([np.arange(n_classes),
                                 rng.integers(0, n_classes, n - n_classes)])
        return X, labels
    return split(40, [10, 11]), split(30, [0]), split(15, [])


def _problem(n_classes, penalty, layout="sparse", **kwargs):
    (X, y), (Xv, yv), (Xt, yt) = _data(n_classes)
    wrap = sp.csr_matrix if layout == "sparse" else np.asarray
    return RegularizationProblem(wrap(X), y, wrap(Xv), yv, wrap(Xt), yt,
                                 penalty=penalty, dtype=torch.float64,
                                 **kwargs)


#: The three ways of a sparse minibatch (benchmark_utils/problems/design.py):
#: scipy on the CPU, adding X_b^T G into the result ("host"), the same
#: through scipy's public product ("host_public"), torch only ("torch").
PATHS = ["host", "host_public", "torch"]


def _use_path(problem, path, monkeypatch):
    if path == "torch":
        for split in problem.splits.values():
            split.design.host = None
    elif path == "host_public":
        monkeypatch.setattr(design, "_add_transposed", None)
    return problem


class Formulas:
    """The oracles written out on dense float64 matrices, as the problem
    computed them before its sparse paths: X_b^T G summed into a
    zero-filled (n_features, K) matrix plus exp(x) * W, the cross product
    exp(x) * (W * V).sum(axis), the penalty 1/2 sum exp(x) * W ** 2."""

    def __init__(self, n_classes, penalty):
        (X, y), (Xv, yv), _ = _data(n_classes)
        self.X = {"train": torch.from_numpy(X), "val": torch.from_numpy(Xv)}
        self.y = {"train": torch.from_numpy(y), "val": torch.from_numpy(yv)}
        self.binary = n_classes == 2
        self.k = 1 if self.binary else n_classes
        self.axis = 1 if penalty == "feature" else 0

    def _rows(self, split, idx):
        X, y = self.X[split], self.y[split]
        return (X, y) if idx is None else (X[idx], y[idx])

    def _probs(self, Z):
        return torch.sigmoid(Z) if self.binary else torch.softmax(Z, 1)

    def _reg(self, x):
        return x.exp()[:, None] if self.axis == 1 else x.exp()[None, :]

    def data_grad(self, split, y, idx):
        X, labels = self._rows(split, idx)
        P = self._probs(X @ y.view(-1, self.k))
        Y = labels[:, None].double() if self.binary else \
            torch.nn.functional.one_hot(labels, self.k).double()
        out = torch.zeros(X.shape[1], self.k, dtype=torch.float64)
        return out + X.T @ ((P - Y) / len(X))

    def grad_inner_y(self, y, x, idx):
        W = y.view(-1, self.k)
        return (self.data_grad("train", y, idx) + self._reg(x) * W).view(-1)

    def hvp(self, y, x, v, idx):
        X, _ = self._rows("train", idx)
        P = self._probs(X @ y.view(-1, self.k))
        dZ = X @ v.view(-1, self.k)
        if self.binary:
            HdZ = P * (1 - P) * dZ
        else:
            HdZ = P * dZ - P * (P * dZ).sum(1, keepdim=True)
        out = torch.zeros(X.shape[1], self.k, dtype=torch.float64)
        return (out + X.T @ (HdZ / len(X))
                + self._reg(x) * v.view(-1, self.k)).view(-1)

    def cross(self, y, x, v):
        return x.exp() * (y.view(-1, self.k) * v.view(-1, self.k)).sum(
            self.axis)

    def inner(self, y, x, idx):
        X, labels = self._rows("train", idx)
        Z = X @ y.view(-1, self.k)
        if self.binary:
            loss = (torch.nn.functional.softplus(Z[:, 0])
                    - labels.double() * Z[:, 0]).mean()
        else:
            loss = torch.nn.functional.cross_entropy(Z, labels)
        return loss + 0.5 * (self._reg(x) * y.view(-1, self.k) ** 2).sum()

    def hessian_diagonal(self, y, x):
        X, _ = self._rows("train", None)
        P = self._probs(X @ y.view(-1, self.k))
        return ((X ** 2).T @ (P * (1 - P)) / len(X)
                + self._reg(x)).view(-1)


def _point(problem, seed=1):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(problem.dim_inner, generator=gen,
                        dtype=torch.float64),
            0.5 * torch.randn(problem.dim_outer, generator=gen,
                              dtype=torch.float64),
            torch.randn(problem.dim_inner, generator=gen,
                        dtype=torch.float64))


def _close(got, want):
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-14)


CASES = [(k, penalty) for k in (2, 3) for penalty in ("feature", "class")]
BATCHES = {
    "full": None,
    "repeated": torch.tensor([0, 3, 3, 7, 39, 1]),
    "empty_rows_only": torch.tensor([1, 4]),
    "single": torch.tensor([5]),
    "block": contiguous_blocks(40, 16)[1],
    "last_block": contiguous_blocks(40, 16)[-1],
}


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("n_classes, penalty", CASES)
@pytest.mark.parametrize("batch", list(BATCHES))
def test_sparse_oracles_match_the_formulas(n_classes, penalty, batch, path,
                                           monkeypatch):
    problem = _use_path(_problem(n_classes, penalty), path, monkeypatch)
    ref = Formulas(n_classes, penalty)
    y, x, v = _point(problem)
    idx = BATCHES[batch]
    plain = None if idx is None else idx.clone()  # without a block marker
    out_idx = None if idx is None else plain.clamp(max=problem.n_outer - 1)
    for _ in range(2):  # the second call reads cached blocks and logits
        _close(problem.grad_inner_y(y, x, idx),
               ref.grad_inner_y(y, x, plain))
        _close(problem.hvp(y, x, v, idx), ref.hvp(y, x, v, plain))
        _close(problem.cross(y, x, v, idx), ref.cross(y, x, v))
        grad, hv, jv = problem.inner_oracles(y, x, v, idx)
        _close(grad, ref.grad_inner_y(y, x, plain))
        _close(hv, ref.hvp(y, x, v, plain))
        _close(jv, ref.cross(y, x, v))
        _close(problem.grad_inner_x(y, x, idx), 0.5 * ref.cross(y, x, y))
        _close(problem.inner(y, x, idx), ref.inner(y, x, plain))
        _close(problem.grad_outer_y(y, x, out_idx),
               ref.data_grad("val", y, out_idx).view(-1))


@pytest.mark.parametrize("n_classes, penalty", CASES)
def test_sparse_equals_dense_layout(n_classes, penalty):
    sparse = _problem(n_classes, penalty, "sparse")
    dense = _problem(n_classes, penalty, "dense")
    y, x, v = _point(sparse, seed=4)
    for idx in BATCHES.values():
        for got, want in zip(sparse.inner_oracles(y, x, v, idx),
                             dense.inner_oracles(y, x, v, idx)):
            _close(got, want)


def test_preconditioner_is_the_root_of_the_hessian_diagonal():
    for n_classes, penalty in CASES:
        problem = _problem(n_classes, penalty)
        y, x, _ = _point(problem, seed=2)
        r = torch.linspace(1, 2, problem.dim_inner, dtype=torch.float64)
        diagonal = (r / problem.inner_preconditioner(y, x)(r)) ** 2
        _close(diagonal, Formulas(n_classes, penalty).hessian_diagonal(y, x))
        # the diagonal of the matrix the Hessian-vector products apply
        eye = torch.eye(problem.dim_inner, dtype=torch.float64)
        H = torch.stack([problem.hvp(y, x, e) for e in eye])
        _close(diagonal, torch.diagonal(H))
        dense = _problem(n_classes, penalty, "dense")
        _close(dense.inner_preconditioner(y, x)(r),
               problem.inner_preconditioner(y, x)(r))


def test_full_batch_logits_follow_in_place_writes():
    """Full-batch oracles share the logits of one point: a write into the
    same tensor, or another tensor, gives the new point's values."""
    problem = _problem(3, "feature")
    ref = Formulas(3, "feature")
    y, x, v = _point(problem, seed=5)
    _close(problem.hvp(y, x, v), ref.hvp(y, x, v, None))
    y.mul_(0.5)  # same tensor, modified in place
    _close(problem.hvp(y, x, v), ref.hvp(y, x, v, None))
    _close(problem.inner(y, x), ref.inner(y, x, None))
    y.view(-1, 3)[2].add_(1.0)  # through a view
    _close(problem.grad_inner_y(y, x), ref.grad_inner_y(y, x, None))
    other = y.clone().add_(0.25)  # another tensor
    _close(problem.grad_inner_y(other, x), ref.grad_inner_y(other, x, None))
    _close(problem.grad_inner_y(y, x), ref.grad_inner_y(y, x, None))


def test_full_batch_logits_keep_autograd_graphs():
    problem = _problem(3, "class")
    y, x, _ = _point(problem, seed=6)
    y.requires_grad_(True)
    for _ in range(2):  # a kept graph would fail on the second backward
        (grad,) = torch.autograd.grad(problem.inner(y, x), y)
        _close(grad, problem.grad_inner_y(y.detach(), x))


@pytest.mark.parametrize("compact", [True, False])
def test_transpose_of_a_csr_matrix(compact):
    rng = np.random.default_rng(3)
    X = sp.random(9, 14, density=0.3, format="lil", random_state=rng)
    X[[0, 5]] = 0  # empty rows
    X = X.tocsr()
    X.eliminate_zeros()
    features, XT = design.transpose(
        torch.from_numpy(X.indptr.astype(np.int64)),
        torch.from_numpy(X.indices.astype(np.int64)),
        torch.from_numpy(X.data), 14, compact=compact)
    dense = torch.from_numpy(X.toarray().T)
    if compact:
        assert torch.equal(features, torch.from_numpy(
            np.unique(X.indices).astype(np.int64)))
        assert len(features) < 14  # some columns are empty
        dense = dense[features]
    else:
        assert features is None
    assert torch.equal(XT.to_dense(), dense)


def _soba_by_hand(problem, ref, batches, n_steps, step_size, outer_ratio):
    """SOBA's updates with the written-out formulas on recorded batches."""
    y = problem.inner_var0.clone()
    x = problem.outer_var0.clone()
    v = torch.zeros_like(y)
    inner, outer = batches
    for t in range(n_steps):
        i, j = inner[t].clone(), outer[t].clone()
        grad = ref.grad_inner_y(y, x, i)
        hv = ref.hvp(y, x, v, i)
        cross = ref.cross(y, x, v)
        grad_f = ref.data_grad("val", y, j).view(-1)
        y = y - step_size * grad
        v = v - step_size * (hv + grad_f)
        x = x - outer_ratio * step_size * cross
    return y, x, v


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("sampling", ["shuffle", "blocks"])
@pytest.mark.parametrize("n_classes, penalty", CASES)
def test_soba_iterates_match_the_formulas(make_solver, sampling, n_classes,
                                          penalty, path, monkeypatch):
    problem = _use_path(_problem(n_classes, penalty, outer_init=-1.0), path,
                        monkeypatch)
    solver = make_solver("SOBA", problem, batch_size=8, step_size=0.5,
                         outer_ratio=2.0, sampling=sampling)
    solver.inner_batch = RecordingSampler(solver.inner_batch)
    solver.outer_batch = RecordingSampler(solver.outer_batch)
    n_steps = 30  # several epochs: blocks come back from the cache
    for _ in range(n_steps):
        solver.next_iteration()
    y, x, v = _soba_by_hand(
        problem, Formulas(n_classes, penalty),
        (solver.inner_batch.batches, solver.outer_batch.batches), n_steps,
        0.5, 2.0)
    state = solver.state
    # the iterates moved, and by what the formulas give
    assert float((state.inner_var - problem.inner_var0).norm()) > 1e-2
    assert float((state.outer_var - problem.outer_var0).norm()) > 1e-6
    torch.testing.assert_close(state.inner_var, y, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(state.v, v, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(state.outer_var, x, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12),
                                        (torch.float32, 1e-5)])
@pytest.mark.parametrize("n_classes, penalty", CASES)
def test_sparse_minibatch_oracles_equal_autograd(n_classes, penalty, dtype,
                                                 tol):
    """The closed forms on a sparse minibatch (scipy's kernels on the CPU)
    against autograd's derivatives of the same batch's loss g, on a dense
    copy of the data, in float64 and in the data sets' float32."""
    (X, y_train), (Xv, yv), _ = _data(n_classes)
    problem = RegularizationProblem(sp.csr_matrix(X), y_train,
                                    sp.csr_matrix(Xv), yv, penalty=penalty,
                                    dtype=dtype)
    assert problem.splits["train"].design.host is not None
    Xd = torch.from_numpy(X).to(dtype)
    targets = torch.from_numpy(y_train)
    k = 1 if n_classes == 2 else n_classes
    axis = 1 if penalty == "feature" else 0
    idx = BATCHES["repeated"]

    def g(y, x):
        Z = Xd[idx] @ y.view(-1, k)
        if k == 1:
            data = (torch.nn.functional.softplus(Z[:, 0])
                    - targets[idx].to(dtype) * Z[:, 0]).mean()
        else:
            data = torch.nn.functional.cross_entropy(Z, targets[idx])
        return data + 0.5 * (x.exp() * (y.view(-1, k) ** 2).sum(axis)).sum()

    y, x, v = (t.to(dtype) for t in _point(problem, seed=7))
    y_, x_ = y.clone().requires_grad_(True), x.clone().requires_grad_(True)
    grad_y, = torch.autograd.grad(g(y_, x_), y_, create_graph=True)
    hv, jv = torch.autograd.grad(grad_y @ v, (y_, x_))

    def close(got, want):
        torch.testing.assert_close(got, want.detach(), rtol=tol, atol=tol)
    close(problem.grad_inner_y(y, x, idx), grad_y)
    close(problem.hvp(y, x, v, idx), hv)
    close(problem.cross(y, x, v, idx), jv)
    for got, want in zip(problem.inner_oracles(y, x, v, idx),
                         (grad_y, hv, jv)):
        close(got, want)
