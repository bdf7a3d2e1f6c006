"""2-D max pooling.

Shapes: N batch, C channels, Hi x Wi input, Ho = (Hi - size) // stride + 1 (likewise Wo).
Rows and columns that no window reaches are dropped (floor mode, PyTorch's default).

Each window's size*size entries are gathered as size*size strided slices of the whole batch,
one per offset (kh, kw) inside the window; no Python loop runs over pixels or images.
"""
from ..backend import array_module
from .checks import Dims, check_grad, check_positive_int


def _window_offsets(size):
    return [(kh, kw) for kh in range(size) for kw in range(size)]


def _window_slice(kh, kw, stride, Ho, Wo):
    """Index of the entries at offset (kh, kw) of every window: [:, :, kh + stride*i, kw + stride*j]."""
    return (slice(None), slice(None),
            slice(kh, kh + stride * Ho, stride), slice(kw, kw + stride * Wo, stride))


def check_pool_inputs(x, size, stride):
    """Check maxpool2d_forward's arguments (x[N, C, Hi, Wi], positive size and stride, a window
    that fits) -> the output's Ho, Wo (floor mode)."""
    dims = Dims("maxpool2d_forward")
    dims.check("x", x, "N C Hi Wi")
    check_positive_int("maxpool2d_forward", "size", size)
    check_positive_int("maxpool2d_forward", "stride", stride)
    H, W = x.shape[2:]
    Ho, Wo = (H - size) // stride + 1, (W - size) // stride + 1
    if Ho < 1 or Wo < 1:
        dims.fail(f"window {size}x{size} does not fit x of shape {tuple(x.shape)}")
    return Ho, Wo


def maxpool2d_forward(x, size=2, stride=2):
    """out[n, c, i, j] = max_{kh, kw < size} x[n, c, stride*i + kh, stride*j + kw]

    x[N, C, Hi, Wi] -> out[N, C, Ho, Wo], cache. The cache keeps which offset won in each window
    (the first one on ties, as PyTorch does).
    """
    Ho, Wo = check_pool_inputs(x, size, stride)
    xp = array_module(x)
    windows = xp.stack([x[_window_slice(kh, kw, stride, Ho, Wo)]
                        for kh, kw in _window_offsets(size)])      # [size*size, N, C, Ho, Wo]
    winner = windows.argmax(axis=0)                                 # [N, C, Ho, Wo]
    out = windows.max(axis=0)
    return out, (x.shape, winner, size, stride)


def maxpool2d_backward(dout, cache):
    """dout[N, C, Ho, Wo] -> dx[N, C, Hi, Wi].

    Each window passes its gradient to the entry that won it; an entry that wins several
    overlapping windows (stride < size) receives the sum.
    """
    x_shape, winner, size, stride = cache
    check_grad("maxpool2d_backward", "dout", dout, winner.shape)
    xp = array_module(dout)
    Ho, Wo = winner.shape[2:]
    # SOLUTION BEGIN
    dx = xp.zeros(x_shape, dtype=dout.dtype)
    for k, (kh, kw) in enumerate(_window_offsets(size)):
        dx[_window_slice(kh, kw, stride, Ho, Wo)] += xp.where(winner == k, dout, 0)
    return dx
    # SOLUTION END
