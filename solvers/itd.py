"""ITD: iterative differentiation through T unrolled inner gradient steps.

L. Franceschi, M. Donini, P. Frasconi, M. Pontil, "Forward and reverse
gradient-based hyperparameter optimization", ICML 2017 (reverse-mode
hypergradient, their Algorithm 1); as jaxopt's unrolled differentiation of
``GradientDescent`` (M. Blondel, Q. Berthet, M. Cuturi, R. Frostig, S. Hoyer,
F. Llinares-Lopez, F. Pedregosa, J.-P. Vert, "Efficient and modular implicit
differentiation", NeurIPS 2022). The hypergradient is the exact gradient of
F(x) = f_j(x, y_T(x)), y_T(x) the output of T gradient steps on g from a
start y_0 treated as independent of x. One outer iteration:

1. ``y_0 <- y`` (``warm_start=True``) or the problem's starting point
   (``False``); no gradient flows through y_0.
2. Forward: for t = 0..T-1, store y_t and its batch i_t, then
   ``y_{t+1} <- y_t - beta * grad_y g_{i_t}(x, y_t)``.
3. ``a, d <- grad_y f_j(x, y_T), grad_x f_j(x, y_T)`` (one outer batch j).
4. Backward, for t = T-1 down to 0, with one fused call at (x, y_t) on i_t:
   ``d <- d - beta * J_{i_t} a`` and ``a <- a - beta * H_{i_t} a``
   (``benchmark_utils/solver/unrolling.py``; exact, as autograd through the
   unrolled loop, from Hessian-vector and cross products only).
5. ``x <- x - alpha * d`` with ``alpha = outer_ratio * beta``; ``y <- y_T``.

Bias: with full batches and a warm start, at a fixed point y = y*(x) and
d = grad_x f - beta J sum_{q<T} (I - beta H)^q grad_y f, a Neumann series of
T terms: ITD's fixed point misses the stationary point of h by the
truncation, grad h = -J (I - beta H)^T H^{-1} grad_y f there, which vanishes
only as T grows.

Choices (the method is the papers'; these are left open or differ from the
JAX benchmark's ``jaxopt_ITD``):
- A fixed inner step beta by default. ``line_search=True`` (full batch
  only) uses instead jaxopt's backtracking: the trial step starts at 1 at
  every outer iteration and halves (at most 15 times) until
  ``g(y - s gy) <= g(y) - s/2 ||gy||^2``; the next trial is 2 s (1 again
  once s <= 1e-6); the inner loop stops early once ``||grad_y g|| <= 1e-3``.
  The accepted steps s_t replace beta in steps 2 and 4, as constants. The
  outer step stays ``outer_ratio * step_size``.
- With minibatches, a fresh inner batch for each unrolled step (the same
  batch in the backward pass) and one outer batch j per iteration.
- ``batch_size`` defaults to ``"full"``, as the JAX benchmark runs it.

Oracle calls per iteration: 2T + 1 gradients (T forward, T unused in the
fused backward calls, one of f), T Hessian-vector products, T cross
products. Memory: the T iterates y_t, T x dim_inner numbers (plus T batch
index tensors), with the default T = 10: 10 x 20 (float64) on ``simulated``,
10 x 7850 (785 x 10 weights, float32, 314 KB) on MNIST / FashionMNIST
hyper-cleaning, 10 x 22 on ijcnn1, 10 x 2602160 (130108 x 20, float32,
104 MB) on 20newsgroups.
"""
from benchmark_utils.solver.base import (
    COMMON_PARAMETERS,
    StochasticBilevelSolver,
)
from benchmark_utils.solver.bias import truncation_bias
from benchmark_utils.solver.unrolling import (
    Backtracking,
    reverse_hypergradient,
    unroll,
)
from benchmark_utils.validation import (
    check_bool,
    check_positive_int,
)

#: The line search's stopping tolerance on ||grad_y g|| (jaxopt's ``tol``).
LINE_SEARCH_TOL = 1e-3


class Solver(StochasticBilevelSolver):
    """ITD (reverse-mode iterative differentiation, Franceschi et al., ICML
    2017; jaxopt's unrolling): exact gradient of f through T inner gradient
    steps."""

    name = "ITD"
    parameters = {
        "step_size": [0.9],       # beta
        "outer_ratio": [1.0],     # alpha / beta
        "n_inner_steps": [10],    # T
        "warm_start": [True],
        "line_search": [False],
        **COMMON_PARAMETERS,
        "batch_size": ["full"],
    }
    test_config = {"batch_size": 16, "n_inner_steps": 2}
    #: tests/test_convergence.py: full batch on three quadratics within
    #: n_iter iterations; minibatches of 16 on one, where the mean gap
    #: h(x) - h* must fall below gap_ratio of its start
    convergence_config = {
        # T = 100 steps of 1.5: bias (1 - 1.5 mu)^100, about 0.015 at
        # cond 100
        "full_batch": {"params": dict(step_size=1.5, outer_ratio=0.3,
                                      n_inner_steps=100),
                       "n_iter": 100},
        "minibatch": {"params": dict(step_size=0.3, outer_ratio=0.3,
                                     n_inner_steps=10),
                      "n_iter": 200, "gap_ratio": 0.1},
    }
    #: tests/test_oracle_counts.py: parameters, and the (gradients,
    #: Hessian-vector products, cross products) of every iteration with
    #: them, with minibatches and with full batches
    oracle_counts_config = [
        # T gradients forward, T fused calls backward, one gradient of f
        (dict(n_inner_steps=3), (7, 3, 3)),
    ]

    def init_state(self):
        self.beta, self.alpha = self.step_sizes()
        self.n_inner = check_positive_int(self.n_inner_steps,
                                          "n_inner_steps")
        check_bool(self.warm_start, "warm_start")
        check_bool(self.line_search, "line_search")
        self.backtracking = None
        if self.line_search:
            if not self.inner_batch.full:
                raise ValueError(
                    "line_search=True needs batch_size='full' (it compares "
                    f"values of g on the full batch), got batch_size="
                    f"{self.batch_size!r}."
                )
            self.backtracking = Backtracking()
        return self.start()

    def step(self, state):
        oracles, x = self.oracles, state.outer_var
        y0 = state.inner_var if self.warm_start else self.problem.inner_var0

        # 1.-2. forward pass, storing (y_t, i_t, beta_t)
        y, history = unroll(oracles, y0, x, self.n_inner, self.beta,
                            self.inner_batch, self.backtracking,
                            LINE_SEARCH_TOL)

        # 3.-4. reverse pass from the partial gradients of f at y_T
        grad_y_f, grad_x_f = oracles.grad_outer(y, x, self.outer_batch())
        direction = reverse_hypergradient(oracles, x, history, grad_y_f,
                                          grad_x_f)

        # 5.
        x.sub_(direction, alpha=self.alpha)
        # (a clone if no step was taken, not to alias inner_var0)
        state.inner_var = y if history else y.clone()

    def full_batch_bias(self, problem):
        """Relative ||grad h|| / ||grad h(x0)|| where the full-batch iterates
        settle on a quadratic ``problem``: at y = y*(x) the direction is
        grad_x f - J beta sum_{q<T} (I - beta H)^q grad_y f, which misses
        J (I - beta H)^T H^{-1} grad_y f of grad h (``bias.truncation_bias``;
        beta ``step_size``, T ``n_inner_steps``)."""
        return truncation_bias(problem, self.get_result()["outer_var"],
                               self.step_size, self.n_inner_steps)
