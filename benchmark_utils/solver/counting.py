"""Oracle accounting, so that solvers compare independently of speed.

The work measures the objective reports are defined here, once:

- ``work``: the samples every oracle call read, weighted by what the call
  computes, in gradient-equivalents of the whole training set (1 = one
  gradient of g over all ``n_inner`` samples). A call on b samples, inner
  or outer, costs b times its weight:

  ==================================  ======
  function value (``inner``, ``outer``)  1/2
  gradient (of g or of f)              1
  Hessian-vector product H v           2
  cross product J v                    2
  ==================================  ======

  A gradient is one forward and one backward pass (Baur and Strassen's
  cheap-gradient principle: a small constant times a function value; 2
  for the models here, whose passes are one product each), so a value
  weighs half of it. H v and J v differentiate the gradient's computation
  along a direction (Pearlmutter, "Fast exact multiplication by the
  Hessian", Neural Computation 1994): one more forward and one more
  backward pass, twice a gradient. A fused ``inner_oracles`` call (grad_y
  g, H v and J v from one pass) counts the three, 1 + 2 + 2: the measure
  charges what an algorithm asks for, not how the implementation shares
  passes, so that it does not depend on the code's speed. A full-batch
  call reads all the samples of its function.
- ``oracle_calls``: the number of first- and second-order oracle calls,
  whatever their batch (a full-batch call counts one): gradients of g or
  f (one call giving both grad_y and grad_x of the same function counts
  one), H v and J v (a fused call counts three). Function values do not
  count.

``counts`` keeps, besides the calls of each kind, the inner and outer
samples read (``inner_samples``, ``outer_samples``) and ``cost``, the
weighted samples in half-gradients (integers, so that a compiled iteration
can add them as a function of its batch sizes): ``work = cost / (2
n_inner)``.
"""

# oracle method -> (gradients, Hessian-vector products, cross products,
# function values)
_CALLS = {
    "grad_inner": (1, 0, 0, 0), "grad_outer": (1, 0, 0, 0),
    "grad_inner_y": (1, 0, 0, 0), "grad_inner_x": (1, 0, 0, 0),
    "grad_outer_y": (1, 0, 0, 0), "grad_outer_x": (1, 0, 0, 0),
    "hvp": (0, 1, 0, 0), "cross": (0, 0, 1, 0),
    "inner_oracles": (1, 1, 1, 0),
    "inner": (0, 0, 0, 1), "outer": (0, 0, 0, 1),
}
_KINDS = ("grad", "hvp", "cross", "value")
#: Weight of each kind of call per sample, in half-gradients (module doc).
HALF_GRADIENTS = {"grad": 2, "hvp": 4, "cross": 4, "value": 1}
# idx is the last positional argument of every oracle
_IDX_POSITION = {"hvp": 3, "cross": 3, "inner_oracles": 3}


def _is_outer(name):
    return "outer" in name and name != "inner_oracles"


def work(counts, n_inner):
    """The ``work`` of ``counts`` (module docstring) on a problem with
    ``n_inner`` training samples."""
    return counts["cost"] / (2 * n_inner)


class CountingProblem:
    """Wraps a ``BilevelProblem`` and counts the oracle calls made through it
    (see the module docstring for the definitions).

    ``counts`` holds the number of calls of each kind (``grad``, ``hvp``,
    ``cross``, ``value``), the inner and outer samples they read and their
    weighted ``cost``.
    """

    def __init__(self, problem):
        self._problem = problem
        self.counts = dict({kind: 0 for kind in _KINDS}, inner_samples=0,
                           outer_samples=0, cost=0)

    @property
    def work(self):
        return work(self.counts, self._problem.n_inner)

    def _increments(self, name):
        calls = _CALLS[name]
        outer = _is_outer(name)
        return ([(kind, n) for kind, n in zip(_KINDS, calls) if n],
                "outer_samples" if outer else "inner_samples",
                self._problem.n_outer if outer else self._problem.n_inner,
                sum(calls),
                sum(n * HALF_GRADIENTS[kind]
                    for kind, n in zip(_KINDS, calls)))

    def charge(self, name, idx=None, times=1):
        """Count ``times`` calls of the oracle ``name`` on the batch ``idx``
        for work done outside the wrapper, e.g. the rows of a dense
        Hessian built by ``torch.func`` (d Hessian-vector products)."""
        increments, samples_key, n_full, n_calls, weight = \
            self._increments(name)
        counts = self.counts
        n = n_full if idx is None else idx.shape[0]
        for kind, calls in increments:
            counts[kind] += times * calls
        counts[samples_key] += times * n_calls * n
        counts["cost"] += times * weight * n

    def __getattr__(self, name):
        if name.startswith("__") or name == "_problem":
            raise AttributeError(name)
        attr = getattr(self._problem, name)
        if name not in _CALLS:
            return attr
        increments, samples_key, n_full, n_calls, weight = \
            self._increments(name)
        idx_position = _IDX_POSITION.get(name, 2)
        counts = self.counts

        def counted(*args, **kwargs):
            idx = (args[idx_position] if len(args) > idx_position
                   else kwargs.get("idx"))
            for kind, calls in increments:
                counts[kind] += calls
            # shape[0], not len(): Tensor.__len__ is a Python-level call.
            n = n_full if idx is None else idx.shape[0]
            counts[samples_key] += n_calls * n
            counts["cost"] += weight * n
            return attr(*args, **kwargs)
        # Cached on the instance: later lookups skip __getattr__.
        self.__dict__[name] = counted
        return counted
