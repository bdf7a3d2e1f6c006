"""Elementwise nonlinearities: ReLU as a layer, and the sigmoid the gates use.

Shapes: any; outputs have the input's shape.
"""
from ..backend import array_module
from .checks import Dims, check_grad


def relu_forward(x):
    """out = max(x, 0). x[...] -> out[...], cache."""
    Dims("relu_forward").check("x", x, "...")
    xp = array_module(x)
    return xp.maximum(x, 0), x


def relu_backward(dout, cache):
    """dx = dout * [x > 0] (the subgradient at 0 is taken as 0)."""
    x = cache
    check_grad("relu_backward", "dout", dout, x.shape)
    return dout * (x > 0)


def sigmoid(x):
    """sigmoid(x) = 1 / (1 + exp(-x)), computed without overflow for large |x|.

    With z = exp(-|x|) <= 1: sigmoid(x) = 1 / (1 + z) for x >= 0 and z / (1 + z) for x < 0.
    Its derivative is sigmoid(x) * (1 - sigmoid(x)).
    """
    xp = array_module(x)
    z = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + z), z / (1 + z))
