"""The contributor's checklist, enforced for every solver benchopt discovers:
its declarations for the tests, its row in docs/SOLVERS.md, and the
template solver file (docs/solver_template.py) kept valid.

(Each solver's reference rules are required by
tests/test_reference_rules.py, its convergence by
tests/test_convergence.py.)
"""
import importlib.util
import re

import pytest

from benchmark_utils.solver.base import StochasticBilevelSolver
from conftest import ROOT, discovered_solvers, relative_hypergrad, run_steps
from declarations import declaration_errors
from reference_harness import compare
from reference_problems import PROBLEMS
from reference_rules import REFERENCES

SOLVERS_DOC = ROOT / "docs" / "SOLVERS.md"
TEMPLATE = ROOT / "docs" / "solver_template.py"


def documented_solvers():
    """The solver names of the table of docs/SOLVERS.md (first column)."""
    return re.findall(r"^\| `([^`]+)` \|", SOLVERS_DOC.read_text(),
                      flags=re.M)


def test_solvers_doc_lists_every_solver(solver_name):
    assert solver_name in documented_solvers(), (
        f"docs/SOLVERS.md has no row for {solver_name!r}: add one to its "
        f"table (| `{solver_name}` | paper | key parameters (defaults) | "
        f"oracles per iteration |)")


def test_solvers_doc_lists_only_solvers():
    listed = documented_solvers()
    assert len(listed) == len(set(listed)), "a solver is listed twice"
    unknown = set(listed) - set(discovered_solvers())
    assert not unknown, f"docs/SOLVERS.md lists unknown solvers {unknown}"


def test_solver_declares_its_test_settings(solver_name):
    errors = declaration_errors(discovered_solvers()[solver_name])
    assert not errors, "\n".join(errors)


def test_missing_declarations_say_what_to_add():
    class Bare(StochasticBilevelSolver):
        name = "Bare"

    class Partial(StochasticBilevelSolver):
        name = "Partial"
        convergence_config = {"full_batch": {"params": {}},
                              "minibatch": "full batch only"}

    (error,) = declaration_errors(Bare)
    assert "Bare declares no convergence_config: add" in error
    assert "docs/solver_template.py" in error
    (error,) = declaration_errors(Partial)
    assert "'full_batch'" in error and "missing ['n_iter']" in error


# -- the template -------------------------------------------------------------
@pytest.fixture(scope="module")
def template_cls():
    spec = importlib.util.spec_from_file_location("solver_template",
                                                  TEMPLATE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Solver


def test_template_declares_everything(template_cls):
    assert issubclass(template_cls, StochasticBilevelSolver)
    assert not declaration_errors(template_cls)
    # benchopt must not load it as a solver of the benchmark
    assert template_cls.name not in discovered_solvers()


@pytest.mark.parametrize("problem_name", list(PROBLEMS))
def test_template_follows_its_rules(template_cls, problem_name):
    # the template is SOBA: its iterates, draws and counts are SOBA's rules
    reference, cases = REFERENCES["SOBA"]
    for case in cases:
        compare(template_cls, reference, case, problem_name,
                PROBLEMS[problem_name]())


def test_template_declarations_hold(template_cls, quadratic):
    config = template_cls.convergence_config["full_batch"]
    solver = template_cls.get_instance(batch_size="full", random_state=0,
                                       **config["params"])
    solver.set_objective(problem=quadratic)
    solver.reset()
    run_steps(solver, config["n_iter"])
    assert relative_hypergrad(quadratic, solver) <= 1e-6
    for params, counts in template_cls.oracle_counts_config:
        solver = template_cls.get_instance(batch_size=16, random_state=0,
                                           **params)
        solver.set_objective(problem=quadratic)
        solver.reset()
        run_steps(solver, 2)
        assert tuple(solver.oracles.counts[key] for key in
                     ("grad", "hvp", "cross")) == tuple(2 * n for n in counts)
