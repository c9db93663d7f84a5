"""Hyper-cleaning with network inner models (MLP, CNN): oracles against
double-backward autograd and finite differences, batches, metrics,
parameters, initialization, the exact inner solve, the unchanged linear
default, CUDA."""
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from benchmark_utils.batches import contiguous_blocks
from benchmark_utils.datasets import (
    DATASET_PARAMETERS,
    check_dataset_parameters,
    dataset_problem,
)
from benchmark_utils.problems.hyper_cleaning import (
    HyperCleaningProblem,
    make_hyper_cleaning,
)
from benchmark_utils.problems.implicit import power_iteration, solve_inner
from benchmark_utils.problems.networks import (
    MLP,
    LeNet,
    MLPProblem,
    NetworkProblem,
    init_parameters,
    make_network,
    make_network_hyper_cleaning,
)

N_TRAIN, N_VAL, N_TEST, N_CLASSES = 30, 20, 20, 4
# (model, activation, n_features): the CNN reads 64 features as 8x8 images
MODELS = {"mlp-relu": ("mlp", "relu", 12),
          "mlp-identity": ("mlp", "identity", 12),
          "cnn": ("cnn", "relu", 64)}


def make_problem(name, dtype=torch.float64, device="cpu", chunk_size=4096,
                 seed=0, **kw):
    """A tiny problem on random data (``chunk_size`` 8 splits the full
    batch of 30 samples into chunks; minibatches of <= 8 are one chunk)."""
    model, activation, n_features = MODELS[name]
    rng = np.random.default_rng(seed)
    n = N_TRAIN + N_VAL + N_TEST
    X = rng.normal(size=(n, n_features)) * 2 + 0.5
    labels = rng.integers(0, N_CLASSES, size=n)
    a, b = N_TRAIN, N_TRAIN + N_VAL
    p = make_network_hyper_cleaning(
        model, X[:a], labels[:a], X[a:b], labels[a:b], X[b:], labels[b:],
        hidden=7, activation=activation, n_classes=N_CLASSES, dtype=dtype,
        device=device, random_state=seed, **kw)
    p.chunk_size = chunk_size
    return p


def random_point(problem, seed=1):
    """A point away from the start (so that ReLUs are mixed) and a
    direction, in float64."""
    gen = torch.Generator().manual_seed(seed)
    kw = dict(generator=gen, dtype=torch.float64)
    y = problem.inner_var0.double().cpu() \
        + 0.3 * torch.randn(problem.dim_inner, **kw)
    x = torch.randn(problem.dim_outer, **kw)
    v = torch.randn(problem.dim_inner, **kw)
    return y, x, v


def batches():
    return {"full": None,
            "repeats": torch.tensor([3, 7, 7, 0, 19, 12]),
            "block": contiguous_blocks(N_TRAIN, 6)[2]}


def double_backward(problem, y, x, v, idx):
    """Every oracle by plain autograd on ``problem.inner`` / ``outer``:
    gradients, then H v and J v from the backward of <grad_y g, v> built
    with ``create_graph=True``."""
    y = y.detach().requires_grad_(True)
    x = x.detach().requires_grad_(True)
    g = problem.inner(y, x, idx)
    grad_y, grad_x = torch.autograd.grad(g, (y, x), create_graph=True)
    hv, jv = torch.autograd.grad(grad_y, (y, x), grad_outputs=v)
    f = problem.outer(y, x, idx)
    (grad_f,) = torch.autograd.grad(f, y)
    return dict(grad_inner_y=grad_y.detach(), grad_inner_x=grad_x.detach(),
                hvp=hv, cross=jv, grad_outer_y=grad_f)


