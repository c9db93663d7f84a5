"""The single loop MRBO and SUSTAIN share: STORM momentum on the y direction
and on a Neumann hypergradient.

MRBO (J. Yang, K. Ji, Y. Liang, "Provably faster algorithms for bilevel
optimization", NeurIPS 2021, Algorithm 1) and SUSTAIN (P. Khanduri,
S. Zeng, M. Hong, H.-T. Wai, Z. Wang, Z. Yang, "A near-optimal algorithm
for stochastic bilevel optimization via double-momentum", NeurIPS 2021,
Algorithm 1) differ only in the draw B of iteration k: a deterministic
Neumann series on Q batches (MRBO), or a random truncation p and p batches
(SUSTAIN), drawn by the solver file
(``variance_reduction.draw_hypergradient_batches``). The rest is here:

4. k = 1: ``d_y <- gy``, ``d_x <- phi``; then, with gy', phi' the same
   estimates at the previous point (x', y') on the same B,
   ``d_y <- gy + (1 - m_k) (d_y - gy')`` and
   ``d_x <- phi + (1 - m_k) (d_x - phi')`` (:func:`storm_directions`);
5. ``(x', y') <- (x, y)``; ``y <- y - beta_k d_y``; ``x <- x - alpha_k d_x``

(:func:`storm_iteration` runs both), with gy = grad_y g_i(x, y) and
phi = grad_x f_j - J_i s, s ~ H^{-1} grad_y f_j
(``variance_reduction.hypergradient_estimates``). Schedules
(:func:`storm_rates`): ``"decreasing"`` beta_k = beta / k^(1/3),
alpha_k = alpha / k^(1/3), m_k = min(1, m / k^(2/3)) (the exponents of the
JAX bilevel benchmark); ``"constant"`` keeps beta, alpha and m.
"""
from benchmark_utils.problems.implicit import neumann_step
from benchmark_utils.solver.base import State
from benchmark_utils.solver.schedules import (
    STORM_EXPONENTS,
    decreasing_or_constant,
)
from benchmark_utils.solver.variance_reduction import (
    hypergradient_estimates,
    storm_update,
)
from benchmark_utils.validation import check_interval, check_positive_int


def storm_start(solver, min_neumann_steps):
    """Validate the parameters MRBO and SUSTAIN share (``step_size``,
    ``outer_ratio``, ``momentum``, ``n_neumann_steps`` >=
    ``min_neumann_steps``, ``neumann_step``, ``schedule``), store what the
    iterations read (``beta``, ``alpha``, ``m``, ``n_neumann``, ``eta``,
    ``schedules``) on ``solver``, and return the starting ``State``: the
    problem's start, no direction yet (``d_y = d_x = None``) and the
    previous point (``y_prev``, ``x_prev``) at the start."""
    solver.beta, solver.alpha = solver.step_sizes()
    solver.m = check_interval(solver.momentum, "momentum", 0, 1)
    solver.n_neumann = check_positive_int(
        solver.n_neumann_steps, "n_neumann_steps",
        allow_zero=min_neumann_steps == 0)
    solver.eta = neumann_step(solver.problem, solver.neumann_step)
    solver.schedules = decreasing_or_constant(solver.schedule,
                                              STORM_EXPONENTS)
    y = solver.problem.inner_var0.clone()
    x = solver.problem.outer_var0.clone()
    return State(inner_var=y, outer_var=x, d_y=None, d_x=None,
                 y_prev=y.clone(), x_prev=x.clone())


def storm_rates(solver, k):
    """(beta_k, alpha_k, m_k) of iteration k = 1, 2, ..."""
    s = solver.schedules
    return (solver.beta * s["inner"](k), solver.alpha * s["outer"](k),
            min(1.0, solver.m * s["momentum"](k)))


def storm_directions(oracles, state, batches, step, momentum):
    """Step 4, in place on ``state``.

    ``state.d_y`` and ``state.d_x`` (None before the first call) track
    grad_y g and the hypergradient estimate Phi; ``state.inner_var``,
    ``state.outer_var`` are the current point and ``state.y_prev``,
    ``state.x_prev`` the previous one. Both points are evaluated on the one
    draw ``batches`` (``hypergradient_estimates``); the first call stores
    the plain estimates, later calls apply ``storm_update`` (the previous
    point is not evaluated when ``momentum`` is 1: the correction would be
    multiplied by zero).
    """
    point = (state.inner_var, state.outer_var)
    first = state.d_y is None
    points = [point]
    if not first and momentum < 1:
        points.append((state.y_prev, state.x_prev))
    estimates = hypergradient_estimates(oracles, points, batches, step)
    grad_y_g, phi = estimates[0]
    if first:
        # (d_y is then updated in place: it must own its storage)
        state.d_y, state.d_x = grad_y_g.clone(), phi
        return
    old_y, old_x = estimates[1] if momentum < 1 else (None, None)
    storm_update(state.d_y, grad_y_g, old_y, momentum)
    storm_update(state.d_x, phi, old_x, momentum)


def storm_iteration(solver, state, batches):
    """Steps 4 and 5 of iteration ``solver.n_iter`` on the draw
    ``batches``: the directions, then ``(x', y') <- (x, y)`` and the step
    on y and x."""
    beta, alpha, m = storm_rates(solver, solver.n_iter)
    storm_directions(solver.oracles, state, batches, solver.eta, m)
    state.y_prev.copy_(state.inner_var)
    state.x_prev.copy_(state.outer_var)
    state.inner_var.sub_(state.d_y, alpha=beta)
    state.outer_var.sub_(state.d_x, alpha=alpha)
