"""What the kernel tests share: the array module kernels run on here, and version comparisons.

Under the simulator (CI) kernels run on NumPy arrays; with `pytest -m gpu` on a machine with a
GPU they run on CuPy arrays, and version 0 is the layer on the same CuPy arrays.
"""
import numpy as np
import pytest

from rawcap.backend import implementation, to_numpy

# float64: every version computes the same sums in a different order, nothing more.
# float32: kernels and numpy both compute in float32 (tools/ptx_check.py shows the kernels have no
# float64 instruction), adding in other orders; 1e-5 of the largest entry holds for every case.
TOLERANCE = {np.float64: 1e-12, np.float32: 1e-5}


def kernel_xp():
    """NumPy under Numba's CUDA simulator, CuPy on a GPU; skips when neither is available."""
    from kernels.launch import simulator
    if simulator():
        return np
    try:
        import cupy
        cupy.cuda.runtime.getDeviceCount()
    except Exception as e:      # no CuPy, no driver, no device
        pytest.skip(f"kernel tests need a GPU with CuPy or NUMBA_ENABLE_CUDASIM=1 ({e})")
    return cupy


def relative_difference(a, b):
    """max |a - b| / max |b| (0 when both are all zeros)."""
    a, b = to_numpy(a).astype(np.float64), to_numpy(b).astype(np.float64)
    scale = np.abs(b).max(initial=0.0)
    return float(np.abs(a - b).max(initial=0.0) / scale) if scale else float(np.abs(a).max(initial=0.0))


def assert_same_outputs(kernel_outputs, layer_outputs, dtype, what):
    """Every array of kernel_outputs within TOLERANCE[dtype] of layer_outputs (relative to each
    output's largest entry); non-arrays (None) must match exactly."""
    for k, (got, want) in enumerate(zip(kernel_outputs, layer_outputs, strict=True)):
        if want is None or got is None:
            assert got is None and want is None, f"{what}: output {k} is {got!r}, version 0 gives {want!r}"
            continue
        assert got.shape == want.shape, f"{what}: output {k} has shape {got.shape}, version 0 {want.shape}"
        assert got.dtype == want.dtype, f"{what}: output {k} is {got.dtype}, version 0 {want.dtype}"
        error = relative_difference(got, want)
        assert error <= TOLERANCE[dtype], f"{what}: output {k} differs by {error:.2e} (relative)"


def run_version(function, version, *args, **kwargs):
    """Version `version` of layer function `function` called on args."""
    return implementation(function, version)(*args, **kwargs)


def assert_kernel_gradients(op, version, build, seed, **sizes):
    """Float64 central differences of `op` pinned to `version` (a rawcap.gradcheck builder with
    these sizes): every gradient within 1e-7. Under the simulator only (NumPy arrays)."""
    from rawcap.backend import kernels_pinned
    from rawcap.gradcheck import gradient_errors
    if kernel_xp() is not np:
        pytest.skip("gradient checks run on NumPy float64 arrays: under the simulator")
    rng = np.random.default_rng(seed)
    with kernels_pinned(f"{op}={version}"):
        errors = gradient_errors(build(rng, **sizes), rng)
    for name, _, error in errors:
        assert error < 1e-7, f"{op} v{version} {name}: relative error {error:.1e}"
