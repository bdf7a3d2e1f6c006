"""Assertions shared by the layer tests."""
import numpy as np

from rawcap.gradcheck import TOLERANCE, gradient_errors


def assert_gradients_match(check, rng):
    """Every gradient the backward returns agrees with central differences to TOLERANCE."""
    for name, shape, error in gradient_errors(check, rng):
        assert error < TOLERANCE, f"{check.layer} {name}{shape}: relative error {error:.1e}"


def arrays_in(obj):
    """Every array inside a nest of tuples and lists (a cache, say)."""
    if isinstance(obj, np.ndarray):
        return [obj]
    if isinstance(obj, (tuple, list)):
        return [a for item in obj for a in arrays_in(item)]
    return []


def assert_float32_close(pairs, tol):
    """Each (float32 result, float64 result) pair: the float32 one kept its dtype and agrees to
    tol times the largest float64 entry."""
    for got, want in pairs:
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=0, atol=tol * np.abs(want).max())
