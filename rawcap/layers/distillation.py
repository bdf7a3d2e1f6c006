"""Word-level distillation's term: the cross-entropy against a teacher's k words, added to the
cross-entropy's gradient without a second softmax.

Shapes: N captions, T steps, V words, k teacher words a step; w = targets[n, t].

At each step a teacher (rawcap.teacher) gives its k likeliest next words indices[n, t, :], k
distinct words, with probabilities q[n, t, :], summing to s[n, t]: 1 at a step the mask counts;
q is zeroed where it does not, so s = 0 there. The term is their cross-entropy, a mean over tokens,
with -log p_v = lse - logits_v:

    loss = (1/count) sum_{n,t} sum_j q[n,t,j] * (lse[n,t] - logits[n, t, indices[n,t,j]])
    lse[n, t] = log sum_v exp(logits[n, t, v]),     count = max(sum mask, 1)

Its gradient is dense over the V words, as every softmax's is (Q: the q scattered to their words),

    dloss/dlogits[n, t, :] = (1/count) * (s[n,t] p[n,t,:] - Q[n,t,:])

but the cross-entropy beside it (rawcap.layers.loss) has already computed its own,
G = (mask/count) (p - onehot(w)), so that where the mask counts p = count G + onehot(w), and for
the term at weight beta (s = 0 where the mask does not count)

    G + beta dloss/dlogits = (1 + beta s) G + (beta/count) (s onehot(w) - Q):

one pass over G, in place, and k + 1 entries a step. The forward reads the logits (their lse and
k entries a step), so it runs before the cross-entropy overwrites them (rawcap.model).
"""
from ..backend import array_module
from .loss import check_shapes


def distillation_forward(logits, targets, mask, indices, probs):
    """logits[N, T, V] float, targets[N, T] int, mask[N, T] bool or 0/1, indices[N, T, k] int
    (k distinct words a step), probs[N, T, k] (each counted step's summing to 1)
    -> loss (0-d), cache.
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
    top = logits.max(axis=2, keepdims=True)
    lse = top + xp.log(xp.exp(logits - top).sum(axis=2, keepdims=True))  # [N, T, 1]
    taught = xp.take_along_axis(logits, indices, axis=2)                 # [N, T, k]
    count = xp.maximum(mask.sum(), 1)
    loss = (q * (lse - taught)).sum() / count
    return loss.astype(logits.dtype), (targets, indices, q, count)


def distillation_backward(dloss, dlogits, cache):
    """dloss: the term's weight beta; dlogits[N, T, V]: the cross-entropy's gradient G (at dloss
    1, for the same logits, targets and mask) -> the gradient of cross-entropy + beta * term,
    written over dlogits (module docstring)."""
    targets, indices, q, count = cache
    xp = array_module(q)
    N, T = targets.shape
    s = q.sum(axis=2)                                                    # [N, T]: 1 or 0
    dlogits *= (1 + dloss * s)[:, :, None]
    n, t = xp.arange(N)[:, None], xp.arange(T)[None, :]
    dlogits[n, t, targets] += dloss * s / count
    dlogits[n[:, :, None], t[:, :, None], indices] -= dloss * q / count
    return dlogits
