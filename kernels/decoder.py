"""The decoder's T steps on a GPU (rawcap.decoder.decoder_*): the same sums as version 0, grouped
into fewer, larger products and fewer launches (kernels/decoder_steps.py says how).

Version 0 runs decode_step T times: per step about 30 launches forward and back (four GEMMs
each way, the attention kernel, a dozen array operations for the gate's sigmoid and the
concatenation, each weight gradient's product and its addition into the total).

version 2   kernels/decoder_steps.py with attention version 2's warp kernels (kernels/
            attention_warp.py; the backward adds each step's dproj into one buffer and leaves
            dfeats), two kernels for the f_beta gate, one thread per (n, d):
            forward: beta = sigmoid(pre + b), x = beta * context;
            backward: dpre = dx * context * beta (1 - beta), dcontext = dx * beta;
            and the LSTM's cell (kernels/lstm.py's device functions, one thread per (n, j)) with
            the step's glue inside: the forward adds the three parts of a as it reads them and
            writes h into the buffer of every step's h; the backward adds the step's dh to the
            one from the next step and writes da where the GEMMs read it. Per step, forward:
            2 GEMMs and 3 kernels; backward: 2 GEMMs and 3 kernels.
            Arithmetic in the arrays' dtype. Unmeasured on a GPU (none has run it yet).
"""
import math

from numba import cuda

from rawcap.backend import array_module

from . import attention_warp, decoder_steps
from .launch import blocks_for, launch
from .lstm import cell_backward, cell_forward

DEFAULT = 2


@cuda.jit
def _gate_forward(hW, first, gate_b, context, beta, x):
    n, d = cuda.grid(2)
    if n >= context.shape[0] or d >= context.shape[1]:
        return
    one = context.dtype.type(1)
    b = one / (one + math.exp(-(hW[n, first + d] + gate_b[d])))
    beta[n, d] = b
    x[n, d] = b * context[n, d]


@cuda.jit
def _gate_backward(dx, context, beta, rows, first, dcontext):
    n, d = cuda.grid(2)
    if n >= context.shape[0] or d >= context.shape[1]:
        return
    one = context.dtype.type(1)
    b = beta[n, d]
    rows[n, first + d] = dx[n, d] * context[n, d] * b * (one - b)
    dcontext[n, d] = dx[n, d] * b


@cuda.jit
def _lstm_forward(word_part, hW, xW, c_prev, h_next, c, gates):
    """kernels/lstm.py's forward with a = word_part + hW[:, -4H:] + xW added as it is read."""
    n, j = cuda.grid(2)
    N, H = c_prev.shape
    if n >= N or j >= H:
        return
    first = hW.shape[1] - 4 * H
    i, f, g, o, c[n, j], h_next[n, j] = cell_forward(
        c_prev.dtype.type(1),
        word_part[n, j] + hW[n, first + j] + xW[n, j],
        word_part[n, H + j] + hW[n, first + H + j] + xW[n, H + j],
        word_part[n, 2 * H + j] + hW[n, first + 2 * H + j] + xW[n, 2 * H + j],
        word_part[n, 3 * H + j] + hW[n, first + 3 * H + j] + xW[n, 3 * H + j], c_prev[n, j])
    gates[n, j], gates[n, H + j], gates[n, 2 * H + j], gates[n, 3 * H + j] = i, f, g, o


@cuda.jit
def _lstm_backward(dh_out, dh, dc, has_dc, gates, c_prev, c, da, rows, dc_prev):
    """kernels/lstm.py's backward of dh_out + dh; da written to da and to rows[:, -4H:]."""
    n, j = cuda.grid(2)
    N, H = c_prev.shape
    if n >= N or j >= H:
        return
    first = rows.shape[1] - 4 * H
    dc_next = dc[n, j] if has_dc else gates.dtype.type(0)
    da_i, da_f, da_g, da_o, dc_prev[n, j] = cell_backward(
        gates.dtype.type(1), dh_out[n, j] + dh[n, j], dc_next, gates[n, j], gates[n, H + j],
        gates[n, 2 * H + j], gates[n, 3 * H + j], c_prev[n, j], c[n, j])
    da[n, j], rows[n, first + j] = da_i, da_i
    da[n, H + j], rows[n, first + H + j] = da_f, da_f
    da[n, 2 * H + j], rows[n, first + 2 * H + j] = da_g, da_g
    da[n, 3 * H + j], rows[n, first + 3 * H + j] = da_o, da_o


def _grid(N, D):
    """A 2-D grid over [N, D]: 32 threads along D (coalesced rows), 4 rows per block."""
    return (blocks_for(N, 4), blocks_for(D, 32)), (4, 32)


class _CudaPasses(decoder_steps.Passes):
    def attention_forward(self, feats, proj, hW, v, z, alpha, context):
        scores = array_module(alpha).empty_like(alpha)         # scratch [B, L]
        launch(attention_warp.forward, feats.shape[0], attention_warp.threads(feats.shape[1]),
               feats, proj, hW, v, z, scores, alpha, context)

    def attention_backward(self, feats, z, alpha, v, dcontext, dalpha, dproj, rows, dv_rows):
        de = array_module(alpha).empty_like(alpha)             # scratch [B, L]
        launch(attention_warp.backward, feats.shape[0], attention_warp.threads(feats.shape[1]),
               dcontext, dalpha, True, feats, v, z, alpha, de, dproj, dproj, rows, dv_rows,
               True)                            # accumulate: dfeats (here dproj) is not written

    def lstm_forward(self, word_part, hW, xW, c, h_next):
        xp = array_module(c)
        c_new, gates = xp.empty_like(c), xp.empty_like(xW)
        launch(_lstm_forward, *_grid(*c.shape), word_part, hW, xW, c, h_next, c_new, gates)
        return c_new, (gates, c, c_new)

    def lstm_backward(self, dh_out, dh, dc, cache, da, rows):
        gates, c_prev, c = cache
        dc_prev = array_module(c).empty_like(c)
        has_dc = dc is not None
        launch(_lstm_backward, *_grid(*c.shape), dh_out, dh, dc if has_dc else dh, has_dc,
               gates, c_prev, c, da, rows, dc_prev)
        return dc_prev

    def gate_forward(self, hW, A, gate_b, context, beta, x):
        launch(_gate_forward, *_grid(*context.shape), hW, A, gate_b, context, beta, x)

    def gate_backward(self, dx, context, beta, rows, A, dcontext):
        launch(_gate_backward, *_grid(*context.shape), dx, context, beta, rows, A, dcontext)


_PASSES = _CudaPasses()


def decoder_forward_v2(feats, proj, h, c, words, params, config):
    """feats[B, L, D], proj[B, L, A], h[B, H], c[B, H] (RNN: [B, 0]), words[B, T, E]
    -> hs[B, T, H], alphas[B, T, L], cache (as rawcap.decoder.decoder_forward)."""
    return decoder_steps.forward(_PASSES, feats, proj, h, c, words, params, config)


def decoder_backward_v2(dhs, dalphas, cache):
    """dhs[B, T, H], dalphas[B, T, L] or None -> dfeats, dproj, dh0, dc0, dwords[B, T, E],
    {name: gradient} (as rawcap.decoder.decoder_backward)."""
    return decoder_steps.backward(dhs, dalphas, cache)
