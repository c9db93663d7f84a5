"""Feature values checked once after parsing: finite, and within a data
set's known range when it has one.

A ``nan`` or ``inf`` feature (or a huge finite one, such as 1e300, which
overflows in float32 and in the squares of float64) turns every loss it
touches into nan or inf: the solvers then report the majority class or a
"divergence" that is the data's fault. :func:`check_features` refuses such
a matrix with a :class:`DataContentError` naming the file, the row and the
feature, before any problem is built.
"""
import numpy as np

from benchmark_utils.data.files import DataContentError


def _first_bad(values, bounds):
    """``(index, count)`` of the entries of ``values`` (1-D) that are not
    finite or outside ``bounds`` (low, high); None if there is none."""
    bad = ~np.isfinite(values)
    if bounds is not None:
        with np.errstate(invalid="ignore"):
            bad |= (values < bounds[0]) | (values > bounds[1])
    hits = np.flatnonzero(bad)
    return (int(hits[0]), len(hits)) if hits.size else None


def check_features(X, where, bounds=None, row_name="row", first_row=1,
                   first_feature=1):
    """Raise :class:`DataContentError` unless every entry of ``X`` (dense
    2-D array or scipy sparse matrix; only stored entries of a sparse one)
    is finite and, with ``bounds = (low, high)``, in [low, high].

    The message names ``where`` (the file), the first offending value, its
    row and feature numbered from ``first_row`` and ``first_feature`` (1 for
    line and feature numbers as written in an svmlight file) and how many
    values are wrong.
    """
    import scipy.sparse as sp
    if sp.issparse(X):
        X = X.tocsr()
        found = _first_bad(np.asarray(X.data), bounds)
        if found is None:
            return
        k, count = found
        row = int(np.searchsorted(X.indptr, k, side="right")) - 1
        col, value = int(X.indices[k]), X.data[k]
    else:
        X = np.asarray(X)
        found = _first_bad(X.reshape(-1), bounds)
        if found is None:
            return
        k, count = found
        row, col = np.unravel_index(k, X.shape)
        value = X.reshape(-1)[k]
    expected = "finite values" if bounds is None else \
        f"finite values in [{bounds[0]:g}, {bounds[1]:g}]"
    raise DataContentError(
        f"{where} holds {float(value)!r} at {row_name} {row + first_row}, "
        f"feature {col + first_feature} ({count} value"
        f"{'s' if count > 1 else ''} wrong in all), expected {expected}. "
        "Delete the file and download it again.")
