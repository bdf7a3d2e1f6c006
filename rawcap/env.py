"""What a bug report needs: the versions of everything rawcap runs on, and the GPU, if any.

    python -m rawcap.env

Prints Python, NumPy (and its BLAS), SciPy, Pillow, h5py, CuPy, Numba and numba-cuda versions, the CUDA driver and runtime, each
GPU's name, compute capability and memory, the kernel versions `--device cuda` would run, or
why no GPU is usable. Exit status 0 either way: a machine without a GPU is a valid answer.
"""
import os
import platform
import sys
from importlib import metadata

from .backend import OPS, default_version, versions


def package_version(name):
    """The installed version of distribution `name`, or "not installed"."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def cupy_version():
    """CuPy is published as cupy-cuda12x, cupy-cuda13x, ... or plain cupy."""
    for dist in metadata.distributions():
        name = dist.metadata["Name"] or ""
        if name.lower() == "cupy" or name.lower().startswith("cupy-cuda"):
            return f"{dist.version} ({name})"
    return "not installed"


def cuda_version(code):
    """CUDA's integer version (12040) as text ("12.4")."""
    return f"{code // 1000}.{code % 1000 // 10}"


def gpu_lines():
    """Lines about the CUDA driver, runtime and every GPU, or why there is none."""
    try:
        import cupy
    except ImportError:
        return ["GPU: not usable: CuPy is not installed (pip install -e '.[cuda]')"]
    try:
        runtime = cupy.cuda.runtime
        count = runtime.getDeviceCount()
        lines = [f"CUDA driver: {cuda_version(runtime.driverGetVersion())}",
                 f"CUDA runtime: {cuda_version(runtime.runtimeGetVersion())}"]
        for k in range(count):
            props = runtime.getDeviceProperties(k)
            name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
            lines.append(f"GPU {k}: {name}, compute capability {props['major']}.{props['minor']}, "
                         f"{props['totalGlobalMem'] / 2**30:.1f} GiB")
        return lines or ["GPU: none found by the CUDA driver"]
    except Exception as e:      # CUDARuntimeError: no driver, no device, driver too old
        return [f"GPU: not usable: {e}"]


def cpu_threads_line():
    """Which threading layer Numba's parallel CPU loops run on, with how many threads."""
    from kernels.cpu import blas_threads, threading_layer
    layer, threads = threading_layer()
    return f"CPU threads: Numba {layer} layer, {threads} threads; BLAS {blas_threads()} threads"


def numba_cache_line():
    """Whether Numba's cache holds the CPU versions' machine code (warm) or a first run will
    compile them (cold)."""
    from kernels.cpu import compiled_functions
    state = compiled_functions()
    if state is None:
        return "Numba cache: unknown (this Numba version keeps it differently)"
    compiled, total, folder = state
    warmth = "warm" if compiled == total else "cold" if compiled == 0 else "partly warm"
    return (f"Numba cache: {warmth}, {compiled} of {total} CPU functions compiled in {folder}"
            + ("" if compiled == total else "; a run compiles those it calls (a training run "
               "from a cold cache: ~30 CPU-seconds)"))


def kernel_lines():
    """The versions of every op (CPU and CUDA ones), and the default on each device."""
    return [f"  {op:<15} CPU versions {versions(op, 'cpu')} (default {default_version(op, 'cpu')}), "
            f"CUDA versions {versions(op, 'cuda')} (default {default_version(op)})" for op in OPS]


def blas():
    """The BLAS NumPy was built with, as its build configuration says."""
    try:
        import numpy
        info = numpy.show_config(mode="dicts")["Build Dependencies"]["blas"]
    except Exception as e:          # older NumPy: no mode="dicts"
        return f"unknown ({type(e).__name__})"
    return f"{info.get('name', '?')} {info.get('version', '?')}"


def report():
    """The report as a list of lines."""
    lines = [f"rawcap {package_version('rawcap')}",
             f"Python {sys.version.split()[0]} ({platform.platform()})",
             f"NumPy {package_version('numpy')} (BLAS: {blas()})",
             f"SciPy {package_version('scipy')}",
             f"Pillow {package_version('pillow')}",
             f"h5py {package_version('h5py')}",
             f"CuPy {cupy_version()}",
             f"Numba {package_version('numba')}",
             f"numba-cuda {package_version('numba-cuda')}"]
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        lines.append("NUMBA_ENABLE_CUDASIM=1: kernels run in Numba's CUDA simulator")
    if os.environ.get("RAWCAP_KERNELS"):
        lines.append(f"RAWCAP_KERNELS={os.environ['RAWCAP_KERNELS']}")
    lines.append(cpu_threads_line())
    lines.append(numba_cache_line())
    lines += gpu_lines()
    lines.append("kernels:")
    lines += kernel_lines()
    return lines


def main(argv=None):
    import argparse
    argparse.ArgumentParser(prog="python -m rawcap.env", description=__doc__.split("\n\n")[0]
                            ).parse_args(argv)
    print("\n".join(report()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
