"""What each exercise is graded on: the test suite's gradient checks (rawcap.gradcheck's
builders, with its awkward sizes: N=1, T=1, L=1, odd sizes, stride 2, pad 1, masked tokens,
dc or dalpha None) and, for a forward, an independent by-hand oracle; each over SEEDS.

A case is run(rng) -> (failure lines, or [] if it passed).
"""
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .. import gradcheck as gc
from ..backend import ops
from ..explain import explain
from ..gradcheck import TOLERANCE, LayerCheck, gradient_error, gradient_pairs
from ..layers import conv

SEEDS = (0, 1, 2)


@dataclass
class Case:
    label: str
    run: Callable


def gradient_case(label, build, *sizes, **options):
    """Every gradient of build(rng, *sizes, **options) within TOLERANCE of central differences;
    a failure is explained (rawcap.explain)."""
    def run(rng):
        check = build(rng, *sizes, **options)
        pairs = gradient_pairs(check, rng)
        if all(gradient_error(analytic, numeric) < TOLERANCE for _, analytic, numeric in pairs):
            return []
        return explain(check.layer, pairs, check.options)
    return Case(label, run)


def without_second_output(build, layer):
    """The check of `build` with its second output (the LSTM's c, attention's alpha) dropped, so
    the backward gets None for its gradient, as when that output does not reach the loss."""
    def build_dropped(rng, *sizes):
        check = build(rng, *sizes)

        def forward(*args, **options):
            first, _, cache = check.forward(*args, **options)
            return first, cache

        def backward(dfirst, cache):
            return check.backward(dfirst, None, cache)
        return LayerCheck(layer, forward, backward, check.args, check.grads, check.options)
    return build_dropped


def im2col_check(rng, N, C, H, W, KH, KW, stride, pad):
    """col2im as the backward of im2col: it must be im2col's adjoint."""
    def forward(x, kernel, stride, pad):
        return conv.im2col(x, *kernel, stride, pad), x.shape

    def backward(dcols, shape):
        return conv.col2im(dcols, shape, KH, KW, stride, pad)
    return LayerCheck("im2col", forward, backward, dict(x=rng.standard_normal((N, C, H, W))), ("x",),
                      dict(kernel=(KH, KW), stride=stride, pad=pad))


def sigmoid(z):
    return 1 / (1 + math.exp(-z))


def lstm_pointwise_by_hand(a, c_prev):
    """The gates and the cell update, one example and one unit at a time."""
    N, H = c_prev.shape
    h, c = np.zeros((N, H)), np.zeros((N, H))
    for n in range(N):
        for j in range(H):
            i, f = sigmoid(a[n, j]), sigmoid(a[n, H + j])
            g, o = math.tanh(a[n, 2 * H + j]), sigmoid(a[n, 3 * H + j])
            c[n, j] = f * c_prev[n, j] + i * g
            h[n, j] = o * math.tanh(c[n, j])
    return h, c


def attention_by_hand(feats, proj, h, Wh, v):
    """Scores, softmax and context for each example, one location and one unit at a time."""
    N, L, D = feats.shape
    H, A = Wh.shape
    context, alpha = np.zeros((N, D)), np.zeros((N, L))
    for n in range(N):
        hW = [sum(h[n, k] * Wh[k, a] for k in range(H)) for a in range(A)]
        scores = [sum(v[a] * math.tanh(proj[n, l, a] + hW[a]) for a in range(A)) for l in range(L)]
        weights = [math.exp(s - max(scores)) for s in scores]
        for l in range(L):
            alpha[n, l] = weights[l] / sum(weights)
            context[n] += alpha[n, l] * feats[n, l]
    return context, alpha


def forward_case(label, build, sizes, forward, oracle, names):
    """forward(**args)'s first outputs equal oracle(**args) to 1e-12, args from build(rng, *sizes)."""
    def run(rng):
        args = build(rng, *sizes).args
        got, want = forward(**args)[:len(names)], oracle(**args)
        failures = []
        for name, g, w in zip(names, got, want):
            if np.shape(g) != w.shape:
                failures.append(f"{name} has shape {np.shape(g)}, the definition gives {w.shape}")
            elif not np.allclose(g, w, rtol=1e-12, atol=1e-13):
                entry = np.unravel_index(np.argmax(np.abs(g - w)), w.shape)
                failures.append(f"{name}[{', '.join(map(str, entry))}] is {g[entry]:.6g}, "
                                f"the definition gives {w[entry]:.6g}")
        return failures
    return Case(label, run)


