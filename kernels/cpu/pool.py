"""Max pooling on the CPU (rawcap.layers.pool.maxpool2d_*) as parallel Numba loops.

Version 0 stacks the size*size strided slices of every window into a new array, then takes
its argmax and its max (three passes); its backward adds one masked copy of dout per offset.

version 2   forward: one parallel loop over (image, channel) finds each window's maximum and
            the offset that holds it (the first one on ties, as version 0) in a single pass.
            backward: one parallel loop over (image, channel) zero-fills the channel's dx and
            adds each window's gradient onto its winner (each channel's pixels are its own).
"""
import numpy as np
from numba import njit, prange

from rawcap.layers.checks import check_grad
from rawcap.layers.pool import check_pool_inputs

DEFAULT = 2


@njit(parallel=True, cache=True, error_model="numpy")
def _forward(x, size, stride, out, winner):
    N, C, Ho, Wo = out.shape
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        for i in range(Ho):
            for j in range(Wo):
                best = x[n, c, stride * i, stride * j]
                best_k = 0
                for kh in range(size):
                    for kw in range(size):
                        value = x[n, c, stride * i + kh, stride * j + kw]
                        if value > best:
                            best, best_k = value, kh * size + kw
                out[n, c, i, j] = best
                winner[n, c, i, j] = best_k


@njit(parallel=True, cache=True, error_model="numpy")
def _backward(dout, winner, size, stride, dx):
    N, C, Ho, Wo = dout.shape
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        dx[n, c] = 0
        for i in range(Ho):
            for j in range(Wo):
                k = winner[n, c, i, j]
                dx[n, c, stride * i + k // size, stride * j + k % size] += dout[n, c, i, j]


def maxpool2d_forward_v2(x, size=2, stride=2):
    """x[N, C, Hi, Wi] -> out[N, C, Ho, Wo], cache (as the layer)."""
    Ho, Wo = check_pool_inputs(x, size, stride)
    N, C, H, W = x.shape
    out = np.empty((N, C, Ho, Wo), dtype=x.dtype)
    winner = np.empty((N, C, Ho, Wo), dtype=np.int32)
    _forward(np.ascontiguousarray(x), size, stride, out, winner)
    return out, (x.shape, winner, size, stride)


def maxpool2d_backward_v2(dout, cache):
    """dout[N, C, Ho, Wo] -> dx[N, C, Hi, Wi] (an entry that won several windows gets the sum)."""
    x_shape, winner, size, stride = cache
    check_grad("maxpool2d_backward", "dout", dout, winner.shape)
    dx = np.empty(x_shape, dtype=dout.dtype)
    _backward(np.ascontiguousarray(dout), winner, size, stride, dx)
    return dx
