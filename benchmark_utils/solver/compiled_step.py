"""Whole iterations as one compiled call (``compile=True``).

Compiled oracles (:mod:`benchmark_utils.problems.compiled`) remove the
small operators of each oracle, but a step still makes a Python-level call
per oracle and per update, each paying its wrapper and PyTorch's dispatch:
StocBiO makes 22 oracle calls an iteration. For the solvers whose ``step``
allows it (``traceable_step = True``) on the problems whose oracles allow
it (``traceable = True``), :class:`CompiledStep` traces the whole
iteration instead, oracles, updates and all, into one graph that inductor
compiles into one call.

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
  compiled on first use. An iteration that draws a smaller batch (the last
  one of an epoch) runs a second compiled iteration, traced once with every
  batch's size a symbol (:class:`_Shaped`), so that one graph serves every
  pattern of sizes (F2SA's 32 draws meet an epoch's end every fifth
  iteration, at any of them); it runs eagerly on the sizes for which that
  graph's assumptions do not hold (e.g. a size the compiler fixed). The
  full-size graph stays: its fixed sizes make it a few percent faster.
- The graph's inputs are the state's tensors, ``n_iter``, the batches'
  index tensors and the data rows each batch reads (views of the data for
  a block, as the eager oracles read them). In-place updates of the state
  stay in place; a state tensor the step replaces is replaced.
- The oracle counts an iteration adds are those of its trace (with
  symbolic sizes, expressions of the batches' sizes).

If tracing or compiling fails (an untraceable step, no C++ compiler), the
solver warns once, with the reason, and runs eagerly from then on (only
its iterations on smaller batches, if only the symbolic graph fails).
"""
import warnings

import torch

from benchmark_utils import batches
from benchmark_utils.problems import compiled

#: The solver's samplers a traceable step draws from.
SAMPLERS = ("inner_batch", "outer_batch")


