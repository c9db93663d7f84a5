"""AID-CG: approximate implicit differentiation with conjugate gradient.

K. Ji, J. Yang, Y. Liang, "Bilevel optimization: convergence analysis and
enhanced design", ICML 2021, Algorithm 1 with the AID hypergradient
(AID-BiO): D inner gradient steps, then N steps of conjugate gradient on
``H w = grad_y f``, warm started at the previous w. It is also the AmIGO-CG
variant of M. Arbel, J. Mairal, "Amortized implicit differentiation for
stochastic bilevel optimization", ICLR 2022, and Algorithm 3 (AID
hypergradient) with Algorithm 7 (conjugate gradient) of S. Dash, P. Ram,
"Algorithms and analysis of stochastic bi-level optimization problems",
lecture notes, lecture 5, 2023. One outer iteration:

1. D warm-started gradient steps on g: ``y <- y - beta * grad_y g_i(x, y)``
   (a fresh inner batch i each step; all data by default).
2. ``b, c <- grad_y f_j(x, y), grad_x f_j(x, y)`` (one outer batch j).
3. One inner batch i (or the full batch) fixed for the solve: N steps of
   conjugate gradient on ``H_i(x, y) w = b`` from the previous w
   (``benchmark_utils.problems.implicit.conjugate_gradient`` with
   ``tol=0``, so exactly N steps). CG needs one matrix across its steps,
   so i does not change inside the solve.
4. ``d <- c - J_i(x, y) w`` (the same i).
5. ``x <- x - alpha * d`` with ``alpha = outer_ratio * beta``; w is kept
   for the next warm start.

w tracks H^{-1} grad_y f (w_0 = 0), i.e. -v in the notation of the other
solvers. With full batches the fixed point is unbiased once CG converges
(on a quadratic inner problem, N >= dim_inner steps solve the system
exactly).

Choices (the paper's Alg. 1 is deterministic and leaves these open):
- ``tol=0``: CG always runs N steps (the lecture notes' Alg. 7 stops on a
  residual threshold); exactly N steps keep the cost per iteration fixed.
- The outer batch j serves both grad_y f and grad_x f.
- With minibatches, D + 1 fresh inner batches per iteration: one per
  gradient step, one shared by the CG solve and the cross product.
- Defaults D = N = 10 and ``batch_size="full"``, as the other double-loop
  solvers and the JAX benchmark's full-batch implicit solvers; no reference
  tunes them.

Oracle calls per iteration: D + 1 gradients (D inner, one outer giving
grad_y f and grad_x f together), N + 1 Hessian-vector products (N with
``warm_start_v=False``: the warm start costs one product, for the initial
residual), 1 cross product. Memory: w plus the CG work vectors (4 x
dim_inner).
"""
from benchmark_utils.problems.implicit import conjugate_gradient
from benchmark_utils.solver.base import (
    COMMON_PARAMETERS,
    StochasticBilevelSolver,
)
from benchmark_utils.validation import (
    check_bool,
    check_positive_int,
)


class Solver(StochasticBilevelSolver):
    """AID-CG (AID-BiO of Ji, Yang, Liang, ICML 2021; AmIGO-CG of Arbel &
    Mairal, ICLR 2022): inner gradient steps, then a warm-started conjugate
    gradient solve of the linear system."""

    name = "AID-CG"
    parameters = {
        "step_size": [0.3],       # beta
        "outer_ratio": [3.0],     # alpha / beta
        "n_inner_steps": [10],    # D
        "n_cg_steps": [10],       # N
        "warm_start_v": [True],
        **COMMON_PARAMETERS,
        "batch_size": ["full"],
    }
    test_config = {"batch_size": 16, "n_inner_steps": 2, "n_cg_steps": 2}
    #: tests/test_convergence.py: full batch on three quadratics within
    #: n_iter iterations; minibatches of 16 on one, where the mean gap
    #: h(x) - h* must fall below gap_ratio of its start
    convergence_config = {
        # N = 10 CG steps = dim_inner: the linear system is solved exactly
        "full_batch": {"params": dict(step_size=1.0, outer_ratio=0.5,
                                      n_inner_steps=10, n_cg_steps=10),
                       "n_iter": 300},
        "minibatch": {"params": dict(step_size=0.3, outer_ratio=0.3,
                                     n_inner_steps=10, n_cg_steps=10),
                      "n_iter": 200, "gap_ratio": 0.1},
    }
    #: tests/test_oracle_counts.py: parameters, and the (gradients,
    #: Hessian-vector products, cross products) of every iteration with
    #: them, with minibatches and with full batches
    oracle_counts_config = [
        # the warm start costs one product, for the initial residual
        (dict(n_inner_steps=3, n_cg_steps=4), (4, 5, 1)),
        (dict(n_inner_steps=3, n_cg_steps=4, warm_start_v=False), (4, 4, 1)),
    ]

    def init_state(self):
        self.beta, self.alpha = self.step_sizes()
        self.n_inner = check_positive_int(self.n_inner_steps,
                                          "n_inner_steps")
        self.n_cg = check_positive_int(self.n_cg_steps, "n_cg_steps")
        check_bool(self.warm_start_v, "warm_start_v")
        return self.start(
            w=self.problem.inner_var0.new_zeros(self.problem.dim_inner))

    def step(self, state):
        oracles, y, x = self.oracles, state.inner_var, state.outer_var

        # 1. inner gradient steps, warm started
        for _ in range(self.n_inner):
            y.sub_(oracles.grad_inner_y(y, x, self.inner_batch()),
                   alpha=self.beta)

        # 2.-3. w ~ H_i^{-1} b by N CG steps on one batch i
        grad_y_f, grad_x_f = oracles.grad_outer(y, x, self.outer_batch())
        batch = self.inner_batch()
        state.w = conjugate_gradient(
            lambda u: oracles.hvp(y, x, u, batch), grad_y_f,
            x0=state.w if self.warm_start_v else None, tol=0,
            max_iter=self.n_cg)

        # 4.-5. d = c - J_i w;  x <- x - alpha d
        cross = oracles.cross(y, x, state.w, batch)
        x.sub_(grad_x_f, alpha=self.alpha).add_(cross, alpha=self.alpha)
