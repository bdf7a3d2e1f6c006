"""The CPU versions (kernels/cpu/) against version 0, the layer, on NumPy arrays: the same
outputs on awkward shapes (float64 to 1e-12, float32 to 1e-5 of each output's largest entry, as
kernel_helpers.TOLERANCE states), and float64 gradient checks of each version pinned."""
import ast
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from kernel_helpers import assert_same_outputs, run_version

from rawcap import gradcheck
from rawcap.backend import kernels_pinned, versions

DTYPES = [np.float64, np.float32]


def cpu_versions(op):
    return versions(op, "cpu")[1:]


def as_dtype(args, dtype):
    return {k: a.astype(dtype) if a.dtype.kind == "f" else a for k, a in args.items()}


def assert_gradients(op, version, build, seed, **sizes):
    rng = np.random.default_rng(seed)
    with kernels_pinned(f"{op}={version}"):
        errors = gradcheck.gradient_errors(build(rng, **sizes), rng)
    for name, _, error in errors:
        assert error < 1e-7, f"{op} v{version} {name}: relative error {error:.1e}"


def assert_pair_matches(forward, backward, version, args, douts, dtype, what, **options):
    """Forward outputs, then the backward of each version's own cache, against version 0."""
    *want, want_cache = run_version(forward, 0, **args, **options)
    *got, got_cache = run_version(forward, version, **args, **options)
    assert_same_outputs(got, want, dtype, f"{forward} v{version} {what}")
    assert_same_outputs(run_version(backward, version, *douts, got_cache),
                        run_version(backward, 0, *douts, want_cache), dtype,
                        f"{backward} v{version} {what}")


@pytest.mark.parametrize("version", cpu_versions("conv2d"))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N, C, H, W, F, K, stride, pad, bias", [
    (1, 1, 1, 1, 1, 1, 1, 0, True),             # one pixel, 1x1 kernel
    (2, 3, 5, 4, 3, 3, 1, 1, False),            # the model's conv: 3x3, pad 1, no bias
    (2, 3, 6, 5, 2, 3, 2, 1, True),             # stride 2: the last row of the padding unused
    (1, 2, 3, 33, 2, 2, 2, 0, False),           # 33 wide: the last column unused
    (1, 1, 4, 4, 2, 3, 1, 3, True),             # padding wider than the kernel reaches
])
def test_conv2d(version, dtype, N, C, H, W, F, K, stride, pad, bias):
    rng = np.random.default_rng(N + C + H + W)
    args = dict(x=rng.standard_normal((N, C, H, W)).astype(dtype),
                w=rng.standard_normal((F, C, K, K)).astype(dtype),
                b=rng.standard_normal(F).astype(dtype) if bias else None)
    Ho, Wo = (H + 2 * pad - K) // stride + 1, (W + 2 * pad - K) // stride + 1
    dout = rng.standard_normal((N, F, Ho, Wo)).astype(dtype)
    assert_pair_matches("conv2d_forward", "conv2d_backward", version, args, [dout], dtype,
                        f"{(N, C, H, W, F, K, stride, pad)}", stride=stride, pad=pad)
    _, want_dw, want_db = run_version("conv2d_backward", 0, dout,
                                      run_version("conv2d_forward", 0, **args, stride=stride, pad=pad)[1])
    cache = run_version("conv2d_forward", version, **args, stride=stride, pad=pad)[1]
    assert_same_outputs(run_version("conv2d_params_backward", version, dout, cache),
                        [want_dw, want_db], dtype, f"conv2d_params_backward v{version}")


@pytest.mark.parametrize("version", cpu_versions("conv2d"))
@pytest.mark.parametrize("stride, pad", [(1, 1), (2, 1), (1, 0)])
def test_conv2d_gradients(version, stride, pad):
    assert_gradients("conv2d", version, gradcheck.conv2d_check, 4, N=2, C=2, H=5, W=4, F=3,
                     stride=stride, pad=pad)


@pytest.mark.parametrize("version", cpu_versions("maxpool2d"))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, size, stride", [
    ((1, 1, 2, 2), 2, 2), ((2, 3, 7, 5), 2, 2), ((2, 2, 7, 6), 3, 2), ((1, 2, 5, 5), 2, 1)])
def test_maxpool2d(version, dtype, shape, size, stride):
    rng = np.random.default_rng(sum(shape))
    x = rng.standard_normal(shape).astype(dtype)
    x[0, 0, :2, :2] = 1.0                       # a tie: the first offset wins, as in version 0
    Ho, Wo = (shape[2] - size) // stride + 1, (shape[3] - size) // stride + 1
    dout = rng.standard_normal(shape[:2] + (Ho, Wo)).astype(dtype)
    assert_pair_matches("maxpool2d_forward", "maxpool2d_backward", version, dict(x=x), [dout],
                        dtype, f"{shape} size {size} stride {stride}", size=size, stride=stride)


