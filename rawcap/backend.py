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
