"""conv2d: gradients, forward values against two independent oracles, float32, bad input."""
import copy
import re

import numpy as np
import pytest
from scipy.signal import correlate

from rawcap.gradcheck import TOLERANCE, LayerCheck, conv2d_check, gradient_errors
from rawcap.layers import conv2d_backward, conv2d_forward, conv2d_params_backward
from rawcap.layers.conv import col2im, im2col

from helpers import assert_float32_close

# float32 keeps about 7 significant digits; a conv output sums a few dozen products, which
# costs at most a digit more. Differences are measured against the largest float64 entry.
FLOAT32_TOL = 1e-5


def conv2d_loops(x, w, b, stride, pad):
    """The definition, one multiply-add at a time: the independent forward oracle."""
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    Ho, Wo = (H + 2 * pad - KH) // stride + 1, (W + 2 * pad - KW) // stride + 1
    out = np.zeros((N, F, Ho, Wo))
    for n, f, i, j in np.ndindex(N, F, Ho, Wo):
        total = b[f]
        for c, kh, kw in np.ndindex(C, KH, KW):
            r, s = stride * i + kh - pad, stride * j + kw - pad
            if 0 <= r < H and 0 <= s < W:          # outside x is the zero padding
                total += w[f, c, kh, kw] * x[n, c, r, s]
        out[n, f, i, j] = total
    return out


def conv2d_scipy(x, w, b, stride, pad):
    """Stride-1 'valid' cross-correlation of the padded image over all channels, subsampled."""
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    return np.array([[correlate(image, w[f], mode="valid")[0, ::stride, ::stride] + b[f]
                      for f in range(w.shape[0])] for image in x_pad])


# (N, C, H, W, F, KH, KW, stride, pad)
FORWARD_CASES = [
    pytest.param(1, 1, 4, 4, 1, 3, 3, 1, 0, id="N1-single-channel"),
    pytest.param(2, 3, 7, 6, 4, 3, 3, 2, 1, id="stride2-pad1-W-not-divisible"),
    pytest.param(2, 2, 6, 9, 3, 2, 4, 3, 1, id="kernel2x4-stride3-W-not-divisible"),
    pytest.param(1, 3, 5, 8, 2, 1, 1, 2, 0, id="kernel1x1-stride2"),
    pytest.param(1, 2, 3, 3, 2, 3, 3, 1, 1, id="kernel-as-large-as-image"),
]


def random_conv_args(rng, N, C, H, W, F, KH, KW):
    return (rng.standard_normal((N, C, H, W)), rng.standard_normal((F, C, KH, KW)),
            rng.standard_normal(F))


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("N, C, H, W, F, K, stride, pad", [
    pytest.param(1, 1, 5, 5, 1, 3, 1, 0, id="N1-stride1-pad0"),
    pytest.param(2, 3, 7, 6, 4, 3, 2, 1, id="stride2-pad1-W-not-divisible"),
    pytest.param(1, 2, 6, 9, 3, 2, 2, 0, id="even-kernel-W-not-divisible"),
    pytest.param(2, 2, 5, 4, 3, 3, 3, 1, id="stride3-H-not-divisible"),
    pytest.param(1, 3, 5, 8, 2, 1, 2, 0, id="kernel1-stride2-skips-pixels"),
    pytest.param(1, 2, 3, 3, 2, 3, 1, 1, id="kernel-as-large-as-image"),
])
def test_conv2d_gradients(seed, N, C, H, W, F, K, stride, pad):
    rng = np.random.default_rng(seed)
    check = conv2d_check(rng, N=N, C=C, H=H, W=W, F=F, K=K, stride=stride, pad=pad)
    errors = gradient_errors(check, rng)
    assert all(error < TOLERANCE for _, _, error in errors), errors


@pytest.mark.parametrize("seed", range(3))
def test_conv2d_gradients_non_square_kernel(seed):
    """The builder makes square kernels only; a 2x4 kernel goes through the same checker."""
    rng = np.random.default_rng(seed)
    x, w, b = random_conv_args(rng, N=2, C=2, H=6, W=9, F=3, KH=2, KW=4)
    check = LayerCheck("conv2d", conv2d_forward, conv2d_backward, dict(x=x, w=w, b=b),
                       ("x", "w", "b"), dict(stride=3, pad=1))
    errors = gradient_errors(check, rng)
    assert all(error < TOLERANCE for _, _, error in errors), errors


