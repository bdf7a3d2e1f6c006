"""CPU versions of the hot ops (NumPy arrays): Numba @njit loops or restructured NumPy.

kernels/cpu/<module>.py mirrors kernels/<module>.py: functions named <function>_v<k> with the
layer's signature and outputs, numbered after the op's CUDA versions, and DEFAULT, the version
`rawcap.backend` runs on NumPy arrays unless pinned. Every @njit function is compiled with
cache=True: the first run on a machine compiles it and writes the machine code beside the
source (__pycache__), later runs load it.

Threads: NumPy's BLAS and Numba's parallel loops take turns within a step, so both get the same
number of threads (BLAS's, as threadpoolctl reads it), never more than the cores between them.
Taking turns is also why Numba's OpenMP threads wait passively (OMP_WAIT_POLICY=PASSIVE unless
the environment says otherwise): by default an OpenMP thread spins on its core after a parallel
loop, and on a 2-core machine those spinning threads starve the BLAS call that comes next (the
recipe's step took 1.7 s spinning and 0.98 s passive). It must be set before the OpenMP runtime
loads, which Numba does at the first parallel loop.

Memory: freed arrays stay in the process for the next step instead of going back to the kernel
(kernels/cpu/memory.py: glibc's malloc options, set when this package is first imported; 1.25
times the images a second at the recipe's step on two threads, docs/cpu.md).
"""
import os

from .memory import keep_freed_memory

PASSIVE_WAIT_SET_HERE = "OMP_WAIT_POLICY" not in os.environ     # (bench unsets it for PyTorch)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numba    # noqa: E402  (after the wait policy, which the OpenMP runtime reads once)
from numba import njit, prange    # noqa: E402


def blas_threads():
    """The threads NumPy's BLAS runs on (threadpoolctl; Numba's count if it cannot tell)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return numba.config.NUMBA_NUM_THREADS
    counts = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
    return max(counts) if counts else numba.config.NUMBA_NUM_THREADS


numba.set_num_threads(max(1, min(numba.config.NUMBA_NUM_THREADS, blas_threads())))
MEMORY_KEPT = keep_freed_memory()


@njit(parallel=True, cache=True)
def _count(n):
    total = 0
    for i in prange(n):
        total += 1
    return total


def threading_layer():
    """The threading layer Numba's parallel loops run on ("tbb", "omp" or "workqueue"),
    and how many threads: one tiny parallel loop is run to find out."""
    _count(numba.get_num_threads())
    return numba.threading_layer(), numba.get_num_threads()


def compiled_functions():
    """(compiled, total, folder): how many of the CPU versions' @njit functions (those of the
    modules beside this one) have machine code in Numba's cache for their current source, and
    where the cache is. A cold cache costs the first training run about 30 CPU-seconds of
    compilation (docs/cpu.md). None if this Numba keeps its cache differently."""
    import importlib
    import pkgutil

    from numba.core.registry import CPUDispatcher
    try:
        found = [f for module in pkgutil.iter_modules(__path__)
                 for f in vars(importlib.import_module(f"{__name__}.{module.name}")).values()
                 if isinstance(f, CPUDispatcher) and f.__module__ == f"{__name__}.{module.name}"]
        compiled = sum(bool(f._cache._cache_file._load_index()) for f in found)
        return compiled, len(found), found[0]._cache._cache_path
    except (AttributeError, IndexError):            # Numba's private cache API changed
        return None
