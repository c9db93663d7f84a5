"""Dense second-order matrices built by torch.func, against the hvp and
cross oracles, and the counting of work done outside the oracle wrapper."""
import pytest
import torch
from test_batch import hyper_cleaning, regularization

from benchmark_utils.batches import contiguous_blocks
from benchmark_utils.problems.autograd import dense_second_order
from benchmark_utils.problems.quadratic import QuadraticProblem
from benchmark_utils.solver.counting import CountingProblem

PROBLEMS = {
    "quadratic": lambda: QuadraticProblem(n_inner=40, n_outer=30,
                                          dim_inner=6, dim_outer=4),
    "hyper_cleaning": hyper_cleaning,
    "logistic": lambda: regularization("dense"),
}


@pytest.mark.parametrize("name", list(PROBLEMS))
@pytest.mark.parametrize("batch", ["full", "indices", "block"])
def test_dense_matrices_match_the_oracles(name, batch):
    problem = PROBLEMS[name]()
    idx = {"full": None, "indices": torch.tensor([3, 1, 7, 7, 12]),
           "block": contiguous_blocks(problem.n_inner, 8)[1]}[batch]
    gen = torch.Generator().manual_seed(0)
    y = torch.randn(problem.dim_inner, generator=gen, dtype=torch.float64)
    x = 0.3 * torch.randn(problem.dim_outer, generator=gen,
                          dtype=torch.float64)
    hess, cross = dense_second_order(problem.inner, y, x, idx)
    d, p = problem.dim_inner, problem.dim_outer
    assert hess.shape == (d, d) and cross.shape == (p, d)
    assert not hess.requires_grad and not cross.requires_grad
    for v in torch.randn(3, d, generator=gen, dtype=torch.float64):
        torch.testing.assert_close(hess @ v, problem.hvp(y, x, v, idx),
                                   rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(cross @ v, problem.cross(y, x, v, idx),
                                   rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(hess, hess.T, rtol=1e-12, atol=1e-12)


def test_charge_counts_as_the_oracle_calls_would(quadratic):
    direct, charged = CountingProblem(quadratic), CountingProblem(quadratic)
    y, x = quadratic.inner_var0, quadratic.outer_var0
    idx = torch.arange(16)
    for _ in range(3):
        direct.hvp(y, x, y, idx)
    direct.cross(y, x, y)
    direct.inner_oracles(y, x, y, idx)
    direct.grad_outer(y, x, idx)
    charged.charge("hvp", idx, times=3)
    charged.charge("cross")
    charged.charge("inner_oracles", idx)
    charged.charge("grad_outer", idx)
    assert charged.counts == direct.counts
    assert charged.counts["outer_samples"] == 16
