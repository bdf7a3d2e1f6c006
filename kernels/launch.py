"""What every kernel module shares: how arrays are handed to a kernel, and the grid to launch.

Kernels receive CuPy arrays on a GPU, or NumPy arrays under Numba's CUDA simulator
(NUMBA_ENABLE_CUDASIM=1, how CI runs them). The host code around a launch is the same in both
cases: it allocates with `array_module(x)` and calls `launch`.
"""
import math

import numpy as np
from numba import config, cuda

THREADS = 128                   # threads per block of the one-thread-per-element kernels


def simulator():
    """True when Numba's CUDA simulator stands in for a GPU."""
    return bool(config.ENABLE_CUDASIM)


def as_device(a):
    """The object a kernel is handed for array `a`.

    A CuPy array becomes a Numba device array over the same memory. sync=False: Numba would
    otherwise synchronise the device at every launch; CuPy and Numba both queue work on the
    default stream, so the order of kernels and cuBLAS calls is kept without it.
    A NumPy array is passed as it is, which only the simulator accepts without copies.
    """
    if isinstance(a, np.ndarray):
        if not simulator():
            raise RuntimeError("a CUDA kernel was given a NumPy array: kernels run on CuPy arrays, "
                               "or on NumPy arrays under Numba's CUDA simulator "
                               "(NUMBA_ENABLE_CUDASIM=1)")
        return a
    return cuda.as_cuda_array(a, sync=False)


def launch(kernel, blocks, threads, *args):
    """kernel[blocks, threads](*args), with every array argument passed through `as_device`."""
    kernel[blocks, threads](*(as_device(a) if hasattr(a, "shape") else a for a in args))


def blocks_for(n, threads=THREADS):
    """Blocks of `threads` threads that cover n elements (at least one block)."""
    return max(1, math.ceil(n / threads))