@pytest.mark.parametrize("version", cpu_versions("maxpool2d"))
@pytest.mark.parametrize("size, stride", [(2, 2), (3, 1)])
def test_maxpool2d_gradients(version, size, stride):
    assert_gradients("maxpool2d", version, gradcheck.maxpool2d_check, 5, N=2, C=2, H=5, W=6,
                     size=size, stride=stride)


@pytest.mark.parametrize("version", cpu_versions("batchnorm2d"))
@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N, C, H, W", [(1, 1, 3, 1), (2, 3, 5, 1), (3, 17, 4, 5)])  # M >= 3: at
# M = 2, xhat = +-1 and dx is exactly 0 in train mode, so both versions give rounding noise
def test_batchnorm2d(version, train, dtype, N, C, H, W):
    rng = np.random.default_rng(N + C + H + W)
    args = dict(x=3 * rng.standard_normal((N, C, H, W)) + 2, gamma=rng.standard_normal(C),
                beta=rng.standard_normal(C), running_mean=rng.standard_normal(C),
                running_var=rng.uniform(0.5, 2, C))
    args = as_dtype(args, dtype)
    want, want_stats, want_cache = run_version("batchnorm2d_forward", 0, **args, train=train)
    got, got_stats, got_cache = run_version("batchnorm2d_forward", version, **args, train=train)
    assert_same_outputs((got, *got_stats), (want, *want_stats), dtype, f"batchnorm2d v{version}")
    assert all(a.dtype == dtype for a in (got, *got_stats))
    dout = rng.standard_normal((N, C, H, W)).astype(dtype)
    got_grads = run_version("batchnorm2d_backward", version, dout, got_cache)
    assert_same_outputs(got_grads, run_version("batchnorm2d_backward", 0, dout, want_cache),
                        dtype, f"batchnorm2d_backward v{version}")
    assert all(a.dtype == dtype for a in got_grads)


@pytest.mark.parametrize("version", cpu_versions("batchnorm2d"))
@pytest.mark.parametrize("train", [True, False])
def test_batchnorm2d_gradients(version, train):
    assert_gradients("batchnorm2d", version, gradcheck.batchnorm2d_check, 5, train=train,
                     N=2, C=2, H=3, W=2)


@pytest.mark.parametrize("version", cpu_versions("bias_relu"))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (2, 3, 5, 7), (3, 17, 1, 2)])
def test_bias_relu(version, dtype, shape):
    rng = np.random.default_rng(sum(shape))
    args = dict(x=rng.standard_normal(shape).astype(dtype),
                b=rng.standard_normal(shape[1]).astype(dtype))
    dout = rng.standard_normal(shape).astype(dtype)
    assert_pair_matches("bias_relu_forward", "bias_relu_backward", version, args, [dout], dtype,
                        f"{shape}")


@pytest.mark.parametrize("version", cpu_versions("bias_relu"))
def test_bias_relu_gradients(version):
    assert_gradients("bias_relu", version, gradcheck.bias_relu_check, 6, shape=(2, 3, 2, 3))


@pytest.mark.parametrize("version", cpu_versions("attention"))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N, L, D, H, A", [(1, 1, 1, 1, 1), (2, 33, 4, 3, 5), (3, 3, 130, 2, 33)])
@pytest.mark.parametrize("with_dalpha", [True, False])
def test_attention(version, dtype, N, L, D, H, A, with_dalpha):
    rng = np.random.default_rng(N + L + D)
    args = as_dtype(gradcheck.attention_check(rng, N, L, D, H, A).args, dtype)
    dcontext = rng.standard_normal((N, D + 1)).astype(dtype)[:, 1:]     # strided, as the model's
    dalpha = rng.standard_normal((N, L)).astype(dtype) if with_dalpha else None
    assert_pair_matches("attention_forward", "attention_backward", version, args,
                        [dcontext, dalpha], dtype, f"{(N, L, D, H, A)}")


@pytest.mark.parametrize("version", cpu_versions("attention"))
def test_attention_gradients(version):
    assert_gradients("attention", version, gradcheck.attention_check, 2, N=3, L=4, D=3, H=2, A=5)


@pytest.mark.parametrize("name, bound", [("tanh_float32", 3e-7), ("exp_float32", 1.2e-7),
                                         ("sigmoid", 2e-7)])
