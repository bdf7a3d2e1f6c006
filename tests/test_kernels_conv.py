"""kernels/conv.py against version 0 (rawcap.layers.conv), under the simulator or on a GPU."""
import numpy as np
import pytest
from kernel_helpers import (
    assert_kernel_gradients,
    assert_same_outputs,
    kernel_xp,
    run_version,
)

from rawcap.backend import versions
from rawcap.gradcheck import conv2d_check

pytestmark = pytest.mark.gpu
KERNELS = versions("conv2d", "cuda")[1:]


@pytest.mark.parametrize("version", KERNELS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("N, C, H, W, F, K, stride, pad, bias", [
    (1, 1, 1, 1, 1, 1, 1, 0, True),             # one pixel, 1x1 kernel
    (1, 2, 5, 4, 3, 3, 1, 1, False),            # the model's conv: 3x3, pad 1, no bias
    (2, 3, 6, 5, 2, 3, 2, 1, True),             # stride 2: the last row of the padding unused
    (1, 1, 3, 33, 2, 2, 2, 0, False),           # 33 wide: the last column unused
])
def test_conv2d_matches_version_0(version, dtype, N, C, H, W, F, K, stride, pad, bias):
    xp = kernel_xp()
    rng = np.random.default_rng(N + C + H + W)
    x = xp.asarray(rng.standard_normal((N, C, H, W)), dtype=dtype)
    w = xp.asarray(rng.standard_normal((F, C, K, K)), dtype=dtype)
    b = xp.asarray(rng.standard_normal(F), dtype=dtype) if bias else None
    want, want_cache = run_version("conv2d_forward", 0, x, w, b, stride=stride, pad=pad)
    got, got_cache = run_version("conv2d_forward", version, x, w, b, stride=stride, pad=pad)
    assert_same_outputs([got], [want], dtype, f"conv2d_forward v{version}")
    dout = xp.asarray(rng.standard_normal(want.shape), dtype=dtype)
    want_grads = run_version("conv2d_backward", 0, dout, want_cache)
    assert_same_outputs(run_version("conv2d_backward", version, dout, got_cache), want_grads,
                        dtype, f"conv2d_backward v{version}")
    assert_same_outputs(run_version("conv2d_backward", 0, dout, got_cache), want_grads,
                        dtype, f"conv2d_backward v0 on v{version}'s cache")
    assert_same_outputs(run_version("conv2d_params_backward", version, dout, got_cache),
                        want_grads[1:], dtype, f"conv2d_params_backward v{version}")


@pytest.mark.parametrize("version", KERNELS)
def test_conv2d_gradients(version):
    assert_kernel_gradients("conv2d", version, conv2d_check, 4, N=1, C=2, H=4, W=3, F=2)


@pytest.mark.parametrize("version", KERNELS)
def test_conv2d_shape_errors(version):
    xp = kernel_xp()
    x, w = xp.zeros((1, 2, 4, 4)), xp.zeros((3, 2, 3, 3))
    with pytest.raises(ValueError, match="x must have 4 dims"):
        run_version("conv2d_forward", version, x[0], w, None)
    with pytest.raises(ValueError, match="w has shape"):
        run_version("conv2d_forward", version, x, xp.zeros((3, 1, 3, 3)), None)
    with pytest.raises(ValueError, match="b has shape"):
        run_version("conv2d_forward", version, x, w, xp.zeros(2))
    with pytest.raises(ValueError, match="does not fit"):
        run_version("conv2d_forward", version, x, xp.zeros((3, 2, 5, 5)), None)
    _, cache = run_version("conv2d_forward", 0, x, w, None, pad=1)
    with pytest.raises(ValueError, match="dout"):
        run_version("conv2d_backward", version, xp.zeros((1, 3, 2, 2)), cache)
