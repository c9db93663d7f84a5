"""A finite-sum quadratic bilevel problem with a closed-form solution.

Inner samples i and outer samples j:

    g_i(x, y) = 1/2 (a_i.y - b_i.x - c_i)^2 + mu/2 ||y||^2
    f_j(x, y) = 1/2 (d_j.y - e_j)^2 + outer_reg/2 ||x||^2

so H = A^T A / n + mu I is constant, y*(x) = M x + m0 is affine and
h(x) = f(x, y*(x)) is a strongly convex quadratic: y*(x), h(x), grad h(x)
and its minimizer x* are exact (computed in float64).
"""
import math

import torch

from benchmark_utils.batches import take
from benchmark_utils.problems.base import BilevelProblem
from benchmark_utils.validation import (
    check_device,
    check_dtype,
    check_interval,
    check_positive,
    check_positive_int,
)

#: Largest ``cond``: the float64 closed forms (y*(x), h(x) - h*, grad h)
#: are within 1e-8 relative of a 60-digit computation on the same data up
#: to cond 1e8 (at the start; 1e-6 near x*); at 1e10 the error reaches
#: 2e-6 (4e-4 near x*), at 1e12 2e-4, at 1e16 60 % (default sizes,
#: measured with mpmath; docs/DATA.md).
COND_MAX = 1e8


