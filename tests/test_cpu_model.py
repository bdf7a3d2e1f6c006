"""The whole captioner through the CPU versions (the default on NumPy arrays) against the layers
(--kernels all=0): a tiny model in float64, the loss, every gradient and three Adam steps equal
to 1e-12; and in float32 at a larger size, the loss and gradients to a stated tolerance."""
import numpy as np
from kernel_helpers import relative_difference
from test_kernels_model import train_steps

from rawcap.backend import kernels_pinned
from rawcap.model import Config, init_params, loss_and_grads


def test_cpu_default_training_steps_match_version_0_in_float64():
    losses0, grads0, params0 = train_steps(np, "all=0")
    losses1, grads1, params1 = train_steps(np, "")
    np.testing.assert_allclose(losses1, losses0, rtol=1e-12)
    for name in grads0:
        assert relative_difference(grads1[name], grads0[name]) < 1e-12, f"d{name}"
        assert relative_difference(params1[name], params0[name]) < 1e-12, name


def test_cpu_default_loss_and_grads_match_version_0_in_float32():
    """float32, 8 images x 2 captions at S=32: every gradient within 1e-4 of its largest entry
    (sums of thousands of float32 terms in different orders, and the rational tanh)."""
    config = Config(vocab_size=50, image_size=32, channels=(8, 16), embed_size=16, hidden_size=32,
                    attention_size=16, dropout=0.0)
    rng = np.random.default_rng(1)
    params = init_params(config, rng)
    images = rng.random((8, 3, 32, 32), dtype=np.float32)
    tokens = rng.integers(4, 50, size=(16, 7))
    mask = rng.random((16, 6)) < 0.8
    batch = (images, tokens[:, :-1], tokens[:, 1:], mask, np.repeat(np.arange(8), 2))
    results = []
    for pins in ("all=0", ""):
        with kernels_pinned(pins):
            results.append(loss_and_grads(params, config, *batch))
    (loss0, _, grads0), (loss1, _, grads1) = results
    assert abs(loss1 - loss0) <= 1e-5 * abs(loss0)
    for name in grads0:
        assert grads1[name].dtype == np.float32, name
        assert relative_difference(grads1[name], grads0[name]) < 1e-4, f"d{name}"
