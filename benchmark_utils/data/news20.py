"""20newsgroups ("bydate" archive) read and vectorized like scikit-learn.

The archive ``20news-bydate.tar.gz`` in ``data_folder("20newsgroups")`` (the
file scikit-learn's ``fetch_20newsgroups`` downloads) holds
``20news-bydate-train/<group>/<doc>`` and ``20news-bydate-test/...``, latin-1
text. It is read directly with :mod:`tarfile` (nothing is extracted).

Document order: like scikit-learn's ``load_files`` before any shuffle: groups
sorted by name (the label is the group's index in that order) and, within a
group, documents sorted by file name (as strings). ``fetch_20newsgroups``
then shuffles; we don't (the datasets draw their own seeded splits).

Vectorization, as ``fetch_20newsgroups_vectorized`` (with ``remove=()``):
a ``CountVectorizer`` with default settings fit on the training posts,
applied to the test posts, then every row L2-normalized. (scikit-learn stores
the counts as int16; we use int32, which only differs if a word appeared
more than 32767 times in one post.) This copy gives 130108 features.

Known facts, checked on every load and download (:func:`check_posts`): the
20 standard groups, the same in train and test, 11314 train / 7532 test
posts and the number of posts of each group in each split
(:data:`NEWS20_GROUP_POSTS`), each post stored once. An archive that differs
(a group or a post missing, an extra group, a post moved to another group,
a duplicated member) raises :class:`DataContentError` naming the file and
what differs, instead of loading as another problem. The vectorized rows
are checked finite (:func:`benchmark_utils.data.features.check_features`)
and the archive's digest must be a known one (:data:`ARCHIVE_DIGESTS`,
:func:`benchmark_utils.data.identity.check_known_file`).

Cache: the token counts are saved as ``.npz`` (``atomic_save``: nothing
half-written stays after a failure) in the cache folder
:func:`benchmark_utils.data.files.cache_folder` ``("20newsgroups")``:
``$BILEVEL_CACHE_DIR/20newsgroups``, by default
``$XDG_CACHE_HOME/bilevel-benchmark/20newsgroups`` (``~/.cache/...``), never
next to the archive (the data folder is only read). The cache file name
holds the archive's md5, so a changed archive is read and vectorized again.
Beside it, ``<cache>.npz.sha256`` holds the sha256 of the cache file as it
was written: a cache whose bytes no longer match it (edited labels, a
truncated copy), or without it, is rebuilt from the archive (with a warning
when it was altered), as is a cache that does not match the known facts.
"""
import hashlib
import tarfile
import warnings
import zlib
from pathlib import Path

import numpy as np

from benchmark_utils.data import files
from benchmark_utils.data.features import check_features
from benchmark_utils.data.files import (
    DataContentError,
    DataFileError,
    atomic_save,
    data_folder,
    download,
    how_to_download_again,
    require_file,
)
from benchmark_utils.data.identity import check_known_file, file_digests

NEWS20_KEY = "20newsgroups"
ARCHIVE_NAME = "20news-bydate.tar.gz"
#: Where scikit-learn downloads the archive from, and its sha256 there.
ARCHIVE_URL = "https://ndownloader.figshare.com/files/5975967"
ARCHIVE_SHA256 = ("8f1b2514ca22a5ade8fbb9cfa5727df95fa587f4"
                  "c87b786e15c759fa66d95610")