class QuadraticProblem(BilevelProblem):
    """Quadratic bilevel problem; see the module docstring.

    The spectrum of H is log-spaced in [1 / cond, 1], a quarter of its
    smallest eigenvalue coming from the ridge ``mu`` so that every g_i is
    strongly convex; ``cond`` is at most :data:`COND_MAX`, where the exact
    metrics stop being exact.
    """

    def __init__(self, n_inner=200, n_outer=100, dim_inner=10, dim_outer=5,
                 cond=10.0, outer_reg=0.1, random_state=0,
                 dtype=torch.float64, device="cpu"):
        n_inner = check_positive_int(n_inner, "n_inner")
        n_outer = check_positive_int(n_outer, "n_outer")
        dim_inner = check_positive_int(dim_inner, "dim_inner")
        dim_outer = check_positive_int(dim_outer, "dim_outer")
        if n_inner < dim_inner:
            raise ValueError(
                f"n_inner must be >= dim_inner ({dim_inner}) so that the "
                f"spectrum of H is exact, got {n_inner}."
            )
        check_interval(cond, "cond", 1, COND_MAX, closed="both")
        device, dtype = check_device(device), check_dtype(dtype)
        check_positive(outer_reg, "outer_reg")
        self.cond = float(cond)

        gen = torch.Generator().manual_seed(
            check_positive_int(random_state, "random_state", allow_zero=True)
        )

        def randn(*shape):
            return torch.randn(*shape, generator=gen, dtype=torch.float64)

        eigs = torch.logspace(-math.log10(cond), 0,
                              dim_inner, dtype=torch.float64)
        mu = float(eigs[0]) / 4
        q, _ = torch.linalg.qr(randn(n_inner, dim_inner))
        v, _ = torch.linalg.qr(randn(dim_inner, dim_inner))
        a = n_inner ** 0.5 * q * (eigs - mu).sqrt() @ v.T
        # b_i = W^T a_i + noise makes y*(x) close to W x, so that h depends
        # on x through the inner problem and not only through outer_reg.
        b = a @ randn(dim_inner, dim_outer) + 0.1 * randn(n_inner, dim_outer)
        c = randn(n_inner)
        d = randn(n_outer, dim_inner) / dim_inner ** 0.5
        e = d @ randn(dim_inner) + 0.5 * randn(n_outer)

        self.mu, self.outer_reg = mu, outer_reg
        self.a, self.b, self.c, self.d, self.e = (
            t.to(device=device, dtype=dtype) for t in (a, b, c, d, e)
        )
        # Closed forms, in float64 whatever the working dtype.
        hess = a.T @ a / n_inner + mu * torch.eye(dim_inner,
                                                  dtype=torch.float64)
        # H does not depend on (x, y): its largest eigenvalue is the bound.
        self._hessian_bound = float(torch.linalg.eigvalsh(hess)[-1])
        self._m = torch.linalg.solve(hess, a.T @ b / n_inner)
        self._m0 = torch.linalg.solve(hess, a.T @ c / n_inner)
        self._d, self._e = d, e
        dm = d @ self._m
        lhs = dm.T @ dm / n_outer + outer_reg * torch.eye(
            dim_outer, dtype=torch.float64)
        self.outer_star = torch.linalg.solve(lhs, -dm.T @ (d @ self._m0 - e)
                                             / n_outer)
        self.value_star = self.value_function(self.outer_star)

        super().__init__(
            n_inner, n_outer,
            inner_var0=torch.zeros(dim_inner, dtype=dtype, device=device),
            outer_var0=torch.zeros(dim_outer, dtype=dtype, device=device),
        )

    # -- losses -------------------------------------------------------------
    @staticmethod
    def _rows(idx, *arrays):
        """The batch's rows of each array (all of them for ``idx=None``)."""
        return arrays if idx is None else tuple(take(t, idx) for t in arrays)

    def _inner_residual(self, inner_var, outer_var, idx):
        a, b, c = self._rows(idx, self.a, self.b, self.c)
        return a, b, a @ inner_var - b @ outer_var - c

    def inner(self, inner_var, outer_var, idx=None):
        _, _, res = self._inner_residual(inner_var, outer_var, idx)
        return 0.5 * (res ** 2).mean() + 0.5 * self.mu * inner_var @ inner_var

    def outer(self, inner_var, outer_var, idx=None):
        d, e = self._rows(idx, self.d, self.e)
        res = d @ inner_var - e
        return 0.5 * (res ** 2).mean() + 0.5 * self.outer_reg * \
            outer_var @ outer_var

    # -- closed-form oracles -------------------------------------------------
    def grad_inner(self, inner_var, outer_var, idx=None):
        a, b, res = self._inner_residual(inner_var, outer_var, idx)
        return (a.T @ res / len(res) + self.mu * inner_var,
                -(b.T @ res) / len(res))

    def grad_inner_y(self, inner_var, outer_var, idx=None):
        return self.grad_inner(inner_var, outer_var, idx)[0]

    def grad_inner_x(self, inner_var, outer_var, idx=None):
        return self.grad_inner(inner_var, outer_var, idx)[1]

    def grad_outer(self, inner_var, outer_var, idx=None):
        d, e = self._rows(idx, self.d, self.e)
        return (d.T @ (d @ inner_var - e) / len(e),
                self.outer_reg * outer_var)

    def grad_outer_y(self, inner_var, outer_var, idx=None):
        return self.grad_outer(inner_var, outer_var, idx)[0]

    def grad_outer_x(self, inner_var, outer_var, idx=None):
        return self.outer_reg * outer_var

    def hvp(self, inner_var, outer_var, v, idx=None):
        a, = self._rows(idx, self.a)
        return a.T @ (a @ v) / len(a) + self.mu * v

    def cross(self, inner_var, outer_var, v, idx=None):
        a, b = self._rows(idx, self.a, self.b)
        return -(b.T @ (a @ v)) / len(a)

    def inner_oracles(self, inner_var, outer_var, v, idx=None):
        a, b, res = self._inner_residual(inner_var, outer_var, idx)
        av = a @ v
        n = len(res)
        return (a.T @ res / n + self.mu * inner_var,
                a.T @ av / n + self.mu * v,
                -(b.T @ av) / n)

    # -- exact solution -------------------------------------------------------
    def inner_solution(self, outer_var, warm_start=None):
        """y*(x) in float64 (closed form: ``warm_start`` is not needed)."""
        return self._m @ outer_var.double().cpu() + self._m0

    def value_function(self, outer_var):
        """h(x) = f(x, y*(x)) in float64."""
        x = outer_var.double().cpu()
        res = self._d @ self.inner_solution(x) - self._e
        return float(0.5 * (res ** 2).mean() + 0.5 * self.outer_reg * x @ x)

    def hypergradient(self, outer_var):
        """grad h(x) in float64."""
        x = outer_var.double().cpu()
        res = self._d @ self.inner_solution(x) - self._e
        return self._m.T @ (self._d.T @ res) / len(res) + self.outer_reg * x

    def metrics(self, inner_var, outer_var):
        return dict(
            suboptimality=self.value_function(outer_var) - self.value_star,
            hypergrad_norm=float(self.hypergradient(outer_var).norm()),
            inner_error=float((inner_var.double().cpu()
                               - self.inner_solution(outer_var)).norm()),
        )
