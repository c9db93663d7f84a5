"""svmlight / LIBSVM text files (plain or bzip2) and the ijcnn1 data set.

ijcnn1 lives in ``data_folder("ijcnn1")`` under LIBSVM's (and libsvmdata's)
file names: ``ijcnn1.bz2`` (49990 training samples: LIBSVM's ijcnn1.tr then
ijcnn1.val) and ``ijcnn1.t.bz2`` (91701 test samples); 22 features already
scaled to [-1, 1] on the training rows (the test file reaches 1.32);
labels -1 / +1, both present. The loader and the download check refuse a
file that differs from these facts (:class:`DataContentError` naming the
file): a changed label would otherwise load as another problem (a label 3
made a 3-class problem) or be blamed later on a split (``y_val``,
``y_test``) instead of the file; a nan, inf or huge feature
(outside :data:`IJCNN1_RANGE`) would give nan losses that look like a solver's
divergence. Loading then checks each file's md5 (:data:`IJCNN1_MD5`,
:func:`benchmark_utils.data.identity.check_known_file`).
"""
import bz2
import gzip
import zlib
from pathlib import Path

import numpy as np

from benchmark_utils.data.features import check_features
from benchmark_utils.data.files import (
    DataContentError,
    DataFileError,
    data_folder,
    download,
    how_to_download_again,
    require_file,
)
from benchmark_utils.data.identity import check_known_file

IJCNN1_KEY = "ijcnn1"
IJCNN1_FILES = {"train": "ijcnn1.bz2", "test": "ijcnn1.t.bz2"}
IJCNN1_SHAPES = {"train": (49990, 22), "test": (91701, 22)}
#: The labels of both files: exactly these two, each present.
IJCNN1_LABELS = (-1.0, 1.0)
#: md5 of the files as LIBSVM publishes them.
IJCNN1_MD5 = {"train": "ccb639c7cca405cd3c88b97a8555c8a9",
              "test": "66433ab8089acee9e56dc61ac89a2fe2"}
#: Features accepted: LIBSVM scaled them to [-1, 1] on the training rows;
#: the test file reaches -1.32 and 1.31 (measured on both files).
IJCNN1_RANGE = (-1.5, 1.5)
LIBSVM_URL = "https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/binary/"


def _open(path):
    """A binary stream of the decompressed content (by magic bytes)."""
    with open(path, "rb") as f:
        magic = f.read(3)
    if magic == b"BZh":
        return bz2.open(path, "rb")
    if magic[:2] == b"\x1f\x8b":
        return gzip.open(path, "rb")
    return open(path, "rb")


def read_svmlight(path, n_features=None, dtype=np.float64):
    """Read a svmlight / LIBSVM file (plain, .bz2 or .gz).

    Returns ``(X, y)`` with ``X`` a scipy CSR matrix and ``y`` a float array.
    A truncated or corrupted archive, or a malformed line, raises
    :class:`DataFileError` naming the file.
    """
    from sklearn.datasets import load_svmlight_file
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"svmlight file '{path}' not found.")
    try:
        with _open(path) as stream:
            X, y = load_svmlight_file(stream, n_features=n_features,
                                      dtype=dtype)
    except (EOFError, OSError, ValueError, zlib.error) as e:
        if isinstance(e, DataFileError):
            raise
        raise DataFileError(
            f"Data file '{path.name}' in folder '{path.parent}' is "
            f"truncated, corrupted or not in svmlight format ({e}). Delete "
            "it and download it again."
        ) from e
    return X.tocsr(), y


def _labels(values):
    """Labels as written in the files: ``[-1, 1]``, ``[3]``."""
    return "[" + ", ".join(f"{v:g}" for v in values) + "]"


def _in_folder(path):
    path = Path(path)
    return f"Data file '{path.name}' in folder '{path.parent}'"


