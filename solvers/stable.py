"""STABLE: single-timescale stochastic bilevel optimization, dense estimates.

T. Chen, Y. Sun, Q. Xiao, W. Yin, "A single-timescale method for
stochastic bilevel optimization", AISTATS 2022 (STABLE, Algorithm 1). It
keeps dense estimates of the inner Hessian Hyy ~ d2_yy g (d x d) and of
the cross derivative Hxy ~ d2_xy g (p x d), corrected STORM-style, and
moves y with a correction that follows y*(x) as x moves. One iteration k
with a fresh inner batch i and a fresh outer batch j:

1. On i: ``A = d2_yy g_i(x, y)``, ``B = d2_xy g_i(x, y)``, and A', B' the
   same at the previous point (x', y') (not at k = 1).
2. k = 1: ``Hyy <- A; Hxy <- B``. Otherwise
   ``Hyy <- (1 - tau)(Hyy - A') + A`` and ``Hxy <- (1 - tau)(Hxy - B') + B``.
3. Project Hyy: symmetrize it and clamp its eigenvalues below at
   ``hessian_floor`` (the paper's projection onto {H >= mu_g I}).
4. ``b, c <- grad_y f_j(x, y), grad_x f_j(x, y)``;
   ``h_f <- c - Hxy Hyy^{-1} b``; ``x_new <- x - alpha h_f``.
5. ``y_new <- y - beta grad_y g_i(x, y) - Hyy^{-1} Hxy^T (x_new - x)``.
6. ``(x', y') <- (x, y)``, then ``(x, y) <- (x_new, y_new)``.

The correction of step 5 is outside the beta bracket: it approximates
y*(x_new) - y*(x), since dy*/dx = -H^{-1} d2_yx g. With full batches the
estimates are exact, and the fixed point is y = y*(x) with h_f = grad h(x):
unbiased.

Choices (where the paper's text was not at hand, the recursions follow the
form given above; they agree with a third-party implementation):
- One inner batch i per iteration, for A, B, A', B' (STORM needs the same
  batch at both points) and for grad_y g.
- The dense matrices are built by ``torch.func`` on the problem's
  differentiable ``inner`` (``benchmark_utils/problems/autograd.py``):
  A and B together cost d reverse products, counted as d Hessian-vector and
  d cross products.
- Solves by a Cholesky factorization of the projected Hyy, shared by steps
  4 and 5 (if rounding makes it fail, the eigendecomposition of step 3
  solves instead).
- k = 1 starts from the plain estimates; ``tau`` = 0.5; ``hessian_floor``
  = 1e-6, an absolute floor that only guards invertibility (the paper
  assumes the strong-convexity constant is known).
- ``schedule="constant"`` (default) keeps alpha, beta and tau fixed;
  ``"decreasing"`` divides all three by sqrt(k), the paper's order of
  magnitude for them (not checked against its text).

Applicability: the matrices hold d (d + p) numbers. Above ``max_dense``
(default 1e7) the solver is skipped: the simulated problem (d = 20, p = 10)
and ijcnn1 (22, 22) run; MNIST hyper-cleaning (d = 7850, p = 20000, a 157M
entry Hxy) and 20newsgroups do not.

Oracle calls per iteration: 2 gradients (grad_y g, grad f), 2d Hessian-
vector and 2d cross products (d of each at k = 1), one eigendecomposition
and one Cholesky factorization, O(d^3). Memory: d^2 + p d (twice that
while updating).
"""
import torch

from benchmark_utils.problems.autograd import dense_second_order
from benchmark_utils.solver.base import (
    COMMON_PARAMETERS,
    State,
    StochasticBilevelSolver,
)
from benchmark_utils.solver.schedules import decreasing_or_constant
from benchmark_utils.validation import (
    check_interval,
    check_positive,
    check_positive_int,
)

#: Exponent of the "decreasing" schedule of alpha, beta and tau.
SCHEDULE_EXPONENTS = {"alpha": 0.5, "beta": 0.5, "tau": 0.5}


