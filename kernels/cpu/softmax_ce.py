"""Softmax cross-entropy on the CPU (rawcap.layers.loss.softmax_cross_entropy_*): parallel
Numba loops over the rows (n, t).

Version 0 makes about ten passes over the [N, T, V] logits with [N, T, V] temporaries, and the
vocabulary makes these the largest arrays of a training step.

version 2   the forward computes the backward too, in three passes over [N, T, V], writing
            dlogits over what it read: a parallel loop over rows writes logit - m (m the row's
            maximum) and keeps the target's shifted logit; NumPy exponentiates in place (its
            exp is vectorised, a libm exp per element in a Numba loop is not); a second
            parallel loop sums each row, s, and scales it to dlogits = (exp(logit - m) / s -
            onehot(target)) * mask / count; the row's loss is log s - (logit[target] - m).
            A masked row gives zeros. overwrite_logits=True uses the logits' own buffer; the
            backward returns dlogits times dloss (the cached array itself when dloss == 1),
            as CUDA version 1 does. Row sums run in float64.
version 3   as version 2, in one parallel loop over the rows: each row's maximum, then
            exp(logit - m) written to dlogits and summed, then the scaling, all while the row
            (2541 floats at the recipe's vocabulary) is in the cache, so the [N, T, V] array
            goes through memory once instead of three times. In float32 the exp is
            exp_float32 of kernels/cpu/fastmath.py (within 2 ulp), which vectorises; NumPy's
            exp was most of version 2's time (at [160, 20, 2541]: shift 18 ms, exp 77 ms,
            normalise 12 ms on the loaded machine). float64 uses the exact exp. The backward
            is version 2's.
"""
import numpy as np
from numba import njit, prange

from rawcap.layers.loss import check_inputs

from .fastmath import exp

DEFAULT = 3


@njit(parallel=True, cache=True, fastmath=True, error_model="numpy")
def _shift(logits, targets, shifted, shifted_target):
    """shifted[r] = logits[r] - max(logits[r]); shifted_target[r] = shifted[r, targets[r]]."""
    R, V = logits.shape
    for r in prange(R):
        top = logits[r, 0]
        for k in range(V):
            top = max(top, logits[r, k])
        for k in range(V):
            shifted[r, k] = logits[r, k] - top
        shifted_target[r] = shifted[r, targets[r]]


@njit(parallel=True, cache=True, fastmath=True, error_model="numpy")
def _normalise(exps, targets, mask, inv_count, shifted_target, row_loss):
    """exps[r] (exp of the shifted logits) -> dlogits[r] in place; row_loss[r] = log s - shifted target."""
    R, V = exps.shape
    for r in prange(R):
        if mask[r] == 0:
            exps[r] = 0
            row_loss[r] = 0.0
            continue
        total = 0.0
        for k in range(V):
            total += exps[r, k]
        row_loss[r] = np.log(total) - shifted_target[r]
        scale = inv_count / total
        for k in range(V):
            exps[r, k] *= scale
        exps[r, targets[r]] -= inv_count


def softmax_cross_entropy_forward_v2(logits, targets, mask, overwrite_logits=False):
    """logits[N, T, V], targets[N, T], mask[N, T] -> loss (0-d), cache, with the layer's checks."""
    mask = check_inputs("softmax_cross_entropy_forward", logits, targets, mask)
    N, T, V = logits.shape
    logits = np.ascontiguousarray(logits)
    count = max(float(mask.sum()), 1.0)
    dlogits = logits if overwrite_logits else np.empty_like(logits)
    rows, targets = dlogits.reshape(N * T, V), np.ascontiguousarray(targets).reshape(-1)
    shifted_target, row_loss = np.empty(N * T), np.empty(N * T)
    _shift(logits.reshape(N * T, V), targets, rows, shifted_target)
    np.exp(rows, out=rows)
    _normalise(rows, targets, np.ascontiguousarray(mask).reshape(-1), 1.0 / count, shifted_target,
               row_loss)
    return np.asarray(row_loss.sum() / count, dtype=logits.dtype), dlogits


@njit(parallel=True, cache=True, fastmath=True, error_model="numpy")
def _one_pass(logits, targets, target_logits, mask, inv_count, dlogits, row_loss):
    """Per row r: its maximum, then exp(logits[r] - max) into dlogits[r] and their sum s, then
    dlogits[r] scaled to (p - onehot) * mask / count; row_loss[r] = log s - (target_logits[r] -
    max). dlogits may be logits itself: each entry is read before it is written, and the
    target's logit comes in its own array, since the compiler may move a read of logits[r,
    target] past the writes to dlogits when it takes them for different arrays (that gave
    wrong losses with overwrite_logits)."""
    R, V = logits.shape
    for r in prange(R):
        if mask[r] == 0:
            dlogits[r] = 0
            row_loss[r] = 0.0
            continue
        top = logits[r, 0]
        for k in range(V):
            top = max(top, logits[r, k])
        shifted_target = target_logits[r] - top
        total = 0.0
        for k in range(V):
            e = exp(logits[r, k] - top)
            dlogits[r, k] = e
            total += e
        row_loss[r] = np.log(total) - shifted_target
        scale = dlogits.dtype.type(inv_count / total)
        for k in range(V):
            dlogits[r, k] *= scale
        dlogits[r, targets[r]] -= inv_count


def softmax_cross_entropy_forward_v3(logits, targets, mask, overwrite_logits=False):
    """logits[N, T, V], targets[N, T], mask[N, T] -> loss (0-d), cache, with the layer's checks."""
    mask = check_inputs("softmax_cross_entropy_forward", logits, targets, mask)
    N, T, V = logits.shape
    logits = np.ascontiguousarray(logits)
    count = max(float(mask.sum()), 1.0)
    dlogits = logits if overwrite_logits else np.empty_like(logits)
    row_loss = np.empty(N * T)
    rows, targets = logits.reshape(N * T, V), np.ascontiguousarray(targets, dtype=np.intp).reshape(-1)
    target_logits = rows[np.arange(N * T), targets]         # read before dlogits is written
    _one_pass(rows, targets, target_logits, np.ascontiguousarray(mask).reshape(-1), 1.0 / count,
              dlogits.reshape(N * T, V), row_loss)
    return np.asarray(row_loss.sum() / count, dtype=logits.dtype), dlogits


def softmax_cross_entropy_backward_v2(dloss, cache):
    """-> dlogits[N, T, V] (computed by the forward) times dloss."""
    dlogits = cache
    if dloss == 1:
        return dlogits
    return dlogits * np.asarray(dloss, dtype=dlogits.dtype)


softmax_cross_entropy_backward_v3 = softmax_cross_entropy_backward_v2
