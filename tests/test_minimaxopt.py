"""MinimaxOPT on the quadratic problem; multiplier stages; validation."""
import pytest

from benchmark_utils.batches import SAMPLINGS
from conftest import relative_hypergrad, run_steps


def test_full_batch_stationarity(quadratic, make_solver):
    # step 0.5 (the default is 0.1, safe on hyper-cleaning), outer_ratio 0.3,
    # lambda 1 doubled every 100 iterations up to 1e3: 6e-5 after 1000
    # iterations.
    solver = make_solver("MinimaxOPT", quadratic, batch_size="full",
                         step_size=0.5)
    run_steps(solver, 1000)
    assert relative_hypergrad(quadratic, solver) < 1e-2


@pytest.mark.parametrize("sampling", SAMPLINGS)
def test_minibatch_decreases_value(quadratic, make_solver, sampling):
    # step 0.1 (SGD): the gap h - h* drops to 0.03 of its start.
    optimizer, step = "sgd", 0.1
    h0 = quadratic.value_function(quadratic.outer_var0)
    finals = []
    for seed in range(3):
        solver = make_solver("MinimaxOPT", quadratic, batch_size=16,
                             step_size=step, optimizer=optimizer,
                             sampling=sampling,
                             random_state=seed)
        run_steps(solver, 500)
        finals.append(quadratic.value_function(solver.state.outer_var))
    assert sum(finals) / 3 - quadratic.value_star < \
        0.5 * (h0 - quadratic.value_star)


def test_multiplier_stages(quadratic, make_solver):
    solver = make_solver("MinimaxOPT", quadratic, batch_size="full",
                         lmbda0=1.0, lmbda_factor=3.0, stage_length=5,
                         lmbda_max=20.0)
    seen = []
    for _ in range(20):
        run_steps(solver, 1)
        seen.append(solver.state.lmbda)
    assert seen[:4] == [1.0] * 4
    assert seen[4:9] == [3.0] * 5
    assert seen[9:14] == [9.0] * 5
    assert seen[14:] == [20.0] * 6      # capped at lmbda_max


def test_oracle_calls(quadratic, make_solver):
    solver = make_solver("MinimaxOPT", quadratic, batch_size=16)
    run_steps(solver, 2)
    assert solver.oracles.counts["grad"] == 2 * 3


@pytest.mark.parametrize("param, value", [
    ("step_size", 0.0), ("outer_ratio", -1.0), ("lmbda0", 0.0),
    ("lmbda_factor", 1.0), ("lmbda_factor", 0.5), ("stage_length", 0),
    ("lmbda_max", 0.5), ("optimizer", "rmsprop"),
])
def test_invalid_parameters(quadratic, make_solver, param, value):
    with pytest.raises(ValueError, match=param):
        make_solver("MinimaxOPT", quadratic, **{param: value})
