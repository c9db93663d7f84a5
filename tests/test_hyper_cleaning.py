"""Data hyper-cleaning: closed-form oracles, corruption, metrics, datasets."""
import importlib.util
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark_utils.data.cleaning import (
    cleaning_f1,
    corrupt_labels,
    split_pool,
    standardize,
)
from benchmark_utils.data.files import DataFileError
from benchmark_utils.problems import autograd as oracles
from benchmark_utils.problems.hyper_cleaning import (
    HyperCleaningProblem,
    make_hyper_cleaning,
)
from benchmark_utils.problems.implicit import solve_inner
from conftest import ROOT

FASHION = Path(os.environ.get("BENCHOPT_DATA_HOME", "/nonexistent")) \
    / "fashion-mnist"
HAS_FASHION = (FASHION / "train-images-idx3-ubyte.gz").is_file()


def assert_close(a, b):
    torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-10)


def small_problem(n_train=40, n_val=30, n_test=20, n_features=6,
                  n_classes=4, seed=0, **kw):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_train + n_val + n_test, n_features)) * 3 + 1
    labels = rng.integers(0, n_classes, size=len(X))
    a, b = n_train, n_train + n_val
    kw.setdefault("dtype", torch.float64)
    return make_hyper_cleaning(X[:a], labels[:a], X[a:b], labels[a:b],
                               X[b:], labels[b:], n_classes=n_classes,
                               random_state=seed, **kw)


def random_point(problem, seed=1):
    gen = torch.Generator().manual_seed(seed)
    y = torch.randn(problem.dim_inner, generator=gen, dtype=torch.float64)
    x = torch.randn(problem.dim_outer, generator=gen, dtype=torch.float64)
    v = torch.randn(problem.dim_inner, generator=gen, dtype=torch.float64)
    return y, x, v


IDX = [None, torch.tensor([3, 7, 7, 0, 39, 12]), torch.arange(5)]


@pytest.mark.parametrize("outer_scale", [None, 1.0])
@pytest.mark.parametrize("idx", IDX, ids=["full", "repeats", "range"])
def test_oracles_match_autograd(idx, outer_scale):
    p = small_problem(outer_scale=outer_scale)
    y, x, v = random_point(p)
    ref = oracles.value_and_grads(p.inner, y, x, idx)
    gy, gx = p.grad_inner(y, x, idx)
    assert_close(gy, ref[1])
    assert_close(gx, ref[2])
    assert_close(p.grad_inner_y(y, x, idx), ref[1])
    assert_close(p.grad_inner_x(y, x, idx), ref[2])
    if idx is not None:  # grad_x is zero outside the batch
        outside = torch.ones(p.dim_outer, dtype=torch.bool)
        outside[idx] = False
        assert (gx[outside] == 0).all()
    assert_close(p.hvp(y, x, v, idx), oracles.hvp(p.inner, y, x, v, idx))
    assert_close(p.cross(y, x, v, idx), oracles.cross(p.inner, y, x, v, idx))
    fused = p.inner_oracles(y, x, v, idx)
    for got, want in zip(fused, oracles.inner_oracles(p.inner, y, x, v, idx)):
        assert_close(got, want)
    # fused == separate closed forms
    assert_close(fused[0], p.grad_inner_y(y, x, idx))
    assert_close(fused[1], p.hvp(y, x, v, idx))
    assert_close(fused[2], p.cross(y, x, v, idx))


@pytest.mark.parametrize("idx", [None, torch.tensor([1, 1, 29, 4])])
def test_outer_oracles_match_autograd(idx):
    p = small_problem()
    y, x, _ = random_point(p)
    ref = oracles.value_and_grads(p.outer, y, x, idx)
    gy, gx = p.grad_outer(y, x, idx)
    assert_close(gy, ref[1])
    assert_close(gx, ref[2])
    assert_close(p.grad_outer_y(y, x, idx), ref[1])
    assert_close(p.grad_outer_x(y, x, idx), ref[2])


def test_probability_cache_is_never_stale():
    p = small_problem()
    y, x, v = random_point(p)
    p.hvp(y, x, v)  # fills the cache at y
    y.add_(0.5)  # in place: same storage, new values
    assert_close(p.hvp(y, x, v), oracles.hvp(p.inner, y, x, v))
    y2 = -y
    assert_close(p.grad_inner_y(y2, x), oracles.grad_y(p.inner, y2, x))
    assert_close(p.inner_oracles(y, x, v)[2],
                 oracles.cross(p.inner, y, x, v))


def test_layout_and_start():
    p = small_problem(n_features=6, n_classes=4, outer_init=-3.0)
    assert p.dim_inner == (6 + 1) * 4 and p.dim_outer == p.n_inner == 40
    assert p.n_outer == 30
    # x is the logit divided by the scale s = sqrt(n_train)
    assert p.outer_scale == pytest.approx(40 ** 0.5)
    assert (p.inner_var0 == 0).all()
    torch.testing.assert_close(p.outer_var0 * p.outer_scale,
                               torch.full((40,), -3.0, dtype=torch.float64))
    # y stores [W; b]^T row by row: class k's 6 weights, then its bias
    W, b = p.weights_and_bias(torch.arange(28.0))
    assert W.shape == (6, 4) and torch.equal(b, torch.arange(6.0, 28.0, 7))
    assert torch.equal(W[:, 1], torch.arange(7.0, 13.0))
    q = small_problem(dtype=torch.float32, outer_scale=1.0)
    assert q.dtype == torch.float32 and (q.outer_var0 == -2).all()
    assert q.reg == 0.4


