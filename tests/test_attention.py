"""Additive attention: gradients, an independent forward, properties, float32, bad input."""

import numpy as np
import pytest

from rawcap.exercises.cases import attention_by_hand     # the grader's oracle too
from rawcap.gradcheck import LayerCheck, attention_check
from rawcap.layers import attention_backward, attention_forward

from helpers import assert_gradients_match, arrays_in

SEEDS = [0, 1, 2]

# float32 keeps about 7 significant digits (eps = 1.2e-7); a softmax over a few locations and
# GEMMs of a few terms lose at most a few of them, so float32 agrees with float64 to this.
FLOAT32_RTOL, FLOAT32_ATOL = 1e-4, 1e-5


def context_only(check):
    """Attention with alpha dropped from its outputs, so its backward gets dalpha=None (as when
    alpha does not reach the loss). The numerical gradient then sees only the context."""
    def forward(*args):
        context, _, cache = check.forward(*args)
        return context, cache

    def backward(dcontext, cache):
        return check.backward(dcontext, None, cache)

    return LayerCheck("attention (dalpha=None)", forward, backward, check.args, check.grads)


SHAPES = [(1, 1, 1, 1, 1),     # (N, L, D, H, A)
          (1, 3, 2, 1, 1),
          (2, 5, 4, 3, 6),
          (3, 1, 3, 2, 4),
          (2, 7, 1, 5, 3)]


# ---- gradients -------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("N, L, D, H, A", SHAPES)
def test_attention_gradients(seed, N, L, D, H, A):
    rng = np.random.default_rng(seed)
    assert_gradients_match(attention_check(rng, N, L, D, H, A), rng)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("N, L, D, H, A", [(1, 1, 1, 1, 1), (2, 5, 4, 3, 6)])
def test_attention_gradients_with_dalpha_none(seed, N, L, D, H, A):
    rng = np.random.default_rng(seed)
    assert_gradients_match(context_only(attention_check(rng, N, L, D, H, A)), rng)


# ---- forward values and properties -----------------------------------------------------------

