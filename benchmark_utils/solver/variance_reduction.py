"""Variance reduction: SAGA memory tables, the STORM and SARAH corrections,
and the two-point estimates they compare.

SAGA. The samples are split once into the fixed batches of a
:class:`benchmark_utils.batches.BatchPartition`. A :class:`SagaTable` keeps,
for every batch b, the last value of each tracked direction computed on b,
together with the weighted mean of the table,
``mean = sum_b weights[b] * memory[b]`` with ``weights[b] = |b| / n`` (exact
for a smaller last batch). The SAGA estimate of a direction computed on batch
b is

    c_hat = c_b(new) - memory[b] + mean,

unbiased when b is drawn with probability ``weights[b]``; then
``memory[b] <- c_b(new)`` and the mean is updated incrementally,
``mean += weights[b] * (c_b(new) - memory_old[b])`` (never re-averaged).
Several directions that share a batch (e.g. grad_y g, H v and J v on an inner
batch) live in one table, concatenated in a single row, so that an update
costs a handful of tensor operations whatever their number.

STORM (Cutkosky & Orabona, NeurIPS 2019): :func:`storm_update`, a momentum
estimate corrected by the same estimator at the previous point (MRBO and
SUSTAIN apply it in :mod:`benchmark_utils.solver.storm`).
SARAH / SPIDER (Nguyen et al., ICML 2017; Fang et al., NeurIPS 2018):
:func:`sarah_update`, a running estimate moved by the difference of one
estimator between two points, refreshed by a full pass every
:func:`sarah_period` iterations.

Two-point estimates. Both corrections compare one stochastic estimator at
two points, and their variance is small only when both evaluations share
every random draw. So the draws come first and the points second:
:func:`draw_hypergradient_batches` draws B = (j, i0, i_1..i_n) (and, for the
randomized Neumann series, the truncation p) into a
:class:`HypergradientBatches`, and :func:`hypergradient_estimates` evaluates

    grad_y g_i0(x, y)   and   Phi(x, y; B) = grad_x f_j - J_i0 s,
    s ~ H^{-1} grad_y f_j  (so that Phi = grad_x f + J v with v = -s)

at every given point on that one B. Its s comes from :func:`joint_neumann`,
one Neumann chain per point on the shared sequence i_1..i_n:

- deterministic truncation NS_Q, n = Q:
  ``s = eta * sum_{q=0}^{Q} prod_{l<=q} (I - eta H_{i_l}) b``, the
  estimate of :func:`benchmark_utils.problems.implicit.neumann`;
- random truncation RNS_Q (Ghadimi & Wang, "Approximation methods for
  bilevel programming", 2018, Algorithm 3), n = p drawn uniformly in
  {0, ..., Q-1} (:func:`draw_truncation`):
  ``s = Q * eta * prod_{l<=p} (I - eta H_{i_l}) b``, the estimate of
  :func:`benchmark_utils.problems.implicit.random_neumann` (same draw of
  p), whose mean over p is ``eta * sum_{q=0}^{Q-1} (I - eta H)^q b`` for a
  fixed H.

Between two equal points the two evaluations are then bitwise equal (with
deterministic oracles, as on CPU), and a SARAH correction is exactly zero.
"""
from typing import NamedTuple

import torch

from benchmark_utils.batches import add_at, take


class SagaTable:
    """Memory of ``len(sizes)`` directions on ``len(weights)`` fixed batches.

    Parameters
    ----------
    weights : sequence of float or 1-D tensor
        Probability of each batch (``BatchPartition.weights``); sums to 1.
    sizes : sequence of int
        Dimension of each tracked direction.
    dtype, device :
        Of the memory (those of the problem's variables).
    """

    def __init__(self, weights, sizes, dtype=torch.float64, device="cpu"):
        if isinstance(weights, torch.Tensor):
            weights = weights.tolist()
        self.weights = [float(w) for w in weights]
        self.sizes = [int(s) for s in sizes]
        width = sum(self.sizes)
        self.memory = torch.zeros(len(self.weights), width, dtype=dtype,
                                  device=device)
        self.mean = torch.zeros(width, dtype=dtype, device=device)

    def __len__(self):
        return len(self.weights)

    def init(self, batch_id, *directions):
        """Store the first values on ``batch_id`` (the initial full pass)."""
        if len(self.weights) == 1:
            return
        row = torch.cat(directions)
        self.memory[batch_id].copy_(row)
        self.mean.add_(row, alpha=self.weights[batch_id])

    def update(self, batch_id, *directions):
        """SAGA estimates of ``directions`` computed on ``batch_id``.

        Returns one estimate per direction (views of one new tensor) and
        stores the new values in the memory. With a single batch (full
        batch) the estimate is the new value itself and nothing is stored.
        """
        if len(self.weights) == 1:
            return directions
        new = torch.cat(directions)
        row = self.memory[batch_id]
        diff = new - row                # c_b(new) - memory[b]
        row.copy_(new)                  # memory[b] <- c_b(new)
        estimate = diff + self.mean     # c_b(new) - memory[b] + mean
        self.mean.add_(diff, alpha=self.weights[batch_id])
        return estimate.split(self.sizes)

    def means(self):
        """The running means, one per direction (views)."""
        return self.mean.split(self.sizes)


