import pytest
import torch

from benchmark_utils.batches import BatchPartition, BatchSampler


def gen(seed):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("n, batch_size", [(100, 10), (103, 10), (7, 64)])
def test_every_sample_once_per_epoch(n, batch_size):
    sampler = BatchSampler(n, batch_size, gen(0))
    if batch_size >= n:
        assert sampler() is None
        return
    n_batches = -(-n // batch_size)
    for _ in range(3):  # three epochs
        batches = [sampler() for _ in range(n_batches)]
        seen = torch.cat(batches)
        assert torch.equal(seen.sort().values, torch.arange(n))
        assert [len(b) for b in batches[:-1]] == [batch_size] * (n_batches - 1)


def test_epochs_are_reshuffled():
    sampler = BatchSampler(50, 50 - 1, gen(0))
    first = torch.cat([sampler(), sampler()])
    second = torch.cat([sampler(), sampler()])
    assert not torch.equal(first, second)


def test_full_batch():
    assert BatchSampler(10, "full", gen(0))() is None


@pytest.mark.parametrize("sampling", ["shuffle", "blocks"])
def test_batch_larger_than_the_data_is_the_full_batch(sampling):
    # documented in the README: batch_size >= n_samples means "full"
    for batch_size in (10, 64):
        sampler = BatchSampler(10, batch_size, gen(0), sampling=sampling)
        assert sampler() is None
        partition = BatchPartition(10, batch_size, gen(0), sampling=sampling)
        assert len(partition.batches) == 1


def test_same_seed_same_sequence_different_seeds_differ():
    def draws(seed):
        sampler = BatchSampler(100, 8, gen(seed))
        return torch.cat([sampler() for _ in range(30)])
    assert torch.equal(draws(1), draws(1))
    assert not torch.equal(draws(1), draws(2))


@pytest.mark.parametrize("batch_size", [0, -3, 2.5, "all", None, True])
def test_bad_batch_size(batch_size):
    with pytest.raises(ValueError, match="batch_size.*'full'"):
        BatchSampler(10, batch_size, gen(0))


def test_partition_is_exact_and_weighted():
    partition = BatchPartition(23, 5, gen(0))
    assert len(partition) == 5
    seen = torch.cat(partition.batches)
    assert torch.equal(seen.sort().values, torch.arange(23))
    torch.testing.assert_close(
        partition.weights,
        torch.tensor([5, 5, 5, 5, 3], dtype=torch.float64) / 23)
    # the batches are fixed and drawn with probability proportional to size
    counts = torch.zeros(5)
    for _ in range(20000):
        batch_id, idx = partition.sample()
        assert idx is partition.batches[batch_id]
        counts[batch_id] += 1
    torch.testing.assert_close(counts / counts.sum(),
                               partition.weights.float(), atol=0.015, rtol=0)


def test_partition_same_seed_same_sequence():
    def draws(seed):
        partition = BatchPartition(40, 8, gen(seed))
        return [partition.sample()[0] for _ in range(50)]
    assert draws(3) == draws(3)
    assert draws(3) != draws(4)
