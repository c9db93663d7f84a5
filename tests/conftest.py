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


#: Test files whose tests share an expensive module-scoped fixture (a
#: benchopt run, a browser, rebuilt real archives): `make test` runs pytest on
#: 2 workers (pytest-xdist, ``--dist loadgroup``) and each of these files runs
#: whole on one of them, which builds the fixture once.
SHARED_FIXTURE_FILES = ("test_html_page.py", "test_divergence.py",
                        "test_data_checks.py")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadgroup`` with the files of SHARED_FIXTURE_FILES as the
    groups and every other test on its own. xdist's loadgroup passes the
    ``xdist_group`` marks to its scheduler in the node ids, which pytest 9.2
    no longer lets it change: the marks are silently ignored
    (pytest-dev/pytest-xdist#1386). The scheduler sees only node ids, so the
    groups are named here by file."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class SharedFixtureScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            path = nodeid.split("::", 1)[0]
            return (path if Path(path).name in SHARED_FIXTURE_FILES
                    else nodeid)

    return SharedFixtureScheduling(config, log)


#: Files with tests of tens of seconds (a `benchopt run` in a subprocess, a
#: torch.compile), longest first: they are collected before the others, so
#: that on 2 workers the long tests start early and the short ones even out
#: the end.
LONG_TEST_FILES = ("test_datasets_run.py", "test_cache.py",
                   "test_compiled.py", "test_experiments.py",
                   "test_warm_up_budget.py", "test_parallel.py",
                   "test_protocol.py")


@pytest.hookimpl(trylast=True)  # after pytest's own reordering, kept
def pytest_collection_modifyitems(items):
    def rank(item):
        name = item.path.name
        return (LONG_TEST_FILES.index(name) if name in LONG_TEST_FILES
                else len(LONG_TEST_FILES))
    items.sort(key=rank)


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
# Under pytest-xdist (`make test`: -n 2) the workers share the cores: one
# thread each rather than oversubscribing them.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
torch.set_num_threads(max(1, min(2, (os.cpu_count() or 1) // _WORKERS)))
