"""CNNProblem's closed-form oracles against the autograd / torch.func
oracles of NetworkProblem on the same network and data: oracle by oracle,
and solver iterates."""
import numpy as np
import pytest
import torch

from benchmark_utils.batches import contiguous_blocks
from benchmark_utils.problems.cnn import CNNProblem
from benchmark_utils.problems.networks import (
    NetworkProblem,
    make_network,
    make_network_hyper_cleaning,
)
from conftest import run_steps

N_TRAIN, N_VAL, N_CLASSES, SIDE = 30, 20, 4, 8


def data(seed=0):
    """Random 8x8 images whose top-left 4x4 corner is zero: there the
    first convolution's outputs equal its bias, so that max-pooling
    windows hold ties, which both implementations must break alike."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N_TRAIN + N_VAL, SIDE, SIDE)) * 2 + 0.5
    X[:, :4, :4] = 0.0
    labels = rng.integers(0, N_CLASSES, size=N_TRAIN + N_VAL)
    X = X.reshape(len(X), -1)
    return X[:N_TRAIN], labels[:N_TRAIN], X[N_TRAIN:], labels[N_TRAIN:]


def make(problem_class, dtype=torch.float64, chunk_size=4096):
    """``problem_class`` on the test data, with a fixed module and start."""
    module = make_network("cnn", SIDE * SIDE, N_CLASSES)
    return problem_class(module, *data(), reg=0.01, n_classes=N_CLASSES,
                         init_seed=3, dtype=dtype, chunk_size=chunk_size)


def pair(dtype=torch.float64, chunk_size=4096):
    """(CNNProblem, NetworkProblem) on the same network and data."""
    return (make(CNNProblem, dtype, chunk_size),
            make(NetworkProblem, dtype, chunk_size))


def random_point(problem, seed=1):
    """y away from the start (biases nonzero, ReLUs mixed), x and a
    direction v."""
    gen = torch.Generator().manual_seed(seed)
    kw = dict(generator=gen, dtype=torch.float64)
    y = problem.inner_var0.double() \
        + 0.3 * torch.randn(problem.dim_inner, **kw)
    x = torch.randn(problem.dim_outer, **kw)
    v = torch.randn(problem.dim_inner, **kw)
    return (t.to(problem.dtype) for t in (y, x, v))


BATCHES = {"full": None,
           "repeats": torch.tensor([3, 7, 7, 0, 19, 12, 18]),
           "block": contiguous_blocks(N_TRAIN, 6)[2]}


def oracles(problem, y, x, v, idx):
    """Every oracle of the problem, by name (fused and separate calls)."""
    grad_y, grad_x = problem.grad_inner(y, x, idx)
    fused = problem.inner_oracles(y, x, v, idx)
    return {
        "grad_inner_y": [problem.grad_inner_y(y, x, idx), grad_y, fused[0]],
        "grad_inner_x": [problem.grad_inner_x(y, x, idx), grad_x],
        "hvp": [problem.hvp(y, x, v, idx), fused[1]],
        "cross": [problem.cross(y, x, v, idx), fused[2]],
        "grad_outer_y": [problem.grad_outer_y(y, x, idx),
                         problem.grad_outer(y, x, idx)[0]],
    }


def max_rel_error(a, b):
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize("chunk_size", [4096, 4])
@pytest.mark.parametrize("batch", BATCHES)
def test_oracles_match_autograd(batch, chunk_size):
    """float64, one chunk or chunks of 4 samples (the full set and the
    gathered batch then take several)."""
    fast, ref = pair(chunk_size=chunk_size)
    y, x, v = random_point(fast)
    idx = BATCHES[batch]
    want = oracles(ref, y, x, v, idx)
    got = oracles(fast, y, x, v, idx)
    for key in want:
        for a in got[key]:
            assert max_rel_error(a, want[key][0]) < 1e-12, key
    assert float(fast.inner(y, x, idx)) == pytest.approx(
        float(ref.inner(y, x, idx)), rel=1e-13)
    assert float(fast.outer(y, x, idx)) == pytest.approx(
        float(ref.outer(y, x, idx)), rel=1e-13)


def test_pooling_ties_are_exercised():
    """The test data holds max-pooling windows of equal positive values
    (the zero corner gives the first convolution's bias there), where the
    oracles must pick the window's first entry as autograd does."""
    fast = make(CNNProblem)
    y, _, _ = random_point(fast)
    blocks = fast.parameters_of(y)
    A = fast.splits["train"].A
    z1 = torch.nn.functional.conv2d(A, blocks["conv1.weight"],
                                    blocks["conv1.bias"], padding=2)
    windows = z1[:, :, :2, :2].flatten(2)
    tied = (windows == windows[:, :, :1]).all(dim=2) & (windows[..., 0] > 0)
    assert bool(tied.any())


def test_float32_close_to_float64():
    fast32 = make(CNNProblem, dtype=torch.float32)
    fast64 = make(CNNProblem)
    y, x, v = random_point(fast64)
    for idx in BATCHES.values():
        want = fast64.inner_oracles(y, x, v, idx)
        got = fast32.inner_oracles(y.float(), x.float(), v.float(), idx)
        for a, b in zip(got, want):
            assert max_rel_error(a.double(), b) < 1e-4


def test_metrics_and_logits_match():
    fast, ref = pair()
    y, x, _ = random_point(fast)
    A = fast.splits["val"].A
    torch.testing.assert_close(fast.logits(y, A), ref.logits(y, A),
                               rtol=1e-12, atol=0)
    assert fast.metrics(y, x) == ref.metrics(y, x)


@pytest.mark.parametrize("name, params, n_steps", [
    ("SOBA", dict(batch_size=4), 6),
    ("StocBiO", dict(batch_size=4, n_inner_steps=3, n_neumann_steps=3), 2),
    ("FSLA", dict(batch_size=4), 4),
])
@pytest.mark.parametrize("sampling", ["shuffle", "blocks"])
def test_solver_iterates_match_autograd(name, params, n_steps, sampling,
                                        make_solver):
    fast, ref = pair()
    states = [run_steps(make_solver(name, p, sampling=sampling, **params),
                        n_steps) for p in (fast, ref)]
    got, want = (vars(s) for s in states)
    assert set(got) == set(want)
    assert not torch.equal(want["inner_var"], ref.inner_var0)
    assert not torch.equal(want["outer_var"], ref.outer_var0)
    for key, value in want.items():
        if isinstance(value, torch.Tensor):
            torch.testing.assert_close(got[key], value, rtol=1e-10,
                                       atol=1e-12, msg=key)


def test_network_hyper_cleaning_builds_a_cnn_problem():
    X, labels, X_val, labels_val = data()
    p = make_network_hyper_cleaning("cnn", X, labels, X_val, labels_val,
                                    n_classes=N_CLASSES, reg=0.01)
    assert type(p) is CNNProblem
    assert type(make_network_hyper_cleaning(
        "mlp", X, labels, X_val, labels_val, n_classes=N_CLASSES,
        reg=0.01)) is not CNNProblem


def test_needs_a_lenet():
    with pytest.raises(ValueError, match="LeNet module, got MLP"):
        CNNProblem(make_network("mlp", 64, 4), *data())
