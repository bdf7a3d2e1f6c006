"""Reductions across the threads of one block, for kernels that give a block one row.

Tree reductions in shared memory: each step halves the number of live values, with a barrier
between steps, so a block of 2^k threads needs k steps. No warp intrinsics (shfl), so the
simulator runs them too. Every thread of the block must call them (they hold barriers).
"""
from numba import cuda

from .launch import THREADS


def block_threads(n):
    """Threads per block for rows of n entries: the smallest power of two >= n, at most THREADS
    (a short row does not launch idle threads; a longer one is strided)."""
    return min(THREADS, 1 << max(n - 1, 0).bit_length())


@cuda.jit(device=True)
def block_sum(buffer, value):
    """The sum of every thread's `value`, returned to every thread of the block.

    buffer: a shared array of blockDim.x entries (a power of two) in the values' dtype, free
    for this call.
    """
    k = cuda.threadIdx.x
    cuda.syncthreads()                          # the buffer's last use is over
    buffer[k] = value
    step = cuda.blockDim.x // 2
    while step > 0:                             # halve the live values until one is left
        cuda.syncthreads()
        if k < step:
            buffer[k] += buffer[k + step]
        step //= 2
    cuda.syncthreads()
    return buffer[0]


@cuda.jit(device=True)
def block_max(buffer, value):
    """The maximum of every thread's `value`, returned to every thread (as block_sum)."""
    k = cuda.threadIdx.x
    cuda.syncthreads()
    buffer[k] = value
    step = cuda.blockDim.x // 2
    while step > 0:
        cuda.syncthreads()
        if k < step:
            if buffer[k + step] > buffer[k]:
                buffer[k] = buffer[k + step]
        step //= 2
    cuda.syncthreads()
    return buffer[0]
