"""A vanilla (Elman) RNN with tanh: one step, and a whole sequence. The warm-up before the LSTM.

Shapes: N batch, T time steps, D input size, H hidden size.

    a = x @ Wx + h_prev @ Wh + b                      a[N, H]
    h = tanh(a)                                       h[N, H]

Backward through one step, with tanh' = 1 - tanh^2 written in terms of the output h:

    da = dh * (1 - h^2)
    dx = da @ Wx.T,  dh_prev = da @ Wh.T,  dWx = x.T @ da,  dWh = h_prev.T @ da,  db = sum_n da

Through time the gradient on h_{t-1} is multiplied at every step by diag(1 - h_t^2) @ Wh.T:
a product of T such factors shrinks (or grows) geometrically, which is the vanishing-gradient
problem the LSTM's additive cell update avoids. docs/backprop.md section 4 derives it.
"""
from ..backend import array_module
from .checks import Dims, check_grad


def rnn_step_forward(x, h_prev, Wx, Wh, b):
    """One time step.   x[N, D], h_prev[N, H], Wx[D, H], Wh[H, H], b[H] -> h[N, H], cache."""
    dims = Dims("rnn_step_forward")
    dims.check("x", x, "N D")
    dims.check("h_prev", h_prev, "N H")
    dims.check("Wx", Wx, "D H")
    dims.check("Wh", Wh, "H H")
    dims.check("b", b, "H")
    h = array_module(x).tanh(x @ Wx + h_prev @ Wh + b)
    return h, (x, h_prev, Wx, Wh, h)


def rnn_step_backward(dh, cache):
    """dh[N, H] -> dx[N, D], dh_prev[N, H], dWx[D, H], dWh[H, H], db[H].

    da = dh * (1 - h^2);  dx = da @ Wx.T,  dh_prev = da @ Wh.T,  dWx = x.T @ da,
    dWh = h_prev.T @ da,  db = sum_n da.
    """
    x, h_prev, Wx, Wh, h = cache
    check_grad("rnn_step_backward", "dh", dh, h.shape)
    da = dh * (1 - h ** 2)
    return da @ Wx.T, da @ Wh.T, x.T @ da, h_prev.T @ da, da.sum(axis=0)


def rnn_forward(x, h0, Wx, Wh, b):
    """A whole sequence.   x[N, T, D], h0[N, H], Wx[D, H], Wh[H, H], b[H]
    -> h[N, T, H] (every step's hidden state), cache.

    The input projection x @ Wx + b is one GEMM for all T steps; only h_prev @ Wh is sequential.
    """
    dims = Dims("rnn_forward")
    dims.check("x", x, "N T D")
    dims.check("h0", h0, "N H")
    dims.check("Wx", Wx, "D H")
    dims.check("Wh", Wh, "H H")
    dims.check("b", b, "H")
    xp = array_module(x)
    N, T, _ = x.shape
    if T == 0:
        dims.fail(f"x has shape {tuple(x.shape)}: a sequence needs at least one step (T >= 1)")
    ax = x @ Wx + b                                         # [N, T, H]
    hs = xp.empty((N, T, h0.shape[1]), dtype=x.dtype)
    h = h0
    for t in range(T):
        h = xp.tanh(ax[:, t] + h @ Wh)
        hs[:, t] = h
    return hs, (x, h0, Wx, Wh, hs)


def rnn_backward(dh, cache):
    """dh[N, T, H] (the loss's gradient on every hidden state) -> dx, dh0, dWx, dWh, db.

    Backpropagation through time: walking t = T-1 .. 0, h_t receives dh[:, t] from above plus
    da_{t+1} @ Wh.T from the next step; then da_t = (that sum) * (1 - h_t^2). The weight
    gradients are single GEMMs over all steps' da.
    """
    x, h0, Wx, Wh, hs = cache
    check_grad("rnn_backward", "dh", dh, hs.shape)
    xp = array_module(dh)
    N, T, H = hs.shape
    da = xp.empty((N, T, H), dtype=dh.dtype)
    dh_next = xp.zeros_like(h0)
    for t in reversed(range(T)):
        da[:, t] = (dh[:, t] + dh_next) * (1 - hs[:, t] ** 2)
        dh_next = da[:, t] @ Wh.T
    h_prev = xp.concatenate([h0[:, None], hs[:, :-1]], axis=1)     # [N, T, H]: h_{t-1} for each t
    da_rows = da.reshape(N * T, H)
    dx = da @ Wx.T
    dWx = x.reshape(N * T, -1).T @ da_rows
    dWh = h_prev.reshape(N * T, H).T @ da_rows
    db = da_rows.sum(axis=0)
    return dx, dh_next, dWx, dWh, db
