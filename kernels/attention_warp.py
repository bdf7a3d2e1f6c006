"""The kernels of attention version 2 (kernels/attention.py runs them): a warp per location.

Version 1 gives each thread a location l and has it walk the row proj[n, l, :] alone: a warp's
32 reads are A entries apart (32 memory transactions for 32 numbers), and a block has at most
L busy threads. Here a warp takes a location and its 32 lanes take the row together.

forward     one block per caption n, W warps (W = the smallest power of two >= L, at most 8):
            warps over l, lanes over a: lane a computes z[n, l, a] = tanh(proj[n, l, a] + hW[n, a])
              for a = lane, lane + 32, ... and adds up v[a] z; the warp's sum of its lanes
              (`warp_sum`, five halving steps) is the score e[n, l]. A warp reads 32
              consecutive entries of proj and writes 32 of z: one transaction each.
            threads over l: the softmax over L as in version 1 (maximum, exp once, times 1/total).
            threads over d: context[n, d] = sum_l alpha[n, l] feats[n, l, d], as in version 1.
backward    one block per n, W warps:
            warps over l, lanes over d: dalpha_total[n, l] = feats[n, l, :] . dcontext[n]
              (`warp_sum`) (+ dalpha), and their sum S = sum_l alpha dalpha_total;
            threads over l: de[n, l] = alpha (dalpha_total - S);
            threads over (l, a), lanes over a and warps over l: dproj[n, l, a] = de v[a] (1 - z^2),
              written coalesced; each thread adds up du and de z over its warp's l, and the W
              partial sums of each a are added in warp order in shared memory: du_sum[n, a] and
              dv_rows[n, a];
            threads over (l, d): dfeats[n, l, d] = alpha[n, l] dcontext[n, d], coalesced.
Every sum runs in a fixed order, with no atomics: deterministic. Arithmetic in the arrays' dtype.

`warp_sum` adds with warp shuffles (shfl_down) on a GPU. Numba's CUDA simulator has no warp
shuffles, so there it is a tree in shared memory over the warp's 32 lanes, with the same
halving steps in the same order (so the same float results); the choice is made once, when
this module is imported (kernels.launch.simulator()). The host code is the same either way.
Every thread of the block calls warp_sum (the loops over l run the same number of times in
every warp), since the shared-memory tree holds block barriers.
"""
import math

from numba import cuda

from .launch import simulator
from .reduce import block_max, block_sum

WARP = 32
MAX_WARPS = 8
MAX_THREADS = WARP * MAX_WARPS
FULL_MASK = 0xFFFFFFFF


def threads(L):
    """Threads per block: a warp per location, W = the smallest power of two >= L, at most 8."""
    return WARP * min(MAX_WARPS, 1 << max(L - 1, 0).bit_length())


@cuda.jit(device=True)
def _warp_sum_shuffle(buffer, value):
    """The sum of `value` over the warp's 32 lanes, to every lane (buffer unused)."""
    offset = WARP // 2
    while offset > 0:                           # lane k adds lane k + offset's partial sum
        value += cuda.shfl_down_sync(FULL_MASK, value, offset)
        offset //= 2
    return cuda.shfl_sync(FULL_MASK, value, 0)


@cuda.jit(device=True)
def _warp_sum_shared(buffer, value):
    """As _warp_sum_shuffle, through `buffer` (blockDim.x shared entries): the simulator's."""
    k = cuda.threadIdx.x
    lane = k % WARP
    cuda.syncthreads()                          # the buffer's last use is over
    buffer[k] = value
    offset = WARP // 2
    while offset > 0:
        cuda.syncthreads()
        if lane < offset:
            buffer[k] += buffer[k + offset]
        offset //= 2
    cuda.syncthreads()
    return buffer[k - lane]


warp_sum = _warp_sum_shared if simulator() else _warp_sum_shuffle


