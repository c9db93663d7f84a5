"""Oracle accounting, so that solvers compare independently of speed.

The two work metrics the objective reports are defined here, once:

- ``oracle_calls``: the number of first- and second-order oracle
  evaluations, each on one batch: gradients of g or f (one call giving
  both grad_y and grad_x of the same function at the same point counts
  one, as one backward pass gives both), Hessian-vector products H v and
  cross products J v. A fused ``inner_oracles`` call counts three (one of
  each). Function values (``inner``, ``outer``, used by BVFIM) are not
  oracle calls.
- ``epochs``: the inner samples those oracle evaluations processed,
  divided by ``n_inner``: an evaluation of g's gradient, H v or J v on b
  samples adds b / n_inner (so a fused call adds 3 b / n_inner), the full
  batch adds 1. Evaluations of f and function values add nothing.
  (``outer_samples`` counts f's evaluations alike.)
"""

# oracle method -> (gradients, Hessian-vector products, cross products)
_COSTS = {
    "grad_inner": (1, 0, 0), "grad_outer": (1, 0, 0),
    "grad_inner_y": (1, 0, 0), "grad_inner_x": (1, 0, 0),
    "grad_outer_y": (1, 0, 0), "grad_outer_x": (1, 0, 0),
    "hvp": (0, 1, 0), "cross": (0, 0, 1), "inner_oracles": (1, 1, 1),
}
# idx is the last positional argument of every oracle
_IDX_POSITION = {"hvp": 3, "cross": 3, "inner_oracles": 3}


class CountingProblem:
    """Wraps a ``BilevelProblem`` and counts the oracle calls made through it
    (see the module docstring for the definitions).

    ``counts`` holds the number of gradient, Hessian-vector and cross product
    evaluations and the inner / outer samples they processed.
    """

    def __init__(self, problem):
        self._problem = problem
        self.counts = dict(grad=0, hvp=0, cross=0,
                           inner_samples=0, outer_samples=0)

    def charge(self, name, idx=None, times=1):
        """Count ``times`` calls of the oracle ``name`` on the batch ``idx``
        for work done outside the wrapper, e.g. the rows of a dense
        Hessian built by ``torch.func`` (d Hessian-vector products)."""
        outer = "outer" in name
        n = self._problem.n_outer if outer else self._problem.n_inner
        cost = _COSTS[name]
        for key, calls in zip(("grad", "hvp", "cross"), cost):
            self.counts[key] += times * calls
        self.counts["outer_samples" if outer else "inner_samples"] += \
            times * sum(cost) * (n if idx is None else idx.shape[0])

    def __getattr__(self, name):
        if name.startswith("__") or name == "_problem":
            raise AttributeError(name)
        attr = getattr(self._problem, name)
        cost = _COSTS.get(name)
        if cost is None:
            return attr
        outer = "outer" in name
        n_full = self._problem.n_outer if outer else self._problem.n_inner
        samples_key = "outer_samples" if outer else "inner_samples"
        n_oracles = sum(cost)
        idx_position = _IDX_POSITION.get(name, 2)
        increments = [(key, n) for key, n in zip(("grad", "hvp", "cross"),
                                                 cost) if n]
        counts = self.counts

        def counted(*args, **kwargs):
            idx = (args[idx_position] if len(args) > idx_position
                   else kwargs.get("idx"))
            for key, n in increments:
                counts[key] += n
            # shape[0], not len(): Tensor.__len__ is a Python-level call.
            counts[samples_key] += n_oracles * (
                n_full if idx is None else idx.shape[0])
            return attr(*args, **kwargs)
        # Cached on the instance: later lookups skip __getattr__.
        self.__dict__[name] = counted
        return counted
