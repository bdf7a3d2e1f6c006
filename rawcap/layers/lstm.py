"""LSTM: one step, and a whole sequence.

Shapes: N batch, T time steps, D input size, H hidden size.
Gates are packed in the order i, f, g, o (PyTorch's), so Wx.T and Wh.T are exactly
torch.nn.LSTM's weight_ih_l0 and weight_hh_l0 (and b is bias_ih_l0 + bias_hh_l0):

    a = x @ Wx + h_prev @ Wh + b                      a[N, 4H] = [a_i | a_f | a_g | a_o]
    i = sigmoid(a_i)   f = sigmoid(a_f)   g = tanh(a_g)   o = sigmoid(a_o)
    c = f * c_prev + i * g
    h = o * tanh(c)

The step splits into the GEMMs that make `a` and the pointwise part (gates and cell update),
which is what a fused kernel replaces: the step and the sequence call the pointwise part as
`ops.lstm_pointwise_*`, which is the function below with `--kernels all=0`, the one-pass Numba
version of kernels/cpu/lstm.py on NumPy arrays by default and the kernel of kernels/lstm.py on
a GPU (rawcap.backend). docs/backprop.md derives the backward.
"""
from ..backend import array_module, ops
from .activations import sigmoid
from .checks import Dims, check_grad


def lstm_pointwise_forward(a, c_prev):
    """Gates and cell update.   a[N, 4H], c_prev[N, H] -> h[N, H], c[N, H], cache."""
    dims = Dims("lstm_pointwise_forward")
    dims.check("a", a, "N 4H")
    dims.check("c_prev", c_prev, "N H")
    xp = array_module(a)
    H = c_prev.shape[1]
    # SOLUTION BEGIN
    i = sigmoid(a[:, :H])
    f = sigmoid(a[:, H:2 * H])
    g = xp.tanh(a[:, 2 * H:3 * H])
    o = sigmoid(a[:, 3 * H:])
    c = f * c_prev + i * g
    tanh_c = xp.tanh(c)
    h = o * tanh_c
    return h, c, (i, f, g, o, c_prev, tanh_c)
    # SOLUTION END


def lstm_pointwise_backward(dh, dc, cache):
    """dh[N, H], dc[N, H] or None -> da[N, 4H], dc_prev[N, H].

    dc_total = dc + dh * o * (1 - tanh(c)^2)          (c reaches the loss directly and through h)
    da_i = dc_total * g * i * (1 - i)       da_f = dc_total * c_prev * f * (1 - f)
    da_g = dc_total * i * (1 - g^2)         da_o = dh * tanh(c) * o * (1 - o)
    dc_prev = dc_total * f
    """
    i, f, g, o, c_prev, tanh_c = cache
    check_grad("lstm_pointwise_backward", "dh", dh, c_prev.shape)
    if dc is not None:
        check_grad("lstm_pointwise_backward", "dc", dc, c_prev.shape)
    xp = array_module(dh)
    # SOLUTION BEGIN
    dc_total = dh * o * (1 - tanh_c ** 2)
    if dc is not None:
        dc_total = dc_total + dc
    da = xp.concatenate([dc_total * g * i * (1 - i),
                         dc_total * c_prev * f * (1 - f),
                         dc_total * i * (1 - g ** 2),
                         dh * tanh_c * o * (1 - o)], axis=1)
    return da, dc_total * f
    # SOLUTION END


def lstm_step_forward(x, h_prev, c_prev, Wx, Wh, b):
    """One time step.   x[N, D], h_prev[N, H], c_prev[N, H], Wx[D, 4H], Wh[H, 4H], b[4H]
    -> h[N, H], c[N, H], cache."""
    dims = Dims("lstm_step_forward")
    dims.check("x", x, "N D")
    dims.check("h_prev", h_prev, "N H")
    dims.check("c_prev", c_prev, "N H")
    dims.check("Wx", Wx, "D 4H")
    dims.check("Wh", Wh, "H 4H")
    dims.check("b", b, "4H")
    a = x @ Wx + h_prev @ Wh + b
    h, c, pointwise = ops.lstm_pointwise_forward(a, c_prev)
    return h, c, (x, h_prev, Wx, Wh, pointwise)


