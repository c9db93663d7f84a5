"""svmlight and 20newsgroups readers, on small files the tests write and on
the real data when BENCHOPT_DATA_HOME holds it."""
import bz2
import importlib.util
import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from benchmark_utils.data import news20, svmlight
from benchmark_utils.data.files import DataFileError, data_folder
from benchmark_utils.data.identity import ALLOW_MODIFIED_ENV

ROOT = Path(__file__).resolve().parents[1]


def _dataset_module(name):
    spec = importlib.util.spec_from_file_location(
        f"_dataset_{name}", ROOT / "datasets" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- svmlight -----------------------------------------------------------------
def _svmlight_bytes():
    from sklearn.datasets import dump_svmlight_file
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (30, 6)) * (rng.random((30, 6)) < 0.6)
    y = np.where(rng.random(30) < 0.3, 1.0, -1.0)
    buf = io.BytesIO()
    dump_svmlight_file(X, y, buf, zero_based=False)
    return X, y, buf.getvalue()


@pytest.mark.parametrize("compress", ["bz2", "plain"])
def test_read_svmlight(tmp_path, compress):
    X, y, raw = _svmlight_bytes()
    path = tmp_path / ("small.bz2" if compress == "bz2" else "small.txt")
    path.write_bytes(bz2.compress(raw) if compress == "bz2" else raw)
    X_read, y_read = svmlight.read_svmlight(path, n_features=6)
    assert sp.isspmatrix_csr(X_read)
    np.testing.assert_allclose(X_read.toarray(), X, rtol=1e-12)
    np.testing.assert_array_equal(y_read, y)


def test_read_svmlight_errors(tmp_path):
    _, _, raw = _svmlight_bytes()
    truncated = tmp_path / "truncated.bz2"
    truncated.write_bytes(bz2.compress(raw)[:-40])
    with pytest.raises(DataFileError, match="truncated.bz2"):
        svmlight.read_svmlight(truncated)
    corrupt = tmp_path / "corrupt.bz2"
    data = bytearray(bz2.compress(raw))
    data[20:40] = b"\x00" * 20
    corrupt.write_bytes(bytes(data))
    with pytest.raises(DataFileError, match="corrupt.bz2"):
        svmlight.read_svmlight(corrupt)
    malformed = tmp_path / "malformed.txt"
    malformed.write_bytes(b"1 1:0.5 2:abc\n-1 3:1\n")
    with pytest.raises(DataFileError, match="malformed.txt"):
        svmlight.read_svmlight(malformed)


def test_load_ijcnn1_missing_file(tmp_path):
    with pytest.raises(DataFileError) as info:
        svmlight.load_ijcnn1(tmp_path)
    message = str(info.value)
    assert "ijcnn1.bz2" in message and str(tmp_path) in message
    assert "BENCHOPT_DATA_HOME" in message


def test_download_ijcnn1_checks_before_moving(tmp_path, monkeypatch):
    """A download that fails its check leaves no file behind; a good one
    lands under LIBSVM's names (file:// URLs stand for the site)."""
    X, y, raw = _svmlight_bytes()
    site = tmp_path / "site"
    site.mkdir()
    (site / "ijcnn1.bz2").write_bytes(bz2.compress(raw))
    (site / "ijcnn1.t.bz2").write_bytes(bz2.compress(raw)[:-30])
    dest = tmp_path / "data"
    with pytest.raises(DataFileError):
        svmlight.download_ijcnn1(dest, url=site.as_uri() + "/")
    assert list(dest.iterdir()) == []  # nor any temporary file
    monkeypatch.setattr(svmlight, "IJCNN1_SHAPES",
                        {"train": (30, 6), "test": (30, 6)})
    monkeypatch.setenv(ALLOW_MODIFIED_ENV, "1")  # small files: unknown md5
    (site / "ijcnn1.t.bz2").write_bytes(bz2.compress(raw))
    paths = svmlight.download_ijcnn1(dest, url=site.as_uri() + "/")
    assert sorted(p.name for p in dest.iterdir()) == ["ijcnn1.bz2",
                                                      "ijcnn1.t.bz2"]
    assert [p.name for p in paths] == ["ijcnn1.bz2", "ijcnn1.t.bz2"]
    X_train, y_train, _, _ = svmlight.load_ijcnn1(dest)
    np.testing.assert_allclose(X_train.toarray(), X)


