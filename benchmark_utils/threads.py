"""The number of threads torch uses on the CPU: one, unless
``OMP_NUM_THREADS`` is set.

A minibatch step's products are too small to gain from a second thread,
and when another process holds a core, two-thread OpenMP kernels stall:
measured 10-100x slower per solver step on a busy 2-core machine, and
building 20newsgroups' problem (its full-batch inner solve, made of large
sparse products) took 24-35 s with two threads against 6.5-7 s with one on
the same busy machine (2026-12-04).
"""
import os
from contextlib import contextmanager

import torch


def default_threads():
    """The thread count to use: 1, or None to keep torch's own when
    ``OMP_NUM_THREADS`` is set."""
    return None if "OMP_NUM_THREADS" in os.environ else 1


def use_default_threads():
    """Set torch's CPU thread count to :func:`default_threads`, for the
    rest of the process (a solver's run)."""
    n = default_threads()
    if n is not None:
        torch.set_num_threads(n)


@contextmanager
def default_thread_count():
    """:func:`default_threads` inside the block, torch's previous thread
    count after it (work done before any solver runs: building a problem,
    the objective's first exact solve)."""
    before = torch.get_num_threads()
    use_default_threads()
    try:
        yield
    finally:
        torch.set_num_threads(before)
