"""Hostile parameter values get a ValueError naming the parameter, not a
raw traceback from deep inside a step, and never a silent misreading.

Each case below was found by trying values a user may type (strings for
booleans, 2**70, 1e30, 1e300) on the solvers and data sets.
"""
import importlib.util
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from benchmark_utils import datasets
from benchmark_utils.problems import hyper_cleaning, quadratic
from benchmark_utils.problems.quadratic import COND_MAX, QuadraticProblem
from benchmark_utils.problems.regularization import RegularizationProblem
from benchmark_utils.validation import (
    check_bool,
    check_device,
    check_positive,
    check_positive_int,
)

ROOT = Path(__file__).resolve().parents[1]
BIG = 2 ** 70


def _dataset(name, **params):
    spec = importlib.util.spec_from_file_location(
        f"_dataset_{name}", ROOT / "datasets" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Dataset.get_instance(**params)


# -- booleans -----------------------------------------------------------------
@pytest.mark.parametrize("value", ["no", "false", "False", "True", 0, 1,
                                   None, 1.0])
def test_check_bool_refuses_non_booleans(value):
    """``bool("no")`` is True: value_function=no used to turn the metric
    on (8 s an evaluation on 20newsgroups)."""
    with pytest.raises(ValueError, match=r"flag must be True or False"):
        check_bool(value, "flag")


def test_check_bool_accepts_booleans():
    assert check_bool(True, "f") is True and check_bool(False, "f") is False
    assert check_bool(np.bool_(True), "f") is True


@pytest.mark.parametrize("name, params", [
    ("ijcnn1", {"value_function": "no"}),
    ("20newsgroups", {"value_function": "false"}),
    ("mnist", {"source": "embedded", "value_function": "no"}),
])
def test_dataset_value_function_is_a_boolean(name, params):
    """Refused before any file is read."""
    module = {"20newsgroups": "news20"}.get(name, name)
    dataset = _dataset(module, **params)
    with pytest.raises(ValueError, match="value_function must be True or "
                       "False, got '(no|false)'"):
        dataset.get_data()


@pytest.mark.parametrize("solver, param, value", [
    ("SOBA", "compile", "no"),
    ("SOBA", "compile", 0),
    ("ITD", "warm_start", "false"),
    ("ITD", "line_search", "no"),
    ("AID-CG", "warm_start_v", 1),
])
def test_solver_booleans(make_solver, quadratic, solver, param, value):
    """``compile=0`` and ``warm_start_v=1`` used to pass ``in [True,
    False]`` (0 == False in Python)."""
    with pytest.raises(ValueError, match=f"{param} must be True or False"):
        s = make_solver(solver, quadratic, **{param: value})
        s.next_iteration()


def test_problems_value_function_is_a_boolean():
    X = np.random.default_rng(0).normal(size=(12, 3))
    y = np.arange(12) % 2
    with pytest.raises(ValueError, match="value_function"):
        RegularizationProblem(X, y, X, y, value_function="no")
    with pytest.raises(ValueError, match="value_function"):
        hyper_cleaning.HyperCleaningProblem(X, y, X, y,
                                            value_function="false")


# -- overflow -----------------------------------------------------------------
def test_integers_beyond_64_bits():
    """2**70 is an int and finite: it used to pass and fail later with
    "int too big to convert" or "Overflow when unpacking long long"."""
    with pytest.raises(ValueError, match=r"step_size.*beyond 64 bits"):
        check_positive(BIG, "step_size")
    with pytest.raises(ValueError, match=r"random_state.*2\*\*63"):
        check_positive_int(BIG, "random_state", allow_zero=True)
    with pytest.raises(ValueError, match="device must be one of"):
        check_device(BIG)
    assert check_positive(2 ** 62, "step_size") == 2 ** 62


@pytest.mark.parametrize("solver, param, value", [
    ("SOBA", "random_state", BIG),
    ("SOBA", "step_size", BIG),
    ("StocBiO", "neumann_step", BIG),
    ("VRBO", "n_neumann_steps", BIG),
    ("PZOBO", "n_directions", BIG),
    ("BOME", "eps", BIG),
    ("BVFIM", "decay", 1e30),
    ("BVFIM", "tau_decay", 1e30),
    ("BVFIM", "decay", 2 ** 62),
    ("BVFIM", "barrier_floor", BIG),
])
def test_solver_overflow(make_solver, quadratic, solver, param, value):
    """Each used to raise a raw OverflowError (BVFIM's 1 / k^1e30 at
    k = 2) or hang (k ** 2**62 as a Python int)."""
    with pytest.raises(ValueError, match=param):
        s = make_solver(solver, quadratic, **{param: value})
        for _ in range(3):
            s.next_iteration()


@pytest.mark.parametrize("params, name", [
    ({"random_state": BIG}, "random_state"),
    ({"outer_reg": BIG}, "outer_reg"),
    ({"n_inner": BIG}, "n_inner"),
    ({"device": BIG}, "device"),
    ({"cond": 1e300}, "cond"),
    ({"cond": 1e9}, "cond"),
])
def test_simulated_overflow_and_cond(params, name):
    with pytest.raises(ValueError, match=name):
        QuadraticProblem(**{"n_inner": 50, "n_outer": 20, "dim_inner": 5,
                            "dim_outer": 3, **params})


def _hyper_cleaning_params(**changes):
    params = {name: values[0] for name, values in
              datasets.DATASET_PARAMETERS.items()}
    params.update(changes)
    return SimpleNamespace(**params)


@pytest.mark.parametrize("changes, name", [
    ({"reg": 1e300}, "reg"),
    ({"outer_scale": 1e300}, "outer_scale"),
    ({"random_state": BIG}, "random_state"),
    ({"device": BIG}, "device"),
])
def test_hyper_cleaning_overflow(changes, name):
    """reg or outer_scale beyond float32 used to fail at the first
    evaluation with "value cannot be converted to type float without
    overflow"."""
    with pytest.raises(ValueError, match=name):
        datasets.check_dataset_parameters(
            _hyper_cleaning_params(**changes))


@pytest.mark.parametrize("dtype, bound", [(torch.float32, 88),
                                          (torch.float64, 709)])
def test_regularization_outer_init_bounded(dtype, bound):
    """outer_init=1e300 used to fail converting to float32; exp(89) is inf
    in float32, which made the first gradient nan."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(12, 3)), np.arange(12) % 2
    problem = RegularizationProblem(X, y, X, y, outer_init=-bound,
                                    dtype=dtype)
    grad = problem.grad_inner_y(problem.inner_var0 + 1, problem.outer_var0)
    assert torch.isfinite(grad).all()
    for value in (bound + 1, 1e300, float("inf")):
        with pytest.raises(ValueError, match="outer_init must be"):
            RegularizationProblem(X, y, X, y, outer_init=value, dtype=dtype)


# -- parameters a model ignores -----------------------------------------------
@pytest.mark.parametrize("changes", [
    {"model": "cnn", "hidden": 100},
    {"model": "cnn", "activation": "identity"},
    {"model": "linear", "hidden": 50},
])
def test_ignored_model_parameters_refused(changes):
    """The CNN (and the linear model) used to ignore hidden and activation
    while the results were named after them."""
    name = "hidden" if "hidden" in changes else "activation"
    with pytest.raises(ValueError, match=(
            f"{name}=.* has no effect with model='{changes['model']}'")):
        datasets.check_dataset_parameters(
            _hyper_cleaning_params(**changes))


def test_mlp_parameters_accepted():
    seed, n_train, n_val = datasets.check_dataset_parameters(
        _hyper_cleaning_params(model="mlp", hidden=100,
                               activation="identity", random_state=3))
    assert (seed, n_train, n_val) == (3, 20000, 5000)
    # the defaults are accepted with every model
    datasets.check_dataset_parameters(_hyper_cleaning_params(
        model="cnn"))


def test_ijcnn1_random_state_is_refused_by_the_fixed_split():
    """random_state seeds the window and random splits: with the fixed
    contiguous split it would be accepted and ignored; any split refuses a
    value that is not a seed."""
    for value in (3, 0):
        dataset = _dataset("ijcnn1", random_state=value, split="contiguous")
        with pytest.raises(ValueError, match="random_state"):
            dataset.get_data()
    for value in ("no", BIG):
        dataset = _dataset("ijcnn1", random_state=value)
        with pytest.raises(ValueError, match="random_state"):
            dataset.get_data()


# -- where the exact metrics stop being exact ---------------------------------
def _gap_relative_error(problem, mp):
    """Relative error of the float64 gap h(x0) - h* against a 50-digit
    computation on the same (float64) data."""
    def mat(t):
        return mp.matrix(t.double().tolist())
    a, b, c, d, e = (mat(t) for t in (problem.a, problem.b, problem.c,
                                      problem.d, problem.e))
    n, n_out = a.rows, d.rows
    reg = mp.mpf(problem.outer_reg)
    H_inv = mp.inverse(a.T * a / n + mp.mpf(problem.mu) * mp.eye(a.cols))
    M, m0 = H_inv * (a.T * b / n), H_inv * (a.T * c / n)
    dm = d * M
    lhs = dm.T * dm / n_out + reg * mp.eye(dm.cols)
    x_star = mp.inverse(lhs) * (-(dm.T * (d * m0 - e)) / n_out)

    def h(x):
        r = d * (M * x + m0) - e
        return (sum(v ** 2 for v in r) / n_out
                + reg * sum(v ** 2 for v in x)) / 2
    gap = h(mp.matrix([0] * dm.cols)) - h(x_star)
    found = problem.value_function(problem.outer_var0) - problem.value_star
    return float(abs(mp.mpf(found) - gap) / gap)


def _small(cond):
    return QuadraticProblem(n_inner=60, n_outer=30, dim_inner=10,
                            dim_outer=4, cond=cond, random_state=0)


def test_quadratic_closed_forms_exact_up_to_cond_max(monkeypatch):
    """``simulated[cond=1e300]`` used to report an "exact" suboptimality of
    2.39e12. At COND_MAX the float64 gap h(x0) - h* is within 1e-7 of a
    50-digit computation; 1e4 times further (built past the check) it is
    not: the bound sits where the closed forms stop being exact."""
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 50
    assert _gap_relative_error(_small(COND_MAX), mp) < 1e-7
    monkeypatch.setattr(quadratic, "COND_MAX", COND_MAX * 1e4)
    assert _gap_relative_error(_small(COND_MAX * 1e4), mp) > 1e-6
