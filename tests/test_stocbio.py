"""StocBiO (solvers/stocbio.py) and the Neumann series helper."""
import pytest
import torch

from benchmark_utils.problems.implicit import neumann
from conftest import run_steps


def test_neumann_converges_to_inverse_hessian(quadratic):
    y, x = quadratic.inner_var0, quadratic.outer_var0
    hess = torch.stack([quadratic.hvp(y, x, e)
                        for e in torch.eye(quadratic.dim_inner,
                                           dtype=torch.float64)], dim=1)
    b = torch.randn(quadratic.dim_inner, dtype=torch.float64,
                    generator=torch.Generator().manual_seed(0))
    b_copy = b.clone()
    target = torch.linalg.solve(hess, b)
    errors = []
    for n_steps in (0, 10, 50, 100, 400):
        calls = []

        def hvp(p):
            calls.append(1)
            return quadratic.hvp(y, x, p)
        approx = neumann(hvp, b, n_steps, step=1.0)
        assert len(calls) == n_steps  # one Hessian-vector product per term
        errors.append(float((approx - target).norm() / target.norm()))
    assert all(e1 > e2 for e1, e2 in zip(errors, errors[1:]))
    assert errors[-1] < 1e-6
    assert torch.equal(b, b_copy)  # b is not modified
    # StocBiO's v = -neumann(...) approximates -H^{-1} b
    assert torch.allclose(-approx, -target, atol=1e-6 * target.norm())


def test_neumann_uses_fresh_batch_per_term(quadratic, make_solver):
    solver = make_solver("StocBiO", quadratic, batch_size=16,
                         n_inner_steps=3, n_neumann_steps=4)
    draws = []
    sampler = solver.inner_batch
    solver.inner_batch = lambda: draws.append(sampler()) or draws[-1]
    run_steps(solver, 2)
    counts = solver.oracles.counts
    # per iteration: T inner gradients + 1 outer gradient, Q HVPs, 1 cross
    assert counts["grad"] == 2 * (3 + 1)
    assert counts["hvp"] == 2 * 4
    assert counts["cross"] == 2 * 1
    # a fresh inner batch for every inner oracle call (T + Q + 1), each of
    # which processes its batch once
    assert len(draws) == 2 * (3 + 4 + 1)
    assert counts["inner_samples"] == sum(len(idx) for idx in draws)


@pytest.mark.parametrize("params, name", [
    (dict(step_size=-0.1), "step_size"),
    (dict(outer_ratio=0), "outer_ratio"),
    (dict(step_size=float("inf")), "step_size"),
    (dict(step_size=float("nan")), "step_size"),
    (dict(n_inner_steps=-1), "n_inner_steps"),
    (dict(n_inner_steps=0), "n_inner_steps"),  # y would never move
    (dict(n_neumann_steps=1.5), "n_neumann_steps"),
    (dict(neumann_step=-1.0), "neumann_step"),
    (dict(batch_size=0), "batch_size"),
    (dict(batch_size="half"), "batch_size"),
])
def test_stocbio_invalid_parameters(quadratic, make_solver, params, name):
    with pytest.raises(ValueError, match=name):
        make_solver("StocBiO", quadratic, **params)


def test_default_neumann_step_is_inverse_hessian_bound(quadratic,
                                                       make_solver):
    solver = make_solver("StocBiO", quadratic)
    hess = torch.stack([quadratic.hvp(quadratic.inner_var0,
                                      quadratic.outer_var0, e)
                        for e in torch.eye(quadratic.dim_inner,
                                           dtype=torch.float64)])
    top = float(torch.linalg.eigvalsh(hess)[-1])
    assert solver.eta == pytest.approx(1 / top, rel=1e-9)