class NotTraceable(RuntimeError):
    """The step does something a compiled iteration cannot replay."""


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
        self.order = None   # sampler names, in the order the step draws
        self.names = None   # the state's tensors, in the graphs' order
        self.kernel = None  # the iteration on full-size batches
        self.counts = None  # ... and the oracle counts it adds
        self.shaped = None  # _Shaped: on smaller ones; False: unavailable
        self.failed = False
        self.n_runs = 0  # iterations a compiled kernel ran
        self.n_shaped_runs = 0  # ... of which on a smaller batch

    @property
    def ready(self):
        """Whether the kernels a run needs are compiled (or unavailable):
        the symbolic one if a sampler the step draws from has a smaller
        last batch, else the full-size one. (With a smaller last batch
        and many draws an iteration, as F2SA's 32 on small data, every
        iteration may meet it: the full-size kernel is then compiled when
        a full-size iteration first comes, if one does.)"""
        solver = self.solver
        samplers = {getattr(solver, name) for name in self.order or ()}
        if self.failed or any(sampler.full for sampler in samplers):
            return True  # (full batches run eagerly: nothing to compile)
        if self.order is None:
            return False
        if any(sampler.n_samples % solver.batch_size for sampler in samplers):
            return self.shaped is not None
        return self.kernel is not None

    def __call__(self, state):
        solver = self.solver
        if self.order is None:
            self.order = self._record(state)
            return
        drawn = [getattr(solver, name)() for name in self.order]
        if self.failed or any(b is None for b in drawn):
            return self._eager(state, drawn)
        if all(b.shape[0] == solver.batch_size for b in drawn):
            if self.kernel is None:
                try:
                    self.kernel, self.counts, _ = self._build(state, drawn)
                except Exception as error:  # untraceable, no compiler, ...
                    self.failed = True
                    _warn(f"{solver.name}: compiled iterations are "
                          "unavailable, running eagerly instead", error)
                    return self._eager(state, drawn)
            return self._run(state, self._graph_inputs(state, drawn),
                             self.kernel, self.counts)
        if self.shaped is None:
            try:
                self.shaped = _Shaped(*self._build(state, drawn,
                                                   symbolic=True))
            except Exception as error:
                self.shaped = False
                _warn(f"{solver.name}: iterations that draw a smaller batch "
                      "run eagerly", error)
        inputs = self._graph_inputs(state, drawn)
        # (None: the kernel does not hold for these sizes)
        counts = self.shaped.counts_for(inputs) if self.shaped else None
        if counts is None:
            return self._eager(state, drawn)
        self._run(state, inputs, self.shaped.kernel, counts)
        self.n_shaped_runs += 1

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
    def _inputs(self, state_tensors, batches, rows):
        """The graph's inputs, in its order."""
        n_iter = torch.tensor(float(self.solver.n_iter), dtype=torch.float64)
        return [*state_tensors, n_iter, *batches, *rows]

    def _graph_inputs(self, state, drawn):
        return self._inputs(
            [getattr(state, name) for name in self.names], drawn,
            [_rows(drawn[slot], tensor, dim)
             for slot, tensor, dim in self.data_rows])

    def _run(self, state, inputs, kernel, counts):
        outputs = kernel(inputs)
        self.n_runs += 1
        for name, value in zip(self.replaced, outputs):
            setattr(state, name, value)
        solver_counts = self.solver.oracles.counts
        for key, n in counts.items():
            solver_counts[key] += n

    def _build(self, state, drawn, symbolic=False):
        """(kernel, oracle counts, example inputs) of the iteration;
        ``symbolic``: for any batch sizes, the inputs then fakes and the
        counts functions of the sizes (see :class:`_Shaped`)."""
        if self.names is None:
            self.names = [k for k, v in vars(state).items()
                          if torch.is_tensor(v)]
            # a first trace finds the data rows each batch reads; the next
            # ones take those rows as inputs
            self.data_rows = []
            self._trace(state, drawn)
        graph, inputs, counts = self._trace(state, drawn, symbolic)
        if graph is None:
            raise NotTraceable("the step reads other data rows at its second "
                               "trace")
        kernel = compiled.compile_graph(graph, inputs)
        compiled._N_STEPS[0] += 1
        return kernel, counts, inputs

    def _dims(self):
        """The dimension of each graph input whose size is the batch's."""
        return ([None] * (len(self.names) + 1) + [0] * len(self.order)
                + [dim for _, _, dim in self.data_rows])

    def _trace(self, state, drawn, symbolic=False):
        """(graph, example inputs, oracle counts) of one iteration from
        ``state`` (left unchanged: the trace runs on copies) with the
        ``drawn`` batches; sets ``replaced`` and extends ``data_rows``.
        ``symbolic``: the inputs are :func:`compiled.symbolic` fakes whose
        batch sizes are symbols, and so are the counts of samples."""
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
        fake_mode = None
        if symbolic:
            fake_mode, inputs = compiled.symbolic(inputs, self._dims())
        replaced, found = [], set()

        def iteration(*args):
            slots = {id(args[n_state + k]): k for k in range(n_draws)}

            def rows(tensor, idx, dim):
                slot = slots.get(id(idx))
                if slot is None:
                    return None
                if _traced(tensor):  # state or computed: gather in the graph
                    return tensor.index_select(dim, idx)
                key = (slot, id(tensor), dim)
                if key in row_slots:
                    return args[row_slots[key]]
                if key not in found:  # first trace only
                    found.add(key)
                    self.data_rows.append((slot, tensor, dim))
                return _rows(drawn[slot], tensor, dim)

            st = type(state)(**others, **dict(zip(self.names, args)))
            draws = _Draws(self.order, args[n_state:n_state + n_draws])
            saved_n_iter = solver.n_iter
            solver.n_iter = args[n_state - 1]
            batches.TAKE_HOOK.append(rows)
            try:
                self._with_samplers(
                    {name: draws.sampler(name) for name in SAMPLERS},
                    lambda: solver.step(st))
            finally:
                batches.TAKE_HOOK.pop()
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
            with compiled.inlined():
                graph = compiled.trace(iteration, inputs, fake_mode)
        finally:
            added = {k: counts[k] - before[k] for k in counts}
            counts.update(before)
        self.replaced = list(replaced)
        if len(self.data_rows) > known_rows:
            return None, None, None
        return graph, inputs, {
            k: n.node.expr if isinstance(n, torch.SymInt) else n
            for k, n in added.items()}


