"""Parameter checks shared by datasets and solvers: clear ValueErrors."""
import math
import numbers

import torch


def check_positive(value, name, allow_zero=False):
    """A finite real number > 0 (or >= 0 with ``allow_zero``)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok:
        ok = math.isfinite(value) and (value >= 0 if allow_zero
                                       else value > 0)
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, got "
                         f"{value!r}.")
    return value


def check_finite(value, name):
    """A finite real number (any sign), returned as a float."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not (ok and math.isfinite(value)):
        raise ValueError(f"{name} must be a finite number, got {value!r}.")
    return float(value)


def check_positive_int(value, name, allow_zero=False):
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if ok:
        ok = value >= 0 if allow_zero else value > 0
    if not ok:
        bound = ">= 0" if allow_zero else ">= 1"
        raise ValueError(f"{name} must be an int {bound}, got {value!r}.")
    return int(value)


def check_interval(value, name, low, high, closed="right"):
    """A number in (low, high] (``closed="right"``), [low, high], ..."""
    left = closed in ("both", "left")
    right = closed in ("both", "right")
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok:
        ok = (low <= value if left else low < value) and \
             (value <= high if right else value < high)
    if not ok:
        opening, closing = "[" if left else "(", "]" if right else ")"
        interval = f"{opening}{low}, {high}{closing}"
        raise ValueError(f"{name} must be in {interval}, got {value!r}.")
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
    if isinstance(batch_size, bool) or \
            not isinstance(batch_size, numbers.Integral) or batch_size < 1:
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
    except (RuntimeError, TypeError):
        dev = None
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
