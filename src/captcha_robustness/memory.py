"""glibc's malloc, set up for tensors that are freed and allocated again every step.

Rendering a batch allocates and frees tensors of a few MiB to tens of MiB each time. By
default glibc serves a block that large with a fresh memory mapping unless its adaptive
threshold has already grown past that size, and a fresh mapping costs a page fault per
4 KiB page on first touch: which blocks hit that depends on the order of earlier frees, so
the same code ran at full speed in one process and at half speed (23 page faults per
CAPTCHA) in the next. Fixed thresholds keep such blocks in the heap, reused without faults.
"""

from __future__ import annotations

import ctypes
import sys

_M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # glibc's largest allowed value on 64-bit systems
TRIM_THRESHOLD = 256 << 20


def reuse_freed_memory() -> bool:
    """Serve blocks under 32 MiB from the heap and keep up to 256 MiB of freed memory for
    reuse, for this process and the workers it forks. Returns False where the C library is
    not glibc (the call then changes nothing)."""
    if not sys.platform.startswith("linux"):
        return False
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is None:
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
