"""Vanilla RNN: gradients, an independent forward, the sequence as T steps, the product of
Jacobians through time, float32, bad input."""
import math

import numpy as np
import pytest

from rawcap.gradcheck import rnn_check, rnn_step_check
from rawcap.layers import rnn_backward, rnn_forward, rnn_step_backward, rnn_step_forward

from helpers import arrays_in, assert_gradients_match

SEEDS = [0, 1, 2]

# float32 keeps about 7 significant digits (eps = 1.2e-7); these small GEMMs over a few steps
# lose at most a few of them.
FLOAT32_RTOL, FLOAT32_ATOL = 1e-4, 1e-5


def rnn_step_by_hand(x, h_prev, Wx, Wh, b):
    """One step, one multiply-add at a time: h[n, j] = tanh(sum_d x[n,d] Wx[d,j] + sum_k h_prev[n,k] Wh[k,j] + b[j])."""
    N, D = x.shape
    H = h_prev.shape[1]
    h = np.zeros((N, H))
    for n, j in np.ndindex(N, H):
        a = b[j] + sum(x[n, d] * Wx[d, j] for d in range(D)) + sum(h_prev[n, k] * Wh[k, j] for k in range(H))
        h[n, j] = math.tanh(a)
    return h


# ---- gradients -------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("N, D, H", [(1, 1, 1), (1, 3, 2), (3, 5, 4), (2, 7, 1)])
def test_rnn_step_gradients(seed, N, D, H):
    rng = np.random.default_rng(seed)
    assert_gradients_match(rnn_step_check(rng, N, D, H), rng)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("N, T, D, H", [(1, 1, 1, 1), (1, 1, 3, 2), (2, 4, 5, 3), (3, 6, 1, 2)])
def test_rnn_sequence_gradients(seed, N, T, D, H):
    rng = np.random.default_rng(seed)
    assert_gradients_match(rnn_check(rng, N, T, D, H), rng)


# ---- forward values --------------------------------------------------------------------------

