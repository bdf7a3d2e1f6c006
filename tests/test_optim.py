"""Optimizers against PyTorch's update rules written out, clipping, the finiteness check, the
schedules, state round trips, and bad arguments."""
import itertools
import math
import re

import numpy as np
import pytest

from rawcap.optim import (SGD, Adam, NonFiniteError, check_and_clip, check_finite, clip_global_norm,
                          learning_rate, make_optimizer)

LRS = [0.1, 0.05, 0.02]      # a different rate each step, as a schedule gives


def problem(seed=0, dtype=np.float64):
    """Two small parameters and three steps of random gradients for them."""
    rng = np.random.default_rng(seed)
    params = {"w": rng.standard_normal((2, 3)).astype(dtype), "b": rng.standard_normal(3).astype(dtype)}
    grads = [{name: rng.standard_normal(p.shape).astype(dtype) for name, p in params.items()}
             for _ in LRS]
    return params, grads


def copy(arrays):
    return {name: a.copy() for name, a in arrays.items()}


def sgd_reference(p, grads, lrs, momentum, nesterov):
    """torch.optim.SGD's loop (dampening 0, no weight decay), written out for one tensor."""
    buf = None
    for g, lr in zip(grads, lrs):
        buf = g.copy() if buf is None else momentum * buf + g
        p = p - lr * (g + momentum * buf if nesterov else buf)
    return p


def adam_reference(p, grads, lrs, beta1, beta2, eps):
    """torch.optim.Adam's loop (amsgrad off, no weight decay), written out for one tensor."""
    m = v = np.zeros_like(p)
    for t, (g, lr) in enumerate(zip(grads, lrs), start=1):
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        step_size = lr / (1 - beta1 ** t)
        denom = np.sqrt(v) / math.sqrt(1 - beta2 ** t) + eps
        p = p - step_size * m / denom
    return p


# --- SGD ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("nesterov, expected", [
    # p = 1, g = 1 at every step, lr = 0.1, momentum = 0.9:
    # classical: v = 1, 1.9, 2.71;  p = 1 - 0.1 * (1 + 1.9 + 2.71)
    (False, [0.9, 0.71, 0.439]),
    # nesterov: g + 0.9 v = 1.9, 2.71, 3.439;  p = 1 - 0.1 * (1.9 + 2.71 + 3.439)
    (True, [0.81, 0.539, 0.1951]),
])
def test_sgd_by_hand(nesterov, expected):
    params = {"p": np.array([1.0])}
    optimizer = SGD(params, momentum=0.9, nesterov=nesterov)
    for want in expected:
        optimizer.step(params, {"p": np.array([1.0])}, lr=0.1)
        assert params["p"][0] == pytest.approx(want, rel=1e-14)


@pytest.mark.parametrize("momentum, nesterov", [(0.0, False), (0.9, False), (0.5, True), (0.9, True)])
def test_sgd_matches_pytorch_rule(momentum, nesterov):
    params, grads = problem()
    start = copy(params)
    optimizer = SGD(params, momentum=momentum, nesterov=nesterov)
    for g, lr in zip(grads, LRS):
        optimizer.step(params, g, lr)
    for name in params:
        want = sgd_reference(start[name], [g[name] for g in grads], LRS, momentum, nesterov)
        np.testing.assert_allclose(params[name], want, rtol=1e-14, atol=1e-15)


def test_sgd_updates_in_place_and_keeps_dtype():
    params, grads = problem(dtype=np.float32)
    arrays = dict(params)
    SGD(params).step(params, grads[0], lr=0.1)
    assert all(params[name] is arrays[name] and params[name].dtype == np.float32 for name in params)


# --- Adam --------------------------------------------------------------------------------------

def test_adam_first_step_moves_each_entry_by_lr():
    """m_hat = g and v_hat = g^2 at t = 1, so the update is lr * g / (|g| + eps): about lr * sign(g)."""
    params = {"p": np.array([1.0, 1.0, 1.0])}
    g = np.array([1e-3, -5.0, 2e4])
    Adam(params).step(params, {"p": g}, lr=0.01)
    np.testing.assert_allclose(params["p"], 1 - 0.01 * g / (np.abs(g) + 1e-8), rtol=1e-15)
    np.testing.assert_allclose(params["p"], [0.99, 1.01, 0.99], rtol=1e-6)


@pytest.mark.parametrize("betas, eps", [((0.9, 0.999), 1e-8), ((0.5, 0.9), 1e-3), ((0.0, 0.99), 1e-8)])
def test_adam_matches_pytorch_rule(betas, eps):
    params, grads = problem()
    start = copy(params)
    optimizer = Adam(params, betas=betas, eps=eps)
    for g, lr in zip(grads, LRS):
        optimizer.step(params, g, lr)
    assert optimizer.t == 3
    for name in params:
        want = adam_reference(start[name], [g[name] for g in grads], LRS, *betas, eps)
        np.testing.assert_allclose(params[name], want, rtol=1e-13, atol=1e-15)


