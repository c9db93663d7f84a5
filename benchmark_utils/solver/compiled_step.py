"""Whole iterations as one compiled call (``compile=True``).

A step makes a Python-level call per oracle and per update, each paying
its wrapper and PyTorch's dispatch (a few microseconds on CPU, as much as
the arithmetic of a 64-row batch): StocBiO makes 22 oracle calls an
iteration. For the solvers whose ``step`` allows it (``traceable_step =
True``), :class:`CompiledStep` traces the whole iteration instead, oracles,
updates and all, into one graph that inductor compiles into one call. The
problem is not told: its oracles are traced as they run eagerly, so a
problem whose minibatch oracles cannot be traced (Python decisions on
tensor values, autograd) makes the solver warn and run eagerly.

What a traceable step is: it draws its batches from the solver's
``inner_batch`` and ``outer_batch`` in the same order at every iteration,
computes with tensor operations on the state's tensors, the solver's
constants and ``self.n_iter`` (a 0-d tensor while traced: use it in
arithmetic only), takes no Python decision on a tensor's value, and changes
no Python number in the state (keep such quantities in 0-d tensors).

How an iteration runs:
- The first iteration runs eagerly and records the order of the draws.
- Every later one draws its batches first, in that order. When all of them
  have ``batch_size`` samples, it runs the compiled iteration, traced and
  compiled on first use; an iteration that draws a smaller batch (the
  last one of an epoch) or the full batch runs eagerly. (A graph for any
  batch size, traced with symbolic sizes, saved 7 % of F2SA's time on
  FashionMNIST, where a fifth of its iterations meet a smaller batch, at
  the price of evaluating the compiler's size assumptions by hand:
  docs/SPEED.md.)
- The graph's inputs are the state's tensors, ``n_iter``, the batches'
  index tensors and the data rows each batch reads (views of the data for
  a block, as the eager oracles read them): while traced, each batch
  carries a ``rows_of`` function (:func:`benchmark_utils.batches.take`)
  that hands out those inputs. In-place updates of the state stay in
  place; a state tensor the step replaces is replaced.
- The oracle counts an iteration adds are those of its trace.

If tracing or compiling fails (an untraceable step or problem, no C++
compiler), the solver warns once, with the reason, and runs eagerly from
then on.
"""
import warnings

import torch

from benchmark_utils import batches

#: The solver's samplers a traceable step draws from.
SAMPLERS = ("inner_batch", "outer_batch")


class NotTraceable(RuntimeError):
    """The step does something a compiled iteration cannot replay."""


def trace(fn, tensors):
    """The graph of ``fn(*tensors)`` (a tuple of tensors), traced with
    ``make_fx`` after inductor's decompositions, on fake copies of
    ``tensors``, which carry shapes only, so that the trace does no
    arithmetic (tensors ``fn`` reads from elsewhere, the problem's data,
    stay real and become constants of the graph; a Python decision on a
    value computed from the inputs raises). In-place updates of the inputs
    stay in the graph as copies into them at its end (functionalization;
    views stay views, so that a transposed operand reaches the matrix
    product without a copy: with views turned into copies, a compiled SOBA
    iteration ran slower than the eager one)."""
    from torch._inductor.decomposition import select_decomp_table
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.fx.experimental.proxy_tensor import make_fx

    mode = FakeTensorMode(allow_non_fake_inputs=True)
    fakes = [mode.from_tensor(tensor) for tensor in tensors]
    with torch.no_grad(), mode:
        return make_fx(torch.func.functionalize(fn, remove="mutations"),
                       decomposition_table=select_decomp_table())(*fakes)


def compile_graph(graph, tensors):
    """Inductor's compiled version of a :func:`trace` graph, called as
    ``kernel(list_of_inputs)``: directly, without ``torch.compile``'s
    guards and wrappers (on CPU about 50 us per call through
    ``torch.compile``, 8 us this way); the compiled code checks the sizes
    and strides of its inputs itself."""
    from torch._inductor.compile_fx import compile_fx_inner

    with torch.no_grad():
        return compile_fx_inner(graph, list(tensors))


