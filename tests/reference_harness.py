"""Runs a solver beside its reference rules (tests/reference_rules.py),
sharing its draws: the harness of tests/test_reference_rules.py."""
import torch

from benchmark_utils.batches import (
    BatchPartition,
    BatchSampler,
    RecordingSampler,
)
from reference_rules import Context, Draws, Oracles

#: Minibatch size of the cases (full-batch-only solvers get "full").
BATCH_SIZE = 8


def record(solver, draws):
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


def compare(solver_cls, reference, case, problem_name, problem):
    """Run ``solver_cls`` with ``case``'s parameters on ``problem`` beside
    ``reference`` (tests/reference_rules.py) and assert, after every
    iteration, that the variables the reference yields agree to
    ``case.rtol``, that the reference used every draw the solver made and
    that the oracle counts are equal. Returns the branches the reference
    went through (``Draws.notes``)."""
    solver_name = solver_cls.name
    params = dict(case.params, random_state=0)
    full_only = solver_cls.parameters.get("batch_size") == ["full"] and \
        "sampling" not in solver_cls.parameters
    params.setdefault("batch_size", "full" if full_only else BATCH_SIZE)
    solver = solver_cls.get_instance(**params)
    solver.set_objective(problem=problem)
    draws = Draws()
    record(solver, draws)
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
