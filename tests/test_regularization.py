"""RegularizationProblem: closed-form oracles vs autograd, sparse paths."""
import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from benchmark_utils.problems import autograd as oracles
from benchmark_utils.problems.regularization import RegularizationProblem

RTOL = 1e-6
ATOL = 1e-12


def _random_data(n_classes, seed=0, n=40, n_val=25, n_features=9):
    rng = np.random.default_rng(seed)

    def design(n_rows):
        X = rng.standard_normal((n_rows, n_features))
        return X * (rng.random((n_rows, n_features)) < 0.5)

    def labels(n_rows):
        lab = np.concatenate([np.arange(n_classes),
                              rng.integers(0, n_classes, n_rows - n_classes)])
        return 2 * lab - 1 if n_classes == 2 else lab  # binary: -1 / +1

    return (design(n), labels(n), design(n_val), labels(n_val), design(15),
            labels(15))


def _as(layout, X):
    if layout == "dense":
        return X
    if layout == "scipy":
        return sp.csr_matrix(X)
    if layout == "torch_coo":
        return torch.from_numpy(X).to_sparse()
    return torch.from_numpy(X).to_sparse_csr()


def _problem(n_classes, penalty, layout="dense", **kwargs):
    X, y, Xv, yv, Xt, yt = _random_data(n_classes)
    return RegularizationProblem(_as(layout, X), y, _as(layout, Xv), yv,
                                 _as(layout, Xt), yt, penalty=penalty,
                                 dtype=torch.float64, **kwargs)


def _point(problem, seed=1):
    gen = torch.Generator().manual_seed(seed)

    def randn(n):
        return torch.randn(n, generator=gen, dtype=torch.float64)

    return (randn(problem.dim_inner), 0.5 * randn(problem.dim_outer),
            randn(problem.dim_inner))


def _close(actual, expected):
    torch.testing.assert_close(actual, expected, rtol=RTOL, atol=ATOL)


CASES = [(k, pen, layout) for k in (2, 3) for pen in ("feature", "class")
         for layout in ("dense", "scipy")]
BATCHES = [None, torch.tensor([0, 3, 3, 7, 39]), torch.tensor([5])]


@pytest.mark.parametrize("n_classes, penalty, layout", CASES)
@pytest.mark.parametrize("idx", BATCHES, ids=["full", "batch", "single"])
def test_oracles_match_autograd(n_classes, penalty, layout, idx):
    problem = _problem(n_classes, penalty, layout)
    y, x, v = _point(problem)
    out_idx = None if idx is None else idx.clamp(max=problem.n_outer - 1)

    _, gy, gx = oracles.value_and_grads(problem.inner, y, x, idx)
    _close(problem.grad_inner(y, x, idx)[0], gy)
    _close(problem.grad_inner(y, x, idx)[1], gx)
    _close(problem.grad_inner_y(y, x, idx), gy)
    _close(problem.grad_inner_x(y, x, idx), gx)

    _, fy, fx = oracles.value_and_grads(problem.outer, y, x, out_idx)
    _close(problem.grad_outer(y, x, out_idx)[0], fy)
    _close(problem.grad_outer(y, x, out_idx)[1], fx)
    _close(problem.grad_outer_y(y, x, out_idx), fy)
    _close(problem.grad_outer_x(y, x, out_idx), fx)

    ref = oracles.inner_oracles(problem.inner, y, x, v, idx)
    _close(problem.hvp(y, x, v, idx), ref[1])
    _close(problem.cross(y, x, v, idx), ref[2])
    for got, expected in zip(problem.inner_oracles(y, x, v, idx), ref):
        _close(got, expected)


@pytest.mark.parametrize("n_classes, penalty, layout", CASES)
def test_fused_equals_separate(n_classes, penalty, layout):
    problem = _problem(n_classes, penalty, layout)
    y, x, v = _point(problem, seed=3)
    for idx in (None, torch.tensor([1, 2, 30])):
        grad, hv, jv = problem.inner_oracles(y, x, v, idx)
        _close(grad, problem.grad_inner_y(y, x, idx))
        _close(hv, problem.hvp(y, x, v, idx))
        _close(jv, problem.cross(y, x, v, idx))


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("penalty", ["feature", "class"])
def test_sparse_layouts_agree_with_dense(n_classes, penalty):
    dense = _problem(n_classes, penalty, "dense")
    y, x, v = _point(dense, seed=5)
    for layout in ("scipy", "torch_coo", "torch_csr"):
        problem = _problem(n_classes, penalty, layout)
        assert problem.splits["train"].design.sparse
        assert problem.splits["train"].design.X.layout == torch.sparse_csr
        for idx in (None, torch.tensor([4, 0, 4, 11])):
            _close(problem.inner(y, x, idx), dense.inner(y, x, idx))
            _close(problem.outer(y, x, idx), dense.outer(y, x, idx))
            for got, expected in zip(problem.inner_oracles(y, x, v, idx),
                                     dense.inner_oracles(y, x, v, idx)):
                _close(got, expected)
            _close(problem.grad_outer_y(y, x, idx),
                   dense.grad_outer_y(y, x, idx))
        assert problem.metrics(y, x) == pytest.approx(dense.metrics(y, x))


def test_empty_rows_in_sparse_batch():
    X, y, Xv, yv, _, _ = _random_data(3)
    X[[2, 5]] = 0  # rows with no stored entry
    problem = RegularizationProblem(sp.csr_matrix(X), y, Xv, yv,
                                    dtype=torch.float64)
    dense = RegularizationProblem(X, y, Xv, yv, dtype=torch.float64)
    w, x, v = _point(problem)
    idx = torch.tensor([2, 5, 5, 1])
    for got, expected in zip(problem.inner_oracles(w, x, v, idx),
                             dense.inner_oracles(w, x, v, idx)):
        _close(got, expected)


