"""kernels/attention.py against version 0 (rawcap.layers.attention), under the simulator or on a GPU."""
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
from rawcap.gradcheck import attention_check

pytestmark = pytest.mark.gpu
KERNELS = versions("attention")[1:]


def attention_args(xp, dtype, N, L, D, H, A, seed=0):
    """The gradient check's random arguments as `dtype` arrays of `xp`, and the generator."""
    rng = np.random.default_rng(seed)
    args = attention_check(rng, N, L, D, H, A).args
    return {name: xp.asarray(x, dtype=dtype) for name, x in args.items()}, rng


def assert_matches_version_0(version, args, rng, dtype, what):
    """Forward, then backward with dalpha given and with dalpha None, against version 0."""
    xp = kernel_xp()
    N, L, D = args["feats"].shape
    *want, want_cache = run_version("attention_forward", 0, **args)
    *got, got_cache = run_version("attention_forward", version, **args)
    assert_same_outputs(got, want, dtype, f"attention_forward v{version} {what}")
    # a strided dcontext, as the model hands it (a column slice of the LSTM's dx)
    dcontext = xp.asarray(rng.standard_normal((N, D + 1)), dtype=dtype)[:, 1:]
    for dalpha in (xp.asarray(rng.standard_normal((N, L)), dtype=dtype), None):
        given = "None" if dalpha is None else "given"
        assert_same_outputs(run_version("attention_backward", version, dcontext, dalpha, got_cache),
                            run_version("attention_backward", 0, dcontext, dalpha, want_cache),
                            dtype, f"attention_backward v{version} {what}, dalpha {given}")


@pytest.mark.parametrize("version", KERNELS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("N, L, D, H, A", [
    (1, 1, 1, 1, 1),
    (2, 33, 4, 3, 5),                   # 64 threads: half of them idle in the sweeps over a, d
    (1, 3, 130, 2, 33),                 # 128 threads: the sweep over d wraps around
])
def test_attention_matches_version_0(version, dtype, N, L, D, H, A):
    args, rng = attention_args(kernel_xp(), dtype, N, L, D, H, A, seed=N + L + D)
    assert_matches_version_0(version, args, rng, dtype, f"{(N, L, D, H, A)}")


@pytest.mark.parametrize("version", KERNELS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_attention_huge_scores_stay_finite(version, dtype):
    """Scores of size 1e4: exp overflows unless the softmax subtracts the maximum first. alpha is
    then one-hot and the backward's de is rounding noise (times 1e4), so only its finiteness is
    compared."""
    xp = kernel_xp()
    args, rng = attention_args(xp, dtype, N=2, L=5, D=3, H=2, A=4)
    args["v"] = args["v"] * 1e4
    *want, _ = run_version("attention_forward", 0, **args)
    *got, cache = run_version("attention_forward", version, **args)
    assert_same_outputs(got, want, dtype, f"attention_forward v{version} v * 1e4")
    dcontext, dalpha = (xp.asarray(rng.standard_normal(shape), dtype=dtype) for shape in [(2, 3), (2, 5)])
    for grad in run_version("attention_backward", version, dcontext, dalpha, cache):
        assert np.all(np.isfinite(to_numpy(grad)))


@pytest.mark.parametrize("version", KERNELS)
@pytest.mark.parametrize("name", ["feats", "proj", "h", "Wh", "v"])
def test_attention_rejects_bad_shapes_as_version_0(version, name):
    """One entry fewer along the first axis of one argument: the layer's ValueError."""
    args, _ = attention_args(kernel_xp(), np.float64, N=2, L=3, D=4, H=5, A=6)
    args[name] = args[name][:-1]
    with pytest.raises(ValueError) as want:
        run_version("attention_forward", 0, **args)
    with pytest.raises(ValueError, match=re.escape(str(want.value))):
        run_version("attention_forward", version, **args)


@pytest.mark.parametrize("version", KERNELS)
def test_attention_backward_rejects_bad_shapes(version):
    xp = kernel_xp()
    args, _ = attention_args(xp, np.float64, N=2, L=3, D=4, H=5, A=6)
    _, _, cache = run_version("attention_forward", version, **args)
    with pytest.raises(ValueError, match=r"attention_backward: dcontext must have the forward "
                                         r"output's shape \(2, 4\), got \(2, 3\)"):
        run_version("attention_backward", version, xp.zeros((2, 3)), None, cache)
    with pytest.raises(ValueError, match=r"attention_backward: dalpha must have the forward "
                                         r"output's shape \(2, 3\), got \(2, 4\)"):
        run_version("attention_backward", version, xp.zeros((2, 4)), xp.zeros((2, 4)), cache)


@pytest.mark.parametrize("version", KERNELS)
def test_attention_gradients(version):
    assert_kernel_gradients("attention", version, attention_check, 2, N=2, L=3, D=2, H=2, A=2)


def test_warp_version_sums_through_shared_memory_under_the_simulator():
    """The simulator has no warp shuffles: version 2's warp_sum is then the shared-memory tree
    (the shuffle one is compiled and checked by tools/ptx_check.py, test_ptx_check.py)."""
    from kernels import attention_warp
    from kernels.launch import simulator
    want = attention_warp._warp_sum_shared if simulator() else attention_warp._warp_sum_shuffle
    assert attention_warp.warp_sum is want