def test_float32_functions_on_a_dense_grid(name, bound):
    """kernels/cpu/fastmath.py's float32 functions against float64 NumPy: tanh and sigmoid
    within `bound` (absolute), exp within `bound` relative (2 ulp) over float32's normal range."""
    from numba import njit

    from kernels.cpu import fastmath
    function = getattr(fastmath, name)

    @njit
    def apply(x, out):
        for k in range(x.size):
            out[k] = function(x[k])

    span = (-87.3, 88.3) if name == "exp_float32" else (-20, 20)
    x = np.concatenate([np.linspace(*span, 400_001), np.linspace(-1e-3, 1e-3, 1001)])
    x = x.astype(np.float32)
    out = np.empty_like(x)
    apply(x, out)
    x = x.astype(np.float64)
    want = {"tanh_float32": np.tanh(x), "exp_float32": np.exp(x),
            "sigmoid": 1 / (1 + np.exp(-x))}[name]
    error = np.abs(out - want) / (want if name == "exp_float32" else 1)
    assert error.max() < bound


def test_float32_functions_compute_in_float32():
    """A float64 constant or an integer from math.floor would turn the arithmetic into float64
    (half the SIMD width); the njit functions must map float32 to float32."""
    from numba import types

    from kernels.cpu.fastmath import exp_float32, tanh_float32
    for function in (exp_float32, tanh_float32):
        function(np.float32(0.5))
        assert [sig.return_type for sig in function.nopython_signatures] == [types.float32]


@pytest.mark.parametrize("version", cpu_versions("lstm_pointwise"))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N, H, scale", [(1, 1, 1.0), (2, 33, 3.0), (5, 3, 3.0), (3, 130, 20.0)])
@pytest.mark.parametrize("with_dc", [True, False])
def test_lstm_pointwise(version, dtype, N, H, scale, with_dc):
    """scale 20: most gates saturate (sigmoid and tanh at 0 or 1 to float32 precision)."""
    rng = np.random.default_rng(N * 100 + H)
    a = (scale * rng.standard_normal((N, 4 * H + 1))).astype(dtype)[:, 1:]      # strided
    c_prev, dh, dc = (rng.standard_normal((N, H)).astype(dtype) for _ in range(3))
    assert_pair_matches("lstm_pointwise_forward", "lstm_pointwise_backward", version,
                        dict(a=a, c_prev=c_prev), [dh, dc if with_dc else None], dtype,
                        f"N={N} H={H} scale={scale}")


@pytest.mark.parametrize("version", cpu_versions("lstm_pointwise"))
@pytest.mark.parametrize("check, sizes", [(gradcheck.lstm_pointwise_check, dict(N=3, H=5)),
                                          (gradcheck.lstm_check, dict(N=2, T=3, D=4, H=3))])
def test_lstm_pointwise_gradients(version, check, sizes):
    """The pointwise part alone, and a whole sequence through it (dc None at the last step)."""
    assert_gradients("lstm_pointwise", version, check, 7, **sizes)


@pytest.mark.parametrize("version", cpu_versions("embedding"))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ids_shape, V, D", [
    ((1, 1), 1, 1), ((3, 11), 5, 33), ((2, 4), 40, 3),
    ((7,), 3, 130),                             # the model's caption -> image gather: 1-D ids
])
@pytest.mark.parametrize("ids_dtype", [np.int64, np.int32])
def test_embedding(version, dtype, ids_shape, V, D, ids_dtype):
    """Tokens added in the same order as np.add.at: the same bits as version 0, not just close."""
    rng = np.random.default_rng(V + D)
    ids = rng.integers(0, V, size=ids_shape).astype(ids_dtype)
    W = rng.standard_normal((V, D)).astype(dtype)
    dout = rng.standard_normal(ids_shape + (D,)).astype(dtype)
    out, cache = run_version("embedding_forward", version, ids, W)
    np.testing.assert_array_equal(out, W[ids])
    dW = run_version("embedding_backward", version, dout, cache)
    want = run_version("embedding_backward", 0, dout, cache)
    assert dW.dtype == want.dtype
    np.testing.assert_array_equal(dW, want)


@pytest.mark.parametrize("version", cpu_versions("embedding"))
def test_embedding_rows_of_one_word_add_up(version):
    """Every token is word 2; words 0 and 1 get zeros, and dout is strided."""
    dout = np.random.default_rng(0).standard_normal((4, 9, 6))[:, :, ::2]
    _, cache = run_version("embedding_forward", 0, np.full((4, 9), 2), np.zeros((3, 3)))
    dW = run_version("embedding_backward", version, dout, cache)
    assert not dW[:2].any()
    np.testing.assert_allclose(dW[2], dout.sum(axis=(0, 1)), rtol=1e-12)


@pytest.mark.parametrize("version", cpu_versions("embedding"))
def test_embedding_gradients(version):
    assert_gradients("embedding", version, gradcheck.embedding_check, 8, N=3, T=5, V=4, D=3)


@pytest.mark.parametrize("version", cpu_versions("embedding"))
def test_embedding_bad_dout_shape_is_named(version):
    _, cache = run_version("embedding_forward", 0, np.zeros((2, 3), int), np.zeros((4, 5)))
    with pytest.raises(ValueError, match="dout"):
        run_version("embedding_backward", version, np.zeros((2, 3, 4)), cache)


