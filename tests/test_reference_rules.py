"""Every solver's iterates follow its update rules, step by step.

Each discovered solver runs a few iterations beside its reference in
tests/reference_rules.py (written from the rules of its paper) on the
small float64 problems of tests/reference_problems.py, with the batches
the solver drew and its generator's stream shared
(tests/reference_harness.py). After every iteration the reported model, x
and the other state variables the reference names must agree to ``rtol``
(1e-10 unless the case says why not), the reference must have used exactly
the draws the solver made, and the oracle counts must be equal. A solver
without a reference fails, saying what to add.
"""
import pytest

from conftest import discovered_solvers
from reference_harness import compare
from reference_problems import PROBLEMS
from reference_rules import REFERENCES


@pytest.fixture(scope="module")
def problems():
    return {name: make() for name, make in PROBLEMS.items()}


def _cases(solver_name):
    if solver_name not in REFERENCES:
        pytest.fail(
            f"no reference rules for the solver {solver_name!r}: add a "
            f"function computing its iterates from its paper's rules to "
            f"tests/reference_rules.py and its entry (reference, cases) to "
            f"REFERENCES there (docs/solver_template.py says how)")
    return REFERENCES[solver_name]


@pytest.mark.parametrize("problem_name", list(PROBLEMS))
def test_iterates_follow_the_rules(solver_name, problem_name, problems):
    reference, cases = _cases(solver_name)
    for case in cases:
        compare(discovered_solvers()[solver_name], reference, case,
                problem_name, problems[problem_name])


def test_cases_reach_their_branches(solver_name, problems):
    """Each case goes, on at least one problem, through the branches of the
    rules it is there for (a clamp that acts, a full pass...), so that the
    comparison does not pass for want of exercising them."""
    reference, cases = _cases(solver_name)
    for case in cases:
        if not case.notes:
            continue
        reached = set()
        for problem_name, problem in problems.items():
            reached |= compare(discovered_solvers()[solver_name], reference,
                               case, problem_name, problem)
        missing = set(case.notes) - reached
        assert not missing, f"{solver_name}{case.params} never reaches " \
            f"{sorted(missing)}"
