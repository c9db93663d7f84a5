"""Oracle accounting, so solvers can be compared independently of speed."""

# oracle method -> (gradients, Hessian-vector products, cross products)
_COSTS = {
    "grad_inner": (1, 0, 0), "grad_outer": (1, 0, 0),
    "grad_inner_y": (1, 0, 0), "grad_inner_x": (1, 0, 0),
    "grad_outer_y": (1, 0, 0), "grad_outer_x": (1, 0, 0),
    "hvp": (0, 1, 0), "cross": (0, 0, 1), "inner_oracles": (1, 1, 1),
    "inner": (0, 0, 0), "outer": (0, 0, 0),
}


class CountingProblem:
    """Wraps a ``BilevelProblem`` and counts the oracle calls made through it.

    ``counts`` holds the number of gradient, Hessian-vector and cross product
    evaluations (a fused ``inner_oracles`` call counts one of each) and the
    number of inner / outer samples they touched.
    """

    def __init__(self, problem):
        self._problem = problem
        self.counts = dict(grad=0, hvp=0, cross=0,
                           inner_samples=0, outer_samples=0)

    def __getattr__(self, name):
        if name.startswith("__") or name == "_problem":
            raise AttributeError(name)
        attr = getattr(self._problem, name)
        cost = _COSTS.get(name)
        if cost is None:
            return attr
        n_full = (self._problem.n_outer if "outer" in name
                  else self._problem.n_inner)
        samples_key = ("outer_samples" if "outer" in name
                       else "inner_samples")
        # idx is the last positional argument of every oracle.
        idx_position = 3 if name in ("hvp", "cross", "inner_oracles") else 2
        increments = [(key, n) for key, n in zip(("grad", "hvp", "cross"),
                                                 cost) if n]
        counts = self.counts

        def counted(*args, **kwargs):
            idx = (args[idx_position] if len(args) > idx_position
                   else kwargs.get("idx"))
            for key, n in increments:
                counts[key] += n
            # shape[0], not len(): Tensor.__len__ is a Python-level call.
            counts[samples_key] += n_full if idx is None else idx.shape[0]
            return attr(*args, **kwargs)
        # Cached on the instance: later lookups skip __getattr__.
        self.__dict__[name] = counted
        return counted