class SupportSagaTable:
    """SAGA memory of outer-dimension directions that batch b can only make
    nonzero on the coordinates ``supports[b]``.

    Hyper-cleaning's grad_x g_i and J_i v live on batch i's own samples, so
    the memory holds |b| values per batch (n in total instead of
    n_batches x dim) and an update works on |b| coordinates: the estimate
    ``c_b(new) - memory[b] + mean`` is the mean plus ``new - memory[b]`` on
    the support, as both vanish elsewhere. Same interface as
    :class:`SagaTable` for one direction.
    """

    def __init__(self, weights, supports, dim, dtype=torch.float64,
                 device="cpu"):
        if isinstance(weights, torch.Tensor):
            weights = weights.tolist()
        self.weights = [float(w) for w in weights]
        self.supports = [s.to(device) for s in supports]
        self.memory = [torch.zeros(len(s), dtype=dtype, device=device)
                       for s in self.supports]
        self.mean = torch.zeros(dim, dtype=dtype, device=device)

    def __len__(self):
        return len(self.weights)

    def init(self, batch_id, direction):
        if len(self.weights) == 1:
            return
        support = self.supports[batch_id]
        values = take(direction, support)
        self.memory[batch_id].copy_(values)
        add_at(self.mean, support, values, alpha=self.weights[batch_id])

    def update(self, batch_id, direction):
        if len(self.weights) == 1:
            return (direction,)
        support = self.supports[batch_id]
        new = take(direction, support)
        diff = new - self.memory[batch_id]
        self.memory[batch_id].copy_(new)
        estimate = add_at(self.mean.clone(), support, diff)
        add_at(self.mean, support, diff, alpha=self.weights[batch_id])
        return (estimate,)

    def means(self):
        return (self.mean,)


def make_table(problem, partition, sizes, outer, which):
    """A SagaTable for the inner-dimension directions ``sizes`` and one for
    the outer-dimension direction, sparse when the problem declares the
    outer coordinates each batch can touch (``problem.outer_support``)."""
    weights, batches = partition.weights, partition.batches
    kw = dict(dtype=problem.dtype, device=problem.device)
    supports = [problem.outer_support(idx, which) for idx in batches]
    if len(batches) > 1 and all(s is not None for s in supports):
        outer_table = SupportSagaTable(weights, supports, outer, **kw)
    else:
        outer_table = SagaTable(weights, (outer,), **kw)
    return SagaTable(weights, sizes, **kw), outer_table


def storm_update(d, g_new, g_old, momentum):
    """STORM correction, in place on ``d``; returns ``d``.

        d <- g_new + (1 - momentum) * (d - g_old)

    ``g_new`` and ``g_old`` are the same stochastic estimator (same batches)
    at the new and at the previous point. ``momentum = 1`` gives the plain
    estimator ``g_new`` (``g_old`` may then be None). ``momentum``: a
    number or a 0-d tensor.
    """
    if g_old is None or (not torch.is_tensor(momentum) and momentum == 1):
        return d.copy_(g_new)
    return d.sub_(g_old).mul_(1 - momentum).add_(g_new)


def sarah_update(d, g_new, g_old):
    """SARAH correction, in place on ``d``; returns ``d``.

        d <- d + (g_new - g_old)

    ``g_new`` and ``g_old``: one stochastic estimator (same batches) at the
    new and at the previous point. The difference is taken first, so that
    equal points leave ``d`` bitwise unchanged.
    """
    return d.add_(g_new - g_old)