SPLIT_FOLDERS = {"train": "20news-bydate-train", "test": "20news-bydate-test"}
#: Digests of the known archives: scikit-learn's download (sha256) and the
#: same posts repacked (md5; tar members dated 2018-12-28, gzip without a
#: timestamp).
ARCHIVE_DIGESTS = {
    ARCHIVE_SHA256: f"scikit-learn's {ARCHIVE_NAME} ({ARCHIVE_URL})",
    "72e46fc2954248b9ee0d53f137a38f42": f"the repacked {ARCHIVE_NAME}",
}
#: Posts of each group in each split (the groups are the same in both);
#: 11314 train and 7532 test posts in all.
NEWS20_GROUP_POSTS = {
    "train": {
        "alt.atheism": 480, "comp.graphics": 584,
        "comp.os.ms-windows.misc": 591, "comp.sys.ibm.pc.hardware": 590,
        "comp.sys.mac.hardware": 578, "comp.windows.x": 593,
        "misc.forsale": 585, "rec.autos": 594, "rec.motorcycles": 598,
        "rec.sport.baseball": 597, "rec.sport.hockey": 600,
        "sci.crypt": 595, "sci.electronics": 591, "sci.med": 594,
        "sci.space": 593, "soc.religion.christian": 599,
        "talk.politics.guns": 546, "talk.politics.mideast": 564,
        "talk.politics.misc": 465, "talk.religion.misc": 377,
    },
    "test": {
        "alt.atheism": 319, "comp.graphics": 389,
        "comp.os.ms-windows.misc": 394, "comp.sys.ibm.pc.hardware": 392,
        "comp.sys.mac.hardware": 385, "comp.windows.x": 395,
        "misc.forsale": 390, "rec.autos": 396, "rec.motorcycles": 398,
        "rec.sport.baseball": 397, "rec.sport.hockey": 399,
        "sci.crypt": 396, "sci.electronics": 393, "sci.med": 396,
        "sci.space": 394, "soc.religion.christian": 398,
        "talk.politics.guns": 364, "talk.politics.mideast": 376,
        "talk.politics.misc": 310, "talk.religion.misc": 251,
    },
}
CACHE_VERSION = 2


def news20_groups():
    """The groups, sorted: the label of a post is its group's index."""
    return sorted(NEWS20_GROUP_POSTS["train"])


def news20_posts(split):
    """Number of posts of ``split``."""
    return sum(NEWS20_GROUP_POSTS[split].values())


def _corrupt(path, detail):
    path = Path(path)
    return DataFileError(
        f"Data file '{path.name}' in folder '{path.parent}' is truncated or "
        f"corrupted ({detail}). Delete it and download it again."
    )


def _in_folder(path):
    path = Path(path)
    return f"Data file '{path.name}' in folder '{path.parent}'"


def _group_difference(groups):
    """What ``groups`` lack and hold beyond the known groups, in words;
    empty when they are the same."""
    absent = sorted(set(news20_groups()) - set(groups))
    extra = sorted(set(groups) - set(news20_groups()))
    parts = ([f"lacks groups {absent}"] if absent else []) + (
        [f"holds unexpected groups {extra}"] if extra else [])
    return " and ".join(parts)


def check_posts(docs, where):
    """Raise :class:`DataContentError` unless ``docs`` (``{split: {(group,
    name): text}}``) holds the known groups in each split, the known number
    of posts per split and per group (:data:`NEWS20_GROUP_POSTS`);
    ``where`` names the file."""
    groups = news20_groups()
    for split, folder in SPLIT_FOLDERS.items():
        diff = _group_difference({g for g, _ in docs[split]})
        if diff:
            raise DataContentError(
                f"{where}: its {split} split ('{folder}/') {diff}; expected "
                f"exactly the {len(groups)} standard groups {groups} in "
                "both splits.")
    for split, folder in SPLIT_FOLDERS.items():
        if len(docs[split]) != news20_posts(split):
            raise DataContentError(
                f"{where}: its {split} split ('{folder}/') holds "
                f"{len(docs[split])} posts, expected {news20_posts(split)}.")
    for split, folder in SPLIT_FOLDERS.items():
        counts = group_counts([g for g, _ in docs[split]])
        _check_group_counts(counts, split, f"{where}: its {split} split "
                            f"('{folder}/')")


def group_counts(groups):
    """``{group: number of posts}`` of a list of group names."""
    counts = dict.fromkeys(news20_groups(), 0)
    for group in groups:
        counts[group] = counts.get(group, 0) + 1
    return counts


def _check_group_counts(counts, split, where):
    expected = NEWS20_GROUP_POSTS[split]
    wrong = [f"'{g}' holds {counts.get(g, 0)} posts, expected {n}"
             for g, n in sorted(expected.items()) if counts.get(g, 0) != n]
    if wrong:
        raise DataContentError(
            f"{where}: " + "; ".join(wrong) + " (a post moved to another "
            "group, or a post replaced by another).")


