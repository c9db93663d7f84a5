"""Sparse-support SAGA memory: same estimates as the dense table."""
import torch

from benchmark_utils.batches import BatchPartition
from benchmark_utils.problems.hyper_cleaning import HyperCleaningProblem
from benchmark_utils.solver.variance_reduction import (
    SagaTable,
    SupportSagaTable,
    make_table,
)


def small_hyper_cleaning():
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(23, 4, generator=gen, dtype=torch.float64)
    labels = torch.randint(3, (23,), generator=gen)
    return HyperCleaningProblem(X, labels, X[:10], labels[:10],
                                value_function=False, dtype=torch.float64)


def test_support_table_matches_dense_table():
    problem = small_hyper_cleaning()
    partition = BatchPartition(23, 5, torch.Generator().manual_seed(1))
    dense = SagaTable(partition.weights, (23,))
    sparse = SupportSagaTable(partition.weights, partition.batches, 23)
    gen = torch.Generator().manual_seed(2)
    y = torch.randn(problem.dim_inner, generator=gen, dtype=torch.float64)
    x = torch.randn(23, generator=gen, dtype=torch.float64)
    for b, idx in enumerate(partition.batches):
        cross = problem.cross(y, x, y, idx)
        dense.init(b, cross)
        sparse.init(b, cross)
    for step in range(40):
        b, idx = partition.sample()
        v = torch.randn(problem.dim_inner, generator=gen, dtype=torch.float64)
        cross = problem.cross(y, x, v, idx)
        # zero outside the batch: the support the problem declares
        outside = torch.ones(23, dtype=torch.bool)
        outside[idx] = False
        assert (cross[outside] == 0).all()
        torch.testing.assert_close(sparse.update(b, cross)[0],
                                   dense.update(b, cross)[0])
    torch.testing.assert_close(sparse.means()[0], dense.means()[0])
    assert sum(m.numel() for m in sparse.memory) == 23


def test_make_table_uses_supports_only_when_declared(quadratic):
    partition = BatchPartition(23, 5, torch.Generator().manual_seed(1))
    problem = small_hyper_cleaning()
    _, inner_x = make_table(problem, partition, (problem.dim_inner,), 23,
                            "inner")
    _, outer_x = make_table(problem, partition, (problem.dim_inner,), 23,
                            "outer")
    assert isinstance(inner_x, SupportSagaTable)
    assert sum(m.numel() for m in outer_x.memory) == 0  # f ignores x
    q_partition = BatchPartition(quadratic.n_inner, 16,
                                 torch.Generator().manual_seed(0))
    _, dense = make_table(quadratic, q_partition, (10,), 5, "inner")
    assert isinstance(dense, SagaTable)
