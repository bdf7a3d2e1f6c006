"""Softmax cross-entropy over a vocabulary, averaged over the unmasked tokens.

Shapes: N batch, T time steps, V vocabulary.

    log p[n, t, :] = logits[n, t, :] - logsumexp(logits[n, t, :])
    loss = sum_{n,t} mask[n, t] * -log p[n, t, targets[n, t]]  /  sum_{n,t} mask[n, t]

logsumexp subtracts the row maximum before exp, so logits of any size stay finite.
A batch with every token masked has loss 0 and zero gradient.
"""
from ..backend import array_module
from .checks import Dims, check_ids


def check_shapes(where, logits, targets, mask, targets_name="targets"):
    """Raise a ValueError unless logits[N, T, V] float, targets[N, T] int and mask[N, T] fit
    together: shapes and dtypes only, nothing a GPU would have to be waited for. -> the Dims,
    to check more arguments against."""
    dims = Dims(where)
    dims.check("logits", logits, "N T V")
    dims.check(targets_name, targets, "N T", kind="int")
    dims.check("mask", mask, "N T", kind="mask")
    return dims


def check_inputs(where, logits, targets, mask, targets_name="targets"):
    """check_shapes, and the values too: targets ids in [0, V), mask of 0 and 1 (on a GPU each
    is a wait). -> mask in logits' dtype."""
    dims = check_shapes(where, logits, targets, mask, targets_name)
    check_ids(where, targets_name, targets, logits.shape[2])
    mask = mask.astype(logits.dtype)
    if not bool(((mask == 0) | (mask == 1)).all()):
        dims.fail("mask must hold only 0 and 1 (or False and True)")
    return mask


def log_softmax(logits, out=None):
    """logits[..., V] -> log p[..., V] = logits - logsumexp(logits) over the last axis, the row
    maximum subtracted first (so any logits stay finite). out: where to write it (logits itself
    when the caller needs them no more)."""
    xp = array_module(logits)
    log_p = xp.subtract(logits, logits.max(axis=-1, keepdims=True), out=out)   # shifted: no overflow
    log_p -= xp.log(xp.exp(log_p).sum(axis=-1, keepdims=True))                # shifted - log Z
    return log_p


def softmax_cross_entropy_forward(logits, targets, mask, overwrite_logits=False):
    """logits[N, T, V] float, targets[N, T] int in [0, V), mask[N, T] bool or 0/1 -> loss (0-d), cache.

    overwrite_logits=True computes the probabilities in the logits buffer itself (for a caller
    that needs the logits no more): one [N, T, V] array fewer.
    """
    mask = check_inputs("softmax_cross_entropy_forward", logits, targets, mask)
    xp = array_module(logits)
    log_p = log_softmax(logits, out=logits if overwrite_logits else None)    # [N, T, V]
    log_p_target = xp.take_along_axis(log_p, targets[:, :, None], axis=2)[:, :, 0]
    count = xp.maximum(mask.sum(), 1)
    loss = (mask * -log_p_target).sum() / count
    return loss, (xp.exp(log_p, out=log_p), targets, mask, count)


def softmax_cross_entropy_backward(dloss, cache):
    """dloss (the gradient arriving on the scalar loss: 1.0 when it is the final loss)
    -> dlogits[N, T, V] = dloss * mask[n, t] / sum(mask) * (p[n, t, :] - onehot(targets[n, t])).

    Masked positions get exactly zero gradient.
    """
    p, targets, mask, count = cache
    xp = array_module(p)
    # SOLUTION BEGIN
    onehot = xp.arange(p.shape[2]) == targets[:, :, None]
    return (p - onehot) * (mask * (dloss / count))[:, :, None]
    # SOLUTION END