@pytest.mark.parametrize("outer_scale", [None, 1.0, 3.0])
def test_bias_and_reg_in_inner(outer_scale):
    """g = mean sigmoid(s x) CE(W a + b) + reg/2 (||W||^2 + ||b||^2)."""
    p = small_problem(reg=0.7, outer_scale=outer_scale)
    s = 40 ** 0.5 if outer_scale is None else outer_scale
    y, x, _ = random_point(p)
    W, b = p.weights_and_bias(y)
    A = p.splits["train"].A[:, :-1]
    ce = torch.nn.functional.cross_entropy(A @ W + b, p.splits["train"].labels,
                                           reduction="none")
    want = (torch.sigmoid(s * x) * ce).mean() + 0.35 * ((W ** 2).sum()
                                                   + (b ** 2).sum())
    assert_close(p.inner(y, x), want)


def test_standardize():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(100, 5)).astype(float)
    X[:, 2] = 7.0  # constant column
    Xt, Xv = standardize(X, X[:10] + 1)
    np.testing.assert_allclose(Xt.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(np.delete(Xt.std(0), 2), 1)
    assert (Xt[:, 2] == 0).all() and np.isfinite(Xv).all()
    # Pixels do not enter raw: the problem's features are standardized.
    p = small_problem()
    A = p.splits["train"].A[:, :-1]
    assert_close(A.mean(0), torch.zeros(6, dtype=torch.float64))
    assert (p.splits["train"].A[:, -1] == 1).all()


def test_corruption():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, size=20000)
    noisy, mask = corrupt_labels(labels, 0.3, 10, random_state=5)
    assert abs(mask.mean() - 0.3) < 0.015
    assert (noisy[mask] != labels[mask]).all()
    assert (noisy[~mask] == labels[~mask]).all()
    assert np.array_equal(mask, noisy != labels)
    assert noisy.min() >= 0 and noisy.max() <= 9
    # the new class is uniform among the 9 others
    shift = (noisy[mask] - labels[mask]) % 10
    counts = np.bincount(shift, minlength=10)
    assert counts[0] == 0 and counts[1:].min() > 0.8 * mask.sum() / 9
    # seeded: same seed same draw, numpy or torch generators accepted
    again, _ = corrupt_labels(labels, 0.3, 10, random_state=5)
    assert np.array_equal(noisy, again)
    _, m_t = corrupt_labels(labels, 0.3, 10,
                            random_state=torch.Generator().manual_seed(1))
    assert abs(m_t.mean() - 0.3) < 0.015
    clean, m0 = corrupt_labels(labels, 0.0, 10)
    assert not m0.any() and np.array_equal(clean, labels)
    for bad in (1.0, -0.1, "0.5"):
        with pytest.raises(ValueError, match="ratio"):
            corrupt_labels(labels, bad, 10)


def test_problem_mask_matches_changed_labels():
    p = small_problem(n_train=400, ratio=0.5)
    changed = p.splits["train"].labels != p.clean_labels
    assert torch.equal(changed, p.corruption_mask)
    assert 0.35 < float(changed.double().mean()) < 0.65


def test_accuracy_with_known_predictions():
    # Features e_k: the prediction of row e_k with W = 10 I, b = 0 is k.
    eye = np.eye(3)
    X_test = eye[[0, 1, 2, 0]]
    y_test = np.array([0, 1, 0, 2])  # 2 of 4 correct
    p = HyperCleaningProblem(eye, [0, 1, 2], eye, [0, 1, 1], X_test, y_test,
                             n_classes=3, value_function=False,
                             dtype=torch.float64)
    # class k: weight 10 on feature k, bias 0
    y = torch.cat([10 * torch.eye(3, dtype=torch.float64),
                   torch.zeros(3, 1, dtype=torch.float64)], dim=1).reshape(-1)
    m = p.metrics(y, p.outer_var0)
    assert m["test_accuracy"] == 0.5
    assert m["val_accuracy"] == pytest.approx(2 / 3)
    assert "cleaning_f1" not in m and "value_function" not in m


def test_cleaning_f1():
    mask = torch.tensor([True, False, True, False, True])
    flagged = torch.tensor([True, True, False, False, True])
    # TP 2, FP 1, FN 1 -> 2*2 / (2*2 + 1 + 1)
    assert cleaning_f1(flagged, mask) == pytest.approx(2 / 3)
    assert cleaning_f1(mask, mask) == 1.0
    none = torch.zeros(5, dtype=torch.bool)
    assert cleaning_f1(none, none) == 1.0  # nothing to find, none flagged
    assert cleaning_f1(none, mask) == 0.0
    assert cleaning_f1(mask, none) == 0.0
    # through the problem: flagged means sigmoid(x_i) < 0.5, i.e. x_i < 0
    p = small_problem(n_train=5, value_function=False)
    p.corruption_mask = mask
    x = torch.tensor([-1.0, -2.0, 3.0, 0.0, -0.5], dtype=torch.float64)
    m = p.metrics(p.inner_var0, x)
    assert m["cleaning_f1"] == pytest.approx(2 / 3)


