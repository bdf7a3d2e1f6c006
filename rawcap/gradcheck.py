"""Numerical gradients by central differences, and a check of every layer's every gradient.

    python -m rawcap.gradcheck                 # every layer, a table, exit status 1 on failure
    python -m rawcap.gradcheck --layer lstm --seed 3

For an output y = f(x) and a random upstream gradient dout, the backward pass claims
dx = d(sum(y * dout))/dx. Central differences estimate the same number entry by entry,

    dx[i] ~ sum((f(x + h e_i) - f(x - h e_i)) * dout) / (2h),

with an error of order h^2 (truncation) plus eps * |y| / h (rounding); with float64 and
h = 1e-5 both are far below the 1e-7 we ask of every layer.

The layers that have GPU kernels are called through `rawcap.backend.ops`, so pinning versions
checks the kernels' gradients too (on NumPy arrays, under Numba's CUDA simulator):

    NUMBA_ENABLE_CUDASIM=1 python -m rawcap.gradcheck --kernels all=1

A student's own layers (rawcap.student) are checked in place of the textbook's, and --explain
breaks a failing gradient down by gate block, time step or location (rawcap.explain):

    python -m rawcap.gradcheck --layers hw/ --layer lstm_step --explain
"""
import argparse
import sys
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from . import layers
from .backend import ops, set_kernels

TOLERANCE = 1e-7   # every gradient should pass this
LIMIT = 1e-6       # above this a gradient is wrong, and the command exits non-zero


def numerical_gradient(f, x, dout, h=1e-5):
    """Central-difference estimate of d(sum(f() * dout))/dx, the same shape as x.

    f takes no arguments and reads the array `x`, which this function perturbs in place, one
    entry at a time, restoring each entry before the next. f may return one array or a tuple
    of arrays; dout is then one array or a tuple of the same length.
    """
    def weighted_sum():
        outputs = f()
        if not isinstance(outputs, tuple):
            outputs, douts = (outputs,), (dout,)
        else:
            douts = dout
        return sum(np.sum(y * d) for y, d in zip(outputs, douts))

    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        saved = x[i]
        x[i] = saved + h
        plus = weighted_sum()
        x[i] = saved - h
        minus = weighted_sum()
        x[i] = saved
        grad[i] = (plus - minus) / (2 * h)
    return grad


def relative_error(a, b):
    """max |a - b| / max(|a|, |b|): the worst difference, relative to the gradient's own scale.

    Entrywise ratios |a_i - b_i| / (|a_i| + |b_i|) blow up wherever the true gradient is ~0 and
    both estimates are rounding noise; measuring against the largest entry does not.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(np.abs(a).max(initial=0.0), np.abs(b).max(initial=0.0))
    return 0.0 if scale == 0 else float(np.abs(a - b).max() / scale)


@dataclass
class LayerCheck:
    """One layer call to check: forward(*args, **options) -> (*outputs, cache), and
    backward(*douts, cache) -> the gradients of the arguments named in `grads`, in that order."""
    layer: str
    forward: Callable
    backward: Callable
    args: dict
    grads: tuple
    options: dict = field(default_factory=dict)


def gradient_errors(check, rng):
    """[(gradient name, shape, relative error)] for every gradient that `check`'s backward returns."""
    return [(name, numeric.shape, gradient_error(grad, numeric))
            for name, grad, numeric in gradient_pairs(check, rng)]


def gradient_error(grad, numeric):
    """relative_error, or infinity if the backward's gradient (maybe None) has the wrong shape."""
    return relative_error(grad, numeric) if np.shape(grad) == numeric.shape else float("inf")


def gradient_pairs(check, rng):
    """[(gradient name, analytic, numeric)] for every gradient that `check`'s backward returns
    (the analytic one as returned: it may have the wrong shape, or be None)."""
    args = list(check.args.values())
    *outputs, cache = check.forward(*args, **check.options)
    douts = tuple(rng.standard_normal(np.shape(y)) for y in outputs)
    analytic = check.backward(*douts, cache)
    if not isinstance(analytic, tuple):
        analytic = (analytic,)
    assert len(analytic) == len(check.grads), f"{check.layer}: backward returned {len(analytic)} grads"

    def outputs_only():
        return tuple(check.forward(*args, **check.options)[:-1])

    rows = []
    for name, grad in zip(check.grads, analytic):
        x = check.args[name]
        rows.append((f"d{name}", grad, numerical_gradient(outputs_only, x, douts)))
    return rows


# One builder per layer: random float64 inputs of the given sizes. Tests call them with
# awkward sizes and several seeds; the command line uses the defaults.

