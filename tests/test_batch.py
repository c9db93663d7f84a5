"""Contiguous blocks: the helpers, the "blocks" samplers, and every problem's
oracles on a block against the same indices gathered."""
import numpy as np
import pytest
import scipy.sparse as sp
import torch

from benchmark_utils.batches import (
    BatchPartition,
    BatchSampler,
    RecordingSampler,
    add_at,
    contiguous_blocks,
    take,
)
from benchmark_utils.problems.hyper_cleaning import make_hyper_cleaning
from benchmark_utils.problems.quadratic import QuadraticProblem
from benchmark_utils.problems.regularization import RegularizationProblem


def gen(seed):
    return torch.Generator().manual_seed(seed)


def test_contiguous_blocks_cover_the_range_in_order():
    blocks = contiguous_blocks(23, 5)
    assert [b.block for b in blocks] == [(0, 5), (5, 5), (10, 5), (15, 5),
                                         (20, 3)]
    assert torch.equal(torch.cat(blocks), torch.arange(23))


def test_take_and_add_at_match_gather_and_index_add():
    data = torch.randn(23, 4, dtype=torch.float64)
    for block in contiguous_blocks(23, 5):
        plain = block.clone()  # the same indices, unmarked
        assert not hasattr(plain, "block")
        assert torch.equal(take(data, block), data.index_select(0, plain))
        assert torch.equal(take(data.T, block, dim=1),
                           data.T.index_select(1, plain))
        values = torch.randn(len(block), dtype=torch.float64)
        out = torch.randn(23, dtype=torch.float64)
        want = out.clone().index_add_(0, plain, values, alpha=-0.5)
        assert torch.equal(add_at(out, block, values, alpha=-0.5), want)
    # unmarked indices keep index_add_'s sum over repeats
    out = add_at(torch.zeros(4), torch.tensor([1, 1, 3]),
                 torch.tensor([1.0, 2.0, 4.0]))
    assert torch.equal(out, torch.tensor([0.0, 3.0, 0.0, 4.0]))


@pytest.mark.parametrize("n, batch_size", [(100, 10), (103, 10)])
def test_block_sampler_visits_fixed_blocks_in_new_orders(n, batch_size):
    sampler = BatchSampler(n, batch_size, gen(0), sampling="blocks")
    blocks = {b.block for b in contiguous_blocks(n, batch_size)}
    n_batches = len(blocks)
    orders = []
    for _ in range(3):  # three epochs
        batches = [sampler() for _ in range(n_batches)]
        assert {b.block for b in batches} == blocks
        for b in batches:
            assert torch.equal(b, torch.arange(b.block[0], sum(b.block)))
        orders.append([b.block for b in batches])
    assert orders[0] != orders[1] or orders[1] != orders[2]


def test_block_sampler_is_seeded():
    def draws(seed):
        sampler = BatchSampler(100, 8, gen(seed), sampling="blocks")
        return [sampler().block for _ in range(30)]
    assert draws(1) == draws(1)
    assert draws(1) != draws(2)


def test_block_partition_is_contiguous_and_weighted():
    partition = BatchPartition(23, 5, gen(0), sampling="blocks")
    assert [b.block for b in partition.batches] == [
        b.block for b in contiguous_blocks(23, 5)]
    torch.testing.assert_close(
        partition.weights,
        torch.tensor([5, 5, 5, 5, 3], dtype=torch.float64) / 23)
    batch_id, idx = partition.sample()
    assert idx is partition.batches[batch_id]


@pytest.mark.parametrize("cls", [BatchSampler, BatchPartition])
def test_bad_sampling(cls):
    with pytest.raises(ValueError, match="sampling.*'shuffle', 'blocks'"):
        cls(10, 2, gen(0), sampling="random")


def test_solver_rejects_bad_sampling(quadratic, make_solver):
    with pytest.raises(ValueError, match="sampling"):
        make_solver("SOBA", quadratic, sampling="contiguous")


# -- every problem: a block gives what its indices give ----------------------
def hyper_cleaning():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 6)) * 3 + 1
    labels = rng.integers(0, 4, size=len(X))
    return make_hyper_cleaning(X[:40], labels[:40], X[40:70], labels[40:70],
                               X[70:], labels[70:], n_classes=4,
                               dtype=torch.float64)


def regularization(layout):
    rng = np.random.default_rng(0)

    def design(n_rows):
        X = rng.standard_normal((n_rows, 9))
        X = X * (rng.random((n_rows, 9)) < 0.5)
        return sp.csr_matrix(X) if layout == "sparse" else X

    return RegularizationProblem(
        design(40), rng.integers(0, 3, 40), design(30), rng.integers(0, 3, 30),
        penalty="feature", dtype=torch.float64)


