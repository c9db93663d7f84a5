"""BVFIM: bilevel value-function-based interior-point method.

R. Liu, X. Liu, X. Yuan, S. Zeng, J. Zhang, "A value-function-based
interior-point method for non-convex bi-level optimization", ICML 2021,
eqs. (18)-(21) and Algorithm 1. The paper's upper level F is our f, its
lower level f is our g.

One outer iteration k with schedule values (mu1_k, mu2_k, theta_k, tau_k):
1. z: T steps z <- z - s (grad_y g_i(x, z) + mu1 z)            (eq. 18)
2. g_star = g_i(x, z) + mu1 / 2 ||z||^2 + mu2                  (f_mu^*)
3. y: T steps y <- y - s (grad_y f_j(x, y) + theta y
        + tau grad_y g_i(x, y) / (g_star - g_i(x, y)))          (eq. 19)
4. G = tau (grad_x g_i(x, y) - grad_x g_i(x, z)) / (g_star - g_i(x, y));
   x <- x - alpha (grad_x f_j(x, y) + G)                        (eqs. 20-21)
5. the schedule decays (next k).

Reported model: **z**, the variable driven by g alone towards y*(x). y also
descends on f (the validation loss), so evaluating y would let the
validation data train the evaluated model and flatter this method against
the others.

Choices the paper leaves open (its schedule's constants are not in the
paper's text):
- Schedule: mu1_k = mu1 / k^decay, mu2_k = mu2 / k^decay,
  theta_k = theta / k^decay, tau_k = tau / k^tau_decay (k = 1, 2, ...).
  Every factor -> 0, and tau_k ln(mu2_k) = tau k^-tau_decay (ln mu2 -
  decay ln k) -> 0 for any tau_decay > 0, as Theorem 1 requires.
  The effective multiplier tau_k / (g_star - g) ~ tau_k / mu2_k grows like
  k^(decay - tau_decay), which is what tightens y towards y*(x).
- Guard: the barrier is only defined for g_i(x, y) < g_star; the
  denominator is clamped to ``barrier_floor`` > 0, so the barrier weight is
  always positive and at most tau_k / barrier_floor: keep
  step_size * tau / barrier_floor * L_g below ~2 for a stable y step
  (defaults: 0.1 * 0.05 / 3e-3 = 1.7 with L_g = 1 on the simulated
  problem). Once y hugs the boundary, the weight is tau_k / floor and
  BVFIM behaves like a penalty method with that multiplier.
- Stochastic version: each y step and the x step draw a fresh pair (i, j),
  and g_star is evaluated on the SAME batch i as g_i(x, y) of that step, so
  that the difference g_star - g_i(x, y) compares like with like; z steps
  draw fresh inner batches. With batch_size="full" this is the paper's
  deterministic method (g_star is then computed once per iteration).
- s1 = s2 = step_size; alpha = outer_ratio * step_size; T_z = T_y =
  n_inner_steps; z and y warm-started; y0 = z0 = inner_var0.
- Defaults: T = 10, mu1 = mu2 = theta = 0.1, tau 0.05, decay 1, tau_decay
  0.2, barrier_floor 3e-3, chosen on the simulated problem (full batch,
  relative ||grad h||; tau 0.1 or floor 1e-3 diverge there); step_size and
  outer_ratio: the tuning protocol's choice
  across the problems it tuned (docs/TUNING.md,
  ``experiments/tuned/defaults.csv``).

Oracle calls per iteration: T gradients (z) + 2 T gradients (y: grad_y g,
grad_y f) + 3 gradients (x), plus function values g_i (not counted as
oracle calls): 2 per y step and 2 for the x step (1 + 1 in full batch).
"""
import torch

from benchmark_utils.solver.base import (
    COMMON_PARAMETERS,
    State,
    StochasticBilevelSolver,
)
from benchmark_utils.solver.bias import penalty_bias
from benchmark_utils.solver.penalty import barrier_weight, penalty_x, penalty_y
from benchmark_utils.solver.schedules import check_exponent, polynomial
from benchmark_utils.validation import check_positive, check_positive_int


