"""The shared solver loop: logging, budgets, divergence, counting,
determinism."""
import math
import time

import pytest
import torch
from benchopt.callback import _Callback

from benchmark_utils.solver.base import State, StochasticBilevelSolver
from benchmark_utils.solver.counting import CountingProblem
from conftest import run_steps


class ExplodingSolver(StochasticBilevelSolver):
    """Multiplies x by 1e10 each step, from 1: overflows to inf in float64
    at step 31. One gradient on one sample per step."""
    name = "exploding"
    parameters = {"batch_size": [64], "random_state": [0]}
    delay = 0.0

    def init_state(self):
        return State(inner_var=self.problem.inner_var0.clone(),
                     outer_var=self.problem.outer_var0 * 0 + 1.0)

    def step(self, state):
        time.sleep(self.delay)
        self.oracles.grad_inner_y(state.inner_var, state.outer_var,
                                  torch.arange(1))
        state.outer_var = state.outer_var * 1e10


class SteadySolver(ExplodingSolver):
    """The same work per step, and finite iterates."""

    def step(self, state):
        time.sleep(self.delay)
        self.oracles.grad_inner_y(state.inner_var, state.outer_var,
                                  torch.arange(1))


def make(cls, problem, **objective_params):
    solver = cls.get_instance()
    solver.set_objective(problem=problem, **objective_params)
    return solver


def logged_run(solver):
    calls = []

    def callback():
        calls.append(solver.get_result())
        return len(calls) < 10000
    solver.run(callback)
    return calls


def test_run_stops_when_iterate_is_not_finite(quadratic):
    solver = make(ExplodingSolver, quadratic, log_ratio=2.0)
    calls = logged_run(solver)
    # logged after iterations 1, 2, 4, 8, 16, then the non-finite 32
    assert [c["oracle_counts"]["n_iter"] for c in calls] == \
        [0, 1, 2, 4, 8, 16, 32]
    assert not torch.isfinite(calls[-1]["outer_var"]).all()
    assert torch.isfinite(calls[-2]["outer_var"]).all()
    # the replay names the iteration that overflowed
    assert solver.first_non_finite() == (31, 31)


def test_divergence_message_names_the_first_non_finite_iteration(
        quadratic, capsys):
    solver = make(ExplodingSolver, quadratic, log_ratio=2.0)
    criterion = solver.stopping_criterion.get_runner_instance(
        max_runs=10000, solver=solver, run_key=("d", "o", "exploding"))
    logged_run(solver)
    criterion._report_divergence({"objective_n_iter": 32, "time": 1.0})
    out = capsys.readouterr().out
    assert "exploding: diverged at iteration 31 (logged at iteration 32" \
        in out


@pytest.mark.parametrize("log_ratio", [1.1, 1.5])
def test_points_are_logged_on_a_geometric_grid_of_work(quadratic,
                                                       log_ratio):
    solver = make(SteadySolver, quadratic, log_ratio=log_ratio,
                  max_work=0.5)
    work = [c["oracle_counts"]["cost"] / (2 * quadratic.n_inner)
            for c in logged_run(solver)]
    per_step = 2 / (2 * quadratic.n_inner)
    assert work[:3] == [0, per_step, 2 * per_step]
    for before, after in zip(work[1:-1], work[2:-1]):
        # the first iteration at or past log_ratio times the last point
        assert log_ratio * before <= after < log_ratio * before + per_step
    # the budget: the run stops at the first iteration reaching it
    assert 0.5 <= work[-1] < 0.5 + per_step
    assert work[-2] < 0.5


def test_timeout_is_checked_after_every_iteration(bench, quadratic):
    """A slow step (0.1 s) with points far apart in work: the run stops
    at the first iteration past benchopt's deadline, not at the next
    logged point."""
    objective = bench.get_benchmark_objective().get_instance()
    objective.set_data(problem=quadratic)
    solver = SteadySolver.get_instance()
    solver.delay = 0.1
    solver.set_objective(**objective.get_objective())
    criterion = solver.stopping_criterion.get_runner_instance(
        max_runs=10000, timeout=0.5, solver=solver)
    meta = dict(dataset_name="d", objective_name="o", solver_name="s",
                idx_rep=0)
    callback = _Callback(objective, solver, meta, criterion)
    start = time.perf_counter()
    callback.start()
    solver.log_ratio = 1000.0  # one logged point after the first iteration
    solver.run(callback)
    elapsed = time.perf_counter() - start
    assert callback.status == "timeout"
    assert 5 <= solver.n_iter <= 7 and elapsed < 0.5 + 0.3