# -- 20newsgroups -------------------------------------------------------------
POSTS = {
    "train": {
        "sci.space": {"60001": "The shuttle launch: orbit, orbit!\n",
                      "60003": "Moon landing and orbit\n",
                      "600010": "rocket fuel r\xe9sum\xe9 caf\xe9\n"},
        "rec.autos": {"100": "My car engine, the car's tires\n",
                      "99": "Engine oil for the CAR\n"},
    },
    "test": {
        "rec.autos": {"7": "car rocket unknownword\n"},
        "sci.space": {"8": "orbit orbit moon\n", "10": "caf\xe9 engine\n"},
    },
}


@pytest.fixture
def small_facts(monkeypatch):
    """The known facts (groups, posts per split) of the POSTS archive, in
    place of the real data set's."""
    monkeypatch.setattr(news20, "NEWS20_GROUP_POSTS", {
        split: {group: len(docs) for group, docs in groups.items()}
        for split, groups in POSTS.items()})
    # the small archives have no known digest
    monkeypatch.setenv(ALLOW_MODIFIED_ENV, "1")


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """The cache folder of derived data, redirected to tmp."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("BILEVEL_CACHE_DIR", str(folder))
    return folder / news20.NEWS20_KEY


def _write_archive(path, posts=POSTS):
    with tarfile.open(path, "w:gz") as tar:
        for split, groups in posts.items():
            for group, docs in groups.items():
                for doc, text in docs.items():
                    data = text.encode("latin-1")
                    info = tarfile.TarInfo(
                        f"{news20.SPLIT_FOLDERS[split]}/{group}/{doc}")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
    return path


def _expected(split):
    """Texts and labels in load_files' order: groups then names sorted."""
    groups = sorted(POSTS["train"])
    texts, labels = [], []
    for label, group in enumerate(groups):
        docs = POSTS[split].get(group, {})
        for doc in sorted(docs):
            texts.append(docs[doc])
            labels.append(label)
    return texts, np.array(labels)


def test_read_archive_order_and_labels(tmp_path, small_facts):
    posts = news20.read_archive(_write_archive(tmp_path / "a.tar.gz"))
    assert posts["target_names"] == ["rec.autos", "sci.space"]
    for split in ("train", "test"):
        texts, labels = _expected(split)
        assert posts[split][0] == texts
        np.testing.assert_array_equal(posts[split][1], labels)
    # File names sort as strings, as in load_files: "100" < "99" and
    # "60001" < "600010" < "60003".
    assert posts["train"][0][0].startswith("My car")
    assert posts["train"][0][3].startswith("rocket")


def test_vectorized_equals_sklearn(tmp_path, small_facts, cache_dir):
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.preprocessing import normalize
    folder = tmp_path / "20newsgroups"
    folder.mkdir()
    _write_archive(folder / news20.ARCHIVE_NAME)
    X, y, X_test, y_test, names = news20.load_news20(folder)
    train_texts, train_labels = _expected("train")
    test_texts, test_labels = _expected("test")
    vectorizer = CountVectorizer()
    A = normalize(vectorizer.fit_transform(train_texts).astype(np.float64))
    B = normalize(vectorizer.transform(test_texts).astype(np.float64))
    assert X.shape == A.shape and X_test.shape == B.shape
    np.testing.assert_allclose(X.toarray(), A.toarray(), rtol=1e-12)
    np.testing.assert_allclose(X_test.toarray(), B.toarray(), rtol=1e-12)
    np.testing.assert_array_equal(y, train_labels)
    np.testing.assert_array_equal(y_test, test_labels)
    np.testing.assert_allclose(np.asarray((X.multiply(X)).sum(1)).ravel(), 1)


