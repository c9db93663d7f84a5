import torch

from conftest import run_steps


def test_soba_v_tracks_linear_system_solution(quadratic, make_solver):
    solver = make_solver("SOBA", quadratic, batch_size="full", step_size=0.5,
                         outer_ratio=1e-12)
    run_steps(solver, 3000)
    y, x, v = solver.state.inner_var, solver.state.outer_var, solver.state.v
    hess = torch.stack([quadratic.hvp(y, x, e) for e in
                        torch.eye(quadratic.dim_inner, dtype=torch.float64)])
    v_star = -torch.linalg.solve(hess, quadratic.grad_outer_y(y, x))
    torch.testing.assert_close(v, v_star, rtol=1e-6, atol=1e-9)
