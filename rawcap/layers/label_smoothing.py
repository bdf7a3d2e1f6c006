"""Label smoothing: what it adds to the cross-entropy, a margin that needs no second softmax.

Shapes: N batch, T time steps, V vocabulary; w = targets[n, t].

Label smoothing (Szegedy et al. 2016) trains on the target q = (1 - eps) onehot(w) + eps / V
instead of onehot(w), so that the model is never taught to be quite sure of one word:

    -sum_v q_v log p_v = (1 - eps) (-log p_w) + eps (-(1/V) sum_v log p_v)
                       = -log p_w + eps (log p_w - (1/V) sum_v log p_v)
                       = CE + eps (logits_w - (1/V) sum_v logits_v)

since log p_v = logits_v - logsumexp(logits) and the logsumexps cancel. So the smoothed loss
is the cross-entropy plus eps times this layer's loss, the target's logit above the mean logit,

    loss = sum_{n,t} mask[n, t] * (logits[n, t, w] - mean_v logits[n, t, v])  /  sum mask

which is linear in the logits: its gradient does not depend on them,

    dlogits[n, t, :] = mask[n, t] / sum(mask) * (onehot(w) - 1/V)

Masked positions get exactly zero gradient; a batch with every token masked has loss 0.
The targets and the mask are checked for shape, not for their values (a GPU would have to be
waited for): the batch is checked on the host (rawcap.data.batches), as for the cross-entropy's
kernels.
"""
from ..backend import array_module
from .loss import check_shapes


def label_smoothing_forward(logits, targets, mask):
    """logits[N, T, V] float, targets[N, T] int in [0, V), mask[N, T] bool or 0/1
    -> loss (0-d), cache."""
    check_shapes("label_smoothing_forward", logits, targets, mask)     # (values: module docstring)
    mask = mask.astype(logits.dtype)
    xp = array_module(logits)
    target_logits = xp.take_along_axis(logits, targets[:, :, None], axis=2)[:, :, 0]
    count = xp.maximum(mask.sum(), 1)
    loss = (mask * (target_logits - logits.mean(axis=2))).sum() / count
    return loss, (targets, mask, count, logits.shape[2])


def label_smoothing_backward(dloss, cache):
    """dloss (the gradient arriving on the scalar loss) -> dlogits[N, T, V]."""
    targets, mask, count, V = cache
    xp = array_module(mask)
    N, T = targets.shape
    weight = mask * (dloss / count)                                     # [N, T], the logits' dtype
    dlogits = xp.empty((N, T, V), weight.dtype)
    dlogits[...] = (weight / -V)[:, :, None]                            # -1/V everywhere ...
    dlogits[xp.arange(N)[:, None], xp.arange(T), targets] += weight     # ... + 1 at the target
    return dlogits