def read_archive(path, where=None):
    """Read the posts of a bydate archive, checked by :func:`check_posts`
    (``where`` names the file in its errors; default: ``path``).

    Returns ``dict(train=(texts, labels), test=(texts, labels),
    target_names=[...])`` in the order documented in the module docstring.
    """
    path = Path(path)
    docs = {"train": {}, "test": {}}
    folder_to_split = {v: k for k, v in SPLIT_FOLDERS.items()}
    twice = None  # the first member stored twice
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                parts = Path(member.name).parts
                if parts and parts[0] == ".":
                    parts = parts[1:]
                if len(parts) != 3 or parts[0] not in folder_to_split:
                    continue
                split, key = folder_to_split[parts[0]], (parts[1], parts[2])
                if key in docs[split]:
                    twice = "/".join(parts)
                    break
                raw = tar.extractfile(member).read()
                docs[split][key] = raw.decode("latin-1")
    except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
        raise _corrupt(path, f"{type(e).__name__}: {e}") from e
    if twice is not None:
        raise DataContentError(
            f"{where or _in_folder(path)} holds the post '{twice}' twice (a "
            "duplicated archive member).")
    for split, folder in SPLIT_FOLDERS.items():
        if not docs[split]:
            raise _corrupt(path, f"no documents under '{folder}/'")
    check_posts(docs, _in_folder(path) if where is None else where)
    target_names = news20_groups()
    label_of = {name: i for i, name in enumerate(target_names)}
    out = dict(target_names=target_names)
    for split, split_docs in docs.items():
        keys = sorted(split_docs)
        out[split] = ([split_docs[k] for k in keys],
                      np.array([label_of[g] for g, _ in keys],
                               dtype=np.int64))
    return out


def vectorize(train_texts, test_texts):
    """Token counts ``(C_train, C_test)`` (scipy CSR, int32) of a
    CountVectorizer fit on ``train_texts``."""
    from sklearn.feature_extraction.text import CountVectorizer
    vectorizer = CountVectorizer(dtype=np.int32)
    C_train = vectorizer.fit_transform(train_texts).tocsr()
    C_test = vectorizer.transform(test_texts).tocsr()
    return C_train, C_test


def normalize_rows(C):
    """Float64 copy of a CSR matrix with L2-normalized rows."""
    from sklearn.preprocessing import normalize
    return normalize(C.astype(np.float64), norm="l2", copy=False)


def default_cache_folder():
    """Where the token counts are cached: ``cache_folder("20newsgroups")``
    (``$BILEVEL_CACHE_DIR/20newsgroups`` or the user cache folder), never
    the data folder."""
    return files.cache_folder(NEWS20_KEY)


def _cache_path(archive, cache_folder):
    digest = file_digests(archive)["md5"]
    return Path(cache_folder) / (
        f"20news-bydate-counts-v{CACHE_VERSION}-{digest[:16]}.npz")


def _digest_path(cache_path):
    """The file beside a cache that holds the sha256 of its bytes."""
    return cache_path.with_name(cache_path.name + ".sha256")


def _save_cache(dest, data):
    def write(tmp):
        arrays = dict(target_names=np.array(data["target_names"]))
        for split in ("train", "test"):
            C, y = data[split]
            arrays.update({f"{split}_indptr": C.indptr,
                           f"{split}_indices": C.indices,
                           f"{split}_data": C.data,
                           f"{split}_shape": np.array(C.shape),
                           f"{split}_labels": y})
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
    atomic_save(dest, write)
    digest = file_digests(dest)["sha256"]
    atomic_save(_digest_path(dest), lambda tmp: tmp.write_text(digest))
    # the caches of older versions are never read again
    for version in range(1, CACHE_VERSION):
        for old in dest.parent.glob(f"20news-bydate-counts-v{version}-*"):
            old.unlink(missing_ok=True)


def _cache_intact(path):
    """Whether the cache's bytes match the sha256 written beside it; warns
    when they do not (the cache was altered after it was written)."""
    try:
        written = _digest_path(path).read_text().strip()
    except OSError:
        return False  # written by an older version, or interrupted
    if file_digests(path)["sha256"] == written:
        return True
    warnings.warn(f"The 20newsgroups cache '{path}' does not match the "
                  f"sha256 written beside it: it was altered after it was "
                  f"written, it is rebuilt from the archive.", stacklevel=3)
    return False