def oracles_of(problem, y, x, v, idx):
    """Every oracle of the problem, by name (the fused and the separate
    calls)."""
    grad_y, grad_x = problem.grad_inner(y, x, idx)
    fused = problem.inner_oracles(y, x, v, idx)
    outer_y, outer_x = problem.grad_outer(y, x, idx)
    assert torch.equal(outer_x, torch.zeros_like(x))
    return {
        "grad_inner_y": [problem.grad_inner_y(y, x, idx), grad_y, fused[0]],
        "grad_inner_x": [problem.grad_inner_x(y, x, idx), grad_x],
        "hvp": [problem.hvp(y, x, v, idx), fused[1]],
        "cross": [problem.cross(y, x, v, idx), fused[2]],
        "grad_outer_y": [problem.grad_outer_y(y, x, idx), outer_y],
    }


def max_rel_error(a, b):
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("batch", ["full", "repeats", "block"])
def test_oracles_match_double_backward(name, batch):
    p = make_problem(name, chunk_size=8)
    idx = batches()[batch]
    y, x, v = random_point(p)
    want = double_backward(p, y, x, v, idx)
    for key, values in oracles_of(p, y, x, v, idx).items():
        for got in values:
            assert max_rel_error(got, want[key]) < 1e-12, key


def fd(fn, var, direction, eps=1e-6):
    """Central difference of ``fn`` at ``var`` along ``direction``, with a
    step of norm ``eps``: ReLUs and max-pooling make the gradient piecewise
    smooth, and a longer step crosses their switches."""
    scale = float(direction.norm())
    step = eps / scale
    return (fn(var + step * direction) - fn(var - step * direction)) \
        / (2 * step)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("batch", ["full", "repeats", "block"])
def test_oracles_match_finite_differences(name, batch):
    p = make_problem(name)
    idx = batches()[batch]
    y, x, v = random_point(p)
    gen = torch.Generator().manual_seed(2)
    u = torch.randn(p.dim_inner, generator=gen, dtype=torch.float64)
    dx = torch.randn(p.dim_outer, generator=gen, dtype=torch.float64)
    grad_y, grad_x = p.grad_inner(y, x, idx)
    checks = [
        # <grad_y g, u> and <grad_x g, dx>: derivatives of g
        (grad_y @ u, fd(lambda t: p.inner(t, x, idx), y, u)),
        (grad_x @ dx, fd(lambda t: p.inner(y, t, idx), x, dx)),
        (p.grad_outer_y(y, x, idx) @ u,
         fd(lambda t: p.outer(t, x, idx), y, u)),
    ]
    # H v and J v: derivatives of grad_y g along v in y, along dx in x
    hv = p.hvp(y, x, v, idx)
    want_hv = fd(lambda t: p.grad_inner_y(t, x, idx), y, v)
    checks.append((p.cross(y, x, v, idx) @ dx,
                   fd(lambda t: p.grad_inner_y(y, t, idx) @ v, x, dx)))
    assert max_rel_error(hv, want_hv) < 1e-6
    for got, want in checks:
        assert float(abs(got - want)) <= 1e-6 * max(1.0, float(abs(want)))


@pytest.mark.parametrize("name", MODELS)
def test_chunks_do_not_change_oracles(name):
    whole = make_problem(name, chunk_size=4096)
    chunked = make_problem(name, chunk_size=7)
    y, x, v = random_point(whole)
    for idx in (None, torch.arange(20)):
        a = oracles_of(whole, y, x, v, idx)
        b = oracles_of(chunked, y, x, v, idx)
        for key in a:
            for got, want in zip(b[key], a[key]):
                assert max_rel_error(got, want) < 1e-12, key
        assert float(chunked.inner(y, x, idx)) == pytest.approx(
            float(whole.inner(y, x, idx)), rel=1e-13)
        assert float(chunked.outer(y, x, idx)) == pytest.approx(
            float(whole.outer(y, x, idx)), rel=1e-13)


