"""kernels/batchnorm.py against version 0 (rawcap.layers.batchnorm), under the simulator or on a GPU."""
import numpy as np
import pytest
from kernel_helpers import (
    assert_kernel_gradients,
    assert_same_outputs,
    kernel_xp,
    run_version,
)

from rawcap.backend import versions
from rawcap.gradcheck import batchnorm2d_check

pytestmark = pytest.mark.gpu
KERNELS = versions("batchnorm2d", "cuda")[1:]


@pytest.mark.parametrize("version", KERNELS)
@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("N, C, H, W", [
    (1, 1, 2, 1),
    (2, 3, 5, 1),
    (1, 2, 3, 33),                              # 99 entries: a block of 128, some threads idle
    (2, 2, 11, 13),                             # 286 entries: each thread takes several
])
def test_batchnorm2d_matches_version_0(version, train, dtype, N, C, H, W):
    xp = kernel_xp()
    rng = np.random.default_rng(N + C + H + W)
    x = xp.asarray(3 * rng.standard_normal((N, C, H, W)) + 2, dtype=dtype)
    gamma, beta, mean = (xp.asarray(rng.standard_normal(C), dtype=dtype) for _ in range(3))
    var = xp.asarray(rng.uniform(0.5, 2, C), dtype=dtype)
    dout = xp.asarray(rng.standard_normal((N, C, H, W)), dtype=dtype)
    args = (x, gamma, beta, mean, var)
    want, want_stats, want_cache = run_version("batchnorm2d_forward", 0, *args, train=train)
    got, got_stats, got_cache = run_version("batchnorm2d_forward", version, *args, train=train)
    assert_same_outputs((got, *got_stats), (want, *want_stats), dtype, f"batchnorm2d_forward v{version}")
    assert_same_outputs(run_version("batchnorm2d_backward", version, dout, got_cache),
                        run_version("batchnorm2d_backward", 0, dout, want_cache),
                        dtype, f"batchnorm2d_backward v{version}")


@pytest.mark.parametrize("version", KERNELS)
@pytest.mark.parametrize("train", [True, False])
def test_batchnorm2d_gradients(version, train):
    assert_kernel_gradients("batchnorm2d", version, batchnorm2d_check, 5, train=train,
                            N=2, C=2, H=3, W=2)


@pytest.mark.parametrize("version", KERNELS)
def test_batchnorm2d_shape_errors(version):
    xp = kernel_xp()
    x, ones, zeros = xp.zeros((2, 3, 4, 5)), xp.ones(3), xp.zeros(3)
    with pytest.raises(ValueError, match="x must have 4 dims"):
        run_version("batchnorm2d_forward", version, x[0], ones, zeros, zeros, ones)
    with pytest.raises(ValueError, match="running_mean has shape"):
        run_version("batchnorm2d_forward", version, x, ones, zeros, xp.zeros(4), ones)
    with pytest.raises(ValueError, match="more than one value per channel"):
        run_version("batchnorm2d_forward", version, x[:1, :, :1, :1], ones, zeros, zeros, ones)
    _, _, cache = run_version("batchnorm2d_forward", 0, x, ones, zeros, zeros, ones)
    with pytest.raises(ValueError, match="dout"):
        run_version("batchnorm2d_backward", version, xp.zeros((2, 3, 5, 4)), cache)
