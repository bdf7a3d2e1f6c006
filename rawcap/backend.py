"""Which array library runs an op, and which implementation of it.

Layers never import CuPy themselves; they ask `array_module(x)` for the module that owns `x`,
so one source serves both devices.

The hot layer functions have more than one implementation, numbered per op in one sequence:

    version 0      the layer in rawcap.layers (or rawcap.optim, rawcap.model), on NumPy or CuPy arrays
    version k      a Numba CUDA kernel in kernels/<module>.py, named <function>_v<k> (CuPy arrays)
    version k      a CPU version in kernels/cpu/<module>.py, named <function>_v<k> (NumPy arrays:
                   Numba @njit loops or restructured NumPy)

`ops.<function>(...)` calls the version in effect for the arrays it is given (its first array
argument decides): the op's CPU default (kernels/cpu/<module>.py's DEFAULT; version 0 if it has
none) on NumPy arrays, its GPU default (kernels/<module>.py's DEFAULT) on CuPy arrays. A version
that lacks one of the op's functions uses version 0's. Versions can be pinned for study and
benchmarks; a CUDA version runs on NumPy arrays under Numba's CUDA simulator, a CPU version on
NumPy arrays only:

    RAWCAP_KERNELS="lstm_pointwise=0,softmax_ce=1" python -m rawcap.train --device cuda
    python -m rawcap.train --kernels all=0          # the plain layers, on either device

Deterministic mode (`set_kernels(deterministic=True)`, train's --deterministic) replaces every
default version that adds with atomics, whose order of additions changes from run to run, by the
highest version that does not (a module's ATOMIC set lists them).
"""
import importlib
import importlib.util
import os
import time
from contextlib import contextmanager

import numpy as np

# op -> (module of version 0, kernel module, the functions the op covers)
OPS = {
    "conv2d": ("rawcap.layers.conv", "kernels.conv",
               ("conv2d_forward", "conv2d_backward", "conv2d_params_backward")),
    "bias_relu": ("rawcap.layers.activations", "kernels.bias_relu",
                  ("bias_relu_forward", "bias_relu_backward")),
    "maxpool2d": ("rawcap.layers.pool", "kernels.pool", ("maxpool2d_forward", "maxpool2d_backward")),
    "batchnorm2d": ("rawcap.layers.batchnorm", "kernels.batchnorm",
                    ("batchnorm2d_forward", "batchnorm2d_backward")),
    "lstm_pointwise": ("rawcap.layers.lstm", "kernels.lstm",
                       ("lstm_pointwise_forward", "lstm_pointwise_backward")),
    "attention": ("rawcap.layers.attention", "kernels.attention",
                  ("attention_forward", "attention_backward")),
    "softmax_ce": ("rawcap.layers.loss", "kernels.softmax_ce",
                   ("softmax_cross_entropy_forward", "softmax_cross_entropy_backward")),
    "embedding": ("rawcap.layers.embedding", "kernels.embedding",
                  ("embedding_forward", "embedding_backward")),
    "adam": ("rawcap.optim", "kernels.adam", ("adam_update",)),
    "decoder": ("rawcap.decoder", "kernels.decoder", ("decoder_forward", "decoder_backward")),
}
# Ops whose version 0 is made of layer functions (the decoder's T steps): a student's layers
# (version_0_replaced) pin them to version 0 too, so that the student's functions run.
COMPOSITE_OPS = ("decoder",)
OP_OF = {function: op for op, (_, _, functions) in OPS.items() for function in functions}


def array_module(x):
    """The array module (`numpy` or `cupy`) that array `x` belongs to (rawcap.count's stand-in
    for CuPy for its DeviceArrays)."""
    if type(x).__module__.startswith("cupy"):
        import cupy
        return cupy
    if type(x).__module__ == "rawcap.count":        # NumPy arrays counted as CuPy arrays
        from .count import device
        return device
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


DEVICES = ("cuda", "cpu")


def versions(op, device=None):
    """The versions of `op`: [0, 1, ...] (0 is the layer, which runs on both devices; the rest
    are its CUDA module's and its CPU module's). device "cuda" or "cpu": only 0 and that device's."""
    if op not in OPS:
        raise ValueError(f"unknown op {op!r}; the ops are {', '.join(OPS)}")
    if device not in (None, *DEVICES):
        raise ValueError(f"unknown device {device!r}: use cpu or cuda")
    found = {0}
    for where in ([device] if device else DEVICES):
        for name in vars(_kernel_module(op, where) or object):
            for function in OPS[op][2]:
                suffix = name[len(function) + 2:]
                if name.startswith(function + "_v") and suffix.isdigit():
                    found.add(int(suffix))
    return sorted(found)


def device_of(op, version):
    """"cpu" or "cuda": the device version `version` of `op` runs on (None for version 0: both)."""
    if version == 0:
        return None
    return "cpu" if version in versions(op, "cpu") else "cuda"


def parse_kernels(spec):
    """"lstm_pointwise=0,softmax_ce=1" (or "all=0") -> {op: version}, checked against versions()."""
    pins = {}
    for item in filter(None, (part.strip() for part in (spec or "").split(","))):
        op, sep, version = item.partition("=")
        op = op.strip()
        if not sep or not version.strip().isdigit():
            raise ValueError(f"kernel pin {item!r}: write op=version, e.g. softmax_ce=1")
        for name in (OPS if op == "all" else [op]):
            if int(version) not in versions(name):
                raise ValueError(f"kernel pin {item!r}: {name} has versions {versions(name)}")
            pins[name] = int(version)
    return pins