class Solver(StochasticBilevelSolver):
    """BVFIM (Liu, Liu, Yuan, Zeng, Zhang, ICML 2021): value function and
    log barrier, with a decaying schedule. Reports z."""

    name = "BVFIM"
    reported_inner = "z"
    parameters = {
        "step_size": [0.01],       # s1 = s2
        "outer_ratio": [1.0],     # alpha / step_size
        "n_inner_steps": [10],    # T_z = T_y
        "mu1": [0.1],
        "mu2": [0.1],
        "theta": [0.1],
        "tau": [0.05],
        "decay": [1.0],           # mu1, mu2, theta ~ 1 / k^decay
        "tau_decay": [0.2],       # tau ~ 1 / k^tau_decay
        "barrier_floor": [3e-3],
        **COMMON_PARAMETERS,
    }
    test_config = {"step_size": 0.1}
    #: tests/test_convergence.py: full batch on three quadratics within
    #: n_iter iterations; minibatches of 16 on one, where the mean gap
    #: h(x) - h* must fall below gap_ratio of its start
    convergence_config = {
        # tau_k = 0.05 / k^0.1 decays slowly, so that the weight stays large
        # (step_size 0.1: a step of the tuning grid, larger than the
        # default, so that 4000 iterations suffice)
        "full_batch": {"params": dict(step_size=0.1, tau_decay=0.1,
                                      outer_ratio=0.04),
                       "n_iter": 4000},
        # a larger floor and tau keep the barrier weight tau_k / floor, and
        # so the noise of weight * (grad_x g(y) - grad_x g(z)), small
        "minibatch": {"params": dict(step_size=0.1, barrier_floor=3e-2,
                                     tau=0.1, outer_ratio=0.1),
                      "n_iter": 500, "gap_ratio": 0.2},
    }

    def init_state(self):
        check_positive(self.step_size, "step_size")
        self.alpha = check_positive(self.outer_ratio, "outer_ratio") * \
            self.step_size
        self.n_inner = check_positive_int(self.n_inner_steps, "n_inner_steps")
        for name in ("mu1", "mu2", "theta", "tau", "decay", "tau_decay",
                     "barrier_floor"):
            check_positive(getattr(self, name), name)
        self.decay_schedule = polynomial(check_exponent(self.decay, "decay"))
        self.tau_schedule = polynomial(check_exponent(self.tau_decay,
                                                      "tau_decay"))
        problem = self.problem
        return State(outer_var=problem.outer_var0.clone(),
                     y=problem.inner_var0.clone(),
                     z=problem.inner_var0.clone())

    def step(self, state):
        k, s = self.n_iter, self.step_size
        mu1 = self.mu1 * self.decay_schedule(k)
        mu2 = self.mu2 * self.decay_schedule(k)
        theta = self.theta * self.decay_schedule(k)
        tau = self.tau * self.tau_schedule(k)
        oracles, floor = self.oracles, self.barrier_floor
        x, y, z = state.outer_var, state.y, state.z

        # 1. z: regularized lower level (eq. 18).
        for _ in range(self.n_inner):
            grad = oracles.grad_inner_y(z, x, self.inner_batch())
            z.add_(torch.add(grad, z, alpha=mu1), alpha=-s)
        # 2. g_star = g_i(x, z) + mu1/2 ||z||^2 + mu2, on each batch i below
        #    (once per iteration with the full batch).
        reg = 0.5 * mu1 * torch.dot(z, z) + mu2
        full_g_star = oracles.inner(z, x) + reg if self.inner_batch.full \
            else None
        # 3. y: barrier problem (eq. 19).
        for _ in range(self.n_inner):
            i, j = self.inner_batch(), self.outer_batch()
            g_star = full_g_star if i is None else oracles.inner(z, x, i) + reg
            weight = barrier_weight(tau, g_star, oracles.inner(y, x, i),
                                    floor)
            grad_f_y = torch.add(oracles.grad_outer_y(y, x, j), y,
                                 alpha=theta)
            y.add_(penalty_y(grad_f_y, oracles.grad_inner_y(y, x, i), weight),
                   alpha=-s)
        # 4. x: grad_x f + G (eqs. 20-21).
        i, j = self.inner_batch(), self.outer_batch()
        g_star = full_g_star if i is None else oracles.inner(z, x, i) + reg
        weight = barrier_weight(tau, g_star, oracles.inner(y, x, i), floor)
        x.add_(penalty_x(oracles.grad_outer_x(y, x, j),
                         oracles.grad_inner_x(y, x, i),
                         oracles.grad_inner_x(z, x, i), weight),
               alpha=-self.alpha)

    def full_batch_bias(self, problem):
        """Relative ||grad h|| / ||grad h(x0)|| where the full-batch iterates
        settle on a quadratic ``problem``: once y hugs the barrier's
        boundary the weight is tau_k / barrier_floor, BVFIM's penalty
        multiplier (``bias.penalty_bias``), tau_k = tau / k^tau_decay at the
        current iteration k."""
        tau_k = self.tau * self.n_iter ** -self.tau_decay
        return penalty_bias(problem, tau_k / self.barrier_floor)