def _load_cache(path):
    import scipy.sparse as sp
    with np.load(path, allow_pickle=False) as z:
        out = dict(target_names=[str(t) for t in z["target_names"]])
        for split in ("train", "test"):
            C = sp.csr_matrix((z[f"{split}_data"], z[f"{split}_indices"],
                               z[f"{split}_indptr"]),
                              shape=tuple(z[f"{split}_shape"]))
            out[split] = (C, z[f"{split}_labels"])
    return out


def _matches_facts(data):
    """Whether cached counts have the known groups and numbers of posts,
    per split and per group (else the cache is rebuilt from the checked
    archive)."""
    names = list(data["target_names"])
    if names != news20_groups():
        return False
    for split in SPLIT_FOLDERS:
        C, y = data[split]
        expected = [NEWS20_GROUP_POSTS[split][g] for g in names]
        if C.shape[0] != len(y) or y.min(initial=0) < 0 or \
                y.max(initial=0) >= len(names) or \
                np.bincount(y, minlength=len(names)).tolist() != expected:
            return False
    return True


def load_news20_counts(folder=None, cache=True, cache_folder=None):
    """Token counts and labels: ``dict(train=(C, y), test=(C, y),
    target_names=[...])``, from the cache when there is one (in
    ``cache_folder``, default :func:`default_cache_folder`)."""
    folder = Path(folder) if folder is not None else data_folder(NEWS20_KEY)
    archive = require_file(folder, ARCHIVE_NAME, NEWS20_KEY)
    cache_path = None
    if cache:
        cache_folder = (default_cache_folder() if cache_folder is None
                        else Path(cache_folder))
        cache_path = _cache_path(archive, cache_folder)
        if cache_path.is_file() and _cache_intact(cache_path):
            try:
                data = _load_cache(cache_path)
                if _matches_facts(data):
                    check_archive_identity(archive)
                    return data
            except (OSError, ValueError, KeyError, zlib.error):
                pass  # unreadable or stale cache: rebuild it below
    posts = read_archive(archive)
    check_archive_identity(archive)
    C_train, C_test = vectorize(posts["train"][0], posts["test"][0])
    data = dict(target_names=posts["target_names"],
                train=(C_train, posts["train"][1]),
                test=(C_test, posts["test"][1]))
    if cache_path is not None:
        try:
            _save_cache(cache_path, data)
        except OSError:
            pass  # a read-only cache folder only costs time
    return data


def check_archive_identity(archive):
    """Refuse an archive whose digest is not one of
    :data:`ARCHIVE_DIGESTS` (:func:`check_known_file`)."""
    check_known_file(archive, ARCHIVE_DIGESTS,
                     how_to_get=how_to_download_again(NEWS20_KEY))


def news20_files():
    """The archive :func:`load_news20` reads by default."""
    return [data_folder(NEWS20_KEY) / ARCHIVE_NAME]


def load_news20(folder=None, cache=True, cache_folder=None):
    """``(X_train, y_train, X_test, y_test, target_names)``: L2-normalized
    float64 CSR matrices and labels 0..19 (see the module docstring)."""
    data = load_news20_counts(folder, cache=cache, cache_folder=cache_folder)
    (C_train, y_train), (C_test, y_test) = data["train"], data["test"]
    X_train, X_test = normalize_rows(C_train), normalize_rows(C_test)
    folder = Path(folder) if folder is not None else data_folder(NEWS20_KEY)
    for X in (X_train, X_test):
        check_features(X, _in_folder(folder / ARCHIVE_NAME),
                       row_name="post")
    return X_train, y_train, X_test, y_test, data["target_names"]


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download_news20(folder=None, url=ARCHIVE_URL, sha256=ARCHIVE_SHA256):
    """Download the archive (scikit-learn's source) into ``folder`` unless
    present; checked (sha256, readable archive, :func:`check_posts`) before
    it is moved into place. Returns its path."""
    folder = Path(folder) if folder is not None else data_folder(NEWS20_KEY)
    dest = folder / ARCHIVE_NAME
    if dest.is_file():
        return dest

    def check(tmp):
        if sha256 is not None and _sha256(tmp) != sha256:
            raise DataFileError(
                f"The file downloaded from {url} does not have the expected "
                f"sha256 {sha256}.")
        read_archive(tmp, where=f"The file downloaded from {url} for "
                     f"'{dest.name}' in folder '{dest.parent}'")

    return download(url, dest, check=check)
