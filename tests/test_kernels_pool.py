"""kernels/pool.py against version 0 (rawcap.layers.pool), under the simulator or on a GPU."""
import numpy as np
import pytest
from kernel_helpers import (
    assert_kernel_gradients,
    assert_same_outputs,
    kernel_xp,
    run_version,
)

from rawcap.backend import to_numpy, versions
from rawcap.gradcheck import maxpool2d_check

pytestmark = pytest.mark.gpu
KERNELS = versions("maxpool2d", "cuda")[1:]


def pool_input(rng, shape, ties):
    """Random entries, or (ties) integers in [-2, 2], so most windows hold equal maxima; either
    way the first 3x3 of every image is all zeros."""
    x = rng.integers(-2, 3, shape) if ties else rng.standard_normal(shape)
    x = x.astype(np.float64)
    x[:, :, :3, :3] = 0
    return x


@pytest.mark.parametrize("version", KERNELS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("N, C, H, W, size, stride", [
    (1, 1, 3, 3, 1, 1),                         # size 1: every pixel its own window
    (1, 2, 5, 7, 2, 2),                         # the model's pool; the last row and column unused
    (2, 1, 7, 5, 3, 2),                         # overlapping windows
    (1, 1, 4, 33, 3, 1),                        # stride 1: a pixel in up to 9 windows
    (1, 2, 5, 8, 2, 3),                         # gaps between windows
])
def test_maxpool2d_matches_version_0(version, dtype, ties, N, C, H, W, size, stride):
    xp = kernel_xp()
    rng = np.random.default_rng(N + C + H + W + size)
    x = xp.asarray(pool_input(rng, (N, C, H, W), ties), dtype=dtype)
    want, want_cache = run_version("maxpool2d_forward", 0, x, size=size, stride=stride)
    got, got_cache = run_version("maxpool2d_forward", version, x, size=size, stride=stride)
    assert_same_outputs([got], [want], dtype, f"maxpool2d_forward v{version}")
    assert (to_numpy(got_cache[1]) == to_numpy(want_cache[1])).all(), "a different winner"
    dout = xp.asarray(rng.standard_normal(want.shape), dtype=dtype)
    want_dx = run_version("maxpool2d_backward", 0, dout, want_cache)
    assert_same_outputs([run_version("maxpool2d_backward", version, dout, got_cache)], [want_dx],
                        dtype, f"maxpool2d_backward v{version}")
    assert_same_outputs([run_version("maxpool2d_backward", 0, dout, got_cache)], [want_dx],
                        dtype, f"maxpool2d_backward v0 on v{version}'s cache")


@pytest.mark.parametrize("version", KERNELS)
def test_maxpool2d_nan_wins_as_in_version_0(version):
    xp = kernel_xp()
    x = np.zeros((1, 1, 3, 4))
    x[0, 0, 1, 1] = x[0, 0, 2, 2] = np.nan
    x = xp.asarray(x)
    want, want_cache = run_version("maxpool2d_forward", 0, x, size=2, stride=1)
    got, got_cache = run_version("maxpool2d_forward", version, x, size=2, stride=1)
    np.testing.assert_array_equal(to_numpy(got), to_numpy(want))
    np.testing.assert_array_equal(to_numpy(got_cache[1]), to_numpy(want_cache[1]))


@pytest.mark.parametrize("version", KERNELS)
@pytest.mark.parametrize("size, stride", [(2, 2), (3, 2)])
def test_maxpool2d_gradients(version, size, stride):
    assert_kernel_gradients("maxpool2d", version, maxpool2d_check, 5, N=1, C=2, H=5, W=4, size=size, stride=stride)


@pytest.mark.parametrize("version", KERNELS)
def test_maxpool2d_shape_errors(version):
    xp = kernel_xp()
    x = xp.zeros((1, 2, 4, 4))
    with pytest.raises(ValueError, match="x must have 4 dims"):
        run_version("maxpool2d_forward", version, x[0])
    with pytest.raises(ValueError, match="does not fit"):
        run_version("maxpool2d_forward", version, x, size=5)
    with pytest.raises(ValueError, match="stride must be"):
        run_version("maxpool2d_forward", version, x, stride=0)
    _, cache = run_version("maxpool2d_forward", 0, x)
    with pytest.raises(ValueError, match="dout"):
        run_version("maxpool2d_backward", version, xp.zeros((1, 2, 3, 2)), cache)