@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("N, L, D, H, A", SHAPES)
def test_attention_forward_matches_by_hand(seed, N, L, D, H, A):
    args = attention_check(np.random.default_rng(seed), N, L, D, H, A).args
    context, alpha, _ = attention_forward(**args)
    context_hand, alpha_hand = attention_by_hand(**args)
    np.testing.assert_allclose(alpha, alpha_hand, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(context, context_hand, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("v_scale", [1.0, 1e4])
def test_alpha_is_a_distribution_over_locations(v_scale):
    """alpha sums to 1 over L for every example, even with scores in the thousands (the softmax
    subtracts the largest score before exp, so nothing overflows)."""
    args = attention_check(np.random.default_rng(0), N=3, L=6).args
    args["v"] = v_scale * args["v"]
    _, alpha, _ = attention_forward(**args)
    assert np.all(np.isfinite(alpha)) and np.all(alpha >= 0)
    np.testing.assert_allclose(alpha.sum(axis=1), 1.0, rtol=1e-13)


def test_same_score_everywhere_gives_uniform_alpha_and_the_mean_feature():
    """If every location has the same projection, every score is the same: attention cannot
    prefer any location, alpha = 1/L and the context is the plain mean of the features."""
    rng = np.random.default_rng(0)
    args = attention_check(rng, N=2, L=5, D=4, H=3, A=6).args
    args["proj"] = np.repeat(rng.standard_normal((2, 1, 6)), 5, axis=1)
    context, alpha, _ = attention_forward(**args)
    np.testing.assert_allclose(alpha, 1 / 5, rtol=1e-13)
    np.testing.assert_allclose(context, args["feats"].mean(axis=1), rtol=1e-12, atol=1e-14)


def test_one_location_gets_all_the_attention():
    args = attention_check(np.random.default_rng(0), N=3, L=1).args
    context, alpha, _ = attention_forward(**args)
    np.testing.assert_array_equal(alpha, 1.0)
    np.testing.assert_allclose(context, args["feats"][:, 0], rtol=1e-15)


# ---- float32 ---------------------------------------------------------------------------------

def forward_backward(check, dtype):
    """Outputs, then gradients, of `check` with its arguments cast to `dtype`."""
    args = [a.astype(dtype) for a in check.args.values()]
    *outputs, cache = check.forward(*args)
    rng = np.random.default_rng(123)
    douts = [rng.standard_normal(y.shape).astype(dtype) for y in outputs]
    return outputs + list(check.backward(*douts, cache))


def test_float32_agrees_with_float64():
    check = attention_check(np.random.default_rng(0))
    for r64, r32 in zip(forward_backward(check, np.float64), forward_backward(check, np.float32)):
        assert r32.dtype == np.float32
        np.testing.assert_allclose(r32, r64, rtol=FLOAT32_RTOL, atol=FLOAT32_ATOL)


# ---- backward leaves its inputs alone --------------------------------------------------------

@pytest.mark.parametrize("with_dalpha", [True, False])
def test_backward_writes_into_neither_douts_nor_cache(with_dalpha):
    rng = np.random.default_rng(0)
    context, alpha, cache = attention_forward(**attention_check(rng).args)
    dcontext = rng.standard_normal(context.shape)
    dalpha = rng.standard_normal(alpha.shape) if with_dalpha else None
    before = [a.copy() for a in arrays_in((dcontext, dalpha, cache))]
    attention_backward(dcontext, dalpha, cache)
    after = arrays_in((dcontext, dalpha, cache))
    assert len(after) == len(before)
    for a, b in zip(after, before):
        np.testing.assert_array_equal(a, b)


# ---- bad input -------------------------------------------------------------------------------

N, L, D, H, A = 2, 5, 4, 3, 6


def attention_args(**override):
    args = dict(attention_check(np.random.default_rng(0), N, L, D, H, A).args)
    args.update(override)
    return args


@pytest.mark.parametrize("override, message", [
    pytest.param(dict(feats=np.zeros((N, L))),
                 r"feats must have 3 dims \[N, L, D\], got shape \(2, 5\)", id="feats rank"),
    pytest.param(dict(proj=np.zeros((N, L - 1, A))),
                 r"proj has shape \(2, 4, 6\), but its L axis should be 5 \(L=5 from feats\)",
                 id="proj L"),
    pytest.param(dict(proj=np.zeros((N, L, A + 1))),
                 r"Wh has shape \(3, 6\), but its A axis should be 7 \(A=7 from proj\)",
                 id="proj A"),
    pytest.param(dict(h=np.zeros((N + 1, H))),
                 r"h has shape \(3, 3\), but its N axis should be 2 \(N=2 from feats\)", id="N"),
    pytest.param(dict(Wh=np.zeros((H + 1, A))),
                 r"Wh has shape \(4, 6\), but its H axis should be 3 \(H=3 from h\)", id="Wh H"),
    pytest.param(dict(v=np.zeros(A - 1)),
                 r"v has shape \(5,\), but its A axis should be 6 \(A=6 from proj\)", id="v length"),
    pytest.param(dict(v=np.zeros((A, 1))),
                 r"v must have 1 dims \[A\], got shape \(6, 1\)", id="v rank"),
    pytest.param(dict(h=np.zeros((N, H), dtype=np.float32)),
                 r"h is float32 but feats is float64", id="mixed dtypes"),
    pytest.param(dict(feats=np.zeros((N, L, D)).tolist()),
                 r"feats must be an array, got list", id="list"),
])
def test_attention_forward_rejects_bad_input(override, message):
    with pytest.raises(ValueError, match="attention_forward: " + message):
        attention_forward(**attention_args(**override))


def test_attention_backward_rejects_upstream_gradients_of_the_wrong_shape():
    _, _, cache = attention_forward(**attention_args())
    with pytest.raises(ValueError, match=r"attention_backward: dcontext must have the forward "
                                         r"output's shape \(2, 4\), got \(2, 5\)"):
        attention_backward(np.zeros((N, L)), None, cache)
    with pytest.raises(ValueError, match=r"attention_backward: dalpha must have the forward "
                                         r"output's shape \(2, 5\), got \(2, 4\)"):
        attention_backward(np.zeros((N, D)), np.zeros((N, D)), cache)
