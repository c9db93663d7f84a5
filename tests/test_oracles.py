"""Oracles: autograd against central finite differences, closed forms against
autograd, and the fused call against the separate ones (float64)."""
import pytest
import torch

from benchmark_utils.problems import autograd as oracles
from benchmark_utils.problems.base import BilevelProblem


class WeightedLogistic(BilevelProblem):
    """Small weighted multinomial logistic problem, autograd oracles only.

    g = mean_i sigmoid(x_i) CE(W; a_i, b_i) + reg/2 ||W||^2, f = mean CE on
    held-out samples.
    """

    def __init__(self, n=30, n_features=4, n_classes=3, seed=0):
        gen = torch.Generator().manual_seed(seed)
        kw = dict(generator=gen, dtype=torch.float64)
        self.a = torch.randn(n, n_features, **kw)
        self.b = torch.randint(n_classes, (n,), generator=gen)
        self.a_val = torch.randn(n, n_features, **kw)
        self.b_val = torch.randint(n_classes, (n,), generator=gen)
        self.shape = (n_features, n_classes)
        super().__init__(n, n, torch.zeros(n_features * n_classes,
                                           dtype=torch.float64),
                         torch.zeros(n, dtype=torch.float64))

    def _ce(self, inner_var, a, b):
        logits = a @ inner_var.view(self.shape)
        return torch.nn.functional.cross_entropy(logits, b, reduction="none")

    def inner(self, inner_var, outer_var, idx=None):
        idx = slice(None) if idx is None else idx
        ce = self._ce(inner_var, self.a[idx], self.b[idx])
        return (torch.sigmoid(outer_var[idx]) * ce).mean() \
            + 0.05 * inner_var @ inner_var

    def outer(self, inner_var, outer_var, idx=None):
        idx = slice(None) if idx is None else idx
        return self._ce(inner_var, self.a_val[idx], self.b_val[idx]).mean()


def fd_grad(fn, var, eps=1e-6):
    """Central finite differences of a scalar function of a 1-D tensor."""
    grad = torch.zeros_like(var)
    for k in range(var.numel()):
        e = torch.zeros_like(var)
        e[k] = eps
        grad[k] = (fn(var + e) - fn(var - e)) / (2 * eps)
    return grad


def random_point(problem, seed=1):
    gen = torch.Generator().manual_seed(seed)
    kw = dict(generator=gen, dtype=torch.float64)
    return (torch.randn(problem.dim_inner, **kw),
            torch.randn(problem.dim_outer, **kw),
            torch.randn(problem.dim_inner, **kw))


PROBLEMS = ["quadratic", "logistic"]


@pytest.fixture(params=PROBLEMS)
def problem(request, quadratic):
    return quadratic if request.param == "quadratic" else WeightedLogistic()


@pytest.mark.parametrize("idx", [None, torch.tensor([0, 3, 5, 7])])
def test_autograd_against_finite_differences(problem, idx):
    y, x, v = random_point(problem)
    for fn in (problem.inner, problem.outer):
        gy, gx = oracles.value_and_grads(fn, y, x, idx)[1:]
        torch.testing.assert_close(
            gy, fd_grad(lambda u: fn(u, x, idx), y), rtol=1e-6, atol=1e-8)
        torch.testing.assert_close(
            gx, fd_grad(lambda u: fn(y, u, idx), x), rtol=1e-6, atol=1e-8)
    # H v and J v are derivatives of <grad_y g, v>
    def inner_dot(yy, xx):
        return oracles.grad_y(problem.inner, yy, xx, idx) @ v
    torch.testing.assert_close(
        oracles.hvp(problem.inner, y, x, v, idx),
        fd_grad(lambda u: inner_dot(u, x), y), rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(
        oracles.cross(problem.inner, y, x, v, idx),
        fd_grad(lambda u: inner_dot(y, u), x), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("idx", [None, torch.tensor([1, 2, 9])])
def test_problem_oracles_against_autograd(problem, idx):
    """Closed forms (quadratic) or defaults (logistic) match autograd."""
    y, x, v = random_point(problem)
    close = dict(rtol=1e-6, atol=1e-10)
    for fn, grads, gy, gx in (
        (problem.inner, problem.grad_inner, problem.grad_inner_y,
         problem.grad_inner_x),
        (problem.outer, problem.grad_outer, problem.grad_outer_y,
         problem.grad_outer_x),
    ):
        ref_y, ref_x = oracles.value_and_grads(fn, y, x, idx)[1:]
        both = grads(y, x, idx)
        torch.testing.assert_close(both[0], ref_y, **close)
        torch.testing.assert_close(both[1], ref_x, **close)
        torch.testing.assert_close(gy(y, x, idx), ref_y, **close)
        torch.testing.assert_close(gx(y, x, idx), ref_x, **close)
    ref_hvp = oracles.hvp(problem.inner, y, x, v, idx)
    ref_cross = oracles.cross(problem.inner, y, x, v, idx)
    torch.testing.assert_close(problem.hvp(y, x, v, idx), ref_hvp, **close)
    torch.testing.assert_close(problem.cross(y, x, v, idx), ref_cross,
                               **close)
    # the fused call equals the separate ones
    grad, hvp, cross = problem.inner_oracles(y, x, v, idx)
    torch.testing.assert_close(grad, problem.grad_inner_y(y, x, idx), **close)
    torch.testing.assert_close(hvp, ref_hvp, **close)
    torch.testing.assert_close(cross, ref_cross, **close)


def test_oracles_do_not_track_gradients(quadratic):
    y, x, v = random_point(WeightedLogistic())
    problem = WeightedLogistic()
    outputs = (*problem.grad_inner(y, x), problem.hvp(y, x, v),
               *problem.inner_oracles(y, x, v))
    assert not any(t.requires_grad for t in outputs)


def test_unused_variable_gives_zero_gradient():
    problem = WeightedLogistic()
    y, x, _ = random_point(problem)
    # f does not depend on x: autograd reports None, the oracle a zero vector
    assert torch.equal(problem.grad_outer_x(y, x), torch.zeros_like(x))
