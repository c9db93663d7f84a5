"""Compiled iterations (``compile=True``,
benchmark_utils/solver/compiled_step.py) give the eager iterates and
oracle counts: for every solver that declares ``traceable_step``, and for
a step that calls every oracle, on the linear and the MLP hyper-cleaning
problems.

The data leave a last batch of one sample in both splits (97 = 24 x 4 + 1
training and 49 = 12 x 4 + 1 validation samples, batch 4): iterations
that draw it run eagerly, the others compiled. Solvers run with their
inner loops shortened (every ``n_*_steps`` parameter at most 1), so that
graphs stay small (each graph costs seconds to compile) and most
iterations draw full batches only."""
from pathlib import Path

import numpy as np
import pytest
import torch
from benchopt.benchmark import Benchmark

from benchmark_utils.problems.hyper_cleaning import (
    HyperCleaningProblem,
    make_hyper_cleaning,
)
from benchmark_utils.problems.networks import make_network_hyper_cleaning
from benchmark_utils.solver.base import COMMON_PARAMETERS
from benchmark_utils.solver.base import StochasticBilevelSolver as Base
from conftest import run_steps

ROOT = Path(__file__).resolve().parents[1]
BATCH_SIZE = 4
N_ITER = 26  # > 25 training batches an epoch: the batch of one comes

TRACEABLE = sorted(solver.name for solver in Benchmark(str(ROOT))
                   .get_solvers() if solver.traceable_step)


def small_data():
    """146 samples of 12 features in 4 classes: 97 to train, 49 to
    validate."""
    rng = np.random.default_rng(0)
    X, labels = rng.normal(size=(146, 12)), rng.integers(0, 4, 146)
    return X[:97], labels[:97], X[97:], labels[97:]


def linear_problem():
    return make_hyper_cleaning(*small_data(), n_classes=4,
                               dtype=torch.float64)


def mlp_problem():
    return make_network_hyper_cleaning("mlp", *small_data(), hidden=7,
                                       n_classes=4, reg=0.01,
                                       dtype=torch.float64)


class EveryOracle(Base):
    """A traceable step that calls every oracle once, each on its own
    batch, and moves (y, x, v) along sums of their results."""

    name = "EveryOracle"
    parameters = dict(COMMON_PARAMETERS)
    traceable_step = True

    def init_state(self):
        return self.start(v=torch.ones_like(self.problem.inner_var0))

    def step(self, state):
        y, x, v, o = state.inner_var, state.outer_var, state.v, self.oracles
        inner, outer = self.inner_batch, self.outer_batch
        g_y, g_x = o.grad_inner(y, x, inner())
        g_y2, hv, jv = o.inner_oracles(y, x, v, inner())
        f_y, f_x = o.grad_outer(y, x, outer())
        dy = g_y + g_y2 + o.grad_inner_y(y, x, inner())
        dv = hv + o.hvp(y, x, v, inner()) + f_y \
            + o.grad_outer_y(y, x, outer())
        dx = g_x + jv + o.cross(y, x, v, inner()) \
            + o.grad_inner_x(y, x, inner()) + f_x + o.grad_outer_x(y, x,
                                                                outer())
        y.sub_(dy, alpha=0.05)
        v.sub_(dv, alpha=0.01)
        x.sub_(dx, alpha=0.05)


def short_loops(solver_class):
    """Every ``n_*_steps`` parameter at min(its default, 1)."""
    return {k: min(v[0], 1) for k, v in solver_class.parameters.items()
            if k.startswith("n_") and k.endswith("_steps")}


def make(solver_class, problem, **params):
    solver = solver_class.get_instance(random_state=0, **params)
    solver.set_objective(problem=problem)
    solver.reset()
    return solver


