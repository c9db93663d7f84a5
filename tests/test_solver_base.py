"""The shared solver loop: callbacks, divergence, counting, determinism."""
import math

import pytest
import torch

from benchmark_utils.solver.base import State, StochasticBilevelSolver
from benchmark_utils.solver.counting import CountingProblem
from conftest import run_steps


class ExplodingSolver(StochasticBilevelSolver):
    """Multiplies x by 10 each step: overflows to inf in float64."""
    name = "exploding"
    parameters = {"batch_size": [64], "eval_freq": [50],
                  "random_state": [0]}

    def init_state(self):
        return State(inner_var=self.problem.inner_var0.clone(),
                     outer_var=self.problem.outer_var0 + 1.0)

    def step(self, state):
        state.outer_var = state.outer_var * 1e10


def test_run_stops_when_iterate_is_not_finite(quadratic):
    solver = ExplodingSolver.get_instance()
    solver.set_objective(problem=quadratic)
    calls = []

    def callback():
        calls.append(solver.get_result())
        return len(calls) < 100
    solver.run(callback)
    # the initial callback, one block of eval_freq steps, then one more call
    # that logs the non-finite point before stopping
    assert len(calls) == 2 and solver.n_iter == 50
    assert not torch.isfinite(calls[-1]["outer_var"]).all()
    assert not torch.isfinite(solver.get_result()["outer_var"]).all()


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
    assert ok["value"] == pytest.approx(float(quadratic.outer(
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
    counted.inner(y, x, idx)  # a function value is no oracle call
    # a fused call is three oracles, each processing the batch's samples
    assert counted.counts == dict(grad=3, hvp=2, cross=1,
                                  inner_samples=10 + 3 * 10 + 200,
                                  outer_samples=100)
    assert counted.n_inner == quadratic.n_inner


def test_result_carries_oracle_counts(bench, quadratic, make_solver):
    solver = make_solver("Implicit-GD", quadratic)
    run_steps(solver, 3)
    objective = bench.get_benchmark_objective().get_instance()
    objective.set_data(problem=quadratic)
    result = objective.evaluate_result(**solver.get_result())
    assert result["n_iter"] == 3
    assert result["oracle_calls"] > 0 and result["epochs"] > 0


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
    ("eval_freq", 0), ("batch_size", -1), ("random_state", -2),
])
def test_common_parameters_are_validated(param, value, solver_classes,
                                         quadratic, make_solver):
    with pytest.raises(ValueError, match=param):
        make_solver("Implicit-GD", quadratic, **{param: value})


@pytest.mark.parametrize("device", ["tpu", "cuda:x", 3])
def test_bad_device(bench, device):
    dataset = next(d for d in bench.get_datasets() if d.name == "simulated")
    with pytest.raises(ValueError, match="device.*'cpu'"):
        dataset.get_instance(device=device).get_data()
