"""Compile every kernel for float32 arrays and count the float64 instructions in its PTX.

    python -m tools.ptx_check [--cc 7.5] [--show KERNEL]

Consumer GPUs (a T4, what Colab lends) run float64 at 1/32 of the float32 rate, so a kernel
on float32 arrays should do its arithmetic in float32. This reads the compiled code instead of
trusting the source: each op's wrapper is called on small float32 NumPy arrays (the gradient
check's builders) with `launch` replaced by a recorder, and each recorded kernel is compiled
with `numba.cuda.compile_ptx` for those argument types. Compiling needs NVVM (the CUDA
toolkit's compiler library, which Numba finds without a GPU), not a GPU or a driver.

Prints, per kernel: the float64 instructions (arithmetic, conversions and float64 memory
accesses) and the float32 ones. Exit status 0 when no kernel has a float64 instruction, 1 when
one has (it is listed), 3 when NVVM is not available (nothing was checked).
Run without NUMBA_ENABLE_CUDASIM (the simulator compiles nothing).
"""
import argparse
import os
import re
import sys

import numpy as np

F64 = re.compile(r"^\s*[a-z]+[.\w]*\.f64\b(?!.*\.reg)")     # an instruction on a float64 operand
F32 = re.compile(r"^\s*[a-z]+[.\w]*\.f32\b")


def recorded_launches():
    """[(kernel module, kernel, argument values)] of every kernel version's forward and
    backward on float32 arrays, without running them."""
    import importlib

    from rawcap import gradcheck
    from rawcap.backend import OPS, kernels_pinned, versions

    launches = []

    def recorder(module):
        def record(kernel, blocks, threads, *args):
            launches.append((module.__name__, kernel, args))
        return record

    builders = {"conv2d": gradcheck.conv2d_check, "bias_relu": gradcheck.bias_relu_check,
                "maxpool2d": gradcheck.maxpool2d_check,
                "batchnorm2d": gradcheck.batchnorm2d_train_check, "lstm_pointwise": gradcheck.lstm_pointwise_check,
                "attention": gradcheck.attention_check, "embedding": gradcheck.embedding_check,
                "softmax_ce": gradcheck.softmax_cross_entropy_check}
    for op, build in builders.items():
        module = importlib.import_module(OPS[op][1])
        saved = module.launch
        module.launch = recorder(module)
        try:
            for version in versions(op, "cuda")[1:]:
                check = build(np.random.default_rng(0))
                args = [a.astype(np.float32) if a.dtype == np.float64 else a for a in check.args.values()]
                with kernels_pinned(f"{op}={version}"), np.errstate(all="ignore"):
                    *outputs, cache = check.forward(*args, **check.options)
                    check.backward(*(np.ones(np.shape(y), np.float32) for y in outputs), cache)
        finally:
            module.launch = saved
    adam = importlib.import_module("kernels.adam")
    saved, adam.launch = adam.launch, recorder(adam)
    try:
        p = np.zeros(5, np.float32)
        adam.adam_update_v1(p, p.copy(), p.copy(), p.copy(), 1e-3, 0.9, 0.999, 1e-8, 1)
    finally:
        adam.launch = saved
    from rawcap.model import Config, init_params
    decoder = importlib.import_module("kernels.decoder")
    saved, decoder.launch = decoder.launch, recorder(decoder)
    try:
        config = Config(vocab_size=5, image_size=4, channels=(2,), embed_size=2, hidden_size=2,
                        attention_size=2)
        params = init_params(config, np.random.default_rng(0))             # float32
        B, T, L = 1, 2, config.locations
        zeros = lambda *shape: np.zeros(shape, np.float32)                 # noqa: E731
        *_, cache = decoder.decoder_forward_v2(zeros(B, L, 2), zeros(B, L, 2), zeros(B, 2),
                                               zeros(B, 2), zeros(B, T, 2), params, config)
        decoder.decoder_backward_v2(zeros(B, T, 2), zeros(B, T, L), cache)
    finally:
        decoder.launch = saved
    return launches


def _probe(a):
    a[0] = a[0] + 1


def count(ptx):
    """(float64 instructions, float32 instructions) in PTX text."""
    lines = ptx.splitlines()
    return (sum(bool(F64.match(line)) for line in lines if ".reg" not in line),
            sum(bool(F32.match(line)) for line in lines if ".reg" not in line))


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m tools.ptx_check",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--cc", default="7.5", help="compute capability to compile for (7.5: a T4)")
    p.add_argument("--show", metavar="KERNEL", help="also print the float64 lines of this kernel")
    args = p.parse_args(argv)
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        print("error: unset NUMBA_ENABLE_CUDASIM: the simulator compiles nothing", file=sys.stderr)
        return 2
    from numba import cuda, float32, typeof
    cc = tuple(int(x) for x in args.cc.split("."))
    # Device functions (kernels/reduce.py) are compiled for the current device's capability;
    # without a GPU there is none, so name the one asked for.
    import numba.cuda.dispatcher
    numba.cuda.dispatcher.get_current_device = lambda: type("Device", (), {"compute_capability": cc})
    try:                        # a first compile finds NVVM and libdevice, or says which is missing
        cuda.compile_ptx(_probe, (float32[:],), cc=cc)
    except Exception as e:      # NvvmSupportError and kin: no CUDA toolkit found
        print(f"NVVM not available, nothing checked: {e}")
        return 3
    seen, failing = set(), []
    print(f"kernels on float32 arrays, compiled for sm_{cc[0]}{cc[1]}: PTX instructions on")
    print(f"  {'kernel':<34} {'float64':>8} {'float32':>8}")
    for module, kernel, values in recorded_launches():
        signature = tuple(typeof(v) for v in values)
        name = f"{kernel.py_func.__module__.removeprefix('kernels.')}.{kernel.py_func.__name__}"
        if (name, signature) in seen:
            continue
        seen.add((name, signature))
        ptx, _ = cuda.compile_ptx(kernel.py_func, signature, cc=cc)
        f64, f32 = count(ptx)
        print(f"  {name:<34} {f64:>8} {f32:>8}")
        if f64:
            failing.append(name)
        if args.show and args.show in name:
            print("\n".join(line for line in ptx.splitlines() if F64.match(line) and ".reg" not in line))
    if failing:
        print(f"float64 instructions in float32 kernels: {', '.join(failing)}")
        return 1
    print("no float64 instruction in any kernel on float32 arrays")
    return 0


if __name__ == "__main__":
    sys.exit(main())