def check_ijcnn1(X, y, split, where):
    """Raise :class:`DataContentError` unless ``(X, y)`` holds
    :data:`IJCNN1_SHAPES` ``[split]`` and exactly the labels
    :data:`IJCNN1_LABELS`; ``where`` names the file in the message."""
    if X.shape != IJCNN1_SHAPES[split]:
        raise DataContentError(
            f"{where} holds {X.shape[0]} rows x {X.shape[1]} features, "
            f"expected {IJCNN1_SHAPES[split][0]} x "
            f"{IJCNN1_SHAPES[split][1]} (ijcnn1 {split} file).")
    not_finite = np.flatnonzero(~np.isfinite(y))
    if not_finite.size:
        raise DataContentError(
            f"{where} holds label {y[not_finite[0]]!r} on line "
            f"{not_finite[0] + 1} of {len(y)}, expected exactly "
            f"{_labels(IJCNN1_LABELS)}.")
    found = np.unique(y)
    expected = np.array(IJCNN1_LABELS)
    foreign = np.setdiff1d(found, expected)
    if foreign.size:
        rows = np.flatnonzero(np.isin(y, foreign))
        raise DataContentError(
            f"{where} holds labels {_labels(foreign)} (first on line "
            f"{rows[0] + 1} of {len(y)}), expected exactly "
            f"{_labels(expected)}.")
    absent = np.setdiff1d(expected, found)
    if absent.size:
        raise DataContentError(
            f"{where} lacks label {_labels(absent)}: its labels are "
            f"{_labels(found)}, expected exactly {_labels(expected)}.")


def _check_ijcnn1(split, url, dest):
    def check(path):
        X, y = read_svmlight(path, n_features=IJCNN1_SHAPES[split][1])
        where = (f"The file downloaded from {url} for '{dest.name}' in "
                 f"folder '{dest.parent}'")
        check_ijcnn1(X, y, split, where)
        check_features(X, where, bounds=IJCNN1_RANGE, row_name="line")
    return check


def download_ijcnn1(folder=None, url=LIBSVM_URL):
    """Download the missing ijcnn1 files from LIBSVM's site into ``folder``
    (default ``data_folder("ijcnn1")``); each file is parsed and checked
    (:func:`check_ijcnn1`) before it is moved into place. Returns the two
    paths."""
    folder = Path(folder) if folder is not None else data_folder(IJCNN1_KEY)
    paths = []
    for split, name in IJCNN1_FILES.items():
        dest = folder / name
        if not dest.is_file():
            download(url + name, dest,
                     check=_check_ijcnn1(split, url + name, dest))
        paths.append(dest)
    return paths


def ijcnn1_files():
    """The two files :func:`load_ijcnn1` reads by default."""
    folder = data_folder(IJCNN1_KEY)
    return [folder / name for name in IJCNN1_FILES.values()]


def load_ijcnn1(folder=None):
    """``(X_train, y_train, X_test, y_test)`` of ijcnn1 (scipy CSR, labels
    -1 / +1); a missing file raises a DataFileError saying how to get it, a
    file that differs from the known facts (:func:`check_ijcnn1`, finite
    features in :data:`IJCNN1_RANGE`) or from LIBSVM's md5 a
    DataContentError naming it (module docstring)."""
    folder = Path(folder) if folder is not None else data_folder(IJCNN1_KEY)
    out = []
    for split, name in IJCNN1_FILES.items():
        path = require_file(folder, name, IJCNN1_KEY)
        X, y = read_svmlight(path, n_features=IJCNN1_SHAPES[split][1])
        check_ijcnn1(X, y, split, _in_folder(path))
        check_features(X, _in_folder(path), bounds=IJCNN1_RANGE,
                       row_name="line")
        check_known_file(
            path, {IJCNN1_MD5[split]: f"LIBSVM's {name}"},
            foreign={md5: f"LIBSVM's {IJCNN1_FILES[other]}"
                     for other, md5 in IJCNN1_MD5.items() if other != split},
            how_to_get=how_to_download_again(IJCNN1_KEY))
        out += [X, y]
    return tuple(out)