class _Shaped:
    """An iteration compiled for any batch sizes, and the inputs it holds
    for: those whose sizes and strides meet the assumptions its trace and
    compiler made (the guards and value ranges of the fake inputs' shape
    environment, e.g. that two inputs read by the same batch have one
    length). Those conditions and the oracle counts, expressions of the
    sizes, become one Python function of the inputs' sizes and strides."""

    def __init__(self, kernel, counts, fakes):
        import sympy
        from torch.utils._sympy.numbers import int_oo

        self.kernel = kernel
        shape_env = fakes[0].fake_mode.shape_env
        # each size or stride the trace saw as a symbol (some fixed since:
        # an expression of other symbols, or a number), and the argument
        # that will hold its value
        self.sizes = [(i, d, is_stride) for i, fake in enumerate(fakes)
                      for d in range(fake.dim())
                      for is_stride, value in ((False, fake.shape[d]),
                                               (True, fake.stride(d)))
                      if isinstance(value, torch.SymInt)]
        exprs = [(fakes[i].stride(d) if is_stride else fakes[i].shape[d])
                 .node.expr for i, d, is_stride in self.sizes]
        args = sympy.symbols(f"v0:{len(exprs)}", integer=True)
        env, checks = {}, []
        for expr, arg in zip(exprs, args):
            if expr.is_Symbol and expr not in env:
                env[expr] = arg
                bounds = shape_env.var_to_range[expr]
                checks.append(arg >= bounds.lower)
                if bounds.upper not in (int_oo, sympy.oo):
                    checks.append(arg <= bounds.upper)
            else:
                checks.append(sympy.Eq(expr, arg, evaluate=False))
        # the other symbols the trace met (e.g. the size of an input's
        # base), found equal to expressions of these
        for _ in range(len(shape_env.replacements)):
            new = {sym: expr.xreplace(env) for sym, expr in
                   shape_env.replacements.items() if sym not in env
                   and not expr.free_symbols - env.keys()}
            if not new:
                break
            env.update(new)
        checks = [c.xreplace(env) for c in checks] + [
            guard.expr.xreplace(env) for guard in shape_env.guards]
        self.keys = list(counts)
        values = [sympy.sympify(counts[k]).xreplace(env) for k in self.keys]
        unknown = set().union(*(e.free_symbols for e in checks + values)) \
            - set(args)
        if unknown:
            raise NotTraceable(f"sizes {sorted(map(str, unknown))} that are "
                               "not the inputs'")
        self._counts = sympy.lambdify(args, values, modules="math")
        self._holds = sympy.lambdify(args, sympy.And(*checks),
                                     modules="math")
        self._counts_for = {}

    def counts_for(self, inputs):
        """The oracle counts of the iteration on ``inputs`` (the graph's),
        or None if the kernel does not hold for them."""
        values = tuple(inputs[i].stride(d) if is_stride else
                       inputs[i].shape[d] for i, d, is_stride in self.sizes)
        counts = self._counts_for.get(values, False)
        if counts is False:
            counts = self._counts_for[values] = (
                dict(zip(self.keys, map(int, self._counts(*values))))
                if self._holds(*values) else None)
        return counts


def _warn(message, error):
    warnings.warn(f"{message} ({type(error).__name__}: {str(error)[:300]})",
                  RuntimeWarning, stacklevel=4)


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
