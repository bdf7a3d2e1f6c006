"""The whole captioner through the kernel path, against the NumPy layers.

A tiny model in float64: the loss and every gradient with all kernels pinned must equal version
0's, and three Adam steps must land on the same parameters. Under the simulator in CI; on a GPU
(-m gpu) the same test runs on CuPy arrays.
"""
import numpy as np
import pytest
from kernel_helpers import kernel_xp, relative_difference

from rawcap.backend import kernels_pinned, to_numpy
from rawcap.model import Config, init_params, loss_and_grads
from rawcap.optim import Adam, clip_global_norm

pytestmark = pytest.mark.gpu
CONFIG = Config(vocab_size=9, image_size=4, channels=(3,), embed_size=4, hidden_size=5,
                attention_size=3, dropout=0.0, lambda_alpha=0.5, weight_decay=1e-3)


def batch(xp, rng, B_img=2, per_image=2, T=3):
    images = rng.random((B_img, 3, CONFIG.image_size, CONFIG.image_size))
    tokens = rng.integers(4, CONFIG.vocab_size, size=(B_img * per_image, T + 1))
    mask = np.ones((B_img * per_image, T), bool)
    mask[0, 1:] = False                                   # a short caption: masked tokens
    return [xp.asarray(a) for a in (images, tokens[:, :-1], tokens[:, 1:], mask,
                                    np.repeat(np.arange(B_img), per_image))]


def train_steps(xp, pins, steps=3):
    """Losses, first gradients and final parameters of `steps` Adam steps with `pins`."""
    rng = np.random.default_rng(0)
    params = {k: xp.asarray(v) for k, v in init_params(CONFIG, rng, dtype=np.float64).items()}
    optimizer, losses, first_grads = Adam(params), [], None
    with kernels_pinned(pins):
        for _ in range(steps):
            loss, _, grads = loss_and_grads(params, CONFIG, *batch(xp, rng))
            first_grads = first_grads or {k: to_numpy(g) for k, g in grads.items()}
            clip_global_norm(grads, 5.0)
            optimizer.step(params, grads, 1e-2)
            losses.append(loss)
    return losses, first_grads, {k: to_numpy(p) for k, p in params.items()}


@pytest.mark.parametrize("pins", ["all=1", "all=1,embedding=2"])
def test_training_steps_match_version_0(pins):
    xp = kernel_xp()
    losses0, grads0, params0 = train_steps(xp, "all=0")
    losses1, grads1, params1 = train_steps(xp, pins)
    np.testing.assert_allclose(losses1, losses0, rtol=1e-12)
    for name in grads0:
        assert relative_difference(grads1[name], grads0[name]) < 1e-12, f"d{name}"
        assert relative_difference(params1[name], params0[name]) < 1e-12, name
