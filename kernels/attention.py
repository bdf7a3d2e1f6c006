"""Additive soft attention (rawcap.layers.attention.attention_*) as kernels around the GEMMs.

The GEMMs stay on the array library (cuBLAS on a GPU): hW = h @ Wh in the forward, dh = du_sum
@ Wh.T and dWh = h.T @ du_sum in the backward. One kernel each way does the rest, which the
layer does in about a dozen array operations with [N, L, A] temporaries.

version 1   forward: one block per caption n, three sweeps.
            threads over l: z[n, l, :] = tanh(proj[n, l, :] + hW[n, :]), kept for the backward
              as the layer keeps it, and the score e[n, l] = v . z[n, l, :];
            the softmax over L: the maximum, then the sum of exp(e - max), each a tree reduction
              in shared memory (kernels/reduce.py), writing alpha[n, :];
            threads over d: context[n, d] = sum_l alpha[n, l] feats[n, l, d].
            backward: one block per n, three sweeps.
            threads over l: dalpha_total = feats[n, l] . dcontext[n] (+ dalpha[n, l]), the block's
              sum S = sum_l alpha dalpha_total, then de[n, l] = alpha (dalpha_total - S);
            threads over a: dproj[n, l, a] = du = de[n, l] v[a] (1 - z^2) for every l, with
              du_sum[n, a] = sum_l du and dv_rows[n, a] = sum_l de z added up in registers;
              dv = the sum of dv_rows over n;
            threads over d: dfeats[n, l, d] = alpha[n, l] dcontext[n, d].
            In the sweeps over l each thread reads a row of proj or feats (a warp's reads are
            A or D entries apart); the sweeps over a and d read consecutive entries.
            A block has the smallest power of two >= max(L, A, D) threads, at most 128; longer
            axes are strided, so any L, A and D work. Each sum runs in a fixed order, with no
            atomics: the results are deterministic. The cache is the layer's, so either
            version's backward takes either forward's cache.
            Arithmetic is in the arrays' dtype; the scores e and de live in [N, L] scratch
            arrays. The softmax computes each exp once and multiplies by 1 / total.
version 2   the same sweeps with a warp per location: lanes over A (forward) and over D
            (backward's dalpha_total) with a warp-shuffle sum, threads over (l, a) for dproj
            and over (l, d) for dfeats, so every sweep over a row reads and writes it
            coalesced; blocks of up to 256 threads. Kernels and layout in
            kernels/attention_warp.py (a shared-memory stand-in for the shuffles under the
            simulator). The default on a GPU, on paper and unmeasured: version 1's sweep over l
            makes each warp read proj in 32 transactions for 32 numbers, with 64 threads per
            caption at rawcap.bench's default shapes (L = A = D = 64); version 2 runs 256, each
            warp reading consecutive entries.
"""
import math

from numba import cuda

from rawcap.backend import array_module
from rawcap.layers.attention import check_attention_inputs
from rawcap.layers.checks import check_grad

from . import attention_warp
from .launch import THREADS, launch
from .reduce import block_max, block_sum, block_threads

DEFAULT = 2             # unmeasured: chosen on paper (version 2's docstring), not by a GPU run


@cuda.jit
def _forward(feats, proj, hW, v, z, scores, alpha, context):
    """Block n: z[n], alpha[n] and context[n] (module docstring); scores[n] is scratch."""
    n, first, stride = cuda.blockIdx.x, cuda.threadIdx.x, cuda.blockDim.x
    _, L, D = feats.shape
    A = v.shape[0]
    zero, one = feats.dtype.type(0), feats.dtype.type(1)
    buffer = cuda.shared.array(THREADS, feats.dtype)

    best = feats.dtype.type(-math.inf)
    for l in range(first, L, stride):
        e = zero
        for a in range(A):
            z_la = math.tanh(proj[n, l, a] + hW[n, a])
            z[n, l, a] = z_la
            e += v[a] * z_la
        scores[n, l] = e
        if e > best:
            best = e
    best = block_max(buffer, best)

    total = zero
    for l in range(first, L, stride):
        scores[n, l] = math.exp(scores[n, l] - best)
        total += scores[n, l]
    inv_total = one / block_sum(buffer, total)
    for l in range(first, L, stride):
        alpha[n, l] = scores[n, l] * inv_total
    cuda.syncthreads()                          # every alpha[n, l] written before it is read

    for d in range(first, D, stride):
        weighted = zero
        for l in range(L):
            weighted += alpha[n, l] * feats[n, l, d]
        context[n, d] = weighted


