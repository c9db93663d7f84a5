"""Finding, downloading and checking data files.

Files live in ``<data_home>/<key>/`` (``key`` one of ``fashion-mnist``,
``mnist``, ``ijcnn1``, ``20newsgroups``), where ``data_home`` is benchopt's
setting (``data_home`` in benchopt's config file, or the environment variable
``BENCHOPT_DATA_HOME``). Downloads are written to a temporary file next to the
target and moved into place only once their integrity check passed, so a
failure never leaves a half-written file behind.
"""
import hashlib
import os
import shutil
import tempfile
import urllib.request
from pathlib import Path

HOW_TO_PROVIDE = (
    "Provide it by setting the environment variable BENCHOPT_DATA_HOME (or "
    "`data_home` in benchopt's config file) to a folder holding '{key}/' "
    "with the upstream files, or let `benchopt prepare` / `benchopt run` "
    "download it when the network is available."
)


class DataFileError(FileNotFoundError):
    """A data file is missing, truncated or corrupted."""


def data_folder(key):
    """The folder ``<data_home>/<key>`` from benchopt's settings.

    Outside a benchopt run (tests, scripts), ``BENCHOPT_DATA_HOME`` is read
    directly, falling back to ``./data``.
    """
    from benchopt.benchmark import get_running_benchmark
    if get_running_benchmark() is not None:
        from benchopt.config import get_data_path
        return Path(get_data_path(key))
    home = os.environ.get("BENCHOPT_DATA_HOME", "data")
    return (Path(os.path.expandvars(home)).expanduser() / key).resolve()


def missing_file_error(path, key):
    path = Path(path)
    return DataFileError(
        f"Data file '{path.name}' not found in folder '{path.parent}'. "
        + HOW_TO_PROVIDE.format(key=key)
    )


def require_file(folder, filename, key):
    """Return ``folder / filename`` or raise an error saying how to get it."""
    path = Path(folder) / filename
    if not path.is_file():
        raise missing_file_error(path, key)
    return path


def md5sum(path, chunk_size=1 << 20):
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download(url, dest, check=None, timeout=60):
    """Download ``url`` to ``dest`` atomically (:func:`atomic_save`).

    ``check(tmp_path)`` validates the downloaded bytes (raise on failure)
    before the file is moved into place; on any failure ``dest`` is left
    untouched and nothing half-written remains.
    """
    def write(tmp):
        with open(tmp, "wb") as out, \
                urllib.request.urlopen(url, timeout=timeout) as response:
            shutil.copyfileobj(response, out)
        if check is not None:
            check(tmp)
    return atomic_save(dest, write)


def atomic_save(dest, write):
    """Call ``write(tmp_path)`` then move the result to ``dest`` atomically."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.",
                               suffix=".part")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest
