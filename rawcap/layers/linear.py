"""Affine (fully connected) layer over the last axis.

Shapes: D input size, M output size; any number of leading axes (N, or N and T, or N, L, ...).
"""
from .checks import Dims, check_grad


def affine_forward(x, w, b):
    """out = x @ w + b.   x[..., D], w[D, M], b[M] -> out[..., M], cache."""
    dims = Dims("affine_forward")
    dims.check("x", x, "... D")
    dims.check("w", w, "D M")
    dims.check("b", b, "M")
    # One GEMM over all rows: NumPy's `@` on a stack ([N, T, D] @ w) loops over small matrices.
    out = x.reshape(-1, w.shape[0]) @ w + b
    return out.reshape(x.shape[:-1] + (w.shape[1],)), (x, w)


def affine_backward(dout, cache):
    """dout[..., M] -> dx[..., D], dw[D, M], db[M].

    Flattening the leading axes into one axis of K rows (X[K, D], dOut[K, M]):
        dx = dout @ w.T,   dw = X.T @ dOut,   db = sum over rows of dOut.
    """
    x, w = cache
    check_grad("affine_backward", "dout", dout, x.shape[:-1] + (w.shape[1],))
    dout_rows = dout.reshape(-1, w.shape[1])
    dx = (dout_rows @ w.T).reshape(x.shape)
    dw = x.reshape(-1, w.shape[0]).T @ dout_rows
    db = dout_rows.sum(axis=0)
    return dx, dw, db