class _Draws:
    """Hands out drawn batches to the step, checking the sampler's name."""

    def __init__(self, names, batches_):
        self._draws = list(zip(names, batches_))[::-1]

    def sampler(self, name):
        def draw():
            if not self._draws:
                raise NotTraceable("the step draws more batches than at its "
                                   "first iteration")
            expected, batch = self._draws.pop()
            if expected != name:
                raise NotTraceable(f"the step draws from {name} where its "
                                   f"first iteration drew from {expected}")
            return batch
        return draw

    def check_done(self):
        if self._draws:
            raise NotTraceable("the step draws fewer batches than at its "
                               "first iteration")


class CompiledStep:
    """``compiled_step(state)``: one iteration of ``solver`` (see the module
    docstring)."""

    def __init__(self, solver):
        self.solver = solver
        self.problem = solver.problem
        self.order = None   # sampler names, in the order the step draws
        self.names = None   # the state's tensors, in the graph's order
        self.kernel = None  # the compiled iteration
        self.counts = None  # ... and the oracle counts it adds
        self.failed = False
        self.n_compiled = 0  # kernels compiled
        self.n_runs = 0  # iterations the kernel ran

    @property
    def ready(self):
        """Whether the kernel a run needs is compiled, or none will be
        (compilation failed, or the step draws a full batch: such
        iterations run eagerly)."""
        solver = self.solver
        if self.failed or self.kernel is not None:
            return True
        return self.order is not None and any(
            getattr(solver, name).full for name in self.order)

    def __call__(self, state):
        solver = self.solver
        if self.order is None:
            self.order = self._record(state)
            return
        drawn = [getattr(solver, name)() for name in self.order]
        if self.failed or any(b is None or b.shape[0] != solver.batch_size
                              for b in drawn):
            return self._eager(state, drawn)
        if self.kernel is None:
            try:
                self.kernel, self.counts = self._build(state, drawn)
            except Exception as error:  # untraceable, no compiler, ...
                self.failed = True
                warnings.warn(
                    f"{solver.name}: compiled iterations are unavailable, "
                    f"running eagerly instead ({type(error).__name__}: "
                    f"{str(error)[:300]})", RuntimeWarning, stacklevel=3)
                return self._eager(state, drawn)
        outputs = self.kernel(self._graph_inputs(state, drawn))
        self.n_runs += 1
        for name, value in zip(self.replaced, outputs):
            setattr(state, name, value)
        solver_counts = solver.oracles.counts
        for key, n in self.counts.items():
            solver_counts[key] += n

    # -- eager iterations ----------------------------------------------------
    def _with_samplers(self, samplers, fn):
        solver = self.solver
        saved = {name: getattr(solver, name) for name in SAMPLERS}
        try:
            for name in SAMPLERS:
                setattr(solver, name, samplers[name])
            return fn()
        finally:
            for name, sampler in saved.items():
                setattr(solver, name, sampler)

    def _record(self, state):
        order, solver = [], self.solver

        def recorder(name):
            sampler = getattr(solver, name)

            def draw():
                order.append(name)
                return sampler()
            return draw

        self._with_samplers({name: recorder(name) for name in SAMPLERS},
                            lambda: solver.step(state))
        return order

    def _eager(self, state, drawn):
        draws = _Draws(self.order, drawn)
        self._with_samplers({name: draws.sampler(name) for name in SAMPLERS},
                            lambda: self.solver.step(state))
        draws.check_done()

    # -- the compiled iteration ----------------------------------------------
    def _inputs(self, state_tensors, batches_, rows):
        """The graph's inputs, in its order."""
        n_iter = torch.tensor(float(self.solver.n_iter), dtype=torch.float64)
        return [*state_tensors, n_iter, *batches_, *rows]

    def _graph_inputs(self, state, drawn):
        return self._inputs(
            [getattr(state, name) for name in self.names], drawn,
            [_rows(drawn[slot], tensor, dim)
             for slot, tensor, dim in self.data_rows])

    def _build(self, state, drawn):
        """(kernel, oracle counts) of the iteration."""
        self.names = [k for k, v in vars(state).items()
                      if torch.is_tensor(v)]
        # a first trace finds the data rows each batch reads; the second
        # one takes those rows as inputs
        self.data_rows = []
        self._trace(state, drawn)
        graph, inputs, counts = self._trace(state, drawn)
        if graph is None:
            raise NotTraceable("the step reads other data rows at its second "
                               "trace")
        kernel = compile_graph(graph, inputs)
        self.n_compiled += 1
        return kernel, counts

    def _trace(self, state, drawn):
        """(graph, example inputs, oracle counts) of one iteration from
        ``state`` (left unchanged: the trace runs on copies) with the
        ``drawn`` batches; sets ``replaced`` and extends ``data_rows``
        (then returns no graph)."""
        solver = self.solver
        others = {k: v for k, v in vars(state).items()
                  if k not in self.names}
        n_state, n_draws = len(self.names) + 1, len(drawn)
        known_rows = len(self.data_rows)
        row_slots = {(slot, id(tensor), dim): n_state + n_draws + i
                     for i, (slot, tensor, dim) in enumerate(self.data_rows)}
        # the batches without their block marker (their own rows of the
        # state, e.g. x_i, are gathered in the graph), and distinct tensor
        # objects even where two draws are the same block: the tracer tells
        # inputs apart by identity
        inputs = self._inputs(
            [getattr(state, name).clone() for name in self.names],
            [batch.view(-1) for batch in drawn],
            [_fresh(_rows(drawn[slot], tensor, dim))
             for slot, tensor, dim in self.data_rows])
        replaced, found = [], set()

        def rows_of(slot, args):
            def rows(tensor, dim):
                if _traced(tensor):  # state or computed: gather in the graph
                    return None
                key = (slot, id(tensor), dim)
                if key in row_slots:
                    return args[row_slots[key]]
                if key not in found:  # first trace only
                    found.add(key)
                    self.data_rows.append((slot, tensor, dim))
                # (fake rows, for a trace that is thrown away)
                return batches.take(tensor, drawn[slot], dim)
            return rows

        def iteration(*args):
            traced_batches = args[n_state:n_state + n_draws]
            for slot, batch in enumerate(traced_batches):
                batch.rows_of = rows_of(slot, args)
            st = type(state)(**others, **dict(zip(self.names, args)))
            draws = _Draws(self.order, traced_batches)
            saved_n_iter = solver.n_iter
            solver.n_iter = args[n_state - 1]
            try:
                self._with_samplers(
                    {name: draws.sampler(name) for name in SAMPLERS},
                    lambda: solver.step(st))
            finally:
                solver.n_iter = saved_n_iter
            draws.check_done()
            after = vars(st)
            if set(after) != set(self.names) | set(others) or any(
                    after[k] is not v for k, v in others.items()):
                raise NotTraceable("the step changes a state attribute that "
                                   "is not a tensor")
            replaced.clear()
            replaced.extend(k for i, k in enumerate(self.names)
                            if after[k] is not args[i])
            return tuple(after[k] for k in replaced)

        counts = solver.oracles.counts
        before = dict(counts)
        try:
            graph = trace(iteration, inputs)
        finally:
            added = {k: counts[k] - before[k] for k in counts}
            counts.update(before)
        self.replaced = list(replaced)
        if len(self.data_rows) > known_rows:
            return None, None, None
        return graph, inputs, added


def _rows(batch, tensor, dim):
    """The rows of ``tensor`` a batch reads, computed once per block."""
    cache = batch.__dict__.setdefault("_rows", {})
    key = (id(tensor), dim)
    rows = cache.get(key)
    if rows is None:
        rows = cache[key] = batches.take(tensor, batch, dim)
    return rows


def _fresh(tensor):
    """A new tensor object viewing the same elements."""
    return tensor.as_strided(tensor.shape, tensor.stride(),
                             tensor.storage_offset())


def _traced(tensor):
    """Whether ``tensor`` is an input of the graph being traced or computed
    in it (else it is a constant: the problem's data). Under the trace's
    functionalization, those are the functional tensors."""
    return torch._is_functional_tensor(tensor)