class _Settings:
    pins = {}                   # op -> version, on every kind of array
    deterministic = False
    profile = None              # a rawcap.bench.Profile while one records ops' times
    nested = 0.0                # seconds recorded by the ops that the running op called


def set_kernels(spec=None, deterministic=False):
    """Pin versions ("op=version,..." as RAWCAP_KERNELS takes; None: the variable's value) and
    choose deterministic mode. Returns the pins in effect."""
    spec = os.environ.get("RAWCAP_KERNELS", "") if spec is None else spec
    try:
        _Settings.pins = parse_kernels(spec)
    except ValueError as e:
        raise ValueError(f"RAWCAP_KERNELS / --kernels: {e}") from None
    _Settings.deterministic = deterministic
    return dict(_Settings.pins)


@contextmanager
def kernels_pinned(spec, deterministic=False):
    """`with kernels_pinned("all=1"): ...` runs the block with these pins, then restores the
    settings that were in effect before."""
    before = _Settings.pins, _Settings.deterministic
    set_kernels(spec, deterministic)
    try:
        yield
    finally:
        _Settings.pins, _Settings.deterministic = before


def version_in_effect(op, xp):
    """The version `ops` runs for `op` on arrays of module `xp` (numpy or cupy)."""
    if op in _Settings.pins:
        return _Settings.pins[op]
    device = "cpu" if xp is np else "cuda"
    version = default_version(op, device)
    atomic = getattr(_kernel_module(op, device), "ATOMIC", set())
    if _Settings.deterministic and version in atomic:
        version = max(v for v in versions(op, device) if v not in atomic)
    return version


def default_version(op, device="cuda"):
    """The version of `op` that runs on `device` unless pinned: the DEFAULT of its kernel module
    for that device (version 0 where the device has none)."""
    return getattr(_kernel_module(op, device), "DEFAULT", 0)


# Layer functions that stand in for version 0 (a student's: rawcap.student.use_layers).
_version_0_replaced = {}


@contextmanager
def version_0_replaced(functions, pin_ops):
    """`with version_0_replaced({function: callable}, ops): ...` runs the block with these
    callables as version 0 of their functions, and the ops `pin_ops` and COMPOSITE_OPS pinned
    to version 0."""
    before = dict(_version_0_replaced), _Settings.pins
    _version_0_replaced.update(functions)
    _Settings.pins = {**_Settings.pins, **{op: 0 for op in (*pin_ops, *COMPOSITE_OPS)}}
    try:
        yield
    finally:
        _version_0_replaced.clear()
        _version_0_replaced.update(before[0])
        _Settings.pins = before[1]


def implementation(function, version):
    """The callable that is version `version` of layer function `function`."""
    if version == 0 and function in _version_0_replaced:
        return _version_0_replaced[function]
    op = OP_OF[function]
    if version != 0:
        if version not in versions(op):
            raise ValueError(f"{op} has no version {version}; it has {versions(op)}")
        kernel = getattr(_kernel_module(op, device_of(op, version)), f"{function}_v{version}", None)
        if kernel is not None:
            return kernel
    return getattr(importlib.import_module(OPS[op][0]), function)


def _kernel_module(op, device="cuda"):
    """The module of `op`'s versions for `device`: kernels/<module>.py for "cuda",
    kernels/cpu/<module>.py for "cpu" (None if the op has no versions on that device)."""
    name = OPS[op][1]
    if device == "cpu":
        name = name.replace("kernels.", "kernels.cpu.", 1)
    if importlib.util.find_spec(name) is None:
        return None
    return importlib.import_module(name)


@contextmanager
def profiling(profile):
    """`with profiling(p): ...` has every `ops` call in the block add its own time to
    p.record(function, version, seconds) (the device synchronised around each call; the time
    of the ops it called is theirs, not its)."""
    before, _Settings.profile = _Settings.profile, profile
    try:
        yield profile
    finally:
        _Settings.profile = before


def _synchronize(xp):
    if xp is not np:
        xp.cuda.Device().synchronize()


class _Ops:
    """ops.<function>(x, ...) runs the version of <function> in effect for x's array module."""

    def __getattr__(self, function):
        if function not in OP_OF:
            raise AttributeError(f"rawcap.backend.ops has no {function!r}; it has {sorted(OP_OF)}")

        def call(*args, **kwargs):
            # The first array argument decides (softmax-CE's backward takes dloss, maybe a number, first).
            xp = array_module(next((a for a in args if hasattr(a, "shape")), args[0]))
            version = version_in_effect(OP_OF[function], xp)
            if xp is not np and device_of(OP_OF[function], version) == "cpu":
                raise ValueError(f"{function} version {version} runs on the CPU (NumPy arrays), "
                                 f"not on CuPy arrays: pin a CUDA version or 0")
            run = implementation(function, version)
            if _Settings.profile is None:
                return run(*args, **kwargs)
            _synchronize(xp)
            outer, _Settings.nested = _Settings.nested, 0.0
            start = time.perf_counter()
            result = run(*args, **kwargs)
            _synchronize(xp)
            seconds = time.perf_counter() - start
            # Its own time: the ops it called (the decoder calls attention...) record theirs.
            _Settings.profile.record(function, version, seconds - _Settings.nested)
            _Settings.nested = outer + seconds
            return result

        call.__name__ = function
        return call


ops = _Ops()
set_kernels()
