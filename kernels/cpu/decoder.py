"""The decoder's T steps on the CPU (rawcap.decoder.decoder_*): the same sums as version 0,
grouped into fewer, larger products (kernels/decoder_steps.py says how).

version 1   kernels/decoder_steps.py with attention version 3's Numba passes (kernels/cpu/
            attention.py): the forward pass as it is; the backward pass adding each step's
            dproj into one buffer and leaving dfeats, which the grouped backward forms in one
            batched product after the loop. The gate is NumPy.
"""
import numpy as np

from kernels import decoder_steps

from .attention import _backward, _forward

DEFAULT = 1


class _CpuPasses(decoder_steps.Passes):
    def attention_forward(self, feats, proj, hW, v, z, alpha, context):
        _forward(proj, hW, v, feats, z, alpha, context)

    def attention_backward(self, feats, z, alpha, v, dcontext, dalpha, dproj, rows, dv_rows):
        no_dfeats = np.empty((0,) + feats.shape[1:], feats.dtype)      # not written
        _backward(feats, z, alpha, v, dcontext, dalpha, no_dfeats, dproj, rows, dv_rows, True)


_PASSES = _CpuPasses()


def decoder_forward_v1(feats, proj, h, c, words, params, config):
    """feats[B, L, D], proj[B, L, A], h[B, H], c[B, H] (RNN: [B, 0]), words[B, T, E]
    -> hs[B, T, H], alphas[B, T, L], cache (as rawcap.decoder.decoder_forward)."""
    return decoder_steps.forward(_PASSES, feats, proj, h, c, words, params, config)


def decoder_backward_v1(dhs, dalphas, cache):
    """dhs[B, T, H], dalphas[B, T, L] or None -> dfeats, dproj, dh0, dc0, dwords[B, T, E],
    {name: gradient} (as rawcap.decoder.decoder_backward)."""
    return decoder_steps.backward(dhs, dalphas, cache)
