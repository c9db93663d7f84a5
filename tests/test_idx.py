"""IDX reader, downloads into the cache, MNIST / FashionMNIST loaders."""
import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest

from benchmark_utils.data import idx as idx_mod
from benchmark_utils.data.cleaning import split_pool
from benchmark_utils.data.files import DataFileError
from benchmark_utils.data.identity import ALLOW_MODIFIED_ENV
from benchmark_utils.data.idx import (
    FASHION_MNIST_KEY,
    IDX_FILES,
    IMAGES_MAGIC,
    LABELS_MAGIC,
    download_idx,
    find_idx_folder,
    load_embedded_mnist,
    load_fashion_mnist,
    read_idx,
)

FASHION = Path(os.environ.get("BENCHOPT_DATA_HOME", "/nonexistent")) \
    / "fashion-mnist"
HAS_FASHION = all((FASHION / n).is_file() for n in IDX_FILES.values())


def idx_bytes(arr, magic=None):
    arr = np.asarray(arr, dtype=np.uint8)
    magic = (0x08 << 8 | arr.ndim) if magic is None else magic
    return struct.pack(f">i{arr.ndim}i", magic, *arr.shape) + arr.tobytes()


def write(path, data, gz):
    if gz:
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        Path(path).write_bytes(data)
    return Path(path)


@pytest.fixture
def arrays():
    rng = np.random.default_rng(0)
    return (rng.integers(0, 256, size=(5, 3, 4), dtype=np.uint8),
            rng.integers(0, 10, size=5, dtype=np.uint8))


@pytest.mark.parametrize("gz", [True, False], ids=["gzip", "raw"])
def test_read_idx_roundtrip(tmp_path, arrays, gz):
    images, labels = arrays
    # the name says nothing: gzip is detected from the content
    pi = write(tmp_path / "images.bin", idx_bytes(images), gz)
    pl = write(tmp_path / "labels.bin", idx_bytes(labels), gz)
    assert idx_bytes(images)[:4] == struct.pack(">i", IMAGES_MAGIC)
    assert idx_bytes(labels)[:4] == struct.pack(">i", LABELS_MAGIC)
    got = read_idx(pi, magic=IMAGES_MAGIC, shape=(5, 3, 4))
    assert got.dtype == np.uint8 and np.array_equal(got, images)
    assert np.array_equal(read_idx(pl, magic=LABELS_MAGIC), labels)


@pytest.mark.parametrize("gz", [True, False], ids=["gzip", "raw"])
def test_truncated_file(tmp_path, arrays, gz):
    data = idx_bytes(arrays[0])
    path = write(tmp_path / "short.idx", data[:-7], gz)
    with pytest.raises(DataFileError, match="short.idx.*truncated"):
        read_idx(path, magic=IMAGES_MAGIC)
    extra = write(tmp_path / "long.idx", data + b"\0", gz)
    with pytest.raises(DataFileError, match="long.idx"):
        read_idx(extra)
    header_only = write(tmp_path / "head.idx", data[:9], gz)
    with pytest.raises(DataFileError, match="head.idx"):
        read_idx(header_only)


