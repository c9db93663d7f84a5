"""Optuna baseline: improves h from x0 on a small quadratic, is seeded, and
is skipped where x has too many coordinates."""
import pytest
import torch

from benchmark_utils.problems.quadratic import QuadraticProblem
from conftest import run_steps

pytest.importorskip("optuna")


@pytest.fixture
def small():
    return QuadraticProblem(n_inner=100, n_outer=50, dim_inner=5,
                            dim_outer=2, cond=10.0, random_state=0)


def test_improves_h_and_reports_the_best_trial(small, make_solver):
    solver = make_solver("Optuna", small, random_state=0)
    run_steps(solver, 1)  # the enqueued start
    result = solver.get_result()
    assert torch.equal(result["outer_var"], small.outer_var0)
    h0 = small.value_function(small.outer_var0)
    run_steps(solver, 40)
    result = solver.get_result()
    h = small.value_function(result["outer_var"])
    assert h < h0 - 0.3 * (h0 - small.value_star)
    # the reported pair is (y(x), x), y(x) solved to inner_tol
    torch.testing.assert_close(result["inner_var"],
                               small.inner_solution(result["outer_var"]),
                               rtol=0, atol=1e-6)
    assert solver.best_value == pytest.approx(float(small.outer(
        result["inner_var"], result["outer_var"])))
    assert result["oracle_counts"]["grad"] > 0


@pytest.mark.parametrize("sampler", ["tpe", "random"])
def test_deterministic_given_the_seed(small, make_solver, sampler):
    def trials(seed):
        solver = make_solver("Optuna", small, sampler=sampler,
                             random_state=seed)
        run_steps(solver, 12)
        return [t.params for t in solver.study.trials]
    assert trials(3) == trials(3)
    assert trials(3) != trials(4)


def test_skipped_above_max_dim(solver_classes, small):
    solver = solver_classes["Optuna"].get_instance(max_dim=1)
    skip, reason = solver.skip(problem=small)
    assert skip and "p = 2 > max_dim = 1" in reason
    solver = solver_classes["Optuna"].get_instance()
    assert solver.skip(problem=small) == (False, None)


def test_box_contains_the_start(make_solver):
    problem = QuadraticProblem(n_inner=100, n_outer=50, dim_inner=5,
                               dim_outer=2)
    problem.outer_var0 = torch.tensor([-8.5, 0.0], dtype=torch.float64)
    solver = make_solver("Optuna", problem)
    assert solver.box == [(-8.5, 5.0), (-5.0, 5.0)]
