"""The C allocator's behaviour during a profile: a measured condition, set on purpose and recorded.

glibc's malloc gives big blocks (above ``M_MMAP_THRESHOLD``) their own mapping and hands freed memory at the
top of the heap back to the kernel (above ``M_TRIM_THRESHOLD``). A whole model allocates fresh activations
of many sizes on every forward pass, so by default it keeps page-faulting new memory; one layer run again
and again reuses the same block. The two then measure different things. ``allocator: warm`` in a device
config keeps freed memory in the process (thresholds raised, dynamic adjustment off) for the whole profile,
so isolated units and the whole model run on the same warm heap; the fingerprint records it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

ALLOCATORS = ("default", "warm")
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
WARM_TRIM_BYTES = 2**31 - 1  # mallopt takes an int
WARM_MMAP_BYTES = 32 * 2**20  # glibc's upper bound for the mmap threshold on 64-bit (HEAP_MAX_SIZE / 2)


def apply(allocator: str) -> bool:
    """Apply ``allocator`` to this process; False where it cannot be set (not glibc), True otherwise."""
    if allocator == "default":
        return True
    if allocator != "warm":
        raise ValueError(f"unknown allocator {allocator!r}; one of {ALLOCATORS}")
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = libc.mallopt(_M_TRIM_THRESHOLD, WARM_TRIM_BYTES) == 1
        return bool(ok and libc.mallopt(_M_MMAP_THRESHOLD, WARM_MMAP_BYTES) == 1)
    except (OSError, AttributeError):  # musl, or no mallopt
        return False
