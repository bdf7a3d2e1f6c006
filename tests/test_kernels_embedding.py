"""kernels/embedding.py against version 0 (rawcap.layers.embedding), under the simulator or on a GPU."""
import re

import numpy as np
import pytest
from kernel_helpers import (
    assert_kernel_gradients,
    assert_same_outputs,
    kernel_xp,
    run_version,
)

from rawcap.backend import versions
from rawcap.gradcheck import embedding_check

pytestmark = pytest.mark.gpu
KERNELS = versions("embedding")[1:]


@pytest.mark.parametrize("version", KERNELS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("N, T, V, D", [(1, 1, 1, 1), (3, 11, 5, 33), (2, 4, 40, 3)])
def test_backward_matches_version_0(version, dtype, N, T, V, D):
    xp = kernel_xp()
    rng = np.random.default_rng(N + T + V + D)
    ids = xp.asarray(rng.integers(0, V, size=(N, T)))
    W = xp.asarray(rng.standard_normal((V, D)), dtype=dtype)
    dout = xp.asarray(rng.standard_normal((N, T, D)), dtype=dtype)
    out, cache = run_version("embedding_forward", version, ids, W)
    assert_same_outputs([out], [W[ids]], dtype, f"embedding_forward v{version}")
    assert_same_outputs([run_version("embedding_backward", version, dout, cache)],
                        [run_version("embedding_backward", 0, dout, cache)],
                        dtype, f"embedding_backward v{version}")


def test_all_tokens_one_word_add_up():
    """The worst collision: every token is word 2, so every thread adds into one row."""
    xp = kernel_xp()
    dout = xp.asarray(np.random.default_rng(0).standard_normal((4, 9, 5)))
    _, cache = run_version("embedding_forward", 0, xp.full((4, 9), 2), xp.zeros((3, 5)))
    for version in KERNELS:
        dW = run_version("embedding_backward", version, dout, cache)
        assert float(abs(dW[[0, 1]]).max()) == 0
        assert float(abs(dW[2] - dout.sum(axis=(0, 1))).max()) < 1e-12


def test_sorted_version_is_deterministic():
    """Version 2 sums each run in the tokens' original order: the same bits every call."""
    xp = kernel_xp()
    rng = np.random.default_rng(3)
    dout = xp.asarray(rng.standard_normal((5, 7, 4)), dtype=np.float32)
    _, cache = run_version("embedding_forward", 0, xp.asarray(rng.integers(0, 3, (5, 7))),
                           xp.zeros((3, 4), np.float32))
    first = run_version("embedding_backward", 2, dout, cache)
    assert all(bool((run_version("embedding_backward", 2, dout, cache) == first).all())
               for _ in range(3))


@pytest.mark.parametrize("version", KERNELS)
def test_backward_gradients(version):
    assert_kernel_gradients("embedding", version, embedding_check, 2, N=2, T=3, V=4, D=3)


def test_bad_dout_shape_is_named():
    xp = kernel_xp()
    _, cache = run_version("embedding_forward", 0, xp.zeros((2, 3), int), xp.zeros((4, 5)))
    for version in KERNELS:
        with pytest.raises(ValueError, match="dout"):
            run_version("embedding_backward", version, xp.zeros((2, 3, 4)), cache)


@pytest.mark.parametrize("version", KERNELS)
def test_forward_rejects_bad_shapes_as_version_0(version):
    """The kernels' forward keeps the layer's shape checks (the ids' range is the host batch's,
    rawcap.data.batches.check_batch, so that the GPU is not synchronised to read them)."""
    xp = kernel_xp()
    for ids, W in [(xp.zeros((2, 3)), xp.zeros((4, 5))), (xp.zeros((2, 3), int), xp.zeros(4))]:
        with pytest.raises(ValueError) as want:
            run_version("embedding_forward", 0, ids, W)
        with pytest.raises(ValueError, match=re.escape(str(want.value))):
            run_version("embedding_forward", version, ids, W)
