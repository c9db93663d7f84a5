"""No evaluated model learns from validation labels.

Every solver's reported inner model (``get_result()["inner_var"]``) is
evaluated on the test set and compared across solvers, so it must be
trained on training data only: the validation labels may move x, and the
model through x, but nothing else. The check freezes x's influence: on a
hyper-cleaning problem whose sample weights sigmoid(s x_i) cannot move
(a scale s = 1e-300 and a start x = 0, so that the weights stay 1/2 to
the last bit for any |x_i| < 1e280), g does not depend on x, and two runs
on data that differ only in the validation labels must report the same
model, bit for bit. A solver
whose model descends the validation loss, directly or through a variable
that does (BOME's y_hat, which starts from y, before BOME reported z),
fails.
"""
import numpy as np
import pytest
import torch

from benchmark_utils.problems.hyper_cleaning import make_hyper_cleaning
from conftest import SOLVER_NAMES

N_STEPS = 6


def problem(val_labels_seed):
    """Hyper-cleaning on random data whose g does not depend on x; only
    the validation labels depend on ``val_labels_seed``."""
    rng = np.random.default_rng(0)
    n_train, n_val, n_test, n_classes = 48, 32, 16, 3
    X = rng.normal(size=(n_train + n_val + n_test, 5))
    labels = rng.integers(0, n_classes, size=len(X))
    a, b = n_train, n_train + n_val
    val_labels = np.random.default_rng(val_labels_seed).integers(
        0, n_classes, size=n_val)
    return make_hyper_cleaning(X[:a], labels[:a], X[a:b], val_labels,
                               X[b:], labels[b:], n_classes=n_classes,
                               ratio=0.3, random_state=0, outer_scale=1e-300,
                               outer_init=0.0,
                               dtype=torch.float64)


def run(make_solver, solver_classes, name, val_labels_seed):
    config = dict(getattr(solver_classes[name], "test_config", None) or {})
    prob = problem(val_labels_seed)
    solver = make_solver(name, prob, **config)
    for _ in range(N_STEPS):
        solver.next_iteration()
    return prob, solver


def test_g_does_not_depend_on_x():
    prob = problem(1)
    y = torch.randn(prob.dim_inner, dtype=torch.float64)
    x = prob.outer_var0 + torch.randn(prob.dim_outer, dtype=torch.float64)
    assert prob.inner(y, x) == prob.inner(y, prob.outer_var0)
    a, b = problem(1), problem(2)
    assert not torch.equal(a.splits["val"].labels, b.splits["val"].labels)
    for split in ("train", "val", "test"):
        assert torch.equal(a.splits[split].A, b.splits[split].A)
    for split in ("train", "test"):
        assert torch.equal(a.splits[split].labels, b.splits[split].labels)


@pytest.mark.parametrize("name", SOLVER_NAMES)
def test_reported_model_ignores_validation_labels(solver_classes,
                                                  make_solver, name):
    prob, solver_a = run(make_solver, solver_classes, name, 1)
    _, solver_b = run(make_solver, solver_classes, name, 2)
    y_a = solver_a.get_result()["inner_var"]
    y_b = solver_b.get_result()["inner_var"]
    assert not torch.equal(y_a, prob.inner_var0), (
        f"the reported model did not move in {N_STEPS} iterations: the "
        "check would say nothing")
    change = float((y_a - y_b).norm() / y_a.norm())
    assert torch.equal(y_a, y_b), (
        f"{name}'s reported model changes by {change:.3g} (relative) with "
        "the validation labels alone")


@pytest.mark.parametrize("name", ["SOBA", "BOME"])
def test_the_check_sees_a_variable_trained_on_validation_labels(
        solver_classes, make_solver, name):
    """y is driven by g alone in SOBA and descends the validation loss in
    BOME: the same runs tell them apart."""
    states = [run(make_solver, solver_classes, name, seed)[1].state
              for seed in (1, 2)]
    assert torch.equal(states[0].inner_var, states[1].inner_var) == \
        (name == "SOBA")
