"""F2SA and F2SA-Adam on the quadratic problem; schedules; validation."""
import pytest

from benchmark_utils.batches import SAMPLINGS
from benchmark_utils.solver.schedules import (
    F2SA_EXPONENTS,
    constant,
    decreasing_or_constant,
    polynomial,
)
from conftest import relative_hypergrad, run_steps

# Full batch, fixed multiplier lambda = 20 (delta_lmbda = 0), constant steps
# alpha = 0.025 (alpha * lambda * L_g = 0.5), gamma = beta = 0.5: relative
# ||grad h|| = 3e-3 after 300 iterations (the O(1/lambda) bias of F2SA).
F2SA_FULL = dict(step_size=0.025, inner_ratio=20.0, outer_ratio=20.0,
                 lmbda0=20.0, delta_lmbda=0.0, schedule="constant",
                 batch_size="full")


def test_f2sa_full_batch_stationarity(quadratic, make_solver):
    solver = make_solver("F2SA", quadratic, **F2SA_FULL)
    run_steps(solver, 300)
    assert relative_hypergrad(quadratic, solver) < 1e-2
    assert solver.get_result()["inner_var"] is not solver.state.y


# Full batch, fixed multiplier lambda = 10 (delta_lmbda = 0: a growing lambda
# makes the Adam steps on y jump, the bias of F2SA is O(1 / lambda)), the
# default decreasing learning rates alpha = gamma = 0.01 / k^(5/7, 4/7),
# beta = 0.02 / k^(4/7) and beta2 = 0.999: relative ||grad h|| 1.1e-2 at
# 1000 iterations, 5.8e-3 at 2000, flat at 5.7e-3 up to 6000. lambda 15-30
# or beta2 0.99 dip lower (3e-3) but oscillate back above 1e-2 (Adam's
# constant-size steps near the optimum).
F2SA_ADAM_FULL = dict(step_size=0.01, outer_ratio=2.0, lmbda0=10.0,
                      delta_lmbda=0.0, beta2=0.999, schedule="decreasing",
                      batch_size="full")


def test_f2sa_adam_full_batch_stationarity(quadratic, make_solver):
    solver = make_solver("F2SA-Adam", quadratic, **F2SA_ADAM_FULL)
    run_steps(solver, 2000)
    assert relative_hypergrad(quadratic, solver) < 1e-2


@pytest.mark.parametrize("name, params", [
    # fixed lambda = 2, alpha = 0.01, gamma = 0.1, beta = 0.02: the gap
    # h - h* drops to 0.15 of its start in 200 iterations (3 seeds).
    ("F2SA", dict(step_size=0.01, inner_ratio=10.0, outer_ratio=2.0,
                  lmbda0=2.0, delta_lmbda=0.0, schedule="constant")),
    # defaults but alpha = 0.03: 0.38 of the starting gap.
    ("F2SA-Adam", dict(step_size=0.03)),
])
@pytest.mark.parametrize("sampling", SAMPLINGS)
def test_minibatch_decreases_value(quadratic, make_solver, name, params,
                                   sampling):
    params = dict(params, batch_size=16, sampling=sampling)
    h0 = quadratic.value_function(quadratic.outer_var0)
    finals = []
    for seed in range(3):
        solver = make_solver(name, quadratic, random_state=seed, **params)
        run_steps(solver, 300 if name == "F2SA-Adam" else 200)
        finals.append(quadratic.value_function(solver.state.outer_var))
    gap0 = h0 - quadratic.value_star
    assert sum(finals) / 3 - quadratic.value_star < 0.5 * gap0


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
    assert solver.state.lmbda == pytest.approx(1 + 0.1 + 0.1 * 2 ** (-1 / 7))
    solver = make_solver("F2SA", quadratic, batch_size="full",
                         schedule="constant", delta_lmbda=0.1)
    run_steps(solver, 2)
    assert solver.state.lmbda == pytest.approx(1.2)


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
