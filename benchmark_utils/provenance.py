"""What a result depends on, as digests for benchopt's cache key.

benchopt caches each run on the files of its objective, solver and data set
and on their parameters: neither this package, where most of the algorithm
code lives, nor the data files enter that key, so after a change to either
benchopt would return the old results marked "(cached)". The objective
adds :func:`code_digest` and the file-based data sets add
:func:`files_digest` of what they read to the state benchopt hashes
(``_get_state``), so that any change to the code or the data misses the
cache.
"""
import hashlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent

# (path, size, mtime_ns) -> sha256 of the contents: a source file is hashed
# once per process until it changes.
_FILE_DIGESTS = {}


def _file_digest(path):
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _FILE_DIGESTS:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        _FILE_DIGESTS[key] = digest.hexdigest()
    return _FILE_DIGESTS[key]


def files_digest(paths):
    """sha256 over the names and contents of ``paths`` (a missing file
    counts as "missing", so that providing it later changes the digest).
    The data files' digests come from the digest cache of
    :mod:`benchmark_utils.data.identity`: hashed once, not at every run."""
    from benchmark_utils.data.identity import file_digests
    digest = hashlib.sha256()
    for path in sorted(Path(p).resolve() for p in paths):
        digest.update(str(path).encode())
        digest.update(file_digests(path)["sha256"].encode()
                      if path.is_file() else b"missing")
    return digest.hexdigest()


def code_digest(root=PACKAGE):
    """sha256 over every source file of the package (``*.py`` and any data
    file shipped in it; compiled caches excluded), by relative path."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if not path.is_file() or "__pycache__" in path.parts \
                or path.suffix == ".pyc":
            continue
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(_file_digest(path).encode())
    return digest.hexdigest()


class KeyedOnDataFiles:
    """Mixin for a benchopt data set read from files: its data files'
    digest enters benchopt's cache key (module docstring).

    The data set lists what it reads in ``data_files()``; list it first in
    the bases (``class Dataset(KeyedOnDataFiles, BaseDataset)``) so that its
    ``_get_state`` is the one benchopt calls.
    """

    def data_files(self):
        raise NotImplementedError

    def _get_state(self):
        return {"data_digest": files_digest(self.data_files())}

    def __setstate__(self, state):
        # Only hashed: an unpickled instance is rebuilt from its parameters.
        pass
