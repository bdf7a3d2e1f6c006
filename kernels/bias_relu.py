"""Per-channel bias and ReLU (rawcap.layers.activations.bias_relu_*) as fused kernels.

Version 0 makes separate passes (x + b, maximum; then dout * mask, then the sum for db); the
kernels read and write every entry once. x[N, C, H, W] is handled as [N, C, M], M = H*W.

version 1   forward: one thread per entry writes out = max(x + b[c], 0).
            backward: the grid is (S blocks per channel) x (C channels), S chosen so that each
            thread handles at most ITEMS entries of its channel. Each thread writes
            dx = dout * [out > 0] for its entries and adds them up in a register; the
            block sums its threads' totals by a tree reduction in shared memory and writes one
            partial sum per (channel, block); db = partials.sum(axis=1), a small reduction on
            the array library. So dout is read once, in the same pass that writes dx.
            Several blocks per channel keep the GPU busy when channels are few (the encoder's
            first layer has 16: one block per channel would use 16 of an H100's 132 SMs).
            Every sum is in a fixed order, with no atomics: the results are deterministic.
            Arithmetic is in the arrays' dtype: a thread adds at most ITEMS entries, the block's
            tree and the sum of the partials are pairwise, so float32 sums lose no more than
            version 0's.
"""
from numba import cuda

from rawcap.backend import array_module
from rawcap.layers.checks import Dims, check_grad

from .launch import THREADS, blocks_for, launch

DEFAULT = 1
ITEMS = 8                       # entries per thread in the backward, at most


@cuda.jit
def _forward(x, b, out):
    """out[n, c, m] = max(x[n, c, m] + b[c], 0)."""
    k = cuda.grid(1)
    N, C, M = x.shape
    if k >= N * C * M:
        return
    n, c, m = k // (C * M), (k // M) % C, k % M
    value = x[n, c, m] + b[c]
    # Not max(value, 0.0): on a GPU Numba makes that fmax, which turns NaN into 0. A NaN is not
    # < 0, so it stays NaN here, as in version 0's xp.maximum.
    if value < 0:  # noqa: PLR1730
        value = out.dtype.type(0)
    out[n, c, m] = value


@cuda.jit
def _backward(dout, out, dx, partials):
    """dx = dout * [out > 0]; partials[c, s] = the sum of dx over block s's entries of channel c."""
    s, c, t = cuda.blockIdx.x, cuda.blockIdx.y, cuda.threadIdx.x
    N, _, M = dout.shape
    zero, one = dx.dtype.type(0), dx.dtype.type(1)
    total = zero
    for e in range(s * THREADS + t, N * M, cuda.gridDim.x * THREADS):    # e = n*M + m
        n, m = e // M, e % M
        grad = dout[n, c, m] * (one if out[n, c, m] > 0 else zero)     # NaN * 0 is NaN, as in v0
        dx[n, c, m] = grad
        total += grad

    block_totals = cuda.shared.array(THREADS, dx.dtype)
    block_totals[t] = total
    step = THREADS // 2
    while step > 0:                                   # halve the live totals until one is left
        cuda.syncthreads()
        if t < step:
            block_totals[t] += block_totals[t + step]
        step //= 2
    if t == 0:
        partials[c, s] = block_totals[0]


def bias_relu_forward_v1(x, b):
    """x[N, C, H, W], b[C] -> out = max(x + b[c], 0), cache (as the layer)."""
    dims = Dims("bias_relu_forward")
    dims.check("x", x, "N C H W")
    dims.check("b", b, "C")
    xp = array_module(x)
    N, C, H, W = x.shape
    x3 = xp.ascontiguousarray(x).reshape(N, C, H * W)
    out = xp.empty_like(x3)
    launch(_forward, blocks_for(out.size), THREADS, x3, xp.ascontiguousarray(b), out)
    out = out.reshape(x.shape)
    return out, out


def bias_relu_backward_v1(dout, cache):
    """dout[N, C, H, W] -> dx = dout * [out > 0], db[C] = sum of dx[:, c] (as the layer)."""
    out = cache
    check_grad("bias_relu_backward", "dout", dout, out.shape)
    xp = array_module(dout)
    N, C, H, W = out.shape
    dout3, out3 = xp.ascontiguousarray(dout).reshape(N, C, H * W), out.reshape(N, C, H * W)
    dx = xp.empty_like(dout3)
    blocks_per_channel = blocks_for(N * out3.shape[2], THREADS * ITEMS)
    partials = xp.empty((C, blocks_per_channel), dtype=dout.dtype)
    launch(_backward, (blocks_per_channel, C), THREADS, dout3, out3, dx, partials)
    return dx.reshape(out.shape), partials.sum(axis=1)
