"""Known data files recognized by their digests at load.

Each loader knows the md5 or sha256 of the files it reads as their upstream
sources publish them (and of the known repackaged copies holding the same
content). After a file has passed its content checks (shapes, labels,
finite values), :func:`check_known_file` compares its digests with those:

* a known digest of this file: accepted;
* a known digest of another file (FashionMNIST's images under ``mnist/``):
  refused with a :class:`DataContentError` naming both, always;
* an unknown digest (an edited, truncated, re-encoded or foreign copy):
  refused with a :class:`DataContentError` naming the file, unless the
  environment variable ``BILEVEL_ALLOW_MODIFIED_DATA=1`` asks to run on a
  modified copy on purpose (a warning then names the file).

Digests are cached in ``cache_folder("digests")/file-digests.json`` (JSON,
never pickle), keyed on the file's absolute path, size, mtime, ctime and
inode: a file is hashed once, and any write to it (which changes its ctime,
even when its mtime is set back) hashes it again. Whoever can write that
folder can make a modified file pass for a known one: like benchopt's cache,
it must be writable only by people you trust.
"""
import functools
import hashlib
import json
import os
import warnings
from pathlib import Path

from benchmark_utils.data.files import (
    DataContentError,
    atomic_save,
    cache_folder,
)

ALLOW_MODIFIED_ENV = "BILEVEL_ALLOW_MODIFIED_DATA"
DIGESTS_KEY = "digests"
DIGESTS_FILE = "file-digests.json"
_ON, _OFF = ("1", "true", "yes"), ("", "0", "false", "no")


def allow_modified():
    """Whether ``BILEVEL_ALLOW_MODIFIED_DATA`` asks to accept files of
    unknown digest; any value but 1/true/yes/0/false/no/empty is refused."""
    value = os.environ.get(ALLOW_MODIFIED_ENV, "").strip().lower()
    if value not in _ON + _OFF:
        raise ValueError(
            f"The environment variable {ALLOW_MODIFIED_ENV} must be 1 (run "
            f"on modified data files) or 0 / unset, got {value!r}.")
    return value in _ON


def _stamp(stat):
    return [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino]


def _hash(path):
    md5, sha256 = hashlib.md5(), hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            md5.update(chunk)
            sha256.update(chunk)
    return {"md5": md5.hexdigest(), "sha256": sha256.hexdigest()}


def digests_path():
    return cache_folder(DIGESTS_KEY) / DIGESTS_FILE


def _read_table(path):
    try:
        table = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return table if isinstance(table, dict) else {}


def _write_table(path, table):
    # entries of deleted files (temporary copies) are dropped on write
    table = {p: e for p, e in table.items() if Path(p).exists()}
    try:
        atomic_save(path, lambda tmp: tmp.write_text(json.dumps(table)))
    except OSError:
        pass  # a read-only cache folder only costs the hashing next time


def file_digests(path):
    """``{"md5": ..., "sha256": ...}`` of ``path``'s bytes, from the digest
    cache when the file has not changed since it was hashed."""
    path = Path(path).resolve()
    stamp = _stamp(path.stat())
    return dict(_file_digests(str(path), tuple(stamp)))


@functools.lru_cache(maxsize=64)
def _file_digests(path, stamp):
    table_path = digests_path()
    entry = _read_table(table_path).get(path)
    if isinstance(entry, dict) and entry.get("stamp") == list(stamp) and \
            isinstance(entry.get("md5"), str) and \
            isinstance(entry.get("sha256"), str):
        return tuple(sorted((k, entry[k]) for k in ("md5", "sha256")))
    digests = _hash(path)
    table = _read_table(table_path)  # again: another process may have added
    table[path] = dict(stamp=list(stamp), **digests)
    _write_table(table_path, table)
    return tuple(sorted(digests.items()))


def _in_folder(path):
    path = Path(path)
    return f"Data file '{path.name}' in folder '{path.parent}'"


def check_known_file(path, known, foreign=None, how_to_get=""):
    """Refuse ``path`` unless one of its digests (md5 or sha256, hex) is a
    key of ``known`` (``{digest: description}``); a digest in ``foreign``
    (files of other data sets or splits) is refused even with
    ``BILEVEL_ALLOW_MODIFIED_DATA=1``. ``how_to_get`` (a sentence) says how
    to download the file again."""
    digests = file_digests(path)
    found = set(digests.values())
    if found & set(known):
        return
    where = _in_folder(path)
    other = found & set(foreign or {})
    if other:
        raise DataContentError(
            f"{where} is {foreign[other.pop()]}, not "
            f"{_describe(known)}: the files of two data sets or splits were "
            "swapped. " + how_to_get)
    if allow_modified():
        warnings.warn(
            f"{where} (md5 {digests['md5']}) is not {_describe(known)}: "
            f"running on this modified copy as {ALLOW_MODIFIED_ENV} asks.",
            stacklevel=2)
        return
    raise DataContentError(
        f"{where} has md5 {digests['md5']}, which is not "
        f"{_describe(known)}: the file was modified, re-encoded or "
        f"replaced. {how_to_get} To run on a modified copy on purpose, set "
        f"the environment variable {ALLOW_MODIFIED_ENV}=1.")


def _describe(known):
    """``known`` in words: each description with its digest."""
    return " or ".join(f"{what} ({digest})" for digest, what in
                       known.items()) or "a known file of this name"
