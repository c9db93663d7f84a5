"""SUSTAIN: double-momentum stochastic bilevel optimization.

P. Khanduri, S. Zeng, M. Hong, H.-T. Wai, Z. Wang, Z. Yang, "A near-optimal
algorithm for stochastic bilevel optimization via double-momentum",
NeurIPS 2021, Algorithm 1 (SUSTAIN). MRBO's single loop (``solvers/mrbo.py``)
with the randomly truncated Neumann series of Ghadimi & Wang
("Approximation methods for bilevel programming", 2018, Algorithm 3): STORM
momentum (Cutkosky & Orabona, NeurIPS 2019) on the y direction and on the
hypergradient. One iteration k = 1, 2, ...:

1. Draw the truncation p, uniform in {0, ..., Q-1}, from the solver's
   generator, then B = (j, i, i_1..i_p): a fresh outer batch j, a fresh
   inner batch i for grad_y g and the cross product, p fresh inner batches.
2. At (x, y): ``b, c = grad_y f_j, grad_x f_j``,
   ``s = Q * eta * prod_{l<=p} (I - eta H_{i_l}) b`` (~ H^{-1} b; its mean
   over p is ``eta * sum_{q=0}^{Q-1} (I - eta H)^q b``),
   ``gy = grad_y g_i`` and ``phi = c - J_i s`` (= grad_x f + J v, v = -s).
3. The same estimates gy', phi' at the previous point (x', y') with the
   same B and the same p (``variance_reduction.hypergradient_estimates``).
4. k = 1: ``d_y <- gy``, ``d_x <- phi``. Then
   ``d_y <- gy + (1 - m_k) (d_y - gy')``,
   ``d_x <- phi + (1 - m_k) (d_x - phi')``.
5. ``(x', y') <- (x, y)``; ``y <- y - beta_k d_y``; ``x <- x - alpha_k d_x``.

Steps 4-5 and the schedules are MRBO's too
(``benchmark_utils/solver/storm.py``).

The paper moves (x, y) first and then builds the directions at the new
point: the same sequence.

Schedules: ``"decreasing"`` (default) beta_k = beta / k^(1/3), alpha_k =
alpha / k^(1/3), m_k = min(1, m / k^(2/3)); ``"constant"`` keeps beta,
alpha and m. alpha = outer_ratio * beta. The Neumann step eta is constant,
by default 1 / L, L the problem's upper bound of H's largest eigenvalue
(``inner_hessian_bound``), as StocBiO's: the series then converges, where
eta = beta keeps only a few percent of H^{-1} for a small beta and stalls.

Choices the paper leaves open, or where this differs from it:
- The paper's schedule is alpha_k = a / (w + k)^(1/3), beta_k = c_beta
  alpha_k, with momentum weights c_f alpha_k^2 (x) and c_g alpha_k^2 (y);
  here one momentum constant m, w = 0 and the exponents of the JAX bilevel
  benchmark.
- The cross product uses the batch i of grad_y g, so that one fused
  ``inner_oracles`` call gives both.
- The momentum memories start from the plain estimates at k = 1 (as in the
  paper), not from zero.
- With m_k = 1 the previous point is not evaluated.

Oracle calls per iteration: 2 ``grad_outer``, 2 fused ``inner_oracles``
(their H s is discarded) and 2p Hessian-vector products (mean Q - 1):
4 gradients, 2p (+2) Hessian-vector products, 2 cross products (half at
k = 1). Memory: d_y, d_x, y', x' (2 inner + 2 outer dimensions), plus two
transient Neumann chains.
"""
from benchmark_utils.solver.base import (
    COMMON_PARAMETERS,
    StochasticBilevelSolver,
)
from benchmark_utils.solver.bias import neumann_series_bias
from benchmark_utils.solver.storm import storm_iteration, storm_start
from benchmark_utils.solver.variance_reduction import (
    draw_hypergradient_batches,
)


class Solver(StochasticBilevelSolver):
    """SUSTAIN (Khanduri et al., NeurIPS 2021): single loop, double STORM
    momentum, randomly truncated Neumann hypergradient."""

    name = "SUSTAIN"
    parameters = {
        "step_size": [0.3],         # beta
        "outer_ratio": [1.0],       # alpha / beta
        "momentum": [0.5],          # m
        "n_neumann_steps": [10],    # Q
        "neumann_step": [None],     # eta; None: 1 / L (see above)
        "schedule": ["decreasing"],  # or "constant"
        **COMMON_PARAMETERS,
    }
    test_config = {"batch_size": 16, "n_neumann_steps": 3}
    #: tests/test_convergence.py: full batch on three quadratics within
    #: n_iter iterations; minibatches of 16 on one, where the mean gap
    #: h(x) - h* must fall below gap_ratio of its start
    convergence_config = {
        # Q = 30, eta = 1: bias of the mean about 0.005, 0.16, 0.37; the
        # default decreasing schedule. After 3000 iterations ||grad h||
        # exceeds the bias by at most 0.035, 0.04, 0.026 (5 seeds):
        # allowance 0.1
        "full_batch": {"params": dict(step_size=0.5, outer_ratio=0.3,
                                      momentum=0.5, n_neumann_steps=30,
                                      neumann_step=1.0),
                       "n_iter": 3000, "allowance": 0.1},
        "minibatch": {"params": dict(step_size=0.5, outer_ratio=0.3,
                                     n_neumann_steps=10, neumann_step=0.5,
                                     schedule="decreasing"),
                      "n_iter": 300, "gap_ratio": 0.1},
    }

    def init_state(self):
        # the truncation p is drawn in {0, ..., Q-1}: Q >= 1
        return storm_start(self, min_neumann_steps=1)

    def step(self, state):
        # 1.-3. one draw, p first, then B = (j, i, i_1..i_p), for both
        #    points
        batches = draw_hypergradient_batches(
            self.inner_batch, self.outer_batch, self.n_neumann,
            generator=self.generator)
        # 4.-5. STORM directions (plain estimates at k = 1), then the step
        storm_iteration(self, state, batches)

    def full_batch_bias(self, problem):
        """Relative ||grad h|| / ||grad h(x0)|| at the fixed point of the
        mean full-batch iteration on a quadratic ``problem``: the mean of s
        over p, eta sum_{q<Q} (I - eta H)^q b, misses
        J (I - eta H)^Q H^{-1} grad_y f of grad h (``bias.truncation_bias``;
        eta the ``neumann_step``, Q ``n_neumann_steps``). The iterates stay
        random through p around it (the test's ``allowance``)."""
        return neumann_series_bias(self, problem)
