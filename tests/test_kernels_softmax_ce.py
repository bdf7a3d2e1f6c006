"""kernels/softmax_ce.py against version 0 (rawcap.layers.loss), under the simulator or on a GPU."""
import re

import numpy as np
import pytest
from kernel_helpers import (
    assert_kernel_gradients,
    assert_same_outputs,
    kernel_xp,
    run_version,
)

from rawcap.backend import to_numpy, versions
from rawcap.gradcheck import softmax_cross_entropy_check

pytestmark = pytest.mark.gpu
KERNELS = versions("softmax_ce")[1:]


def loss_args(xp, dtype, N, T, V, seed=0, scale=1.0):
    """Random logits (`dtype`), targets and a mask as arrays of `xp`; the first sequence is masked
    entirely when there is more than one."""
    rng = np.random.default_rng(seed)
    logits = scale * rng.standard_normal((N, T, V))
    targets = rng.integers(0, V, size=(N, T))
    mask = np.ones((N, T), dtype=bool)
    if N > 1:
        mask[0] = False
    return xp.asarray(logits, dtype=dtype), xp.asarray(targets), xp.asarray(mask)


def forward_and_backward(version, logits, targets, mask, overwrite_logits):
    """-> loss, dlogits, dlogits for dloss = 2.5 of `version` (on a copy of logits when
    overwrite_logits), and the logits buffer it was given."""
    logits = logits.copy()
    loss, cache = run_version("softmax_cross_entropy_forward", version, logits, targets, mask,
                              overwrite_logits=overwrite_logits)
    return (loss, run_version("softmax_cross_entropy_backward", version, 1.0, cache),
            run_version("softmax_cross_entropy_backward", version, 2.5, cache)), logits


@pytest.mark.parametrize("version", KERNELS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("N, T, V", [
    (1, 1, 1),
    (1, 1, 33),                         # 64 threads, 31 of them idle
    (2, 2, 5),                          # the first sequence masked
    (1, 1, 300),                        # 128 threads striding over V
])
@pytest.mark.parametrize("overwrite_logits", [False, True])
def test_softmax_ce_matches_version_0(version, dtype, N, T, V, overwrite_logits):
    args = loss_args(kernel_xp(), dtype, N, T, V, seed=N + T + V)
    want, _ = forward_and_backward(0, *args, overwrite_logits)
    got, buffer = forward_and_backward(version, *args, overwrite_logits)
    assert_same_outputs(got, want, dtype, f"softmax_ce v{version} overwrite_logits={overwrite_logits}")
    if overwrite_logits:
        np.testing.assert_array_equal(to_numpy(buffer), to_numpy(got[1]))
    else:
        np.testing.assert_array_equal(to_numpy(buffer), to_numpy(args[0]))


@pytest.mark.parametrize("version", KERNELS)
@pytest.mark.parametrize("overwrite_logits", [False, True])
def test_softmax_ce_masked_rows_get_exactly_zero(version, overwrite_logits):
    xp = kernel_xp()
    logits, targets, mask = loss_args(xp, np.float64, N=2, T=2, V=5)
    mask[1, 1] = False
    (_, dlogits, _), _ = forward_and_backward(version, logits, targets, mask, overwrite_logits)
    masked = ~to_numpy(mask)
    assert np.all(to_numpy(dlogits)[masked] == 0)
    assert np.all(np.abs(to_numpy(dlogits)[~masked]).max(axis=1) > 0)


@pytest.mark.parametrize("version", KERNELS)
@pytest.mark.parametrize("overwrite_logits", [False, True])
def test_softmax_ce_all_masked_batch_gives_zero(version, overwrite_logits):
    xp = kernel_xp()
    logits, targets, mask = loss_args(xp, np.float64, N=2, T=1, V=5)
    (loss, dlogits, _), _ = forward_and_backward(version, logits, targets, xp.zeros_like(mask),
                                                 overwrite_logits)
    assert float(loss) == 0.0
    np.testing.assert_array_equal(to_numpy(dlogits), 0.0)


@pytest.mark.parametrize("version", KERNELS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_softmax_ce_huge_logits_stay_finite(version, dtype):
    """Logits of size 1e4 (either sign): exp overflows unless each row's maximum comes off first."""
    logits, targets, mask = loss_args(kernel_xp(), dtype, N=2, T=1, V=33, scale=1e4)
    got, _ = forward_and_backward(version, logits, targets, mask, False)
    want, _ = forward_and_backward(0, logits, targets, mask, False)
    assert all(np.all(np.isfinite(to_numpy(a))) for a in got)
    assert_same_outputs(got, want, dtype, f"softmax_ce v{version} logits * 1e4")


@pytest.mark.parametrize("version", KERNELS)
@pytest.mark.parametrize("change", ["logits rank", "targets T", "mask N"])
def test_softmax_ce_rejects_bad_shapes_as_version_0(version, change):
    xp = kernel_xp()
    logits, targets, mask = loss_args(xp, np.float64, N=2, T=3, V=4)
    if change == "logits rank":
        logits = logits[:, :, 0]
    elif change == "targets T":
        targets = targets[:, :-1]
    else:
        mask = mask[:-1]
    with pytest.raises(ValueError) as want:
        run_version("softmax_cross_entropy_forward", 0, logits, targets, mask)
    with pytest.raises(ValueError, match=re.escape(str(want.value))):
        run_version("softmax_cross_entropy_forward", version, logits, targets, mask)


@pytest.mark.parametrize("version", KERNELS)
@pytest.mark.parametrize("change", ["target = V", "target = -1", "mask 2"])
def test_softmax_ce_bad_values_make_the_loss_nan(version, change):
    """Ids and mask values are checked on the host batch (checking them on the device would
    synchronise): a kernel given bad ones in an unmasked row says so with a NaN loss."""
    xp = kernel_xp()
    logits, targets, mask = loss_args(xp, np.float64, N=2, T=3, V=4)
    if change == "mask 2":
        mask = xp.full(mask.shape, 2)
    else:
        targets[1, 2] = 4 if change == "target = V" else -1
    (loss, _, _), _ = forward_and_backward(version, logits, targets, mask, False)
    assert np.isnan(float(loss))


@pytest.mark.parametrize("version", KERNELS)
@pytest.mark.parametrize("scale", [1.0, 30.0])
def test_softmax_ce_gradients(version, scale):
    """The builder masks the first sequence; scale=30 makes p nearly one-hot."""
    assert_kernel_gradients("softmax_ce", version, softmax_cross_entropy_check, 3, N=2, T=2, V=5, scale=scale)
