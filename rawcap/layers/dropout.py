"""Inverted dropout: zero each entry with probability p at training time, scale the rest by 1/(1-p).

Shapes: any; the output has the input's shape. Scaling at training time keeps E[out] = x,
so nothing changes at test time (p = 0, or simply not calling the layer).
"""
from ..backend import array_module
from .checks import Dims, check_grad


def dropout_forward(x, p, rng):
    """out = x * keep / (1 - p), keep ~ Bernoulli(1 - p) drawn from `rng` (a NumPy Generator).

    x[...] -> out[...], cache. p = 0 returns x unchanged.
    """
    Dims("dropout_forward").check("x", x, "...")
    if not 0 <= p < 1:
        raise ValueError(f"dropout_forward: p must be in [0, 1), got {p}")
    xp = array_module(x)
    if p == 0:
        return x, None
    scale = xp.asarray(rng.random(x.shape) >= p, dtype=x.dtype) / (1 - p)   # keep / (1 - p)
    return x * scale, scale


def dropout_backward(dout, cache):
    """dx = dout * keep / (1 - p): the same mask and scale as the forward."""
    scale = cache
    if scale is None:
        return dout
    check_grad("dropout_backward", "dout", dout, scale.shape)
    return dout * scale
