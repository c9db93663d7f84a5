"""STABLE: the y correction follows y*(x), the STORM recursion of the
dense estimates, the projection, and the size guard."""
import pytest
import torch

from benchmark_utils.problems.autograd import dense_second_order
from benchmark_utils.problems.quadratic import QuadraticProblem
from conftest import run_steps


def test_correction_moves_y_onto_y_star_of_the_new_x(quadratic,
                                                     make_solver):
    """From y = y*(x) with exact (full-batch) matrices, one step lands
    exactly on y*(x_new): the correction is -H^{-1} J^T (x_new - x),
    outside the beta bracket (inside it, it would be scaled by beta)."""
    solver = make_solver("STABLE", quadratic, batch_size="full",
                         step_size=0.3, outer_ratio=2.0)
    x = quadratic.outer_var0 + 0.1
    solver.state.outer_var = x.clone()
    solver.state.inner_var = quadratic.inner_solution(x)
    run_steps(solver, 1)
    x_new = solver.state.outer_var
    assert (x_new - x).norm() > 1e-2
    torch.testing.assert_close(solver.state.inner_var,
                               quadratic.inner_solution(x_new))
    # and x moved along the exact hypergradient
    torch.testing.assert_close(x_new, x - solver.outer_ratio
                               * solver.step_size
                               * quadratic.hypergradient(x))


def test_storm_recursion_and_projection(make_solver):
    """Minibatch: the estimates follow (1 - tau)(H - A') + A on one batch,
    then the projection clamps the eigenvalues at the floor."""
    problem = QuadraticProblem(n_inner=40, n_outer=20, dim_inner=6,
                               dim_outer=3)
    floor = 0.3  # above the smallest eigenvalues of the batch Hessians
    solver = make_solver("STABLE", problem, batch_size=8, tau=0.4,
                         hessian_floor=floor)
    run_steps(solver, 2)
    state = solver.state
    hess, cross = state.hess.clone(), state.cross.clone()
    (y_prev, x_prev), y, x = state.previous, state.inner_var, \
        state.outer_var
    twin = make_solver("STABLE", problem, batch_size=8, tau=0.4,
                       hessian_floor=floor)
    run_steps(twin, 2)
    batch = twin.inner_batch()  # the batch of the third step
    run_steps(solver, 1)
    a, b = dense_second_order(problem.inner, y, x, batch)
    a_prev, b_prev = dense_second_order(problem.inner, y_prev, x_prev,
                                        batch)
    raw = 0.6 * (hess - a_prev) + a
    vals, vecs = torch.linalg.eigh(raw)
    assert vals[0] < floor
    torch.testing.assert_close(state.hess,
                               vecs @ torch.diag(vals.clamp(min=floor))
                               @ vecs.T)
    torch.testing.assert_close(state.cross, 0.6 * (cross - b_prev) + b)


def test_counts_dense_products(quadratic, make_solver):
    solver = make_solver("STABLE", quadratic, batch_size=16)
    run_steps(solver, 3)
    counts = solver.get_result()["oracle_counts"]
    d = quadratic.dim_inner
    assert counts["grad"] == 3 * 2
    assert counts["hvp"] == counts["cross"] == d + 2 * 2 * d


def test_skipped_above_max_dense(solver_classes, quadratic):
    solver = solver_classes["STABLE"].get_instance(max_dense=100)
    skip, reason = solver.skip(problem=quadratic)
    assert skip
    assert "d (d + p) = 150" in reason and "d = 10" in reason
    assert "p = 5" in reason and "max_dense = 100" in reason
    solver = solver_classes["STABLE"].get_instance(max_dense=150)
    assert solver.skip(problem=quadratic) == (False, None)


@pytest.mark.parametrize("bad", [dict(tau=0.0), dict(tau=1.5),
                                 dict(schedule="sqrt"),
                                 dict(hessian_floor=0.0)])
def test_bad_parameters(quadratic, make_solver, bad):
    with pytest.raises(ValueError, match=list(bad)[0]):
        make_solver("STABLE", quadratic, **bad)
