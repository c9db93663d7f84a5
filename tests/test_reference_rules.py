"""Every solver's iterates follow its update rules, step by step.

Each discovered solver runs a few iterations beside its reference in
tests/reference_rules.py (written from the rules of its paper) on the
small float64 problems of tests/reference_problems.py, with the batches
the solver drew and its generator's stream shared. After every iteration
the reported model, x and the other state variables the reference names
must agree to ``rtol`` (1e-10 unless the case says why not), the reference
must have used exactly the draws the solver made, and the oracle counts
must be equal. A solver without a reference fails, saying what to add.
"""
import pytest
import torch

from benchmark_utils.batches import (
    BatchPartition,
    BatchSampler,
    RecordingSampler,
)
from conftest import discovered_solvers
from reference_problems import PROBLEMS
from reference_rules import REFERENCES, Context, Draws, Oracles

#: Minibatch size of the cases (full-batch-only solvers get "full").
BATCH_SIZE = 8


@pytest.fixture(scope="module")
def problems():
    return {name: make() for name, make in PROBLEMS.items()}


def _record(solver, draws):
    """Make ``solver`` draw through recorders that fill ``draws``: its
    samplers get a generator of their own, so that the solver's generator
    is left to the algorithm's own randomness, which ``draws.generator``
    replays; fixed partitions (memory methods) are recorded after
    ``init_state`` built them."""
    original = solver.init_state

    def init_state():
        problem = solver.problem
        draws.generator = torch.Generator()
        draws.generator.set_state(solver.generator.get_state())
        batch_generator = torch.Generator().manual_seed(12345)
        for key, n in (("inner", problem.n_inner), ("outer", problem.n_outer)):
            recorder = RecordingSampler(BatchSampler(
                n, solver.batch_size, batch_generator,
                sampling=solver.sampling))
            recorder.batches = draws.recorded[key]
            setattr(solver, f"{key}_batch", recorder)
        state = original()
        for name, partition in list(vars(solver).items()):
            if isinstance(partition, BatchPartition):
                draws.partitions[name] = partition.batches
                draws.recorded[name] = []
                partition.sample = _recording(partition.sample,
                                              draws.recorded[name])
        return state
    solver.init_state = init_state


def _recording(sample, out):
    def recorded():
        draw = sample()
        out.append(draw)
        return draw
    return recorded


def _close(actual, expected, rtol, what):
    actual = torch.as_tensor(actual, dtype=torch.float64)
    expected = torch.as_tensor(expected, dtype=torch.float64)
    scale = max(1.0, float(expected.abs().max())) if expected.numel() else 1
    torch.testing.assert_close(actual, expected, rtol=rtol,
                               atol=rtol * scale, msg=lambda m: f"{what}: {m}")


def _compare(solver_name, problem_name, problem, case):
    solver_cls = discovered_solvers()[solver_name]
    reference, _ = REFERENCES[solver_name]
    params = dict(case.params, random_state=0)
    full_only = solver_cls.parameters.get("batch_size") == ["full"] and \
        "sampling" not in solver_cls.parameters
    params.setdefault("batch_size", "full" if full_only else BATCH_SIZE)
    solver = solver_cls.get_instance(**params)
    solver.set_objective(problem=problem)
    draws = Draws()
    _record(solver, draws)
    solver.reset()
    draws.solver = solver
    effective = {name: getattr(solver, name) for name in solver_cls.parameters}
    oracles = Oracles(problem)
    expected_steps = reference(Context(problem, effective, oracles, draws,
                                       case.n_iter, case.rtol))
    label = f"{solver_name}{case.params} on {problem_name}"
    for k in range(1, case.n_iter + 1):
        solver.next_iteration()
        expected = next(expected_steps)
        where = f"{label}, iteration {k}"
        result = solver.get_result()
        for key, value in expected.items():
            if key == "model":
                actual = result["inner_var"]
            elif key == "outer_var":
                actual = result["outer_var"]
            else:
                actual = getattr(solver.state, key)
            _close(actual, value, case.rtol, f"{where}, {key}")
        assert draws.untaken() == {}, (
            f"{where}: the solver drew batches its rules do not use "
            f"(stream: number)")
        for key, count in oracles.counts.items():
            if key not in oracles.unchecked:
                assert solver.oracles.counts[key] == count, (
                    f"{where}: {key} counted {solver.oracles.counts[key]}, "
                    f"the rules make {count}")
    return draws.notes


@pytest.mark.parametrize("problem_name", list(PROBLEMS))
def test_iterates_follow_the_rules(solver_name, problem_name, problems):
    if solver_name not in REFERENCES:
        pytest.fail(
            f"no reference rules for the solver {solver_name!r}: add a "
            f"function computing its iterates from its paper's rules to "
            f"tests/reference_rules.py and its entry (reference, cases) to "
            f"REFERENCES there (docs/solver_template.py says how)")
    for case in REFERENCES[solver_name][1]:
        _compare(solver_name, problem_name, problems[problem_name], case)


def test_cases_reach_their_branches(solver_name, problems):
    """Each case goes, on at least one problem, through the branches of the
    rules it is there for (a clamp that acts, a full pass...), so that the
    comparison does not pass for want of exercising them."""
    if solver_name not in REFERENCES:
        pytest.skip("no reference (test_iterates_follow_the_rules fails)")
    for case in REFERENCES[solver_name][1]:
        if not case.notes:
            continue
        reached = set()
        for problem_name, problem in problems.items():
            reached |= _compare(solver_name, problem_name, problem, case)
        missing = set(case.notes) - reached
        assert not missing, f"{solver_name}{case.params} never reaches " \
            f"{sorted(missing)}"
