"""Cross-entropy against the uniform distribution over the vocabulary: the term label smoothing adds.

Shapes: N batch, T time steps, V vocabulary.

    log p[n, t, :] = logits[n, t, :] - logsumexp(logits[n, t, :])
    loss = sum_{n,t} mask[n, t] * -(1/V) sum_v log p[n, t, v]  /  sum_{n,t} mask[n, t]

Label smoothing (Szegedy et al. 2016) trains on the target (1 - eps) * onehot(y) + eps / V
instead of onehot(y); its cross-entropy is (1 - eps) * CE + eps * this loss, so the model is
taught never to be quite sure of one word. Since d(log p[v]) / d(logits[u]) = [u = v] - p[u],

    dlogits[n, t, :] = mask[n, t] / sum(mask) * (p[n, t, :] - 1/V)

Masked positions get exactly zero gradient; a batch with every token masked has loss 0.
"""
from ..backend import array_module
from .checks import Dims
from .loss import log_softmax


def uniform_cross_entropy_forward(logits, mask):
    """logits[N, T, V] float, mask[N, T] bool or 0/1 -> loss (0-d), cache."""
    dims = Dims("uniform_cross_entropy_forward")
    dims.check("logits", logits, "N T V")
    dims.check("mask", mask, "N T", kind="mask")
    xp = array_module(logits)
    mask = mask.astype(logits.dtype)
    log_p = log_softmax(logits)                                             # [N, T, V]
    count = xp.maximum(mask.sum(), 1)
    loss = -(mask * log_p.mean(axis=2)).sum() / count
    return loss, (xp.exp(log_p, out=log_p), mask, count)


def uniform_cross_entropy_backward(dloss, cache):
    """dloss (the gradient arriving on the scalar loss) -> dlogits[N, T, V]."""
    p, mask, count = cache
    return (p - 1 / p.shape[2]) * (mask * (dloss / count))[:, :, None]
