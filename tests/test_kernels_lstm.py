"""kernels/lstm.py against version 0 (rawcap.layers.lstm), under the simulator or on a GPU."""
import numpy as np
import pytest
from kernel_helpers import (
    assert_kernel_gradients,
    assert_same_outputs,
    kernel_xp,
    run_version,
)

from rawcap.backend import versions
from rawcap.gradcheck import lstm_pointwise_check

pytestmark = pytest.mark.gpu
KERNELS = versions("lstm_pointwise", "cuda")[1:]


@pytest.mark.parametrize("version", KERNELS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("N, H", [(1, 1), (2, 33), (5, 3)])
@pytest.mark.parametrize("with_dc", [True, False])
def test_pointwise_matches_version_0(version, dtype, N, H, with_dc):
    xp = kernel_xp()
    rng = np.random.default_rng(N * 100 + H)
    a = xp.asarray(3 * rng.standard_normal((N, 4 * H)), dtype=dtype)
    c_prev, dh, dc = (xp.asarray(rng.standard_normal((N, H)), dtype=dtype) for _ in range(3))
    dc = dc if with_dc else None
    *want, want_cache = run_version("lstm_pointwise_forward", 0, a, c_prev)
    *got, got_cache = run_version("lstm_pointwise_forward", version, a, c_prev)
    assert_same_outputs(got, want, dtype, f"lstm_pointwise_forward v{version}")
    assert_same_outputs(run_version("lstm_pointwise_backward", version, dh, dc, got_cache),
                        run_version("lstm_pointwise_backward", 0, dh, dc, want_cache),
                        dtype, f"lstm_pointwise_backward v{version}")


@pytest.mark.parametrize("version", KERNELS)
def test_pointwise_gradients(version):
    assert_kernel_gradients("lstm_pointwise", version, lstm_pointwise_check, 1, N=2, H=3)
