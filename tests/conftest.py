"""Kernel tests run under Numba's CUDA simulator unless the run asks for the GPU with -m gpu.

NUMBA_ENABLE_CUDASIM is read when numba.cuda is first imported, so it is set here, before pytest
imports any test module.
"""
import os


def pytest_configure(config):
    markexpr = config.option.markexpr or ""
    wants_gpu = "gpu" in markexpr and "not gpu" not in markexpr
    if not wants_gpu:
        os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")