def check_matches_eager(solver_class, problem, **params):
    """``N_ITER`` iterations eagerly and, after benchopt's warm-up,
    compiled: the same iterates and oracle counts."""
    params = dict(short_loops(solver_class), batch_size=BATCH_SIZE, **params)
    eager = make(solver_class, problem, compile=False, **params)
    run_steps(eager, N_ITER)
    fast = make(solver_class, problem, compile=True, **params)
    fast.warm_up()
    fast.reset()
    step = fast._compiled_step
    assert step.kernel is not None and not step.failed
    assert step.n_compiled == 1
    runs = step.n_runs
    run_steps(fast, N_ITER)
    assert step.n_compiled == 1  # nothing compiled after the warm-up
    # most iterations ran compiled, those that drew the batch of one eagerly
    assert N_ITER // 4 < step.n_runs - runs < N_ITER
    assert fast.get_result()["oracle_counts"] == \
        eager.get_result()["oracle_counts"]
    for key in ("inner_var", "outer_var"):
        expected = eager.get_result()[key]
        assert torch.isfinite(expected).all()
        assert not torch.equal(expected, getattr(problem, key + "0"))
        torch.testing.assert_close(fast.get_result()[key], expected,
                                   rtol=1e-9, atol=1e-12)


def test_some_solvers_are_traceable():
    assert {"SOBA", "F2SA"} <= set(TRACEABLE)


@pytest.mark.parametrize("name", TRACEABLE)
def test_compiled_iterations_match_eager(name, solver_classes):
    check_matches_eager(solver_classes[name], linear_problem(),
                        sampling="shuffle")


@pytest.mark.parametrize("problem", [linear_problem, mlp_problem])
def test_every_compiled_oracle_matches_eager(problem):
    check_matches_eager(EveryOracle, problem(), sampling="blocks")


def test_untraceable_step_runs_eagerly(solver_classes):
    """A step that changes a Python number in its state cannot be replayed
    by a compiled iteration: the solver warns and runs eagerly."""
    class Counting(solver_classes["SOBA"]):
        def init_state(self):
            state = super().init_state()
            state.count = 0
            return state

        def step(self, state):
            super().step(state)
            state.count += 1

    problem = linear_problem()
    results = []
    for compile_ in (False, True):
        solver = Counting.get_instance(batch_size=BATCH_SIZE,
                                       compile=compile_, sampling="blocks",
                                       random_state=0)
        solver.set_objective(problem=problem)
        solver.reset()
        if compile_:
            with pytest.warns(RuntimeWarning, match="running eagerly"):
                run_steps(solver, 12)
            assert solver._compiled_step.failed
        else:
            run_steps(solver, 12)
        results.append(solver)
    assert results[1].state.count == results[0].state.count == 12
    torch.testing.assert_close(results[1].state.outer_var,
                               results[0].state.outer_var, rtol=1e-12,
                               atol=0)


class BatchDependent(HyperCleaningProblem):
    """An oracle that takes a Python decision on a batch's values."""

    def grad_outer_y(self, inner_var, outer_var, idx=None):
        grad = super().grad_outer_y(inner_var, outer_var, idx)
        return grad * 2 if idx is not None and int(idx[0]) % 2 else grad


def test_untraceable_problem_runs_eagerly(make_solver):
    """A problem whose oracle takes a Python decision on a value cannot be
    traced: the solver warns and runs its eager iterations."""
    problem = BatchDependent.from_raw(*small_data(), n_classes=4,
                                      dtype=torch.float64)
    results = []
    for compile_ in (False, True):
        solver = make_solver("SOBA", problem, batch_size=BATCH_SIZE,
                             compile=compile_)
        if compile_:
            with pytest.warns(RuntimeWarning, match="running eagerly"):
                run_steps(solver, 12)
            assert solver._compiled_step.failed
        else:
            run_steps(solver, 12)
        results.append(solver.get_result())
    for key in ("inner_var", "outer_var"):
        assert torch.equal(results[1][key], results[0][key])


def test_only_traceable_solvers_compile(make_solver):
    """``compile=True`` compiles the iterations of a solver with
    ``traceable_step`` only, on CPU; benchopt's repetitions (the same
    problem set again) keep the compiled iteration."""
    problem = linear_problem()
    saba = make_solver("SABA", problem, compile=True)
    assert saba._compiled_step is None
    soba = make_solver("SOBA", problem, compile=True)
    step = soba._compiled_step
    soba.set_objective(problem=problem)
    assert soba._compiled_step is step
    soba.set_objective(problem=linear_problem())
    assert soba._compiled_step is not step


def test_compile_parameter_is_checked(make_solver):
    with pytest.raises(ValueError, match="compile must be True or False"):
        make_solver("SOBA", linear_problem(), compile="yes")
