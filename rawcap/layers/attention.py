"""Additive soft attention (Bahdanau et al. 2015; the "soft" attention of Xu et al. 2015).

Shapes: N batch, L image locations, D feature size, H decoder hidden size, A attention size.
The projection of the features, proj = feats @ Wf + bf, does not depend on the step, so the
model computes it once per image with affine_forward; each decoder step then computes

    u     = proj + (h @ Wh)[:, None, :]          u[N, L, A]
    z     = tanh(u)                              z[N, L, A]
    e     = z @ v                                e[N, L]     one score per location
    alpha = softmax(e) over L                    alpha[N, L] sums to 1 for every n
    context = sum_l alpha[:, l] * feats[:, l]    context[N, D]

docs/backprop.md derives the backward.
"""
from ..backend import array_module
from .checks import Dims, check_grad


def check_attention_inputs(feats, proj, h, Wh, v):
    """attention_forward's shape checks: ValueErrors naming the argument and the axis."""
    dims = Dims("attention_forward")
    dims.check("feats", feats, "N L D")
    dims.check("proj", proj, "N L A")
    dims.check("h", h, "N H")
    dims.check("Wh", Wh, "H A")
    dims.check("v", v, "A")


def attention_forward(feats, proj, h, Wh, v):
    """feats[N, L, D], proj[N, L, A], h[N, H], Wh[H, A], v[A] -> context[N, D], alpha[N, L], cache."""
    check_attention_inputs(feats, proj, h, Wh, v)
    xp = array_module(feats)
    # SOLUTION BEGIN
    z = xp.tanh(proj + (h @ Wh)[:, None, :])
    e = z @ v
    exp_e = xp.exp(e - e.max(axis=1, keepdims=True))          # shifted: no overflow
    alpha = exp_e / exp_e.sum(axis=1, keepdims=True)
    context = (alpha[:, None, :] @ feats)[:, 0, :]
    return context, alpha, (feats, h, Wh, v, z, alpha)
    # SOLUTION END


def attention_backward(dcontext, dalpha, cache):
    """dcontext[N, D], dalpha[N, L] or None -> dfeats, dproj, dh, dWh, dv.

    dalpha_total = feats @ dcontext (+ dalpha)                 (alpha reaches the loss through
                                                                the context, and maybe directly)
    dfeats = alpha[:, :, None] * dcontext[:, None, :]
    de     = alpha * (dalpha_total - sum_l alpha * dalpha_total)     (softmax backward)
    dv     = sum_{n,l} de * z,       du = de[:, :, None] * v * (1 - z^2)
    dproj  = du,   dh = (sum_l du) @ Wh.T,   dWh = h.T @ (sum_l du)
    """
    feats, h, Wh, v, z, alpha = cache
    check_grad("attention_backward", "dcontext", dcontext, (feats.shape[0], feats.shape[2]))
    if dalpha is not None:
        check_grad("attention_backward", "dalpha", dalpha, alpha.shape)
    # SOLUTION BEGIN
    dalpha_total = (feats @ dcontext[:, :, None])[:, :, 0]
    if dalpha is not None:
        dalpha_total = dalpha_total + dalpha
    dfeats = alpha[:, :, None] * dcontext[:, None, :]
    de = alpha * (dalpha_total - (alpha * dalpha_total).sum(axis=1, keepdims=True))
    A = v.shape[0]
    dv = z.reshape(-1, A).T @ de.reshape(-1)
    du = de[:, :, None] * v * (1 - z ** 2)
    du_sum = du.sum(axis=1)                                     # [N, A]: h @ Wh feeds every l
    return dfeats, du, du_sum @ Wh.T, h.T @ du_sum, dv
    # SOLUTION END
