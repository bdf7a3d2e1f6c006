"""kernels/adam.py against version 0 (rawcap.optim.adam_update), under the simulator or on a GPU."""
import numpy as np
import pytest
from kernel_helpers import assert_same_outputs, kernel_xp, run_version

from rawcap.backend import set_kernels, to_numpy, versions
from rawcap.optim import Adam

pytestmark = pytest.mark.gpu
KERNELS = versions("adam", "cuda")[1:]


@pytest.mark.parametrize("version", KERNELS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [(1,), (33,), (4, 33), (2, 3, 5)])
def test_update_matches_version_0(version, dtype, shape):
    xp = kernel_xp()
    rng = np.random.default_rng(len(shape))
    p, g, m = (xp.asarray(rng.standard_normal(shape), dtype=dtype) for _ in range(3))
    v = xp.asarray(rng.random(shape), dtype=dtype)
    ours = [a.copy() for a in (p, g, m, v)]
    theirs = [a.copy() for a in (p, g, m, v)]
    for t in (1, 2, 7):
        run_version("adam_update", version, *ours, 3e-3, 0.9, 0.999, 1e-8, t)
        run_version("adam_update", 0, *theirs, 3e-3, 0.9, 0.999, 1e-8, t)
    assert_same_outputs(ours, theirs, dtype, f"adam_update v{version}")


@pytest.mark.parametrize("version", KERNELS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_subnormal_result_becomes_zero_as_in_version_0(version, dtype):
    xp, tiny = kernel_xp(), np.finfo(dtype).tiny
    p = xp.asarray([np.nan, 2 * tiny, tiny / 2, -tiny / 3, 1.0], dtype=dtype)
    run_version("adam_update", version, p, *(xp.zeros(5, dtype) for _ in range(3)), 3e-3, 0.9,
                0.999, 1e-8, 1)
    np.testing.assert_array_equal(to_numpy(p), [np.nan, 2 * tiny, 0, 0, 1])


@pytest.mark.parametrize("version", KERNELS)
def test_optimizer_steps_through_kernel(version):
    """Adam.step goes through ops.adam_update: pinned to the kernel, it gives version 0's params."""
    xp = kernel_xp()
    rng = np.random.default_rng(5)
    start = {"w": rng.standard_normal((3, 4)), "b": rng.standard_normal(4)}
    grads = [{k: xp.asarray(rng.standard_normal(a.shape)) for k, a in start.items()} for _ in range(3)]
    results = []
    for pins in ("adam=0", f"adam={version}"):
        set_kernels(pins)
        try:
            params = {k: xp.asarray(a) for k, a in start.items()}
            optimizer = Adam(params)
            for g in grads:
                optimizer.step(params, g, 1e-2)
        finally:
            set_kernels("")
        results.append(params)
    assert_same_outputs(list(results[1].values()), list(results[0].values()), np.float64, "Adam.step")


def test_mismatched_shapes_are_named():
    xp = kernel_xp()
    for version in KERNELS:
        with pytest.raises(ValueError, match="m has shape"):
            run_version("adam_update", version, xp.zeros(3), xp.zeros(3), xp.zeros(4), xp.zeros(3),
                        1e-3, 0.9, 0.999, 1e-8, 1)
