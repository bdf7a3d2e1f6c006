"""GPU kernels (Numba CUDA), one module per layer function they mirror.

Version 0 of every op is the layer in `rawcap.layers` running on CuPy arrays; versions 1, 2, ...
are kernels here, numbered in the order they were written. Empty until the GPU path lands.
"""
