"""Masked softmax cross-entropy: gradients, values against SciPy, masks, huge logits, bad input."""
import numpy as np
import pytest
from scipy.special import log_softmax, softmax

from rawcap.gradcheck import softmax_cross_entropy_check
from rawcap.layers import softmax_cross_entropy_backward, softmax_cross_entropy_forward

from helpers import assert_gradients_match

SEEDS = [0, 1, 2]

# float32 keeps about 7 significant digits (eps = 1.2e-7); a log-sum-exp over a few words and a
# mean over a few tokens lose at most a few of them, so float32 agrees with float64 to this.
FLOAT32_RTOL, FLOAT32_ATOL = 1e-5, 1e-6


def cross_entropy_by_hand(logits, targets, mask):
    """The loss and its gradient: -log p[target] averaged over the tokens whose mask is 1."""
    log_p = log_softmax(logits, axis=2)
    p = softmax(logits, axis=2)
    count = int(mask.sum())
    loss, dlogits = 0.0, np.zeros_like(logits)
    for n in range(logits.shape[0]):
        for t in range(logits.shape[1]):
            if mask[n, t]:
                loss -= log_p[n, t, targets[n, t]] / count
                dlogits[n, t] = p[n, t] / count
                dlogits[n, t, targets[n, t]] -= 1 / count
    return loss, dlogits


def random_batch(rng, N=3, T=4, V=7, scale=1.0):
    """Logits, targets and a mask with one sequence fully masked and at least one token counted."""
    return softmax_cross_entropy_check(rng, N, T, V, scale).args.values()


# ---- gradients -------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("scale", [1.0, 30.0])
@pytest.mark.parametrize("N, T, V", [(1, 1, 2), (3, 4, 7), (2, 5, 2), (4, 1, 3)])
def test_softmax_cross_entropy_gradients(seed, scale, N, T, V):
    """The builder masks tokens, and masks the whole first sequence; scale=30 makes p nearly
    one-hot, where a careless softmax loses its small probabilities."""
    rng = np.random.default_rng(seed)
    assert_gradients_match(softmax_cross_entropy_check(rng, N, T, V, scale), rng)


# ---- values ----------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("scale", [1.0, 30.0])
def test_loss_and_gradient_match_scipy(seed, scale):
    logits, targets, mask = random_batch(np.random.default_rng(seed), scale=scale)
    loss, cache = softmax_cross_entropy_forward(logits, targets, mask)
    loss_hand, dlogits_hand = cross_entropy_by_hand(logits, targets, mask)
    assert np.ndim(loss) == 0
    assert loss == pytest.approx(loss_hand, rel=1e-12)
    np.testing.assert_allclose(softmax_cross_entropy_backward(1.0, cache), dlogits_hand,
                               rtol=1e-10, atol=1e-15)


def test_masked_tokens_get_exactly_zero_gradient():
    logits, targets, mask = random_batch(np.random.default_rng(0), N=4, T=6)
    _, cache = softmax_cross_entropy_forward(logits, targets, mask)
    dlogits = softmax_cross_entropy_backward(1.0, cache)
    assert not mask.all() and mask.any()
    assert np.all(dlogits[~mask] == 0)
    assert np.all(np.abs(dlogits[mask]).max(axis=1) > 0)


def test_masked_tokens_do_not_change_the_loss():
    """Whatever the logits and targets of a masked token, the loss stays the same."""
    rng = np.random.default_rng(0)
    logits, targets, mask = random_batch(rng)
    loss, _ = softmax_cross_entropy_forward(logits, targets, mask)
    logits2, targets2 = logits.copy(), targets.copy()
    logits2[~mask] = 100 * rng.standard_normal(logits2[~mask].shape)
    targets2[~mask] = (targets2[~mask] + 1) % logits.shape[2]
    loss2, _ = softmax_cross_entropy_forward(logits2, targets2, mask)
    assert loss2 == loss


def test_all_masked_batch_gives_zero_loss_and_zero_gradient():
    logits, targets, mask = random_batch(np.random.default_rng(0))
    loss, cache = softmax_cross_entropy_forward(logits, targets, np.zeros_like(mask))
    assert loss == 0.0
    np.testing.assert_array_equal(softmax_cross_entropy_backward(1.0, cache), 0.0)


def test_dloss_scales_the_gradient():
    logits, targets, mask = random_batch(np.random.default_rng(0))
    _, cache = softmax_cross_entropy_forward(logits, targets, mask)
    np.testing.assert_allclose(softmax_cross_entropy_backward(2.5, cache),
                               2.5 * softmax_cross_entropy_backward(1.0, cache), rtol=1e-15)


@pytest.mark.parametrize("mask_dtype", [np.int64, np.int32, np.uint8, np.float64, np.float32])
def test_bool_int_and_float_masks_agree(mask_dtype):
    logits, targets, mask = random_batch(np.random.default_rng(0))
    loss, cache = softmax_cross_entropy_forward(logits, targets, mask)
    loss2, cache2 = softmax_cross_entropy_forward(logits, targets, mask.astype(mask_dtype))
    assert loss2 == loss
    np.testing.assert_array_equal(softmax_cross_entropy_backward(1.0, cache2),
                                  softmax_cross_entropy_backward(1.0, cache))


@pytest.mark.parametrize("targets_dtype", [np.int32, np.uint8, np.int16])
def test_any_integer_dtype_for_targets(targets_dtype):
    logits, targets, mask = random_batch(np.random.default_rng(0))
    loss, _ = softmax_cross_entropy_forward(logits, targets, mask)
    loss2, _ = softmax_cross_entropy_forward(logits, targets.astype(targets_dtype), mask)
    assert loss2 == loss


