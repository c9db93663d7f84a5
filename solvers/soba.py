"""SOBA: stochastic single-loop bilevel optimization.

M. Dagréou, P. Ablin, S. Vaiter, T. Moreau, "A framework for bilevel
optimization that enables stochastic and global variance reduction
algorithms", NeurIPS 2022. SABA (``solvers/saba.py``) is the same update
with SAGA variance reduction.

Three variables move together, all from the current point, with one inner
batch i and one outer batch j per iteration:

    y <- y - rho   * grad_y g_i(x, y)
    v <- v - rho   * (H_i(x, y) v + grad_y f_j(x, y))
    x <- x - gamma * (J_i(x, y) v + grad_x f_j(x, y))

with gamma = outer_ratio * rho. v tracks -H^{-1} grad_y f, so J v + grad_x f
estimates grad h(x).

Oracle calls per iteration: 2 gradients, 1 Hessian-vector product, 1 cross
product (one fused ``inner_oracles`` call and one ``grad_outer`` call).
docs/solver_template.py is this solver written as a template.
"""
from benchmark_utils.solver.base import (
    COMMON_PARAMETERS,
    StochasticBilevelSolver,
)
from benchmark_utils.validation import check_positive


class Solver(StochasticBilevelSolver):
    """SOBA (Dagréou et al., NeurIPS 2022): single-loop, one stochastic
    step on y, v and x per iteration."""

    name = "SOBA"
    parameters = {
        "step_size": [0.1],   # rho
        "outer_ratio": [0.3],  # gamma / rho
        **COMMON_PARAMETERS,
    }
    traceable_step = True
    test_config = {"batch_size": 16}
    #: tests/test_convergence.py: full batch on three quadratics within
    #: n_iter iterations; minibatches of 16 on one, where the mean gap
    #: h(x) - h* must fall below gap_ratio of its start
    convergence_config = {
        "full_batch": {"params": dict(step_size=0.5, outer_ratio=0.3),
                       "n_iter": 3000},
        "minibatch": {"params": dict(step_size=0.05, outer_ratio=0.1),
                      "n_iter": 2000, "gap_ratio": 0.2},
    }

    def init_state(self):
        check_positive(self.step_size, "step_size")
        check_positive(self.outer_ratio, "outer_ratio")
        return self.start(
            v=self.problem.inner_var0.new_zeros(self.problem.dim_inner))

    def step(self, state):
        rho = self.step_size
        gamma = self.outer_ratio * rho
        i, j = self.inner_batch(), self.outer_batch()
        y, x, v = state.inner_var, state.outer_var, state.v
        grad_g, hvp, cross = self.oracles.inner_oracles(y, x, v, i)
        grad_f_y, grad_f_x = self.oracles.grad_outer(y, x, j)
        y.sub_(grad_g, alpha=rho)
        v.sub_(hvp + grad_f_y, alpha=rho)
        x.sub_(cross + grad_f_x, alpha=gamma)
