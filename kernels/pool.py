"""2-D max pooling (rawcap.layers.pool) as kernels.

The layer stacks the size*size offsets of every window into one [size*size, N, C, Ho, Wo] array
and reduces it (argmax and max); its backward makes one masked add per offset. The kernels
read x once and write each output once.

version 1   forward: one thread per output (n, c, i, j) scans its window row by row and keeps the
            first maximum (a later entry wins only if strictly greater: the layer's argmax
            breaks ties the same way; a NaN beats any number, so NaNs propagate as in the
            layer), writing the maximum and the winning offset kh*size + kw.
            backward: a gather, one thread per input pixel: it adds dout of every window that
            contains the pixel and whose winner it is, in the layer's order of offsets, and
            writes dx once. Overlapping windows (stride < size) need no atomics, and the result
            is deterministic.
            The cache is the layer's (winner as the window offset, stored in int32), so either
            version's backward takes either forward's cache.
            Arithmetic is in the arrays' dtype.
"""
import math

from numba import cuda

from rawcap.backend import array_module
from rawcap.layers.checks import check_grad
from rawcap.layers.pool import check_pool_inputs

from .launch import THREADS, blocks_for, launch

DEFAULT = 1


@cuda.jit
def _maxpool(x, size, stride, out, winner):
    """out[n, c, i, j] = max over the window at (stride*i, stride*j); winner = its first argmax."""
    k = cuda.grid(1)
    N, C, Ho, Wo = out.shape
    if k >= N * C * Ho * Wo:
        return
    n, c, i, j = k // (C * Ho * Wo), (k // (Ho * Wo)) % C, (k // Wo) % Ho, k % Wo
    best = x[n, c, stride * i, stride * j]
    best_offset = 0
    for kh in range(size):
        for kw in range(size):
            value = x[n, c, stride * i + kh, stride * j + kw]
            if value > best or (math.isnan(value) and not math.isnan(best)):  # NaN wins, as in numpy
                best = value
                best_offset = kh * size + kw
    out[n, c, i, j] = best
    winner[n, c, i, j] = best_offset


@cuda.jit
def _maxpool_backward(dout, winner, size, stride, dx):
    """dx[n, c, i, j] = sum of dout[n, c, oi, oj] over the windows (oi, oj) that pixel (i, j) won."""
    k = cuda.grid(1)
    N, C, H, W = dx.shape
    Ho, Wo = dout.shape[2], dout.shape[3]
    if k >= N * C * H * W:
        return
    n, c, i, j = k // (C * H * W), (k // (H * W)) % C, (k // W) % H, k % W
    total = dx.dtype.type(0)
    for kh in range(size):
        si = i - kh                                   # stride * oi, the window's top row
        if si >= 0 and si % stride == 0 and si // stride < Ho:
            for kw in range(size):
                sj = j - kw                           # stride * oj, the window's left column
                if (sj >= 0 and sj % stride == 0 and sj // stride < Wo
                        and winner[n, c, si // stride, sj // stride] == kh * size + kw):
                    total += dout[n, c, si // stride, sj // stride]
    dx[n, c, i, j] = total


def maxpool2d_forward_v1(x, size=2, stride=2):
    """x[N, C, Hi, Wi] -> out[N, C, Ho, Wo], cache (as the layer)."""
    Ho, Wo = check_pool_inputs(x, size, stride)
    N, C, H, W = x.shape
    xp = array_module(x)
    x = xp.ascontiguousarray(x)
    out = xp.empty((N, C, Ho, Wo), dtype=x.dtype)
    winner = xp.empty((N, C, Ho, Wo), dtype=xp.int32)
    launch(_maxpool, blocks_for(out.size), THREADS, x, size, stride, out, winner)
    return out, (x.shape, winner, size, stride)


def maxpool2d_backward_v1(dout, cache):
    """dout[N, C, Ho, Wo] -> dx[N, C, Hi, Wi] (an entry that won several windows gets the sum)."""
    x_shape, winner, size, stride = cache
    check_grad("maxpool2d_backward", "dout", dout, winner.shape)
    xp = array_module(dout)
    dout = xp.ascontiguousarray(dout)
    dx = xp.empty(x_shape, dtype=dout.dtype)
    launch(_maxpool_backward, blocks_for(dx.size), THREADS, dout, winner, size, stride, dx)
    return dx