def sized(template, sizes):
    return template.format(*sizes)


CASES = {
    "lstm_pointwise_forward": [
        forward_case(sized("N={} H={}", s), gc.lstm_pointwise_check, s,
                     lambda **a: ops.lstm_pointwise_forward(*a.values()), lstm_pointwise_by_hand,
                     ("h", "c")) for s in [(1, 1), (3, 2), (2, 5)]],
    "lstm_pointwise_backward": [
        gradient_case(sized("N={} H={}", s), gc.lstm_pointwise_check, *s) for s in [(1, 1), (3, 4), (2, 5)]
    ] + [gradient_case("N=3 H=4, dc=None",
                       without_second_output(gc.lstm_pointwise_check, "lstm_pointwise"), 3, 4)],
    "lstm_step_backward": [
        gradient_case(sized("N={} D={} H={}", s), gc.lstm_step_check, *s)
        for s in [(1, 1, 1), (1, 3, 2), (3, 5, 4), (2, 7, 1)]
    ] + [gradient_case("N=2 D=5 H=3, dc=None",
                       without_second_output(gc.lstm_step_check, "lstm_step"), 2, 5, 3)],
    "lstm_backward": [
        gradient_case(sized("N={} T={} D={} H={}", s), gc.lstm_check, *s)
        for s in [(1, 1, 1, 1), (1, 1, 3, 2), (2, 4, 5, 3), (3, 5, 1, 2)]],
    "attention_forward": [
        forward_case(sized("N={} L={} D={} H={} A={}", s), gc.attention_check, s,
                     lambda **a: ops.attention_forward(*a.values()), attention_by_hand,
                     ("context", "alpha")) for s in [(1, 1, 1, 1, 1), (2, 5, 4, 3, 6), (3, 1, 3, 2, 4)]],
    "attention_backward": [
        gradient_case(sized("N={} L={} D={} H={} A={}", s), gc.attention_check, *s)
        for s in [(1, 1, 1, 1, 1), (1, 3, 2, 1, 1), (2, 5, 4, 3, 6), (3, 1, 3, 2, 4), (2, 7, 1, 5, 3)]
    ] + [gradient_case("N=2 L=5 D=4 H=3 A=6, dalpha=None",
                       without_second_output(gc.attention_check, "attention"), 2, 5, 4, 3, 6)],
    "softmax_cross_entropy_backward": [
        gradient_case(sized("N={} T={} V={}", s) + f", logits x{scale:g}", gc.softmax_cross_entropy_check,
                      *s, scale=scale)
        for s in [(1, 1, 2), (3, 4, 7), (2, 5, 2), (4, 1, 3)] for scale in (1.0, 30.0)],
    "col2im": [
        gradient_case(sized("N={} C={} {}x{} kernel {}x{} stride {} pad {}", s), im2col_check, *s)
        for s in [(1, 1, 5, 5, 3, 3, 1, 1), (2, 3, 7, 6, 3, 2, 2, 1), (2, 2, 6, 9, 2, 4, 3, 0),
                  (1, 2, 4, 4, 2, 2, 2, 0)]],
    "conv2d_backward": [
        gradient_case(sized("N={} C={} {}x{} F={} K={} stride {} pad {}", s), gc.conv2d_check, *s)
        for s in [(1, 1, 5, 5, 1, 3, 1, 0), (2, 3, 7, 6, 4, 3, 2, 1), (1, 2, 6, 9, 3, 2, 2, 0),
                  (2, 2, 5, 4, 3, 3, 3, 1), (1, 3, 5, 8, 2, 1, 2, 0), (1, 2, 3, 3, 2, 3, 1, 1)]],
    "maxpool2d_backward": [
        gradient_case(sized("N={} C={} {}x{} window {} stride {}", s), gc.maxpool2d_check, *s)
        for s in [(1, 1, 4, 4, 2, 2), (2, 3, 7, 6, 2, 2), (1, 2, 5, 7, 3, 2), (2, 1, 6, 5, 3, 1),
                  (1, 2, 3, 4, 3, 3)]],
}