def conv2d_check(rng, N=2, C=3, H=7, W=6, F=4, K=3, stride=2, pad=1):
    args = dict(x=rng.standard_normal((N, C, H, W)), w=rng.standard_normal((F, C, K, K)),
                b=rng.standard_normal(F))
    return LayerCheck("conv2d", ops.conv2d_forward, ops.conv2d_backward, args,
                      ("x", "w", "b"), dict(stride=stride, pad=pad))


def maxpool2d_check(rng, N=2, C=3, H=7, W=6, size=2, stride=2):
    # A permutation keeps every entry at least 1/size from the others, far from any tie.
    x = rng.permutation(N * C * H * W).reshape(N, C, H, W) / (N * C * H * W)
    return LayerCheck("maxpool2d", ops.maxpool2d_forward, ops.maxpool2d_backward,
                      dict(x=x), ("x",), dict(size=size, stride=stride))


def batchnorm2d_check(rng, N=2, C=3, H=5, W=4, train=True):
    """Batch normalisation; the updated running statistics are state, not an output with a
    gradient, so the checked forward returns out and the cache only."""
    def forward(*args, **options):
        out, _, cache = ops.batchnorm2d_forward(*args, **options)
        return out, cache
    args = dict(x=2 * rng.standard_normal((N, C, H, W)) + 1, gamma=rng.standard_normal(C),
                beta=rng.standard_normal(C), running_mean=rng.standard_normal(C),
                running_var=rng.uniform(0.5, 2.0, C))
    return LayerCheck(f"batchnorm2d_{'train' if train else 'eval'}", forward,
                      ops.batchnorm2d_backward, args, ("x", "gamma", "beta"),
                      dict(train=train))


def batchnorm2d_train_check(rng, **sizes):
    return batchnorm2d_check(rng, train=True, **sizes)


def batchnorm2d_eval_check(rng, **sizes):
    return batchnorm2d_check(rng, train=False, **sizes)


def relu_check(rng, shape=(3, 5, 4)):
    # Keep away from the kink at 0, where the derivative is not defined.
    x = rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.1, 2.0, size=shape)
    return LayerCheck("relu", layers.relu_forward, layers.relu_backward, dict(x=x), ("x",))


def bias_relu_check(rng, shape=(2, 3, 4, 5)):
    # x + b kept away from the kink at 0.
    b = rng.standard_normal(shape[1])
    x = rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.1, 2.0, size=shape) - b[:, None, None]
    return LayerCheck("bias_relu", ops.bias_relu_forward, ops.bias_relu_backward, dict(x=x, b=b),
                      ("x", "b"))


def sigmoid_check(rng, shape=(3, 5)):
    return LayerCheck("sigmoid", layers.sigmoid_forward, layers.sigmoid_backward,
                      dict(x=2 * rng.standard_normal(shape)), ("x",))


def tanh_check(rng, shape=(3, 5)):
    return LayerCheck("tanh", layers.tanh_forward, layers.tanh_backward,
                      dict(x=2 * rng.standard_normal(shape)), ("x",))


def dropout_check(rng, shape=(4, 6), p=0.5, seed=7):
    # A fresh generator from the same seed on every call: the same mask for every evaluation.
    def forward(x):
        return layers.dropout_forward(x, p, np.random.default_rng(seed))
    return LayerCheck("dropout", forward, layers.dropout_backward,
                      dict(x=rng.standard_normal(shape)), ("x",))


def affine_check(rng, leading=(2, 3), D=5, M=4):
    args = dict(x=rng.standard_normal(leading + (D,)), w=rng.standard_normal((D, M)),
                b=rng.standard_normal(M))
    return LayerCheck("affine", layers.affine_forward, layers.affine_backward, args, ("x", "w", "b"))


def embedding_check(rng, N=3, T=4, V=5, D=6):
    # More tokens than words: ids repeat, and their gradients must add up.
    args = dict(ids=rng.integers(0, V, size=(N, T)), W=rng.standard_normal((V, D)))
    return LayerCheck("embedding", ops.embedding_forward, ops.embedding_backward, args, ("W",))


def rnn_step_check(rng, N=3, D=5, H=4):
    args = dict(x=rng.standard_normal((N, D)), h_prev=rng.standard_normal((N, H)),
                Wx=0.5 * rng.standard_normal((D, H)), Wh=0.5 * rng.standard_normal((H, H)),
                b=rng.standard_normal(H))
    return LayerCheck("rnn_step", layers.rnn_step_forward, layers.rnn_step_backward, args,
                      tuple(args))


