"""PZOBO: on a quadratic, y_T is affine in x, so each finite difference is
exactly the Jacobian of the unrolled map applied to u_q, and the direction
is ITD's through the projection (1/Q) sum_q u_q u_q^T."""
import pytest
import torch

from benchmark_utils.solver.unrolling import reverse_hypergradient, unroll
from conftest import run_steps


@pytest.mark.parametrize("n_directions", [1, 7])
def test_direction_is_itd_projected_on_the_gaussian_directions(
        quadratic, make_solver, n_directions):
    beta, n_inner = 0.5, 6
    solver = make_solver("PZOBO", quadratic, batch_size="full",
                         step_size=beta, n_inner_steps=n_inner,
                         n_directions=n_directions, mu=0.1)
    run_steps(solver, 1)
    y0 = solver.state.inner_var.clone()
    x0 = solver.state.outer_var.clone()
    # the full-batch samplers draw nothing: the generator gives the u_q
    gen = torch.Generator().manual_seed(0)
    for _ in range(n_directions):  # the first iteration's directions
        torch.randn(quadratic.dim_outer, generator=gen, dtype=torch.float64)
    u = torch.stack([torch.randn(quadratic.dim_outer, generator=gen,
                                 dtype=torch.float64)
                     for _ in range(n_directions)])
    run_steps(solver, 1)
    direction = (x0 - solver.state.outer_var) / solver.alpha

    y_T, history = unroll(quadratic, y0, x0, n_inner, beta, lambda: None)
    grad_y_f, grad_x_f = quadratic.grad_outer(y_T, x0)
    itd = reverse_hypergradient(quadratic, x0, history, grad_y_f, grad_x_f)
    want = grad_x_f + u.T @ (u @ (itd - grad_x_f)) / n_directions
    torch.testing.assert_close(solver.state.inner_var, y_T)
    torch.testing.assert_close(direction, want, rtol=1e-9, atol=1e-12)


def test_replays_use_the_recorded_batches(quadratic, make_solver):
    solver = make_solver("PZOBO", quadratic, batch_size=16, n_inner_steps=3,
                         n_directions=4)
    run_steps(solver, 2)
    # 3 recorded draws per iteration, replayed, never drawn again
    assert len(solver.recorder.batches) == 3
    counts = solver.get_result()["oracle_counts"]
    assert counts["grad"] == 2 * ((4 + 1) * 3 + 1)
    assert counts["hvp"] == counts["cross"] == 0
    assert counts["inner_samples"] == 2 * (4 + 1) * 3 * 16