def test_adam_converges_on_an_ill_conditioned_quadratic():
    """f(p) = sum(a * (p - c)^2) / 2 with curvatures 1 to 1000; grad = a * (p - c)."""
    a, c = np.array([1.0, 10.0, 100.0, 1000.0]), np.array([3.0, -1.0, 0.5, 2.0])
    params = {"p": np.zeros(4)}
    optimizer = Adam(params)
    steps = 1000
    for step in range(steps):
        optimizer.step(params, {"p": a * (params["p"] - c)}, learning_rate(step, 0.1, steps))
    np.testing.assert_allclose(params["p"], c, atol=1e-3)


# --- state round trips -------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name, options", [("sgd", {}), ("sgd", dict(nesterov=True)), ("adam", {})])
def test_state_round_trip_gives_identical_updates(name, options, dtype):
    rng = np.random.default_rng(1)
    params, _ = problem(dtype=dtype)
    grads = [{k: rng.standard_normal(p.shape).astype(dtype) for k, p in params.items()} for _ in range(5)]
    lrs = [0.1, 0.08, 0.06, 0.04, 0.02]

    straight = copy(params)
    optimizer = make_optimizer(name, straight, **options)
    for g, lr in zip(grads, lrs):
        optimizer.step(straight, g, lr)

    resumed = copy(params)
    optimizer = make_optimizer(name, resumed, **options)
    for g, lr in zip(grads[:2], lrs[:2]):
        optimizer.step(resumed, g, lr)
    state = optimizer.state_dict()
    optimizer = make_optimizer(name, resumed, **options)
    optimizer.load_state_dict(state)
    for g, lr in zip(grads[2:], lrs[2:]):
        optimizer.step(resumed, g, lr)

    for k in params:
        assert resumed[k].dtype == dtype
        np.testing.assert_array_equal(resumed[k], straight[k])


def test_state_dict_is_flat_numpy_and_a_copy():
    params, grads = problem()
    optimizer = Adam(params)
    optimizer.step(params, grads[0], lr=0.1)
    state = optimizer.state_dict()
    assert sorted(state) == ["m/b", "m/w", "t", "v/b", "v/w"]
    assert state["t"] == 1 and type(state["t"]) is int
    saved = state["m/w"].copy()
    optimizer.step(params, grads[1], lr=0.1)
    np.testing.assert_array_equal(state["m/w"], saved)
    assert sorted(SGD(params).state_dict()) == ["velocity/b", "velocity/w"]


@pytest.mark.parametrize("change, message", [
    (lambda s: s.pop("m/w"), "missing ['m/w'], unexpected []"),
    (lambda s: s.update(extra=1), "missing [], unexpected ['extra']"),
    (lambda s: s.update({"v/b": np.zeros(4)}), "'v/b' has shape (4,), expected (3,)"),
])
def test_load_state_dict_rejects_a_mismatched_state(change, message):
    params, _ = problem()
    state = Adam(params).state_dict()
    change(state)
    with pytest.raises(ValueError, match=f"^Adam.load_state_dict: {re.escape(message)}"):
        Adam(params).load_state_dict(state)


def test_load_state_dict_rejects_another_optimizers_state():
    params, _ = problem()
    with pytest.raises(ValueError, match=r"SGD.load_state_dict: missing \['velocity/b', 'velocity/w'\]"):
        SGD(params).load_state_dict(Adam(params).state_dict())


@pytest.mark.gpu
def test_state_moves_between_gpu_and_cpu():
    cupy = pytest.importorskip("cupy")
    params, grads = problem()
    gpu = {k: cupy.asarray(p) for k, p in params.items()}
    optimizer = Adam(gpu)
    optimizer.step(gpu, {k: cupy.asarray(g) for k, g in grads[0].items()}, lr=0.1)
    cpu = {k: p.get() for k, p in gpu.items()}
    on_cpu = Adam(cpu)
    on_cpu.load_state_dict(optimizer.state_dict())
    assert all(isinstance(m, np.ndarray) for m in on_cpu.m.values())
    back = Adam(gpu)
    back.load_state_dict(on_cpu.state_dict())
    assert all(isinstance(m, cupy.ndarray) for m in back.m.values())
    on_cpu.step(cpu, grads[1], lr=0.1)
    back.step(gpu, {k: cupy.asarray(g) for k, g in grads[1].items()}, lr=0.1)
    for k, p in cpu.items():
        np.testing.assert_allclose(gpu[k].get(), p, rtol=1e-12)


