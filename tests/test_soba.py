import numpy as np
import pytest
import torch

from benchmark_utils.batches import SAMPLINGS
from conftest import relative_hypergrad, run_steps


def test_soba_full_batch_converges(quadratic, make_solver):
    solver = make_solver("SOBA", quadratic, batch_size="full", step_size=0.5,
                         outer_ratio=0.3)
    run_steps(solver, 1500)
    assert relative_hypergrad(quadratic, solver) < 1e-2


@pytest.mark.parametrize("sampling", SAMPLINGS)
def test_soba_minibatch_decreases_value(quadratic, make_solver, sampling):
    h0 = quadratic.value_function(quadratic.outer_var0)
    finals = []
    for seed in range(3):
        solver = make_solver("SOBA", quadratic, batch_size=16,
                             sampling=sampling, step_size=0.05,
                             outer_ratio=0.1,
                             random_state=seed)
        run_steps(solver, 2000)
        finals.append(quadratic.value_function(solver.state.outer_var))
    gap0 = h0 - quadratic.value_star
    assert np.mean(finals) - quadratic.value_star < 0.2 * gap0


def test_soba_v_tracks_linear_system_solution(quadratic, make_solver):
    solver = make_solver("SOBA", quadratic, batch_size="full", step_size=0.5,
                         outer_ratio=1e-12)
    run_steps(solver, 3000)
    y, x, v = solver.state.inner_var, solver.state.outer_var, solver.state.v
    hess = torch.stack([quadratic.hvp(y, x, e) for e in
                        torch.eye(quadratic.dim_inner, dtype=torch.float64)])
    v_star = -torch.linalg.solve(hess, quadratic.grad_outer_y(y, x))
    torch.testing.assert_close(v, v_star, rtol=1e-6, atol=1e-9)
