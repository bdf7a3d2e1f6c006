"""Softmax cross-entropy (rawcap.layers.loss.softmax_cross_entropy_*) as one fused kernel.

Version 0 makes about ten passes over the [N, T, V] logits (max, subtract, exp, sum, log, exp
again for p; p - onehot and the mask in the backward) with [N, T, V] temporaries, and the
vocabulary makes these the largest arrays of a training step.

version 1   forward and backward in one kernel: one block per row (n, t), its threads striding
            over the row's V logits in three sweeps: the row maximum m, then the sum s of
            exp(logit - m) (each a tree reduction in shared memory, kernels/reduce.py),
            then dlogits = (exp(logit - m) / s - onehot(target)) * mask[n, t] / count, each
            thread writing the entries it read. The thread that meets the target writes the
            row's loss, log s + m - logits[target]. The probabilities are never stored. A masked
            row writes zeros and returns. count = max(sum(mask), 1) and the sum of the row
            losses (an [N*T] float64 array) are left to the array library.
            overwrite_logits=True writes dlogits over the logits themselves (each entry after
            its last read): a step needs no second [N, T, V] array.
            The backward returns the cached dlogits times dloss (the cached array itself when
            dloss == 1).
            Arithmetic is in float64 registers, stored in the arrays' dtype.
"""
import math

from numba import cuda, float64

from rawcap.backend import array_module
from rawcap.layers.loss import check_inputs

from .launch import THREADS, launch
from .reduce import block_max, block_sum, block_threads

DEFAULT = 1


@cuda.jit
def _forward(logits, targets, mask, inv_count, dlogits, row_loss):
    """Block r, row (n, t) = divmod(r, T): dlogits[n, t, :] and row_loss[r] (module docstring)."""
    row, first, stride = cuda.blockIdx.x, cuda.threadIdx.x, cuda.blockDim.x
    T, V = logits.shape[1], logits.shape[2]
    n, t = row // T, row % T
    buffer = cuda.shared.array(THREADS, float64)
    if mask[n, t] == 0:                         # the whole block leaves, before any barrier
        for v in range(first, V, stride):
            dlogits[n, t, v] = 0.0
        return

    row_max = -math.inf
    for v in range(first, V, stride):
        row_max = max(row_max, logits[n, t, v])
    row_max = block_max(buffer, row_max)

    total = 0.0
    for v in range(first, V, stride):
        total += math.exp(logits[n, t, v] - row_max)
    total = block_sum(buffer, total)

    target = targets[n, t]
    for v in range(first, V, stride):
        logit = logits[n, t, v]
        grad = math.exp(logit - row_max) / total
        if v == target:
            row_loss[row] = math.log(total) + row_max - logit
            grad -= 1.0
        dlogits[n, t, v] = grad * inv_count


def softmax_cross_entropy_forward_v1(logits, targets, mask, overwrite_logits=False):
    """logits[N, T, V], targets[N, T], mask[N, T] -> loss (0-d), cache, with the layer's checks.

    overwrite_logits=True: dlogits are written over the logits (over a contiguous copy of them
    if they are not contiguous).
    """
    mask = check_inputs("softmax_cross_entropy_forward", logits, targets, mask)
    xp = array_module(logits)
    logits, targets = xp.ascontiguousarray(logits), xp.ascontiguousarray(targets)
    N, T, V = logits.shape
    count = max(float(mask.sum()), 1.0)
    dlogits = logits if overwrite_logits else xp.empty_like(logits)
    row_loss = xp.zeros(N * T, dtype=xp.float64)
    launch(_forward, N * T, block_threads(V), logits, targets, mask, 1.0 / count, dlogits, row_loss)
    return xp.asarray(row_loss.sum() / count, dtype=logits.dtype), dlogits


def softmax_cross_entropy_backward_v1(dloss, cache):
    """dloss (a number or 0-d array) -> dlogits[N, T, V] (computed by the forward) times dloss."""
    dlogits = cache
    if dloss == 1:
        return dlogits
    return dlogits * array_module(dlogits).asarray(dloss, dtype=dlogits.dtype)