PROBLEMS = {
    "hyper_cleaning": hyper_cleaning,
    "quadratic": lambda: QuadraticProblem(n_inner=40, n_outer=30,
                                          dim_inner=6, dim_outer=4),
    "regularization_dense": lambda: regularization("dense"),
    "regularization_sparse": lambda: regularization("sparse"),
}


def _data(problem):
    """Copies of every tensor the problem holds (to catch writes)."""
    found = []

    def walk(obj, depth=0):
        if torch.is_tensor(obj):
            if obj.layout == torch.strided:
                found.append((obj, obj.clone()))
        elif depth < 3 and hasattr(obj, "__dict__"):
            for value in vars(obj).values():
                walk(value, depth + 1)
        elif depth < 3 and isinstance(obj, (dict, list, tuple)):
            for value in (obj.values() if isinstance(obj, dict) else obj):
                walk(value, depth + 1)
    walk(problem)
    return found


@pytest.mark.parametrize("name", list(PROBLEMS))
def test_oracles_on_a_block_equal_oracles_on_its_indices(name):
    problem = PROBLEMS[name]()
    gen_ = gen(1)
    y = torch.randn(problem.dim_inner, generator=gen_, dtype=torch.float64)
    x = 0.5 * torch.randn(problem.dim_outer, generator=gen_,
                          dtype=torch.float64)
    v = torch.randn(problem.dim_inner, generator=gen_, dtype=torch.float64)
    snapshot = _data(problem)
    inner = contiguous_blocks(problem.n_inner, 16)
    outer = contiguous_blocks(problem.n_outer, 16)
    calls = {
        "inner": (inner, lambda i: (problem.inner(y, x, i),)),
        "grad_inner": (inner, lambda i: problem.grad_inner(y, x, i)),
        "grad_inner_y": (inner, lambda i: (problem.grad_inner_y(y, x, i),)),
        "grad_inner_x": (inner, lambda i: (problem.grad_inner_x(y, x, i),)),
        "hvp": (inner, lambda i: (problem.hvp(y, x, v, i),)),
        "cross": (inner, lambda i: (problem.cross(y, x, v, i),)),
        "inner_oracles": (inner, lambda i: problem.inner_oracles(y, x, v, i)),
        "outer": (outer, lambda i: (problem.outer(y, x, i),)),
        "grad_outer": (outer, lambda i: problem.grad_outer(y, x, i)),
        "grad_outer_y": (outer, lambda i: (problem.grad_outer_y(y, x, i),)),
    }
    for oracle, (blocks, call) in calls.items():
        for block in (blocks[1], blocks[-1]):  # a full one, the remainder
            for got, want in zip(call(block), call(block.clone())):
                torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-14,
                                           msg=f"{name}.{oracle}")
    for tensor, before in snapshot:
        assert torch.equal(tensor, before), f"{name}: data was modified"


# -- recording and replaying a batch sequence --------------------------------
@pytest.mark.parametrize("sampling", ["shuffle", "blocks"])
def test_replay_yields_the_recorded_batches(sampling):
    recorder = RecordingSampler(BatchSampler(103, 10, gen(0),
                                             sampling=sampling))
    drawn = [recorder() for _ in range(7)]
    assert recorder.batches == drawn
    for _ in range(2):  # a recording can be replayed more than once
        replay = recorder.replay()
        assert len(replay) == 7
        for batch in drawn:
            got = replay()
            assert got is batch
            if sampling == "blocks":
                assert got.block == batch.block
                assert torch.equal(got, torch.arange(got.block[0],
                                                     sum(got.block)))
        with pytest.raises(IndexError, match="every recorded batch"):
            replay()


@pytest.mark.parametrize("sampling", ["shuffle", "blocks"])
def test_replays_leave_the_sampler_sequence_unchanged(sampling):
    """Draws through a recorder, with replays in between, are the draws of
    the same sampler alone (replays draw nothing), and over an epoch every
    sample is drawn once."""
    recorder = RecordingSampler(BatchSampler(100, 10, gen(3),
                                             sampling=sampling))
    twin = BatchSampler(100, 10, gen(3), sampling=sampling)
    seen = []
    for _ in range(4):  # 4 x 5 draws: two epochs
        recorder.clear()
        batches = [recorder() for _ in range(5)]
        for _ in range(3):
            replay = recorder.replay()
            assert [replay() for _ in range(5)] == batches
        for batch in batches:
            assert torch.equal(batch, twin())
        seen.extend(batches)
    for epoch in (seen[:10], seen[10:]):
        assert torch.equal(torch.cat(epoch).sort().values, torch.arange(100))


def test_replay_of_the_full_batch():
    recorder = RecordingSampler(BatchSampler(50, "full", gen(0)))
    assert recorder.full
    assert [recorder() for _ in range(3)] == [None] * 3
    replay = recorder.replay()
    assert [replay() for _ in range(3)] == [None] * 3
