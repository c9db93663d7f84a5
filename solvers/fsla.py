"""FSLA: fully single loop bilevel algorithm without Hessian inverse.

J. Li, B. Gu, H. Huang, "A fully single loop algorithm for bilevel
optimization without Hessian inverse", AAAI 2022, Algorithm 1 and eq. (10),
translated (the paper's outer lambda is x, its inner omega is y). One
iteration k with five fresh batches xi1..xi5 (inner, outer, inner, outer,
inner):

1. ``x_new = x - alpha_k d``
2. ``y_new = y - tau_k grad_y g_xi1(x_new, y)``
3. ``v_new = beta_k grad_y f_xi2(x_new, y) + v - beta_k H_xi3(x_new, y) v``
4. ``g_new = grad_x f_xi4(x_new, y_new) - J_xi5(x_new, y_new) v_new``
5. ``g_old`` = the same estimator at the previous point (x, y, v) with the
   same batches xi4, xi5; ``d <- g_new + (1 - eta_k) (d - g_old)`` (STORM).

v tracks +H^{-1} grad_y f (the paper's sign), hence the minus in step 4.

Choices the paper leaves open / made here:
- ``schedule="sqrt"`` (default, as in the paper's Theorem 5): every step
  size and the momentum are scaled by ``1 / sqrt(k + 1)`` with k = 1 at the
  first iteration (``schedules.polynomial(0.5, offset=1)``):
  alpha_k = outer_ratio * step_size * s_k, tau_k = step_size * s_k,
  beta_k = hia_step * s_k, eta_k = momentum * s_k. With this schedule the
  correction is always active; ``momentum=1`` disables it only with
  ``schedule="constant"``.
- The paper's constants c_tau, c_beta, c_eta, delta are expressed through
  ``step_size`` (tau), ``outer_ratio`` (alpha / tau), ``hia_step`` (beta,
  default tau) and ``momentum`` (eta).
- d is initialized with one plain estimate at (x0, y0, v0 = 0), where the
  J v term vanishes: d0 = grad_x f_j(x0, y0) on one outer batch.
- g_old is skipped (not computed) when eta_k = 1.

Oracle calls per iteration: 4 gradients (grad_y g, grad_y f, and grad_x f
at the new and at the previous point; 3 when eta_k = 1), 1 Hessian-vector
product, 2 cross products (1 when eta_k = 1).
"""
from benchmark_utils.solver.base import (
    COMMON_PARAMETERS,
    State,
    StochasticBilevelSolver,
)
from benchmark_utils.solver.schedules import constant, polynomial
from benchmark_utils.solver.variance_reduction import storm_update
from benchmark_utils.validation import (
    check_choice,
    check_interval,
    check_positive,
)

SCHEDULES = {"sqrt": polynomial(0.5, offset=1), "constant": constant}


class Solver(StochasticBilevelSolver):
    """FSLA (Li, Gu, Huang, AAAI 2022): fully single loop with a
    STORM-corrected hypergradient estimate."""

    name = "FSLA"
    parameters = {
        "step_size": [0.3],     # tau
        "outer_ratio": [0.3],   # alpha / tau
        "hia_step": [None],     # beta; None: beta = tau
        "momentum": [0.5],      # eta
        "schedule": ["sqrt"],   # or "constant"
        **COMMON_PARAMETERS,
    }
    traceable_step = True
    test_config = {"batch_size": 16}
    #: tests/test_convergence.py: full batch on three quadratics within
    #: n_iter iterations; minibatches of 16 on one, where the mean gap
    #: h(x) - h* must fall below gap_ratio of its start
    convergence_config = {
        "full_batch": {"params": dict(step_size=0.5, outer_ratio=0.3,
                                      schedule="constant"),
                       "n_iter": 3000},
        "minibatch": {"params": dict(step_size=1.0, outer_ratio=0.1),
                      "n_iter": 500, "gap_ratio": 0.2},
    }

    def init_state(self):
        self.tau = check_positive(self.step_size, "step_size")
        self.alpha = check_positive(self.outer_ratio, "outer_ratio") * self.tau
        self.beta = (self.tau if self.hia_step is None
                     else check_positive(self.hia_step, "hia_step"))
        self.eta = check_interval(self.momentum, "momentum", 0, 1)
        self.lr_schedule = SCHEDULES[
            check_choice(self.schedule, "schedule", list(SCHEDULES))]
        # eta_k < 1 at every k iff at k = 1 (the schedules decrease)
        self.corrected = self.eta * self.lr_schedule(1) < 1
        y = self.problem.inner_var0.clone()
        x = self.problem.outer_var0.clone()
        # d0: plain estimate at (x0, y0, v0 = 0), where J v0 = 0
        d = self.oracles.grad_outer_x(y, x, self.outer_batch()).clone()
        return State(inner_var=y, outer_var=x, v=y.new_zeros(y.shape), d=d)

    def step(self, state):
        oracles = self.oracles
        y, x, v, d = state.inner_var, state.outer_var, state.v, state.d
        s = self.lr_schedule(self.n_iter)
        tau, alpha, beta, eta = (self.tau * s, self.alpha * s,
                                 self.beta * s, self.eta * s)
        xi1, xi2, xi3 = self.inner_batch(), self.outer_batch(), \
            self.inner_batch()
        xi4, xi5 = self.outer_batch(), self.inner_batch()

        # 5. (first half) g_old at the previous point with batches xi4, xi5
        g_old = None
        if self.corrected:
            g_old = (oracles.grad_outer_x(y, x, xi4)
                     - oracles.cross(y, x, v, xi5))

        # 1. x_new = x - alpha d  (x is no longer needed: in place)
        x.sub_(alpha * d)
        # 2.-3. directions at (x_new, y) before y and v move
        grad_y_g = oracles.grad_inner_y(y, x, xi1)
        hvp = oracles.hvp(y, x, v, xi3)
        grad_y_f = oracles.grad_outer_y(y, x, xi2)
        # 2. y_new = y - tau grad_y g_xi1(x_new, y)
        y.sub_(tau * grad_y_g)
        # 3. v_new = beta grad_y f_xi2(x_new, y) + v - beta H_xi3(x_new, y) v
        v.sub_(beta * (hvp - grad_y_f))
        # 4. g_new = grad_x f_xi4(x_new, y_new) - J_xi5(x_new, y_new) v_new
        g_new = oracles.grad_outer_x(y, x, xi4) - oracles.cross(y, x, v, xi5)
        # 5. d <- g_new + (1 - eta) (d - g_old)
        storm_update(d, g_new, g_old, eta)
