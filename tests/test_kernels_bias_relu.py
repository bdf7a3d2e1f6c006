"""kernels/bias_relu.py against version 0 (rawcap.layers.activations), under the simulator or on a GPU."""
import numpy as np
import pytest
from kernel_helpers import (
    assert_kernel_gradients,
    assert_same_outputs,
    kernel_xp,
    run_version,
)

from rawcap.backend import to_numpy, versions
from rawcap.gradcheck import bias_relu_check

pytestmark = pytest.mark.gpu
KERNELS = versions("bias_relu", "cuda")[1:]


@pytest.mark.parametrize("version", KERNELS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("N, C, H, W", [
    (1, 1, 1, 1),
    (2, 3, 5, 1),
    (1, 2, 3, 33),
    (1, 1, 33, 33),                             # 1089 entries per channel: two blocks for db
])
def test_bias_relu_matches_version_0(version, dtype, N, C, H, W):
    xp = kernel_xp()
    rng = np.random.default_rng(N + C + H + W)
    x = xp.asarray(rng.standard_normal((N, C, H, W)), dtype=dtype)
    b = xp.asarray(rng.standard_normal(C), dtype=dtype)
    dout = xp.asarray(rng.standard_normal((N, C, H, W)), dtype=dtype)
    *want, want_cache = run_version("bias_relu_forward", 0, x, b)
    *got, got_cache = run_version("bias_relu_forward", version, x, b)
    assert_same_outputs(got, want, dtype, f"bias_relu_forward v{version}")
    want_grads = run_version("bias_relu_backward", 0, dout, want_cache)
    assert_same_outputs(run_version("bias_relu_backward", version, dout, got_cache), want_grads,
                        dtype, f"bias_relu_backward v{version}")


@pytest.mark.parametrize("version", KERNELS)
def test_bias_relu_nan_propagates_as_in_version_0(version):
    xp = kernel_xp()
    x = xp.asarray([[[[np.nan, -1.0, 2.0]], [[0.5, np.nan, -3.0]]]])
    b, dout = xp.asarray([0.25, -0.25]), xp.ones(x.shape)
    want, want_cache = run_version("bias_relu_forward", 0, x, b)
    got, got_cache = run_version("bias_relu_forward", version, x, b)
    np.testing.assert_array_equal(to_numpy(got), to_numpy(want))
    for got_grad, want_grad in zip(run_version("bias_relu_backward", version, dout, got_cache),
                                   run_version("bias_relu_backward", 0, dout, want_cache), strict=True):
        np.testing.assert_array_equal(to_numpy(got_grad), to_numpy(want_grad))


@pytest.mark.parametrize("version", KERNELS)
def test_bias_relu_gradients(version):
    assert_kernel_gradients("bias_relu", version, bias_relu_check, 6, shape=(2, 3, 2, 3))


@pytest.mark.parametrize("version", KERNELS)
def test_bias_relu_shape_errors(version):
    xp = kernel_xp()
    x = xp.zeros((2, 3, 4, 5))
    with pytest.raises(ValueError, match="x must have 4 dims"):
        run_version("bias_relu_forward", version, x[0], xp.zeros(3))
    with pytest.raises(ValueError, match="b has shape"):
        run_version("bias_relu_forward", version, x, xp.zeros(4))
    _, cache = run_version("bias_relu_forward", 0, x, xp.zeros(3))
    with pytest.raises(ValueError, match="dout"):
        run_version("bias_relu_backward", version, xp.zeros((2, 3, 5, 4)), cache)