def _not_called(*args, **kwargs):
    raise AssertionError("the archive was read instead of the cache")


def test_cache_written_then_used(tmp_path, small_facts, cache_dir,
                                 monkeypatch):
    folder = tmp_path / "20newsgroups"
    folder.mkdir()
    _write_archive(folder / news20.ARCHIVE_NAME)
    first = news20.load_news20(folder)
    caches = list(cache_dir.glob("*.npz"))
    assert len(caches) == 1
    assert [p.name for p in folder.iterdir()] == [news20.ARCHIVE_NAME]
    # The cache is what the second load reads: the archive is not read.
    with monkeypatch.context() as m:
        m.setattr(news20, "read_archive", _not_called)
        second = news20.load_news20(folder)
    np.testing.assert_array_equal(second[1], first[1])
    assert (second[0] != first[0]).nnz == 0
    # A cache altered after it was written (well-formed, other labels) used
    # to be read as it was: it no longer matches the sha256 beside it, so
    # it is rebuilt from the archive, with a warning.
    with np.load(caches[0]) as z:
        arrays = dict(z)
    arrays["train_labels"] = arrays["train_labels"][::-1].copy()
    with open(caches[0], "wb") as f:
        np.savez(f, **arrays)
    with pytest.warns(UserWarning, match="altered.*rebuilt"):
        rebuilt = news20.load_news20(folder)
    np.testing.assert_array_equal(rebuilt[1], first[1])
    with monkeypatch.context() as m:  # and the rebuilt cache is used again
        m.setattr(news20, "read_archive", _not_called)
        np.testing.assert_array_equal(news20.load_news20(folder)[1],
                                      first[1])
    # A new archive (new md5) is vectorized again.
    posts = {s: dict(g) for s, g in POSTS.items()}
    posts["train"] = dict(POSTS["train"], **{"sci.space": {
        doc: "novel vocabulary\n" for doc in POSTS["train"]["sci.space"]}})
    _write_archive(folder / news20.ARCHIVE_NAME, posts)
    third = news20.load_news20(folder)
    assert third[0].shape[1] != first[0].shape[1]
    assert len(list(cache_dir.glob("*.npz"))) == 2
    assert [p.name for p in folder.iterdir()] == [news20.ARCHIVE_NAME]


