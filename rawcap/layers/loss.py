"""Softmax cross-entropy over a vocabulary, averaged over the unmasked tokens.

Shapes: N batch, T time steps, V vocabulary.

    log p[n, t, :] = logits[n, t, :] - logsumexp(logits[n, t, :])
    loss = sum_{n,t} mask[n, t] * -log p[n, t, targets[n, t]]  /  sum_{n,t} mask[n, t]

logsumexp subtracts the row maximum before exp, so logits of any size stay finite.
A batch with every token masked has loss 0 and zero gradient.
"""
from ..backend import array_module
from .checks import Dims, check_ids


def softmax_cross_entropy_forward(logits, targets, mask):
    """logits[N, T, V] float, targets[N, T] int in [0, V), mask[N, T] bool or 0/1 -> loss (0-d), cache."""
    dims = Dims("softmax_cross_entropy_forward")
    dims.check("logits", logits, "N T V")
    dims.check("targets", targets, "N T", kind="int")
    dims.check("mask", mask, "N T", kind="mask")
    check_ids("softmax_cross_entropy_forward", "targets", targets, logits.shape[2])
    xp = array_module(logits)
    mask = mask.astype(logits.dtype)
    if not bool(((mask == 0) | (mask == 1)).all()):
        dims.fail("mask must hold only 0 and 1 (or False and True)")
    shifted = logits - logits.max(axis=2, keepdims=True)
    log_z = xp.log(xp.exp(shifted).sum(axis=2, keepdims=True))
    log_p = shifted - log_z                                         # [N, T, V]
    log_p_target = xp.take_along_axis(log_p, targets[:, :, None], axis=2)[:, :, 0]
    count = xp.maximum(mask.sum(), 1)
    loss = (mask * -log_p_target).sum() / count
    return loss, (xp.exp(log_p), targets, mask, count)


def softmax_cross_entropy_backward(cache, dloss=1.0):
    """-> dlogits[N, T, V] = dloss * mask[n, t] / sum(mask) * (p[n, t, :] - onehot(targets[n, t])).

    Masked positions get exactly zero gradient.
    """
    p, targets, mask, count = cache
    xp = array_module(p)
    onehot = xp.arange(p.shape[2]) == targets[:, :, None]
    return (p - onehot) * (mask * (dloss / count))[:, :, None]