def sarah_period(period_frac, n_inner, n_outer, batch_size):
    """Iterations between two full passes of a SARAH method:
    ``max(1, int(period_frac * (n_inner + n_outer) / batch_size))``, as the
    JAX bilevel benchmark's VRBO and SRBA compute it. With
    ``batch_size="full"`` the batch size is ``max(n_inner, n_outer)`` (as
    for any larger integer, which the samplers also read as full)."""
    if batch_size == "full":
        batch_size = max(n_inner, n_outer)
    return max(1, int(period_frac * (n_inner + n_outer) / batch_size))


class HypergradientBatches(NamedTuple):
    """The draws of one hypergradient estimate, shared by every point it is
    evaluated at (see the module docstring)."""

    #: j: the outer batch of grad_y f and grad_x f
    outer: object
    #: i0: the inner batch of grad_y g and of the cross product J s
    inner: object
    #: i_1..i_n: one inner batch per Hessian-vector product of the series
    neumann: tuple
    #: Q of the random truncation (then n = p < Q and s is scaled by Q eta);
    #: None for the deterministic series
    truncation: object = None


def draw_truncation(n_steps, generator):
    """RNS's truncation p, uniform in {0, ..., n_steps - 1}."""
    if n_steps < 1:
        raise ValueError(
            f"the random truncation needs n_steps >= 1, got {n_steps!r}.")
    return int(torch.randint(n_steps, (1,), generator=generator))


def draw_hypergradient_batches(inner_batch, outer_batch, n_neumann,
                               generator=None):
    """Draw B = (j, i0, i_1..i_n) from the samplers ``inner_batch`` and
    ``outer_batch`` (callables returning a batch, or None for the full set).

    ``generator=None``: the deterministic series, n = ``n_neumann``.
    Otherwise the random truncation: p is drawn first, from ``generator``
    (:func:`draw_truncation`, the draw of
    :func:`benchmark_utils.problems.implicit.random_neumann`), then the
    batches with n = p.
    """
    truncation, n = None, n_neumann
    if generator is not None:
        truncation, n = n_neumann, draw_truncation(n_neumann, generator)
    outer, inner = outer_batch(), inner_batch()
    return HypergradientBatches(outer, inner,
                                tuple(inner_batch() for _ in range(n)),
                                truncation)


def full_hypergradient_batches(n_neumann):
    """B for the full-batch estimate Phi_full: every batch is None and the
    series is deterministic (``n_neumann`` full Hessian-vector products)."""
    return HypergradientBatches(None, None, (None,) * n_neumann)


def joint_neumann(hvp_fns, rhs, batches, step, truncation=None):
    """One Neumann chain per point, all on the batch sequence ``batches``.

    ``hvp_fns[k](u, idx)`` returns ``H_idx u`` at point k and ``rhs[k]`` is
    its b (not modified). With ``truncation=None`` chain k returns
    ``step * sum_{q=0}^{n} prod_{l<=q} (I - step H_l) b`` (n =
    ``len(batches)``), the same operations as
    :func:`benchmark_utils.problems.implicit.neumann`; with
    ``truncation=Q`` it returns ``Q * step * prod_{l<=n} (I - step H_l) b``
    (n = p, the drawn truncation). Returns the list of the estimates of
    H^{-1} b; costs ``len(batches)`` products per point.
    """
    estimates = []
    for hvp, b in zip(hvp_fns, rhs):
        u = b.clone()
        total = b.clone() if truncation is None else None
        for idx in batches:
            u.sub_(hvp(u, idx), alpha=step)
            if total is not None:
                total.add_(u)
        estimates.append(total.mul_(step) if total is not None
                         else u.mul_(truncation * step))
    return estimates


def hypergradient_estimates(oracles, points, batches, step):
    """``(grad_y g_i0(x, y), Phi(x, y; B))`` at every point ``(y, x)`` of
    ``points``, all on the one draw ``batches`` (a
    :class:`HypergradientBatches`); ``step`` is the Neumann step eta.

    Per point: one ``grad_outer`` call, the chain's Hessian-vector products,
    and one fused ``inner_oracles`` call giving grad_y g and J s (its H s
    is discarded).
    """
    outer = [oracles.grad_outer(y, x, batches.outer) for y, x in points]
    hvp_fns = [lambda u, idx, y=y, x=x: oracles.hvp(y, x, u, idx)
               for y, x in points]
    solutions = joint_neumann(hvp_fns, [b for b, _ in outer],
                              batches.neumann, step, batches.truncation)
    estimates = []
    for (y, x), (_, grad_x_f), s in zip(points, outer, solutions):
        grad_y_g, _, cross = oracles.inner_oracles(y, x, s, batches.inner)
        estimates.append((grad_y_g, grad_x_f - cross))
    return estimates
