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


@cuda.jit(device=True)
def cell_forward(one, a_i, a_f, a_g, a_o, c_prev):
    """One (n, j) of the cell: i, f, o = sigmoid(a_i, a_f, a_o), g = tanh(a_g),
    c = f c_prev + i g, h = o tanh(c).  -> i, f, g, o, c, h (one: 1 in the arrays' dtype)."""
    i = one / (one + math.exp(-a_i))
    f = one / (one + math.exp(-a_f))
    g = math.tanh(a_g)
    o = one / (one + math.exp(-a_o))
    c = f * c_prev + i * g
    return i, f, g, o, c, o * math.tanh(c)


@cuda.jit(device=True)
def cell_backward(one, dh, dc, i, f, g, o, c_prev, c):
    """Its backward, from dh and dc (the gradient reaching c from the next step; 0 at the last).
    -> da_i, da_f, da_g, da_o, dc_prev."""
    tanh_c = math.tanh(c)
    dc_total = dh * o * (one - tanh_c * tanh_c) + dc
    return (dc_total * g * i * (one - i), dc_total * c_prev * f * (one - f),
            dc_total * i * (one - g * g), dh * tanh_c * o * (one - o), dc_total * f)


@cuda.jit
def _forward(a, c_prev, h, c, gates):
    n, j = cuda.grid(2)
    N, H = c_prev.shape
    if n >= N or j >= H:
        return
    i, f, g, o, c[n, j], h[n, j] = cell_forward(a.dtype.type(1), a[n, j], a[n, H + j],
                                                a[n, 2 * H + j], a[n, 3 * H + j], c_prev[n, j])
    gates[n, j], gates[n, H + j], gates[n, 2 * H + j], gates[n, 3 * H + j] = i, f, g, o


@cuda.jit
def _backward(dh, dc, has_dc, gates, c_prev, c, da, dc_prev):
    n, j = cuda.grid(2)
    N, H = c_prev.shape
    if n >= N or j >= H:
        return
    dc_next = dc[n, j] if has_dc else gates.dtype.type(0)
    da[n, j], da[n, H + j], da[n, 2 * H + j], da[n, 3 * H + j], dc_prev[n, j] = cell_backward(
        gates.dtype.type(1), dh[n, j], dc_next, gates[n, j], gates[n, H + j],
        gates[n, 2 * H + j], gates[n, 3 * H + j], c_prev[n, j], c[n, j])


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