def rnn_check(rng, N=2, T=4, D=5, H=3):
    args = dict(x=rng.standard_normal((N, T, D)), h0=rng.standard_normal((N, H)),
                Wx=0.5 * rng.standard_normal((D, H)), Wh=0.5 * rng.standard_normal((H, H)),
                b=rng.standard_normal(H))
    return LayerCheck("rnn", layers.rnn_forward, layers.rnn_backward, args, tuple(args))


def lstm_pointwise_check(rng, N=3, H=4):
    args = dict(a=rng.standard_normal((N, 4 * H)), c_prev=rng.standard_normal((N, H)))
    return LayerCheck("lstm_pointwise", ops.lstm_pointwise_forward,
                      ops.lstm_pointwise_backward, args, ("a", "c_prev"))


def lstm_step_check(rng, N=3, D=5, H=4):
    args = dict(x=rng.standard_normal((N, D)), h_prev=rng.standard_normal((N, H)),
                c_prev=rng.standard_normal((N, H)), Wx=0.5 * rng.standard_normal((D, 4 * H)),
                Wh=0.5 * rng.standard_normal((H, 4 * H)), b=rng.standard_normal(4 * H))
    return LayerCheck("lstm_step", layers.lstm_step_forward, layers.lstm_step_backward, args,
                      tuple(args))


def lstm_check(rng, N=2, T=4, D=5, H=3):
    args = dict(x=rng.standard_normal((N, T, D)), h0=rng.standard_normal((N, H)),
                c0=rng.standard_normal((N, H)), Wx=0.5 * rng.standard_normal((D, 4 * H)),
                Wh=0.5 * rng.standard_normal((H, 4 * H)), b=rng.standard_normal(4 * H))
    return LayerCheck("lstm", layers.lstm_forward, layers.lstm_backward, args, tuple(args))


def attention_check(rng, N=2, L=5, D=4, H=3, A=6):
    args = dict(feats=rng.standard_normal((N, L, D)), proj=rng.standard_normal((N, L, A)),
                h=rng.standard_normal((N, H)), Wh=0.5 * rng.standard_normal((H, A)),
                v=rng.standard_normal(A))
    return LayerCheck("attention", ops.attention_forward, ops.attention_backward, args,
                      tuple(args))


def softmax_cross_entropy_check(rng, N=3, T=4, V=7, scale=1.0):
    mask = rng.random((N, T)) < 0.7
    mask[0] = False                      # one sequence entirely masked
    mask[-1, 0] = True                   # and at least one token that counts
    args = dict(logits=scale * rng.standard_normal((N, T, V)),
                targets=rng.integers(0, V, size=(N, T)), mask=mask)
    return LayerCheck("softmax_cross_entropy", ops.softmax_cross_entropy_forward,
                      ops.softmax_cross_entropy_backward, args, ("logits",))


def policy_gradient_check(rng, N=4, T=3, V=6):
    """The SCST loss with fixed advantages (r - b): positive, negative and zero, as rewards give."""
    mask = np.ones((N, T), bool)
    mask[0, 2:] = False                  # a caption that ended early
    args = dict(logits=rng.standard_normal((N, T, V)), tokens=rng.integers(0, V, size=(N, T)),
                mask=mask, advantages=np.array([0.7, -1.3, 0.0, 2.1])[:N])
    return LayerCheck("policy_gradient", layers.policy_gradient_forward,
                      layers.policy_gradient_backward,
                      args, ("logits",))


def soft_cross_entropy_check(rng, N=4, V=6):
    """Soft targets: rows that are distributions, one of them one-hot, and one all zero."""
    q = rng.random((N, V))
    q /= q.sum(axis=1, keepdims=True)
    q[1] = np.eye(V)[V - 1]
    q[-1] = 0.0
    args = dict(logits=rng.standard_normal((N, V)), q=q)
    return LayerCheck("soft_cross_entropy", layers.soft_cross_entropy_forward,
                      layers.soft_cross_entropy_backward, args, ("logits",))


def label_smoothing_check(rng, N=3, T=4, V=7):
    """Label smoothing's margin, with a caption that ended early (masked steps get no gradient)."""
    mask = np.ones((N, T), bool)
    mask[0, 2:] = False
    args = dict(logits=rng.standard_normal((N, T, V)), targets=rng.integers(0, V, size=(N, T)),
                mask=mask)
    return LayerCheck("label_smoothing", layers.label_smoothing_forward,
                      layers.label_smoothing_backward, args, ("logits",))


