"""MRBO: momentum-based recursive bilevel optimizer.

J. Yang, K. Ji, Y. Liang, "Provably faster algorithms for bilevel
optimization", NeurIPS 2021, Algorithm 1 (MRBO). A single loop in which
STORM recursive momentum (Cutkosky & Orabona, NeurIPS 2019) tracks the y
direction and a Neumann-series hypergradient. One iteration k = 1, 2, ...:

1. Draw B = (j, i, i_1..i_Q): a fresh outer batch j, a fresh inner batch i
   for grad_y g and the cross product, Q fresh inner batches for the
   Neumann series.
2. At (x, y): ``b, c = grad_y f_j, grad_x f_j``,
   ``s = eta * sum_{q=0}^{Q} prod_{l<=q} (I - eta H_{i_l}) b`` (~ H^{-1} b),
   ``gy = grad_y g_i`` and ``phi = c - J_i s`` (= grad_x f + J v, v = -s).
3. The same estimates gy', phi' at the previous point (x', y') on the same
   B (``variance_reduction.hypergradient_estimates``).
4. k = 1: ``d_y <- gy``, ``d_x <- phi``. Then
   ``d_y <- gy + (1 - m_k) (d_y - gy')``,
   ``d_x <- phi + (1 - m_k) (d_x - phi')``.
5. ``(x', y') <- (x, y)``; ``y <- y - beta_k d_y``; ``x <- x - alpha_k d_x``.

Steps 4-5 and the schedules are SUSTAIN's too
(``benchmark_utils/solver/storm.py``).

Schedules: ``"decreasing"`` (default) beta_k = beta / k^(1/3), alpha_k =
alpha / k^(1/3), m_k = min(1, m / k^(2/3)); ``"constant"`` keeps beta,
alpha and m. alpha = outer_ratio * beta. The Neumann step eta is constant,
by default 1 / L, L the problem's upper bound of H's largest eigenvalue
(``inner_hessian_bound``), as StocBiO's: the series then converges, where
eta = beta keeps only a few percent of H^{-1} for a small beta and stalls.

Choices the paper leaves open, or where this differs from it:
- The paper writes eta_k = t / (c + k)^(1/3), steps eta_k (x) and
  gamma eta_k (y) and two momentum weights c1 eta_k^2, c2 eta_k^2; here one
  momentum constant m and the exponents of the JAX bilevel benchmark.
- The cross product uses the batch i of grad_y g (the paper samples it
  independently), so that one fused ``inner_oracles`` call gives both.
- The momentum memories start from the plain estimates at k = 1 (as in the
  paper), not from zero.
- With m_k = 1 the previous point is not evaluated (the correction is then
  multiplied by zero).

Oracle calls per iteration: 2 ``grad_outer``, 2 fused ``inner_oracles``
(their H s is discarded) and 2Q Hessian-vector products: 4 gradients,
2Q (+2) Hessian-vector products, 2 cross products (half at k = 1). Memory:
d_y, d_x, y', x' (2 inner + 2 outer dimensions), plus two transient
Neumann chains.
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
    """MRBO (Yang, Ji, Liang, NeurIPS 2021): single loop, STORM momentum on
    the y direction and on a Neumann hypergradient."""

    name = "MRBO"
    parameters = {
        "step_size": [0.3],         # beta
        "outer_ratio": [3.0],       # alpha / beta
        "momentum": [0.5],          # m
        "n_neumann_steps": [10],    # Q
        "neumann_step": [None],     # eta; None: 1 / L (see above)
        "schedule": ["decreasing"],  # or "constant"
        **COMMON_PARAMETERS,
    }
    test_config = {"batch_size": 16, "n_neumann_steps": 2}
    #: tests/test_convergence.py: full batch on three quadratics within
    #: n_iter iterations; minibatches of 16 on one, where the mean gap
    #: h(x) - h* must fall below gap_ratio of its start
    convergence_config = {
        # Q = 30, eta = 1: truncation bias (exact) about 0.005, 0.15, 0.36;
        # with full batches the STORM memories are the exact directions
        "full_batch": {"params": dict(step_size=0.5, outer_ratio=0.3,
                                      n_neumann_steps=30, neumann_step=1.0,
                                      schedule="constant"),
                       "n_iter": 400},
        "minibatch": {"params": dict(step_size=0.5, outer_ratio=0.3,
                                     n_neumann_steps=10, neumann_step=0.5,
                                     schedule="decreasing"),
                      "n_iter": 300, "gap_ratio": 0.1},
    }

    def init_state(self):
        # Q = 0 is allowed: s = eta grad_y f, a one-term series
        return storm_start(self, min_neumann_steps=0)

    def step(self, state):
        # 1.-3. one draw B = (j, i, i_1..i_Q), for both points
        batches = draw_hypergradient_batches(
            self.inner_batch, self.outer_batch, self.n_neumann)
        # 4.-5. STORM directions (plain estimates at k = 1), then the step
        storm_iteration(self, state, batches)

    def full_batch_bias(self, problem):
        """Relative ||grad h|| / ||grad h(x0)|| where the full-batch iterates
        settle on a quadratic ``problem``: the Neumann series of Q + 1
        terms misses J (I - eta H)^(Q+1) H^{-1} grad_y f of grad h
        (``bias.truncation_bias``; eta the ``neumann_step``, Q
        ``n_neumann_steps``)."""
        return neumann_series_bias(self, problem, extra_terms=1)
