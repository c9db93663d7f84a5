"""BSA: bilevel stochastic approximation with a randomly truncated Neumann
hypergradient.

S. Ghadimi, M. Wang, "Approximation methods for bilevel programming",
arXiv 1802.02246, 2018, Algorithm 2 (BSA) with the hypergradient estimate
of its Algorithm 3. Double loop: StocBiO's structure, with a random
truncation of the series and decaying steps. One outer iteration
k = 1, 2, ...:

1. T warm-started SGD steps on g: ``y <- y - beta_k * grad_y g_i(x, y)``,
   a fresh inner batch i each step, beta_k fixed inside the loop.
2. ``b, c <- grad_y f_j(x, y), grad_x f_j(x, y)`` (a fresh outer batch j).
3. ``s <- Q * eta * (I - eta H_{i_p}) ... (I - eta H_{i_1}) b`` with p drawn
   uniformly in {0, ..., Q-1} by the solver's generator, a fresh inner batch
   for each of the p products (``implicit.random_neumann``); s estimates
   H^{-1} b, so v = -s tracks -H^{-1} grad_y f.
4. ``d <- c - J_{i'}(x, y) s`` (a fresh inner batch i').
5. ``x <- x - alpha_k * d``, ``alpha = outer_ratio * beta``.

Schedules (``schedule``; k = 1 at the first outer iteration, one tick per
outer iteration; eta is constant): ``"decreasing"`` (default): beta_k =
beta / sqrt(k) and alpha_k = alpha / sqrt(k), the exponents of the JAX
bilevel benchmark (benchopt's benchmark_bilevel); ``"constant"``: fixed
steps.

Bias: for a fixed H the mean of s over p is eta * sum_{q<Q} (I - eta H)^q b,
which misses (I - eta H)^Q H^{-1} b; with full batches the fixed point of
the mean iteration is therefore off the stationary point of h by
J (I - eta H)^Q H^{-1} grad_y f, and the iterates still fluctuate around it
(s is random through p) unless the steps decrease.

Choices (the paper leaves these open, or the benchmark departs from it):
- The paper's nonconvex analysis lets the inner loop grow with k (about
  sqrt(k) steps) and decreases the inner step within each loop; here T is
  fixed and the schedules tick once per outer iteration, as in the JAX
  benchmark.
- The inner loop comes first, then the hypergradient at the new y (the
  paper's order; the JAX benchmark's order is shifted by one, so that its
  first outer step uses y0 untouched).
- ``neumann_step`` eta defaults to 1 / L, L the problem's bound of the
  largest eigenvalue of H (``inner_hessian_bound``), as StocBiO here, and
  not to beta as in the JAX benchmark: with eta = beta small, Q eta mu << 1
  and the series keeps a small fraction of H^{-1}, so the method would
  stall at a wrong point even with full batches.
- Q is fixed (``n_neumann_steps``, 10).
- The cross product uses a fresh inner batch, independent of the Neumann
  batches.

Oracle calls per iteration: T + 1 gradients (T inner, one outer giving
grad_y f and grad_x f together), p Hessian-vector products ((Q - 1) / 2 on
average), 1 cross product. Memory: no persistent vector besides x and y
(two transient inner-dimension vectors for the series).
"""
from benchmark_utils.problems.implicit import neumann_step, random_neumann
from benchmark_utils.solver.base import (
    COMMON_PARAMETERS,
    StochasticBilevelSolver,
)
from benchmark_utils.solver.bias import neumann_series_bias
from benchmark_utils.solver.schedules import decreasing_or_constant
from benchmark_utils.validation import check_positive_int

#: Exponents of the ``"decreasing"`` schedule: beta_k = beta / k^(1/2),
#: alpha_k = alpha / k^(1/2).
EXPONENTS = {"inner": 0.5, "outer": 0.5}


class Solver(StochasticBilevelSolver):
    """BSA (Ghadimi & Wang, 2018): inner SGD loop, then a randomly truncated
    Neumann estimate of the hypergradient, with decaying steps."""

    name = "BSA"
    parameters = {
        "step_size": [0.9],        # beta
        "outer_ratio": [1.0],      # alpha / beta
        "n_inner_steps": [10],     # T
        "n_neumann_steps": [10],   # Q
        "neumann_step": [None],    # eta; None: 1 / L (see above)
        "schedule": ["decreasing"],
        **COMMON_PARAMETERS,
    }
    test_config = {"batch_size": 16, "n_inner_steps": 2,
                   "n_neumann_steps": 3}
    #: tests/test_convergence.py: full batch on three quadratics within
    #: n_iter iterations; minibatches of 16 on one, where the mean gap
    #: h(x) - h* must fall below gap_ratio of its start
    convergence_config = {
        # Q = 10, eta = 1 / L (bias as TTSA's); alpha_k = 0.3 / sqrt(k),
        # beta_k = 1 / sqrt(k). After 1000 iterations ||grad h|| exceeds the
        # bias by at most 0.035, 0.03, 0.02 (3 seeds): allowance 0.1
        "full_batch": {"params": dict(step_size=1.0, outer_ratio=0.3,
                                      n_neumann_steps=10,
                                      schedule="decreasing"),
                       "n_iter": 1000, "allowance": 0.1},
        "minibatch": {"params": dict(step_size=0.5, outer_ratio=0.3,
                                     n_inner_steps=10, n_neumann_steps=10,
                                     schedule="decreasing"),
                      "n_iter": 500, "gap_ratio": 0.1},
    }
    #: tests/test_oracle_counts.py: parameters, and the (gradients,
    #: Hessian-vector products, cross products) of every iteration with
    #: them, with minibatches and with full batches; "random": p products, p
    #: uniform in {0, ..., n_neumann_steps - 1}
    oracle_counts_config = [
        (dict(n_inner_steps=3, n_neumann_steps=5), (4, "random", 1)),
    ]

    def init_state(self):
        self.beta, self.alpha = self.step_sizes()
        self.n_inner = check_positive_int(self.n_inner_steps,
                                          "n_inner_steps")
        self.n_neumann = check_positive_int(self.n_neumann_steps,
                                            "n_neumann_steps")
        self.eta = neumann_step(self.problem, self.neumann_step)
        self.schedules = decreasing_or_constant(self.schedule, EXPONENTS)
        return self.start()

    def step(self, state):
        oracles, y, x = self.oracles, state.inner_var, state.outer_var
        beta_k = self.beta * self.schedules["inner"](self.n_iter)
        alpha_k = self.alpha * self.schedules["outer"](self.n_iter)

        # 1. inner loop, warm started
        for _ in range(self.n_inner):
            y.sub_(oracles.grad_inner_y(y, x, self.inner_batch()),
                   alpha=beta_k)

        # 2.-3. s ~ H^{-1} b by the randomly truncated series
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
