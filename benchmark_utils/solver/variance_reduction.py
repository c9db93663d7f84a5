"""Variance reduction: SAGA memory tables and the STORM correction.

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
estimate corrected by the same estimator at the previous point.
"""
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
    estimator ``g_new`` (``g_old`` may then be None).
    """
    if momentum == 1:
        return d.copy_(g_new)
    return d.sub_(g_old).mul_(1 - momentum).add_(g_new)
