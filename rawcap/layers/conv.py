"""2-D convolution (cross-correlation, as in every deep learning library) via im2col + one GEMM.

Shapes: N batch, C input channels, F filters, Hi x Wi input, KH x KW kernel, Ho x Wo output,
        Ho = (Hi + 2*pad - KH) // stride + 1, likewise Wo.

NCHW with PyTorch's weight layout w[F, C, KH, KW], so weights interchange with torch.nn.Conv2d.

im2col lays every receptive field out as a column: cols[(c, kh, kw), (n, ho, wo)] =
x_pad[n, c, kh + stride*ho, kw + stride*wo]. The convolution is then one matrix product
w[F, C*KH*KW] @ cols. The copy loops over the KH*KW kernel offsets only; each offset moves a
whole strided slice of the batch at once, so there is no Python loop over pixels or images.
"""
from ..backend import array_module
from .checks import Dims, check_grad, check_positive_int


def conv_output_size(size, kernel, stride, pad):
    """Output length along one axis: (size + 2*pad - kernel) // stride + 1."""
    return (size + 2 * pad - kernel) // stride + 1


def im2col(x, KH, KW, stride, pad):
    """x[N, C, Hi, Wi] -> cols[C*KH*KW, N*Ho*Wo], one column per output pixel."""
    xp = array_module(x)
    N, C, H, W = x.shape
    Ho, Wo = conv_output_size(H, KH, stride, pad), conv_output_size(W, KW, stride, pad)
    x_pad = xp.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    cols = xp.empty((C, KH, KW, N, Ho, Wo), dtype=x.dtype)
    for kh in range(KH):
        for kw in range(KW):
            patch = x_pad[:, :, kh:kh + stride * Ho:stride, kw:kw + stride * Wo:stride]
            cols[:, kh, kw] = patch.transpose(1, 0, 2, 3)
    return cols.reshape(C * KH * KW, N * Ho * Wo)


def col2im(dcols, x_shape, KH, KW, stride, pad):
    """The adjoint of im2col: add every column entry back onto the pixel it was copied from.

    dcols[C*KH*KW, N*Ho*Wo] -> dx[N, C, Hi, Wi]. Overlapping receptive fields sum.
    """
    xp = array_module(dcols)
    N, C, H, W = x_shape
    Ho, Wo = conv_output_size(H, KH, stride, pad), conv_output_size(W, KW, stride, pad)
    dcols = dcols.reshape(C, KH, KW, N, Ho, Wo)
    dx_pad = xp.zeros((N, C, H + 2 * pad, W + 2 * pad), dtype=dcols.dtype)
    for kh in range(KH):
        for kw in range(KW):
            patch = dx_pad[:, :, kh:kh + stride * Ho:stride, kw:kw + stride * Wo:stride]
            patch += dcols[:, kh, kw].transpose(1, 0, 2, 3)
    return dx_pad[:, :, pad:pad + H, pad:pad + W]


def conv2d_forward(x, w, b, stride=1, pad=0):
    """out[n, f, i, j] = b[f] + sum_{c,kh,kw} w[f, c, kh, kw] * x_pad[n, c, stride*i + kh, stride*j + kw]

    x[N, C, Hi, Wi], w[F, C, KH, KW], b[F] -> out[N, F, Ho, Wo], cache.
    x is zero-padded by `pad` on every side; trailing rows/columns that no stride reaches are unused.
    """
    dims = Dims("conv2d_forward")
    dims.check("x", x, "N C Hi Wi")
    dims.check("w", w, "F C KH KW")
    dims.check("b", b, "F")
    check_positive_int("conv2d_forward", "stride", stride)
    check_positive_int("conv2d_forward", "pad", pad, minimum=0)
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    Ho, Wo = conv_output_size(H, KH, stride, pad), conv_output_size(W, KW, stride, pad)
    if Ho < 1 or Wo < 1:
        dims.fail(f"kernel {KH}x{KW} does not fit x of shape {tuple(x.shape)} with pad={pad}")

    cols = im2col(x, KH, KW, stride, pad)                      # [C*KH*KW, N*Ho*Wo]
    out = w.reshape(F, -1) @ cols + b[:, None]                 # [F, N*Ho*Wo]
    out = out.reshape(F, N, Ho, Wo).transpose(1, 0, 2, 3)
    xp = array_module(x)
    return xp.ascontiguousarray(out), (x.shape, cols, w, stride, pad)


def conv2d_backward(dout, cache):
    """dout[N, F, Ho, Wo] -> dx[N, C, Hi, Wi], dw[F, C, KH, KW], db[F].

    With out = W2 @ cols + b (W2 = w as [F, C*KH*KW]):
        dW2 = dout2 @ cols.T,   dcols = W2.T @ dout2,   db = sum of dout over n, i, j,
    and dx = col2im(dcols), where dout2 is dout laid out as [F, N*Ho*Wo].
    """
    x_shape, cols, w, stride, pad = cache
    F, C, KH, KW = w.shape
    N, _, H, W = x_shape
    Ho, Wo = conv_output_size(H, KH, stride, pad), conv_output_size(W, KW, stride, pad)
    check_grad("conv2d_backward", "dout", dout, (N, F, Ho, Wo))
    dout2 = dout.transpose(1, 0, 2, 3).reshape(F, -1)          # [F, N*Ho*Wo]
    db = dout2.sum(axis=1)
    dw = (dout2 @ cols.T).reshape(w.shape)
    dx = col2im(w.reshape(F, -1).T @ dout2, x_shape, KH, KW, stride, pad)
    return dx, dw, db
