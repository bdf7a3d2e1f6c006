"""Softmax cross-entropy against a target distribution (soft labels), averaged over the rows.

Shapes: N rows, V classes.

    log p[n, :] = logits[n, :] - logsumexp(logits[n, :])
    loss = -(1/N) sum_n sum_v q[n, v] * log p[n, v]

q[n] is a distribution over the V classes (each row sums to 1; a row of zeros leaves that row
out). With q[n] one-hot this is the ordinary cross-entropy; rawcap uses it for the
bag-of-words loss, where q[n] is the share of each word among the words of image n's captions
(rawcap.model). Since d(log p[n, v]) / d(logits[n, u]) = [u = v] - p[n, u],

    dlogits[n, :] = (1/N) * (p[n, :] * sum_v q[n, v]  -  q[n, :])
"""
from ..backend import array_module
from .checks import Dims
from .loss import log_softmax


def soft_cross_entropy_forward(logits, q):
    """logits[N, V] float, q[N, V] float, rows summing to 1 or 0 -> loss (0-d), cache."""
    dims = Dims("soft_cross_entropy_forward")
    dims.check("logits", logits, "N V")
    dims.check("q", q, "N V")
    xp = array_module(logits)
    log_p = log_softmax(logits)
    loss = -(q * log_p).sum() / logits.shape[0]
    return loss, (xp.exp(log_p), q)


def soft_cross_entropy_backward(dloss, cache):
    """dloss (the gradient arriving on the scalar loss) -> dlogits[N, V]."""
    p, q = cache
    return (p * q.sum(axis=1, keepdims=True) - q) * (dloss / p.shape[0])
