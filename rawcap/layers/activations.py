"""Elementwise nonlinearities: ReLU, sigmoid and tanh as layers, and the plain sigmoid function;
bias_relu adds a per-channel bias and applies ReLU in one layer (the conv blocks' second half).

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


def bias_relu_forward(x, b):
    """out = max(x + b[c], 0), the bias added along the channel axis.   x[N, C, H, W], b[C] -> out, cache.

    A convolution without its bias followed by this layer is the conv layer followed by ReLU;
    the bias rides along in the pass over the activations that ReLU makes anyway.
    """
    dims = Dims("bias_relu_forward")
    dims.check("x", x, "N C H W")
    dims.check("b", b, "C")
    xp = array_module(x)
    out = xp.maximum(x + b[:, None, None], 0)
    return out, out


def bias_relu_backward(dout, cache):
    """dx = dout * [out > 0] (out > 0 exactly where x + b > 0); db[c] = sum of dx[:, c]. -> dx, db."""
    out = cache
    check_grad("bias_relu_backward", "dout", dout, out.shape)
    dx = dout * (out > 0)
    return dx, dx.sum(axis=(0, 2, 3))


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
