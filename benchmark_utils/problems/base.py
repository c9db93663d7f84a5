"""BilevelProblem: the contract between datasets, the objective and solvers.

    min_x  h(x) = f(x, y*(x))   with   y*(x) = argmin_y g(x, y)

``g`` (``inner``) and ``f`` (``outer``) are means over ``n_inner`` and
``n_outer`` samples. A batch ``idx`` is a LongTensor of sample indices, or
``None`` for the full set. Variables are flat 1-D tensors on ``device``.

A subclass implements ``inner``, ``outer`` and ``metrics``; it may override
any oracle with a closed form (the autograd versions of
:mod:`benchmark_utils.problems.autograd` are the default and the reference).
"""

import torch

from benchmark_utils.problems import autograd
from benchmark_utils.problems.implicit import power_iteration, solve_inner


class BilevelProblem:
    """Base class of every problem a dataset returns.

    Attributes a subclass sets in ``__init__`` (through ``super().__init__``):
    ``n_inner``, ``n_outer`` (sample counts), ``inner_var0``, ``outer_var0``
    (starting points, which fix ``device`` and ``dtype``).
    """

    #: True when g is strongly convex in y, so y*(x) and h(x) are defined.
    strongly_convex = True
    #: False when f does not depend on x (x only enters g, as in
    #: hyper-cleaning and regularization selection): grad_x f is then zero
    #: without any computation, and memory methods store nothing for it.
    outer_depends_on_x = True

    def __init__(self, n_inner, n_outer, inner_var0, outer_var0):
        for name, n in (("n_inner", n_inner), ("n_outer", n_outer)):
            if not isinstance(n, int) or n < 1:
                raise ValueError(f"{name} must be a positive int, got {n!r}.")
        if inner_var0.ndim != 1 or outer_var0.ndim != 1:
            raise ValueError("inner_var0 and outer_var0 must be 1-D tensors.")
        self.n_inner = n_inner
        self.n_outer = n_outer
        self.inner_var0 = inner_var0
        self.outer_var0 = outer_var0

    @property
    def device(self):
        return self.inner_var0.device

    @property
    def dtype(self):
        return self.inner_var0.dtype

    @property
    def dim_inner(self):
        return self.inner_var0.numel()

    @property
    def dim_outer(self):
        return self.outer_var0.numel()

    # -- losses (subclasses implement) --------------------------------------
    def inner(self, inner_var, outer_var, idx=None):
        """g(x, y): mean inner loss over the samples ``idx``."""
        raise NotImplementedError

    def outer(self, inner_var, outer_var, idx=None):
        """f(x, y): mean outer loss over the samples ``idx``."""
        raise NotImplementedError

    def inner_hessian_bound(self):
        """An upper bound L of the largest eigenvalue of H = d2_yy g(x, y)
        on the full inner set, for step sizes such as StocBiO's Neumann
        step 1 / L. Computed once, cached.

        Default: power iterations at the starting point, with a 10 % margin:
        a bound when H does not depend on (x, y). A problem whose curvature
        varies overrides it with a bound valid along a run.
        """
        if getattr(self, "_hessian_bound", None) is None:
            y, x = self.inner_var0, self.outer_var0
            self._hessian_bound = 1.1 * power_iteration(
                lambda v: self.hvp(y, x, v), self.dim_inner,
                dtype=self.dtype, device=self.device)
        return self._hessian_bound

    def metrics(self, inner_var, outer_var):
        """Task metrics (test accuracy, ...) as a dict of floats."""
        return {}

    def inner_solution(self, outer_var, warm_start=None):
        """y*(x), the exact inner solution, for the objective's h(x) =
        f(x, y*(x)) and the metrics at y*(x).

        Default: full-batch Newton-CG (:func:`~benchmark_utils.problems.
        implicit.solve_inner`) from ``warm_start`` (default: the start), to
        a gradient norm of 1e-4 (float32, whose rounding floors it near
        1e-5 on the real data sets) or 1e-8 (float64) relative to the
        start's. The error it leaves on h is about ||grad_y f|| times that
        norm over the strong convexity constant, far below what the metric
        needs. A problem with a closed form overrides it.
        """
        tol = 1e-4 if self.dtype == torch.float32 else 1e-8
        return solve_inner(self, outer_var, inner_var=warm_start, tol=tol)[0]

    def outer_support(self, idx, which="inner"):
        """Outer coordinates where the x-derivatives of g (``which="inner"``)
        or f (``"outer"``) on the batch ``idx`` can be nonzero, as a
        LongTensor; ``None`` (the default) when they can be anywhere.
        Memory-based solvers use it to store x-directions compactly."""
        if which == "outer" and not self.outer_depends_on_x:
            return torch.zeros(0, dtype=torch.int64, device=self.device)
        return None

    # -- oracles (autograd defaults; override with closed forms) ------------
    def grad_inner(self, inner_var, outer_var, idx=None):
        """(grad_y g, grad_x g)."""
        return autograd.value_and_grads(self.inner, inner_var, outer_var,
                                        idx)[1:]

    def grad_outer(self, inner_var, outer_var, idx=None):
        """(grad_y f, grad_x f)."""
        if not self.outer_depends_on_x:
            return (self.grad_outer_y(inner_var, outer_var, idx),
                    torch.zeros_like(outer_var))
        return autograd.value_and_grads(self.outer, inner_var, outer_var,
                                        idx)[1:]

    def grad_inner_y(self, inner_var, outer_var, idx=None):
        return autograd.grad_y(self.inner, inner_var, outer_var, idx)

    def grad_inner_x(self, inner_var, outer_var, idx=None):
        return autograd.grad_x(self.inner, inner_var, outer_var, idx)

    def grad_outer_y(self, inner_var, outer_var, idx=None):
        return autograd.grad_y(self.outer, inner_var, outer_var, idx)

    def grad_outer_x(self, inner_var, outer_var, idx=None):
        if not self.outer_depends_on_x:
            return torch.zeros_like(outer_var)
        return autograd.grad_x(self.outer, inner_var, outer_var, idx)

    def hvp(self, inner_var, outer_var, v, idx=None):
        """H v = d2_yy g(x, y) v."""
        return autograd.hvp(self.inner, inner_var, outer_var, v, idx)

    def cross(self, inner_var, outer_var, v, idx=None):
        """J v = d2_xy g(x, y) v (a vector of the outer dimension)."""
        return autograd.cross(self.inner, inner_var, outer_var, v, idx)

    def inner_oracles(self, inner_var, outer_var, v, idx=None):
        """(grad_y g, H v, J v) at one point, sharing one backward pass."""
        return autograd.inner_oracles(self.inner, inner_var, outer_var, v, idx)