@cuda.jit
def forward(feats, proj, hW, v, z, scores, alpha, context):
    """Block n: z[n], alpha[n] and context[n] (module docstring); scores[n] is scratch."""
    n, k, block = cuda.blockIdx.x, cuda.threadIdx.x, cuda.blockDim.x
    lane, warp, warps = k % WARP, k // WARP, block // WARP
    _, L, D = feats.shape
    A = v.shape[0]
    zero, one = feats.dtype.type(0), feats.dtype.type(1)
    buffer = cuda.shared.array(MAX_THREADS, feats.dtype)

    for first_l in range(0, L, warps):
        l = first_l + warp
        partial = zero
        if l < L:
            for a in range(lane, A, WARP):
                z_la = math.tanh(proj[n, l, a] + hW[n, a])
                z[n, l, a] = z_la
                partial += v[a] * z_la
        e = warp_sum(buffer, partial)
        if l < L and lane == 0:
            scores[n, l] = e
    cuda.syncthreads()                          # every score written before it is read

    best = feats.dtype.type(-math.inf)
    for l in range(k, L, block):
        if scores[n, l] > best:
            best = scores[n, l]
    best = block_max(buffer, best)
    total = zero
    for l in range(k, L, block):
        scores[n, l] = math.exp(scores[n, l] - best)
        total += scores[n, l]
    inv_total = one / block_sum(buffer, total)
    for l in range(k, L, block):
        alpha[n, l] = scores[n, l] * inv_total
    cuda.syncthreads()                          # every alpha[n, l] written before it is read

    for d in range(k, D, block):
        weighted = zero
        for l in range(L):
            weighted += alpha[n, l] * feats[n, l, d]
        context[n, d] = weighted


@cuda.jit
def backward(dcontext, dalpha, has_dalpha, feats, v, z, alpha, de, dfeats, dproj, du_sum, dv_rows,
             accumulate):
    """Block n: de[n] (scratch), dfeats[n], dproj[n], du_sum[n] and dv_rows[n] (module docstring).
    accumulate (the decoder's steps, kernels/decoder_steps.py): add into dproj and dv_rows,
    leave dfeats."""
    n, k, block = cuda.blockIdx.x, cuda.threadIdx.x, cuda.blockDim.x
    lane, warp, warps = k % WARP, k // WARP, block // WARP
    _, L, D = feats.shape
    A = v.shape[0]
    zero, one = feats.dtype.type(0), feats.dtype.type(1)
    buffer = cuda.shared.array(MAX_THREADS, feats.dtype)
    dv_buffer = cuda.shared.array(MAX_THREADS, feats.dtype)

    weighted = zero
    for first_l in range(0, L, warps):
        l = first_l + warp
        partial = zero
        if l < L:
            for d in range(lane, D, WARP):
                partial += feats[n, l, d] * dcontext[n, d]
        total = warp_sum(buffer, partial)
        if l < L and lane == 0:
            if has_dalpha:
                total += dalpha[n, l]
            de[n, l] = total                    # dalpha_total until S is known
            weighted += alpha[n, l] * total
    weighted = block_sum(buffer, weighted)
    for l in range(k, L, block):
        de[n, l] = alpha[n, l] * (de[n, l] - weighted)
    cuda.syncthreads()                          # every de[n, l] written before it is read

    for first_a in range(0, A, WARP):
        a = first_a + lane
        du_part, dv_part = zero, zero
        if a < A:
            for l in range(warp, L, warps):
                z_la = z[n, l, a]
                du = de[n, l] * v[a] * (one - z_la * z_la)
                if accumulate:
                    dproj[n, l, a] += du
                else:
                    dproj[n, l, a] = du
                du_part += du
                dv_part += de[n, l] * z_la
        cuda.syncthreads()                      # the buffers' last use is over
        buffer[k] = du_part
        dv_buffer[k] = dv_part
        cuda.syncthreads()
        if warp == 0 and a < A:
            du_total, dv_total = zero, zero
            for w in range(warps):
                du_total += buffer[w * WARP + lane]
                dv_total += dv_buffer[w * WARP + lane]
            du_sum[n, a] = du_total
            if accumulate:
                dv_rows[n, a] += dv_total
            else:
                dv_rows[n, a] = dv_total

    if accumulate:
        return
    for e in range(k, L * D, block):
        l, d = e // D, e % D
        dfeats[n, l, d] = alpha[n, l] * dcontext[n, d]
