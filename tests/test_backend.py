"""rawcap.backend: devices, the kernel registry, version pins and deterministic mode."""
import types

import numpy as np
import pytest

from rawcap import backend
from rawcap.backend import (OPS, implementation, ops, parse_kernels, set_kernels, version_in_effect,
                            versions)
from rawcap.layers import lstm

GPU = types.SimpleNamespace(__name__="cupy")      # any module but numpy stands for CuPy here


@pytest.fixture(autouse=True)
def no_pins():
    set_kernels("")
    yield
    set_kernels("")


def test_every_op_has_version_0_and_a_kernel():
    for op, (_, _, functions) in OPS.items():
        assert versions(op)[:2] == [0, 1], op
        for function in functions:
            for version in versions(op):
                assert callable(implementation(function, version)), (function, version)


def test_version_0_is_the_layer():
    assert implementation("lstm_pointwise_forward", 0) is lstm.lstm_pointwise_forward


def test_a_version_without_the_function_falls_back_to_the_layer(monkeypatch):
    """Every kernel module now has all of its op's functions, so one is taken away here."""
    import kernels.embedding
    from rawcap.layers.embedding import embedding_forward
    monkeypatch.delattr(kernels.embedding, "embedding_forward_v1")
    assert implementation("embedding_forward", 1) is embedding_forward


def test_parse_kernels():
    assert parse_kernels("") == {}
    assert parse_kernels(" lstm_pointwise=0, softmax_ce=1 ") == {"lstm_pointwise": 0, "softmax_ce": 1}
    assert parse_kernels("all=0") == {op: 0 for op in OPS}
    with pytest.raises(ValueError, match="unknown op 'lstm'"):
        parse_kernels("lstm=1")
    with pytest.raises(ValueError, match="has versions"):
        parse_kernels("softmax_ce=9")
    with pytest.raises(ValueError, match="write op=version"):
        parse_kernels("softmax_ce")


def test_environment_variable_is_read(monkeypatch):
    monkeypatch.setenv("RAWCAP_KERNELS", "attention=0")
    assert set_kernels() == {"attention": 0}
    monkeypatch.setenv("RAWCAP_KERNELS", "attention=x")
    with pytest.raises(ValueError, match="RAWCAP_KERNELS"):
        set_kernels()


def test_numpy_runs_the_cpu_default_and_a_gpu_the_gpu_default():
    for op in OPS:
        cpu_default = backend.default_version(op, "cpu")
        assert version_in_effect(op, np) == cpu_default
        assert cpu_default == 0 or backend.device_of(op, cpu_default) == "cpu", op
        if backend._kernel_module(op, "cuda") is None:     # no CUDA version (yet): the layer
            assert version_in_effect(op, GPU) == backend.default_version(op) == 0, op
            continue
        assert version_in_effect(op, GPU) == backend.default_version(op) >= 1
        assert backend.device_of(op, backend.default_version(op)) == "cuda", op


def test_versions_by_device():
    cpu, cuda = versions("conv2d", "cpu"), versions("conv2d", "cuda")
    assert cpu[0] == cuda[0] == 0 and len(cpu) > 1 and len(cuda) > 1
    assert sorted(set(cpu) | set(cuda)) == versions("conv2d")
    assert set(cpu) & set(cuda) == {0}, "one number, one version"
    with pytest.raises(ValueError, match="unknown device"):
        versions("conv2d", "tpu")


def test_a_cpu_version_refuses_gpu_arrays(monkeypatch):
    cpu_version = versions("conv2d", "cpu")[-1]
    set_kernels(f"conv2d={cpu_version}")
    monkeypatch.setattr(backend, "array_module", lambda x: GPU)
    with pytest.raises(ValueError, match="runs on the CPU"):
        ops.conv2d_forward(np.zeros((1, 1, 3, 3)), np.zeros((1, 1, 3, 3)), None)


def test_all_0_runs_the_layers_on_numpy():
    set_kernels("all=0")
    for op in OPS:
        assert version_in_effect(op, np) == 0


def test_pins_apply_to_every_kind_of_array():
    set_kernels("conv2d=1,adam=0")
    assert version_in_effect("conv2d", np) == 1
    assert version_in_effect("adam", GPU) == 0


def test_deterministic_mode_avoids_atomic_defaults():
    atomic = [op for op in OPS if backend.default_version(op) in
              getattr(backend._kernel_module(op), "ATOMIC", set())]
    assert "embedding" in atomic
    set_kernels("", deterministic=True)
    for op in OPS:
        version = version_in_effect(op, GPU)
        assert version not in getattr(backend._kernel_module(op), "ATOMIC", set()), op
    assert version_in_effect("embedding", GPU) == 2


def test_ops_dispatches_on_the_pins():
    x = np.random.default_rng(0).standard_normal((2, 8))
    c = np.zeros((2, 2))
    set_kernels("lstm_pointwise=0")
    h0, c0, _ = ops.lstm_pointwise_forward(x, c)
    set_kernels("lstm_pointwise=1")          # the kernel, under the simulator (conftest)
    h1, c1, cache = ops.lstm_pointwise_forward(x, c)
    assert len(cache) == 3                   # the kernel's own cache, not the layer's six arrays
    np.testing.assert_allclose(h1, h0, rtol=1e-12, atol=1e-15)


def test_ops_unknown_function():
    with pytest.raises(AttributeError, match="no 'relu_forward'"):
        ops.relu_forward


def test_no_gpu_is_a_clear_error():
    try:
        import cupy  # noqa: F401
        pytest.skip("CuPy is installed here")
    except ImportError:
        pass
    with pytest.raises(RuntimeError, match=r"needs CuPy"):
        backend.get_device("cuda")
    with pytest.raises(ValueError, match="unknown device"):
        backend.get_device("tpu")
