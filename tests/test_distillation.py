"""Word-level distillation's term (rawcap.layers.distillation): its loss against the dense soft
cross-entropy, its gradient riding on each version of the cross-entropy's, central differences."""
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
    """Whichever version computed the cross-entropy's gradient (layer, CUDA kernel under the
    simulator, CPU kernels), the term's backward turns it into the dense formula's."""
    rng = np.random.default_rng(7)
    N, T, V, k, weight = 5, 6, 40, 8, 1.3
    args = distillation_check(rng, N, T, V, k).args
    logits = 4 * args["logits"]                                        # some confident steps
    targets, mask, indices, probs = (args[name] for name in ("targets", "mask", "indices", "probs"))
    mask[3, 1:] = False                                                # and a second short caption
    want_loss, want_dlogits = dense_reference(logits, targets, mask, indices, probs, weight)

    term, cache = distillation_forward(logits.astype(dtype), targets, mask, indices, probs)
    _, ce_cache = run_version("softmax_cross_entropy_forward", version, logits.astype(dtype),
                              targets, mask, overwrite_logits=True)
    ce_dlogits = run_version("softmax_cross_entropy_backward", version, 1.0, ce_cache)
    dlogits = distillation_backward(weight, ce_dlogits, cache)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    assert term.dtype == dlogits.dtype == dtype
    assert term == pytest.approx(want_loss, rel=tol)
    assert np.abs(dlogits - want_dlogits).max() <= tol * np.abs(want_dlogits).max()
    assert not dlogits[~mask].any()                       # a step not counted gets nothing


def test_a_teacher_sure_of_each_target_doubles_the_cross_entropy_and_huge_logits_stay_finite():
    logits = np.array([[[1000.0, 0.0, -1000.0], [3.0, 2.0, 1.0]]])
    targets, mask = np.array([[2, 0]]), np.array([[True, True]])
    indices, probs = np.array([[[2, 1], [0, 1]]]), np.array([[[1.0, 0.0], [1.0, 0.0]]])
    term, cache = distillation_forward(logits, targets, mask, indices, probs)
    ce = (2000.0 - log_softmax(logits[0, 1])[0]) / 2          # -log p of the targets, averaged
    assert term == pytest.approx(ce, rel=1e-12)
    _, ce_cache = run_version("softmax_cross_entropy_forward", 0, logits, targets, mask)
    ce_dlogits = run_version("softmax_cross_entropy_backward", 0, 1.0, ce_cache)
    dce = ce_dlogits.copy()
    dlogits = distillation_backward(1.0, ce_dlogits, cache)
    assert np.all(np.isfinite(dlogits))
    np.testing.assert_allclose(dlogits, 2 * dce, rtol=1e-12, atol=1e-300)


def test_shapes_that_do_not_fit_name_the_argument():
    logits, targets, mask = np.zeros((2, 3, 5)), np.zeros((2, 3), int), np.ones((2, 3), bool)
    with pytest.raises(ValueError, match="probs"):
        distillation_forward(logits, targets, mask, np.zeros((2, 3, 4), int), np.zeros((2, 3, 2)))
    with pytest.raises(ValueError, match="indices"):
        distillation_forward(logits, targets, mask, np.zeros((2, 2, 4), int), np.zeros((2, 2, 4)))
