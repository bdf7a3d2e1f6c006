"""Label smoothing's cross-entropy against the uniform distribution: gradients, values, edges."""
import numpy as np
import pytest
from scipy.special import log_softmax, softmax

from rawcap.gradcheck import uniform_cross_entropy_check
from rawcap.layers import (soft_cross_entropy_forward, softmax_cross_entropy_forward,
                           uniform_cross_entropy_backward, uniform_cross_entropy_forward)

from helpers import assert_gradients_match


@pytest.mark.parametrize("seed, sizes", [(0, {}), (1, dict(N=2, T=3, V=2)), (2, dict(N=4, T=5, V=9))])
def test_gradient_matches_central_differences(seed, sizes):
    rng = np.random.default_rng(seed)
    assert_gradients_match(uniform_cross_entropy_check(rng, **sizes), rng)


def test_value_and_gradient_against_scipy():
    rng = np.random.default_rng(3)
    logits, mask = rng.standard_normal((3, 4, 6)), rng.random((3, 4)) < 0.7
    loss, cache = uniform_cross_entropy_forward(logits, mask)
    per_token = -log_softmax(logits, axis=2).mean(axis=2)
    assert loss == pytest.approx((per_token * mask).sum() / mask.sum(), rel=1e-12)
    expected = 2.0 * (softmax(logits, axis=2) - 1 / 6) * mask[:, :, None] / mask.sum()
    np.testing.assert_allclose(uniform_cross_entropy_backward(2.0, cache), expected, rtol=1e-12)


def test_label_smoothing_is_the_cross_entropy_against_the_smoothed_targets():
    """(1 - eps) CE + eps UCE = soft cross-entropy against (1 - eps) onehot + eps / V."""
    rng = np.random.default_rng(4)
    eps, logits, targets = 0.1, rng.standard_normal((5, 1, 7)), rng.integers(0, 7, (5, 1))
    mask = np.ones((5, 1), bool)
    ce, _ = softmax_cross_entropy_forward(logits, targets, mask)
    uniform, _ = uniform_cross_entropy_forward(logits, mask)
    smoothed = (1 - eps) * np.eye(7)[targets[:, 0]] + eps / 7
    expected, _ = soft_cross_entropy_forward(logits[:, 0], smoothed)
    assert (1 - eps) * ce + eps * uniform == pytest.approx(float(expected), rel=1e-12)


def test_masked_tokens_get_no_gradient_and_huge_logits_stay_finite():
    logits = np.array([[[1000.0, 0.0, -1000.0], [3.0, 2.0, 1.0]]])
    loss, cache = uniform_cross_entropy_forward(logits, np.array([[True, False]]))
    assert loss == pytest.approx((0 + 1000 + 2000) / 3, rel=1e-12)
    dlogits = uniform_cross_entropy_backward(1.0, cache)
    assert np.all(np.isfinite(dlogits)) and not np.any(dlogits[0, 1])
    empty, cache = uniform_cross_entropy_forward(logits, np.zeros((1, 2), bool))
    assert empty == 0 and not np.any(uniform_cross_entropy_backward(1.0, cache))


def test_float32_agrees_with_float64():
    rng = np.random.default_rng(5)
    logits, mask = 3 * rng.standard_normal((4, 6, 50)), rng.random((4, 6)) < 0.8
    loss64, cache64 = uniform_cross_entropy_forward(logits, mask)
    loss32, cache32 = uniform_cross_entropy_forward(logits.astype(np.float32), mask)
    assert loss32.dtype == np.float32 and loss32 == pytest.approx(loss64, rel=1e-5)
    d64, d32 = uniform_cross_entropy_backward(1.0, cache64), uniform_cross_entropy_backward(1.0, cache32)
    assert d32.dtype == np.float32 and np.abs(d32 - d64).max() <= 1e-5 * np.abs(d64).max()


def test_shapes_that_do_not_fit_name_the_argument():
    with pytest.raises(ValueError, match="mask"):
        uniform_cross_entropy_forward(np.zeros((2, 3, 4)), np.zeros((2, 4)))
