"""Soft attention on the CPU (rawcap.layers.attention.attention_*): NumPy for the tanh, one
parallel Numba pass per image for everything after it.

Version 0 builds u = proj + (h @ Wh)[:, None, :], then z = tanh(u), then e = z @ v and the
context with stacked matrix products over [N, L, A] and [N, L, D], each a separate pass; its
backward makes [N, L, A] temporaries for (1 - z^2), v * (1 - z^2) and du.

version 3   forward: after the GEMM h @ Wh, one parallel loop over n makes z = tanh(proj + h @ Wh),
            the scores e = z @ v, their softmax and the context in a single sweep over proj[n]
            and feats[n]. In float32 the tanh is a rational approximation in plain arithmetic
            (tanh_float32 of kernels/cpu/fastmath.py, within 3e-7), so the loop vectorises: a
            libm tanh per element does not, and made a Numba loop slower than NumPy's
            vectorised tanh. float64 uses the exact tanh (the gradient checks run in float64).
            backward: one parallel loop over n makes dalpha_total, the softmax backward de,
            dfeats, dproj = de * v * (1 - z^2), its sum over l and each row's share of dv in
            one sweep over z[n] and feats[n], with no temporaries; dh and dWh are then two
            small GEMMs on sum_l du. Sums run in float64.
"""
import numpy as np
from numba import njit, prange

from rawcap.layers.attention import check_attention_inputs
from rawcap.layers.checks import check_grad

from .fastmath import tanh

DEFAULT = 3


@njit(parallel=True, cache=True, fastmath=True, error_model="numpy")
def _forward(proj, hw, v, feats, z, alpha, context):
    """Per n: z[n] = tanh(proj[n] + hw[n, :A]), alpha[n] = softmax_l(z[n] @ v),
    context[n] = alpha[n] @ feats[n] (hw may have more columns: the decoder's)."""
    N, L, A = z.shape
    D = feats.shape[2]
    for n in prange(N):
        top = -np.inf
        for l in range(L):
            e = 0.0
            for a in range(A):
                z[n, l, a] = tanh(proj[n, l, a] + hw[n, a])
                e += z[n, l, a] * v[a]
            alpha[n, l] = e
            top = max(top, e)
        total = 0.0
        for l in range(L):
            alpha[n, l] = np.exp(alpha[n, l] - top)
            total += alpha[n, l]
        acc = np.zeros(D)
        for l in range(L):
            alpha[n, l] /= total
            for d in range(D):
                acc[d] += alpha[n, l] * feats[n, l, d]
        context[n] = acc


@njit(parallel=True, cache=True, fastmath=True, error_model="numpy")
def _backward(feats, z, alpha, v, dcontext, dalpha, dfeats, dproj, du_sum, dv_rows, accumulate):
    """Per n: de = softmax backward of feats[n] @ dcontext[n] + dalpha[n]; dfeats, dproj,
    du_sum[n, :A] = sum_l dproj[n, l] and dv_rows[n] = sum_l de[n, l] * z[n, l] (du_sum may have
    more columns: the decoder's).

    accumulate (the decoder's T steps, kernels/cpu/decoder.py): add this step's dproj and
    dv_rows into the arrays, and leave dfeats (the decoder forms sum_t alpha_t dcontext_t in
    one product after the loop)."""
    N, L, A = z.shape
    D = feats.shape[2]
    for n in prange(N):
        de = np.empty(L)
        weighted = 0.0
        for l in range(L):
            s = dalpha[n, l]
            for d in range(D):
                s += feats[n, l, d] * dcontext[n, d]
            de[l] = s
            weighted += alpha[n, l] * s
        du_row = np.zeros(A)
        dv_row = np.zeros(A)
        for l in range(L):
            de_l = alpha[n, l] * (de[l] - weighted)
            if not accumulate:
                for d in range(D):
                    dfeats[n, l, d] = alpha[n, l] * dcontext[n, d]
            for a in range(A):
                zz = z[n, l, a]
                dv_row[a] += de_l * zz
                du = de_l * v[a] * (1.0 - zz * zz)
                if accumulate:
                    dproj[n, l, a] += du
                else:
                    dproj[n, l, a] = du
                du_row[a] += du
        du_sum[n, :A] = du_row
        if accumulate:
            dv_rows[n] += dv_row
        else:
            dv_rows[n] = dv_row


def attention_forward_v3(feats, proj, h, Wh, v):
    """feats[N, L, D], proj[N, L, A], h[N, H], Wh[H, A], v[A] -> context[N, D], alpha[N, L], cache."""
    check_attention_inputs(feats, proj, h, Wh, v)
    N, L, D = feats.shape
    feats = np.ascontiguousarray(feats)
    z = np.empty(proj.shape, dtype=feats.dtype)
    alpha = np.empty((N, L), dtype=feats.dtype)
    context = np.empty((N, D), dtype=feats.dtype)
    _forward(np.ascontiguousarray(proj), h @ Wh, np.ascontiguousarray(v), feats, z, alpha, context)
    return context, alpha, (feats, h, Wh, v, z, alpha)


def attention_backward_v3(dcontext, dalpha, cache):
    """dcontext[N, D], dalpha[N, L] or None -> dfeats, dproj, dh, dWh, dv (as the layer)."""
    feats, h, Wh, v, z, alpha = cache
    N, L, D = feats.shape
    check_grad("attention_backward", "dcontext", dcontext, (N, D))
    if dalpha is None:
        dalpha = np.zeros((N, L), dtype=alpha.dtype)
    check_grad("attention_backward", "dalpha", dalpha, alpha.shape)
    dtype = dcontext.dtype
    dfeats = np.empty((N, L, D), dtype=dtype)
    dproj = np.empty(z.shape, dtype=dtype)
    du_sum = np.empty((N, z.shape[2]), dtype=dtype)
    dv_rows = np.empty((N, z.shape[2]), dtype=dtype)
    _backward(feats, z, alpha, np.ascontiguousarray(v), np.ascontiguousarray(dcontext),
              np.ascontiguousarray(dalpha), dfeats, dproj, du_sum, dv_rows, False)
    return dfeats, dproj, du_sum @ Wh.T, h.T @ du_sum, dv_rows.sum(axis=0)
