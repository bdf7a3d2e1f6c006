"""sigmoid, tanh and dropout as layers: gradients, values, and dropout's mask."""
import numpy as np
import pytest
from scipy.special import expit

from helpers import assert_gradients_match
from rawcap.gradcheck import dropout_check, sigmoid_check, tanh_check
from rawcap.layers import (dropout_backward, dropout_forward, sigmoid_forward, tanh_backward,
                           tanh_forward)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("shape", [(1,), (3, 5), (2, 3, 4)])
def test_gradients(seed, shape):
    for build in (sigmoid_check, tanh_check):
        rng = np.random.default_rng(seed)
        assert_gradients_match(build(rng, shape), rng)
    rng = np.random.default_rng(seed)
    assert_gradients_match(dropout_check(rng, shape, p=0.4, seed=seed), rng)


def test_values_and_float32():
    x = np.linspace(-30, 30, 61)
    np.testing.assert_allclose(sigmoid_forward(x)[0], expit(x), rtol=1e-12)
    np.testing.assert_allclose(tanh_forward(x)[0], np.tanh(x), rtol=1e-12)
    out, _ = tanh_forward(x.astype(np.float32))
    assert out.dtype == np.float32
    dx = tanh_backward(np.ones(61, np.float32), tanh_forward(x.astype(np.float32))[1])
    assert dx.dtype == np.float32


def test_dropout_keeps_the_mean_and_uses_one_mask_both_ways():
    x = np.ones((200, 500))
    out, cache = dropout_forward(x, 0.3, np.random.default_rng(0))
    kept = out != 0
    assert abs(kept.mean() - 0.7) < 0.01
    np.testing.assert_allclose(out[kept], 1 / 0.7)
    assert abs(out.mean() - 1) < 0.01
    dx = dropout_backward(np.full_like(x, 2.0), cache)
    assert np.array_equal(dx != 0, kept)
    np.testing.assert_allclose(dx[kept], 2 / 0.7)


def test_dropout_p0_is_the_identity_and_p_is_checked():
    x = np.random.default_rng(0).standard_normal((3, 4))
    out, cache = dropout_forward(x, 0.0, None)
    assert out is x and dropout_backward(x, cache) is x
    for p in (-0.1, 1.0):
        with pytest.raises(ValueError, match="dropout_forward: p must be in"):
            dropout_forward(x, p, np.random.default_rng(0))
