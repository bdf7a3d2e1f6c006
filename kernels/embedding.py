"""The embedding's backward (rawcap.layers.embedding.embedding_backward) as scatter-add kernels.

The forward is a row gather, W[ids], which the array library already does in one kernel; every
version uses the layer's forward. The backward adds each token's gradient row into the row of
its word: dW[ids[k]] += dout[k]. Tokens repeat (every caption starts with <start>), so rows
collide, and that is where the versions differ.

version 1   one thread per (token k, column d) adds dout[k, d] into dW[ids[k], d] with an atomic
            add. One pass, fast, but colliding rows are added in whatever order the threads run,
            so float results can differ in the last bits from run to run (ATOMIC).
version 2   deterministic: the tokens are sorted by id (a stable sort, so equal ids keep their
            original order), then one thread per (distinct id, column d) sums its run of tokens
            in that order and writes the row once. The sort costs a few extra passes.
"""
from numba import cuda

from rawcap.backend import array_module
from rawcap.layers.checks import check_grad

from .launch import blocks_for, launch

DEFAULT = 1
ATOMIC = {1}


@cuda.jit
def _scatter_add_atomic(ids, dout, dW):
    k, d = cuda.grid(2)
    if k < dout.shape[0] and d < dout.shape[1]:
        cuda.atomic.add(dW, (ids[k], d), dout[k, d])


@cuda.jit
def _sum_runs(order, sorted_ids, starts, dout, dW):
    r, d = cuda.grid(2)
    if r >= starts.shape[0] or d >= dout.shape[1]:
        return
    end = starts[r + 1] if r + 1 < starts.shape[0] else order.shape[0]
    total = dW.dtype.type(0)
    for k in range(starts[r], end):
        total += dout[order[k], d]
    dW[sorted_ids[starts[r]], d] = total


def _grid(rows, D):
    """A 2-D grid over [rows, D]: 32 threads along D, 4 rows per block."""
    return (blocks_for(rows, 4), blocks_for(D, 32)), (4, 32)


def _flatten(dout, cache, function):
    ids, W_shape = cache
    check_grad(function, "dout", dout, ids.shape + (W_shape[1],))
    xp = array_module(dout)
    return (xp.ascontiguousarray(ids.reshape(-1)), xp.ascontiguousarray(dout.reshape(-1, W_shape[1])),
            xp.zeros(W_shape, dtype=dout.dtype), xp)


def embedding_backward_v1(dout, cache):
    """dout[N, T, D] -> dW[V, D] by atomic adds (module docstring)."""
    ids, rows, dW, _ = _flatten(dout, cache, "embedding_backward")
    launch(_scatter_add_atomic, *_grid(*rows.shape), ids, rows, dW)
    return dW


def embedding_backward_v2(dout, cache):
    """dout[N, T, D] -> dW[V, D] by sorted runs, deterministic (module docstring)."""
    ids, rows, dW, xp = _flatten(dout, cache, "embedding_backward")
    order = xp.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    new_run = xp.ones(len(ids), dtype=bool)
    new_run[1:] = sorted_ids[1:] != sorted_ids[:-1]
    starts = xp.flatnonzero(new_run)
    launch(_sum_runs, *_grid(len(starts), rows.shape[1]), order, sorted_ids, starts, rows, dW)
    return dW
