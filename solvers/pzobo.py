"""PZOBO: Hessian-free unrolled differentiation with a zeroth-order Jacobian.

D. Sow, K. Ji, Y. Liang, "On the convergence theory for Hessian-free
bilevel algorithms", NeurIPS 2022, Algorithm 1 (PZOBO; PZOBO-S, its
stochastic version, in the appendix). It is ITD (``solvers/itd.py``) whose
Jacobian d y_T / d x is replaced by Gaussian finite differences, so that
only gradients are needed. One iteration, with beta = ``step_size``,
alpha = ``outer_ratio`` * beta and the unrolled map

    y_T(x') = T steps  y <- y - beta grad_y g_{i_t}(x', y)  from y_s:

1. ``y_s <- y``; run the T steps at x, giving y_T, and record the batches
   i_1..i_T (``benchmark_utils.batches.RecordingSampler``).
2. Draw u_1..u_Q ~ N(0, I_p) with the solver's generator.
3. For each q, replay the same T steps (same batches, same beta) from y_s
   at ``x + mu u_q``, giving y_T^q; ``delta_q <- (y_T^q - y_T) / mu``.
4. ``b, c <- grad_y f_j(x, y_T), grad_x f_j(x, y_T)``.
5. ``d <- c + (1/Q) sum_q <delta_q, b> u_q``.
6. ``x <- x - alpha d`` and ``y <- y_T``.

delta_q is the Jacobian of y_T applied to u_q, up to O(mu), and
E[u u^T] = I, so d estimates ITD's direction c + (d y_T / d x)^T b.

Bias and noise: the fixed point of the mean direction is ITD's, with its
truncation bias (full batch: -J (I - beta H)^T H^{-1} grad_y f, vanishing
only as T grows). The Gaussian directions add noise even with full
batches: E ||(1/Q) sum_q u_q u_q^T w - w||^2 = (p + 1) / Q ||w||^2 for
w = (d y_T / d x)^T b, so with constant steps x keeps fluctuating around
that fixed point, the more so the larger the outer dimension p (expect
poor results where p is n_train, hyper-cleaning, or 130k, 20newsgroups).
On a quadratic g, y_T is affine in x and delta_q is exact.

Choices (left open by the paper):
- The replays reuse the main run's batches (common random numbers, as
  PZOBO-S needs: otherwise the difference measures sampling noise).
- One-sided finite differences, as in the paper.
- The Q replays run one after another (the JAX benchmark's ``pzobo`` runs
  them all at once, holding Q copies).
- Constant steps; ``batch_size`` defaults to ``"full"``, as the JAX
  benchmark runs it; with minibatches, a fresh inner batch for each of the
  T steps and one outer batch j.

Oracle calls per iteration: (Q + 1) T + 1 gradients, no second-order
oracle. Memory: y_s, one replay's iterate and one direction u_q, d + p
numbers besides d and x (plus T batch index tensors).
"""
import torch

from benchmark_utils.batches import RecordingSampler
from benchmark_utils.solver.base import (
    COMMON_PARAMETERS,
    StochasticBilevelSolver,
)
from benchmark_utils.solver.bias import relative_norm, truncation_bias
from benchmark_utils.validation import check_positive, check_positive_int


class Solver(StochasticBilevelSolver):
    """PZOBO (Sow, Ji, Liang, NeurIPS 2022): unrolled inner gradient steps
    with a Gaussian finite-difference Jacobian, Hessian-free."""

    name = "PZOBO"
    parameters = {
        "step_size": [0.9],       # beta
        "outer_ratio": [1.0],     # alpha / beta
        "mu": [0.1],              # finite-difference radius
        "n_inner_steps": [10],    # T
        "n_directions": [10],     # Q
        **COMMON_PARAMETERS,
        "batch_size": ["full"],
    }
    test_config = {"batch_size": 16, "n_inner_steps": 2, "n_directions": 2}
    #: tests/test_convergence.py: full batch on three quadratics within
    #: n_iter iterations; minibatches of 16 on one, where the mean gap
    #: h(x) - h* must fall below gap_ratio of its start
    convergence_config = {
        # T = 30 steps of 1.5, Q = 10 directions, alpha = 0.15. From 100
        # iterations on, ||grad h|| / bound only fluctuates (0.2 to 0.7 up
        # to 400 iterations on the three instances): the random directions
        # keep it from falling further.
        "full_batch": {"params": dict(step_size=1.5, outer_ratio=0.1,
                                      n_inner_steps=30, n_directions=10,
                                      mu=0.1),
                       "n_iter": 200},
        # the replays share the main run's batches
        "minibatch": {"params": dict(step_size=0.3, outer_ratio=0.3,
                                     n_inner_steps=10, n_directions=10,
                                     mu=0.1),
                      "n_iter": 200, "gap_ratio": 0.1},
    }

    def init_state(self):
        self.beta, self.alpha = self.step_sizes()
        check_positive(self.mu, "mu")
        self.n_inner = check_positive_int(self.n_inner_steps,
                                          "n_inner_steps")
        self.n_directions = check_positive_int(self.n_directions,
                                               "n_directions")
        self.recorder = RecordingSampler(self.inner_batch)
        return self.start()

    def _unrolled(self, y_s, x, draw_batch):
        """y_T: T gradient steps on g from y_s (not modified) at x."""
        y = y_s
        for _ in range(self.n_inner):
            grad = self.oracles.grad_inner_y(y, x, draw_batch())
            y = torch.add(y, grad, alpha=-self.beta)
        return y

    def step(self, state):
        x, y_s = state.outer_var, state.inner_var
        problem = self.problem

        # 1. the main run, recording its batches
        self.recorder.clear()
        y_T = self._unrolled(y_s, x, self.recorder)

        # 4. (first, so that each replay's difference is used at once)
        grad_y_f, grad_x_f = self.oracles.grad_outer(y_T, x,
                                                     self.outer_batch())

        # 2.-3., 5. d = c + (1/Q) sum_q <delta_q, b> u_q
        direction = grad_x_f.clone()
        for _ in range(self.n_directions):
            u = torch.randn(problem.dim_outer, generator=self.generator,
                            dtype=problem.dtype).to(problem.device)
            y_q = self._unrolled(y_s, x + self.mu * u, self.recorder.replay())
            delta_b = ((y_q - y_T) @ grad_y_f) / self.mu
            direction.add_(delta_b / self.n_directions * u)

        # 6.
        x.sub_(direction, alpha=self.alpha)
        state.inner_var = y_T

    def full_batch_bias(self, problem):
        """Relative ||grad h|| / ||grad h(x0)|| where the full-batch iterates
        settle on a quadratic ``problem``: ITD's truncation term
        (``bias.truncation_bias``; beta ``step_size``, T ``n_inner_steps``)
        plus the spread of the Gaussian directions, which err by
        (1/Q sum_q u_q u_q^T - I) w, of mean square (p + 1) / Q ||w||^2
        (w = -grad_x f at ITD's fixed point): with the constant step alpha
        = ``outer_ratio`` * ``step_size`` the spread of grad h scales as
        sqrt(alpha (p + 1) / Q) ||grad_x f||, measured below 1.3 times that
        scale on three quadratics (3 seeds); the bound takes twice it."""
        x = self.get_result()["outer_var"]
        grad_x_f = problem.grad_outer_x(problem.inner_solution(x), x)
        alpha = self.outer_ratio * self.step_size
        scale = (alpha * (problem.dim_outer + 1) / self.n_directions) \
            ** 0.5 * grad_x_f
        return truncation_bias(problem, x, self.step_size,
                               self.n_inner_steps) \
            + 2 * relative_norm(problem, scale)
