"""The embedding's backward on the CPU (rawcap.layers.embedding.embedding_backward) as a Numba
scatter-add.

The model runs the embedding twice per step: the word vectors (ids [B, T] into W [V, E]) and
each caption's image features (caption_image [B] into feats [N_img, L * D], rows of 6272 floats
at the recipe's shapes). Version 0's backward adds the rows with np.add.at, which goes element
by element through NumPy's generic ufunc machinery: about 20 ms and 45 ms at those shapes.

version 3   backward: one loop adds each token's row dout[k] into dW[ids[k]], tokens in order
            (k = 0, 1, ...) as np.add.at does, so the result has the same bits as version 0's;
            the loop over a row's columns vectorises. One thread: the loop takes ~0.1-0.2 ms at
            those shapes, and a parallel version over blocks of columns measured 10-30 times
            slower (its inner loop did not vectorise). The forward is version 0's (W[ids],
            NumPy's take, measured faster than a parallel Numba gather).
"""
import numpy as np
from numba import njit

from rawcap.layers.checks import check_grad

DEFAULT = 3


@njit(cache=True)
def _scatter_add(ids, rows, dW):
    """dW[ids[k]] += rows[k] for k = 0, 1, ... in order."""
    K, D = rows.shape
    for k in range(K):
        word = ids[k]
        for d in range(D):
            dW[word, d] += rows[k, d]


def embedding_backward_v3(dout, cache):
    """dout[N, T, D] -> dW[V, D]: dW[v] = the sum of dout[n, t] over the tokens of word v,
    added in token order."""
    ids, W_shape = cache
    check_grad("embedding_backward", "dout", dout, ids.shape + (W_shape[1],))
    dW = np.zeros(W_shape, dtype=dout.dtype)
    _scatter_add(np.ascontiguousarray(ids, dtype=np.intp).reshape(-1),
                 np.ascontiguousarray(dout).reshape(-1, W_shape[1]), dW)
    return dW
