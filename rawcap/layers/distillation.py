"""Word-level distillation's term: the cross-entropy plus a margin over the teacher's words, so
that it needs no softmax of its own.

Shapes: N captions, T steps, V words, k teacher words a step; w = targets[n, t].

At each step a teacher (rawcap.teacher) gives its k likeliest next words indices[n, t, :], k
distinct words, with probabilities q[n, t, :] summing to 1 at a step the mask counts; q is
zeroed where it does not. The term is their cross-entropy, a mean over tokens, and with
-log p_v = lse - logits_v (lse the log-sum-exp of the step's logits) the lse's cancel against
the cross-entropy's, as in label smoothing (rawcap.layers.label_smoothing):

    term   = (1/count) sum_{n,t} sum_j q[n,t,j] (lse[n,t] - logits[n, t, indices[n,t,j]])
           = CE + margin
    margin = (1/count) sum_{n,t} sum_j q[n,t,j] (logits[n, t, w] - logits[n, t, indices[n,t,j]])

since sum_j q[n,t,j] = mask[n, t]; count = max(sum mask, 1). This layer is the margin: how far
below the reference's word the teacher's words are, weighed by the teacher. It is linear in the
logits, so its gradient does not depend on them (s[n, t] = sum_j q[n, t, j]; Q: the q
scattered to their words):

    dmargin/dlogits[n, t, :] = (1/count) (s[n,t] onehot(w) - Q[n,t,:])

k + 1 entries a step, added in place to the gradient the caller already holds (the model's:
the cross-entropy's, counted 1 + beta times for CE + beta * term; rawcap.model).
"""
from ..backend import array_module
from .loss import check_shapes


def distillation_forward(logits, targets, mask, indices, probs):
    """logits[N, T, V] float, targets[N, T] int, mask[N, T] bool or 0/1, indices[N, T, k] int
    (k distinct words a step), probs[N, T, k] (each counted step's summing to 1)
    -> margin (0-d; the term is the cross-entropy plus it), cache.
    Shapes and dtypes are checked, values not: reading them would make a GPU wait, and the
    cross-entropy's kernels do not read them either. The batch is checked on the host
    (rawcap.data.batches), and a teacher file is refused unless written for the cache
    (rawcap.teacher)."""
    dims = check_shapes("distillation_forward", logits, targets, mask)
    dims.check("indices", indices, "N T k", kind="int")
    probs = probs.astype(logits.dtype, copy=False)                      # a teacher file's float32
    dims.check("probs", probs, "N T k")
    xp = array_module(logits)
    mask = mask.astype(logits.dtype)
    q = probs * mask[:, :, None]                                         # 0 where not counted
    target_logits = xp.take_along_axis(logits, targets[:, :, None], axis=2)     # [N, T, 1]
    taught_logits = xp.take_along_axis(logits, indices, axis=2)                 # [N, T, k]
    count = xp.maximum(mask.sum(), 1)
    margin = (q * (target_logits - taught_logits)).sum() / count
    return margin.astype(logits.dtype), (targets, indices, q, count)


def distillation_backward(dloss, dlogits, cache):
    """dloss (the gradient arriving on the margin), dlogits[N, T, V] (the gradient so far)
    -> dlogits + dloss * dmargin/dlogits, written over dlogits (k + 1 entries a step)."""
    targets, indices, q, count = cache
    xp = array_module(q)
    N, T = targets.shape
    n, t = xp.arange(N)[:, None], xp.arange(T)[None, :]
    dlogits[n, t, targets] += (dloss / count) * q.sum(axis=2)
    dlogits[n[:, :, None], t[:, :, None], indices] -= (dloss / count) * q
    return dlogits