def test_truncated_gzip_stream(tmp_path, arrays):
    path = write(tmp_path / "cut.gz", idx_bytes(arrays[0]), gz=True)
    raw = path.read_bytes()
    path.write_bytes(raw[:len(raw) // 2])
    with pytest.raises(DataFileError, match="cut.gz.*(truncated|corrupted)"):
        read_idx(path)


@pytest.mark.parametrize("gz", [True, False], ids=["gzip", "raw"])
def test_wrong_magic(tmp_path, arrays, gz):
    images, labels = arrays
    pl = write(tmp_path / "labels.idx", idx_bytes(labels), gz)
    with pytest.raises(DataFileError, match="labels.idx.*2049.*2051"):
        read_idx(pl, magic=IMAGES_MAGIC)
    bad = write(tmp_path / "bad.idx", idx_bytes(images, magic=0x12345678),
                gz)
    with pytest.raises(DataFileError, match="bad.idx.*magic"):
        read_idx(bad)
    floats = write(tmp_path / "floats.idx", idx_bytes(images, magic=0x0D03),
                   gz)
    with pytest.raises(DataFileError, match="floats.idx"):
        read_idx(floats)
    with pytest.raises(DataFileError, match="shape"):
        read_idx(write(tmp_path / "ok.idx", idx_bytes(images), gz),
                 shape=(5, 4, 3))
    with pytest.raises(DataFileError, match="absent.idx"):
        read_idx(tmp_path / "absent.idx")


@pytest.fixture
def small_shapes(monkeypatch):
    """Shrink the expected shapes so tests can write complete fake sets
    (with at least 10 labels, so that every class can be present); the
    fake files have no known md5."""
    shapes = {"train_images": (12, 2, 2), "train_labels": (12,),
              "test_images": (10, 2, 2), "test_labels": (10,)}
    monkeypatch.setattr(idx_mod, "IDX_SHAPES", shapes)
    monkeypatch.setenv(ALLOW_MODIFIED_ENV, "1")
    return shapes


def write_set(folder, shapes, corrupt=None):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    for kind, name in IDX_FILES.items():
        if kind.endswith("labels"):  # every class present
            arr = rng.permutation(np.arange(shapes[kind][0]) % 10)
        else:
            arr = rng.integers(0, 256, size=shapes[kind], dtype=np.uint8)
        data = idx_bytes(arr)
        if kind == corrupt:
            data = data[:-1]
        write(folder / name, data, gz=True)
    return folder


def test_download_checks_and_is_atomic(tmp_path, small_shapes, monkeypatch):
    server = write_set(tmp_path / "server", small_shapes)
    monkeypatch.setenv("BENCHOPT_DATA_HOME", str(tmp_path / "home"))
    folder = download_idx("mnist", url=server.as_uri() + "/")
    assert folder == tmp_path / "home" / "mnist"
    for name in IDX_FILES.values():
        assert (folder / name).read_bytes() == (server / name).read_bytes()
    X, y, Xt, yt = idx_mod.load_idx_dataset("mnist")
    assert X.shape == (12, 4) and yt.shape == (10,) and y.dtype == np.int64
    # present files are not downloaded again
    assert download_idx("mnist", url="file:///nonexistent/") == folder

    bad = write_set(tmp_path / "bad", small_shapes, corrupt="test_images")
    dest = tmp_path / "dest"
    with pytest.raises(DataFileError, match="t10k-images"):
        download_idx("mnist", folder=dest, url=bad.as_uri() + "/")
    left = sorted(p.name for p in dest.iterdir())
    # the files before the bad one are complete; nothing partial remains
    assert "t10k-images-idx3-ubyte.gz" not in left
    assert not [n for n in left if n.endswith(".part")]


def test_missing_files_error(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCHOPT_DATA_HOME", str(tmp_path))
    monkeypatch.setitem(idx_mod.SYSTEM_FOLDERS, FASHION_MNIST_KEY,
                        (tmp_path / "debian",))
    with pytest.raises(DataFileError) as err:
        load_fashion_mnist()
    msg = str(err.value)
    assert "train-images-idx3-ubyte.gz" in msg
    assert str(tmp_path / "fashion-mnist") in msg
    assert "BENCHOPT_DATA_HOME" in msg and str(tmp_path / "debian") in msg
    with pytest.raises(ValueError, match="key"):
        find_idx_folder("cifar")


def test_system_folder_fallback(tmp_path, monkeypatch):
    debian = tmp_path / "debian"
    debian.mkdir()
    for name in IDX_FILES.values():
        (debian / name).write_bytes(b"")
    monkeypatch.setenv("BENCHOPT_DATA_HOME", str(tmp_path / "home"))
    monkeypatch.setitem(idx_mod.SYSTEM_FOLDERS, FASHION_MNIST_KEY, (debian,))
    assert find_idx_folder(FASHION_MNIST_KEY) == debian
    # present in the system folder: nothing to download
    assert download_idx(FASHION_MNIST_KEY) == debian
    # MNIST has no system folder
    with pytest.raises(DataFileError):
        find_idx_folder("mnist")


def test_embedded_mnist_split():
    parts = load_embedded_mnist()
    sizes = {k: len(v[1]) for k, v in parts.items()}
    assert sizes == {"train": 3000, "val": 1000, "test": 1000}
    for name, per_class in (("train", 300), ("val", 100), ("test", 100)):
        X, y = parts[name]
        assert X.shape == (sizes[name], 784)
        assert X.min() >= 0 and X.max() == 255
        assert (np.bincount(y, minlength=10) == per_class).all()
    rows = {k: {r.tobytes() for r in v[0]} for k, v in parts.items()}
    assert not rows["train"] & rows["val"]
    assert not rows["train"] & rows["test"]
    assert not rows["val"] & rows["test"]
    again = load_embedded_mnist()
    assert np.array_equal(again["val"][0], parts["val"][0])


@pytest.mark.skipif(not HAS_FASHION, reason=(
    "FashionMNIST not found: set BENCHOPT_DATA_HOME to a folder holding "
    "fashion-mnist/"))
def test_real_fashion_mnist():
    X, y, X_test, y_test = load_fashion_mnist()
    assert X.shape == (60000, 784) and X_test.shape == (10000, 784)
    assert X.dtype == np.uint8 and X.max() == 255
    assert y.min() == 0 and y.max() == 9
    assert (np.bincount(y) == 6000).all()
    assert (np.bincount(y_test) == 1000).all()
    train, val = split_pool(len(X), 20000, 5000, random_state=0)
    assert len(np.intersect1d(train, val)) == 0
    assert len(train) == 20000 and len(val) == 5000
    # the test images are another file: no training draw reuses them
    test_rows = {r.tobytes() for r in X_test[:500]}
    assert not test_rows & {r.tobytes() for r in X[val]}
