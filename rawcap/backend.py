"""Which array library runs an op: NumPy on the CPU, CuPy on an NVIDIA GPU.

Layers never import CuPy themselves; they ask `array_module(x)` for the module that owns `x`,
so one source serves both devices.
"""
import numpy as np


def array_module(x):
    """The array module (`numpy` or `cupy`) that array `x` belongs to."""
    if type(x).__module__.startswith("cupy"):
        import cupy
        return cupy
    return np


def get_device(name):
    """The array module for a device name: "cpu" -> numpy, "cuda" -> cupy (or a clear error)."""
    if name == "cpu":
        return np
    if name != "cuda":
        raise ValueError(f"unknown device {name!r}: use cpu or cuda")
    try:
        import cupy
        cupy.cuda.runtime.getDeviceCount()
    except ImportError:
        raise RuntimeError("--device cuda needs CuPy: pip install -e '.[cuda]'") from None
    except Exception as e:      # CuPy's CUDARuntimeError when there is no GPU or driver
        raise RuntimeError(f"--device cuda: no usable GPU ({e})") from None
    return cupy


def to_numpy(x):
    """A NumPy copy of a NumPy or CuPy array."""
    return x.get() if hasattr(x, "get") else np.asarray(x)
