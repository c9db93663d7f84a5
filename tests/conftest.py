import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmark_utils.problems.quadratic import QuadraticProblem  # noqa: E402

_DISCOVERED = {}


def benchmark():
    """benchopt's Benchmark of this folder (built once)."""
    if "benchmark" not in _DISCOVERED:
        from benchopt.benchmark import Benchmark
        _DISCOVERED["benchmark"] = Benchmark(str(ROOT))
    return _DISCOVERED["benchmark"]


def discovered_solvers():
    """{name: class} of every solver benchopt discovers in solvers/."""
    if "solvers" not in _DISCOVERED:
        _DISCOVERED["solvers"] = {s.name: s
                                  for s in benchmark().get_solvers()}
    return _DISCOVERED["solvers"]


def pytest_generate_tests(metafunc):
    # A test with a ``solver_name`` argument runs once per discovered
    # solver: a new solver file is checked without editing any list.
    if "solver_name" in metafunc.fixturenames:
        metafunc.parametrize("solver_name", sorted(discovered_solvers()))


def _discovered_solvers():
    from benchopt.benchmark import Benchmark
    return sorted(s.name for s in Benchmark(str(ROOT)).get_solvers())


#: The solvers benchopt discovers in solvers/, for tests that concern every
#: solver (never a hand-kept list).
SOLVER_NAMES = _discovered_solvers()


@pytest.fixture(scope="session")
def bench():
    return benchmark()


@pytest.fixture(scope="session")
def solver_classes():
    return discovered_solvers()


@pytest.fixture
def quadratic():
    """A small, well-conditioned quadratic problem in float64."""
    return QuadraticProblem(n_inner=200, n_outer=100, dim_inner=10,
                            dim_outer=5, cond=10.0, random_state=0)


@pytest.fixture
def make_solver(solver_classes):
    """make_solver(name, problem, **params) -> solver ready to step.

    ``solver.state`` is initialized and ``solver.next_iteration()`` runs
    one iteration, as in a benchopt run.
    """
    def make(name, problem, **params):
        params.setdefault("random_state", 0)
        solver = solver_classes[name].get_instance(**params)
        solver.set_objective(problem=problem)
        solver.reset()
        return solver
    return make


def run_steps(solver, n_steps):
    for _ in range(n_steps):
        solver.next_iteration()
    return solver.state


def relative_hypergrad(problem, solver):
    """||grad h(x_k)|| / ||grad h(x_0)|| for the solver's current x."""
    x = solver.get_result()["outer_var"]
    return float(problem.hypergradient(x).norm()
                 / problem.hypergradient(problem.outer_var0).norm())


DATA_HOME = os.environ.get("BENCHOPT_DATA_HOME")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
