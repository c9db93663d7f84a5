"""The simulated problem's closed forms."""
import pytest
import torch
from test_oracles import fd_grad

from benchmark_utils.problems.quadratic import QuadraticProblem


def test_inner_solution_is_stationary(quadratic):
    x = torch.randn(quadratic.dim_outer, dtype=torch.float64)
    y_star = quadratic.inner_solution(x)
    assert quadratic.grad_inner_y(y_star, x).norm() < 1e-12


def test_hypergradient_against_finite_differences(quadratic):
    x = torch.randn(quadratic.dim_outer, dtype=torch.float64)
    torch.testing.assert_close(
        quadratic.hypergradient(x),
        fd_grad(quadratic.value_function, x), rtol=1e-6, atol=1e-9)


def test_outer_star_is_the_minimizer(quadratic):
    x_star = quadratic.outer_star
    assert quadratic.hypergradient(x_star).norm() < 1e-12
    gen = torch.Generator().manual_seed(0)
    for _ in range(5):
        x = x_star + 0.1 * torch.randn(quadratic.dim_outer, generator=gen,
                                       dtype=torch.float64)
        assert quadratic.value_function(x) > quadratic.value_star


def test_inner_hessian_spectrum_matches_cond():
    problem = QuadraticProblem(n_inner=100, dim_inner=8, cond=50.0)
    hess = torch.stack([problem.hvp(None, None, e)
                        for e in torch.eye(8, dtype=torch.float64)])
    eigs = torch.linalg.eigvalsh(hess)
    assert eigs.max() / eigs.min() == pytest.approx(50.0, rel=1e-8)


def test_metrics_are_zero_at_the_solution(quadratic):
    x = quadratic.outer_star
    metrics = quadratic.metrics(quadratic.inner_solution(x), x)
    assert metrics["suboptimality"] == pytest.approx(0, abs=1e-12)
    assert metrics["hypergrad_norm"] < 1e-12
    assert metrics["inner_error"] < 1e-12


@pytest.mark.parametrize("kwargs, name", [
    (dict(n_inner=-1), "n_inner"),
    (dict(dim_outer=0), "dim_outer"),
    (dict(n_inner=5, dim_inner=10), "n_inner"),
    (dict(cond=0.5), "cond"),
    (dict(outer_reg=-1.0), "outer_reg"),
])
def test_invalid_parameters(kwargs, name):
    with pytest.raises(ValueError, match=name):
        QuadraticProblem(**kwargs)
