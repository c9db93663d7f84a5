"""SABA: single-loop stochastic bilevel optimization, SAGA variance reduction.

M. Dagréou, P. Ablin, S. Vaiter, T. Moreau, "A framework for bilevel
optimization that enables stochastic and global variance reduction
algorithms", NeurIPS 2022. Three variables (y, v, x) move together from the
same point:

    D_y = grad_y g_i(x, y)
    D_v = H_i(x, y) v + grad_y f_j(x, y)
    D_x = J_i(x, y) v + grad_x f_j(x, y)
    y <- y - rho * D_y_hat;  v <- v - rho * D_v_hat;  x <- x - gamma * D_x_hat

where ``c_hat`` is the SAGA estimate of each component on its fixed batch
(``benchmark_utils/solver/variance_reduction.py``: a table of the inner
batches holding (grad_y g, H v) and J v, one of the outer batches holding
grad_y f and grad_x f; an x-direction is stored on its support only when the
problem declares one, e.g. hyper-cleaning's J_i v lives on batch i's
samples, so the memory work per step is O(batch) there). v converges to
-H^{-1} grad_y f.

Choices left open by the paper / made here:
- The fixed partitions are drawn once per run from the solver's generator
  (``BatchPartition``); a batch is drawn with probability |b| / n, so a
  smaller last batch keeps the estimates unbiased.
- The memory is initialized by one full pass over all batches at
  (y0, v0 = 0, x0) inside the timed run (in ``init_state``).
- gamma = outer_ratio * rho, and v uses the same step rho as y.
- With ``batch_size="full"`` there is one batch and SABA is plain gradient
  descent on (y, v, x) (no memory is kept).

Oracle calls per iteration: 2 gradients (one fused inner call giving
grad_y g, H v and J v; one outer call giving grad_y f and grad_x f),
1 Hessian-vector product, 1 cross product.
"""
import torch

from benchmark_utils.batches import BatchPartition
from benchmark_utils.solver.base import (
    COMMON_PARAMETERS,
    State,
    StochasticBilevelSolver,
)
from benchmark_utils.solver.variance_reduction import make_table
from benchmark_utils.validation import check_positive


class Solver(StochasticBilevelSolver):
    """SABA (Dagréou et al., NeurIPS 2022): SOBA's directions with SAGA
    variance reduction on fixed batches."""

    name = "SABA"
    parameters = {
        "step_size": [0.1],    # rho
        "outer_ratio": [0.3],  # gamma / rho
        **COMMON_PARAMETERS,
    }
    test_config = {"batch_size": 16}
    #: tests/test_convergence.py: full batch on three quadratics within
    #: n_iter iterations; minibatches of 16 on one, where the mean gap
    #: h(x) - h* must fall below gap_ratio of its start
    convergence_config = {
        "full_batch": {"params": dict(step_size=0.5, outer_ratio=0.3),
                       "n_iter": 3000},
        "minibatch": {"params": dict(step_size=0.1, outer_ratio=0.3),
                      "n_iter": 500, "gap_ratio": 0.1},
    }

    def init_state(self):
        self.rho = check_positive(self.step_size, "step_size")
        self.gamma = check_positive(self.outer_ratio, "outer_ratio") * self.rho
        problem, oracles = self.problem, self.oracles
        kw = dict(device=problem.device, sampling=self.sampling)
        self.inner_partition = BatchPartition(
            problem.n_inner, self.batch_size, self.generator, **kw)
        self.outer_partition = BatchPartition(
            problem.n_outer, self.batch_size, self.generator, **kw)
        y = problem.inner_var0.clone()
        x = problem.outer_var0.clone()
        v = torch.zeros_like(y)
        # (grad_y g, H v) and J v on inner batches; (grad_y f) and grad_x f
        # on outer batches. x-directions are stored on their support only
        # when the problem declares it (O(batch) memory work per step).
        d, p = y.numel(), x.numel()
        self.inner_table, self.cross_table = make_table(
            problem, self.inner_partition, (d, d), p, "inner")
        self.outer_table, self.grad_x_f_table = make_table(
            problem, self.outer_partition, (d,), p, "outer")
        # Memory initialization: one full pass at (y0, v0 = 0, x0).
        if len(self.inner_partition) > 1:
            for b, idx in enumerate(self.inner_partition.batches):
                grad_y_g, hvp, cross = oracles.inner_oracles(y, x, v, idx)
                self.inner_table.init(b, grad_y_g, hvp)
                self.cross_table.init(b, cross)
        if len(self.outer_partition) > 1:
            for b, idx in enumerate(self.outer_partition.batches):
                grad_y_f, grad_x_f = oracles.grad_outer(y, x, idx)
                self.outer_table.init(b, grad_y_f)
                self.grad_x_f_table.init(b, grad_x_f)
        return State(inner_var=y, outer_var=x, v=v)

    def step(self, state):
        oracles = self.oracles
        y, x, v = state.inner_var, state.outer_var, state.v
        inner_id, inner_idx = self.inner_partition.sample()
        outer_id, outer_idx = self.outer_partition.sample()

        # directions at the current point (fused inner oracles), then their
        # SAGA estimates
        grad_y_g, hvp, cross = oracles.inner_oracles(y, x, v, inner_idx)
        grad_y_g, hvp = self.inner_table.update(inner_id, grad_y_g, hvp)
        cross, = self.cross_table.update(inner_id, cross)
        grad_y_f, grad_x_f = oracles.grad_outer(y, x, outer_idx)
        grad_y_f, = self.outer_table.update(outer_id, grad_y_f)
        grad_x_f, = self.grad_x_f_table.update(outer_id, grad_x_f)

        # y <- y - rho D_y;  v <- v - rho D_v;  x <- x - gamma D_x
        y.sub_(grad_y_g, alpha=self.rho)
        v.sub_(hvp, alpha=self.rho).sub_(grad_y_f, alpha=self.rho)
        x.sub_(cross, alpha=self.gamma).sub_(grad_x_f, alpha=self.gamma)