def test_cache_in_user_cache_folder(tmp_path, monkeypatch, small_facts):
    """Without BILEVEL_CACHE_DIR the cache goes to the XDG cache folder,
    whatever the data folder's permissions (here read-only)."""
    folder = tmp_path / "ro" / "20newsgroups"
    folder.mkdir(parents=True)
    _write_archive(folder / news20.ARCHIVE_NAME)
    monkeypatch.delenv("BILEVEL_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    folder.chmod(0o555)
    try:
        cache_folder = news20.default_cache_folder()
        assert cache_folder == (tmp_path / "cache" / "bilevel-benchmark"
                                / "20newsgroups")
        news20.load_news20(folder)
        assert len(list(cache_folder.glob("*.npz"))) == 1
        assert not list(folder.glob("*.npz"))
    finally:
        folder.chmod(0o755)


def test_truncated_or_incomplete_archive(tmp_path):
    good = _write_archive(tmp_path / "good.tar.gz").read_bytes()
    folder = tmp_path / "20newsgroups"
    folder.mkdir()
    (folder / news20.ARCHIVE_NAME).write_bytes(good[: len(good) // 2])
    with pytest.raises(DataFileError, match="truncated or corrupted"):
        news20.load_news20(folder, cache=False)
    only_train = _write_archive(tmp_path / "train.tar.gz",
                                {"train": POSTS["train"]})
    with pytest.raises(DataFileError, match="20news-bydate-test"):
        news20.read_archive(only_train)
    with pytest.raises(DataFileError, match="20news-bydate.tar.gz"):
        news20.load_news20(tmp_path / "missing")


def test_download_news20_checks_before_moving(tmp_path, small_facts):
    archive = _write_archive(tmp_path / "upstream.tar.gz")
    dest = tmp_path / "data"
    with pytest.raises(DataFileError, match="sha256"):
        news20.download_news20(dest, url=archive.as_uri())
    assert not (dest / news20.ARCHIVE_NAME).exists()
    path = news20.download_news20(dest, url=archive.as_uri(), sha256=None)
    assert path.read_bytes() == archive.read_bytes()


def test_split_indices_are_disjoint():
    ijcnn1 = _dataset_module("ijcnn1")
    for split in ("contiguous", "random"):
        train, val = ijcnn1.train_val_indices(49990, split, seed=1)
        assert (len(train), len(val)) == (35000, 14990)
        assert not np.intersect1d(train, val).size
    train, val = ijcnn1.train_val_indices(49990, "contiguous")
    assert train[-1] == 34999 and val[0] == 35000
    # "window", the default: a seeded window of consecutive rows, and no
    # training row within LAG rows of it (they share lagged values)
    starts = set()
    for seed in range(5):
        train, val = ijcnn1.train_val_indices(49990, seed=seed)
        assert len(val) == 14990 and (np.diff(val) == 1).all()
        gap = np.abs(train[:, None] - val[[0, -1]][None, :]).min()
        assert gap > ijcnn1.LAG and not np.intersect1d(train, val).size
        assert 35000 - 2 * ijcnn1.LAG <= len(train) <= 35000
        assert np.union1d(train, val).size + 2 * ijcnn1.LAG >= 49990
        starts.add(int(val[0]))
    assert len(starts) > 1  # the seed moves the window
    train, val = _dataset_module("news20").train_val_indices(11314, 3)
    assert (len(train), len(val)) == (5657, 5657)
    assert not np.intersect1d(train, val).size
    assert np.union1d(train, val).size == 11314
    # the posts are stored by class: the halves must come in a random order
    assert (np.diff(train) < 0).any() and (np.diff(val) < 0).any()


# -- real data ----------------------------------------------------------------
def _require(key, *names):
    folder = data_folder(key)
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        pytest.skip(f"real data absent: {missing} not in {folder} (set "
                    f"BENCHOPT_DATA_HOME to a folder holding '{key}/')")
    return folder


def test_real_ijcnn1():
    _require("ijcnn1", *svmlight.IJCNN1_FILES.values())
    X, y, X_test, y_test = svmlight.load_ijcnn1()
    assert X.shape == (49990, 22) and X_test.shape == (91701, 22)
    assert set(np.unique(y)) == {-1, 1} and set(np.unique(y_test)) == {-1, 1}
    assert X.min() >= -1 and X.max() <= 1
    dataset = _dataset_module("ijcnn1").Dataset.get_instance(
        penalty="feature", split="contiguous", random_state=None,
        outer_init=0.0, value_function=True, dtype="float32", device="cpu")
    problem = dataset.get_data()["problem"]
    assert (problem.n_inner, problem.n_outer) == (35000, 14990)
    assert (problem.dim_inner, problem.dim_outer) == (22, 22)
    metrics = problem.metrics(problem.inner_var0, problem.outer_var0)
    # W = 0 predicts the negative class: the majority, about 90.5 %.
    assert 0.89 < metrics["test_accuracy"] < 0.92
    assert np.isfinite(metrics["value_function"])


def test_real_news20():
    _require("20newsgroups", news20.ARCHIVE_NAME)
    X, y, X_test, y_test, names = news20.load_news20()
    assert X.shape == (11314, 130108) and X_test.shape == (7532, 130108)
    assert len(names) == 20 and names[0] == "alt.atheism"
    assert set(np.unique(y)) == set(range(20))
    assert set(np.unique(y_test)) == set(range(20))
    dataset = _dataset_module("news20").Dataset.get_instance(
        penalty="feature", random_state=0, outer_init=0.0,
        value_function=False, dtype="float32", device="cpu")
    problem = dataset.get_data()["problem"]
    assert (problem.n_inner, problem.n_outer) == (5657, 5657)
    assert (problem.dim_inner, problem.dim_outer) == (130108 * 20, 130108)
    assert problem.splits["train"].design.sparse