def distillation_check(rng, N=3, T=4, V=7, k=3, weight=0.7):
    """The cross-entropy plus weight times a teacher's term, as the model runs them (the term is
    the cross-entropy plus the layer's margin), with a caption that ended early: the teacher's
    probabilities there (nonzero, as no teacher file has them) must count for nothing."""
    mask = np.ones((N, T), bool)
    mask[0, 2:] = False
    indices = np.array([[rng.choice(V, k, replace=False) for _ in range(T)] for _ in range(N)])
    args = dict(logits=rng.standard_normal((N, T, V)), targets=rng.integers(0, V, size=(N, T)),
                mask=mask, indices=indices, probs=rng.dirichlet(np.ones(k), (N, T)))

    def forward(logits, targets, mask, indices, probs):
        margin, cache = layers.distillation_forward(logits, targets, mask, indices, probs)
        ce, ce_cache = ops.softmax_cross_entropy_forward(logits, targets, mask)
        return ce + weight * (ce + margin), (ce_cache, cache)

    def backward(dout, caches):
        ce_cache, cache = caches
        dlogits = ops.softmax_cross_entropy_backward(1.0 + weight, ce_cache)
        return dout * layers.distillation_backward(weight, dlogits, cache)
    return LayerCheck("distillation", forward, backward, args, ("logits",))


CHECKS = {build.__name__.removesuffix("_check"): build for build in (
    conv2d_check, maxpool2d_check, batchnorm2d_train_check, batchnorm2d_eval_check, relu_check,
    bias_relu_check, sigmoid_check, tanh_check, dropout_check,
    affine_check, embedding_check, rnn_step_check, rnn_check,
    lstm_pointwise_check, lstm_step_check, lstm_check, attention_check, softmax_cross_entropy_check,
    policy_gradient_check, soft_cross_entropy_check, label_smoothing_check, distillation_check)}


def verdict(error):
    return "yes" if error < TOLERANCE else "loose" if error < LIMIT else "NO"


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m rawcap.gradcheck",
        description="Check every gradient of every layer against central differences, in float64 "
                    f"on random inputs. 'ok' is yes below {TOLERANCE:g}, loose below {LIMIT:g}, "
                    f"NO above; the exit status is 1 if any gradient is NO.")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    parser.add_argument("--layer", choices=sorted(CHECKS), action="append",
                        help="check only this layer (repeat for several); default: all")
    parser.add_argument("--kernels", metavar="PINS",
                        help="kernel versions to check, as RAWCAP_KERNELS takes them (e.g. all=1); "
                             "on the CPU this needs NUMBA_ENABLE_CUDASIM=1")
    parser.add_argument("--layers", metavar="FOLDER",
                        help="check a student's functions (python -m rawcap.exercises make) "
                             "in place of the layers'")
    parser.add_argument("--explain", action="store_true",
                        help="break each failing gradient down by gate block, time step or location")
    args = parser.parse_args(argv)
    if args.kernels is not None:
        try:
            set_kernels(args.kernels)
        except ValueError as e:
            parser.error(str(e))

    from .explain import explain
    from .student import StudentLayerError, use_layers
    rows, explained, layer = [], [], None
    try:
        with use_layers(args.layers, require_calls=False) if args.layers else nullcontext() as student:
            for layer in args.layer or CHECKS:
                rng = np.random.default_rng(args.seed)
                check = CHECKS[layer](rng)
                pairs = gradient_pairs(check, rng)
                rows += [(layer, name, n.shape, gradient_error(a, n)) for name, a, n in pairs]
                explained += explain(layer, pairs, check.options) if args.explain else []
            if student and not args.layer:
                student.check_called("python -m rawcap.gradcheck")
    except (StudentLayerError, NotImplementedError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except RuntimeError as e:       # a CUDA kernel pinned on NumPy arrays, no simulator
        print(f"error: --kernels {args.kernels}: {layer}: {e}", file=sys.stderr)
        return 2

    header = ("layer", "gradient", "shape", "max relative error", "ok")
    table = [header] + [(layer, name, str(shape), f"{error:.1e}", verdict(error))
                        for layer, name, shape, error in rows]
    widths = [max(len(row[k]) for row in table) for k in range(len(header))]
    for k, row in enumerate(table):
        print(" | ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
        if k == 0:
            print("-+-".join("-" * width for width in widths))

    if explained:
        print("\n" + "\n".join(explained))
    if student and student.never_called(list(student.functions)):
        print(f"\nnot checked by this run: {', '.join(student.never_called(list(student.functions)))}")
    worst = max(rows, key=lambda row: row[3])
    failed = [row for row in rows if row[3] >= LIMIT]
    loose = [row for row in rows if TOLERANCE <= row[3] < LIMIT]
    layers_checked = len({row[0] for row in rows})
    print(f"\n{len(rows)} gradients of {layers_checked} layers, float64, seed {args.seed}: "
          f"{len(failed)} failed, {len(loose)} loose; worst {worst[3]:.1e} ({worst[0]} {worst[1]}).")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
