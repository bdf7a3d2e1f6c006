"""What every kernel module shares: how arrays are handed to a kernel, the stream, and the grid.

Kernels receive CuPy arrays on a GPU, or NumPy arrays under Numba's CUDA simulator
(NUMBA_ENABLE_CUDASIM=1, how CI runs them). The host code around a launch is the same in both
cases: it allocates with `array_module(x)` and calls `launch`, which

- launches on CuPy's current stream (`cupy.cuda.get_current_stream()`), wrapped once per stream
  as a Numba external stream. A kernel is then ordered with the cuBLAS calls and CuPy operations
  around it on any stream, and a temporary (such as `h @ Wh`) handed back to CuPy's memory pool
  when the launch returns is only reused by work queued after the kernel. Under the simulator
  the stream is 0 (the simulator runs kernels at once, in order);
- skips a launch whose grid has no blocks (a batch of N = 0): CUDA rejects an empty grid, and
  the outputs, allocated by the caller, are empty anyway.

What a launch costs on the host (numba 0.68 / numba-cuda 0.30 read, not yet measured on a GPU;
`python -m tools.launch_cost` measures it there): for each CuPy argument,
`cuda.as_cuda_array` reads `__cuda_array_interface__` and builds a Numba device array (a few
microseconds each), then the dispatcher types every argument, finds the compiled kernel and
packs each array as a struct of 5 + 2*ndim fields. A kernel with 8-12 arrays therefore costs
roughly 30-100 us of Python per launch, more than the kernel itself runs at the recipe's shapes;
at ~135 launches a step that is ~5-10 ms of host time that the GPU waits for. The plan, not
implemented here because it cannot be tested without a GPU: compile each kernel once per dtype
(`cuda.compile_ptx`, which works without a GPU), load the PTX with `cupy.RawModule`, and launch
it with `RawKernel((grid,), (block,), args, stream=...)`, packing each array's pointer, shape and
strides in the layout Numba's ABI expects; the simulator keeps this path.
"""
import math

import numpy as np
from numba import config, cuda

from rawcap.backend import array_module

THREADS = 128                   # threads per block of the one-thread-per-element kernels

_streams = {}                   # CuPy stream pointer -> the Numba stream object over it


def simulator():
    """True when Numba's CUDA simulator stands in for a GPU."""
    return bool(config.ENABLE_CUDASIM)


def as_device(a):
    """The object a kernel is handed for array `a`.

    A CuPy array becomes a Numba device array over the same memory. sync=False: Numba would
    otherwise synchronise the array's stream at every launch; the kernel is queued on CuPy's
    current stream (`current_stream`), after the work that wrote the array.
    A NumPy array is passed as it is, which only the simulator accepts without copies.
    """
    if isinstance(a, np.ndarray):       # a subclass (rawcap.count's arrays) as a plain view
        if not simulator():
            raise RuntimeError("a CUDA kernel was given a NumPy array: kernels run on CuPy arrays, "
                               "or on NumPy arrays under Numba's CUDA simulator "
                               "(NUMBA_ENABLE_CUDASIM=1)")
        return a if type(a) is np.ndarray else a.view(np.ndarray)
    return cuda.as_cuda_array(a, sync=False)


def current_stream(xp):
    """The stream kernels on arrays of module `xp` launch on: CuPy's current stream as a Numba
    stream (made once per stream pointer), or 0 for NumPy arrays (the simulator)."""
    if xp is np:
        return 0
    pointer = xp.cuda.get_current_stream().ptr
    if pointer not in _streams:
        _streams[pointer] = cuda.external_stream(pointer) if pointer else cuda.default_stream()
    return _streams[pointer]


def launch(kernel, blocks, threads, *args):
    """kernel[blocks, threads, stream](*args) on the arrays' current stream (module docstring),
    every array argument passed through `as_device`. A grid without blocks is not launched."""
    if math.prod(blocks if isinstance(blocks, tuple) else (blocks,)) == 0:
        return
    xp = array_module(next(a for a in args if _is_array(a)))
    if hasattr(xp, "count_launch"):         # rawcap.count's stand-in for CuPy: NumPy underneath
        xp.count_launch(kernel, blocks, threads)
        stream = 0
    else:
        stream = current_stream(xp)
    kernel[blocks, threads, stream](*(as_device(a) if _is_array(a) else a for a in args))


def _is_array(a):
    """An array argument (NumPy scalars, such as Adam's typed step size, are passed by value)."""
    return hasattr(a, "shape") and not isinstance(a, np.generic)


def blocks_for(n, threads=THREADS):
    """Blocks of `threads` threads that cover n elements (0 for n = 0: `launch` skips the grid)."""
    return math.ceil(n / threads)