class Solver(StochasticBilevelSolver):
    """STABLE (Chen, Sun, Xiao, Yin, AISTATS 2022): single timescale, with
    STORM-corrected dense Hessian and cross-derivative estimates."""

    name = "STABLE"
    parameters = {
        "step_size": [0.1],         # beta
        "outer_ratio": [1.0],       # alpha / beta
        "tau": [0.5],
        "hessian_floor": [1e-6],
        "schedule": ["constant"],
        "max_dense": [10_000_000],  # largest d (d + p) allowed
        **COMMON_PARAMETERS,
    }
    test_config = {"batch_size": 16}
    #: tests/test_convergence.py: full batch on three quadratics within
    #: n_iter iterations; minibatches of 16 on one, where the mean gap
    #: h(x) - h* must fall below gap_ratio of its start
    convergence_config = {
        # exact dense matrices with full batches: unbiased; y relaxes at
        # rate 1 - beta mu, the slowest part at cond 100
        "full_batch": {"params": dict(step_size=1.5, outer_ratio=0.4),
                       "n_iter": 800},
        "minibatch": {"params": dict(step_size=0.3, outer_ratio=0.3,
                                     tau=0.5),
                      "n_iter": 200, "gap_ratio": 0.1},
    }

    def skip(self, problem):
        size = problem.dim_inner * (problem.dim_inner + problem.dim_outer)
        max_dense = check_positive_int(self.max_dense, "max_dense")
        if size > max_dense:
            return True, (
                f"dense matrices of d (d + p) = {size} entries (d = "
                f"{problem.dim_inner} inner, p = {problem.dim_outer} outer "
                f"coordinates) exceed max_dense = {max_dense}")
        return False, None

    def init_state(self):
        check_positive(self.step_size, "step_size")
        check_positive(self.outer_ratio, "outer_ratio")
        check_interval(self.tau, "tau", 0, 1)
        check_positive(self.hessian_floor, "hessian_floor")
        self.schedules = decreasing_or_constant(self.schedule,
                                                SCHEDULE_EXPONENTS)
        problem = self.problem
        return State(inner_var=problem.inner_var0.clone(),
                     outer_var=problem.outer_var0.clone(),
                     hess=None, cross=None, previous=None)

    def _matrices(self, y, x, idx):
        """(A, B) on the batch idx, counted as d products of each kind."""
        self.oracles.charge("hvp", idx, times=self.problem.dim_inner)
        self.oracles.charge("cross", idx, times=self.problem.dim_inner)
        return dense_second_order(self.problem.inner, y, x, idx)

    def step(self, state):
        k, s = self.n_iter, self.schedules
        beta = self.step_size * s["beta"](k)
        alpha = self.outer_ratio * self.step_size * s["alpha"](k)
        tau = self.tau * s["tau"](k)
        oracles, y, x = self.oracles, state.inner_var, state.outer_var
        i, j = self.inner_batch(), self.outer_batch()

        # 1.-2. STORM-corrected matrix estimates, A' and B' on the same i
        hess, cross = self._matrices(y, x, i)
        if state.previous is not None:
            hess_prev, cross_prev = self._matrices(*state.previous, i)
            hess = (1 - tau) * (state.hess - hess_prev) + hess
            cross = (1 - tau) * (state.cross - cross_prev) + cross

        # 3. projection onto {H >= floor I}
        eigvals, eigvecs = torch.linalg.eigh((hess + hess.T) / 2)
        eigvals = eigvals.clamp(min=self.hessian_floor)
        hess = (eigvecs * eigvals) @ eigvecs.T
        state.hess, state.cross = hess, cross
        factor, info = torch.linalg.cholesky_ex(hess)
        if int(info) == 0:
            def solve(rhs):
                return torch.cholesky_solve(rhs[:, None], factor)[:, 0]
        else:  # not positive definite in floating point
            def solve(rhs):
                return eigvecs @ ((eigvecs.T @ rhs) / eigvals)

        # 4. x step on the estimated hypergradient
        grad_y_f, grad_x_f = oracles.grad_outer(y, x, j)
        x_new = x - alpha * (grad_x_f - cross @ solve(grad_y_f))

        # 5. y step, corrected by the estimated y*(x_new) - y*(x)
        grad_g = oracles.grad_inner_y(y, x, i)
        y_new = y - beta * grad_g - solve(cross.T @ (x_new - x))

        # 6.
        state.previous = (y, x)
        state.inner_var, state.outer_var = y_new, x_new
