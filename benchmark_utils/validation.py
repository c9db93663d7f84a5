"""Parameter checks shared by datasets and solvers: clear ValueErrors.

Numbers are Python or numpy reals, never booleans (``True`` is an int to
Python) nor strings; integers must fit in 64 bits (:data:`INT_MAX`): torch
and numpy convert them to int64 or float, and a larger one (``2**70``) used
to end in a raw ``OverflowError`` deep inside a step or a seeding.
"""
import math
import numbers

import numpy as np
import torch

#: The largest integer a parameter may hold (int64).
INT_MAX = 2 ** 63 - 1
_TOO_BIG = "an integer beyond 64 bits"


def _is_real(value):
    """A real number that torch and numpy take as it is: not a bool, and an
    integer only when it fits in int64."""
    if isinstance(value, (bool, np.bool_)) or \
            not isinstance(value, numbers.Real):
        return False
    return not isinstance(value, numbers.Integral) or abs(value) <= INT_MAX


def _why(value):
    big = isinstance(value, numbers.Integral) and not isinstance(
        value, (bool, np.bool_)) and abs(value) > INT_MAX
    return f" ({_TOO_BIG})" if big else ""


def check_bool(value, name):
    """``True`` or ``False`` (numpy booleans too), returned as a bool.

    Strings are refused: ``bool("no")`` and ``bool("false")`` are True, so
    ``value_function=no`` used to turn the metric on. So are 0 and 1, which
    a typo in a grid would otherwise read as a flag.
    """
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}.")
    return bool(value)


def check_positive(value, name, allow_zero=False):
    """A finite real number > 0 (or >= 0 with ``allow_zero``)."""
    ok = _is_real(value)
    if ok:
        ok = math.isfinite(value) and (value >= 0 if allow_zero
                                       else value > 0)
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, got "
                         f"{value!r}{_why(value)}.")
    return value


def check_finite(value, name):
    """A finite real number (any sign), returned as a float."""
    if not (_is_real(value) and math.isfinite(value)):
        raise ValueError(f"{name} must be a finite number, got "
                         f"{value!r}{_why(value)}.")
    return float(value)


def check_positive_int(value, name, allow_zero=False):
    """An int >= 1 (or >= 0 with ``allow_zero``) that fits in int64."""
    ok = isinstance(value, numbers.Integral) and \
        not isinstance(value, (bool, np.bool_))
    if ok:
        ok = (value >= 0 if allow_zero else value > 0) and value <= INT_MAX
    if not ok:
        bound = ">= 0" if allow_zero else ">= 1"
        raise ValueError(f"{name} must be an int {bound} and at most 2**63 "
                         f"- 1, got {value!r}.")
    return int(value)


def check_interval(value, name, low, high, closed="right"):
    """A number in (low, high] (``closed="right"``), [low, high], ..."""
    left = closed in ("both", "left")
    right = closed in ("both", "right")
    ok = _is_real(value)
    if ok:
        ok = (low <= value if left else low < value) and \
             (value <= high if right else value < high)
    if not ok:
        opening, closing = "[" if left else "(", "]" if right else ")"
        interval = f"{opening}{low}, {high}{closing}"
        raise ValueError(f"{name} must be in {interval}, got "
                         f"{value!r}{_why(value)}.")
    return value


def check_choice(value, name, choices):
    if value not in choices:
        raise ValueError(
            f"{name} must be one of {list(choices)}, got {value!r}."
        )
    return value


def check_batch_size(batch_size, name="batch_size"):
    """A positive int or the string ``"full"``."""
    if batch_size == "full":
        return batch_size
    if isinstance(batch_size, (bool, np.bool_)) or \
            not isinstance(batch_size, numbers.Integral) or \
            not 1 <= batch_size <= INT_MAX:
        raise ValueError(
            f"{name} must be a positive int or 'full', got {batch_size!r}."
        )
    return int(batch_size)


def check_device(device, name="device"):
    """'cpu', 'cuda', 'cuda:N' or 'auto' (CUDA when available), or a
    ``torch.device``."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    accepted = "'cpu', 'cuda', 'cuda:<index>' or 'auto'"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError, OverflowError):
        dev = None  # (an int beyond 64 bits raises ValueError)
    if dev is None or dev.type not in ("cpu", "cuda"):
        raise ValueError(f"{name} must be one of {accepted}, got {device!r}.")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"{name}={device!r} asks for CUDA but torch sees no CUDA device; "
            f"use one of {accepted}."
        )
    return dev


def check_dtype(dtype, name="dtype"):
    """'float32' or 'float64', or the torch dtype itself."""
    dtypes = {"float32": torch.float32, "float64": torch.float64}
    if dtype in dtypes.values():
        return dtype
    check_choice(dtype, name, list(dtypes))
    return dtypes[dtype]
