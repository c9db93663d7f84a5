"""Penalty directions shared by F2SA, F2SA-Adam, MinimaxOPT and BVFIM.

All four methods move y on the penalized objective f + lambda * g and x on
the gradient of the penalized Lagrangian

    L_lambda(x, y, z) = f(x, y) + lambda * (g(x, y) - g(x, z)),

where z tracks y*(x) = argmin_y g(x, y). BVFIM is the same with the
multiplier lambda replaced by the log-barrier weight
tau / (g_star - g(x, y)).

Two layers:
- combiners on gradients already computed (so a solver can share one
  ``grad_inner`` pass between directions): :func:`penalty_y`,
  :func:`penalty_x`, :func:`barrier_weight`;
- oracle-level helpers that draw nothing themselves (the solver passes the
  batches) and call the oracles through the counting wrapper:
  :func:`y_direction`, :func:`x_direction`.
"""
import torch

from benchmark_utils.solver.schedules import (
    F2SA_EXPONENTS,
    decreasing_or_constant,
)
from benchmark_utils.validation import check_positive, check_positive_int


def _axpy(a, b, scale):
    """a + scale * b; ``scale`` a float or a 0-d tensor (no host sync)."""
    if isinstance(scale, torch.Tensor):
        return a + scale * b
    return torch.add(a, b, alpha=scale)


def penalty_y(grad_f_y, grad_g_y, lmbda, normalized=False):
    """y direction: grad_y f + lmbda * grad_y g.

    With ``normalized=True``: (grad_y f) / lmbda + grad_y g, the direction of
    L / lmbda (MinimaxOPT's y step).
    """
    if normalized:
        return _axpy(grad_g_y, grad_f_y, 1.0 / lmbda)
    return _axpy(grad_f_y, grad_g_y, lmbda)


def penalty_x(grad_f_x, grad_g_x_y, grad_g_x_z, lmbda):
    """x direction:
    grad_x f(x, y) + lmbda * (grad_x g(x, y) - grad_x g(x, z))."""
    return _axpy(grad_f_x, grad_g_x_y - grad_g_x_z, lmbda)


def barrier_weight(tau, g_star, g_y, floor):
    """BVFIM's multiplier tau / (g_star - g(x, y)), with a guarded denominator.

    The log barrier -tau * ln(g_star - g(x, y)) is only defined while
    g(x, y) < g_star. A stochastic or too long step can leave that region,
    so the denominator is clamped to ``floor`` > 0: the weight is then at most
    ``tau / floor`` and always positive. ``g_star`` and ``g_y`` are 0-d
    tensors (kept on the device: no host synchronization).
    """
    return tau / torch.clamp(g_star - g_y, min=floor)


def y_direction(oracles, y, x, lmbda, inner_idx, outer_idx):
    """grad_y f_j(x, y) + lmbda * grad_y g_i(x, y): 2 gradient calls."""
    return penalty_y(oracles.grad_outer_y(y, x, outer_idx),
                     oracles.grad_inner_y(y, x, inner_idx), lmbda)


def x_direction(oracles, y, z, x, lmbda, inner_idx, outer_idx):
    """grad_x f_j(x, y) + lmbda * (grad_x g_i(x, y) - grad_x g_i(x, z)).

    The two g terms use the same inner batch i, so their sample noise
    largely cancels in the difference. 3 gradient calls.
    """
    return penalty_x(oracles.grad_outer_x(y, x, outer_idx),
                     oracles.grad_inner_x(y, x, inner_idx),
                     oracles.grad_inner_x(z, x, inner_idx), lmbda)


def check_f2sa_parameters(solver):
    """Validate the parameters F2SA and F2SA-Adam share and store on the
    solver gamma = inner_ratio * alpha, beta = outer_ratio * alpha, the
    number of inner steps and the schedules (``solvers/f2sa.py``)."""
    alpha = check_positive(solver.step_size, "step_size")
    solver.gamma = check_positive(solver.inner_ratio, "inner_ratio") * alpha
    solver.beta = check_positive(solver.outer_ratio, "outer_ratio") * alpha
    check_positive(solver.lmbda0, "lmbda0")
    check_positive(solver.delta_lmbda, "delta_lmbda", allow_zero=True)
    solver.n_inner = check_positive_int(solver.n_inner_steps,
                                        "n_inner_steps")
    solver.schedules = decreasing_or_constant(solver.schedule,
                                              F2SA_EXPONENTS)


def f2sa_step_sizes(solver, k):
    """(alpha_k, gamma_k, beta_k, delta_k) of outer iteration k."""
    s = solver.schedules
    return (solver.step_size * s["alpha"](k), solver.gamma * s["gamma"](k),
            solver.beta * s["beta"](k), solver.delta_lmbda * s["delta"](k))
