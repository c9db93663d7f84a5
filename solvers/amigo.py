"""AmIGO: amortized implicit gradient optimization.

M. Arbel, J. Mairal, "Amortized implicit differentiation for stochastic
bilevel optimization", ICLR 2022, Algorithms 1-3 (AmIGO, with SGD as the
inner solver, Alg. 2, and SGD on the linear system, Alg. 3). Both the inner
problem and the linear system ``H v = -grad_y f`` advance by a few SGD steps
from their values at the previous outer iteration; the warm starts amortize
the cost. One outer iteration:

1. T warm-started SGD steps on g: ``y <- y - beta * grad_y g_i(x, y)``,
   a fresh inner batch i each step.
2. ``b, c <- grad_y f_j(x, y), grad_x f_j(x, y)`` (one fresh outer batch j).
3. N warm-started SGD steps on the quadratic 1/2 v.H v + b.v, b held fixed:
   ``v <- v - eta * (H_i(x, y) v + b)``, a fresh inner batch i each step.
4. ``d <- c + J_i(x, y) v`` (a fresh inner batch).
5. ``x <- x - alpha * d`` with ``alpha = outer_ratio * beta``.

v tracks -H^{-1} grad_y f (v_0 = 0). With full batches the fixed point is
unbiased: y = y*(x), v = -H^{-1} grad_y f and d = grad h(x).

Choices (left open by the paper, as in the JAX benchmark's ``amigo``):
- grad_y f is drawn once per outer iteration and reused across the N
  linear-system steps (the paper's Alg. 3 takes it as an input).
- The cross product uses its own fresh inner batch.
- Constant steps, as in the paper's analysis; N defaults to T and eta to
  beta (the JAX benchmark ties them).
- The paper's AmIGO-CG variant (conjugate gradient on the linear system) is
  ``solvers/aid_cg.py``.

Oracle calls per iteration: T + 1 gradients (T inner, one outer giving
grad_y f and grad_x f together), N Hessian-vector products, 1 cross
product. Memory: v (the inner dimension).
"""
from benchmark_utils.solver.base import (
    COMMON_PARAMETERS,
    StochasticBilevelSolver,
)
from benchmark_utils.validation import check_positive, check_positive_int


class Solver(StochasticBilevelSolver):
    """AmIGO (Arbel & Mairal, ICLR 2022): warm-started SGD on the inner
    problem and on the linear system of implicit differentiation."""

    name = "AmIGO"
    parameters = {
        "step_size": [0.03],       # beta
        "outer_ratio": [1.0],     # alpha / beta
        "n_inner_steps": [10],    # T
        "n_v_steps": [None],      # N; None: T
        "v_step": [None],         # eta; None: beta
        **COMMON_PARAMETERS,
    }
    test_config = {"batch_size": 16, "n_inner_steps": 2}
    #: tests/test_convergence.py: full batch on three quadratics within
    #: n_iter iterations; minibatches of 16 on one, where the mean gap
    #: h(x) - h* must fall below gap_ratio of its start
    convergence_config = {
        # T = N = 10 SGD steps on y and on the linear system, warm started
        "full_batch": {"params": dict(step_size=1.0, outer_ratio=0.5,
                                      n_inner_steps=10, n_v_steps=10,
                                      v_step=1.0),
                       "n_iter": 500},
        "minibatch": {"params": dict(step_size=0.3, outer_ratio=0.1,
                                     n_inner_steps=10, n_v_steps=10,
                                     v_step=0.3),
                      "n_iter": 300, "gap_ratio": 0.1},
    }
    #: tests/test_oracle_counts.py: parameters, and the (gradients,
    #: Hessian-vector products, cross products) of every iteration with
    #: them, with minibatches and with full batches
    oracle_counts_config = [
        (dict(n_inner_steps=3, n_v_steps=4), (4, 4, 1)),
    ]

    def init_state(self):
        self.beta, self.alpha = self.step_sizes()
        self.n_inner = check_positive_int(self.n_inner_steps,
                                          "n_inner_steps")
        self.n_v = (self.n_inner if self.n_v_steps is None
                    else check_positive_int(self.n_v_steps, "n_v_steps"))
        self.eta = (self.beta if self.v_step is None
                    else check_positive(self.v_step, "v_step"))
        return self.start(
            v=self.problem.inner_var0.new_zeros(self.problem.dim_inner))

    def step(self, state):
        oracles, y, x, v = self.oracles, state.inner_var, state.outer_var, \
            state.v

        # 1. inner SGD, warm started
        for _ in range(self.n_inner):
            y.sub_(oracles.grad_inner_y(y, x, self.inner_batch()),
                   alpha=self.beta)

        # 2.-3. SGD on H v = -b, warm started, b fixed
        grad_y_f, grad_x_f = oracles.grad_outer(y, x, self.outer_batch())
        for _ in range(self.n_v):
            hvp = oracles.hvp(y, x, v, self.inner_batch())
            v.sub_(hvp, alpha=self.eta).sub_(grad_y_f, alpha=self.eta)

        # 4.-5. d = c + J_i v;  x <- x - alpha d
        cross = oracles.cross(y, x, v, self.inner_batch())
        x.sub_(cross, alpha=self.alpha).sub_(grad_x_f, alpha=self.alpha)
