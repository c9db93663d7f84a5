"""StocBiO: double-loop stochastic bilevel optimization with a Neumann series.

K. Ji, J. Yang, Y. Liang, "Bilevel optimization: convergence analysis and
enhanced design", ICML 2021, Algorithm 2 (stocBiO). One outer iteration:

1. T warm-started SGD steps on g: ``y <- y - beta * grad_y g_i(x, y)``.
2. ``b = grad_y f_j(x, y)``; ``v = -eta * sum_{q=0}^{Q} (I - eta H_i)^q b``
   (a fresh inner batch for each of the Q Hessian-vector products).
3. ``d = grad_x f_j(x, y) + J_i(x, y) v`` (the same outer batch j as in 2).
4. ``x <- x - alpha * d`` with ``alpha = outer_ratio * beta``.

Neumann step: ``neumann_step`` eta, by default 1 / L with L the problem's
upper bound of the largest eigenvalue of H (``inner_hessian_bound``), so
that the series converges. Its truncation bias remains: along an
eigenvalue lambda of H the series keeps a fraction 1 - (1 - eta lambda)^(Q+1)
of 1 / lambda, so along the smallest one, mu, the estimate of H^{-1} b is
short by (1 - eta mu)^(Q+1), and StocBiO's fixed point is not stationary for
h unless Q grows. (eta = beta, a common choice, keeps only a few percent of
H^{-1} when beta is small and stalls even with full batches.)

Choices the paper leaves open:
- The inner batch of the cross product J_i v in step 3 is a fresh draw
  (independent of the Neumann batches).
- The Neumann series keeps the q = 0 term: Q products give Q + 1 terms.
- Q is fixed (``n_neumann_steps``); some variants draw it at random.

Oracle calls per iteration: T + 1 gradients (T inner, one outer giving
grad_y f and grad_x f together), Q Hessian-vector products, 1 cross product.
"""
from benchmark_utils.problems.implicit import neumann, neumann_step
from benchmark_utils.solver.base import (
    COMMON_PARAMETERS,
    StochasticBilevelSolver,
)
from benchmark_utils.solver.bias import neumann_bias
from benchmark_utils.validation import check_positive_int


class Solver(StochasticBilevelSolver):
    """StocBiO (Ji, Yang, Liang, ICML 2021): inner SGD loop, then a Neumann
    series estimate of the hypergradient."""

    name = "StocBiO"
    parameters = {
        "step_size": [0.3],      # beta
        "outer_ratio": [0.3],     # alpha / beta
        "n_inner_steps": [10],    # T
        "n_neumann_steps": [10],  # Q
        "neumann_step": [None],   # eta; None: 1 / L (see above)
        **COMMON_PARAMETERS,
    }
    traceable_step = True
    test_config = {"batch_size": 16, "n_inner_steps": 2, "n_neumann_steps": 2}
    #: tests/test_convergence.py: full batch on three quadratics within
    #: n_iter iterations; minibatches of 16 on one, where the mean gap
    #: h(x) - h* must fall below gap_ratio of its start
    convergence_config = {
        # Q = 100 terms with the default eta = 1 / L
        "full_batch": {"params": dict(step_size=0.5, outer_ratio=1.0,
                                      n_neumann_steps=100),
                       "n_iter": 300},
        "minibatch": {"params": dict(step_size=0.5, outer_ratio=0.1),
                      "n_iter": 150, "gap_ratio": 0.2},
    }

    def init_state(self):
        self.beta, self.alpha = self.step_sizes()
        self.n_inner = check_positive_int(self.n_inner_steps,
                                          "n_inner_steps")
        self.n_neumann = check_positive_int(
            self.n_neumann_steps, "n_neumann_steps", allow_zero=True
        )
        self.eta = neumann_step(self.problem, self.neumann_step)
        return self.start()

    def step(self, state):
        oracles, y, x = self.oracles, state.inner_var, state.outer_var

        # 1. inner loop, warm started
        for _ in range(self.n_inner):
            y.sub_(oracles.grad_inner_y(y, x, self.inner_batch()),
                   alpha=self.beta)

        # 2. s = eta * sum_q (I - eta H_i)^q b ~ H^{-1} b, so v = -s
        outer_idx = self.outer_batch()
        grad_y_f, grad_x_f = oracles.grad_outer(y, x, outer_idx)
        s = neumann(lambda p: oracles.hvp(y, x, p, self.inner_batch()),
                    grad_y_f, self.n_neumann, self.eta)

        # 3.-4. d = grad_x f_j + J_i v = grad_x f_j - J_i s;  x <- x - alpha d
        cross = oracles.cross(y, x, s, self.inner_batch())
        x.sub_(grad_x_f, alpha=self.alpha).add_(cross, alpha=self.alpha)

    def full_batch_bias(self, problem):
        """Relative ||grad h|| / ||grad h(x0)|| where the full-batch iterates
        settle on a quadratic ``problem``: the series misses
        (I - eta H)^(Q+1) H^{-1} grad_y f, at most (1 - eta mu)^(Q+1)
        ||J H^{-1} grad_y f|| (``bias.neumann_bias``), eta the
        ``neumann_step`` and Q ``n_neumann_steps``."""
        return neumann_bias(problem, self.get_result()["outer_var"],
                            neumann_step(problem, self.neumann_step),
                            self.n_neumann_steps + 1)
