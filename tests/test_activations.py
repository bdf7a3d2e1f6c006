"""relu and sigmoid: gradients, values, float32, bad input."""
import re

import numpy as np
import pytest
from scipy.special import expit

from rawcap.gradcheck import TOLERANCE, gradient_errors, relu_check
from rawcap.layers import relu_backward, relu_forward, sigmoid

from helpers import assert_float32_close

# relu only selects or zeroes entries, so float32 must agree to float32 rounding of the inputs;
# sigmoid is a few exp/divide steps, each within a float32 rounding (about 6e-8 relative).
FLOAT32_TOL = 1e-6


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("shape", [(1,), (7,), (3, 5, 4), (2, 1, 3, 1, 2)])
def test_relu_gradients(seed, shape):
    rng = np.random.default_rng(seed)
    errors = gradient_errors(relu_check(rng, shape=shape), rng)
    assert all(error < TOLERANCE for _, _, error in errors), errors


def test_relu_forward_matches_where():
    x = np.random.default_rng(0).standard_normal((3, 5, 4))
    out, _ = relu_forward(x)
    assert np.array_equal(out, np.where(x > 0, x, 0.0))


def test_relu_backward_passes_gradient_where_x_is_positive_and_zero_at_the_kink():
    _, cache = relu_forward(np.array([-2.0, 0.0, 3.0]))
    dx = relu_backward(np.array([5.0, 5.0, 5.0]), cache)
    assert np.array_equal(dx, [0.0, 0.0, 5.0])


def test_relu_float32_agrees_with_float64():
    rng = np.random.default_rng(0)
    x, dout = rng.standard_normal((3, 5, 4)), rng.standard_normal((3, 5, 4))
    out64, cache64 = relu_forward(x)
    out32, cache32 = relu_forward(x.astype(np.float32))
    dx64 = relu_backward(dout, cache64)
    dx32 = relu_backward(dout.astype(np.float32), cache32)
    assert_float32_close([(out32, out64), (dx32, dx64)], FLOAT32_TOL)


@pytest.mark.parametrize("x, message", [
    (np.arange(4), "x must be float32 or float64, got dtype int64"),
    ([1.0, -1.0], "x must be an array, got list"),
])
def test_relu_forward_rejects_bad_input(x, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        relu_forward(x)


def test_relu_backward_rejects_dout_of_wrong_shape():
    _, cache = relu_forward(np.zeros((2, 3)))
    message = "dout must have the forward output's shape (2, 3), got (3, 2)"
    with pytest.raises(ValueError, match=re.escape(message)):
        relu_backward(np.zeros((3, 2)), cache)


def test_relu_backward_leaves_dout_and_cache_unchanged():
    rng = np.random.default_rng(0)
    _, cache = relu_forward(rng.standard_normal((3, 4)))
    dout = rng.standard_normal((3, 4))
    dout_before, cache_before = dout.copy(), cache.copy()
    relu_backward(dout, cache)
    assert np.array_equal(dout, dout_before)
    assert np.array_equal(cache, cache_before)


def test_sigmoid_matches_scipy_expit():
    x = np.linspace(-30, 30, 121)
    np.testing.assert_allclose(sigmoid(x), expit(x), rtol=1e-14, atol=0)


def test_sigmoid_of_huge_inputs_does_not_overflow():
    """The naive 1 / (1 + exp(-x)) overflows exp at x = -1000; the stable form must not."""
    x = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0])
    with np.errstate(over="raise", invalid="raise"):
        s = sigmoid(x)
    np.testing.assert_allclose(s, expit(x), rtol=1e-14, atol=0)
    assert s[0] == 0.0 and s[-1] == 1.0


def test_sigmoid_float32_agrees_with_float64():
    x = np.linspace(-20, 20, 81)
    s32 = sigmoid(x.astype(np.float32))
    assert s32.dtype == np.float32
    np.testing.assert_allclose(s32, sigmoid(x), rtol=0, atol=FLOAT32_TOL)