# ---- huge logits -----------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("target, expected_loss", [(2, 0.0), (0, 2e4)])
def test_huge_logits_stay_finite(dtype, target, expected_loss):
    """One logit at +1e4 and the rest at -1e4: exp(1e4) overflows, but the shifted log-sum-exp
    does not. p is one-hot, so the loss is 0 if the target is that logit and 1e4 - (-1e4) = 2e4
    otherwise, and the gradient is p - onehot(target)."""
    logits = np.full((1, 1, 5), -1e4, dtype=dtype)
    logits[0, 0, 2] = 1e4
    targets, mask = np.array([[target]]), np.ones((1, 1), dtype=bool)
    loss, cache = softmax_cross_entropy_forward(logits, targets, mask)
    dlogits = softmax_cross_entropy_backward(1.0, cache)
    assert np.isfinite(loss) and loss == pytest.approx(expected_loss, rel=1e-6, abs=1e-6)
    expected = np.zeros((1, 1, 5))
    expected[0, 0, 2] += 1
    expected[0, 0, target] -= 1
    assert np.all(np.isfinite(dlogits))
    np.testing.assert_allclose(dlogits, expected, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_random_logits_of_size_1e4(dtype):
    rng = np.random.default_rng(0)
    logits, targets, mask = random_batch(rng)
    logits = 1e4 * rng.choice([-1.0, 1.0], size=logits.shape) * rng.uniform(0.5, 1, size=logits.shape)
    loss, cache = softmax_cross_entropy_forward(logits.astype(dtype), targets, mask)
    dlogits = softmax_cross_entropy_backward(1.0, cache)
    loss_hand, dlogits_hand = cross_entropy_by_hand(logits, targets, mask)
    assert np.isfinite(loss) and np.all(np.isfinite(dlogits))
    assert loss == pytest.approx(loss_hand, rel=FLOAT32_RTOL)
    np.testing.assert_allclose(dlogits, dlogits_hand, rtol=FLOAT32_RTOL, atol=FLOAT32_ATOL)


# ---- float32 ---------------------------------------------------------------------------------

@pytest.mark.parametrize("scale", [1.0, 30.0])
def test_float32_agrees_with_float64(scale):
    logits, targets, mask = random_batch(np.random.default_rng(0), scale=scale)
    loss64, cache64 = softmax_cross_entropy_forward(logits, targets, mask)
    loss32, cache32 = softmax_cross_entropy_forward(logits.astype(np.float32), targets, mask)
    dlogits32 = softmax_cross_entropy_backward(1.0, cache32)
    assert loss32.dtype == np.float32 and dlogits32.dtype == np.float32
    assert loss32 == pytest.approx(loss64, rel=FLOAT32_RTOL)
    np.testing.assert_allclose(dlogits32, softmax_cross_entropy_backward(1.0, cache64),
                               rtol=FLOAT32_RTOL, atol=FLOAT32_ATOL)


# ---- backward leaves the cache alone ---------------------------------------------------------

def test_backward_does_not_write_into_the_cache():
    logits, targets, mask = random_batch(np.random.default_rng(0))
    _, cache = softmax_cross_entropy_forward(logits, targets, mask)
    before = [np.copy(a) for a in cache]
    softmax_cross_entropy_backward(3.0, cache)
    assert len(cache) == len(before)
    for a, b in zip(cache, before):
        np.testing.assert_array_equal(a, b)


# ---- bad input -------------------------------------------------------------------------------

N, T, V = 3, 4, 7


def loss_args(**override):
    rng = np.random.default_rng(0)
    args = dict(logits=rng.standard_normal((N, T, V)), targets=rng.integers(0, V, size=(N, T)),
                mask=np.ones((N, T), dtype=bool))
    args.update(override)
    return args


@pytest.mark.parametrize("override, message", [
    pytest.param(dict(logits=np.zeros((N, T))),
                 r"logits must have 3 dims \[N, T, V\], got shape \(3, 4\)", id="logits rank"),
    pytest.param(dict(targets=np.zeros((N, T + 1), dtype=int)),
                 r"targets has shape \(3, 5\), but its T axis should be 4 \(T=4 from logits\)",
                 id="targets T"),
    pytest.param(dict(mask=np.ones((N - 1, T))),
                 r"mask has shape \(2, 4\), but its N axis should be 3 \(N=3 from logits\)",
                 id="mask N"),
    pytest.param(dict(targets=np.zeros((N, T))),
                 r"targets must hold integers, got dtype float64", id="float targets"),
    pytest.param(dict(targets=np.full((N, T), V)),
                 r"targets must lie in \[0, 7\), got values in \[7, 7\]", id="target = V"),
    pytest.param(dict(targets=np.full((N, T), -1)),
                 r"targets must lie in \[0, 7\), got values in \[-1, -1\]", id="target < 0"),
    pytest.param(dict(mask=np.full((N, T), 2)),
                 r"mask must hold only 0 and 1", id="mask 2"),
    pytest.param(dict(mask=np.full((N, T), 0.5)),
                 r"mask must hold only 0 and 1", id="mask 0.5"),
    pytest.param(dict(mask=np.full((N, T), "1")),
                 r"mask must be bool or numeric, got dtype <U1", id="mask of strings"),
    pytest.param(dict(logits=np.zeros((N, T, V), dtype=int)),
                 r"logits must be float32 or float64, got dtype int64", id="int logits"),
    pytest.param(dict(logits=np.zeros((N, T, V)).tolist()),
                 r"logits must be an array, got list", id="list"),
])
def test_softmax_cross_entropy_rejects_bad_input(override, message):
    with pytest.raises(ValueError, match="softmax_cross_entropy_forward: " + message):
        softmax_cross_entropy_forward(**loss_args(**override))