@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("N, D, H", [(1, 1, 1), (3, 5, 4)])
def test_rnn_step_forward_matches_by_hand(seed, N, D, H):
    args = rnn_step_check(np.random.default_rng(seed), N, D, H).args
    h, _ = rnn_step_forward(**args)
    np.testing.assert_allclose(h, rnn_step_by_hand(**args), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("N, T, D, H", [(1, 1, 2, 3), (3, 5, 4, 2)])
def test_rnn_forward_and_backward_are_t_steps(seed, N, T, D, H):
    """rnn_forward is T calls of rnn_step_forward, and rnn_backward is the step backwards
    chained from t = T-1 down to 0, with the weight gradients summed over the steps."""
    rng = np.random.default_rng(seed)
    x, h0, Wx, Wh, b = rnn_check(rng, N, T, D, H).args.values()
    hs, cache = rnn_forward(x, h0, Wx, Wh, b)
    h, step_caches = h0, []
    for t in range(T):
        h, step_cache = rnn_step_forward(x[:, t], h, Wx, Wh, b)
        np.testing.assert_allclose(hs[:, t], h, rtol=1e-12, atol=1e-14)
        step_caches.append(step_cache)

    dhs = rng.standard_normal(hs.shape)
    dx, dh0, dWx, dWh, db = rnn_backward(dhs, cache)
    dx_steps = np.zeros_like(x)
    sums = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
    dh_next = np.zeros_like(h0)
    for t in reversed(range(T)):
        dx_steps[:, t], dh_next, *dparams = rnn_step_backward(dhs[:, t] + dh_next, step_caches[t])
        sums = [s + d for s, d in zip(sums, dparams)]
    for got, expected in [(dx, dx_steps), (dh0, dh_next), (dWx, sums[0]), (dWh, sums[1]), (db, sums[2])]:
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


def test_gradient_through_time_is_a_product_of_jacobians():
    """With a gradient on the last hidden state only, dh0 = dh_T-1 @ J_T-1 @ ... @ J_0 with
    J_t = diag(1 - h_t^2) @ Wh.T (as a row-vector map): the product docs/backprop.md derives,
    which shrinks geometrically when the largest singular value of Wh is below 1."""
    rng = np.random.default_rng(0)
    N, T, D, H = 2, 8, 3, 4
    x, h0 = rng.standard_normal((N, T, D)), rng.standard_normal((N, H))
    Wx, b = rng.standard_normal((D, H)), rng.standard_normal(H)
    Wh = rng.standard_normal((H, H))
    Wh *= 0.5 / np.linalg.norm(Wh, 2)                 # largest singular value 0.5
    hs, cache = rnn_forward(x, h0, Wx, Wh, b)
    dhs = np.zeros_like(hs)
    dhs[:, -1] = rng.standard_normal((N, H))
    _, dh0, *_ = rnn_backward(dhs, cache)
    for n in range(N):
        g = dhs[n, -1]
        for t in reversed(range(T)):
            g = (g * (1 - hs[n, t] ** 2)) @ Wh.T
        np.testing.assert_allclose(dh0[n], g, rtol=1e-12, atol=1e-15)
        # each factor has norm at most 0.5 (|1 - h^2| <= 1), so T steps shrink it by 0.5^T
        assert np.linalg.norm(dh0[n]) <= 0.5 ** T * np.linalg.norm(dhs[n, -1])


# ---- float32 ---------------------------------------------------------------------------------

def forward_backward(check, dtype):
    args = [a.astype(dtype) for a in check.args.values()]
    *outputs, cache = check.forward(*args)
    rng = np.random.default_rng(123)
    douts = [rng.standard_normal(y.shape).astype(dtype) for y in outputs]
    return outputs + list(check.backward(*douts, cache))


@pytest.mark.parametrize("build", [rnn_step_check, rnn_check])
def test_float32_agrees_with_float64(build):
    check = build(np.random.default_rng(0))
    for r64, r32 in zip(forward_backward(check, np.float64), forward_backward(check, np.float32)):
        assert r32.dtype == np.float32
        np.testing.assert_allclose(r32, r64, rtol=FLOAT32_RTOL, atol=FLOAT32_ATOL)


@pytest.mark.parametrize("build", [rnn_step_check, rnn_check])
def test_backward_writes_into_neither_dout_nor_cache(build):
    rng = np.random.default_rng(0)
    check = build(rng)
    out, cache = check.forward(*check.args.values())
    dout = rng.standard_normal(out.shape)
    before = [a.copy() for a in arrays_in((dout, cache))]
    check.backward(dout, cache)
    for a, b in zip(arrays_in((dout, cache)), before):
        np.testing.assert_array_equal(a, b)


# ---- bad input -------------------------------------------------------------------------------

N, T, D, H = 3, 2, 5, 4


def step_args(**override):
    rng = np.random.default_rng(0)
    args = dict(x=rng.standard_normal((N, D)), h_prev=rng.standard_normal((N, H)),
                Wx=rng.standard_normal((D, H)), Wh=rng.standard_normal((H, H)),
                b=rng.standard_normal(H))
    args.update(override)
    return args


@pytest.mark.parametrize("override, message", [
    pytest.param(dict(x=np.zeros((N, 1, D))),
                 r"x must have 2 dims \[N, D\], got shape \(3, 1, 5\)", id="x rank"),
    pytest.param(dict(h_prev=np.zeros((N + 1, H))),
                 r"h_prev has shape \(4, 4\), but its N axis should be 3 \(N=3 from x\)", id="N"),
    pytest.param(dict(Wx=np.zeros((D, 4 * H))),
                 r"Wx has shape \(5, 16\), but its H axis should be 4 \(H=4 from h_prev\)",
                 id="LSTM-sized Wx"),
    pytest.param(dict(Wh=np.zeros((H, H + 1))),
                 r"Wh has shape \(4, 5\), but its H axis should be 4 \(H=4 from h_prev\)",
                 id="Wh not square"),
    pytest.param(dict(b=np.zeros(H + 1)),
                 r"b has shape \(5,\), but its H axis should be 4", id="b length"),
    pytest.param(dict(Wh=np.zeros((H, H), dtype=np.float32)),
                 r"Wh is float32 but x is float64", id="mixed dtypes"),
    pytest.param(dict(x=np.zeros((N, D), dtype=np.int64)),
                 r"x must be float32 or float64, got dtype int64", id="int x"),
])
def test_rnn_step_forward_rejects_bad_input(override, message):
    with pytest.raises(ValueError, match="rnn_step_forward: " + message):
        rnn_step_forward(**step_args(**override))


def test_rnn_forward_rejects_bad_input():
    a = step_args()
    x = np.zeros((N, T, D))
    with pytest.raises(ValueError, match=r"rnn_forward: x must have 3 dims \[N, T, D\], got shape \(3, 5\)"):
        rnn_forward(a["x"], a["h_prev"], a["Wx"], a["Wh"], a["b"])
    with pytest.raises(ValueError, match=r"rnn_forward: h0 has shape \(2, 4\), but its N axis should be 3"):
        rnn_forward(x, a["h_prev"][:2], a["Wx"], a["Wh"], a["b"])
    with pytest.raises(ValueError, match=r"rnn_forward: x has shape \(3, 0, 5\): .*T >= 1"):
        rnn_forward(x[:, :0], a["h_prev"], a["Wx"], a["Wh"], a["b"])


def test_backwards_reject_upstream_gradients_of_the_wrong_shape():
    a = step_args()
    _, step_cache = rnn_step_forward(**a)
    with pytest.raises(ValueError, match=r"rnn_step_backward: dh must have the forward output's "
                                         r"shape \(3, 4\), got \(3, 5\)"):
        rnn_step_backward(np.zeros((N, H + 1)), step_cache)
    hs, cache = rnn_forward(np.zeros((N, T, D)), a["h_prev"], a["Wx"], a["Wh"], a["b"])
    with pytest.raises(ValueError, match=r"rnn_backward: dh must have the forward output's "
                                         r"shape \(3, 2, 4\), got \(3, 4\)"):
        rnn_backward(hs[:, 0], cache)
