"""embedding: gradients with repeated ids, values against loops, integer dtypes, float32, bad input."""
import copy
import re

import numpy as np
import pytest

from rawcap.gradcheck import TOLERANCE, embedding_check, gradient_errors
from rawcap.layers import embedding_backward, embedding_forward

from helpers import assert_float32_close

# The forward copies rows, so it is exact; dW adds up the rows of repeated ids, which in float32
# (about 7 significant digits) may round. Measured against the largest float64 entry.
FLOAT32_TOL = 1e-6


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("N, T, V, D", [
    pytest.param(3, 4, 5, 6, id="ids-repeat"),
    pytest.param(2, 5, 2, 3, id="ids-repeat-a-lot"),
    pytest.param(1, 1, 4, 3, id="single-id"),
    pytest.param(2, 3, 9, 1, id="D1"),
])
def test_embedding_gradients(seed, N, T, V, D):
    rng = np.random.default_rng(seed)
    errors = gradient_errors(embedding_check(rng, N=N, T=T, V=V, D=D), rng)
    assert all(error < TOLERANCE for _, _, error in errors), errors


@pytest.mark.parametrize("dtype", [np.int8, np.uint16, np.int32, np.int64])
def test_embedding_forward_matches_loop_for_any_integer_dtype(dtype):
    rng = np.random.default_rng(0)
    ids, W = rng.integers(0, 5, size=(3, 4)).astype(dtype), rng.standard_normal((5, 6))
    out, _ = embedding_forward(ids, W)
    assert out.shape == (3, 4, 6)
    for n, t in np.ndindex(3, 4):
        assert np.array_equal(out[n, t], W[ids[n, t]])


def test_embedding_backward_adds_up_the_rows_of_a_repeated_id():
    """dW[v] sums dout over every position holding v; an assignment would keep only one."""
    ids = np.array([[1, 3, 1], [1, 0, 3]])
    _, cache = embedding_forward(ids, np.zeros((5, 2)))
    dout = np.arange(12.0).reshape(2, 3, 2)
    dW = embedding_backward(dout, cache)
    want = np.zeros((5, 2))
    for n, t in np.ndindex(ids.shape):
        want[ids[n, t]] += dout[n, t]
    assert np.array_equal(dW, want)
    assert np.array_equal(dW[1], dout[0, 0] + dout[0, 2] + dout[1, 0])
    assert not dW[2].any() and not dW[4].any()     # ids that never occur get no gradient


def test_embedding_float32_agrees_with_float64():
    rng = np.random.default_rng(0)
    ids, W = rng.integers(0, 5, size=(3, 4)), rng.standard_normal((5, 6))
    out64, cache64 = embedding_forward(ids, W)
    out32, cache32 = embedding_forward(ids, W.astype(np.float32))
    dout = rng.standard_normal(out64.shape)
    dW64 = embedding_backward(dout, cache64)
    dW32 = embedding_backward(dout.astype(np.float32), cache32)
    assert_float32_close([(out32, out64), (dW32, dW64)], FLOAT32_TOL)


GOOD = dict(ids=np.array([[0, 4], [2, 2]]), W=np.zeros((5, 3)))


@pytest.mark.parametrize("changes, message", [
    (dict(ids=np.array([[0.0, 4.0]])), "ids must hold integers, got dtype float64"),
    (dict(ids=np.array([[0, -1]])), "ids must lie in [0, 5), got values in [-1, 0]"),
    (dict(ids=np.array([[0, 5]])), "ids must lie in [0, 5), got values in [0, 5]"),
    (dict(ids=[[0, 4]]), "ids must be an array, got list"),
    (dict(W=np.zeros(5)), "W must have 2 dims [V, D], got shape (5,)"),
    (dict(W=np.zeros((5, 3), dtype=np.int64)), "W must be float32 or float64, got dtype int64"),
])
def test_embedding_forward_rejects_bad_input(changes, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        embedding_forward(**dict(GOOD, **changes))


def test_embedding_backward_rejects_dout_of_wrong_shape():
    _, cache = embedding_forward(**GOOD)
    message = "dout must have the forward output's shape (2, 2, 3), got (4, 3)"
    with pytest.raises(ValueError, match=re.escape(message)):
        embedding_backward(np.zeros((4, 3)), cache)


def test_embedding_backward_leaves_dout_and_cache_unchanged():
    rng = np.random.default_rng(0)
    out, cache = embedding_forward(rng.integers(0, 5, size=(3, 4)), rng.standard_normal((5, 6)))
    dout = rng.standard_normal(out.shape)
    dout_before, cache_before = dout.copy(), copy.deepcopy(cache)
    embedding_backward(dout, cache)
    assert np.array_equal(dout, dout_before)
    assert all(np.array_equal(now, before) for now, before in zip(cache, cache_before))
