"""SABA (solvers/saba.py) and the SAGA memory table (benchmark_utils/saga)."""
import copy

import pytest
import torch

from benchmark_utils.batches import BatchPartition
from benchmark_utils.solver.variance_reduction import SagaTable
from conftest import run_steps


def _full_hessian(problem, y, x):
    eye = torch.eye(problem.dim_inner, dtype=torch.float64)
    return torch.stack([problem.hvp(y, x, e) for e in eye], dim=1)






def test_saba_v_converges_to_linear_system_solution(quadratic, make_solver):
    # x (almost) frozen: y -> y*(x) and v -> -H^{-1} grad_y f(x, y).
    solver = make_solver("SABA", quadratic, batch_size=16, step_size=0.1,
                         outer_ratio=1e-12)
    run_steps(solver, 4000)
    state = solver.state
    y, x = state.inner_var, state.outer_var
    assert (x - quadratic.outer_var0).norm() < 1e-8
    target = -torch.linalg.solve(_full_hessian(quadratic, y, x),
                                 quadratic.grad_outer_y(y, x))
    assert (state.v - target).norm() < 1e-6 * target.norm()


def _point(problem, seed):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(problem.dim_inner, dtype=torch.float64,
                        generator=gen),
            torch.randn(problem.dim_outer, dtype=torch.float64, generator=gen),
            torch.randn(problem.dim_inner, dtype=torch.float64, generator=gen))


def _inner_table(problem, partition, y, x, v):
    sizes = (problem.dim_inner, problem.dim_inner, problem.dim_outer)
    table = SagaTable(partition.weights, sizes)
    for b, idx in enumerate(partition.batches):
        table.init(b, *problem.inner_oracles(y, x, v, idx))
    return table


def test_saga_memory_means_after_one_pass(quadratic):
    # 200 samples in batches of 16: the last batch has 8 samples
    partition = BatchPartition(quadratic.n_inner, 16,
                               torch.Generator().manual_seed(0))
    assert len(partition.batches[-1]) == 8
    y, x, v = _point(quadratic, 0)
    table = _inner_table(quadratic, partition, y, x, v)
    for mean, full in zip(table.means(), quadratic.inner_oracles(y, x, v)):
        torch.testing.assert_close(mean, full, rtol=1e-12, atol=1e-12)
    # one full pass of updates at another point: means follow exactly
    y2, x2, v2 = _point(quadratic, 1)
    for b, idx in enumerate(partition.batches):
        table.update(b, *quadratic.inner_oracles(y2, x2, v2, idx))
    for mean, full in zip(table.means(),
                          quadratic.inner_oracles(y2, x2, v2)):
        torch.testing.assert_close(mean, full, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("side", ["inner", "outer"])
def test_saga_estimates_are_unbiased(quadratic, side):
    # memory filled at one point, estimates at another fixed (x, y, v)
    n = quadratic.n_inner if side == "inner" else quadratic.n_outer
    partition = BatchPartition(n, 24, torch.Generator().manual_seed(0))
    assert len(partition.batches[-1]) < 24  # smaller last batch
    if side == "inner":
        def directions(y, x, v, idx=None):
            return quadratic.inner_oracles(y, x, v, idx)
        sizes = (quadratic.dim_inner, quadratic.dim_inner,
                 quadratic.dim_outer)
    else:
        def directions(y, x, v, idx=None):
            return quadratic.grad_outer(y, x, idx)
        sizes = (quadratic.dim_inner, quadratic.dim_outer)
    table = SagaTable(partition.weights, sizes)
    y0, x0, v0 = _point(quadratic, 0)
    for b, idx in enumerate(partition.batches):
        table.init(b, *directions(y0, x0, v0, idx))
    y, x, v = _point(quadratic, 1)
    expected = [torch.zeros(s, dtype=torch.float64) for s in sizes]
    for b, idx in enumerate(partition.batches):
        estimates = copy.deepcopy(table).update(b, *directions(y, x, v, idx))
        for acc, est in zip(expected, estimates):
            acc.add_(est, alpha=float(partition.weights[b]))
    for acc, full in zip(expected, directions(y, x, v)):
        torch.testing.assert_close(acc, full, rtol=1e-10, atol=1e-12)


def test_saga_update_stores_new_value():
    table = SagaTable([0.5, 0.25, 0.25], (2, 1), dtype=torch.float32)
    table.init(0, torch.tensor([1., 2.]), torch.tensor([3.]))
    table.init(1, torch.tensor([0., 0.]), torch.tensor([1.]))
    table.init(2, torch.tensor([4., 4.]), torch.tensor([1.]))
    a, b = table.update(1, torch.tensor([2., 2.]), torch.tensor([5.]))
    # estimate = new - memory[1] + mean, with mean = (1.5, 2, 2) before
    torch.testing.assert_close(a, torch.tensor([3.5, 4.]))
    torch.testing.assert_close(b, torch.tensor([6.]))
    torch.testing.assert_close(table.memory[1], torch.tensor([2., 2., 5.]))
    torch.testing.assert_close(table.mean, torch.tensor([2., 2.5, 3.]))


def test_saba_initial_memory_is_full_batch(quadratic, make_solver):
    # the solver's own partition (last inner batch: 8 samples, outer: 4)
    solver = make_solver("SABA", quadratic, batch_size=16)
    y0, x0 = quadratic.inner_var0, quadratic.outer_var0
    v0 = torch.zeros_like(y0)
    for mean, full in zip(solver.inner_table.means(),
                          quadratic.inner_oracles(y0, x0, v0)):
        torch.testing.assert_close(mean, full, rtol=1e-12, atol=1e-12)
    for mean, full in zip(solver.outer_table.means(),
                          quadratic.grad_outer(y0, x0)):
        torch.testing.assert_close(mean, full, rtol=1e-12, atol=1e-12)
    # the initial pass: each of the three fused inner oracles sees every
    # inner sample once, grad f every outer sample once
    counts = solver.oracles.counts
    assert counts["inner_samples"] == 3 * quadratic.n_inner
    assert counts["outer_samples"] == quadratic.n_outer
    run_steps(solver, 1)
    assert counts["grad"] == len(solver.inner_table) \
        + len(solver.outer_table) + 2
    assert counts["hvp"] == len(solver.inner_table) + 1
    assert counts["cross"] == len(solver.inner_table) + 1


@pytest.mark.parametrize("params, name", [
    (dict(step_size=-0.1), "step_size"),
    (dict(step_size="big"), "step_size"),
    (dict(outer_ratio=-1), "outer_ratio"),
    (dict(batch_size=-16), "batch_size"),
])
def test_saba_invalid_parameters(quadratic, make_solver, params, name):
    with pytest.raises(ValueError, match=name):
        make_solver("SABA", quadratic, **params)
