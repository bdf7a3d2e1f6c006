"""2-D convolution (cross-correlation, as in every deep learning library) via im2col and a batched GEMM.

Shapes: N batch, C input channels, F filters, Hi x Wi input, KH x KW kernel, Ho x Wo output,
        Ho = (Hi + 2*pad - KH) // stride + 1, likewise Wo.

NCHW with PyTorch's weight layout w[F, C, KH, KW], so weights interchange with torch.nn.Conv2d.

im2col lays every receptive field out as a column, image by image:
cols[n, (c, kh, kw), (i, j)] = x_pad[n, c, kh + stride*i, kw + stride*j]. The convolution is then
one matrix product per image, w[F, C*KH*KW] @ cols[n], batched over n by `@` (one batched GEMM),
which leaves the output already in NCHW order. The copy loops over the KH*KW kernel offsets
only; each offset moves a whole strided slice of the batch, so no Python loop runs over pixels
or images.
"""
from ..backend import array_module
from .checks import Dims, check_grad, check_positive_int


def conv_output_size(size, kernel, stride, pad):
    """Output length along one axis: (size + 2*pad - kernel) // stride + 1."""
    return (size + 2 * pad - kernel) // stride + 1


def im2col(x, KH, KW, stride, pad):
    """x[N, C, Hi, Wi] -> cols[N, C*KH*KW, Ho*Wo], one column per output pixel."""
    xp = array_module(x)
    N, C, H, W = x.shape
    Ho, Wo = conv_output_size(H, KH, stride, pad), conv_output_size(W, KW, stride, pad)
    x_pad = xp.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    cols = xp.empty((N, C, KH, KW, Ho, Wo), dtype=x.dtype)
    for kh in range(KH):
        for kw in range(KW):
            cols[:, :, kh, kw] = x_pad[:, :, kh:kh + stride * Ho:stride, kw:kw + stride * Wo:stride]
    return cols.reshape(N, C * KH * KW, Ho * Wo)


def col2im(dcols, x_shape, KH, KW, stride, pad):
    """The adjoint of im2col: add every column entry back onto the pixel it was copied from.

    dcols[N, C*KH*KW, Ho*Wo] -> dx[N, C, Hi, Wi]. Overlapping receptive fields sum.
    """
    xp = array_module(dcols)
    N, C, H, W = x_shape
    Ho, Wo = conv_output_size(H, KH, stride, pad), conv_output_size(W, KW, stride, pad)
    dcols = dcols.reshape(N, C, KH, KW, Ho, Wo)
    # SOLUTION BEGIN
    dx_pad = xp.zeros((N, C, H + 2 * pad, W + 2 * pad), dtype=dcols.dtype)
    for kh in range(KH):
        for kw in range(KW):
            dx_pad[:, :, kh:kh + stride * Ho:stride, kw:kw + stride * Wo:stride] += dcols[:, :, kh, kw]
    return dx_pad[:, :, pad:pad + H, pad:pad + W]
    # SOLUTION END


def check_conv_inputs(x, w, b, stride, pad):
    """conv2d_forward's argument checks (ValueErrors naming the argument) -> N, C, F, KH, KW, Ho, Wo."""
    dims = Dims("conv2d_forward")
    dims.check("x", x, "N C Hi Wi")
    dims.check("w", w, "F C KH KW")
    if b is not None:
        dims.check("b", b, "F")
    check_positive_int("conv2d_forward", "stride", stride)
    check_positive_int("conv2d_forward", "pad", pad, minimum=0)
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    Ho, Wo = conv_output_size(H, KH, stride, pad), conv_output_size(W, KW, stride, pad)
    if Ho < 1 or Wo < 1:
        dims.fail(f"kernel {KH}x{KW} does not fit x of shape {tuple(x.shape)} with pad={pad}")
    return N, C, F, KH, KW, Ho, Wo


def conv2d_forward(x, w, b, stride=1, pad=0):
    """out[n, f, i, j] = b[f] + sum_{c,kh,kw} w[f, c, kh, kw] * x_pad[n, c, stride*i + kh, stride*j + kw]

    x[N, C, Hi, Wi], w[F, C, KH, KW], b[F] or None (no bias) -> out[N, F, Ho, Wo], cache.
    x is zero-padded by `pad` on every side; trailing rows/columns that no stride reaches are unused.
    """
    N, C, F, KH, KW, Ho, Wo = check_conv_inputs(x, w, b, stride, pad)

    cols = im2col(x, KH, KW, stride, pad)                      # [N, C*KH*KW, Ho*Wo]
    out = w.reshape(F, -1) @ cols                              # [N, F, Ho*Wo]
    if b is not None:
        out += b[:, None]
    return out.reshape(N, F, Ho, Wo), (x.shape, cols, w, b is not None, stride, pad)


def conv2d_backward(dout, cache):
    """dout[N, F, Ho, Wo] -> dx[N, C, Hi, Wi], dw[F, C, KH, KW], db[F] (None if b was None).

    With out[n] = W2 @ cols[n] + b (W2 = w as [F, C*KH*KW], dout[n] as [F, Ho*Wo]):
        dW2 = sum_n dout[n] @ cols[n].T,   dcols[n] = W2.T @ dout[n],   db = sum of dout over n, i, j,
    and dx = col2im(dcols).
    """
    x_shape, cols, w, has_bias, stride, pad = cache
    F, C, KH, KW = w.shape
    N, _, H, W = x_shape
    Ho, Wo = conv_output_size(H, KH, stride, pad), conv_output_size(W, KW, stride, pad)
    check_grad("conv2d_backward", "dout", dout, (N, F, Ho, Wo))
    # SOLUTION BEGIN
    dout = dout.reshape(N, F, Ho * Wo)
    db = dout.sum(axis=(0, 2)) if has_bias else None
    dw = (dout @ cols.transpose(0, 2, 1)).sum(axis=0).reshape(w.shape)
    dx = col2im(w.reshape(F, -1).T @ dout, x_shape, KH, KW, stride, pad)
    return dx, dw, db
    # SOLUTION END


def conv2d_params_backward(dout, cache):
    """dout[N, F, Ho, Wo] -> dw[F, C, KH, KW], db[F] (None if b was None): conv2d_backward without dx.

    For a layer whose input needs no gradient: the encoder's first conv, whose input is the
    images. There dx costs the largest GEMM of the backward (dcols = W2.T @ dout over every
    pixel) and a col2im over the images, both thrown away. The fast versions skip them; this
    one is conv2d_backward with dx dropped, so that a student's conv2d_backward (which replaces
    the one above) runs for every layer and the textbook run stays the same bit for bit.
    A function of its own rather than an option: every backward is op_backward(dout, cache).
    """
    _, dw, db = conv2d_backward(dout, cache)
    return dw, db
