"""Keeping freed memory for the next step: two of glibc's malloc options, set once.

NumPy takes every array from malloc. glibc's malloc gives a block of 128 KiB or more its own
mmap, hands it back to the kernel on free, and trims the heap's free top back to the kernel too
(it raises the first threshold as large blocks are freed, up to 32 MiB). A training step
allocates and frees hundreds of arrays of megabytes (im2col matrices, gate activations, their
gradients; the first conv's im2col matrix alone is 43 MB at the recipe's shapes), so each step
maps fresh pages again, and the kernel zeroes every page at its first touch. On the Flickr8k
recipe's step (one thread, 2-core Xeon) that was 115,000 page faults and more system time than
arithmetic; with both options raised, the step's freed blocks are reused by the next one:

    M_MMAP_THRESHOLD = 1 GiB     blocks up to 1 GiB come from the heap, not their own mmap
    M_TRIM_THRESHOLD = 1 GiB     up to 1 GiB of free memory at the heap's top is kept

The process keeps its peak memory between steps instead of returning it. Setting either
option turns glibc's adaptive threshold off, so both are set, or neither (the trim option alone
made the step slower still). The same as starting Python with MALLOC_MMAP_THRESHOLD_ and
MALLOC_TRIM_THRESHOLD_ in the environment, which rawcap.bench gives PyTorch's process too.
Only glibc has these options: elsewhere (macOS, Windows, musl) nothing changes.
"""
import ctypes
import sys

M_TRIM_THRESHOLD = -1           # glibc's <malloc.h>
M_MMAP_THRESHOLD = -3
KEEP = 1 << 30                  # bytes
ENVIRONMENT = {"MALLOC_MMAP_THRESHOLD_": str(KEEP), "MALLOC_TRIM_THRESHOLD_": str(KEEP)}


def glibc():
    """The C library this process runs on, if it is glibc, else None."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None)
    return libc if hasattr(libc, "gnu_get_libc_version") else None


def keep_freed_memory():
    """Set both options in this process -> True, or False where the C library is not glibc."""
    libc = glibc()
    if libc is None:
        return False
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(libc.mallopt(M_MMAP_THRESHOLD, KEEP)) and bool(libc.mallopt(M_TRIM_THRESHOLD, KEEP))
