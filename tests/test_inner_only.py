"""The Inner-only baseline: y*(x0) with x fixed."""
import pytest
import torch

from conftest import run_steps


def test_inner_only_trains_inner_model_at_start(quadratic, make_solver):
    solver = make_solver("Inner-Only", quadratic)
    run_steps(solver, 10)
    result = solver.get_result()
    assert torch.equal(result["outer_var"], quadratic.outer_var0)
    y_star = quadratic.inner_solution(quadratic.outer_var0)
    assert (result["inner_var"] - y_star).norm() <= 1e-8 * y_star.norm()
    # nothing moves once y*(x0) is reached
    run_steps(solver, 2)
    assert torch.allclose(solver.get_result()["inner_var"],
                          result["inner_var"], rtol=0, atol=1e-12)


def test_inner_only_is_full_batch(quadratic, make_solver):
    with pytest.raises(ValueError, match="batch_size"):
        make_solver("Inner-Only", quadratic, batch_size=16)
