"""F2SA and F2SA-Adam on the quadratic problem; schedules; validation."""
import pytest

from benchmark_utils.solver.schedules import (
    F2SA_EXPONENTS,
    constant,
    decreasing_or_constant,
    polynomial,
)
from conftest import run_steps


def test_f2sa_schedules():
    s = decreasing_or_constant("decreasing", F2SA_EXPONENTS)
    assert F2SA_EXPONENTS == {"alpha": 5 / 7, "gamma": 4 / 7,
                              "beta": 4 / 7, "delta": 1 / 7}
    for key, exponent in F2SA_EXPONENTS.items():
        assert s[key](1) == 1.0
        assert s[key](128) == pytest.approx(128 ** -exponent)
        assert s[key](10) > s[key](11)
    c = decreasing_or_constant("constant", F2SA_EXPONENTS)
    assert all(c[key](k) == 1.0 for key in c for k in (1, 10, 1000))
    assert constant(5) == 1.0 and polynomial(0.5, offset=1)(3) == 0.5
    with pytest.raises(ValueError, match="schedule"):
        decreasing_or_constant("cosine", F2SA_EXPONENTS)


def test_f2sa_step_uses_scheduled_values(quadratic, make_solver):
    solver = make_solver("F2SA", quadratic, batch_size="full",
                         lmbda0=1.0, delta_lmbda=0.1)
    run_steps(solver, 2)
    # lambda_3 = 1 + 0.1 / 1^(1/7) + 0.1 / 2^(1/7)
    assert float(solver.state.lmbda) == pytest.approx(
        1 + 0.1 + 0.1 * 2 ** (-1 / 7))
    solver = make_solver("F2SA", quadratic, batch_size="full",
                         schedule="constant", delta_lmbda=0.1)
    run_steps(solver, 2)
    assert float(solver.state.lmbda) == pytest.approx(1.2)


def test_f2sa_oracle_calls(quadratic, make_solver):
    solver = make_solver("F2SA", quadratic, batch_size=16, n_inner_steps=4)
    run_steps(solver, 1)
    assert solver.oracles.counts["grad"] == 4 * 3 + 3
    assert solver.oracles.counts["hvp"] == solver.oracles.counts["cross"] == 0


@pytest.mark.parametrize("name", ["F2SA", "F2SA-Adam"])
@pytest.mark.parametrize("param, value", [
    ("step_size", 0.0), ("step_size", -1.0), ("outer_ratio", 0),
    ("inner_ratio", -1.0), ("lmbda0", 0.0), ("delta_lmbda", -0.1),
    ("n_inner_steps", 0), ("schedule", "linear"),
])
def test_invalid_parameters(quadratic, make_solver, name, param, value):
    with pytest.raises(ValueError, match=param):
        make_solver(name, quadratic, **{param: value})


@pytest.mark.parametrize("param, value", [
    ("beta1", 1.0), ("beta2", 0.0), ("eps", 0.0),
])
def test_invalid_adam_parameters(quadratic, make_solver, param, value):
    with pytest.raises(ValueError, match=param):
        make_solver("F2SA-Adam", quadratic, **{param: value})
