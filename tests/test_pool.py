"""maxpool2d: gradients, forward against plain loops, floor mode, ties, float32, bad input."""
import copy
import re

import numpy as np
import pytest

from rawcap.gradcheck import TOLERANCE, gradient_errors, maxpool2d_check
from rawcap.layers import maxpool2d_backward, maxpool2d_forward

from helpers import assert_float32_close

# A max is exact in any precision; only overlapping windows add gradients in float32, which
# keeps about 7 significant digits. Differences are measured against the largest float64 entry.
FLOAT32_TOL = 1e-6


def maxpool_loops(x, size, stride):
    """The definition, one window at a time: the independent forward oracle."""
    N, C, H, W = x.shape
    Ho, Wo = (H - size) // stride + 1, (W - size) // stride + 1
    out = np.empty((N, C, Ho, Wo))
    for n, c, i, j in np.ndindex(N, C, Ho, Wo):
        out[n, c, i, j] = x[n, c, stride * i:stride * i + size, stride * j:stride * j + size].max()
    return out


# (N, C, H, W, size, stride)
CASES = [
    pytest.param(1, 1, 4, 4, 2, 2, id="N1"),
    pytest.param(2, 3, 7, 6, 2, 2, id="odd-H-drops-a-row"),
    pytest.param(1, 2, 5, 7, 3, 2, id="overlapping-stride2"),
    pytest.param(2, 1, 6, 5, 3, 1, id="overlapping-stride1"),
    pytest.param(1, 2, 3, 4, 3, 3, id="window-as-tall-as-image"),
]


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("N, C, H, W, size, stride", CASES)
def test_maxpool2d_gradients(seed, N, C, H, W, size, stride):
    rng = np.random.default_rng(seed)
    check = maxpool2d_check(rng, N=N, C=C, H=H, W=W, size=size, stride=stride)
    errors = gradient_errors(check, rng)
    assert all(error < TOLERANCE for _, _, error in errors), errors


@pytest.mark.parametrize("N, C, H, W, size, stride", CASES)
def test_maxpool2d_forward_matches_plain_loops(N, C, H, W, size, stride):
    x = np.random.default_rng(0).standard_normal((N, C, H, W))
    out, _ = maxpool2d_forward(x, size=size, stride=stride)
    want = maxpool_loops(x, size, stride)
    assert out.shape == want.shape
    assert np.array_equal(out, want)


def test_maxpool2d_floor_mode_ignores_the_row_and_column_no_window_reaches():
    """With size 2, stride 2, a 5x5 input gives 2x2: row 4 and column 4 are never read."""
    x = np.random.default_rng(0).standard_normal((1, 2, 5, 5))
    out, cache = maxpool2d_forward(x, size=2, stride=2)
    x_big = x.copy()
    x_big[:, :, 4, :] = 100.0
    x_big[:, :, :, 4] = 100.0
    out_big, _ = maxpool2d_forward(x_big, size=2, stride=2)
    assert out.shape == (1, 2, 2, 2)
    assert np.array_equal(out_big, out)
    dx = maxpool2d_backward(np.ones_like(out), cache)
    assert not dx[:, :, 4, :].any() and not dx[:, :, :, 4].any()


@pytest.mark.parametrize("size, stride", [(2, 2), (3, 2), (3, 1)])
def test_maxpool2d_tie_sends_gradient_to_the_first_entry_only(size, stride):
    """In a window of equal values the first (top-left) entry wins, as in PyTorch, and it alone
    receives the window's gradient, so the total gradient is preserved."""
    x = np.zeros((2, 3, 7, 6))
    out, cache = maxpool2d_forward(x, size=size, stride=stride)
    dout = np.random.default_rng(0).standard_normal(out.shape)
    dx = maxpool2d_backward(dout, cache)
    Ho, Wo = out.shape[2:]
    want = np.zeros_like(x)
    want[:, :, 0:stride * Ho:stride, 0:stride * Wo:stride] = dout   # each window's top-left
    assert np.array_equal(dx, want)
    assert dx.sum() == pytest.approx(dout.sum())


def test_maxpool2d_an_entry_that_wins_overlapping_windows_receives_their_sum():
    """docs/backprop.md 6.2: the 9 wins all four 2 x 2 windows (stride 1), so it receives the
    sum of their gradients and every other entry gets nothing."""
    x = np.array([[1.0, 2, 3], [4, 9, 5], [6, 7, 8]]).reshape(1, 1, 3, 3)
    out, cache = maxpool2d_forward(x, size=2, stride=1)
    np.testing.assert_array_equal(out.ravel(), [9, 9, 9, 9])
    dx = maxpool2d_backward(np.array([[1.0, 2], [3, 4]]).reshape(1, 1, 2, 2), cache)
    np.testing.assert_array_equal(dx[0, 0], [[0, 0, 0], [0, 10, 0], [0, 0, 0]])


@pytest.mark.parametrize("size, stride", [(2, 2), (3, 1)])
def test_maxpool2d_float32_agrees_with_float64(size, stride):
    rng = np.random.default_rng(0)
    x64 = rng.permutation(2 * 3 * 7 * 6).reshape(2, 3, 7, 6) / 100.0   # no ties, even in float32
    out64, cache64 = maxpool2d_forward(x64, size=size, stride=stride)
    out32, cache32 = maxpool2d_forward(x64.astype(np.float32), size=size, stride=stride)
    dout = rng.standard_normal(out64.shape)
    dx64 = maxpool2d_backward(dout, cache64)
    dx32 = maxpool2d_backward(dout.astype(np.float32), cache32)
    assert_float32_close([(out32, out64), (dx32, dx64)], FLOAT32_TOL)


@pytest.mark.parametrize("x, options, message", [
    (np.zeros((3, 5, 5)), {}, "x must have 4 dims [N, C, Hi, Wi], got shape (3, 5, 5)"),
    (np.zeros((1, 1, 4, 4), dtype=np.int64), {}, "x must be float32 or float64, got dtype int64"),
    (np.zeros((1, 1, 4, 4)).tolist(), {}, "x must be an array, got list"),
    (np.zeros((1, 1, 4, 4)), dict(size=0), "size must be an integer >= 1, got 0"),
    (np.zeros((1, 1, 4, 4)), dict(stride=0), "stride must be an integer >= 1, got 0"),
    (np.zeros((1, 1, 2, 5)), dict(size=3), "window 3x3 does not fit x of shape (1, 1, 2, 5)"),
])
def test_maxpool2d_forward_rejects_bad_input(x, options, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        maxpool2d_forward(x, **options)


def test_maxpool2d_backward_rejects_dout_of_wrong_shape():
    _, cache = maxpool2d_forward(np.zeros((2, 3, 6, 6)))
    message = "dout must have the forward output's shape (2, 3, 3, 3), got (2, 3, 3, 2)"
    with pytest.raises(ValueError, match=re.escape(message)):
        maxpool2d_backward(np.zeros((2, 3, 3, 2)), cache)


def test_maxpool2d_backward_leaves_dout_and_cache_unchanged():
    rng = np.random.default_rng(0)
    out, cache = maxpool2d_forward(rng.standard_normal((2, 3, 7, 6)), size=3, stride=2)
    dout = rng.standard_normal(out.shape)
    dout_before, cache_before = dout.copy(), copy.deepcopy(cache)
    maxpool2d_backward(dout, cache)
    assert np.array_equal(dout, dout_before)
    assert all(np.array_equal(now, before) for now, before in zip(cache, cache_before))
