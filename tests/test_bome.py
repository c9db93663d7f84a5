"""BOME: the guarded multiplier, the reported z and the oracle count."""
import math

import pytest
import torch

from conftest import run_steps


def test_step_is_finite_where_grad_q_vanishes(quadratic, make_solver):
    """At y = y*(x), y_hat = y and grad q = 0: without eps the multiplier is
    0 / 0 (the JAX benchmark's division); with eps it is 0 and the step is
    f's gradient step. (With c = 0, y*(0) = 0 exactly: the start.)"""
    quadratic.c.zero_()
    y, x = quadratic.inner_var0.clone(), quadratic.outer_var0.clone()
    assert torch.equal(quadratic.grad_inner_y(y, x), torch.zeros_like(y))
    solver = make_solver("BOME", quadratic, batch_size="full")
    run_steps(solver, 1)
    state = solver.state
    assert float(state.lmbda) == 0.0
    f_y, f_x = quadratic.grad_outer(y, x)
    assert f_y.norm() > 0
    torch.testing.assert_close(state.inner_var, y - solver.beta * f_y)
    torch.testing.assert_close(state.outer_var, x - solver.gamma * f_x)
    unguarded = make_solver("BOME", quadratic, batch_size="full", eps=0.0)
    run_steps(unguarded, 1)
    assert math.isnan(float(unguarded.state.lmbda))
    assert not torch.isfinite(unguarded.state.outer_var).all()


@pytest.mark.parametrize("phi", ["grad_norm", "value"])
def test_reports_z_and_counts_oracles(quadratic, make_solver, phi):
    solver = make_solver("BOME", quadratic, batch_size=16, n_inner_steps=4,
                         phi=phi)
    run_steps(solver, 3)
    result = solver.get_result()
    assert torch.equal(result["inner_var"], solver.state.z)
    for other in (solver.state.y_hat, solver.state.inner_var):
        assert not torch.equal(solver.state.z, other)
    # T steps of y_hat, grad f, grad g at y, grad_x g at y_hat, z's step
    assert result["oracle_counts"]["grad"] == 3 * (4 + 4)
    assert result["oracle_counts"]["hvp"] == 0
    assert result["oracle_counts"]["cross"] == 0


def test_y_hat_is_t_gradient_steps_from_y(quadratic, make_solver):
    solver = make_solver("BOME", quadratic, batch_size="full",
                         n_inner_steps=5)
    run_steps(solver, 2)
    y, x = solver.state.inner_var.clone(), solver.state.outer_var.clone()
    run_steps(solver, 1)
    want = y
    for _ in range(5):
        want = want - solver.beta * quadratic.grad_inner_y(want, x)
    torch.testing.assert_close(solver.state.y_hat, want)


def test_z_is_one_gradient_step_of_g_per_iteration(quadratic, make_solver):
    solver = make_solver("BOME", quadratic, batch_size="full",
                         n_inner_steps=5)
    run_steps(solver, 2)
    z, x = solver.state.z.clone(), solver.state.outer_var.clone()
    run_steps(solver, 1)
    want = z - solver.beta * quadratic.grad_inner_y(z, x)
    torch.testing.assert_close(solver.state.z, want)


def test_bad_phi(quadratic, make_solver):
    with pytest.raises(ValueError, match="phi"):
        make_solver("BOME", quadratic, phi="gap")
