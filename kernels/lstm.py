"""The LSTM's gates and cell update (rawcap.layers.lstm.lstm_pointwise_*) as fused kernels.

The GEMMs that make the gate pre-activations a = x @ Wx + h_prev @ Wh + b stay in cuBLAS (and
lstm_forward makes the input part of all T steps in one GEMM); these kernels replace the
pointwise part between them, which the layer does in about ten separate array operations.

version 1   forward: one thread per (n, j) of [N, H] reads a_i, a_f, a_g, a_o and c_prev once,
            writes h, c and the activated gates [N, 4H] (the backward's cache).
            backward: one thread per (n, j) reads dh, dc and the cache once, writes the four
            entries of da and dc_prev. dc may be None (the last step of a sequence).
            Arithmetic is in the arrays' dtype (float64 arithmetic runs at 1/32 to 1/64 of the
            float32 rate on consumer GPUs, a T4 among them).
"""
import math

from numba import cuda

from rawcap.backend import array_module
from rawcap.layers.checks import Dims, check_grad

from .launch import blocks_for, launch

DEFAULT = 1


@cuda.jit
def _forward(a, c_prev, h, c, gates):
    n, j = cuda.grid(2)
    N, H = c_prev.shape
    if n >= N or j >= H:
        return
    one = a.dtype.type(1)
    i = one / (one + math.exp(-a[n, j]))
    f = one / (one + math.exp(-a[n, H + j]))
    g = math.tanh(a[n, 2 * H + j])
    o = one / (one + math.exp(-a[n, 3 * H + j]))
    c_new = f * c_prev[n, j] + i * g
    c[n, j] = c_new
    h[n, j] = o * math.tanh(c_new)
    gates[n, j] = i
    gates[n, H + j] = f
    gates[n, 2 * H + j] = g
    gates[n, 3 * H + j] = o


@cuda.jit
def _backward(dh, dc, has_dc, gates, c_prev, c, da, dc_prev):
    n, j = cuda.grid(2)
    N, H = c_prev.shape
    if n >= N or j >= H:
        return
    one = gates.dtype.type(1)
    i = gates[n, j]
    f = gates[n, H + j]
    g = gates[n, 2 * H + j]
    o = gates[n, 3 * H + j]
    tanh_c = math.tanh(c[n, j])
    dc_total = dh[n, j] * o * (one - tanh_c * tanh_c)
    if has_dc:
        dc_total += dc[n, j]
    da[n, j] = dc_total * g * i * (one - i)
    da[n, H + j] = dc_total * c_prev[n, j] * f * (one - f)
    da[n, 2 * H + j] = dc_total * i * (one - g * g)
    da[n, 3 * H + j] = dh[n, j] * tanh_c * o * (one - o)
    dc_prev[n, j] = dc_total * f


def _grid(N, H):
    """A 2-D grid over [N, H]: 32 threads along H (coalesced rows), 4 rows per block."""
    return (blocks_for(N, 4), blocks_for(H, 32)), (4, 32)


def lstm_pointwise_forward_v1(a, c_prev):
    """Gates and cell update.   a[N, 4H], c_prev[N, H] -> h[N, H], c[N, H], cache."""
    dims = Dims("lstm_pointwise_forward")
    dims.check("a", a, "N 4H")
    dims.check("c_prev", c_prev, "N H")
    xp = array_module(a)
    a, c_prev = xp.ascontiguousarray(a), xp.ascontiguousarray(c_prev)
    h, c = xp.empty_like(c_prev), xp.empty_like(c_prev)
    gates = xp.empty_like(a)
    launch(_forward, *_grid(*c_prev.shape), a, c_prev, h, c, gates)
    return h, c, (gates, c_prev, c)


def lstm_pointwise_backward_v1(dh, dc, cache):
    """dh[N, H], dc[N, H] or None -> da[N, 4H], dc_prev[N, H] (equations in the layer)."""
    gates, c_prev, c = cache
    check_grad("lstm_pointwise_backward", "dh", dh, c_prev.shape)
    if dc is not None:
        check_grad("lstm_pointwise_backward", "dc", dc, c_prev.shape)
    xp = array_module(dh)
    dh = xp.ascontiguousarray(dh)
    dc = dh if dc is None else xp.ascontiguousarray(dc)        # not read when has_dc is False
    da, dc_prev = xp.empty_like(gates), xp.empty_like(c_prev)
    launch(_backward, *_grid(*c_prev.shape), dh, dc, dc is not dh, gates, c_prev, c, da, dc_prev)
    return da, dc_prev
