"""Word-level distillation's term (rawcap.layers.distillation), the cross-entropy plus a margin:
against the dense soft cross-entropy with each version of the cross-entropy, and central
differences."""
import numpy as np
import pytest
from kernel_helpers import run_version
from scipy.special import log_softmax, softmax

from rawcap.backend import versions
from rawcap.gradcheck import distillation_check
from rawcap.layers import distillation_backward, distillation_forward

from helpers import assert_gradients_match


@pytest.mark.parametrize("seed, sizes", [(0, {}), (1, dict(N=2, T=3, V=4, k=4)),
                                         (2, dict(N=4, T=5, V=9, k=1, weight=2.5))])
def test_gradient_matches_central_differences(seed, sizes):
    rng = np.random.default_rng(seed)
    assert_gradients_match(distillation_check(rng, **sizes), rng)


def dense_reference(logits, targets, mask, indices, probs, weight):
    """The term and the gradient of cross-entropy + weight * term, from the dense q[N, T, V]
    (the soft cross-entropy of each counted step) and scipy's softmax."""
    N, T, V = logits.shape
    q = np.zeros((N, T, V))
    np.put_along_axis(q, indices, probs, axis=2)
    q *= mask[:, :, None]
    count = max(mask.sum(), 1)
    loss = -(q * log_softmax(logits, axis=2)).sum() / count
    p, onehot = softmax(logits, axis=2), np.eye(V)[targets]
    dce = (p - onehot) * mask[:, :, None] / count
    return loss, dce + weight * (p * q.sum(axis=2, keepdims=True) - q) / count


@pytest.mark.parametrize("version", versions("softmax_ce"))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_loss_and_gradient_are_the_dense_soft_cross_entropys_for_every_cross_entropy(version, dtype):
    """Whichever version computed the cross-entropy and its gradient (layer, CUDA kernel under
    the simulator, CPU kernels), the cross-entropy plus the margin is the dense formula's term,
    and the cross-entropy's gradient counted 1 + weight times plus the margin's is its gradient."""
    rng = np.random.default_rng(7)
    N, T, V, k, weight = 5, 6, 40, 8, 1.3
    args = distillation_check(rng, N, T, V, k).args
    logits = 4 * args["logits"]                                        # some confident steps
    targets, mask, indices, probs = (args[name] for name in ("targets", "mask", "indices", "probs"))
    mask[3, 1:] = False                                                # and a second short caption
    want_loss, want_dlogits = dense_reference(logits, targets, mask, indices, probs, weight)

    margin, cache = distillation_forward(logits.astype(dtype), targets, mask, indices, probs)
    ce, ce_cache = run_version("softmax_cross_entropy_forward", version, logits.astype(dtype),
                               targets, mask, overwrite_logits=True)
    term = ce + margin
    ce_dlogits = run_version("softmax_cross_entropy_backward", version, 1.0, ce_cache)
    ce_dlogits *= 1 + weight
    dlogits = distillation_backward(weight, ce_dlogits, cache)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    assert term.dtype == dlogits.dtype == dtype
    assert term == pytest.approx(want_loss, rel=tol)
    assert np.abs(dlogits - want_dlogits).max() <= tol * np.abs(want_dlogits).max()
    assert not dlogits[~mask].any()                       # a step not counted gets nothing


def test_a_teacher_sure_of_each_target_adds_no_margin_and_huge_logits_stay_finite():
    """q one-hot on the target: the term is the cross-entropy itself, the margin and its
    gradient 0, whatever the logits."""
    logits = np.array([[[1000.0, 0.0, -1000.0], [3.0, 2.0, 1.0]]])
    targets, mask = np.array([[2, 0]]), np.array([[True, True]])
    indices, probs = np.array([[[2, 1], [0, 1]]]), np.array([[[1.0, 0.0], [1.0, 0.0]]])
    margin, cache = distillation_forward(logits, targets, mask, indices, probs)
    assert margin == 0
    dlogits = distillation_backward(1.0, np.zeros_like(logits), cache)
    assert not dlogits.any()


def test_the_margin_is_the_teachers_words_below_the_reference():
    """One counted step, two teacher words: margin = sum_j q_j (logit_w - logit_j) / count, and
    its gradient (s onehot(w) - Q) / count added to what dlogits held; the masked step adds
    nothing."""
    logits = np.array([[[1.0, 4.0, -2.0, 0.5], [9.0, 9.0, 9.0, 9.0]]])
    targets, mask = np.array([[0, 1]]), np.array([[True, False]])
    indices, probs = np.array([[[1, 2], [0, 3]]]), np.array([[[0.75, 0.25], [0.5, 0.5]]])
    margin, cache = distillation_forward(logits, targets, mask, indices, probs)
    assert margin == pytest.approx(0.75 * (1.0 - 4.0) + 0.25 * (1.0 + 2.0), rel=1e-15)
    dlogits = distillation_backward(2.0, np.ones_like(logits), cache)
    np.testing.assert_array_equal(dlogits, [[[3.0, -0.5, 0.5, 1.0], [1.0, 1.0, 1.0, 1.0]]])


def test_shapes_that_do_not_fit_name_the_argument():
    logits, targets, mask = np.zeros((2, 3, 5)), np.zeros((2, 3), int), np.ones((2, 3), bool)
    with pytest.raises(ValueError, match="probs"):
        distillation_forward(logits, targets, mask, np.zeros((2, 3, 4), int), np.zeros((2, 3, 2)))
    with pytest.raises(ValueError, match="indices"):
        distillation_forward(logits, targets, mask, np.zeros((2, 2, 4), int), np.zeros((2, 2, 4)))
