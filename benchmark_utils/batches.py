"""Minibatches: how a problem receives them and how solvers draw them.

A batch ``idx`` is a LongTensor of sample indices, or ``None`` for the full
set (``batch_size="full"``), as ``BilevelProblem`` expects.

Blocks. A sampler may hand out *blocks*: index tensors
``arange(start, start + n)`` that also carry ``(start, n)``. A problem reads
a block's rows as a view of its data (``narrow``, through :func:`take` and
:func:`add_at`) instead of gathering them: on FashionMNIST the gather of 64
random rows costs about as much as the two products of a gradient. Code that
ignores the marker still sees a correct index tensor, and a block moved to
another device loses it and falls back to gathers.

Samplers, seeded from a solver's ``torch.Generator``, in two schemes (a
solver's ``sampling`` parameter):
- ``"shuffle"``: every epoch draws a new random partition of the samples.
- ``"blocks"``: the partition is fixed, consecutive samples in storage
  order (:func:`contiguous_blocks`), and only the order of the blocks is
  reshuffled at every epoch. The bundled datasets store their samples in a
  seeded random order, so the blocks are a random partition drawn once per
  dataset. This is the scheme of benchopt's JAX bilevel benchmark.
"""
import torch

from benchmark_utils.validation import check_batch_size, check_choice

#: The accepted values of a solver's ``sampling`` parameter.
SAMPLINGS = ["shuffle", "blocks"]


def contiguous_blocks(n_samples, batch_size, device="cpu"):
    """``range(n_samples)`` cut into consecutive blocks of ``batch_size``
    (the last one holds the remainder), each marked as a block."""
    blocks = list(torch.arange(n_samples, device=device).split(batch_size))
    start = 0
    for block in blocks:
        block.block = (start, block.shape[0])
        start += block.shape[0]
    return blocks


def block_of(idx):
    """``(start, n)`` if the batch ``idx`` is a marked block, else None."""
    return getattr(idx, "block", None)


def take(tensor, idx, dim=0):
    """``tensor.index_select(dim, idx)``; a view of ``tensor`` for a block
    (callers must not write into it). A batch may carry the rows it reads:
    ``idx.rows_of(tensor, dim)`` returns them, or None to read them here
    (the batches of a compiled iteration read their rows from the graph's
    inputs: benchmark_utils/solver/compiled_step.py)."""
    block = block_of(idx)
    if block is not None:
        return tensor.narrow(dim, *block)
    rows_of = getattr(idx, "rows_of", None)
    if rows_of is not None:
        rows = rows_of(tensor, dim)
        if rows is not None:
            return rows
    return tensor.index_select(dim, idx.to(tensor.device))


def add_at(out, idx, values, alpha=1):
    """``out[idx] += alpha * values`` in place along dim 0, summed over
    repeated indices (as ``index_add_``). Returns ``out``."""
    block = block_of(idx)
    if block is not None:
        out.narrow(0, *block).add_(values, alpha=alpha)
        return out
    return out.index_add_(0, idx.to(out.device), values, alpha=alpha)


class BatchSampler:
    """Minibatches of ``range(n_samples)``, reshuffled at every epoch.

    Each epoch visits every sample exactly once; when ``batch_size`` does not
    divide ``n_samples`` one batch of the epoch is the smaller remainder (the
    last one with ``sampling="shuffle"``), and since losses are means over
    the batch it stays an unbiased estimate. ``sampling``: see the module
    docstring.
    """

    def __init__(self, n_samples, batch_size, generator, device="cpu",
                 sampling="shuffle"):
        self.n_samples = n_samples
        self.batch_size = check_batch_size(batch_size)
        self.generator = generator
        self.device = torch.device(device)
        self.full = batch_size == "full" or batch_size >= n_samples
        self.blocks = None
        if check_choice(sampling, "sampling", SAMPLINGS) == "blocks" \
                and not self.full:
            self.blocks = contiguous_blocks(n_samples, batch_size,
                                            self.device)
        self._batches = []
        self.n_epochs = 0  # epochs started

    def __call__(self):
        if self.full:
            return None
        if not self._batches:
            self._batches = list(self.epoch()[::-1])
            self.n_epochs += 1
        return self._batches.pop()

    def epoch(self):
        """The batches of one new epoch, in order."""
        if self.blocks is not None:
            order = torch.randperm(len(self.blocks), generator=self.generator)
            return [self.blocks[b] for b in order.tolist()]
        perm = torch.randperm(self.n_samples, generator=self.generator)
        return perm.to(self.device).split(self.batch_size)


class RecordingSampler:
    """A sampler that records the batches it draws, for replays.

    ``sampler()`` draws from the wrapped sampler (any callable returning a
    batch, e.g. a :class:`BatchSampler`) and appends the batch to
    ``batches``; :meth:`clear` starts a new recording. :meth:`replay`
    returns a sampler that hands out the recorded batches again, in order:
    the same tensors (block markers included) or ``None`` for the full
    batch. A replay draws nothing from the wrapped sampler, so the next
    ``sampler()`` continues its sequence as if no replay had happened.
    """

    def __init__(self, sampler):
        self.sampler = sampler
        self.batches = []

    @property
    def full(self):
        return getattr(self.sampler, "full", False)

    def __call__(self):
        batch = self.sampler()
        self.batches.append(batch)
        return batch

    def clear(self):
        self.batches = []

    def replay(self):
        return _Replay(list(self.batches))


class _Replay:
    """The recorded batches, one per call; a call past the end raises."""

    def __init__(self, batches):
        self._batches = batches[::-1]

    def __len__(self):
        return len(self._batches)

    def __call__(self):
        if not self._batches:
            raise IndexError("the replay has handed out every recorded "
                             "batch; record more draws before replaying.")
        return self._batches.pop()


class BatchPartition:
    """A fixed partition of the samples into batches, for memory methods.

    ``sample()`` returns ``(batch_id, idx)`` with ``batch_id`` drawn with
    probability ``weights[batch_id] = len(idx) / n_samples``, so that a SAGA
    estimate ``c_b - memory[b] + sum_b weights[b] memory[b]`` is unbiased
    even when the last batch is smaller. The partition is random
    (``sampling="shuffle"``) or the consecutive blocks (``"blocks"``).
    """

    _DRAWS = 4096  # batch ids drawn per call to the generator

    def __init__(self, n_samples, batch_size, generator, device="cpu",
                 sampling="shuffle"):
        check_batch_size(batch_size)
        check_choice(sampling, "sampling", SAMPLINGS)
        self.generator = generator
        if batch_size == "full" or batch_size >= n_samples:
            self.batches = [None]
            sizes = torch.tensor([n_samples])
        else:
            if sampling == "blocks":
                self.batches = contiguous_blocks(n_samples, batch_size,
                                                 device)
            else:
                perm = torch.randperm(n_samples, generator=generator)
                self.batches = [b.to(device)
                                for b in perm.split(batch_size)]
            sizes = torch.tensor([len(b) for b in self.batches])
        self.weights = sizes.double() / n_samples
        self._uniform = bool((sizes == sizes[0]).all())
        self._ids = []

    def __len__(self):
        return len(self.batches)

    def sample(self):
        if not self._ids:
            if self._uniform:
                ids = torch.randint(len(self.batches), (self._DRAWS,),
                                    generator=self.generator)
            else:
                ids = torch.multinomial(self.weights, self._DRAWS,
                                        replacement=True,
                                        generator=self.generator)
            self._ids = ids.tolist()[::-1]
        batch_id = self._ids.pop()
        return batch_id, self.batches[batch_id]
