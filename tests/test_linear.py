"""affine: gradients over any number of leading axes, values against einsum, float32, bad input."""
import copy
import re

import numpy as np
import pytest

from rawcap.gradcheck import TOLERANCE, affine_check, gradient_errors
from rawcap.layers import affine_backward, affine_forward

from helpers import assert_float32_close

# float32 keeps about 7 significant digits; each output sums D products (and dw, db sum over
# the rows), which costs at most a digit more. Measured against the largest float64 entry.
FLOAT32_TOL = 1e-5

LEADING = [pytest.param((), id="no-leading-axis"), pytest.param((4,), id="N"),
           pytest.param((2, 3), id="N-T"), pytest.param((2, 1, 3), id="N-1-L")]


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("leading", LEADING)
@pytest.mark.parametrize("D, M", [(5, 4), (1, 3), (3, 1)])
def test_affine_gradients(seed, leading, D, M):
    rng = np.random.default_rng(seed)
    errors = gradient_errors(affine_check(rng, leading=leading, D=D, M=M), rng)
    assert all(error < TOLERANCE for _, _, error in errors), errors


@pytest.mark.parametrize("leading", LEADING)
def test_affine_forward_matches_einsum(leading):
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal(leading + (5,)), rng.standard_normal((5, 4)), rng.standard_normal(4)
    out, _ = affine_forward(x, w, b)
    assert out.shape == leading + (4,)
    np.testing.assert_allclose(out, np.einsum("...d,dm->...m", x, w) + b, rtol=1e-12, atol=1e-12)


def test_affine_float32_agrees_with_float64():
    rng = np.random.default_rng(0)
    args64 = rng.standard_normal((2, 3, 5)), rng.standard_normal((5, 4)), rng.standard_normal(4)
    out64, cache64 = affine_forward(*args64)
    out32, cache32 = affine_forward(*(a.astype(np.float32) for a in args64))
    dout = rng.standard_normal(out64.shape)
    grads64 = affine_backward(dout, cache64)
    grads32 = affine_backward(dout.astype(np.float32), cache32)
    assert_float32_close(zip((out32, *grads32), (out64, *grads64)), FLOAT32_TOL)


GOOD = dict(x=np.zeros((2, 3, 5)), w=np.zeros((5, 4)), b=np.zeros(4))


@pytest.mark.parametrize("changes, message", [
    (dict(x=np.zeros(())), "x must have at least 1 dims [D], got shape ()"),
    (dict(w=np.zeros(5)), "w must have 2 dims [D, M], got shape (5,)"),
    (dict(w=np.zeros((4, 4))), "w has shape (4, 4), but its D axis should be 5 (D=5 from x)"),
    (dict(b=np.zeros(3)), "b has shape (3,), but its M axis should be 4 (M=4 from w)"),
    (dict(x=np.zeros((2, 3, 5), dtype=np.int32)), "x must be float32 or float64, got dtype int32"),
    (dict(b=np.zeros(4, dtype=np.float32)), "b is float32 but x is float64"),
    (dict(w=np.zeros((5, 4)).tolist()), "w must be an array, got list"),
])
def test_affine_forward_rejects_bad_input(changes, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        affine_forward(**dict(GOOD, **changes))


def test_affine_backward_rejects_dout_of_wrong_shape():
    _, cache = affine_forward(**GOOD)
    message = "dout must have the forward output's shape (2, 3, 4), got (6, 4)"
    with pytest.raises(ValueError, match=re.escape(message)):
        affine_backward(np.zeros((6, 4)), cache)


def test_affine_backward_leaves_dout_and_cache_unchanged():
    rng = np.random.default_rng(0)
    out, cache = affine_forward(rng.standard_normal((2, 3, 5)), rng.standard_normal((5, 4)),
                                rng.standard_normal(4))
    dout = rng.standard_normal(out.shape)
    dout_before, cache_before = dout.copy(), copy.deepcopy(cache)
    affine_backward(dout, cache)
    assert np.array_equal(dout, dout_before)
    assert all(np.array_equal(now, before) for now, before in zip(cache, cache_before))