@cuda.jit
def _backward(dcontext, dalpha, has_dalpha, feats, v, z, alpha, de, dfeats, dproj, du_sum, dv_rows,
              accumulate):
    """Block n: de[n] (scratch), dfeats[n], dproj[n], du_sum[n] and dv_rows[n] (module docstring).
    accumulate (the decoder's steps, kernels/decoder_steps.py): add into dproj and dv_rows,
    leave dfeats."""
    n, first, stride = cuda.blockIdx.x, cuda.threadIdx.x, cuda.blockDim.x
    _, L, D = feats.shape
    A = v.shape[0]
    zero, one = feats.dtype.type(0), feats.dtype.type(1)
    buffer = cuda.shared.array(THREADS, feats.dtype)

    weighted = zero
    for l in range(first, L, stride):
        total = zero
        for d in range(D):
            total += feats[n, l, d] * dcontext[n, d]
        if has_dalpha:
            total += dalpha[n, l]
        de[n, l] = total                        # dalpha_total until S is known
        weighted += alpha[n, l] * total
    weighted = block_sum(buffer, weighted)
    for l in range(first, L, stride):
        de[n, l] = alpha[n, l] * (de[n, l] - weighted)
    cuda.syncthreads()                          # every de[n, l] written before it is read

    for a in range(first, A, stride):
        du_total = zero
        dv_total = zero
        for l in range(L):
            z_la = z[n, l, a]
            du = de[n, l] * v[a] * (one - z_la * z_la)
            if accumulate:
                dproj[n, l, a] += du
            else:
                dproj[n, l, a] = du
            du_total += du
            dv_total += de[n, l] * z_la
        du_sum[n, a] = du_total
        if accumulate:
            dv_rows[n, a] += dv_total
        else:
            dv_rows[n, a] = dv_total

    if accumulate:
        return
    for d in range(first, D, stride):
        for l in range(L):
            dfeats[n, l, d] = alpha[n, l] * dcontext[n, d]


def _threads(feats, v):
    """Threads per block: enough for the longest of the axes L, D and A (module docstring)."""
    return block_threads(max(feats.shape[1], feats.shape[2], v.shape[0]))


def _run_forward(kernel, threads, feats, proj, h, Wh, v):
    """The host side of every version's forward: checks, outputs, hW = h @ Wh, one launch."""
    check_attention_inputs(feats, proj, h, Wh, v)
    xp = array_module(feats)
    feats, proj, v = (xp.ascontiguousarray(a) for a in (feats, proj, v))
    N, L, D = feats.shape
    z = xp.empty_like(proj)
    scores = xp.empty((N, L), dtype=feats.dtype)
    alpha, context = xp.empty((N, L), dtype=feats.dtype), xp.empty((N, D), dtype=feats.dtype)
    launch(kernel, N, threads, feats, proj, h @ Wh, v, z, scores, alpha, context)
    return context, alpha, (feats, h, Wh, v, z, alpha)


def _run_backward(kernel, threads, dcontext, dalpha, cache):
    """The host side of every version's backward: checks, outputs, one launch, the GEMMs."""
    feats, h, Wh, v, z, alpha = cache
    check_grad("attention_backward", "dcontext", dcontext, (feats.shape[0], feats.shape[2]))
    if dalpha is not None:
        check_grad("attention_backward", "dalpha", dalpha, alpha.shape)
    xp = array_module(dcontext)
    has_dalpha = dalpha is not None
    dcontext = xp.ascontiguousarray(dcontext)         # the model hands a slice of the LSTM's dx
    dalpha = xp.ascontiguousarray(dalpha) if has_dalpha else alpha     # alpha: a stand-in, not read
    N, A = feats.shape[0], v.shape[0]
    de = xp.empty(alpha.shape, dtype=feats.dtype)
    dfeats, dproj = xp.empty_like(feats), xp.empty_like(z)
    du_sum, dv_rows = xp.empty((N, A), dtype=z.dtype), xp.empty((N, A), dtype=z.dtype)
    launch(kernel, N, threads, dcontext, dalpha, has_dalpha, feats, v, z, alpha,
           de, dfeats, dproj, du_sum, dv_rows, False)
    return dfeats, dproj, du_sum @ Wh.T, h.T @ du_sum, dv_rows.sum(axis=0)


def attention_forward_v1(feats, proj, h, Wh, v):
    """feats[N, L, D], proj[N, L, A], h[N, H], Wh[H, A], v[A] -> context[N, D], alpha[N, L], cache."""
    return _run_forward(_forward, _threads(feats, v), feats, proj, h, Wh, v)


def attention_backward_v1(dcontext, dalpha, cache):
    """dcontext[N, D], dalpha[N, L] or None -> dfeats, dproj, dh, dWh, dv (equations in the layer)."""
    return _run_backward(_backward, _threads(cache[0], cache[3]), dcontext, dalpha, cache)


def attention_forward_v2(feats, proj, h, Wh, v):
    """As version 1, a warp per location (kernels/attention_warp.py)."""
    return _run_forward(attention_warp.forward, attention_warp.threads(feats.shape[1]),
                        feats, proj, h, Wh, v)


def attention_backward_v2(dcontext, dalpha, cache):
    """As version 1, a warp per location and threads over (l, a) (kernels/attention_warp.py)."""
    return _run_backward(attention_warp.backward, attention_warp.threads(cache[0].shape[1]),
                         dcontext, dalpha, cache)