def test_mlp_closed_form_matches_generic_network():
    """MLPProblem's closed forms against the torch.func / autograd oracles
    of NetworkProblem on the same module and data."""
    p = make_problem("mlp-relu")
    assert isinstance(p, MLPProblem)
    split = {k: (s.A.numpy(), s.labels.numpy()) for k, s in p.splits.items()}
    generic = NetworkProblem(
        p.module, *split["train"], *split["val"], *split["test"],
        n_classes=N_CLASSES, dtype=torch.float64)
    assert type(generic) is NetworkProblem
    y, x, v = random_point(p)
    for idx in batches().values():
        a = oracles_of(p, y, x, v, idx)
        b = oracles_of(generic, y, x, v, idx)
        for key in a:
            for got, want in zip(a[key], b[key]):
                assert max_rel_error(got, want) < 1e-12, key


def test_layout_and_architectures():
    mlp = make_network("mlp", 784, 10)
    assert isinstance(mlp, MLP) and isinstance(mlp.act, torch.nn.ReLU)
    assert sum(q.numel() for q in mlp.parameters()) == 784 * 300 + 300 \
        + 300 * 10 + 10
    assert isinstance(make_network("mlp", 784, 10, activation="identity")
                      .act, torch.nn.Identity)
    cnn = make_network("cnn", 784, 10)
    assert isinstance(cnn, LeNet)
    assert sum(q.numel() for q in cnn.parameters()) == 54314
    images = torch.randn(5, 1, 28, 28)
    assert cnn(images).shape == (5, 10)
    # y holds the blocks in named_parameters order, dense weights (in, out)
    p = make_problem("mlp-relu")
    blocks = p.parameters_of(torch.arange(float(p.dim_inner)))
    assert list(blocks) == ["hidden.weight", "hidden.bias", "out.weight",
                            "out.bias"]
    assert blocks["hidden.weight"].shape == (12, 7)
    assert blocks["hidden.weight"][0, 1] == 1.0
    assert blocks["hidden.bias"][0] == 12 * 7
    assert p.dim_inner == 12 * 7 + 7 + 7 * 4 + 4
    assert p.splits["train"].A.shape == (N_TRAIN, 12)
    c = make_problem("cnn")
    assert c.splits["train"].A.shape == (N_TRAIN, 1, 8, 8)
    assert not p.strongly_convex and not c.strongly_convex
    assert HyperCleaningProblem.strongly_convex
    assert not p.outer_depends_on_x
    # x as for the linear problem: logits outer_init = s x_i, s = sqrt(n)
    assert p.outer_scale == pytest.approx(math.sqrt(N_TRAIN))
    torch.testing.assert_close(p.outer_var0 * p.outer_scale,
                               torch.full((N_TRAIN,), -2.0,
                                          dtype=torch.float64))
    idx = torch.tensor([4, 2])
    assert torch.equal(p.outer_support(idx), idx)


def test_seeded_initialization():
    a = make_problem("mlp-relu", init_seed=3)
    b = make_problem("mlp-relu", init_seed=3)
    c = make_problem("mlp-relu", init_seed=4)
    assert torch.equal(a.inner_var0, b.inner_var0)
    assert not torch.equal(a.inner_var0, c.inner_var0)
    # float32 starts from the same float64 draw, cast
    f = make_problem("mlp-relu", init_seed=3, dtype=torch.float32)
    assert torch.equal(f.inner_var0, a.inner_var0.float())
    # weights of variance gain / fan_in (uniform), biases zero
    module = make_network("mlp", 784, 10)
    y = init_parameters(module, 0)
    blocks = dict(zip([n for n, _ in module.named_parameters()],
                      y.split([q.numel() for q in module.parameters()])))
    assert blocks["hidden.weight"].var() == pytest.approx(2 / 784, rel=0.02)
    assert blocks["out.weight"].var() == pytest.approx(1 / 300, rel=0.1)
    assert (blocks["hidden.bias"] == 0).all()
    assert (blocks["out.bias"] == 0).all()
    # the data set seeds the start with its random_state
    p = dataset_problem(*_dataset_args(model="mlp", hidden=5, seed=1))
    q = dataset_problem(*_dataset_args(model="mlp", hidden=5, seed=1))
    r = dataset_problem(*_dataset_args(model="mlp", hidden=5, seed=2))
    assert torch.equal(p.inner_var0, q.inner_var0)
    assert not torch.equal(p.inner_var0, r.inner_var0)


