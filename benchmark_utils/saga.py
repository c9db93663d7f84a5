"""SAGA memory tables for variance-reduced single-loop solvers (SABA).

The samples are split once into the fixed batches of a
:class:`benchmark_utils.samplers.BatchPartition`. A :class:`SagaTable` keeps,
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
"""
import torch


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
