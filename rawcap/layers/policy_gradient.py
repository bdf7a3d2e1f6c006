"""The policy-gradient loss of self-critical sequence training (Rennie et al. 2017).

Shapes: N sampled captions, T time steps, V vocabulary.

A caption w_1 .. w_n <end> was sampled from the model's softmax; it earned a reward r (its
CIDEr-D), and the model's greedy caption of the same image earned b (the baseline). With the
advantage a = r - b held fixed (the rewards do not depend on the logits),

    log p[n, t, :] = logits[n, t, :] - logsumexp(logits[n, t, :])
    loss = -(1/N) sum_n a_n sum_t mask[n, t] * log p[n, t, tokens[n, t]]

Its gradient is the REINFORCE estimate of -d E[r] / d(logits) with baseline b: a caption that
beat the greedy one is made more likely, one that did worse less likely, and one that tied is
left alone. Unlike the cross-entropy, the loss sums over a caption's tokens (the log-probability
of the whole caption) and averages over captions. Logits of -inf (words the policy never
writes) are allowed: their probability and gradient are 0. The backward is derived in
docs/backprop.md.
"""
from ..backend import array_module
from .checks import Dims
from .loss import check_inputs, log_softmax


def policy_gradient_forward(logits, tokens, mask, advantages):
    """logits[N, T, V] float, tokens[N, T] int in [0, V) (the sampled words, <end> included),
    mask[N, T] bool or 0/1, advantages[N] float (r - b) -> loss (0-d), cache."""
    mask = check_inputs("policy_gradient_forward", logits, tokens, mask, "tokens")
    dims = Dims("policy_gradient_forward")
    dims.check("logits", logits, "N T V")
    dims.check("advantages", advantages, "N")
    xp = array_module(logits)
    log_p = log_softmax(logits)
    log_p_token = xp.take_along_axis(log_p, tokens[:, :, None], axis=2)[:, :, 0]
    N = logits.shape[0]
    # where, not mask * log_p: a masked position may hold a token of probability 0 (log -inf)
    loss = -(advantages * xp.where(mask > 0, log_p_token, 0).sum(axis=1)).sum() / N
    return loss, (xp.exp(log_p), tokens, mask, advantages)


def policy_gradient_backward(dloss, cache):
    """-> dlogits[N, T, V] = dloss * a_n * mask[n, t] / N * (p[n, t, :] - onehot(tokens[n, t]))."""
    p, tokens, mask, advantages = cache
    xp = array_module(p)
    onehot = xp.arange(p.shape[2]) == tokens[:, :, None]
    weight = mask * advantages[:, None] * (dloss / p.shape[0])
    return (p - onehot) * weight[:, :, None]