@pytest.mark.parametrize("name", MODELS)
def test_metrics(name):
    # the value function's Newton-CG solve is tested on the MLPs only
    # (slow on the CNN; the solve itself is tested on every model below)
    with_value = name != "cnn"
    p = make_problem(name, value_function=with_value)
    y, x, _ = random_point(p)
    m = p.metrics(y, x)
    assert set(m) == {"val_accuracy", "test_accuracy", "cleaning_f1"} \
        | ({"value_function"} if with_value else set())
    with torch.no_grad():
        logits = p.logits(y, p.splits["test"].A)
    want = float((logits.argmax(1) == p.splits["test"].labels).double()
                 .mean())
    assert m["test_accuracy"] == want
    assert 0 <= m["val_accuracy"] <= 1 and 0 <= m["cleaning_f1"] <= 1
    # flagged = negative logits, as for the linear problem
    x_clean = torch.where(p.corruption_mask, -1.0, 1.0).double()
    assert p.metrics(y, x_clean)["cleaning_f1"] == 1.0
    if not with_value:
        return
    # value function: f at the stationary point reached from y
    h, gnorm = p.value_function(x, y)
    assert gnorm < 1e-6 and math.isfinite(h)
    assert m["value_function"] == pytest.approx(h, rel=1e-6)


def test_objective_evaluates_a_network(bench):
    p = make_problem("cnn", dtype=torch.float32)
    objective = bench.get_benchmark_objective().get_instance()
    objective.set_data(problem=p)
    result = objective.evaluate_result(**objective.get_one_result())
    for key in ("value", "inner_grad_norm", "test_accuracy",
                "val_accuracy", "cleaning_f1"):
        assert math.isfinite(result[key]), key


@pytest.mark.parametrize("name", MODELS)
def test_exact_inner_solve_finds_a_stationary_point(name):
    """Newton-CG (Implicit-GD, Inner-Only) on a nonconvex g: from the
    seeded start it reaches grad_y g = 0 (a stationary point; the ridge
    keeps it bounded)."""
    p = make_problem(name)
    x = p.outer_var0
    g0 = float(p.grad_inner_y(p.inner_var0, x).norm())
    y, gnorm = solve_inner(p, x, tol=1e-10)
    assert gnorm < 1e-8 * max(1.0, g0)
    assert float(p.inner(y, x)) < float(p.inner(p.inner_var0, x))


@pytest.mark.parametrize("name", MODELS)
def test_hessian_bound(name):
    """2x the start's |lambda| on a subsample: above the full-batch
    spectral radius at the start."""
    p = make_problem(name)
    y, x = p.inner_var0, p.outer_var0
    top = power_iteration(lambda u: p.hvp(y, x, u), p.dim_inner,
                          n_iter=100, dtype=p.dtype)
    assert p.inner_hessian_bound() >= abs(top)
    assert p.inner_hessian_bound() == p.inner_hessian_bound()  # cached


def test_bad_parameters():
    with pytest.raises(ValueError, match="model must be one of"):
        make_network("rnn", 784, 10)
    with pytest.raises(ValueError, match="activation must be one of"):
        make_network("mlp", 784, 10, activation="tanh")
    with pytest.raises(ValueError, match="hidden"):
        make_network("mlp", 784, 10, hidden=0)
    with pytest.raises(ValueError, match="side is divisible by 4"):
        make_network("cnn", 100, 10)  # 10x10
    with pytest.raises(ValueError, match="reg"):
        make_problem("mlp-relu", reg=0.0)
    with pytest.raises(ValueError, match="init_seed"):
        make_problem("mlp-relu", init_seed=-1)
    with pytest.raises(ValueError, match="MLP module"):
        MLPProblem(make_network("cnn", 64, 4), np.zeros((4, 64)),
                   [0, 1, 2, 3], np.zeros((4, 64)), [0, 1, 2, 3])
    for key, bad, match in [("model", "resnet", "model must be one of"),
                            ("activation", "tanh",
                             "activation must be one of"),
                            ("hidden", 0, "hidden"),
                            ("hidden", 2.5, "hidden")]:
        dataset = SimpleNamespace(
            **{k: v[0] for k, v in DATASET_PARAMETERS.items()})
        setattr(dataset, key, bad)
        with pytest.raises(ValueError, match=match):
            check_dataset_parameters(dataset)


