"""FSLA (solvers/fsla.py) and the STORM helper."""
import pytest
import torch

from benchmark_utils.solver.variance_reduction import storm_update
from conftest import relative_hypergrad, run_steps


def test_fsla_full_batch_sqrt_schedule(quadratic, make_solver):
    # The default "sqrt" schedule also gets there; budget 1000 iterations.
    solver = make_solver("FSLA", quadratic, batch_size="full",
                         step_size=1.0, outer_ratio=0.3)
    run_steps(solver, 1000)
    assert relative_hypergrad(quadratic, solver) < 1e-2




def test_storm_update_reduces_to_plain_estimator():
    d = torch.tensor([1., 2.])
    g_new, g_old = torch.tensor([3., 5.]), torch.tensor([0., 1.])
    assert torch.equal(storm_update(d.clone(), g_new, g_old, 1.0), g_new)
    assert torch.equal(storm_update(d.clone(), g_new, None, 1), g_new)
    # d <- g_new + (1 - eta) (d - g_old)
    torch.testing.assert_close(storm_update(d.clone(), g_new, g_old, 0.25),
                               torch.tensor([3.75, 5.75]))


def _record_batches(solver):
    draws = []
    inner, outer = solver.inner_batch, solver.outer_batch
    solver.inner_batch = lambda: draws.append(inner()) or draws[-1]
    solver.outer_batch = lambda: draws.append(outer()) or draws[-1]
    return draws


@pytest.mark.parametrize("momentum", [0.3, 1.0])
def test_fsla_step_matches_hand_computation(quadratic, make_solver,
                                            momentum):
    p = quadratic
    solver = make_solver("FSLA", p, batch_size=16, step_size=0.5,
                         outer_ratio=0.4, hia_step=0.3, momentum=momentum,
                         schedule="constant")
    run_steps(solver, 3)  # so that v != 0 and d carries history
    st = solver.state
    x, y, v, d = (st.outer_var.clone(), st.inner_var.clone(), st.v.clone(),
                  st.d.clone())
    draws = _record_batches(solver)
    run_steps(solver, 1)
    xi1, xi2, xi3, xi4, xi5 = draws
    assert len(xi1) <= 16 and len(xi2) <= 16
    tau, alpha, beta = 0.5, 0.2, 0.3
    x_new = x - alpha * d
    y_new = y - tau * p.grad_inner_y(y, x_new, xi1)
    v_new = beta * p.grad_outer_y(y, x_new, xi2) + v \
        - beta * p.hvp(y, x_new, v, xi3)
    g_new = p.grad_outer_x(y_new, x_new, xi4) \
        - p.cross(y_new, x_new, v_new, xi5)
    # the correction: same estimator, same batches, previous point
    g_old = p.grad_outer_x(y, x, xi4) - p.cross(y, x, v, xi5)
    d_new = g_new + (1 - momentum) * (d - g_old)
    for got, want in [(st.outer_var, x_new), (st.inner_var, y_new),
                      (st.v, v_new), (st.d, d_new)]:
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    if momentum == 1:
        torch.testing.assert_close(st.d, g_new, rtol=1e-12, atol=1e-12)
        assert solver.oracles.counts["cross"] == 4  # no g_old computed


def test_fsla_sqrt_schedule_and_initial_direction(quadratic, make_solver):
    p = quadratic
    solver = make_solver("FSLA", p, batch_size="full", step_size=0.5,
                         outer_ratio=0.4, momentum=1.0)
    x0, y0 = p.outer_var0, p.inner_var0
    # d0 = plain estimate at (x0, y0, v0 = 0): grad_x f (J v0 = 0)
    torch.testing.assert_close(solver.state.d, p.grad_outer_x(y0, x0))
    run_steps(solver, 1)
    # k = 1: step sizes scaled by 1 / sqrt(k + 1)
    s = 2 ** -0.5
    x1 = x0 - 0.2 * s * p.grad_outer_x(y0, x0)
    torch.testing.assert_close(solver.state.outer_var, x1)
    torch.testing.assert_close(solver.state.inner_var,
                               y0 - 0.5 * s * p.grad_inner_y(y0, x1))


@pytest.mark.parametrize("params, name", [
    (dict(step_size=-0.1), "step_size"),
    (dict(outer_ratio=0.0), "outer_ratio"),
    (dict(hia_step=-1.0), "hia_step"),
    (dict(momentum=0.0), "momentum"),
    (dict(momentum=1.5), "momentum"),
    (dict(schedule="linear"), "schedule"),
    (dict(batch_size=2.5), "batch_size"),
])
def test_fsla_invalid_parameters(quadratic, make_solver, params, name):
    with pytest.raises(ValueError, match=name):
        make_solver("FSLA", quadratic, **params)
