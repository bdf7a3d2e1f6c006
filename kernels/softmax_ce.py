"""Softmax cross-entropy (rawcap.layers.loss.softmax_cross_entropy_*) as one fused kernel.

Version 0 makes about ten passes over the [N, T, V] logits (max, subtract, exp, sum, log, exp
again for p; p - onehot and the mask in the backward) with [N, T, V] temporaries, and the
vocabulary makes these the largest arrays of a training step.

version 1   forward and backward in one kernel: one block per row (n, t), its threads striding
            over the row's V logits in three sweeps: the row maximum m (a tree reduction in
            shared memory, kernels/reduce.py); then each exp(logit - m), computed once and
            stored in dlogits, and their sum s (another tree reduction); then
            dlogits = (exp(logit - m) * (1/s) - onehot(target)) * mask[n, t] / count, each
            thread rewriting the entries it wrote. The thread that meets the target keeps its
            logit and writes the row's loss, log s + m - logits[target]. The probabilities are
            never stored apart. A masked row writes zeros and returns. 1 / count =
            1 / max(sum(mask), 1) and the sum of the row losses ([N*T]) are left to the array
            library, and stay on the device: no host synchronisation.
            The ids and the mask are not checked on the device (that would synchronise): the
            caller checks the host batch (rawcap.data.batches.check_batch). A target outside
            [0, V) or a mask entry other than 0 and 1 in an unmasked row makes the loss NaN.
            overwrite_logits=True writes dlogits over the logits themselves (each entry after
            its last read): a step needs no second [N, T, V] array.
            The backward returns the cached dlogits times dloss (the cached array itself when
            dloss == 1).
            Arithmetic is in the arrays' dtype: a row's sum is a tree of at most V / 128 terms per
            thread, so float32 loses no more than version 0's.
"""
import math

from numba import cuda

from rawcap.backend import array_module
from rawcap.layers.checks import Dims

from .launch import THREADS, launch
from .reduce import block_max, block_sum, block_threads

DEFAULT = 1


@cuda.jit
def _forward(logits, targets, mask, inv_count, dlogits, row_loss):
    """Block r, row (n, t) = divmod(r, T): dlogits[n, t, :] and row_loss[r] (module docstring)."""
    row, first, stride = cuda.blockIdx.x, cuda.threadIdx.x, cuda.blockDim.x
    T, V = logits.shape[1], logits.shape[2]
    n, t = row // T, row % T
    zero, one = logits.dtype.type(0), logits.dtype.type(1)
    buffer = cuda.shared.array(THREADS, logits.dtype)
    if mask[n, t] == 0:                         # the whole block leaves, before any barrier
        for v in range(first, V, stride):
            dlogits[n, t, v] = zero
        if first == 0:
            row_loss[row] = zero
        return

    row_max = logits.dtype.type(-math.inf)
    for v in range(first, V, stride):
        if logits[n, t, v] > row_max:
            row_max = logits[n, t, v]
    row_max = block_max(buffer, row_max)

    target = targets[n, t]
    target_logit = logits.dtype.type(math.nan)  # stays NaN unless this thread meets the target
    total = zero
    for v in range(first, V, stride):
        logit = logits[n, t, v]
        if v == target:
            target_logit = logit
        exp_logit = math.exp(logit - row_max)
        dlogits[n, t, v] = exp_logit            # over the logit itself when overwriting: read above
        total += exp_logit
    total = block_sum(buffer, total)

    inv_total, scale = one / total, inv_count[0]
    for v in range(first, V, stride):
        grad = dlogits[n, t, v] * inv_total
        if v == target:
            grad -= one
        dlogits[n, t, v] = grad * scale
    if not (0 <= target < V and mask[n, t] == 1):
        if first == 0:
            row_loss[row] = math.nan            # a bad batch: the loss says so, no sync here
    elif target % stride == first:
        row_loss[row] = math.log(total) + row_max - target_logit


def softmax_cross_entropy_forward_v1(logits, targets, mask, overwrite_logits=False):
    """logits[N, T, V], targets[N, T], mask[N, T] -> loss (0-d), cache, with the layer's shape
    and dtype checks (the values are the caller's: module docstring).

    overwrite_logits=True: dlogits are written over the logits (over a contiguous copy of them
    if they are not contiguous).
    """
    dims = Dims("softmax_cross_entropy_forward")
    dims.check("logits", logits, "N T V")
    dims.check("targets", targets, "N T", kind="int")
    dims.check("mask", mask, "N T", kind="mask")
    xp = array_module(logits)
    logits, targets, mask = (xp.ascontiguousarray(a) for a in (logits, targets, mask))
    N, T, V = logits.shape
    inv_count = 1 / xp.maximum(mask.sum(dtype=logits.dtype), 1)           # 0-d, on the device
    dlogits = logits if overwrite_logits else xp.empty_like(logits)
    row_loss = xp.empty(N * T, dtype=logits.dtype)
    launch(_forward, N * T, block_threads(V), logits, targets, mask, inv_count.reshape(1),
           dlogits, row_loss)
    return xp.asarray(row_loss.sum() * inv_count, dtype=logits.dtype), dlogits


def softmax_cross_entropy_backward_v1(dloss, cache):
    """dloss (a number or 0-d array) -> dlogits[N, T, V] (computed by the forward) times dloss."""
    dlogits = cache
    if isinstance(dloss, (int, float)) and dloss == 1:
        return dlogits
    return dlogits * array_module(dlogits).asarray(dloss, dtype=dlogits.dtype)
