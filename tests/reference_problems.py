"""Small float64 problems on which tests/test_reference_rules.py compares
every solver with its reference rules (tests/reference_rules.py).

Each problem catches a different kind of wrong update:
- ``hyper_cleaning``: the benchmark's problem with closed-form oracles; H
  and J vary with (x, y), so an oracle evaluated at the wrong point changes
  the iterates (on a quadratic H and J are constant); grad_x f = 0, and
  its x-directions live on the batch's samples (SABA's sparse tables);
- ``quadratic``: grad_x f = outer_reg x is not zero;
- ``coupled``: autograd oracles of losses where H, J and grad_x f all
  depend on both x and y, so that a gradient of f at the wrong point shows
  too.

Sizes: 24 inner and 16 outer samples, so that a batch of 8 gives 3 and 2
batches per epoch and every run wraps around an epoch.
"""
import torch
import torch.nn.functional as F

from benchmark_utils.problems.base import BilevelProblem
from benchmark_utils.problems.hyper_cleaning import HyperCleaningProblem
from benchmark_utils.problems.quadratic import QuadraticProblem

N_INNER, N_OUTER = 24, 16


class CoupledProblem(BilevelProblem):
    """Inner samples i and outer samples j, all oracles by autograd:

        g_i(x, y) = (1 + sigmoid(b_i.x)) softplus(a_i.y - s_i)
                    + mu / 2 (1 + mean_k sigmoid(x_k)) ||y||^2
        f_j(x, y) = softplus(c_j.y + d_j.x - t_j) + r / 2 ||x||^2

    g is strongly convex in y (mu > 0) for every x.
    """

    def __init__(self, n_inner=N_INNER, n_outer=N_OUTER, dim_inner=5,
                 dim_outer=3, mu=0.3, outer_reg=0.1, seed=0):
        gen = torch.Generator().manual_seed(seed)

        def randn(*shape):
            return torch.randn(*shape, generator=gen, dtype=torch.float64)

        self.a, self.b, self.s = (randn(n_inner, dim_inner),
                                  randn(n_inner, dim_outer), randn(n_inner))
        self.c = randn(n_outer, dim_inner) / dim_inner ** 0.5
        self.d, self.t = randn(n_outer, dim_outer), randn(n_outer)
        self.mu, self.outer_reg = mu, outer_reg
        super().__init__(n_inner, n_outer, inner_var0=0.3 * randn(dim_inner),
                         outer_var0=0.3 * randn(dim_outer))

    @staticmethod
    def _rows(idx, *arrays):
        if idx is None:
            return arrays
        return tuple(a.index_select(0, idx) for a in arrays)

    def inner(self, inner_var, outer_var, idx=None):
        a, b, s = self._rows(idx, self.a, self.b, self.s)
        weights = 1 + torch.sigmoid(b @ outer_var)
        ridge = 0.5 * self.mu * (1 + torch.sigmoid(outer_var).mean())
        return (weights * F.softplus(a @ inner_var - s)).mean() + \
            ridge * (inner_var @ inner_var)

    def outer(self, inner_var, outer_var, idx=None):
        c, d, t = self._rows(idx, self.c, self.d, self.t)
        return F.softplus(c @ inner_var + d @ outer_var - t).mean() + \
            0.5 * self.outer_reg * (outer_var @ outer_var)


def hyper_cleaning(seed=0, n_features=4, n_classes=3):
    gen = torch.Generator().manual_seed(seed)

    def split(n):
        X = torch.randn(n, n_features, generator=gen, dtype=torch.float64)
        labels = torch.randint(n_classes, (n,), generator=gen)
        return X.numpy(), labels.numpy()

    (X_train, y_train), (X_val, y_val) = split(N_INNER), split(N_OUTER)
    # a small ridge, so that the curvature comes mostly from the data term
    # and changes with the sample weights and the model
    return HyperCleaningProblem(X_train, y_train, X_val, y_val, reg=0.1,
                                n_classes=n_classes, value_function=False,
                                dtype=torch.float64)


def quadratic(seed=0):
    return QuadraticProblem(n_inner=N_INNER, n_outer=N_OUTER, dim_inner=5,
                            dim_outer=3, cond=5.0, random_state=seed)


#: name -> a function building the problem
PROBLEMS = {"hyper_cleaning": hyper_cleaning, "quadratic": quadratic,
            "coupled": CoupledProblem}