@pytest.mark.parametrize("version", cpu_versions("softmax_ce"))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N, T, V, scale", [(1, 1, 1, 1.0), (3, 4, 7, 1.0), (2, 3, 130, 1e4)])
@pytest.mark.parametrize("overwrite", [False, True])
def test_softmax_ce(version, dtype, N, T, V, scale, overwrite):
    rng = np.random.default_rng(N + T + V)
    args = as_dtype(gradcheck.softmax_cross_entropy_check(rng, N, T, V, scale).args, dtype)
    logits = args.pop("logits")
    want, want_cache = run_version("softmax_cross_entropy_forward", 0, logits.copy(), **args)
    got, got_cache = run_version("softmax_cross_entropy_forward", version, logits.copy(), **args,
                                 overwrite_logits=overwrite)
    assert_same_outputs([got], [want], dtype, f"softmax_ce v{version} loss")
    for dloss in (1.0, 0.5):
        assert_same_outputs([run_version("softmax_cross_entropy_backward", version, dloss, got_cache)],
                            [run_version("softmax_cross_entropy_backward", 0, dloss, want_cache)],
                            dtype, f"softmax_ce v{version} dlogits, dloss {dloss}")


@pytest.mark.parametrize("version", cpu_versions("softmax_ce"))
@pytest.mark.parametrize("scale", [1.0, 30.0])
def test_softmax_ce_gradients(version, scale):
    assert_gradients("softmax_ce", version, gradcheck.softmax_cross_entropy_check, 3, N=2, T=3,
                     V=5, scale=scale)


@pytest.mark.parametrize("version", cpu_versions("adam"))
@pytest.mark.parametrize("dtype", DTYPES)
def test_adam(version, dtype):
    rng = np.random.default_rng(0)
    state = {k: rng.standard_normal((3, 5)).astype(dtype) for k in "pgm"}
    state["v"] = rng.random((3, 5)).astype(dtype)
    want = {k: a.copy() for k, a in state.items()}
    for t in (1, 2, 7):
        run_version("adam_update", 0, *want.values(), 1e-2, 0.9, 0.999, 1e-8, t)
        run_version("adam_update", version, *state.values(), 1e-2, 0.9, 0.999, 1e-8, t)
    for name in "pmv":
        assert_same_outputs([state[name]], [want[name]], dtype, f"adam v{version} {name}")


@pytest.mark.parametrize("version", versions("adam", "cpu"))
def test_adam_takes_a_decaying_weight_to_zero_never_to_a_subnormal(version):
    """A float32 weight whose only gradient is weight decay's (1e-4 p) shrinks geometrically
    under Adam; unflushed it is subnormal after 1,584 steps (at lr 2e-3). Every version writes
    0 instead, keeps a NaN a NaN, and leaves normal numbers alone."""
    tiny = np.finfo(np.float32).tiny
    p, g, m, v = np.full(3, 0.1, np.float32), *np.zeros((3, 3), np.float32)
    for t in range(1, 2001):
        g[:] = 1e-4 * p
        run_version("adam_update", version, p, g, m, v, 2e-3, 0.9, 0.999, 1e-8, t)
        assert not ((0 < np.abs(p)) & (np.abs(p) < tiny)).any(), f"subnormal at step {t}: {p}"
    assert (p == 0).all()
    p = np.array([np.nan, 2 * tiny, tiny / 2], np.float32)
    run_version("adam_update", version, p, *np.zeros((3, 3), np.float32), 2e-3, 0.9, 0.999, 1e-8, 1)
    np.testing.assert_array_equal(p, [np.nan, 2 * tiny, 0])


def test_env_says_whether_numba_cache_is_warm(tmp_path):
    """A fresh NUMBA_CACHE_DIR is cold; one function run compiles (and caches) just that one."""
    script = ("import numpy as np\n"
              "from kernels.cpu import compiled_functions\n"
              "from kernels.cpu.bias_relu import bias_relu_forward_v2\n"
              "print(compiled_functions()[:2])\n"
              "bias_relu_forward_v2(np.ones((1, 1, 1, 1), np.float32), np.ones(1, np.float32))\n"
              "print(compiled_functions()[:2])\n"
              "from rawcap.env import numba_cache_line\n"
              "print(numba_cache_line())\n")
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True,
                         env={**os.environ, "NUMBA_CACHE_DIR": str(tmp_path), "PYTHONPATH": str(root)},
                         check=True).stdout.splitlines()
    (cold, total), (after, total2) = map(ast.literal_eval, out[:2])
    assert cold == 0 and after == 1 and total == total2 > 1
    assert out[2].startswith(f"Numba cache: partly warm, 1 of {total} CPU functions compiled in {tmp_path}")
