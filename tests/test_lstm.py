"""LSTM: gradients, an independent forward, the sequence as T steps, float32, bad input."""
import math

import numpy as np
import pytest

from rawcap.gradcheck import (LayerCheck, lstm_check,
                              lstm_pointwise_check, lstm_step_check)
from rawcap.layers import (lstm_backward, lstm_forward, lstm_pointwise_backward,
                           lstm_pointwise_forward, lstm_step_backward, lstm_step_forward)

from helpers import assert_gradients_match, arrays_in

SEEDS = [0, 1, 2]

# float32 keeps about 7 significant digits (eps = 1.2e-7). These small GEMMs and a few time
# steps lose at most a few of them, so float32 results agree with float64 to this.
FLOAT32_RTOL, FLOAT32_ATOL = 1e-4, 1e-5


def h_only(check):
    """The same layer with c dropped from its outputs, so its backward gets dc=None (as when c
    does not reach the loss). The numerical gradient then sees only h."""
    def forward(*args):
        h, _, cache = check.forward(*args)
        return h, cache

    def backward(dh, cache):
        return check.backward(dh, None, cache)

    return LayerCheck(check.layer + " (dc=None)", forward, backward, check.args, check.grads)


def sigmoid(z):
    return 1 / (1 + math.exp(-z))


def pointwise_by_hand(a, c_prev):
    """The pointwise part for one example: a[4H] = [a_i | a_f | a_g | a_o], c_prev[H]."""
    H = len(c_prev)
    h, c = np.zeros(H), np.zeros(H)
    for j in range(H):
        i = sigmoid(a[j])
        f = sigmoid(a[H + j])
        g = math.tanh(a[2 * H + j])
        o = sigmoid(a[3 * H + j])
        c[j] = f * c_prev[j] + i * g
        h[j] = o * math.tanh(c[j])
    return h, c


def lstm_step_by_hand(x, h_prev, c_prev, Wx, Wh, b):
    """One step, example by example."""
    h, c = np.zeros_like(h_prev), np.zeros_like(c_prev)
    for n in range(x.shape[0]):
        a = x[n] @ Wx + h_prev[n] @ Wh + b
        h[n], c[n] = pointwise_by_hand(a, c_prev[n])
    return h, c


# ---- gradients -------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("N, H", [(1, 1), (3, 4), (2, 5)])
def test_lstm_pointwise_gradients(seed, N, H):
    rng = np.random.default_rng(seed)
    assert_gradients_match(lstm_pointwise_check(rng, N, H), rng)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("N, D, H", [(1, 1, 1), (1, 3, 2), (3, 5, 4), (2, 7, 1)])
def test_lstm_step_gradients(seed, N, D, H):
    rng = np.random.default_rng(seed)
    assert_gradients_match(lstm_step_check(rng, N, D, H), rng)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("N, T, D, H", [(1, 1, 1, 1), (1, 1, 3, 2), (2, 4, 5, 3), (3, 5, 1, 2)])
def test_lstm_sequence_gradients(seed, N, T, D, H):
    rng = np.random.default_rng(seed)
    assert_gradients_match(lstm_check(rng, N, T, D, H), rng)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("build, sizes", [(lstm_pointwise_check, (3, 4)),
                                          (lstm_step_check, (2, 5, 3)),
                                          (lstm_step_check, (1, 1, 1))])
def test_gradients_with_dc_none(seed, build, sizes):
    rng = np.random.default_rng(seed)
    assert_gradients_match(h_only(build(rng, *sizes)), rng)


def test_dc_none_means_dc_zero():
    rng = np.random.default_rng(0)
    check = lstm_step_check(rng)
    h, c, cache = lstm_step_forward(*check.args.values())
    dh = rng.standard_normal(h.shape)
    with_none = lstm_step_backward(dh, None, cache)
    with_zeros = lstm_step_backward(dh, np.zeros_like(c), cache)
    for got, expected in zip(with_none, with_zeros):
        np.testing.assert_array_equal(got, expected)


# ---- forward values --------------------------------------------------------------------------

