"""What the loaders refuse, what they write and what their messages say.

* Modified copies of the real files (built in ``tmp_path``: one ijcnn1
  label changed, a 20newsgroups group or post removed or added, a
  FashionMNIST class missing) must be refused with an error naming the file,
  instead of loading as another problem.
* Loading never writes beside the inputs: derived caches go to the cache
  folder (``BILEVEL_CACHE_DIR``).
* A missing file or a failed download says what to run or where to put the
  file (``benchopt prepare``; ``benchopt run`` downloads nothing).

The tests on modified copies need the real files (``BENCHOPT_DATA_HOME``);
they are skipped without them.
"""
import bz2
import gzip
import importlib.util
import io
import os
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest

from benchmark_utils.data import files, identity, idx, news20, svmlight
from benchmark_utils.data.files import (
    DataContentError,
    DataFileError,
    DownloadError,
)

ROOT = Path(__file__).resolve().parents[1]
DATA_HOME = Path(os.environ.get("BENCHOPT_DATA_HOME", "/nonexistent"))
#: A closed port: the connection is refused at once, offline.
DEAD_URL = "http://127.0.0.1:9/"


def _dataset_module(name):
    spec = importlib.util.spec_from_file_location(
        f"_dataset_{name}", ROOT / "datasets" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _real(key, *names):
    """The real data folder of ``key``, or skip when a file is absent."""
    folder = DATA_HOME / key
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        pytest.skip(f"real data absent: {missing} not in {folder} (set "
                    f"BENCHOPT_DATA_HOME to a folder holding '{key}/')")
    return folder


def _snapshot(folder):
    """Every entry under ``folder`` with its size, mtime and md5."""
    out = {}
    for path in sorted(Path(folder).rglob("*")):
        st = path.stat()
        digest = files.md5sum(path) if path.is_file() else None
        out[str(path.relative_to(folder))] = (st.st_size, st.st_mtime_ns,
                                              digest)
    return out


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """Derived caches go to a tmp folder of their own."""
    folder = tmp_path / "cache"
    monkeypatch.setenv(files.CACHE_ENV, str(folder))
    return folder


# -- ijcnn1 -------------------------------------------------------------------
@pytest.fixture(scope="module")
def ijcnn1_lines():
    """The decompressed lines of the real ijcnn1.bz2 and ijcnn1.t.bz2."""
    folder = _real("ijcnn1", *svmlight.IJCNN1_FILES.values())
    return {split: bz2.decompress((folder / name).read_bytes()).split(b"\n")
            for split, name in svmlight.IJCNN1_FILES.items()}


def _ijcnn1_copy(folder, lines, split, edit):
    """A copy of the real files with ``edit(lines)`` applied to ``split``'s
    file; the other file is copied as is."""
    folder.mkdir(parents=True)
    for name_split, name in svmlight.IJCNN1_FILES.items():
        if name_split == split:
            new = edit(list(lines[split]))
            (folder / name).write_bytes(bz2.compress(b"\n".join(new), 1))
        else:
            shutil.copy(DATA_HOME / "ijcnn1" / name, folder / name)
    return folder


def _relabel(row, label):
    def edit(lines):
        lines[row] = label + b" " + lines[row].split(b" ", 1)[1]
        return lines
    return edit


@pytest.mark.parametrize("row", [0, 40000], ids=["train_rows", "val_rows"])
def test_ijcnn1_foreign_training_label(tmp_path, ijcnn1_lines, row):
    """A label 3 in ijcnn1.bz2 used to load as a 3-class problem (row in
    the training part) or be blamed on ``y_val`` (validation part)."""
    folder = _ijcnn1_copy(tmp_path / "ijcnn1", ijcnn1_lines, "train",
                          _relabel(row, b"3"))
    with pytest.raises(DataContentError) as info:
        svmlight.load_ijcnn1(folder)
    message = str(info.value)
    assert "'ijcnn1.bz2'" in message and str(folder) in message
    assert "3" in message and "-1" in message
    assert "y_val" not in message and "y_test" not in message


def test_ijcnn1_foreign_test_label_names_the_file(tmp_path, ijcnn1_lines,
                                                  monkeypatch):
    """Through the dataset: a bad label of ijcnn1.t.bz2 used to surface as
    an error about ``y_test`` that named no file."""
    data_home = tmp_path / "data"
    _ijcnn1_copy(data_home / "ijcnn1", ijcnn1_lines, "test",
                 _relabel(5, b"0"))
    monkeypatch.setenv("BENCHOPT_DATA_HOME", str(data_home))
    dataset = _dataset_module("ijcnn1").Dataset.get_instance(
        penalty="feature", split="contiguous", random_state=None,
        outer_init=-8.5, value_function=False, dtype="float32", device="cpu")
    with pytest.raises(DataContentError, match="'ijcnn1.t.bz2'") as info:
        dataset.get_data()
    assert "y_test" not in str(info.value)


def test_ijcnn1_one_label_missing(tmp_path, ijcnn1_lines):
    """Labels must be exactly {-1, +1}: a file without +1 is refused."""
    def only_negative(lines):
        return [b"-1.0 " + line.split(b" ", 1)[1] if line else line
                for line in lines]
    folder = _ijcnn1_copy(tmp_path / "ijcnn1", ijcnn1_lines, "train",
                          only_negative)
    with pytest.raises(DataContentError, match=r"'ijcnn1\.bz2'.*lacks.*1"):
        svmlight.load_ijcnn1(folder)


# -- 20newsgroups -------------------------------------------------------------
TRAIN, TEST = news20.SPLIT_FOLDERS["train"], news20.SPLIT_FOLDERS["test"]


def _member(name, text):
    info = tarfile.TarInfo(name)
    data = text.encode("latin-1")
    info.size = len(data)
    return info, data


def _rebuild(path, members):
    """A tar.gz of ``members`` ((TarInfo, bytes or None) pairs)."""
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        for info, data in members:
            tar.addfile(info, None if data is None else io.BytesIO(data))
    return path


def _no_test_group(members):
    return [m for m in members
            if not m[0].name.startswith(f"{TEST}/talk.religion.misc/")]


def _no_test_post(members):
    first = next(i for i, (info, _) in enumerate(members)
                 if info.isfile() and info.name.startswith(f"{TEST}/"))
    return members[:first] + members[first + 1:]


def _extra_group(members):
    return members + [_member(f"{TRAIN}/misc.extra/1", "an extra post\n"),
                      _member(f"{TEST}/misc.extra/2", "another one\n")]


NEWS20_EDITS = {
    "no_test_group": (_no_test_group, r"test.*lacks.*talk\.religion\.misc"),
    "no_test_post": (_no_test_post, r"test.*7531 posts.*7532"),
    "extra_group": (_extra_group, r"misc\.extra"),
}


@pytest.fixture(scope="module")
def news20_archives(tmp_path_factory):
    """The real archive rebuilt with each edit of NEWS20_EDITS, once."""
    folder = _real("20newsgroups", news20.ARCHIVE_NAME)
    with tarfile.open(folder / news20.ARCHIVE_NAME, "r:gz") as tar:
        members = [(m, tar.extractfile(m).read() if m.isfile() else None)
                   for m in tar]
    root = tmp_path_factory.mktemp("news20")
    out = {}
    for name, (edit, _) in NEWS20_EDITS.items():
        (root / name).mkdir()
        out[name] = _rebuild(root / name / news20.ARCHIVE_NAME,
                             edit(members))
    return out


@pytest.mark.parametrize("edit", list(NEWS20_EDITS))
def test_news20_modified_archive_refused(news20_archives, cache_dir, edit):
    """19 test groups, 7531 test posts or 21 groups used to load without a
    word (as a 21-class problem for the extra group)."""
    archive = news20_archives[edit]
    with pytest.raises(DataContentError, match=NEWS20_EDITS[edit][1]) as info:
        news20.load_news20(archive.parent)
    message = str(info.value)
    assert f"'{news20.ARCHIVE_NAME}'" in message
    assert str(archive.parent) in message
    assert not cache_dir.exists() or not list(cache_dir.rglob("*.npz"))


def test_news20_download_checks_the_facts(news20_archives, tmp_path):
    """A download holding another archive is refused before being moved
    into place."""
    dest = tmp_path / "20newsgroups"
    source = news20_archives["extra_group"]
    with pytest.raises(DataContentError, match=r"misc\.extra"):
        news20.download_news20(dest, url=source.as_uri(), sha256=None)
    assert list(dest.iterdir()) == []


# -- FashionMNIST / MNIST -----------------------------------------------------
def test_idx_missing_class_refused(tmp_path):
    """Train labels without class 9 (relabeled 8) used to load."""
    real = _real("fashion-mnist", *idx.IDX_FILES.values())
    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    for kind, name in idx.IDX_FILES.items():
        if kind != "train_labels":
            shutil.copy(real / name, folder / name)
            continue
        raw = bytearray(gzip.decompress((real / name).read_bytes()))
        labels = np.frombuffer(raw, dtype=np.uint8, offset=8).copy()
        labels[labels == 9] = 8
        raw[8:] = labels.tobytes()
        (folder / name).write_bytes(gzip.compress(bytes(raw), 1))
    with pytest.raises(DataContentError) as info:
        idx.load_fashion_mnist(folder)
    message = str(info.value)
    assert "'train-labels-idx1-ubyte.gz'" in message
    assert str(folder) in message and "[9]" in message
    # the same check guards downloads
    dest = tmp_path / "dest"
    with pytest.raises(DataContentError, match="train-labels"):
        idx.download_idx(idx.FASHION_MNIST_KEY, folder=dest,
                         url=folder.as_uri() + "/")
    assert not (dest / "train-labels-idx1-ubyte.gz").exists()
    assert not [p for p in dest.iterdir() if p.name.endswith(".part")]


# -- no writes beside the inputs ----------------------------------------------
SMALL_POSTS = {
    TRAIN: {"rec.autos": {"1": "car engine\n", "2": "tires oil\n"},
            "sci.space": {"3": "orbit moon\n"}},
    TEST: {"rec.autos": {"4": "engine\n"}, "sci.space": {"5": "orbit\n"}},
}


@pytest.fixture
def small_news20(monkeypatch):
    """The known facts of the small archive SMALL_POSTS."""
    monkeypatch.setattr(news20, "NEWS20_GROUP_POSTS", {
        split: {group: len(docs) for group, docs in groups.items()}
        for split, groups in zip(("train", "test"), SMALL_POSTS.values())})
    monkeypatch.setenv(identity.ALLOW_MODIFIED_ENV, "1")  # no known digest


def test_news20_cache_not_beside_archive(tmp_path, cache_dir, small_news20):
    """The vectorized cache used to be written next to the archive whenever
    the data folder was writable."""
    folder = tmp_path / "data" / "20newsgroups"
    folder.mkdir(parents=True)
    _rebuild(folder / news20.ARCHIVE_NAME,
             [_member(f"{split}/{group}/{doc}", text)
              for split, groups in SMALL_POSTS.items()
              for group, docs in groups.items()
              for doc, text in docs.items()])
    before = _snapshot(tmp_path / "data")
    first = news20.load_news20(folder)
    second = news20.load_news20(folder)  # from the cache
    assert _snapshot(tmp_path / "data") == before
    caches = list(cache_dir.rglob("*"))
    cache = news20._cache_path(folder / news20.ARCHIVE_NAME,
                               news20.default_cache_folder())
    # the counts, the sha256 beside them, the digests of the files read
    assert sorted(p.relative_to(cache_dir).as_posix() for p in caches
                  if p.is_file()) == sorted([
                      f"20newsgroups/{cache.name}",
                      f"20newsgroups/{cache.name}.sha256",
                      "digests/file-digests.json"])
    assert not [p for p in caches if p.name.endswith(".part")]
    assert (first[0] != second[0]).nnz == 0
    np.testing.assert_array_equal(first[1], second[1])


def test_cache_folder_location(tmp_path, monkeypatch):
    """BILEVEL_CACHE_DIR, else $XDG_CACHE_HOME/bilevel-benchmark, else
    ~/.cache/bilevel-benchmark; never the data folder."""
    monkeypatch.delenv(files.CACHE_ENV, raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert news20.default_cache_folder() == (
        tmp_path / "home" / ".cache" / "bilevel-benchmark" / "20newsgroups")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert news20.default_cache_folder() == (
        tmp_path / "xdg" / "bilevel-benchmark" / "20newsgroups")
    monkeypatch.setenv(files.CACHE_ENV, str(tmp_path / "mine"))
    assert news20.default_cache_folder() == tmp_path / "mine" / "20newsgroups"


def test_atomic_save_leaves_nothing_on_failure(tmp_path):
    def half_write(tmp):
        tmp.write_bytes(b"half")
        raise RuntimeError("disk full")
    with pytest.raises(RuntimeError, match="disk full"):
        files.atomic_save(tmp_path / "out.npz", half_write)
    assert list(tmp_path.iterdir()) == []


def test_idx_and_ijcnn1_loaders_write_nothing(tmp_path):
    """Writable copies of the data folders are left exactly as they were
    (``_load_idx_cached`` only keeps the arrays in memory)."""
    fashion = _real("fashion-mnist", *idx.IDX_FILES.values())
    ijcnn1 = _real("ijcnn1", *svmlight.IJCNN1_FILES.values())
    data = tmp_path / "data"
    shutil.copytree(fashion, data / "fashion-mnist")
    shutil.copytree(ijcnn1, data / "ijcnn1")
    for sub in data.iterdir():
        sub.chmod(0o755)
        for path in sub.iterdir():
            path.chmod(0o644)
    before = _snapshot(data)
    idx.load_fashion_mnist(data / "fashion-mnist")
    svmlight.load_ijcnn1(data / "ijcnn1")
    assert _snapshot(data) == before


# -- download instructions ----------------------------------------------------
def test_download_failure_names_url_file_and_folder(tmp_path):
    """Offline, a download used to end in a bare URLError naming neither
    the URL nor the file."""
    folder = tmp_path / "ijcnn1"
    with pytest.raises(DownloadError) as info:
        svmlight.download_ijcnn1(folder, url=DEAD_URL)
    message = str(info.value)
    assert DEAD_URL + "ijcnn1.bz2" in message
    assert "'ijcnn1.bz2'" in message and str(folder) in message
    assert "by hand" in message
    assert isinstance(info.value, DataFileError)
    assert not folder.exists() or list(folder.iterdir()) == []

    dest = tmp_path / "other" / "nothing.gz"
    with pytest.raises(DownloadError) as info:
        files.download(DEAD_URL + "nothing", dest)
    message = str(info.value)
    assert DEAD_URL + "nothing" in message and "'nothing.gz'" in message
    assert str(dest.parent) in message
    assert list(dest.parent.iterdir()) == []


@pytest.mark.parametrize("key, module, load", [
    ("fashion-mnist", "fashion_mnist",
     lambda folder: idx.find_idx_folder("fashion-mnist", folder)),
    ("mnist", "mnist", lambda folder: idx.find_idx_folder("mnist", folder)),
    ("ijcnn1", "ijcnn1", svmlight.load_ijcnn1),
    ("20newsgroups", "news20", news20.load_news20),
])
def test_missing_file_message_is_true(tmp_path, key, module, load):
    """The message used to say `benchopt run` downloads missing files; only
    `benchopt prepare` calls a dataset's prepare()."""
    with pytest.raises(DataFileError) as info:
        load(tmp_path)
    message = str(info.value)
    assert "benchopt run" not in message
    name = _dataset_module(module).Dataset.name
    assert f"benchopt prepare . -d {name}" in message
    assert "BENCHOPT_DATA_HOME" in message and str(tmp_path) in message
