"""Elementwise nonlinearities: ReLU, sigmoid and tanh as layers, and the plain sigmoid function.

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


def sigmoid_forward(x):
    """out = sigmoid(x). x[...] -> out[...], cache."""
    Dims("sigmoid_forward").check("x", x, "...")
    out = sigmoid(x)
    return out, out


def sigmoid_backward(dout, cache):
    """dx = dout * s * (1 - s), with s = sigmoid(x) kept from the forward."""
    s = cache
    check_grad("sigmoid_backward", "dout", dout, s.shape)
    return dout * s * (1 - s)


def tanh_forward(x):
    """out = tanh(x). x[...] -> out[...], cache."""
    Dims("tanh_forward").check("x", x, "...")
    out = array_module(x).tanh(x)
    return out, out


def tanh_backward(dout, cache):
    """dx = dout * (1 - t^2), with t = tanh(x) kept from the forward."""
    t = cache
    check_grad("tanh_backward", "dout", dout, t.shape)
    return dout * (1 - t ** 2)
