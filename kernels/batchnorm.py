"""Batch normalisation (rawcap.layers.batchnorm.batchnorm2d_*) as per-channel kernels.

Version 0 makes a NumPy/CuPy pass per term (mean, variance, xhat, out; then the two sums and
dx in the backward). x[N, C, H, W] is handled as [N, C, M'], M' = H*W; a channel has
M = N*M' entries.

version 1   one block per channel, its threads strided over the channel's M entries.
            forward: in train mode the block sums x (a tree reduction in shared memory, no
            atomics) for the mean, then sums (x - mean)^2 for the variance (two passes, so the
            variance loses nothing to cancellation, as version 0's); in eval mode it reads the
            running statistics instead. A third pass writes xhat and out, and thread 0 writes
            inv_std and the running statistics. backward: one pass sums dout and dout * xhat
            (dbeta, dgamma), a second writes dx. Every sum has a fixed order: deterministic.
            One block per channel leaves most of a GPU idle when C is small (16 channels, 16
            SMs of 132); it keeps a reduction in one block, with no partial sums to combine.
            Arithmetic in the arrays' dtype.
"""
import math

from numba import cuda

from rawcap.backend import array_module
from rawcap.layers.batchnorm import check_batchnorm_inputs
from rawcap.layers.checks import check_grad

from .launch import THREADS, launch
from .reduce import block_sum, block_threads

DEFAULT = 1


@cuda.jit
def _forward(x, gamma, beta, running_mean, running_var, train, momentum, eps, unbias,
             out, xhat, inv_std, new_mean, new_var):
    """Channel c = blockIdx.x: statistics, then xhat and out for its entries (module docstring)."""
    c, t, threads = cuda.blockIdx.x, cuda.threadIdx.x, cuda.blockDim.x
    N, _, Mp = x.shape
    M = N * Mp
    zero, one, count = x.dtype.type(0), x.dtype.type(1), x.dtype.type(M)
    buffer = cuda.shared.array(THREADS, x.dtype)
    if train:
        total = zero
        for e in range(t, M, threads):                      # e = n*Mp + m
            total += x[e // Mp, c, e % Mp]
        mean = block_sum(buffer, total) / count
        total = zero
        for e in range(t, M, threads):
            d = x[e // Mp, c, e % Mp] - mean
            total += d * d
        var = block_sum(buffer, total) / count
    else:
        mean, var = running_mean[c], running_var[c]
    scale = one / math.sqrt(var + eps)
    for e in range(t, M, threads):
        n, m = e // Mp, e % Mp
        normalised = (x[n, c, m] - mean) * scale
        xhat[n, c, m] = normalised
        out[n, c, m] = gamma[c] * normalised + beta[c]
    if t == 0:
        inv_std[c] = scale
        if train:
            new_mean[c] = (one - momentum) * running_mean[c] + momentum * mean
            new_var[c] = (one - momentum) * running_var[c] + momentum * var * unbias
        else:
            new_mean[c], new_var[c] = running_mean[c], running_var[c]


@cuda.jit
def _backward(dout, xhat, gamma, inv_std, train, dx, dgamma, dbeta):
    """Channel c = blockIdx.x: dbeta = sum dout, dgamma = sum dout * xhat, then dx."""
    c, t, threads = cuda.blockIdx.x, cuda.threadIdx.x, cuda.blockDim.x
    N, _, Mp = dout.shape
    M = N * Mp
    zero, count = dout.dtype.type(0), dout.dtype.type(M)
    buffer = cuda.shared.array(THREADS, dout.dtype)
    sum_d, sum_dx = zero, zero
    for e in range(t, M, threads):
        n, m = e // Mp, e % Mp
        sum_d += dout[n, c, m]
        sum_dx += dout[n, c, m] * xhat[n, c, m]
    sum_d = block_sum(buffer, sum_d)
    sum_dx = block_sum(buffer, sum_dx)
    scale = gamma[c] * inv_std[c]
    mean_d, mean_dx = (sum_d / count, sum_dx / count) if train else (zero, zero)
    for e in range(t, M, threads):
        n, m = e // Mp, e % Mp
        dx[n, c, m] = scale * (dout[n, c, m] - mean_d - xhat[n, c, m] * mean_dx)
    if t == 0:
        dbeta[c], dgamma[c] = sum_d, sum_dx


def batchnorm2d_forward_v1(x, gamma, beta, running_mean, running_var, train=True, momentum=0.1,
                           eps=1e-5):
    """As the layer: -> out[N, C, H, W], (running_mean'[C], running_var'[C]), cache."""
    check_batchnorm_inputs("batchnorm2d_forward", x, gamma, beta, running_mean, running_var,
                           train, momentum, eps)
    xp = array_module(x)
    N, C, H, W = x.shape
    x3 = xp.ascontiguousarray(x).reshape(N, C, H * W)
    out, xhat = xp.empty_like(x3), xp.empty_like(x3)
    inv_std, new_mean, new_var = (xp.empty(C, dtype=x.dtype) for _ in range(3))
    typed = x.dtype.type
    M = N * H * W
    unbias = typed(M / (M - 1)) if M > 1 else typed(1)
    params = map(xp.ascontiguousarray, (gamma, beta, running_mean, running_var))
    launch(_forward, C, block_threads(M), x3, *params, train, typed(momentum), typed(eps), unbias,
           out, xhat, inv_std, new_mean, new_var)
    return out.reshape(x.shape), (new_mean, new_var), (xhat.reshape(x.shape), gamma, inv_std, train)


def batchnorm2d_backward_v1(dout, cache):
    """As the layer: dout[N, C, H, W] -> dx, dgamma[C], dbeta[C]."""
    xhat, gamma, inv_std, train = cache
    check_grad("batchnorm2d_backward", "dout", dout, xhat.shape)
    xp = array_module(dout)
    N, C, H, W = xhat.shape
    dout3 = xp.ascontiguousarray(dout).reshape(N, C, H * W)
    dx = xp.empty_like(dout3)
    dgamma, dbeta = xp.empty(C, dtype=dout.dtype), xp.empty(C, dtype=dout.dtype)
    launch(_backward, C, block_threads(N * H * W), dout3, xhat.reshape(N, C, H * W),
           xp.ascontiguousarray(gamma), inv_std, train, dx, dgamma, dbeta)
    return dx.reshape(xhat.shape), dgamma, dbeta
