"""MinimaxOPT on the quadratic problem; multiplier stages; validation."""
import pytest

from conftest import run_steps


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