@pytest.mark.parametrize("N, C, H, W, F, KH, KW, stride, pad", FORWARD_CASES)
def test_conv2d_forward_matches_plain_loops(N, C, H, W, F, KH, KW, stride, pad):
    x, w, b = random_conv_args(np.random.default_rng(0), N, C, H, W, F, KH, KW)
    out, _ = conv2d_forward(x, w, b, stride=stride, pad=pad)
    want = conv2d_loops(x, w, b, stride, pad)
    assert out.shape == want.shape
    np.testing.assert_allclose(out, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("N, C, H, W, F, KH, KW, stride, pad", FORWARD_CASES)
def test_conv2d_forward_matches_scipy_correlate(N, C, H, W, F, KH, KW, stride, pad):
    x, w, b = random_conv_args(np.random.default_rng(1), N, C, H, W, F, KH, KW)
    out, _ = conv2d_forward(x, w, b, stride=stride, pad=pad)
    want = conv2d_scipy(x, w, b, stride, pad)
    assert out.shape == want.shape
    np.testing.assert_allclose(out, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("H, W, KH, KW, stride, pad", [
    (5, 5, 3, 3, 1, 1),     # overlapping fields
    (7, 6, 3, 2, 2, 1),     # overlapping, W not divisible
    (6, 9, 2, 4, 3, 0),     # gaps between fields, W not divisible
])
def test_col2im_is_the_adjoint_of_im2col(H, W, KH, KW, stride, pad):
    """<im2col(x), y> == <x, col2im(y)>: the property that makes col2im the right backward."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, H, W))
    cols = im2col(x, KH, KW, stride, pad)
    y = rng.standard_normal(cols.shape)
    back = col2im(y, x.shape, KH, KW, stride, pad)
    assert back.shape == x.shape
    assert np.sum(cols * y) == pytest.approx(np.sum(x * back), rel=1e-12)


@pytest.mark.parametrize("H, W, KH, KW, stride, pad", [(5, 5, 3, 3, 1, 1), (7, 6, 3, 2, 2, 1)])
def test_im2col_matches_its_definition(H, W, KH, KW, stride, pad):
    """cols[n, (c, kh, kw), (i, j)] = x_pad[n, c, kh + stride*i, kw + stride*j], entry by entry."""
    x = np.random.default_rng(0).standard_normal((2, 3, H, W))
    cols = im2col(x, KH, KW, stride, pad)
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    Ho, Wo = (H + 2 * pad - KH) // stride + 1, (W + 2 * pad - KW) // stride + 1
    assert cols.shape == (2, 3 * KH * KW, Ho * Wo)
    for n, c, kh, kw, i, j in np.ndindex(2, 3, KH, KW, Ho, Wo):
        row, col = (c * KH + kh) * KW + kw, i * Wo + j
        assert cols[n, row, col] == x_pad[n, c, kh + stride * i, kw + stride * j]


def test_col2im_worked_example_adds_where_windows_overlap():
    """docs/backprop.md 5.3: x = [1, 2, 3, 4, 5], kernel 3, stride 2, pad 1. The code is 2-D, so
    the example is a 1 x 5 image under a 3 x 3 kernel: its middle row kh = 1 sees the image,
    rows kh = 0 and 2 see only the padding."""
    x = np.arange(1.0, 6.0).reshape(1, 1, 1, 5)
    cols = im2col(x, 3, 3, stride=2, pad=1).reshape(3, 3, 3)        # [kh, kw, i]
    np.testing.assert_array_equal(cols[1], [[0, 2, 4],
                                            [1, 3, 5],
                                            [2, 4, 0]])
    assert not cols[0].any() and not cols[2].any()
    # out = w @ cols with w = [1, 2, 3]: out[i] = 1*cols[0, i] + 2*cols[1, i] + 3*cols[2, i]
    w = np.zeros((1, 1, 3, 3))
    w[0, 0, 1] = [1.0, 2.0, 3.0]
    out, cache = conv2d_forward(x, w, None, stride=2, pad=1)
    np.testing.assert_array_equal(out.ravel(), [8, 20, 14])
    # dcols[k, i] = w[k] * dout[i]; with dout = 1, col2im adds w[2] + w[0] = 4 onto x[1] and x[3],
    # which two windows share, and drops what lands on the padding.
    dcols = np.zeros((3, 3, 3))
    dcols[1] = [[1, 1, 1], [2, 2, 2], [3, 3, 3]]
    dx = col2im(dcols.reshape(1, 9, 3), x.shape, 3, 3, stride=2, pad=1)
    np.testing.assert_array_equal(dx.ravel(), [2, 4, 2, 4, 2])
    dx_layer, dw, _ = conv2d_backward(np.ones_like(out), cache)
    np.testing.assert_array_equal(dx_layer, dx)
    np.testing.assert_array_equal(dw[0, 0, 1], cols[1].sum(axis=1))      # dw[k] = sum_i cols[k, i]


@pytest.mark.parametrize("N, C, H, W, F, KH, KW, stride, pad", FORWARD_CASES[1:3])
def test_conv2d_float32_agrees_with_float64(N, C, H, W, F, KH, KW, stride, pad):
    rng = np.random.default_rng(0)
    args64 = random_conv_args(rng, N, C, H, W, F, KH, KW)
    args32 = [a.astype(np.float32) for a in args64]
    out64, cache64 = conv2d_forward(*args64, stride=stride, pad=pad)
    out32, cache32 = conv2d_forward(*args32, stride=stride, pad=pad)
    dout = rng.standard_normal(out64.shape)
    grads64 = conv2d_backward(dout, cache64)
    grads32 = conv2d_backward(dout.astype(np.float32), cache32)
    assert_float32_close(zip((out32, *grads32), (out64, *grads64)), FLOAT32_TOL)


GOOD = dict(x=np.zeros((2, 3, 5, 5)), w=np.zeros((4, 3, 3, 3)), b=np.zeros(4))


@pytest.mark.parametrize("changes, message", [
    (dict(x=np.zeros((3, 5, 5))), "x must have 4 dims [N, C, Hi, Wi], got shape (3, 5, 5)"),
    (dict(w=np.zeros((4, 2, 3, 3))),
     "w has shape (4, 2, 3, 3), but its C axis should be 3 (C=3 from x)"),
    (dict(b=np.zeros(5)), "b has shape (5,), but its F axis should be 4 (F=4 from w)"),
    (dict(x=np.zeros((2, 3, 5, 5), dtype=np.int64)), "x must be float32 or float64, got dtype int64"),
    (dict(w=np.zeros((4, 3, 3, 3), dtype=np.float32)), "w is float32 but x is float64"),
    (dict(x=np.zeros((2, 3, 5, 5)).tolist()), "x must be an array, got list"),
    (dict(stride=0), "stride must be an integer >= 1, got 0"),
    (dict(pad=-1), "pad must be an integer >= 0, got -1"),
    (dict(w=np.zeros((4, 3, 8, 8)), pad=1), "kernel 8x8 does not fit x of shape (2, 3, 5, 5) with pad=1"),
    (dict(w=np.zeros((4, 3, 3, 6))), "kernel 3x6 does not fit x of shape (2, 3, 5, 5) with pad=0"),
])
def test_conv2d_forward_rejects_bad_input(changes, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        conv2d_forward(**dict(GOOD, **changes))


@pytest.mark.parametrize("dout, got", [(np.zeros((2, 4, 3, 2)), "(2, 4, 3, 2)"),
                                       ([[0.0]], "list")])
def test_conv2d_backward_rejects_dout_of_wrong_shape(dout, got):
    _, cache = conv2d_forward(**GOOD)
    message = f"dout must have the forward output's shape (2, 4, 3, 3), got {got}"
    with pytest.raises(ValueError, match=re.escape(message)):
        conv2d_backward(dout, cache)


def test_conv2d_backward_leaves_dout_and_cache_unchanged():
    rng = np.random.default_rng(0)
    out, cache = conv2d_forward(*random_conv_args(rng, 2, 3, 7, 6, 4, 3, 3), stride=2, pad=1)
    dout = rng.standard_normal(out.shape)
    dout_before, cache_before = dout.copy(), copy.deepcopy(cache)
    conv2d_backward(dout, cache)
    assert np.array_equal(dout, dout_before)
    assert all(np.array_equal(now, before) for now, before in zip(cache, cache_before))


@pytest.mark.parametrize("bias", [True, False])
def test_conv2d_params_backward_is_the_backward_without_dx(bias):
    rng = np.random.default_rng(1)
    x, w, b = random_conv_args(rng, 2, 3, 7, 6, 4, 3, 3)
    out, cache = conv2d_forward(x, w, b if bias else None, stride=2, pad=1)
    dout = rng.standard_normal(out.shape)
    _, dw, db = conv2d_backward(dout, cache)
    got_dw, got_db = conv2d_params_backward(dout, cache)
    assert np.array_equal(got_dw, dw) and (np.array_equal(got_db, db) if bias else got_db is None)
    with pytest.raises(ValueError, match="dout must have the forward output's shape"):
        conv2d_params_backward(dout[:, :, 1:], cache)