@pytest.mark.parametrize("seed", SEEDS)
def test_lstm_pointwise_forward_matches_by_hand(seed):
    rng = np.random.default_rng(seed)
    a, c_prev = rng.standard_normal((3, 8)), rng.standard_normal((3, 2))
    h, c, _ = lstm_pointwise_forward(a, c_prev)
    for n in range(3):
        h_n, c_n = pointwise_by_hand(a[n], c_prev[n])
        np.testing.assert_allclose(h[n], h_n, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(c[n], c_n, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("N, D, H", [(1, 1, 1), (3, 5, 4)])
def test_lstm_step_forward_matches_by_hand(seed, N, D, H):
    args = lstm_step_check(np.random.default_rng(seed), N, D, H).args
    h, c, _ = lstm_step_forward(**args)
    h_hand, c_hand = lstm_step_by_hand(**args)
    np.testing.assert_allclose(h, h_hand, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(c, c_hand, rtol=1e-12, atol=1e-14)


def test_gates_are_packed_i_f_g_o():
    """With zero weights a = b, so each gate's value is set through its own block of b."""
    N, D, H = 2, 3, 2
    i, f, g, o = 0.2, 0.7, 0.4, 0.9
    logit = lambda p: math.log(p / (1 - p))          # the inverse of the sigmoid
    b = np.repeat([logit(i), logit(f), math.atanh(g), logit(o)], H)
    c_prev = np.full((N, H), 0.5)
    h, c, _ = lstm_step_forward(np.ones((N, D)), np.ones((N, H)), c_prev,
                                np.zeros((D, 4 * H)), np.zeros((H, 4 * H)), b)
    np.testing.assert_allclose(c, f * 0.5 + i * g)                 # 0.43
    np.testing.assert_allclose(h, o * math.tanh(f * 0.5 + i * g))


def test_open_forget_gate_and_shut_input_gate_carry_the_cell_unchanged():
    """b_f = +30 (f = 1) and b_i = -30 (i = 0) make c = f * c_prev + i * g = c_prev: the LSTM's
    long-term memory. With the output gate open as well (b_o = +30), h = tanh(c0) at every step."""
    rng = np.random.default_rng(0)
    N, T, D, H = 2, 6, 3, 4
    x, h0, c0 = rng.standard_normal((N, T, D)), rng.standard_normal((N, H)), rng.standard_normal((N, H))
    Wx, Wh = 0.1 * rng.standard_normal((D, 4 * H)), 0.1 * rng.standard_normal((H, 4 * H))
    b = np.concatenate([np.full(H, -30.0), np.full(H, 30.0), np.zeros(H), np.full(H, 30.0)])
    _, c, _ = lstm_step_forward(x[:, 0], h0, c0, Wx, Wh, b)
    np.testing.assert_allclose(c, c0, rtol=0, atol=1e-10)
    hs, _ = lstm_forward(x, h0, c0, Wx, Wh, b)
    np.testing.assert_allclose(hs, np.repeat(np.tanh(c0)[:, None, :], T, axis=1), rtol=0, atol=1e-10)


@pytest.mark.parametrize("T", [1, 5, 30])
def test_an_open_forget_gate_carries_the_cell_gradient_back_unchanged(T):
    """The backward of the previous test: with f = 1, i = 0 and o = 1 (saturated), a gradient
    dh on the last hidden state reaches c0 as dh * (1 - tanh(c0)^2), whatever T is, because
    dc_prev = dc_total * f multiplies it by 1 at every step (docs/backprop.md 4.3). A vanilla
    RNN multiplies by diag(1 - h^2) @ Wh.T instead (tests/test_rnn.py)."""
    rng = np.random.default_rng(0)
    N, D, H = 2, 3, 4
    x, h0, c0 = rng.standard_normal((N, T, D)), rng.standard_normal((N, H)), rng.standard_normal((N, H))
    Wx, Wh = 0.1 * rng.standard_normal((D, 4 * H)), 0.1 * rng.standard_normal((H, 4 * H))
    b = np.concatenate([np.full(H, -30.0), np.full(H, 30.0), np.zeros(H), np.full(H, 30.0)])
    hs, cache = lstm_forward(x, h0, c0, Wx, Wh, b)
    dhs = np.zeros_like(hs)
    dhs[:, -1] = rng.standard_normal((N, H))
    _, dh0, dc0, *_ = lstm_backward(dhs, cache)
    np.testing.assert_allclose(dc0, dhs[:, -1] * (1 - np.tanh(c0) ** 2), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dh0, 0, atol=1e-10)     # every gate saturated: no path through h


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("N, T, D, H", [(1, 1, 2, 3), (3, 5, 4, 2)])
def test_lstm_forward_and_backward_are_t_steps(seed, N, T, D, H):
    """lstm_forward is T calls of lstm_step_forward, and lstm_backward is the step backwards
    chained from t = T-1 down to 0, with the weight gradients summed over the steps."""
    rng = np.random.default_rng(seed)
    x, h0, c0, Wx, Wh, b = lstm_check(rng, N, T, D, H).args.values()
    hs, cache = lstm_forward(x, h0, c0, Wx, Wh, b)
    h, c, step_caches = h0, c0, []
    for t in range(T):
        h, c, step_cache = lstm_step_forward(x[:, t], h, c, Wx, Wh, b)
        np.testing.assert_allclose(hs[:, t], h, rtol=1e-12, atol=1e-14)
        step_caches.append(step_cache)

    dhs = rng.standard_normal(hs.shape)
    dx, dh0, dc0, dWx, dWh, db = lstm_backward(dhs, cache)
    dx_steps = np.zeros_like(x)
    dWx_sum, dWh_sum, db_sum = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)
    dh_next, dc_next = np.zeros_like(h0), None
    for t in reversed(range(T)):
        dx_steps[:, t], dh_next, dc_next, dWx_t, dWh_t, db_t = lstm_step_backward(
            dhs[:, t] + dh_next, dc_next, step_caches[t])
        dWx_sum, dWh_sum, db_sum = dWx_sum + dWx_t, dWh_sum + dWh_t, db_sum + db_t
    for got, expected in [(dx, dx_steps), (dh0, dh_next), (dc0, dc_next),
                          (dWx, dWx_sum), (dWh, dWh_sum), (db, db_sum)]:
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


# ---- float32 ---------------------------------------------------------------------------------

def forward_backward(check, dtype):
    """Outputs, then gradients, of `check` with its arguments cast to `dtype`."""
    args = [a.astype(dtype) for a in check.args.values()]
    *outputs, cache = check.forward(*args)
    rng = np.random.default_rng(123)
    douts = [rng.standard_normal(y.shape).astype(dtype) for y in outputs]
    return outputs + list(check.backward(*douts, cache))


@pytest.mark.parametrize("build", [lstm_pointwise_check, lstm_step_check, lstm_check])
def test_float32_agrees_with_float64(build):
    check = build(np.random.default_rng(0))
    for r64, r32 in zip(forward_backward(check, np.float64), forward_backward(check, np.float32)):
        assert r32.dtype == np.float32
        np.testing.assert_allclose(r32, r64, rtol=FLOAT32_RTOL, atol=FLOAT32_ATOL)


# ---- backward leaves its inputs alone --------------------------------------------------------

@pytest.mark.parametrize("build", [lstm_pointwise_check, lstm_step_check, lstm_check])
def test_backward_writes_into_neither_douts_nor_cache(build):
    rng = np.random.default_rng(0)
    check = build(rng)
    *outputs, cache = check.forward(*check.args.values())
    douts = [rng.standard_normal(y.shape) for y in outputs]
    before = [a.copy() for a in arrays_in((douts, cache))]
    check.backward(*douts, cache)
    after = arrays_in((douts, cache))
    assert len(after) == len(before)
    for a, b in zip(after, before):
        np.testing.assert_array_equal(a, b)


# ---- bad input -------------------------------------------------------------------------------

N, T, D, H = 3, 2, 5, 4


def step_args(**override):
    rng = np.random.default_rng(0)
    args = dict(x=rng.standard_normal((N, D)), h_prev=rng.standard_normal((N, H)),
                c_prev=rng.standard_normal((N, H)), Wx=rng.standard_normal((D, 4 * H)),
                Wh=rng.standard_normal((H, 4 * H)), b=rng.standard_normal(4 * H))
    args.update(override)
    return args


@pytest.mark.parametrize("override, message", [
    pytest.param(dict(x=np.zeros((N, 1, D))),
                 r"x must have 2 dims \[N, D\], got shape \(3, 1, 5\)", id="x rank"),
    pytest.param(dict(h_prev=np.zeros((N + 1, H))),
                 r"h_prev has shape \(4, 4\), but its N axis should be 3 \(N=3 from x\)", id="N"),
    pytest.param(dict(c_prev=np.zeros((N, H + 1))),
                 r"c_prev has shape \(3, 5\), but its H axis should be 4 \(H=4 from h_prev\)",
                 id="c_prev H"),
    pytest.param(dict(Wx=np.zeros((D + 1, 4 * H))),
                 r"Wx has shape \(6, 16\), but its D axis should be 5 \(D=5 from x\)", id="Wx D"),
    pytest.param(dict(Wx=np.zeros((D, 3 * H))),
                 r"Wx has shape \(5, 12\), but its 4H axis should be 16 \(H=4 from h_prev\)",
                 id="Wx 4H"),
    pytest.param(dict(Wh=np.zeros((4 * H, H))),
                 r"Wh has shape \(16, 4\), but its H axis should be 4 \(H=4 from h_prev\)",
                 id="Wh transposed"),
    pytest.param(dict(b=np.zeros(4 * H - 1)),
                 r"b has shape \(15,\), but its 4H axis should be 16", id="b length"),
    pytest.param(dict(b=np.zeros((1, 4 * H))),
                 r"b must have 1 dims \[4H\], got shape \(1, 16\)", id="b rank"),
    pytest.param(dict(Wh=np.zeros((H, 4 * H), dtype=np.float32)),
                 r"Wh is float32 but x is float64", id="mixed dtypes"),
    pytest.param(dict(x=np.zeros((N, D), dtype=np.int64)),
                 r"x must be float32 or float64, got dtype int64", id="int x"),
    pytest.param(dict(x=[[0.0] * D] * N), r"x must be an array, got list", id="list"),
])
def test_lstm_step_forward_rejects_bad_input(override, message):
    with pytest.raises(ValueError, match="lstm_step_forward: " + message):
        lstm_step_forward(**step_args(**override))


def test_lstm_forward_rejects_bad_input():
    args = step_args()
    x = np.zeros((N, T, D))
    with pytest.raises(ValueError, match=r"lstm_forward: x must have 3 dims \[N, T, D\], got shape \(3, 5\)"):
        lstm_forward(args["x"], args["h_prev"], args["c_prev"], args["Wx"], args["Wh"], args["b"])
    with pytest.raises(ValueError, match=r"lstm_forward: c0 has shape \(2, 4\), but its N axis should be 3"):
        lstm_forward(x, args["h_prev"], args["c_prev"][:2], args["Wx"], args["Wh"], args["b"])
    with pytest.raises(ValueError, match=r"lstm_forward: x has shape \(3, 0, 5\): .*T >= 1"):
        lstm_forward(x[:, :0], args["h_prev"], args["c_prev"], args["Wx"], args["Wh"], args["b"])


def test_lstm_pointwise_forward_rejects_bad_input():
    with pytest.raises(ValueError, match=r"a has shape \(3, 10\): its 4H axis \(10\) is not a multiple of 4"):
        lstm_pointwise_forward(np.zeros((3, 10)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"c_prev has shape \(3, 3\), but its H axis should be 2 \(H=2 from a\)"):
        lstm_pointwise_forward(np.zeros((3, 8)), np.zeros((3, 3)))


def test_backwards_reject_upstream_gradients_of_the_wrong_shape():
    rng = np.random.default_rng(0)
    args = step_args()
    _, _, step_cache = lstm_step_forward(**args)
    wrong = rng.standard_normal((N, H + 1))
    right = rng.standard_normal((N, H))
    shape_message = r"must have the forward output's shape \(3, 4\), got \(3, 5\)"
    with pytest.raises(ValueError, match="dh " + shape_message):
        lstm_step_backward(wrong, None, step_cache)
    with pytest.raises(ValueError, match="dc " + shape_message):
        lstm_step_backward(right, wrong, step_cache)
    _, _, pointwise_cache = lstm_pointwise_forward(rng.standard_normal((N, 4 * H)), right)
    with pytest.raises(ValueError, match=r"dh must have the forward output's shape \(3, 4\), got list"):
        lstm_pointwise_backward(right.tolist(), None, pointwise_cache)     # version 0's own cache

    hs, cache = lstm_forward(rng.standard_normal((N, T, D)), args["h_prev"], args["c_prev"],
                             args["Wx"], args["Wh"], args["b"])
    with pytest.raises(ValueError, match=r"lstm_backward: dh must have the forward output's shape "
                                         r"\(3, 2, 4\), got \(3, 4\)"):
        lstm_backward(hs[:, 0], cache)
