"""The output layer: from each step's hidden state to the logits of the next word.

Shape key as in rawcap/model.py: B captions, T steps, L locations, D feature size, E embedding
size, H hidden size, V vocabulary.

    plain:        logits = dropout(h_t) @ Wout + bout                       Wout[H, V]
    deep output:  z_t = sum_l alpha_tl feats_l                              (the context)
                  d_t = tanh([h_t, z_t] @ Wdeep + bdeep + E y_{t-1})         Wdeep[H + D, E]
                  logits = dropout(d_t) @ Wout + bout                       Wout[E, V]

The deep output is Show-Attend-Tell's (Xu et al. 2015, eq. 7, with the tanh of their code):
the next word sees the previous word's vector E y_{t-1} (the decoder's input, words[B, T, E])
and what the model looks at, not only h_t. Its z_t is the attention's weighted mean of the
features, before the f_beta gate. Params with `deep_w` in them use it (Config.deep_output).

Backward: with g = dL/d(pre-tanh) = dL/dd * (1 - d^2), the affine gives dh and dz, the word
vectors get g itself, and z = alpha @ feats (one [T, L] @ [L, D] product per caption) hands
    dalpha = dz @ feats^T        dfeats = alpha^T @ dz
back to the attention, which the decoder's backward takes from there.
"""
from . import layers as nn
from .backend import array_module


def output_forward(params, hs, words, alphas, feats, dropout=0.0, rng=None):
    """hs[B, T, H], words[B, T, E] (the decoder's input vectors), alphas[B, T, L],
    feats[B, L, D] -> logits[B, T, V], cache. dropout: the probability, rng its Generator."""
    xp = array_module(hs)
    x, deep = hs, None                                  # what the output affine reads: h_t or d_t
    if "deep_w" in params:
        contexts = xp.matmul(alphas, feats)                                  # [B, T, D]
        pre, aff = nn.affine_forward(xp.concatenate([hs, contexts], axis=-1),
                                     params["deep_w"], params["deep_b"])
        x, tanh = nn.tanh_forward(pre + words)                               # d_t [B, T, E]
        deep = (aff, tanh, alphas, feats)
    dropped, drop = nn.dropout_forward(x, dropout, rng)
    logits, out = nn.affine_forward(dropped, params["out_w"], params["out_b"])
    return logits, (deep, drop, out)


def output_backward(dlogits, cache, grads):
    """dlogits[B, T, V] -> dhs[B, T, H], dwords[B, T, E], dalphas[B, T, L], dfeats[B, L, D]
    (the last three None for the plain layer); the gradients of Wout, bout (and Wdeep, bdeep)
    go into `grads`."""
    deep, drop, out = cache
    ddropped, grads["out_w"], grads["out_b"] = nn.affine_backward(dlogits, out)
    dx = nn.dropout_backward(ddropped, drop)
    if deep is None:
        return dx, None, None, None
    aff, tanh, alphas, feats = deep
    dpre = nn.tanh_backward(dx, tanh)       # the word vectors enter this sum as they are: dwords
    dhz, grads["deep_w"], grads["deep_b"] = nn.affine_backward(dpre, aff)
    H = dhz.shape[-1] - feats.shape[-1]
    dhs, dcontexts = dhz[..., :H], dhz[..., H:]
    xp = array_module(dlogits)
    dalphas = xp.matmul(dcontexts, feats.transpose(0, 2, 1))                 # [B, T, L]
    dfeats = xp.matmul(alphas.transpose(0, 2, 1), dcontexts)                 # [B, L, D]
    return dhs, dpre, dalphas, dfeats
