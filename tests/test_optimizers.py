"""Update rules of benchmark_utils.solver.optimizers (hand-computed
examples)."""
import math

import pytest
import torch

from benchmark_utils.solver.optimizers import (
    SGD,
    Adam,
    Momentum,
    make_optimizer,
)


def _adam_by_hand(grads, b1, b2, eps, lr, theta0):
    theta, m, v = theta0, 0.0, 0.0
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
        theta = theta - lr * m_hat / math.sqrt(v_hat + eps)
    return theta


def test_adam_two_steps_by_hand():
    # eps large enough that inside vs outside the square root differ.
    b1, b2, eps, lr = 0.9, 0.99, 0.25, 0.1
    adam = Adam(b1, b2, eps)
    p = torch.tensor([1.0, -2.0], dtype=torch.float64)
    adam.update(p, torch.tensor([0.5, 2.0], dtype=torch.float64), lr)
    adam.update(p, torch.tensor([-1.0, 3.0], dtype=torch.float64), lr)
    # step 1: m_hat = g, v_hat = g^2 -> theta - lr g / sqrt(g^2 + eps)
    t1 = 1.0 - 0.1 * 0.5 / math.sqrt(0.25 + 0.25)
    m = 0.9 * 0.05 + 0.1 * -1.0
    v = 0.99 * 0.0025 + 0.01 * 1.0
    expected0 = t1 - 0.1 * (m / (1 - 0.81)) / math.sqrt(v / (1 - 0.9801)
                                                         + 0.25)
    assert p[0].item() == pytest.approx(expected0, rel=1e-12)
    assert p[1].item() == pytest.approx(
        _adam_by_hand([2.0, 3.0], b1, b2, eps, lr, -2.0), rel=1e-12)
    # eps outside the root would give a different value
    assert p[0].item() != pytest.approx(
        t1 - 0.1 * (m / 0.19) / (math.sqrt(v / 0.0199) + 0.25), rel=1e-6)
    assert adam.t == 2
    # direction() agrees with update()
    a2 = Adam(b1, b2, eps)
    d = a2.direction(torch.tensor([0.5], dtype=torch.float64))
    assert d.item() == pytest.approx(0.5 / math.sqrt(0.5))


def test_adam_reset_restarts_bias_correction():
    adam = Adam(0.9, 0.99, 1e-8)
    p = torch.zeros(1, dtype=torch.float64)
    adam.update(p, torch.ones(1, dtype=torch.float64), 0.1)
    adam.update(p, torch.ones(1, dtype=torch.float64), 0.1)
    adam.reset()
    assert adam.t == 0 and adam.m is None
    q = torch.zeros(1, dtype=torch.float64)
    adam.update(q, torch.tensor([3.0], dtype=torch.float64), 0.1)
    # first step after reset: m_hat = g, v_hat = g^2
    assert q.item() == pytest.approx(-0.1 * 3 / math.sqrt(9 + 1e-8))


def test_f2sa_adam_resets_yz_keeps_x(quadratic, make_solver):
    solver = make_solver("F2SA-Adam", quadratic, batch_size="full",
                         n_inner_steps=3)
    from conftest import run_steps
    run_steps(solver, 2)
    st = solver.state
    assert st.adam_y.t == 3 and st.adam_z.t == 3   # reset every iteration
    assert st.adam_x.t == 2                          # kept: t = k


def test_sgd_and_momentum():
    p = torch.tensor([1.0])
    SGD().update(p, torch.tensor([2.0]), 0.5)
    assert p.item() == 0.0
    mom = Momentum(0.5)
    p = torch.tensor([0.0])
    mom.update(p, torch.tensor([1.0]), 1.0)   # buf = 1
    mom.update(p, torch.tensor([1.0]), 1.0)   # buf = 1.5
    assert p.item() == pytest.approx(-2.5)


@pytest.mark.parametrize("kwargs, name", [
    (dict(beta1=1.0), "beta1"), (dict(beta1=0.0), "beta1"),
    (dict(beta2=1.5), "beta2"), (dict(eps=0.0), "eps"),
])
def test_adam_invalid(kwargs, name):
    with pytest.raises(ValueError, match=name):
        Adam(**kwargs)


def test_make_optimizer_invalid():
    with pytest.raises(ValueError, match="optimizer"):
        make_optimizer("rmsprop")
    assert isinstance(make_optimizer("adam"), Adam)
