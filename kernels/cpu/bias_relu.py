"""Bias + ReLU on the CPU (rawcap.layers.activations.bias_relu_*) as parallel Numba loops.

Version 0 makes x + b, then its maximum with 0 (two [N, C, H, W] passes and a temporary); its
backward makes the mask, the product, then the sum over (n, h, w).

version 2   forward: one parallel loop over (image, channel) writes max(x + b[c], 0).
            backward: one parallel loop over (image, channel) writes dx = dout * [out > 0] and
            that channel's sum of dx; db sums the [N, C] partial sums over n.
"""
import numpy as np
from numba import njit, prange

from rawcap.layers.checks import Dims, check_grad

DEFAULT = 2


@njit(parallel=True, cache=True, fastmath=True, error_model="numpy")
def _forward(x, b, out):
    N, C = x.shape[:2]
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        bias = b[c]
        for i in range(x.shape[2]):
            for j in range(x.shape[3]):
                out[n, c, i, j] = max(x[n, c, i, j] + bias, 0)


@njit(parallel=True, cache=True, fastmath=True, error_model="numpy")
def _backward(dout, out, dx, partial):
    N, C = out.shape[:2]
    for nc in prange(N * C):
        n, c = nc // C, nc % C
        total = 0.0
        for i in range(out.shape[2]):
            for j in range(out.shape[3]):
                g = dout[n, c, i, j] if out[n, c, i, j] > 0 else 0
                dx[n, c, i, j] = g
                total += g
        partial[n, c] = total


def bias_relu_forward_v2(x, b):
    """x[N, C, H, W], b[C] -> out = max(x + b[c], 0), cache (as the layer)."""
    dims = Dims("bias_relu_forward")
    dims.check("x", x, "N C H W")
    dims.check("b", b, "C")
    out = np.empty(x.shape, dtype=np.result_type(x, b))
    _forward(np.ascontiguousarray(x), b, out)
    return out, out


def bias_relu_backward_v2(dout, cache):
    """dout[N, C, H, W] -> dx = dout * [out > 0], db[C] = sum of dx[:, c]."""
    out = cache
    check_grad("bias_relu_backward", "dout", dout, out.shape)
    dx = np.empty(out.shape, dtype=dout.dtype)
    partial = np.empty(out.shape[:2], dtype=np.float64)
    _backward(np.ascontiguousarray(dout), out, dx, partial)
    return dx, partial.sum(axis=0).astype(dout.dtype)