def _dataset_args(seed=0, n=60, n_features=16, **params):
    """(dataset, seed, splits) for ``dataset_problem`` with the default
    data set parameters and ``params``."""
    dataset = SimpleNamespace(**{k: v[0] for k, v in
                                 DATASET_PARAMETERS.items()})
    dataset.__dict__.update(params)
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(3 * n, n_features)).astype(float)
    labels = rng.integers(0, 10, size=3 * n)
    labels[:10] = np.arange(10)
    return (dataset, seed, X[:n], labels[:n], X[n:2 * n], labels[n:2 * n],
            X[2 * n:], labels[2 * n:])


def test_linear_default_is_unchanged():
    """model="linear" (the default) builds exactly the linear problem of
    ``make_hyper_cleaning``: same class, start and oracles."""
    assert DATASET_PARAMETERS["model"] == ["linear"]
    args = _dataset_args()
    dataset, seed = args[:2]
    p = dataset_problem(*args)
    assert type(p) is HyperCleaningProblem
    q = make_hyper_cleaning(*args[2:], ratio=dataset.ratio, reg=dataset.reg,
                            n_classes=10,
                            random_state=np.random.default_rng([seed, 1]),
                            value_function=False)
    assert torch.equal(p.inner_var0, q.inner_var0)
    assert torch.equal(p.outer_var0, q.outer_var0)
    gen = torch.Generator().manual_seed(0)
    y = torch.randn(p.dim_inner, generator=gen)
    x = torch.randn(p.dim_outer, generator=gen)
    v = torch.randn(p.dim_inner, generator=gen)
    for idx in (None, torch.tensor([1, 5, 5, 9])):
        for a, b in zip(p.inner_oracles(y, x, v, idx),
                        q.inner_oracles(y, x, v, idx)):
            assert torch.equal(a, b)
        assert torch.equal(p.grad_outer(y, x, idx)[0],
                           q.grad_outer(y, x, idx)[0])
    assert p.metrics(y, x) == q.metrics(y, x)


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_dataset_builds_networks(model):
    args = _dataset_args(model=model, hidden=9, activation="identity")
    p = dataset_problem(*args)
    assert isinstance(p, MLPProblem if model == "mlp" else NetworkProblem)
    assert p.dtype == torch.float32 and p.reg == 0.4
    if model == "mlp":
        assert isinstance(p.module.act, torch.nn.Identity)
        assert p.module.hidden.weight.shape == (16, 9)
    # standardized features, corrupted labels with their mask
    A = p.splits["train"].A.flatten(1)
    assert float(A.mean(0).abs().max()) < 1e-5
    changed = p.splits["train"].labels != p.clean_labels
    assert torch.equal(changed, p.corruption_mask)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", MODELS)
def test_cuda_matches_cpu(name):
    cpu = make_problem(name)
    gpu = make_problem(name, device="cuda")
    assert gpu.device.type == "cuda"
    assert torch.equal(gpu.inner_var0.cpu(), cpu.inner_var0)
    y, x, v = random_point(cpu)
    for batch, idx in batches().items():
        want = oracles_of(cpu, y, x, v, idx)
        got = oracles_of(gpu, y.cuda(), x.cuda(), v.cuda(),
                         None if idx is None else idx.cuda())
        for key in want:
            for a, b in zip(got[key], want[key]):
                assert a.device.type == "cuda"
                assert max_rel_error(a.cpu(), b) < 1e-10, (batch, key)
    assert gpu.metrics(y.cuda(), x.cuda()) == pytest.approx(
        cpu.metrics(y, x))
