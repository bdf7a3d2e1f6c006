"""Cross-entropy against soft targets (the bag-of-words loss): gradients, values, edge cases."""
import numpy as np
import pytest
from scipy.special import log_softmax, softmax

from rawcap.gradcheck import soft_cross_entropy_check
from rawcap.layers import (soft_cross_entropy_backward, soft_cross_entropy_forward,
                           softmax_cross_entropy_forward)

from helpers import assert_gradients_match


@pytest.mark.parametrize("seed, sizes", [(0, {}), (1, dict(N=3, V=2)), (2, dict(N=5, V=9))])
def test_gradient_matches_central_differences(seed, sizes):
    rng = np.random.default_rng(seed)
    assert_gradients_match(soft_cross_entropy_check(rng, **sizes), rng)


def test_value_and_gradient_against_scipy():
    rng = np.random.default_rng(3)
    logits, q = rng.standard_normal((4, 6)), rng.random((4, 6))
    q /= q.sum(axis=1, keepdims=True)
    loss, cache = soft_cross_entropy_forward(logits, q)
    assert loss == pytest.approx(-(q * log_softmax(logits, axis=1)).sum() / 4, rel=1e-12)
    np.testing.assert_allclose(soft_cross_entropy_backward(2.0, cache),
                               2.0 * (softmax(logits, axis=1) - q) / 4, rtol=1e-12)


def test_one_hot_targets_give_the_ordinary_cross_entropy():
    rng = np.random.default_rng(4)
    logits, targets = rng.standard_normal((5, 7)), rng.integers(0, 7, 5)
    loss, _ = soft_cross_entropy_forward(logits, np.eye(7)[targets])
    ordinary, _ = softmax_cross_entropy_forward(logits[:, None], targets[:, None], np.ones((5, 1)))
    assert loss == pytest.approx(float(ordinary), rel=1e-12)


def test_a_row_of_zeros_is_left_out_and_huge_logits_stay_finite():
    logits = np.array([[1000.0, 0.0, -1000.0], [3.0, 2.0, 1.0]])
    q = np.array([[0.5, 0.5, 0.0], [0.0, 0.0, 0.0]])
    loss, cache = soft_cross_entropy_forward(logits, q)
    assert loss == pytest.approx(0.5 * 1000.0 / 2, rel=1e-12)        # -(0.5 log 1 + 0.5 log e^-1000)/N
    dlogits = soft_cross_entropy_backward(1.0, cache)
    assert np.all(np.isfinite(dlogits)) and not np.any(dlogits[1])


def test_float32_agrees_with_float64():
    rng = np.random.default_rng(5)
    logits, q = 3 * rng.standard_normal((8, 50)), rng.random((8, 50))
    q /= q.sum(axis=1, keepdims=True)
    loss64, cache64 = soft_cross_entropy_forward(logits, q)
    loss32, cache32 = soft_cross_entropy_forward(logits.astype(np.float32), q.astype(np.float32))
    assert loss32.dtype == np.float32 and loss32 == pytest.approx(loss64, rel=1e-5)
    d64, d32 = soft_cross_entropy_backward(1.0, cache64), soft_cross_entropy_backward(1.0, cache32)
    assert d32.dtype == np.float32 and np.abs(d32 - d64).max() <= 1e-5 * np.abs(d64).max()


def test_shapes_that_do_not_fit_name_the_argument():
    with pytest.raises(ValueError, match="q"):
        soft_cross_entropy_forward(np.zeros((2, 3)), np.zeros((2, 4)))