def test_shapes_start_and_losses():
    binary = _problem(2, "class")
    assert binary.binary and binary.dim_inner == 9 and binary.dim_outer == 1
    multi = _problem(3, "feature")
    assert multi.dim_inner == 27 and multi.dim_outer == 9
    assert _problem(3, "class").dim_outer == 3
    assert (multi.n_inner, multi.n_outer) == (40, 25)
    assert not multi.inner_var0.any() and not multi.outer_var0.any()
    # At W = 0 every class is equally likely: CE = log(K).
    _close(binary.inner(binary.inner_var0, binary.outer_var0),
           torch.tensor(math.log(2), dtype=torch.float64))
    _close(multi.outer(multi.inner_var0, multi.outer_var0),
           torch.tensor(math.log(3), dtype=torch.float64))
    assert RegularizationProblem(*_random_data(3)).dtype == torch.float32
    shifted = _problem(3, "feature", outer_init=-2.0)
    assert (shifted.outer_var0 == -2).all()


def test_loss_matches_sklearn_log_loss():
    from sklearn.metrics import log_loss
    problem = _problem(3, "feature")
    y, x, _ = _point(problem)
    X, labels = _random_data(3)[:2]
    Z = X @ y.view(9, 3).numpy()
    P = np.exp(Z - Z.max(1, keepdims=True))
    P /= P.sum(1, keepdims=True)
    penalty = 0.5 * float((x.exp()[:, None] * y.view(9, 3) ** 2).sum())
    assert float(problem.inner(y, x)) == pytest.approx(
        log_loss(labels, P) + penalty, rel=1e-10)


def test_metrics_are_fractions_and_value_function():
    problem = _problem(3, "feature", value_function=True)
    y, x, _ = _point(problem)
    metrics = problem.metrics(y, x)
    assert set(metrics) == {"val_accuracy", "test_accuracy", "value_function"}
    for name in ("val_accuracy", "test_accuracy"):
        assert 0 <= metrics[name] <= 1
    # value_function = f at the inner solution, which has a zero gradient.
    y_star = problem._y_star
    assert float(problem.grad_inner_y(y_star, x).norm()) < 1e-6
    assert metrics["value_function"] == pytest.approx(
        float(problem.outer(y_star, x)))
    # Accuracy of the exact predictions.
    W = y.view(9, 3)
    X, labels = _random_data(3)[2:4]
    expected = float(((X @ W.numpy()).argmax(1) == labels).mean())
    assert metrics["val_accuracy"] == pytest.approx(expected)
    assert "value_function" not in _problem(2, "class").metrics(y[:9], x[:1])


def test_invalid_arguments():
    X, y, Xv, yv, _, _ = _random_data(3)
    with pytest.raises(ValueError, match="penalty"):
        RegularizationProblem(X, y, Xv, yv, penalty="sample")
    with pytest.raises(ValueError, match="y_val"):
        RegularizationProblem(X, y, Xv, yv + 10)
    with pytest.raises(ValueError, match="columns"):
        RegularizationProblem(X, y, Xv[:, :4], yv)
    with pytest.raises(ValueError, match="at least 2"):
        RegularizationProblem(X, np.zeros(len(y)), Xv, yv * 0)
    for outer_init in (math.nan, math.inf, "abc", None):
        with pytest.raises(ValueError, match="outer_init.*finite"):
            RegularizationProblem(X, y, Xv, yv, outer_init=outer_init)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("layout", ["dense", "scipy"])
def test_cuda_matches_cpu(layout):
    cpu = _problem(3, "feature", layout)
    gpu = _problem(3, "feature", layout, device="cuda")
    y, x, v = _point(cpu)
    idx = torch.tensor([0, 3, 3, 7])
    for batch in (None, idx):
        got = gpu.inner_oracles(y.cuda(), x.cuda(), v.cuda(),
                                None if batch is None else batch.cuda())
        for g, expected in zip(got, cpu.inner_oracles(y, x, v, batch)):
            _close(g.cpu(), expected)
    assert gpu.metrics(y.cuda(), x.cuda()) == pytest.approx(
        cpu.metrics(y, x))


@pytest.mark.parametrize("layout", ["dense", "scipy"])
def test_solved_inner_start(layout):
    zero = _problem(3, "feature", layout, outer_init=-1.0)
    solved = _problem(3, "feature", layout, outer_init=-1.0,
                      inner_init="solved", inner_tol=1e-10)
    assert not zero.inner_var0.any()
    x0 = solved.outer_var0
    assert torch.equal(x0, zero.outer_var0)
    # y*(x0): the full inner gradient vanishes there, and nowhere near 0
    assert float(solved.grad_inner_y(solved.inner_var0, x0).norm()) < 1e-9
    assert float(zero.grad_inner_y(zero.inner_var0, x0).norm()) > 1e-2
    assert solved.inner_init_grad_norm < 1e-9
    # the value function's first solve starts from it: h(x0) = f(x0, y0)
    value, _ = solved.value_function(x0, tol=1e-10)
    assert value == pytest.approx(
        float(solved.outer(solved.inner_var0, x0)), rel=1e-9)
    assert value == pytest.approx(zero.value_function(x0, tol=1e-10)[0],
                                  rel=1e-7)


def test_invalid_inner_init():
    X, y, Xv, yv, _, _ = _random_data(3)
    with pytest.raises(ValueError, match="inner_init.*'zero', 'solved'"):
        RegularizationProblem(X, y, Xv, yv, inner_init="warm")