def test_value_function():
    p = small_problem(n_train=60)
    x = torch.linspace(-2, 2, 60, dtype=torch.float64)
    h, gnorm = p.value_function(x)
    assert gnorm < 1e-7
    y_star, _ = solve_inner(p, x, tol=1e-10)
    assert h == pytest.approx(float(p.outer(y_star, x)), rel=1e-8)
    # warm start from the cached solution
    assert p.metrics(p.inner_var0, x)["value_function"] == pytest.approx(h)
    # float32: the default tolerance is reachable
    q = small_problem(n_train=60, dtype=torch.float32)
    assert q.value_function(x.float())[1] < 1e-3


def test_split_pool():
    tr, va = split_pool(100, 60, 30, random_state=3)
    assert len(tr) == 60 and len(va) == 30
    assert not set(tr) & set(va)
    # a random order, so that consecutive samples make random blocks
    assert (np.diff(tr) < 0).any() and (np.diff(va) < 0).any()
    tr2, _ = split_pool(100, 60, 30, random_state=3)
    assert np.array_equal(tr, tr2)
    with pytest.raises(ValueError, match="n_train"):
        split_pool(100, 80, 30)


def test_bad_parameters():
    with pytest.raises(ValueError, match="reg"):
        small_problem(reg=0)
    with pytest.raises(ValueError, match="ratio"):
        small_problem(ratio=1.5)
    for outer_init in (math.nan, -math.inf, "abc"):
        with pytest.raises(ValueError, match="outer_init.*finite"):
            small_problem(outer_init=outer_init)
    with pytest.raises(ValueError, match="labels"):
        HyperCleaningProblem(np.eye(2), [0, 5], np.eye(2), [0, 1],
                             n_classes=3)


# -- datasets -----------------------------------------------------------------
def load_dataset_class(name):
    spec = importlib.util.spec_from_file_location(
        f"_dataset_{name}", ROOT / "datasets" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Dataset


def test_embedded_mnist_dataset():
    Dataset = load_dataset_class("mnist")
    p = Dataset.get_instance(source="embedded", n_train=500,
                             n_val=200).get_data()["problem"]
    assert (p.n_inner, p.n_outer, p.dim_inner) == (500, 200, 7850)
    assert len(p.splits["test"].labels) == 1000
    assert p.dtype == torch.float32
    frac = float(p.corruption_mask.double().mean())
    assert 0.4 < frac < 0.6
    # defaults (20000 / 5000) are capped at the embedded pools
    capped = Dataset.get_instance(source="embedded",
                                  value_function=True).get_data()["problem"]
    assert (capped.n_inner, capped.n_outer) == (3000, 1000)
    # the embedded pools are grouped by class; stored samples are shuffled,
    # so that a block of consecutive samples mixes the classes
    for split in ("train", "val"):
        assert len(set(capped.splits[split].labels[:64].tolist())) >= 8
    m = capped.metrics(capped.inner_var0, capped.outer_var0)
    assert set(m) == {"val_accuracy", "test_accuracy", "cleaning_f1",
                      "value_function"}
    # the value function (an inner solve per evaluation) is opt-in
    assert "value_function" not in p.metrics(p.inner_var0, p.outer_var0)
    with pytest.raises(ValueError, match="source"):
        Dataset.get_instance(source="nope").get_data()
    with pytest.raises(ValueError, match="ratio"):
        Dataset.get_instance(source="embedded", ratio=1).get_data()


def test_full_mnist_missing_files_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCHOPT_DATA_HOME", str(tmp_path))
    Dataset = load_dataset_class("mnist")
    with pytest.raises(DataFileError) as err:
        Dataset.get_instance(source="full").get_data()
    msg = str(err.value)
    assert "train-images-idx3-ubyte.gz" in msg
    assert str(tmp_path / "mnist") in msg and "BENCHOPT_DATA_HOME" in msg


@pytest.mark.skipif(not HAS_FASHION, reason=(
    "FashionMNIST not found: set BENCHOPT_DATA_HOME to a folder holding "
    "fashion-mnist/"))
def test_fashion_mnist_dataset():
    Dataset = load_dataset_class("fashion_mnist")
    p = Dataset.get_instance(n_train=2000, n_val=500,
                             ratio=0.3).get_data()["problem"]
    assert (p.n_inner, p.n_outer, p.dim_inner) == (2000, 500, 7850)
    assert p.splits["test"].A.shape == (10000, 785)
    assert abs(float(p.corruption_mask.double().mean()) - 0.3) < 0.05
    # a few full-batch Newton steps at x = 0 learn something
    y, _ = solve_inner(p, torch.zeros(p.dim_outer), max_iter=5, tol=1e-3)
    assert p.accuracy(y, "test") > 0.6
