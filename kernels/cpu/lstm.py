"""The LSTM's gates and cell update on the CPU (rawcap.layers.lstm.lstm_pointwise_*) as one
Numba loop each way.

Version 0 makes about ten NumPy passes over [N, H] slices of a[N, 4H] (three sigmoids, each
itself five passes with temporaries, two tanh, the products), and its backward a dozen more
and a concatenate.

version 2   forward: one loop reads a_i, a_f, a_g, a_o and c_prev once and writes h, c, the
            activated gates [N, 4H] and tanh(c) (the backward's cache). backward: one loop
            reads dh, dc and the cache once and writes the four parts of da and dc_prev; dc
            may be None (the last step of a sequence), which is read as zeros. In float32,
            sigmoid and tanh are the vectorisable approximations of kernels/cpu/fastmath.py
            (within 3e-7); float64 uses the exact functions. Arithmetic is in the arrays'
            dtype. One thread: at the recipe's [160, 256] a step's pointwise part is a
            fraction of a millisecond, and loops parallel over the rows took twice as long
            (median, forward and backward interleaved with these, on the shared machine at
            load 18): every parallel loop waits for both threads to be scheduled.
"""
import numpy as np
from numba import njit

from rawcap.layers.checks import Dims, check_grad

from .fastmath import sigmoid, tanh

DEFAULT = 2


@njit(cache=True, fastmath=True, error_model="numpy")
def _forward(a, c_prev, h, c, gates, tanh_c):
    """gates = [sigmoid(a_i), sigmoid(a_f), tanh(a_g), sigmoid(a_o)]; c = f c_prev + i g;
    tanh_c = tanh(c); h = o tanh_c."""
    N, H = c_prev.shape
    for n in range(N):
        for j in range(H):
            i = sigmoid(a[n, j])
            f = sigmoid(a[n, H + j])
            g = tanh(a[n, 2 * H + j])
            o = sigmoid(a[n, 3 * H + j])
            c_new = f * c_prev[n, j] + i * g
            t = tanh(c_new)
            c[n, j] = c_new
            tanh_c[n, j] = t
            h[n, j] = o * t
            gates[n, j] = i
            gates[n, H + j] = f
            gates[n, 2 * H + j] = g
            gates[n, 3 * H + j] = o


@njit(cache=True, fastmath=True, error_model="numpy")
def _backward(dh, dc, gates, c_prev, tanh_c, da, dc_prev):
    """The layer's equations (rawcap.layers.lstm.lstm_pointwise_backward), row by row."""
    N, H = c_prev.shape
    one = gates.dtype.type(1)
    for n in range(N):
        for j in range(H):
            i = gates[n, j]
            f = gates[n, H + j]
            g = gates[n, 2 * H + j]
            o = gates[n, 3 * H + j]
            t = tanh_c[n, j]
            dc_total = dh[n, j] * o * (one - t * t) + dc[n, j]
            da[n, j] = dc_total * g * i * (one - i)
            da[n, H + j] = dc_total * c_prev[n, j] * f * (one - f)
            da[n, 2 * H + j] = dc_total * i * (one - g * g)
            da[n, 3 * H + j] = dh[n, j] * t * o * (one - o)
            dc_prev[n, j] = dc_total * f


def lstm_pointwise_forward_v2(a, c_prev):
    """Gates and cell update.   a[N, 4H], c_prev[N, H] -> h[N, H], c[N, H], cache."""
    dims = Dims("lstm_pointwise_forward")
    dims.check("a", a, "N 4H")
    dims.check("c_prev", c_prev, "N H")
    a, c_prev = np.ascontiguousarray(a), np.ascontiguousarray(c_prev)
    h, c, tanh_c = (np.empty_like(c_prev) for _ in range(3))
    gates = np.empty_like(a)
    _forward(a, c_prev, h, c, gates, tanh_c)
    return h, c, (gates, c_prev, tanh_c)


def lstm_pointwise_backward_v2(dh, dc, cache):
    """dh[N, H], dc[N, H] or None -> da[N, 4H], dc_prev[N, H] (equations in the layer)."""
    gates, c_prev, tanh_c = cache
    check_grad("lstm_pointwise_backward", "dh", dh, c_prev.shape)
    if dc is not None:
        check_grad("lstm_pointwise_backward", "dc", dc, c_prev.shape)
    dh = np.ascontiguousarray(dh, dtype=gates.dtype)
    # dc None is dc = 0 (zeros, not a flag: the same arithmetic, so the same bits, either way)
    dc = np.zeros_like(dh) if dc is None else np.ascontiguousarray(dc, dtype=gates.dtype)
    da, dc_prev = np.empty_like(gates), np.empty_like(c_prev)
    _backward(dh, dc, gates, c_prev, tanh_c, da, dc_prev)
    return da, dc_prev
