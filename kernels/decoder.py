"""The decoder's T steps on a GPU (rawcap.model.decoder_*): the same sums as version 0, grouped
into fewer, larger products and fewer launches (kernels/decoder_steps.py says how).

Version 0 runs decode_step T times: per step about 30 launches forward and back (four GEMMs
each way, the attention kernel, a dozen array operations for the gate's sigmoid and the
concatenation, each weight gradient's product and its addition into the total).

version 2   kernels/decoder_steps.py with attention version 2's warp kernels (kernels/
            attention_warp.py; the backward adds each step's dproj into one buffer and leaves
            dfeats) and two kernels for the f_beta gate, one thread per (n, d):
            forward: beta = sigmoid(pre + b), x = beta * context;
            backward: dpre = dx * context * beta (1 - beta), dcontext = dx * beta.
            Arithmetic in the arrays' dtype. Unmeasured on a GPU (none has run it yet).
"""
import math

from numba import cuda

from rawcap.backend import array_module

from . import attention_warp, decoder_steps
from .launch import blocks_for, launch

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

    def gate_forward(self, hW, A, gate_b, context, beta, x):
        launch(_gate_forward, *_grid(*context.shape), hW, A, gate_b, context, beta, x)

    def gate_backward(self, dx, context, beta, rows, A, dcontext):
        launch(_gate_backward, *_grid(*context.shape), dx, context, beta, rows, A, dcontext)


_PASSES = _CudaPasses()


def decoder_forward_v2(feats, proj, h, c, words, params, config):
    """feats[B, L, D], proj[B, L, A], h[B, H], c[B, H] (RNN: [B, 0]), words[B, T, E]
    -> hs[B, T, H], alphas[B, T, L], cache (as rawcap.model.decoder_forward)."""
    return decoder_steps.forward(_PASSES, feats, proj, h, c, words, params, config)


def decoder_backward_v2(dhs, dalphas, cache):
    """dhs[B, T, H], dalphas[B, T, L] or None -> dfeats, dproj, dh0, dc0, dwords[B, T, E],
    {name: gradient} (as rawcap.model.decoder_backward)."""
    return decoder_steps.backward(dhs, dalphas, cache)
