"""Label smoothing's margin (what it adds to the cross-entropy): gradients, values, edges."""
import numpy as np
import pytest
from scipy.special import log_softmax

from rawcap.gradcheck import label_smoothing_check
from rawcap.layers import (label_smoothing_backward, label_smoothing_forward,
                           soft_cross_entropy_forward, softmax_cross_entropy_forward)

from helpers import assert_gradients_match


@pytest.mark.parametrize("seed, sizes", [(0, {}), (1, dict(N=2, T=3, V=2)), (2, dict(N=4, T=5, V=9))])
def test_gradient_matches_central_differences(seed, sizes):
    rng = np.random.default_rng(seed)
    assert_gradients_match(label_smoothing_check(rng, **sizes), rng)


def test_cross_entropy_plus_eps_margin_is_the_cross_entropy_against_the_smoothed_targets():
    """CE + eps margin = -sum_v q_v log p_v for q = (1 - eps) onehot + eps / V, masked tokens
    left out (scipy's log_softmax, and the soft cross-entropy layer, both say so)."""
    rng = np.random.default_rng(4)
    eps, logits, targets = 0.1, 3 * rng.standard_normal((3, 4, 7)), rng.integers(0, 7, (3, 4))
    mask = rng.random((3, 4)) < 0.7
    ce, _ = softmax_cross_entropy_forward(logits, targets, mask)
    margin, _ = label_smoothing_forward(logits, targets, mask)
    q = (1 - eps) * np.eye(7)[targets] + eps / 7
    per_token = -(q * log_softmax(logits, axis=2)).sum(axis=2)
    expected = (per_token * mask).sum() / mask.sum()
    assert ce + eps * margin == pytest.approx(expected, rel=1e-12)
    soft, _ = soft_cross_entropy_forward(logits[mask], q[mask])
    assert soft == pytest.approx(expected, rel=1e-12)


def test_gradient_is_onehot_minus_uniform_where_unmasked():
    rng = np.random.default_rng(3)
    logits, targets = rng.standard_normal((2, 3, 5)), rng.integers(0, 5, (2, 3))
    mask = np.array([[1, 1, 0], [1, 0, 0]], bool)
    _, cache = label_smoothing_forward(logits, targets, mask)
    expected = 2.0 * (np.eye(5)[targets] - 1 / 5) * mask[:, :, None] / 3
    np.testing.assert_allclose(label_smoothing_backward(2.0, cache), expected, rtol=1e-12)


def test_masked_tokens_get_no_gradient_and_an_all_masked_batch_gives_zero():
    logits = np.array([[[1000.0, 0.0, -1000.0], [3.0, 2.0, 1.0]]])
    targets = np.array([[0, 2]])
    loss, cache = label_smoothing_forward(logits, targets, np.array([[True, False]]))
    assert loss == pytest.approx(1000.0, rel=1e-12)           # 1000 - mean(1000, 0, -1000)
    assert not np.any(label_smoothing_backward(1.0, cache)[0, 1])
    empty, cache = label_smoothing_forward(logits, targets, np.zeros((1, 2), bool))
    assert empty == 0 and not np.any(label_smoothing_backward(1.0, cache))


def test_float32_agrees_with_float64():
    rng = np.random.default_rng(5)
    logits, targets = 3 * rng.standard_normal((4, 6, 50)), rng.integers(0, 50, (4, 6))
    mask = rng.random((4, 6)) < 0.8
    loss64, cache64 = label_smoothing_forward(logits, targets, mask)
    loss32, cache32 = label_smoothing_forward(logits.astype(np.float32), targets, mask)
    assert loss32.dtype == np.float32 and loss32 == pytest.approx(loss64, rel=1e-5)
    d64, d32 = label_smoothing_backward(1.0, cache64), label_smoothing_backward(1.0, cache32)
    assert d32.dtype == np.float32 and np.abs(d32 - d64).max() <= 1e-5 * np.abs(d64).max()


def test_shapes_that_do_not_fit_name_the_argument():
    with pytest.raises(ValueError, match="targets"):
        label_smoothing_forward(np.zeros((2, 3, 4)), np.zeros((2, 4), int), np.ones((2, 3)))
