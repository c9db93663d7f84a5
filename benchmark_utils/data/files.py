"""Finding, downloading and checking data files; the cache folder.

Files live in ``<data_home>/<key>/`` (``key`` one of ``fashion-mnist``,
``mnist``, ``ijcnn1``, ``20newsgroups``), where ``data_home`` is benchopt's
setting (``data_home`` in benchopt's config file, or the environment variable
``BENCHOPT_DATA_HOME``). Only ``benchopt prepare`` downloads missing files
(it calls each dataset's ``prepare()``); ``benchopt run`` never does.
Downloads are written to a temporary file next to the target and moved into
place only once their integrity check passed, so a failure never leaves a
half-written file behind.

Loading only reads the data folder (only downloads write there): what the
loaders derive from the files (the vectorized 20newsgroups) goes to
:func:`cache_folder`,
``$BILEVEL_CACHE_DIR/<key>``, by default
``$XDG_CACHE_HOME/bilevel-benchmark/<key>`` (``~/.cache/...``).
"""
import hashlib
import http.client
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

#: Environment variable that overrides the cache folder of derived data.
CACHE_ENV = "BILEVEL_CACHE_DIR"
CACHE_NAME = "bilevel-benchmark"

#: The benchopt dataset whose ``prepare()`` downloads each data folder.
DATASET_NAMES = {
    "fashion-mnist": "fashion_mnist",
    "mnist": "mnist",
    "ijcnn1": "ijcnn1",
    "20newsgroups": "20newsgroups",
}

#: Only ``benchopt prepare`` calls a dataset's ``prepare()`` (the download);
#: a benchmark run never does. benchopt caches a successful preparation,
#: hence ``--force`` once the files were deleted.
HOW_TO_PROVIDE = (
    "Download it with `benchopt prepare . -d {dataset}` (a benchmark run "
    "downloads nothing; add --force if that dataset was prepared before), "
    "or set the environment variable BENCHOPT_DATA_HOME (or `data_home` in "
    "benchopt's config file) to a folder holding '{key}/' with the upstream "
    "files."
)


class DataFileError(FileNotFoundError):
    """A data file is missing, truncated or corrupted."""


class DataContentError(DataFileError, ValueError):
    """A data file reads fine but does not hold what its data set is known
    to hold (another number of samples, classes or labels): loading it would
    silently give another problem."""


class DownloadError(DataFileError):
    """A download failed (network, server): names the URL and the file."""


def how_to_provide(key):
    """What to run, or where to put the files, to provide ``key``."""
    return HOW_TO_PROVIDE.format(key=key,
                                 dataset=DATASET_NAMES.get(key, key))


def how_to_download_again(key):
    """The sentence saying how to replace a bad file of ``key``."""
    return (f"Delete it and download it again (`benchopt prepare . -d "
            f"{DATASET_NAMES.get(key, key)} --force`).")


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


def cache_folder(key):
    """The folder of the caches derived from ``key``'s files.

    ``$BILEVEL_CACHE_DIR/<key>``, else
    ``$XDG_CACHE_HOME/bilevel-benchmark/<key>``, else
    ``~/.cache/bilevel-benchmark/<key>``: never the data folder, which may be
    a shared or read-only copy that loading must leave untouched.
    """
    base = os.environ.get(CACHE_ENV)
    if base:
        return Path(os.path.expandvars(base)).expanduser() / key
    xdg = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(xdg) / CACHE_NAME / key


def missing_file_error(path, key):
    path = Path(path)
    return DataFileError(
        f"Data file '{path.name}' not found in folder '{path.parent}'. "
        + how_to_provide(key)
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


def download_error(url, dest, reason):
    """The error of a failed download: the URL, the file, the folder and how
    to place the file by hand."""
    dest = Path(dest)
    return DownloadError(
        f"Could not download '{dest.name}' from URL {url} into folder "
        f"'{dest.parent}' ({reason}). Without network access, download it "
        f"by hand from that URL on another machine and place it as '{dest}' "
        "(or set BENCHOPT_DATA_HOME to a folder holding it)."
    )


def _fetch(url, tmp, dest, timeout):
    """Copy ``url``'s bytes into ``tmp``; a network or server failure raises
    :class:`DownloadError` naming ``url`` and ``dest`` (a bare ``URLError``
    names neither)."""
    try:
        with open(tmp, "wb") as out, \
                urllib.request.urlopen(url, timeout=timeout) as response:
            shutil.copyfileobj(response, out)
    except (urllib.error.URLError, http.client.HTTPException, OSError,
            ValueError) as e:
        raise download_error(url, dest, f"{type(e).__name__}: {e}") from e


def download(url, dest, check=None, timeout=60):
    """Download ``url`` to ``dest`` atomically (:func:`atomic_save`).

    ``check(tmp_path)`` validates the downloaded bytes (raise on failure)
    before the file is moved into place; on any failure ``dest`` is left
    untouched and nothing half-written remains. A failed transfer raises
    :class:`DownloadError` naming the URL, the file and the folder.
    """
    def write(tmp):
        _fetch(url, tmp, dest, timeout)
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
