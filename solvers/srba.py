"""SRBA: stochastic recursive bilevel algorithm (SARAH on SOBA's directions).

M. Dagréou, T. Moreau, S. Vaiter, P. Ablin, "A lower bound and a
near-optimal algorithm for bilevel empirical risk minimization",
AISTATS 2024 (SRBA). SOBA's three directions (``solvers/soba.py``)

    D_y = grad_y g_i(x, y)
    D_v = H_i(x, y) v + grad_y f_j(x, y)
    D_x = J_i(x, y) v + grad_x f_j(x, y)

are tracked by SARAH recursive estimates (Nguyen et al., ICML 2017),
restarted from the full batch every q iterations. v tracks
-H^{-1} grad_y f (v0 = 0). One iteration t = 0, 1, ...:

1. If t mod q == 0: every direction at (y, v, x) on the full batch.
   Otherwise draw a fresh i and j and, for c in {y, v, x},
   ``D_c += D_c(y, v, x; i, j) - D_c(y', v', x'; i, j)`` (same i and j at
   both points).
2. ``(y', v', x') <- (y, v, x)``.
3. ``y <- y - rho * D_y``, ``v <- v - rho * D_v``, ``x <- x - gamma * D_x``,
   with gamma = outer_ratio * rho; if ``v_radius`` is set, v is then
   projected onto the ball of that radius.

Period: ``q = max(1, int(period_frac * (n_inner + n_outer) / batch_size))``
(``variance_reduction.sarah_period``). With ``batch_size="full"`` (there
the batch size in that formula is max(n_inner, n_outer), q = 1 by default)
SRBA is full-batch SOBA: exactly when q = 1, up to rounding otherwise.

Choices the paper leaves open / made here (as in the JAX bilevel
benchmark): t = 0 is a full pass; the full passes run inside the timed run;
constant steps; one step rho for y and v; no projection of v by default
(``v_radius=None``: whether the paper's analysis keeps v in a ball is not
used here).

Oracle calls per iteration: 2 fused ``inner_oracles`` calls and
2 ``grad_outer`` calls (one of each at either point): 4 gradients,
2 Hessian-vector products, 2 cross products; a full pass is one of each on
the full batch. Memory: v, the three directions and the previous point
(5 inner + 2 outer dimensions).
"""
from benchmark_utils.solver.base import (
    COMMON_PARAMETERS,
    State,
    StochasticBilevelSolver,
)
from benchmark_utils.solver.variance_reduction import (
    sarah_period,
    sarah_update,
)
from benchmark_utils.validation import check_positive


class Solver(StochasticBilevelSolver):
    """SRBA (Dagréou, Moreau, Vaiter, Ablin, AISTATS 2024): SOBA's
    directions with SARAH estimates and periodic full passes."""

    name = "SRBA"
    parameters = {
        "step_size": [0.1],      # rho
        "outer_ratio": [0.3],    # gamma / rho
        "period_frac": [0.5],    # q, see above
        "v_radius": [None],      # projection radius of v; None: none
        **COMMON_PARAMETERS,
    }
    test_config = {"batch_size": 16}
    #: tests/test_convergence.py: full batch on three quadratics within
    #: n_iter iterations; minibatches of 16 on one, where the mean gap
    #: h(x) - h* must fall below gap_ratio of its start
    convergence_config = {
        # q = 1: a full pass at every step, i.e. SOBA
        "full_batch": {"params": dict(step_size=0.5, outer_ratio=0.3),
                       "n_iter": 3000},
        # q = 9 iterations between two full passes
        "minibatch": {"params": dict(step_size=0.3, outer_ratio=0.3,
                                     period_frac=0.5),
                      "n_iter": 200, "gap_ratio": 0.1},
    }

    def init_state(self):
        self.rho, self.gamma = self.step_sizes()
        self.radius = (None if self.v_radius is None
                       else check_positive(self.v_radius, "v_radius"))
        problem = self.problem
        self.period = sarah_period(
            check_positive(self.period_frac, "period_frac"),
            problem.n_inner, problem.n_outer, self.batch_size)
        y = problem.inner_var0.clone()
        x = problem.outer_var0.clone()
        v = y.new_zeros(problem.dim_inner)
        return State(inner_var=y, outer_var=x, v=v,
                     d_y=None, d_v=None, d_x=None,
                     y_prev=y.clone(), v_prev=v.clone(), x_prev=x.clone())

    def step(self, state):
        oracles = self.oracles
        y, v, x = state.inner_var, state.v, state.outer_var

        def directions(y, v, x, i, j):
            grad_y_g, hvp, cross = oracles.inner_oracles(y, x, v, i)
            grad_y_f, grad_x_f = oracles.grad_outer(y, x, j)
            return grad_y_g, hvp + grad_y_f, cross + grad_x_f

        # 1. full pass every q iterations (n_iter counts from 1, t from 0)
        if (self.n_iter - 1) % self.period == 0:
            d_y, state.d_v, state.d_x = directions(y, v, x, None, None)
            # (updated in place afterwards: it must own its storage)
            state.d_y = d_y.clone()
        else:
            i, j = self.inner_batch(), self.outer_batch()
            new = directions(y, v, x, i, j)
            old = directions(state.y_prev, state.v_prev, state.x_prev, i, j)
            for d, g_new, g_old in zip((state.d_y, state.d_v, state.d_x),
                                       new, old):
                sarah_update(d, g_new, g_old)

        # 2.-3.
        state.y_prev.copy_(y)
        state.v_prev.copy_(v)
        state.x_prev.copy_(x)
        y.sub_(state.d_y, alpha=self.rho)
        v.sub_(state.d_v, alpha=self.rho)
        x.sub_(state.d_x, alpha=self.gamma)
        if self.radius is not None:
            norm = float(v.norm())
            if norm > self.radius:
                v.mul_(self.radius / norm)
