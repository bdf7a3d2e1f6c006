"""Batch normalisation on the CPU (rawcap.layers.batchnorm.batchnorm2d_*) as parallel Numba loops.

Version 0 makes a NumPy pass per term: the mean, x - mean and its square for the variance,
xhat, out (each a temporary of x's size); the backward another five.

version 2   one parallel loop over the channels; each channel's M = N*H*W entries are N
            contiguous runs of H*W. forward, train mode: a pass sums x for the mean, a second
            sums (x - mean)^2 for the variance (two passes, as version 0, so the variance loses
            nothing to cancellation), a third writes xhat and out; eval mode reads the running
            statistics and makes the third pass only. backward: a pass sums dout and
            dout * xhat (dbeta, dgamma), a second writes dx. Sums are accumulated in float64,
            in the order fastmath's vectorisation picks (bias_relu's choice too).
            The running statistics ([C], a few numbers) are updated by version 0's function.
"""
import numpy as np
from numba import njit, prange

from rawcap.layers.batchnorm import check_batchnorm_inputs, updated_running_statistics
from rawcap.layers.checks import check_grad

DEFAULT = 2


@njit(parallel=True, cache=True, fastmath=True, error_model="numpy")
def _statistics(x, mean, var):
    N, C, H, W = x.shape
    M = N * H * W
    for c in prange(C):
        total = 0.0
        for n in range(N):
            for i in range(H):
                for j in range(W):
                    total += x[n, c, i, j]
        mu = total / M
        total = 0.0
        for n in range(N):
            for i in range(H):
                for j in range(W):
                    d = x[n, c, i, j] - mu
                    total += d * d
        mean[c], var[c] = mu, total / M


@njit(parallel=True, cache=True, fastmath=True, error_model="numpy")
def _normalise(x, mean, inv_std, gamma, beta, xhat, out):
    N, C, H, W = x.shape
    for c in prange(C):
        mu, s, g, b = mean[c], inv_std[c], gamma[c], beta[c]
        for n in range(N):
            for i in range(H):
                for j in range(W):
                    v = (x[n, c, i, j] - mu) * s
                    xhat[n, c, i, j] = v
                    out[n, c, i, j] = g * v + b


@njit(parallel=True, cache=True, fastmath=True, error_model="numpy")
def _backward(dout, xhat, scale, train, dx, dgamma, dbeta):
    N, C, H, W = xhat.shape
    M = N * H * W
    for c in prange(C):
        sum_d, sum_dx = 0.0, 0.0
        for n in range(N):
            for i in range(H):
                for j in range(W):
                    sum_d += dout[n, c, i, j]
                    sum_dx += dout[n, c, i, j] * xhat[n, c, i, j]
        dbeta[c], dgamma[c] = sum_d, sum_dx
        mean_d, mean_dx = (sum_d / M, sum_dx / M) if train else (0.0, 0.0)
        k = scale[c]
        for n in range(N):
            for i in range(H):
                for j in range(W):
                    dx[n, c, i, j] = k * (dout[n, c, i, j] - mean_d - xhat[n, c, i, j] * mean_dx)


def batchnorm2d_forward_v2(x, gamma, beta, running_mean, running_var, train=True, momentum=0.1,
                           eps=1e-5):
    """x[N, C, H, W], gamma/beta/running_mean/running_var[C]
    -> out, (running_mean', running_var'), cache (as the layer)."""
    check_batchnorm_inputs("batchnorm2d_forward", x, gamma, beta, running_mean, running_var,
                           train, momentum, eps)
    x = np.ascontiguousarray(x)
    if train:
        M = x.shape[0] * x.shape[2] * x.shape[3]
        mean, var = np.empty(x.shape[1]), np.empty(x.shape[1])
        _statistics(x, mean, var)
        mean, var = mean.astype(x.dtype), var.astype(x.dtype)
        running = updated_running_statistics(running_mean, running_var, mean, var, M, momentum)
    else:
        mean, var = running_mean, running_var
        running = (running_mean.copy(), running_var.copy())
    inv_std = 1 / np.sqrt(var + eps)
    xhat, out = np.empty_like(x), np.empty_like(x)
    _normalise(x, mean, inv_std, gamma, beta, xhat, out)
    return out, running, (xhat, gamma, inv_std, train)


def batchnorm2d_backward_v2(dout, cache):
    """dout[N, C, H, W] -> dx, dgamma[C], dbeta[C] (equations in the layer)."""
    xhat, gamma, inv_std, train = cache
    check_grad("batchnorm2d_backward", "dout", dout, xhat.shape)
    C = xhat.shape[1]
    dx, dgamma, dbeta = np.empty_like(xhat), np.empty(C), np.empty(C)
    _backward(np.ascontiguousarray(dout), xhat, gamma * inv_std, train, dx, dgamma, dbeta)
    return dx, dgamma.astype(xhat.dtype), dbeta.astype(xhat.dtype)
