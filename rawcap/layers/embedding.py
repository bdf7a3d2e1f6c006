"""Word embedding: a table lookup, the affine layer of a one-hot input.

Shapes: V vocabulary, D embedding size; ids of any shape, typically [N, T].
"""
from ..backend import array_module
from .checks import Dims, check_grad, check_ids


def embedding_forward(ids, W):
    """out[n, t] = W[ids[n, t]].   ids[N, T] integers in [0, V), W[V, D] -> out[N, T, D], cache."""
    dims = Dims("embedding_forward")
    dims.check("ids", ids, "...", kind="int")
    dims.check("W", W, "V D")
    check_ids("embedding_forward", "ids", ids, W.shape[0])
    return W[ids], (ids, W.shape)


def embedding_backward(dout, cache):
    """dout[N, T, D] -> dW[V, D]:  dW[v] = sum of dout[n, t] over every (n, t) with ids[n, t] == v.

    Ids may repeat, so rows are accumulated with an unbuffered add (`add.at`), not assigned.
    The ids are integers and get no gradient.
    """
    ids, W_shape = cache
    check_grad("embedding_backward", "dout", dout, ids.shape + (W_shape[1],))
    xp = array_module(dout)
    dW = xp.zeros(W_shape, dtype=dout.dtype)
    xp.add.at(dW, ids.reshape(-1), dout.reshape(-1, W_shape[1]))
    return dW
