"""Reuse of freed memory for problems whose vectors take megabytes.

glibc's malloc serves a large block (by default from about 128 KiB, a
threshold it raises up to the size of the largest block freed so far) by
mapping fresh pages, and returns them to the system when it is freed; it
also trims the top of its heap once more than twice that threshold is free
there. An oracle that returns a new 10 MB vector (20newsgroups' gradient)
then page-faults on each of its 2541 pages, at every call: measured 10 k
page faults per SOBA iteration, about half of its time. Serving blocks up
to 32 MiB from the heap and keeping up to 1 GiB of freed memory there (the
process keeps its peak footprint) removes them.
"""
import ctypes
import sys

#: mallopt parameters (glibc's malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: the largest block glibc accepts to serve from its heap on 64-bit systems
MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 1 << 30

_state = {"kept": False}


def keep_freed_memory():
    """Ask glibc's malloc to serve blocks up to 32 MiB from its heap and to
    keep freed memory for reuse (process-wide, once). Returns whether the
    settings are in place: False where the C library is not glibc (then
    nothing changes)."""
    if _state["kept"]:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    _state["kept"] = (mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
                      and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1)
    return _state["kept"]
