"""TTSA: two-timescale stochastic approximation for bilevel optimization.

M. Hong, H.-T. Wai, Z. Wang, Z. Yang, "A two-timescale stochastic algorithm
framework for bilevel optimization: complexity analysis and application to
actor-critic", SIAM J. Optim., 2023, Algorithm 1, with the randomly
truncated Neumann hypergradient of S. Ghadimi, M. Wang, "Approximation
methods for bilevel programming", arXiv 1802.02246, 2018, Algorithm 3.
Single loop; x moves on a slower timescale than y. One iteration k = 1, 2, ...:

1. ``y <- y - beta_k * grad_y g_i(x, y)`` (a fresh inner batch i).
2. ``b, c <- grad_y f_j(x, y), grad_x f_j(x, y)`` at the new y (a fresh
   outer batch j).
3. ``s <- Q * eta * (I - eta H_{i_p}) ... (I - eta H_{i_1}) b`` with p drawn
   uniformly in {0, ..., Q-1} by the solver's generator, a fresh inner batch
   for each of the p products (``implicit.random_neumann``); s estimates
   H^{-1} b, so v = -s tracks -H^{-1} grad_y f.
4. ``d <- c - J_{i'}(x, y) s`` (a fresh inner batch i').
5. ``x <- x - alpha_k * d``, ``alpha = outer_ratio * beta``.

Schedules (``schedule``; k = 1 at the first iteration; eta is constant):
- ``"decreasing"`` (default): beta_k = beta / k^(2/5), alpha_k = alpha /
  k^(3/5), the exponents of the paper's nonconvex analysis (which sets
  constants from the horizon K, alpha ~ K^(-3/5) and beta ~ K^(-2/5)) turned
  into per-iteration decays, as the JAX bilevel benchmark (benchopt's
  benchmark_bilevel) does, since a benchopt run has no fixed horizon;
- ``"strongly_convex"``: beta_k = beta / k^(2/3), alpha_k = alpha / k, the
  paper's rates for a strongly convex h;
- ``"constant"``: beta_k = beta, alpha_k = alpha.

Bias: for a fixed H the mean of s over p is eta * sum_{q<Q} (I - eta H)^q b,
which misses (I - eta H)^Q H^{-1} b; with full batches the fixed point of
the mean iteration is therefore off the stationary point of h by
J (I - eta H)^Q H^{-1} grad_y f, and the iterates still fluctuate around it
(s is random through p) unless the steps decrease.

Choices (the paper leaves these open, or the benchmark departs from it):
- ``neumann_step`` eta defaults to 1 / L, L the problem's bound of the
  largest eigenvalue of H (``inner_hessian_bound``), as StocBiO here, and
  not to beta as in the JAX benchmark (the paper writes c_h / L_g): with
  eta = beta small, Q eta mu << 1 and the series keeps a small fraction of
  H^{-1}, so the method would stall at a wrong point even with full
  batches.
- Q is fixed (``n_neumann_steps``, 10); the paper lets it grow like
  kappa log K.
- The cross product uses a fresh inner batch, independent of step 1 and
  of the Neumann batches (the paper's independent sample; the JAX
  benchmark reuses the batch of step 1).
- x is unconstrained (the paper projects onto a convex set X).

Oracle calls per iteration: 2 gradients (grad_y g, and one outer call
giving grad_y f and grad_x f), p Hessian-vector products ((Q - 1) / 2 on
average), 1 cross product. Memory: no persistent vector besides x and y
(two transient inner-dimension vectors for the series).
"""
from benchmark_utils.problems.implicit import neumann_step, random_neumann
from benchmark_utils.solver.base import (
    COMMON_PARAMETERS,
    StochasticBilevelSolver,
)
from benchmark_utils.solver.bias import neumann_series_bias
from benchmark_utils.solver.schedules import constant, polynomial
from benchmark_utils.validation import (
    check_choice,
    check_positive_int,
)

#: schedule -> (exponent of beta_k, exponent of alpha_k); None: constant.
SCHEDULE_EXPONENTS = {"decreasing": (2 / 5, 3 / 5),
                      "strongly_convex": (2 / 3, 1.0),
                      "constant": None}