# --- clipping and the finiteness check ---------------------------------------------------------

def test_clip_leaves_small_gradients_alone():
    grads = {"a": np.array([3.0, 0.0]), "b": np.array([[4.0]])}
    before = copy(grads)
    assert clip_global_norm(grads, max_norm=5.0) == pytest.approx(5.0, rel=1e-15)
    assert all(np.array_equal(grads[k], before[k]) for k in grads)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clip_scales_large_gradients_to_max_norm(dtype):
    rng = np.random.default_rng(0)
    grads = {"a": rng.standard_normal((3, 4)).astype(dtype) * 10, "b": rng.standard_normal(5).astype(dtype)}
    before = copy(grads)
    norm = clip_global_norm(grads, max_norm=1.5)
    want = math.sqrt(sum(float((g.astype(np.float64) ** 2).sum()) for g in before.values()))
    assert norm == pytest.approx(want, rel=1e-6)
    after = math.sqrt(sum(float((g.astype(np.float64) ** 2).sum()) for g in grads.values()))
    assert after == pytest.approx(1.5, rel=1e-15 if dtype == np.float64 else 1e-6)
    for k, g in grads.items():       # one factor for every array: the direction is kept
        assert g.dtype == dtype
        np.testing.assert_allclose(g, before[k] * (1.5 / norm), rtol=1e-6)


@pytest.mark.parametrize("loss", [np.nan, np.inf, -np.inf, np.array(np.nan, dtype=np.float32)])
def test_check_finite_catches_the_loss(loss):
    with pytest.raises(NonFiniteError, match="the loss is"):
        check_finite(loss, {"a": np.zeros(2)})


def test_check_finite_names_the_first_bad_gradient():
    grads = {"a": np.zeros(3), "b": np.array([1.0, np.nan, np.inf, -np.inf]), "c": np.array([np.nan])}
    check_finite(1.5, {"a": grads["a"]})
    with pytest.raises(NonFiniteError, match=r"^the gradient of 'b' is not finite \(1 nan and 2 inf among 4"):
        check_finite(np.float32(1.5), grads)
    assert issubclass(NonFiniteError, FloatingPointError)


@pytest.mark.parametrize("max_norm", [0, 1.5, 1e3])
def test_check_and_clip_is_check_finite_then_clip_with_floats_back(max_norm):
    rng = np.random.default_rng(1)
    grads = {"a": rng.standard_normal((3, 4)).astype(np.float32) * 10,
             "b": rng.standard_normal(5).astype(np.float32)}
    expected = copy(grads)
    if max_norm:
        clip_global_norm(expected, max_norm)
    parts = {"ce": np.float32(2.5), "attention": np.array(0.25, np.float32), "reward": 0.75}
    got = check_and_clip(np.float32(3.5), parts, grads, max_norm)
    assert got == {"ce": 2.5, "attention": 0.25, "reward": 0.75}
    assert all(type(v) is float for v in got.values())
    for k in grads:                 # bit for bit what the two steps it replaces did
        assert np.array_equal(grads[k], expected[k]), k


def test_check_and_clip_names_what_is_not_finite():
    with pytest.raises(NonFiniteError, match="the loss is nan"):
        check_and_clip(np.float32(np.nan), {"ce": np.nan}, {"a": np.zeros(2)}, 5.0)
    grads = {"a": np.zeros(3), "b": np.array([1.0, np.nan, np.inf])}
    with pytest.raises(NonFiniteError, match=r"^the gradient of 'b' is not finite \(1 nan and 1 inf"):
        check_and_clip(1.0, {"ce": 1.0}, grads, 5.0)


def test_check_and_clip_lets_an_overflowing_sum_of_squares_through_as_clip_does():
    """Squares of finite float32 gradients can overflow: no culprit, so no error; clipping
    then scales by max_norm / inf = 0, as clip_global_norm alone does."""
    grads = {"a": np.array([3e30, 1.0], np.float32)}
    expected = copy(grads)
    clip_global_norm(expected, 5.0)
    check_and_clip(1.0, {"ce": 1.0}, grads, 5.0)
    assert np.array_equal(grads["a"], expected["a"])


# --- schedules ---------------------------------------------------------------------------------

def lrs(schedule, total=100, **options):
    return [learning_rate(step, 2.0, total, schedule, **options) for step in range(total + 1)]


