"""CPU versions of the hot ops (NumPy arrays): Numba @njit loops or restructured NumPy.

kernels/cpu/<module>.py mirrors kernels/<module>.py: functions named <function>_v<k> with the
layer's signature and outputs, numbered after the op's CUDA versions, and DEFAULT, the version
`rawcap.backend` runs on NumPy arrays unless pinned. Every @njit function is compiled with
cache=True: the first run on a machine compiles it and writes the machine code beside the
source (__pycache__), later runs load it.

Threads: NumPy's BLAS and Numba's parallel loops take turns within a step, so both get the same
number of threads (BLAS's, as threadpoolctl reads it), never more than the cores between them.
"""
import numba
from numba import njit, prange


def blas_threads():
    """The threads NumPy's BLAS runs on (threadpoolctl; Numba's count if it cannot tell)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return numba.config.NUMBA_NUM_THREADS
    counts = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
    return max(counts) if counts else numba.config.NUMBA_NUM_THREADS


numba.set_num_threads(max(1, min(numba.config.NUMBA_NUM_THREADS, blas_threads())))


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