class Solver(StochasticBilevelSolver):
    """TTSA (Hong, Wai, Wang, Yang, SIAM J. Optim. 2023): single-loop
    two-timescale method with a randomly truncated Neumann hypergradient."""

    name = "TTSA"
    parameters = {
        "step_size": [0.9],        # beta
        "outer_ratio": [1.0],      # alpha / beta
        "n_neumann_steps": [10],   # Q
        "neumann_step": [None],    # eta; None: 1 / L (see above)
        "schedule": ["decreasing"],
        **COMMON_PARAMETERS,
    }
    test_config = {"batch_size": 16, "n_neumann_steps": 3}
    #: tests/test_convergence.py: full batch on three quadratics within
    #: n_iter iterations; minibatches of 16 on one, where the mean gap
    #: h(x) - h* must fall below gap_ratio of its start
    convergence_config = {
        # Q = 10, eta = 1 / L: truncation bias about 0.03, 0.65, 1.1 on the
        # three instances; alpha_k = 3 / k, beta_k = 1 / k^(2/3). After 2000
        # iterations ||grad h|| exceeds the bias by at most 0.03, 0.03, 0.15
        # (3 seeds): allowance 0.2
        "full_batch": {"params": dict(step_size=1.0, outer_ratio=3.0,
                                      n_neumann_steps=10,
                                      schedule="strongly_convex"),
                       "n_iter": 2000, "allowance": 0.2},
        "minibatch": {"params": dict(step_size=0.5, outer_ratio=0.3,
                                     n_neumann_steps=10,
                                     schedule="decreasing"),
                      "n_iter": 1000, "gap_ratio": 0.1},
    }
    #: tests/test_oracle_counts.py: parameters, and the (gradients,
    #: Hessian-vector products, cross products) of every iteration with
    #: them, with minibatches and with full batches; "random": p products, p
    #: uniform in {0, ..., n_neumann_steps - 1}
    oracle_counts_config = [
        (dict(n_neumann_steps=5), (2, "random", 1)),
    ]

    def init_state(self):
        self.beta, self.alpha = self.step_sizes()
        self.n_neumann = check_positive_int(self.n_neumann_steps,
                                            "n_neumann_steps")
        self.eta = neumann_step(self.problem, self.neumann_step)
        exponents = SCHEDULE_EXPONENTS[check_choice(
            self.schedule, "schedule", list(SCHEDULE_EXPONENTS))]
        self.inner_schedule, self.outer_schedule = (
            (constant, constant) if exponents is None
            else (polynomial(exponents[0]), polynomial(exponents[1])))
        return self.start()

    def step(self, state):
        oracles, y, x = self.oracles, state.inner_var, state.outer_var
        beta_k = self.beta * self.inner_schedule(self.n_iter)
        alpha_k = self.alpha * self.outer_schedule(self.n_iter)

        # 1. one SGD step on g
        y.sub_(oracles.grad_inner_y(y, x, self.inner_batch()), alpha=beta_k)

        # 2.-3. s ~ H^{-1} b by the randomly truncated series, at the new y
        grad_y_f, grad_x_f = oracles.grad_outer(y, x, self.outer_batch())
        s = random_neumann(lambda u: oracles.hvp(y, x, u, self.inner_batch()),
                           grad_y_f, self.n_neumann, self.eta,
                           self.generator)

        # 4.-5. d = c - J_i' s;  x <- x - alpha_k d
        cross = oracles.cross(y, x, s, self.inner_batch())
        x.sub_(grad_x_f, alpha=alpha_k).add_(cross, alpha=alpha_k)

    def full_batch_bias(self, problem):
        """Relative ||grad h|| / ||grad h(x0)|| at the fixed point of the
        mean full-batch iteration on a quadratic ``problem``: the mean of s
        over p, eta sum_{q<Q} (I - eta H)^q b, misses
        J (I - eta H)^Q H^{-1} grad_y f of grad h (``bias.truncation_bias``;
        eta the ``neumann_step``, Q ``n_neumann_steps``). The iterates stay
        random through p around it (the test's ``allowance``)."""
        return neumann_series_bias(self, problem)