def lstm_step_backward(dh, dc, cache):
    """dh[N, H], dc[N, H] or None -> dx, dh_prev, dc_prev, dWx, dWh, db.

    After the pointwise backward gives da[N, 4H], the GEMM a = x @ Wx + h_prev @ Wh + b gives
        dx = da @ Wx.T,  dh_prev = da @ Wh.T,  dWx = x.T @ da,  dWh = h_prev.T @ da,  db = sum_n da.
    """
    x, h_prev, Wx, Wh, pointwise = cache
    # SOLUTION BEGIN
    da, dc_prev = ops.lstm_pointwise_backward(dh, dc, pointwise)
    return da @ Wx.T, da @ Wh.T, dc_prev, x.T @ da, h_prev.T @ da, da.sum(axis=0)
    # SOLUTION END


def lstm_forward(x, h0, c0, Wx, Wh, b):
    """A whole sequence.   x[N, T, D], h0[N, H], c0[N, H], Wx[D, 4H], Wh[H, 4H], b[4H]
    -> h[N, T, H] (every step's hidden state), cache.

    The input projection x @ Wx + b is one GEMM for all T steps; only h_prev @ Wh is sequential.
    """
    dims = Dims("lstm_forward")
    dims.check("x", x, "N T D")
    dims.check("h0", h0, "N H")
    dims.check("c0", c0, "N H")
    dims.check("Wx", Wx, "D 4H")
    dims.check("Wh", Wh, "H 4H")
    dims.check("b", b, "4H")
    xp = array_module(x)
    N, T, _ = x.shape
    if T == 0:
        dims.fail(f"x has shape {tuple(x.shape)}: a sequence needs at least one step (T >= 1)")
    ax = x @ Wx + b                                         # [N, T, 4H]
    hs = xp.empty((N, T, h0.shape[1]), dtype=x.dtype)
    h, c, steps = h0, c0, []
    for t in range(T):
        h, c, pointwise = ops.lstm_pointwise_forward(ax[:, t] + h @ Wh, c)
        hs[:, t] = h
        steps.append(pointwise)
    return hs, (x, h0, Wx, Wh, hs, steps)


def lstm_backward(dh, cache):
    """dh[N, T, H] (the loss's gradient on every hidden state) -> dx, dh0, dc0, dWx, dWh, db.

    Backpropagation through time: walking t = T-1 .. 0, step t's hidden state receives dh[:, t]
    from above plus (da_{t+1} @ Wh.T) from the next step, and its cell receives dc_prev of the
    next step. The weight gradients are then single GEMMs over all steps' da.
    """
    x, h0, Wx, Wh, hs, steps = cache
    check_grad("lstm_backward", "dh", dh, hs.shape)
    xp = array_module(dh)
    N, T, H = hs.shape
    # SOLUTION BEGIN
    da = xp.empty((N, T, 4 * H), dtype=dh.dtype)
    dh_next = xp.zeros_like(h0)
    dc_next = None
    for t in reversed(range(T)):
        da[:, t], dc_next = ops.lstm_pointwise_backward(dh[:, t] + dh_next, dc_next, steps[t])
        dh_next = da[:, t] @ Wh.T
    h_prev = xp.concatenate([h0[:, None], hs[:, :-1]], axis=1)     # [N, T, H]: h_{t-1} for each t
    da_rows = da.reshape(N * T, 4 * H)
    dx = da @ Wx.T
    dWx = x.reshape(N * T, -1).T @ da_rows
    dWh = h_prev.reshape(N * T, H).T @ da_rows
    db = da_rows.sum(axis=0)
    return dx, dh_next, dc_next, dWx, dWh, db
    # SOLUTION END
