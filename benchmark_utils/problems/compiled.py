"""Compiled oracle kernels: one inductor-compiled call per minibatch oracle.

An eager minibatch oracle is a Python sequence of a dozen small operators,
each paying PyTorch's dispatch (a few microseconds on CPU, as much as the
arithmetic of a 64-row batch). :func:`call` runs a pure tensor function
``fn(*tensors, **constants) -> tuple of tensors`` through a compiled
version instead: traced once per input signature with ``make_fx`` (after
inductor's decompositions) and compiled by ``compile_fx_inner``, which
fuses the elementwise work into a few C++ loops around the matrix products.

The compiled function is called directly, without ``torch.compile``'s
guards and wrappers (measured on CPU: about 50 us per call through
``torch.compile`` against about 8 us this way, for a function whose eager
version costs 10 us). The guards are replaced by the cache key: the
function, its constants and every input's shape, strides, dtype and device;
the compiled code also checks sizes and strides itself. A new batch size
(the smaller last batch of an epoch) compiles once more.

Inputs that require gradients (a caller differentiating through an
oracle) run eagerly: the compiled code records nothing for autograd.
Compilation needs a C++ compiler. If it fails, :func:`call` warns once,
with the reason, and runs ``fn`` eagerly from then on.

Whole solver iterations compile through the same two steps, :func:`trace`
and :func:`compile_graph` (``benchmark_utils/solver/compiled_step.py``);
while one is traced, :func:`call` runs ``fn`` itself (:func:`inlined`), so
that the oracles' arithmetic becomes part of the iteration's graph.
"""
import contextlib
import warnings

import torch

_CACHE = {}
_BROKEN = []  # the first compilation error, if any
_INLINED = []  # non-empty while a caller traces through the oracles
_N_STEPS = [0]  # whole-iteration kernels compiled (compiled_step.py)


def _signature(tensors):
    return tuple((t.shape, t.stride(), t.dtype, t.device) for t in tensors)


def trace(fn, tensors, fake_mode=None):
    """The graph of ``fn(*tensors)`` (a tuple of tensors), traced with
    ``make_fx`` after inductor's decompositions. In-place updates of the
    inputs stay in the graph as copies into them at its end
    (functionalization; views stay views, so that a transposed operand
    reaches the matrix product without a copy). ``fake_mode``: that of
    :func:`symbolic` inputs."""
    from torch._inductor.decomposition import select_decomp_table
    from torch.fx.experimental.proxy_tensor import make_fx

    with torch.no_grad(), fake_mode or contextlib.nullcontext():
        return make_fx(torch.func.functionalize(fn, remove="mutations"),
                       decomposition_table=select_decomp_table())(*tensors)


def symbolic(tensors, dims):
    """``(fake_mode, fakes)``: fake copies of ``tensors`` for a trace whose
    graph takes any size along dimension ``dims[i]`` of input ``i`` (None:
    every size fixed), each such size its own symbol of
    ``fake_mode.shape_env`` (and so may be the strides of those inputs).
    The assumptions the trace and the compiler make about those sizes end
    up in that environment's ``guards``."""
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.fx.experimental.symbolic_shapes import (
        DimDynamic,
        ShapeEnv,
        StatelessSymbolicContext,
    )

    mode = FakeTensorMode(shape_env=ShapeEnv(), allow_non_fake_inputs=True)
    fakes = []
    for tensor, dim in zip(tensors, dims):
        sizes = [DimDynamic.DYNAMIC if d == dim else DimDynamic.STATIC
                 for d in range(tensor.dim())]
        fakes.append(mode.from_tensor(
            tensor,
            symbolic_context=StatelessSymbolicContext(dynamic_sizes=sizes)))
    return mode, fakes


def compile_graph(graph, tensors):
    """Inductor's compiled version of a :func:`trace` graph, called as
    ``kernel(list_of_inputs)``."""
    from torch._inductor.compile_fx import compile_fx_inner

    with torch.no_grad():
        return compile_fx_inner(graph, list(tensors))


def tracing():
    """True while a compiled iteration traces through the oracles
    (within :func:`inlined`)."""
    return bool(_INLINED)


@contextlib.contextmanager
def inlined():
    """Within: :func:`call` runs ``fn`` eagerly (for a caller's trace)."""
    _INLINED.append(True)
    try:
        yield
    finally:
        _INLINED.pop()


def _compile(fn, tensors, constants):
    def pure(*args):
        return tuple(fn(*args, **constants))

    return compile_graph(trace(pure, tensors), tensors)


def call(fn, *tensors, **constants):
    """``fn(*tensors, **constants)`` (a tuple of tensors) through its
    compiled version for these inputs' signature, compiled on first use."""
    if _INLINED or (torch.is_grad_enabled()
                    and any(t.requires_grad for t in tensors)):
        # (the compiled code does not record a graph for autograd)
        return fn(*tensors, **constants)
    key = (fn, tuple(sorted(constants.items())), _signature(tensors))
    kernel = _CACHE.get(key)
    if kernel is None:
        if _BROKEN:
            return fn(*tensors, **constants)
        try:
            kernel = _compile(fn, tensors, constants)
        except Exception as error:  # no compiler, unsupported torch, ...
            _BROKEN.append(error)
            warnings.warn(f"compiled oracles are unavailable, running "
                          f"eagerly instead ({type(error).__name__}: "
                          f"{str(error)[:300]})", RuntimeWarning,
                          stacklevel=2)
            return fn(*tensors, **constants)
        _CACHE[key] = kernel
    return kernel(list(tensors))


def n_compiled():
    """The number of compiled kernels: oracles (function x input
    signature) and whole iterations."""
    return len(_CACHE) + _N_STEPS[0]
