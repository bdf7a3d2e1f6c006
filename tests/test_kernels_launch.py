"""kernels/launch.py: the stream a kernel is queued on, and grids without blocks (N = 0)."""
import numpy as np
import pytest
from kernel_helpers import kernel_xp

import kernels.launch as launch_module
from rawcap import gradcheck
from rawcap.backend import kernels_pinned, to_numpy, versions
from kernels.launch import blocks_for, current_stream, launch


class RecordingKernel:
    """Stands in for a @cuda.jit kernel: records each launch's configuration and arguments."""

    def __init__(self):
        self.launches = []

    def __getitem__(self, configuration):
        return lambda *args: self.launches.append((configuration, args))


def test_launch_passes_the_stream_and_the_arrays():
    kernel, x = RecordingKernel(), np.zeros(3)
    launch(kernel, 2, 64, x, 1.5)
    [(configuration, args)] = kernel.launches
    assert configuration == (2, 64, current_stream(np))
    assert args[0] is x and args[1] == 1.5


def test_numpy_arrays_launch_on_stream_0():
    assert current_stream(np) == 0


def test_cupy_arrays_launch_on_cupys_current_stream(monkeypatch):
    """A stand-in CuPy whose current stream pointer is set here, and a stand-in numba.cuda: the
    launch stream is the external stream over that pointer, made once per pointer; pointer 0
    (CuPy's null stream) is Numba's default stream."""
    made = []

    class FakeNumbaCuda:
        @staticmethod
        def external_stream(pointer):
            made.append(pointer)
            return ("external", pointer)

        @staticmethod
        def default_stream():
            return "default"

    class FakeCupy:
        pointer = 0

        class cuda:  # noqa: N801 (mirrors cupy.cuda)
            @staticmethod
            def get_current_stream():
                return type("Stream", (), {"ptr": FakeCupy.pointer})()

    monkeypatch.setattr(launch_module, "cuda", FakeNumbaCuda)
    monkeypatch.setattr(launch_module, "_streams", {})
    assert current_stream(FakeCupy) == "default"
    FakeCupy.pointer = 0xABC
    assert current_stream(FakeCupy) == ("external", 0xABC)
    assert current_stream(FakeCupy) == ("external", 0xABC)
    assert made == [0xABC]


@pytest.mark.parametrize("blocks", [0, (0, 4), (3, 0)])
def test_grids_without_blocks_are_not_launched(blocks):
    kernel = RecordingKernel()
    launch(kernel, blocks, 32, np.zeros(0))
    assert kernel.launches == []


def test_blocks_for_counts_zero_blocks_for_zero_elements():
    assert [blocks_for(n, 128) for n in (0, 1, 128, 129)] == [0, 1, 1, 2]


def empty_batch_checks(rng):
    """A gradient-check builder per op, at N = 0 (the batch axis empty)."""
    softmax = gradcheck.LayerCheck(
        "softmax_cross_entropy", gradcheck.ops.softmax_cross_entropy_forward,
        gradcheck.ops.softmax_cross_entropy_backward,
        dict(logits=rng.standard_normal((0, 3, 7)), targets=np.zeros((0, 3), int),
             mask=np.ones((0, 3), bool)), ("logits",))
    return {"conv2d": gradcheck.conv2d_check(rng, N=0),
            "bias_relu": gradcheck.bias_relu_check(rng, shape=(0, 3, 4, 5)),
            "maxpool2d": gradcheck.maxpool2d_check(rng, N=0),
            "lstm_pointwise": gradcheck.lstm_pointwise_check(rng, N=0),
            "attention": gradcheck.attention_check(rng, N=0),
            "softmax_ce": softmax,
            "embedding": gradcheck.embedding_check(rng, N=0)}


def forward_and_backward(check):
    """The check's forward, then its backward of zero upstream gradients, as NumPy arrays."""
    *outputs, cache = check.forward(*check.args.values(), **check.options)
    grads = check.backward(*(np.zeros(np.shape(y)) for y in outputs), cache)
    return [to_numpy(a) for a in outputs + list(grads if isinstance(grads, tuple) else (grads,))]


@pytest.mark.parametrize("op", ["conv2d", "bias_relu", "maxpool2d", "lstm_pointwise", "attention",
                                "softmax_ce", "embedding"])
def test_every_kernel_takes_an_empty_batch(op):
    """N = 0 through every kernel version: version 0's outputs (empty, or zeros for the
    parameters' gradients and a loss of 0), with no launch (a launch of an empty grid fails on
    a GPU; here test_grids_without_blocks_are_not_launched shows it is skipped)."""
    if kernel_xp() is not np:
        pytest.skip("the N = 0 builders make NumPy arrays: under the simulator")
    want = None
    for version in versions(op):
        with kernels_pinned(f"{op}={version}"):
            got = forward_and_backward(empty_batch_checks(np.random.default_rng(0))[op])
        if want is None:
            want = got
            continue
        for g, w in zip(got, want, strict=True):
            assert g.shape == w.shape and np.array_equal(g, w), f"{op} v{version} at N = 0"


def test_adam_takes_an_empty_parameter():
    if kernel_xp() is not np:
        pytest.skip("NumPy arrays: under the simulator")
    from kernels.adam import adam_update_v1
    p, g, m, v = (np.zeros(0, np.float32) for _ in range(4))
    adam_update_v1(p, g, m, v, 1e-3, 0.9, 0.999, 1e-8, 1)
    assert p.shape == (0,)