def test_interrupted_run_tells_how_to_recover(quadratic, capsys):
    # Ctrl-C raises KeyboardInterrupt wherever the run is: here in a step
    solver = ExplodingSolver.get_instance()
    solver.set_objective(problem=quadratic)
    solver.step = lambda state: (_ for _ in ()).throw(KeyboardInterrupt)
    with pytest.raises(KeyboardInterrupt):
        solver.run(lambda: True)
    err = capsys.readouterr().err
    assert "--collect" in err and "same command again" in err


def test_objective_reports_non_finite_iterates(bench, quadratic):
    objective = bench.get_benchmark_objective().get_instance()
    objective.set_data(problem=quadratic)
    ok = objective.evaluate_result(**objective.get_one_result())
    bad = objective.evaluate_result(
        inner_var=quadratic.inner_var0,
        outer_var=torch.full_like(quadratic.outer_var0, math.nan))
    assert set(ok) == set(bad)
    assert math.isinf(bad["value"]) and math.isnan(bad["suboptimality"])
    # the headline value is h(x), the solver's model's loss val_loss
    assert ok["value"] == pytest.approx(quadratic.value_function(
        quadratic.outer_var0))
    assert ok["val_loss"] == pytest.approx(float(quadratic.outer(
        quadratic.inner_var0, quadratic.outer_var0)))
    assert ok["inner_grad_norm"] == pytest.approx(float(
        quadratic.grad_inner_y(quadratic.inner_var0,
                               quadratic.outer_var0).norm()))


def test_counting_problem_counts_calls_and_samples(quadratic):
    counted = CountingProblem(quadratic)
    y, x = quadratic.inner_var0, quadratic.outer_var0
    idx = torch.arange(10)
    counted.grad_inner(y, x, idx)
    counted.inner_oracles(y, x, y, idx=idx)
    counted.grad_outer_y(y, x)
    counted.hvp(y, x, y, None)
    counted.inner(y, x, idx)
    # a fused call is three oracles, each processing the batch's samples;
    # a function value reads samples too, but is no oracle call
    assert counted.counts == dict(grad=3, hvp=2, cross=1, value=1,
                                  inner_samples=10 + 3 * 10 + 200 + 10,
                                  outer_samples=100,
                                  cost=(2 * 10 + 10 * (2 + 4 + 4) + 2 * 100
                                        + 4 * 200 + 10))
    # in gradients of the whole training set (200 samples)
    assert counted.work == pytest.approx(
        (10 + 10 * 5 + 100 + 2 * 200 + 5) / 200)
    assert counted.n_inner == quadratic.n_inner


def test_result_carries_oracle_counts(bench, quadratic, make_solver):
    solver = make_solver("Implicit-GD", quadratic)
    run_steps(solver, 3)
    objective = bench.get_benchmark_objective().get_instance()
    objective.set_data(problem=quadratic)
    result = objective.evaluate_result(**solver.get_result())
    assert result["n_iter"] == 3
    assert result["oracle_calls"] > 0 and result["work"] > 0


def test_same_random_state_gives_identical_iterates(solver_classes,
                                                     quadratic, make_solver):
    for name in solver_classes:
        results = []
        for _ in range(2):
            full_only = solver_classes[name].parameters["batch_size"] \
                == ["full"]
            solver = make_solver(name, quadratic, random_state=7,
                                 **({} if full_only else dict(batch_size=16)))
            run_steps(solver, 5)
            results.append(solver.get_result())
        for key in ("inner_var", "outer_var"):
            assert torch.equal(results[0][key], results[1][key]), name


@pytest.mark.parametrize("param, value", [
    ("batch_size", -1), ("random_state", -2), ("sampling", "none"),
])
def test_common_parameters_are_validated(param, value, solver_classes,
                                         quadratic, make_solver):
    with pytest.raises(ValueError, match=param):
        make_solver("SOBA", quadratic, **{param: value})


@pytest.mark.parametrize("device", ["tpu", "cuda:x", 3])
def test_bad_device(bench, device):
    dataset = next(d for d in bench.get_datasets() if d.name == "simulated")
    with pytest.raises(ValueError, match="device.*'cpu'"):
        dataset.get_instance(device=device).get_data()
