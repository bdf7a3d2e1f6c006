"""conv2d on the CPU (rawcap.layers.conv.conv2d_*): im2col and col2im as parallel Numba loops
around single 2-D GEMMs over the whole batch.

Version 0 pads a copy of x, copies it into columns image by image ([N, C*KH*KW, Ho*Wo]) and
multiplies with NumPy's stacked `@`, which runs N small products (and N more for each of dw and
dcols in the backward).

version 2   the columns of all images side by side, cols[C*KH*KW, N*Ho*Wo], so that each
            product is one BLAS GEMM over the batch: out = w[F, C*KH*KW] @ cols, then one copy
            to NCHW; dw.T = cols @ dout[F, N*Ho*Wo].T and dcols = w.T @ dout. im2col reads x
            directly, zero-filling the padding instead of padding a copy, in a parallel loop
            over (channel, image) whose inner loop over output columns is a contiguous run (a
            vectorised copy at stride 1); col2im adds dcols back in the same loop order (each
            (image, channel) plane is its own: no races). Few, large calls also keep BLAS's
            threads and Numba's from handing the cores back and forth.
            conv2d_params_backward (the first layer's: no gradient for the images) skips the
            dcols GEMM and col2im.
"""
import numpy as np
from numba import njit, prange

from rawcap.layers.checks import check_grad
from rawcap.layers.conv import check_conv_inputs, conv_output_size

DEFAULT = 2


@njit(cache=True)
def _valid_columns(kw, stride, pad, W, Wo):
    """The output columns j whose input column j*stride + kw - pad lies inside [0, W)."""
    lo = max(0, (pad - kw + stride - 1) // stride)
    hi = min(Wo, (W - 1 + pad - kw) // stride + 1)
    return lo, max(lo, hi)


@njit(parallel=True, cache=True)
def _im2col(x, KH, KW, stride, pad, Ho, Wo, cols):
    """cols[(c, kh, kw), n, i*Wo + j] = x[n, c, stride*i + kh - pad, stride*j + kw - pad] (0 outside)."""
    N, C, H, W = x.shape
    for cn in prange(C * N):
        c, n = cn // N, cn % N
        for kh in range(KH):
            for kw in range(KW):
                row = (c * KH + kh) * KW + kw
                lo, hi = _valid_columns(kw, stride, pad, W, Wo)
                for i in range(Ho):
                    y = stride * i + kh - pad
                    out = cols[row, n, i * Wo:(i + 1) * Wo]
                    if y < 0 or y >= H:
                        out[:] = 0
                        continue
                    out[:lo] = 0
                    out[hi:] = 0
                    for j in range(lo, hi):
                        out[j] = x[n, c, y, stride * j + kw - pad]


@njit(parallel=True, cache=True)
def _col2im(dcols, KH, KW, stride, pad, Ho, Wo, dx):
    """dx[n, c, y, x] = sum of the dcols[(c, kh, kw), n, i*Wo + j] copied from it."""
    N, C, H, W = dx.shape
    for cn in prange(C * N):
        c, n = cn // N, cn % N
        dx[n, c] = 0
        for kh in range(KH):
            for kw in range(KW):
                row = (c * KH + kh) * KW + kw
                lo, hi = _valid_columns(kw, stride, pad, W, Wo)
                for i in range(Ho):
                    y = stride * i + kh - pad
                    if 0 <= y < H:
                        for j in range(lo, hi):
                            dx[n, c, y, stride * j + kw - pad] += dcols[row, n, i * Wo + j]


def conv2d_forward_v2(x, w, b, stride=1, pad=0):
    """x[N, C, Hi, Wi], w[F, C, KH, KW], b[F] or None -> out[N, F, Ho, Wo], cache (as the layer)."""
    N, C, F, KH, KW, Ho, Wo = check_conv_inputs(x, w, b, stride, pad)
    cols = np.empty((C * KH * KW, N, Ho * Wo), dtype=x.dtype)
    _im2col(np.ascontiguousarray(x), KH, KW, stride, pad, Ho, Wo, cols)
    out = w.reshape(F, -1) @ cols.reshape(C * KH * KW, N * Ho * Wo)       # [F, N*Ho*Wo]
    out = np.ascontiguousarray(out.reshape(F, N, Ho * Wo).transpose(1, 0, 2))
    if b is not None:
        out += b[:, None]
    return out.reshape(N, F, Ho, Wo), (x.shape, cols, w, b is not None, stride, pad)


def conv2d_backward_v2(dout, cache):
    """dout[N, F, Ho, Wo] -> dx[N, C, Hi, Wi], dw[F, C, KH, KW], db[F] (None if b was None)."""
    x_shape, _, w, _, stride, pad = cache
    F, C, KH, KW = w.shape
    dout, dw, db = _params_grads(dout, cache)
    Ho, Wo = dout.shape[2:]
    dcols = w.reshape(F, -1).T @ dout.reshape(F, -1)                 # [C*KH*KW, N*Ho*Wo]
    dx = np.empty(x_shape, dtype=dout.dtype)
    _col2im(dcols.reshape(C * KH * KW, -1, Ho * Wo), KH, KW, stride, pad, Ho, Wo, dx)
    return dx, dw, db


def conv2d_params_backward_v2(dout, cache):
    """dout[N, F, Ho, Wo] -> dw, db: conv2d_backward_v2 without dx (no dcols GEMM, no col2im)."""
    return _params_grads(dout, cache)[1:]


def _params_grads(dout, cache):
    """dout[N, F, Ho, Wo] -> dout as [F, N, Ho, Wo] (contiguous), dw, db."""
    x_shape, cols, w, has_bias, stride, pad = cache
    F, C, KH, KW = w.shape
    N, _, H, W = x_shape
    Ho, Wo = conv_output_size(H, KH, stride, pad), conv_output_size(W, KW, stride, pad)
    check_grad("conv2d_backward", "dout", dout, (N, F, Ho, Wo))
    dout = np.ascontiguousarray(dout.transpose(1, 0, 2, 3))
    flat = dout.reshape(F, N * Ho * Wo)
    db = flat.sum(axis=1) if has_bias else None
    # dw.T = cols @ dout.T rather than dout @ cols.T: the same long-K product, but OpenBLAS's two
    # threads run it 5-28x faster this way round on a loaded machine (docs/cpu.md), alike on one.
    dw = np.ascontiguousarray((cols.reshape(C * KH * KW, N * Ho * Wo) @ flat.T).T).reshape(w.shape)
    return dout, dw, db