def test_warmup_rises_linearly_to_base_lr():
    for schedule, options in [("constant", {}), ("cosine", {}), ("step", dict(decay_every=30))]:
        values = lrs(schedule, warmup_steps=10, **options)
        assert values[0] == pytest.approx(0.2) and values[4] == pytest.approx(1.0)
        assert values[9] == values[10] == 2.0          # the end of the warm-up is base_lr
        assert all(a < b for a, b in itertools.pairwise(values[:10]))


def test_constant():
    assert lrs("constant") == [2.0] * 101


def test_step():
    values = lrs("step", warmup_steps=10, decay_every=30, decay_factor=0.5)
    assert values[10] == values[39] == 2.0
    assert values[40] == values[69] == 1.0
    assert values[70] == values[99] == 0.5 and values[100] == 0.25
    assert all(a >= b for a, b in itertools.pairwise(values[10:]))


@pytest.mark.parametrize("warmup", [0, 10])
def test_cosine(warmup):
    values = lrs("cosine", warmup_steps=warmup, min_lr=0.5)
    middle = (warmup + 100) // 2
    assert values[warmup] == 2.0
    assert values[middle] == pytest.approx(1.25)              # halfway between base_lr and min_lr
    assert values[100] == 0.5 and learning_rate(150, 2.0, 100, min_lr=0.5) == 0.5
    assert all(a >= b for a, b in itertools.pairwise(values[warmup:]))


def test_warmup_longer_than_the_run():
    values = lrs("cosine", total=10, warmup_steps=20)
    assert values[:10] == pytest.approx([0.1 * (s + 1) for s in range(10)])
    assert learning_rate(20, 2.0, 10, warmup_steps=20) == 0.0


# --- bad arguments -----------------------------------------------------------------------------

@pytest.mark.parametrize("make, message", [
    (lambda p: SGD(p, momentum=1.0), "SGD: momentum must be in [0, 1), got 1.0"),
    (lambda p: SGD(p, momentum=-0.1), "SGD: momentum must be in [0, 1), got -0.1"),
    (lambda p: SGD(p, momentum=0.0, nesterov=True), "SGD: nesterov=True needs momentum > 0"),
    (lambda p: Adam(p, betas=(0.9, 1.0)), "Adam: betas must both be in [0, 1), got (0.9, 1.0)"),
    (lambda p: Adam(p, eps=0.0), "Adam: eps must be > 0, got 0.0"),
    (lambda p: Adam({"w": np.zeros(2, dtype=np.int64)}), "Adam: params['w'] must be a float array"),
    (lambda p: make_optimizer("rmsprop", p), "unknown optimizer 'rmsprop': use sgd or adam"),
])
def test_bad_optimizer_arguments(make, message):
    params, _ = problem()
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        make(params)


@pytest.mark.parametrize("grads, lr, message", [
    (dict(w=np.zeros((2, 3))), 0.1, "Adam.step: grads: missing ['b'], unexpected []"),
    (dict(w=np.zeros((2, 3)), b=np.zeros(3), c=np.zeros(1)), 0.1,
     "Adam.step: grads: missing [], unexpected ['c']"),
    (dict(w=np.zeros((2, 3)), b=np.zeros(1)), 0.1, "Adam.step: grads['b'] has shape (1,), expected (3,)"),
    (dict(w=np.zeros((2, 3)), b=np.zeros(3)), -0.1, "Adam.step: lr must be >= 0, got -0.1"),
])
def test_bad_step_arguments(grads, lr, message):
    params, _ = problem()
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        Adam(params).step(params, grads, lr)


@pytest.mark.parametrize("args, options, message", [
    ((0, 1.0, 100, "linear"), {}, "unknown schedule 'linear': use constant, step, cosine"),
    ((-1, 1.0, 100), {}, "learning_rate: step must be >= 0, got -1"),
    ((0, -1.0, 100), {}, "learning_rate: base_lr must be >= 0, got -1.0"),
    ((0, 1.0, 0), {}, "learning_rate: total_steps must be >= 1, got 0"),
    ((0, 1.0, 100), dict(warmup_steps=-5), "learning_rate: warmup_steps must be >= 0, got -5"),
    ((0, 1.0, 100, "step"), {}, "learning_rate: schedule 'step' needs decay_every >= 1, got None"),
    ((0, 1.0, 100, "step"), dict(decay_every=10, decay_factor=0),
     "learning_rate: decay_factor must be > 0, got 0"),
    ((0, 1.0, 100), dict(min_lr=2.0), "learning_rate: min_lr must be in [0, base_lr=1.0], got 2.0"),
])
def test_bad_schedule_arguments(args, options, message):
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        learning_rate(*args, **options)


def test_bad_clip_norm():
    with pytest.raises(ValueError, match="clip_global_norm: max_norm must be > 0, got 0"):
        clip_global_norm({"a": np.ones(2)}, 0)
