"""The embedding's backward (rawcap.layers.embedding.embedding_backward) as scatter-add kernels.

The forward is a row gather, W[ids], which the array library already does in one kernel; every
version gathers as the layer does, with its shape checks but not its check that every id lies
in [0, V): on a GPU that check reads the ids back to the host, a synchronisation per call. The
caller checks the host batch instead (rawcap.data.batches.check_batch); CuPy wraps an id
outside [0, V) around rather than raising. The backward adds each token's gradient row into the
row of its word: dW[ids[k]] += dout[k]. Tokens repeat (every caption starts with <start>), so
rows collide, and that is where the versions differ.

version 1   one thread per (token k, column d) adds dout[k, d] into dW[ids[k], d] with an atomic
            add. One pass, fast, but colliding rows are added in whatever order the threads run,
            so float results can differ in the last bits from run to run (ATOMIC).
version 2   deterministic: the tokens are sorted by id (a stable sort, so equal ids keep their
            original order), then one thread per (token, column d): the thread of the first
            token of a run of equal ids sums the run in that order and writes the row once; the
            others return. The sort costs a few extra passes; the grid's size is the number of
            tokens, known on the host, so nothing is read back.
"""
from numba import cuda

from rawcap.backend import array_module
from rawcap.layers.checks import Dims, check_grad

from .launch import blocks_for, launch

DEFAULT = 1
ATOMIC = {1}


@cuda.jit
def _scatter_add_atomic(ids, dout, dW):
    k, d = cuda.grid(2)
    if k < dout.shape[0] and d < dout.shape[1]:
        cuda.atomic.add(dW, (ids[k], d), dout[k, d])


@cuda.jit
def _sum_runs(order, sorted_ids, dout, dW):
    k, d = cuda.grid(2)
    K = order.shape[0]
    if k >= K or d >= dout.shape[1]:
        return
    word = sorted_ids[k]
    if k > 0 and sorted_ids[k - 1] == word:     # not the first token of its run
        return
    total = dW.dtype.type(0)
    while k < K and sorted_ids[k] == word:
        total += dout[order[k], d]
        k += 1
    dW[word, d] = total


def _grid(rows, D):
    """A 2-D grid over [rows, D]: 32 threads along D, 4 rows per block."""
    return (blocks_for(rows, 4), blocks_for(D, 32)), (4, 32)


def embedding_forward_v1(ids, W):
    """ids[N, T] integers in [0, V) (not checked: module docstring), W[V, D] -> out[N, T, D], cache."""
    dims = Dims("embedding_forward")
    dims.check("ids", ids, "...", kind="int")
    dims.check("W", W, "V D")
    return W[ids], (ids, W.shape)


embedding_forward_v2 = embedding_forward_v1


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
    launch(_sum_runs, *_grid(len(ids), rows.shape[1]), order, ids[order], rows, dW)
    return dW
