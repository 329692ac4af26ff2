"""Keep freed memory in the process during CPU training (glibc only; elsewhere a no-op).

glibc serves every allocation above its mmap threshold (at most 32 MiB) with a fresh mmap and
returns it on free, so each training step's large activations (a layer's currents over all T
steps of a batch are 30-130 MB) page-fault in anew: measured here, 15-20% of a VGG5 step, and
more for the layer-major engine, whose tensors are T times larger. With mmap disabled and the
heap never trimmed, freed blocks are reused by the next step. This is what PyTorch's CPU
performance guide gets from jemalloc or tcmalloc, without a preload. It is process-wide, so only
the commands that train or time training call it, never an import.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4


def keep_freed_memory() -> bool:
    """Tune glibc's malloc as described above; return whether it applied."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):      # musl and others have no mallopt
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, 2**31 - 1))
