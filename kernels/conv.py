"""The convolution's data movement (rawcap.layers.conv: im2col, col2im) as kernels.

The GEMMs, out[n] = W2 @ cols[n] and the backward's dW2 and dcols, stay as the layer does them:
batched `@` on the array library (cuBLAS on a GPU). The kernels replace the layer's copy loops
over the KH*KW kernel offsets, which make one strided slice copy (or add) per offset.

version 1   forward: im2col, one thread per entry of cols[N, C*KH*KW, Ho*Wo] copies its pixel of
            x (or 0 in the padding) once.
            backward: col2im written as a gather: one thread per pixel x[n, c, i, j] sums the
            entries of dcols that were copied from it (at most KH*KW of them, in the layer's
            order of offsets) and writes dx once. Each pixel is written by one thread only, so
            there are no atomics and the result is deterministic.
            The cache is the layer's, so either version's backward takes either forward's cache.
            conv2d_params_backward (the first layer's: no gradient for the images) skips the
            dcols GEMM and col2im.
            Arithmetic is in the arrays' dtype.
"""
from numba import cuda

from rawcap.backend import array_module
from rawcap.layers.checks import check_grad
from rawcap.layers.conv import check_conv_inputs, conv_output_size

from .launch import THREADS, blocks_for, launch

DEFAULT = 1


@cuda.jit
def _im2col(x, KH, KW, stride, pad, Wo, cols):
    """cols[n, (c, kh, kw), (i, j)] = x_pad[n, c, stride*i + kh, stride*j + kw]."""
    k = cuda.grid(1)
    N, rows, P = cols.shape
    if k >= N * rows * P:
        return
    n, row, p = k // (rows * P), (k // P) % rows, k % P
    c, kh, kw = row // (KH * KW), (row // KW) % KH, row % KW
    i = stride * (p // Wo) + kh - pad                 # the pixel in x, unpadded coordinates
    j = stride * (p % Wo) + kw - pad
    if i >= 0 and i < x.shape[2] and j >= 0 and j < x.shape[3]:
        cols[n, row, p] = x[n, c, i, j]
    else:
        cols[n, row, p] = 0


@cuda.jit
def _col2im(dcols, KH, KW, stride, pad, Ho, Wo, dx):
    """dx[n, c, i, j] = sum of dcols[n, (c, kh, kw), (oi, oj)] over stride*oi + kh = i + pad,
    stride*oj + kw = j + pad."""
    k = cuda.grid(1)
    N, C, H, W = dx.shape
    if k >= N * C * H * W:
        return
    n, c, i, j = k // (C * H * W), (k // (H * W)) % C, (k // W) % H, k % W
    total = dx.dtype.type(0)
    for kh in range(KH):
        si = i + pad - kh                             # stride * oi
        if si >= 0 and si % stride == 0 and si // stride < Ho:
            for kw in range(KW):
                sj = j + pad - kw                     # stride * oj
                if sj >= 0 and sj % stride == 0 and sj // stride < Wo:
                    total += dcols[n, (c * KH + kh) * KW + kw, (si // stride) * Wo + sj // stride]
    dx[n, c, i, j] = total


def conv2d_forward_v1(x, w, b, stride=1, pad=0):
    """x[N, C, Hi, Wi], w[F, C, KH, KW], b[F] or None -> out[N, F, Ho, Wo], cache (as the layer)."""
    N, C, F, KH, KW, Ho, Wo = check_conv_inputs(x, w, b, stride, pad)

    xp = array_module(x)
    x = xp.ascontiguousarray(x)
    cols = xp.empty((N, C * KH * KW, Ho * Wo), dtype=x.dtype)
    launch(_im2col, blocks_for(cols.size), THREADS, x, KH, KW, stride, pad, Wo, cols)
    out = w.reshape(F, -1) @ cols                              # [N, F, Ho*Wo]
    if b is not None:
        out += b[:, None]
    return out.reshape(N, F, Ho, Wo), (x.shape, cols, w, b is not None, stride, pad)


def conv2d_backward_v1(dout, cache):
    """dout[N, F, Ho, Wo] -> dx[N, C, Hi, Wi], dw[F, C, KH, KW], db[F] (None if b was None)."""
    x_shape, cols, w, has_bias, stride, pad = cache
    F, _, KH, KW = w.shape
    N, _, H, W = x_shape
    Ho, Wo = conv_output_size(H, KH, stride, pad), conv_output_size(W, KW, stride, pad)
    check_grad("conv2d_backward", "dout", dout, (N, F, Ho, Wo))
    xp = array_module(dout)
    dout = dout.reshape(N, F, Ho * Wo)
    dw, db = _params_grads(dout, cols, w, has_bias)
    dcols = w.reshape(F, -1).T @ dout                         # [N, C*KH*KW, Ho*Wo]
    dx = xp.empty(x_shape, dtype=dout.dtype)
    launch(_col2im, blocks_for(dx.size), THREADS, dcols, KH, KW, stride, pad, Ho, Wo, dx)
    return dx, dw, db


def conv2d_params_backward_v1(dout, cache):
    """dout[N, F, Ho, Wo] -> dw, db: conv2d_backward_v1 without dx (no dcols GEMM, no col2im)."""
    x_shape, cols, w, has_bias, stride, pad = cache
    F, _, KH, KW = w.shape
    N, _, H, W = x_shape
    Ho, Wo = conv_output_size(H, KH, stride, pad), conv_output_size(W, KW, stride, pad)
    check_grad("conv2d_backward", "dout", dout, (N, F, Ho, Wo))
    return _params_grads(dout.reshape(N, F, Ho * Wo), cols, w, has_bias)


def _params_grads(dout, cols, w, has_bias):
    """dout[N, F, Ho*Wo], cols[N, C*KH*KW, Ho*Wo] -> dw[F, C, KH, KW], db[F] or None."""
    db = dout.sum(axis=(0, 2)) if has_bias else None
    dw = (dout @ cols.transpose(0, 2, 1)).sum(axis=0).reshape(w.shape)
    return dw, db
