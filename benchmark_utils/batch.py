"""Minibatches as problems receive them, and contiguous blocks.

A batch ``idx`` is a LongTensor of sample indices (``None``: all samples).
A sampler may hand out *blocks*: index tensors ``arange(start, start + n)``
that also carry ``(start, n)``. A problem reads a block's rows as a view of
its data (``narrow``) instead of gathering them: on FashionMNIST the gather
of 64 random rows costs about as much as the two products of a gradient.
Code that ignores the marker still sees a correct index tensor, and a block
moved to another device loses it and falls back to gathers.
"""
import torch


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
    (callers must not write into it)."""
    block = block_of(idx)
    if block is not None:
        return tensor.narrow(dim, *block)
    return tensor.index_select(dim, idx.to(tensor.device))


def add_at(out, idx, values, alpha=1):
    """``out[idx] += alpha * values`` in place along dim 0, summed over
    repeated indices (as ``index_add_``). Returns ``out``."""
    block = block_of(idx)
    if block is not None:
        out.narrow(0, *block).add_(values, alpha=alpha)
        return out
    return out.index_add_(0, idx.to(out.device), values, alpha=alpha)
