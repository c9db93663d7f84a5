"""MinimaxOPT: bilevel optimization as a minimax problem, multi-stage GDA.

X. Wang, R. Pan, R. Pi, T. Zhang, "Effective bilevel optimization via
minimax reformulation", arXiv:2305.13153, 2023, Algorithm 1 (multi-stage
gradient descent-ascent). The benchmark's form of the method:

    min_{x, y} max_z  L(x, y, z) = f(x, y) + lambda (g(x, y) - g(x, z)).

One iteration (single loop; the three directions at the same point, one
inner batch i and one outer batch j):
- z <- z - eta_z grad_y g_i(x, z)                     (ascent on L in z)
- y <- y - eta_y (grad_y f_j(x, y) / lambda + grad_y g_i(x, y))  (L / lambda)
- x <- x - eta_x (grad_x f_j(x, y)
                  + lambda (grad_x g_i(x, y) - grad_x g_i(x, z)))
- every ``stage_length`` iterations: lambda <- min(lambda * lmbda_factor,
  lmbda_max).
Each direction goes through ``optimizer`` ("sgd", "momentum" (heavy ball,
0.9) or "adam" (beta1 0.9, beta2 0.999, eps 1e-8)), one rule per variable,
never reset. This benchmark's Adam puts eps INSIDE the square root,
m_hat / sqrt(v_hat + eps) (``benchmark_utils/solver/optimizers.py``, as
F2SA-Adam's report writes it), where PyTorch's Adam computes
m_hat / (sqrt(v_hat) + eps): the two differ only while v_hat is below
about eps.

Reported model: **z**, the variable driven by g alone towards y*(x). y also
descends on f (the validation loss), so evaluating y would let the
validation data train the evaluated model and flatter this method against
the others.

Choices the paper leaves open:
- z and y use the SAME inner batch i: then grad_y g_i(x, y) - grad_y g_i(x, z)
  has no residual noise, which keeps lambda (y - z) (what the x step sees)
  accurate as lambda grows.
- eta_y = eta_z = step_size, eta_x = outer_ratio * step_size, constant (the
  paper uses a cosine decay in its CIFAR experiment; not reproduced).
- Defaults: lambda doubling every 100 iterations up to 1000, SGD;
  step_size and outer_ratio: the tuning protocol's choice
  across the problems it tuned (docs/TUNING.md,
  ``experiments/tuned/defaults.csv``; the paper's initial learning
  rate on MNIST is 0.1, for unscaled sample logits).
- lambda grows after iterations stage_length, 2 stage_length, ...; the
  iterate of the iteration that ends a stage uses the old lambda.
- Momentum / Adam constants are the usual defaults (not tunable here).
- y0 = z0 = the problem's inner_var0, x0 = outer_var0.

Oracle calls per iteration: 3 gradient passes (grad_inner at (x, z) and
(x, y), each giving grad_y g and grad_x g; grad_outer at (x, y)).
"""
from benchmark_utils.solver.base import (
    COMMON_PARAMETERS,
    State,
    StochasticBilevelSolver,
)
from benchmark_utils.solver.bias import penalty_bias
from benchmark_utils.solver.optimizers import OPTIMIZERS, make_optimizer
from benchmark_utils.solver.penalty import penalty_x, penalty_y
from benchmark_utils.validation import (
    check_choice,
    check_positive,
    check_positive_int,
)


class Solver(StochasticBilevelSolver):
    """MinimaxOPT (Wang, Pan, Pi, Zhang, 2023): multi-stage gradient
    descent-ascent on the minimax reformulation. Reports z."""

    name = "MinimaxOPT"
    reported_inner = "z"
    parameters = {
        "step_size": [0.1],       # eta_y = eta_z
        "outer_ratio": [0.3],
        "lmbda0": [1.0],
        "lmbda_factor": [2.0],
        "stage_length": [100],
        "lmbda_max": [1e3],
        "optimizer": ["sgd"],
        **COMMON_PARAMETERS,
    }
    test_config = {"step_size": 0.1}
    #: tests/test_convergence.py: full batch on three quadratics within
    #: n_iter iterations; minibatches of 16 on one, where the mean gap
    #: h(x) - h* must fall below gap_ratio of its start
    convergence_config = {
        # lambda doubles every 100 iterations up to lmbda_max = 1000
        "full_batch": {"params": dict(step_size=0.5, outer_ratio=0.3),
                       "n_iter": 3000},
        "minibatch": {"params": dict(step_size=0.1, outer_ratio=0.3),
                      "n_iter": 500, "gap_ratio": 0.5},
    }

    def init_state(self):
        check_positive(self.step_size, "step_size")
        self.eta_x = check_positive(self.outer_ratio, "outer_ratio") * \
            self.step_size
        check_positive(self.lmbda0, "lmbda0")
        check_positive(self.lmbda_factor, "lmbda_factor")
        if self.lmbda_factor <= 1:
            raise ValueError(
                f"lmbda_factor must be > 1, got {self.lmbda_factor!r}.")
        check_positive_int(self.stage_length, "stage_length")
        check_positive(self.lmbda_max, "lmbda_max")
        if self.lmbda_max < self.lmbda0:
            raise ValueError(
                f"lmbda_max must be >= lmbda0 ({self.lmbda0!r}), got "
                f"{self.lmbda_max!r}.")
        check_choice(self.optimizer, "optimizer", OPTIMIZERS)
        problem = self.problem
        return State(outer_var=problem.outer_var0.clone(),
                     y=problem.inner_var0.clone(),
                     z=problem.inner_var0.clone(),
                     lmbda=float(self.lmbda0),
                     opt_x=make_optimizer(self.optimizer),
                     opt_y=make_optimizer(self.optimizer),
                     opt_z=make_optimizer(self.optimizer))

    def step(self, state):
        oracles, lmbda = self.oracles, state.lmbda
        x, y, z = state.outer_var, state.y, state.z
        i, j = self.inner_batch(), self.outer_batch()

        # All directions at the current point (x, y, z).
        grad_g_y_z, grad_g_x_z = oracles.grad_inner(z, x, i)
        grad_g_y_y, grad_g_x_y = oracles.grad_inner(y, x, i)
        grad_f_y, grad_f_x = oracles.grad_outer(y, x, j)
        d_z = grad_g_y_z
        d_y = penalty_y(grad_f_y, grad_g_y_y, lmbda, normalized=True)
        d_x = penalty_x(grad_f_x, grad_g_x_y, grad_g_x_z, lmbda)

        state.opt_z.update(z, d_z, self.step_size)
        state.opt_y.update(y, d_y, self.step_size)
        state.opt_x.update(x, d_x, self.eta_x)

        # Multi-stage multiplier.
        if self.n_iter % self.stage_length == 0:
            state.lmbda = min(lmbda * self.lmbda_factor, self.lmbda_max)

    def full_batch_bias(self, problem):
        """Relative ||grad h|| / ||grad h(x0)|| where the full-batch iterates
        settle on a quadratic ``problem``: O(1 / lambda) for the current
        multiplier lambda, ``state.lmbda`` (``bias.penalty_bias``)."""
        return penalty_bias(problem, self.state.lmbda)
