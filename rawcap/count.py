"""Count what one training step launches on a GPU, and where the host waits for it, without a GPU.

    python -m rawcap.bench --count

The step runs on `DeviceArray`s: NumPy arrays that stand for CuPy arrays. `array_module` answers
`device` (this module's stand-in for CuPy) for them, so `ops` dispatches to the CUDA kernels,
which Numba's CUDA simulator runs, and every operation is counted by the rule CuPy follows
(read from cupy/_core: _routines_linalg.pyx, _routines_manipulation.pyx, core.pyx):

    kernel        a Numba kernel launch (kernels.launch)
    GEMM          2-D `@`: one cuBLAS call, plus a copy of an operand that is neither C- nor
                  F-contiguous; N-D `@`: a copy of each operand that is not C-contiguous, one
                  strided batched GEMM, and three pointer-array kernels first when an operand
                  is broadcast over the batch; vdot: one cuBLAS call
    elementwise   every ufunc call (arithmetic, comparisons, exp, tanh, maximum, where, ...),
                  in place or not, and arange: one kernel each
    reduction     sum, mean, max, min, all, any (CuPy's mean divides inside the reduction)
    copy          writing into a slice, astype, copy, ascontiguousarray of a non-contiguous
                  array, a reshape or ravel that cannot be a view, concatenate and stack (one
                  copy per array, up to 8 arrays)
    gather        a read with an index array (take); scatter: a write with one, add.at
    fill          zeros, zeros_like, ones, full, fill (a memset or a fill kernel)
    host->device  asarray / array of host data: a copy from host memory
    sync          float(), int(), bool(), item(), tolist(), get(), formatting, of a device
                  array: the host waits for the GPU, then copies the value back

Only allocation (empty) and views (slices, transposes, reshapes of contiguous arrays) are free.
A NumPy function without a rule here raises TypeError rather than go uncounted.
Counts depend on the step's structure (T, the conv blocks, the parameters, the options), not on
the widths: a tiny model at the recipe's structure gives the recipe's counts.
"""
import sys
import types
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import numpy as np

LAUNCHES = ("kernel", "GEMM", "elementwise", "reduction", "copy", "gather", "scatter", "fill")
ROOT = Path(__file__).resolve().parents[1]


class Tally:
    """What a counted run did: (phase, category) -> launches, and the syncs by where they ran.

    phase: the step's part the operation ran in (`phase_of`); category: one of LAUNCHES,
    "host->device" or "sync" (module docstring)."""

    def __init__(self, phases):
        self.phases = phases                        # code object -> phase name
        self.counts = Counter()
        self.syncs = Counter()                      # "file:line function" -> syncs
        self.copies_in = Counter()                  # "file:line function" -> host-to-device copies

    def add(self, category, n=1):
        if n:
            frame = _caller()
            self.counts[self.phase_of(frame), category] += n
            if category == "sync":
                self.syncs[_where(frame)] += n
            elif category == "host->device":
                self.copies_in[_where(frame)] += n

    def phase_of(self, frame):
        """The phase of the innermost frame on the stack whose code is one of `phases`."""
        while frame is not None:
            if frame.f_code in self.phases:
                return self.phases[frame.f_code]
            frame = frame.f_back
        return "other"

    def total(self, categories=LAUNCHES, phase=None):
        return sum(n for (p, c), n in self.counts.items()
                   if c in categories and (phase is None or p == phase))


_tally = None


@contextmanager
def counting(phases):
    """`with counting({code: phase}) as tally:` counts every DeviceArray operation in the block."""
    global _tally
    before, _tally = _tally, Tally(phases)
    try:
        yield _tally
    finally:
        _tally = before


def _add(category, n=1):
    if _tally is not None:
        _tally.add(category, n)


def _caller():
    """The innermost frame outside this file and rawcap.backend's to_numpy (whose caller is the
    place that reads)."""
    frame = sys._getframe(1)
    while frame.f_code.co_filename == __file__ or frame.f_code.co_name == "to_numpy":
        frame = frame.f_back
    return frame


def _where(frame):
    path = Path(frame.f_code.co_filename)
    try:
        path = path.relative_to(ROOT)
    except ValueError:
        pass
    return f"{path}:{frame.f_lineno} {frame.f_code.co_name}"


# The arrays ------------------------------------------------------------------------------------

def _plain(a):
    """A DeviceArray's memory as a plain ndarray (NumPy then computes without dispatching back)."""
    if isinstance(a, DeviceArray):
        return a.view(np.ndarray)
    if isinstance(a, np.ndarray) and a.ndim:
        raise TypeError(f"a host (NumPy) array of shape {a.shape} met a device array: CuPy refuses "
                        f"that; copy it with xp.asarray first")
    if isinstance(a, (list, tuple)):
        return type(a)(_plain(x) for x in a)
    return a


def _device(result):
    """NumPy's result as device arrays (0-d arrays for scalars, as CuPy returns)."""
    if isinstance(result, tuple):
        return tuple(_device(r) for r in result)
    if isinstance(result, (np.ndarray, np.generic)):
        return np.asarray(result).view(DeviceArray)
    return result


def _is_advanced(key):
    """True for an index that holds an array or a list (a gather or scatter, not a view)."""
    keys = key if isinstance(key, tuple) else (key,)
    return any(isinstance(k, (np.ndarray, list)) for k in keys)


def _any_contiguous(a):
    return a.flags.c_contiguous or a.flags.f_contiguous


class DeviceArray(np.ndarray):
    """A NumPy array standing for a CuPy array: each operation is counted as CuPy would launch
    it (module docstring), and reading a value on the host counts a sync."""

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        if ufunc is np.matmul and method == "__call__":
            _count_matmul(*inputs[:2])
        elif method == "__call__":
            _add("elementwise")
        elif method == "reduce":
            _add("reduction")
        elif method == "at":
            _add("scatter")
        else:
            raise TypeError(f"rawcap.count has no rule for {ufunc.__name__}.{method}")
        if out is not None:
            kwargs["out"] = tuple(_plain(o) for o in out)
        result = getattr(ufunc, method)(*(_plain(x) for x in inputs), **kwargs)
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _device(result)

    def __array_function__(self, func, types, args, kwargs):
        rule = FUNCTIONS.get(func)
        if rule is None:
            raise TypeError(f"rawcap.count has no rule for numpy.{func.__name__}: add one to "
                            f"rawcap.count.FUNCTIONS (what CuPy launches for it)")
        return rule(*args, **kwargs)

    # Reductions, copies, views ------------------------------------------------------------------
    def _reduce(self, name, *args, **kwargs):
        _add("reduction")
        return _device(getattr(self.view(np.ndarray), name)(*args, **kwargs))

    def sum(self, *args, **kwargs):
        return self._reduce("sum", *args, **kwargs)

    def mean(self, *args, **kwargs):
        return self._reduce("mean", *args, **kwargs)

    def max(self, *args, **kwargs):
        return self._reduce("max", *args, **kwargs)

    def min(self, *args, **kwargs):
        return self._reduce("min", *args, **kwargs)

    def all(self, *args, **kwargs):
        return self._reduce("all", *args, **kwargs)

    def any(self, *args, **kwargs):
        return self._reduce("any", *args, **kwargs)

    def astype(self, dtype, copy=True, **kwargs):
        if not copy and np.dtype(dtype) == self.dtype:
            return self
        _add("copy")
        return _device(self.view(np.ndarray).astype(dtype, **kwargs))

    def copy(self, order="C"):
        _add("copy")
        return _device(self.view(np.ndarray).copy(order))

    def reshape(self, *shape, **kwargs):
        result = self.view(np.ndarray).reshape(*shape, **kwargs)
        if result.size and not np.may_share_memory(result, self.view(np.ndarray)):
            _add("copy")                    # CuPy copies exactly when NumPy does
        return result.view(DeviceArray)

    def ravel(self, order="C"):
        return self.reshape(-1, order=order)

    def dot(self, other):
        _count_matmul(self, other)
        return _device(self.view(np.ndarray).dot(_plain(other)))

    def fill(self, value):
        _add("fill")
        self.view(np.ndarray).fill(value)

    def __getitem__(self, key):
        if _is_advanced(key):
            _add("gather")
            key = _plain(key)
        result = super().__getitem__(key)
        return _device(result) if isinstance(result, np.generic) else result    # 0-d, as CuPy

    def __setitem__(self, key, value):
        if _is_advanced(key):
            _add("scatter")
            key = _plain(key)
        elif isinstance(value, np.ndarray) and not isinstance(value, DeviceArray) and value.ndim:
            _add("host->device")
        else:
            _add("copy" if isinstance(value, np.ndarray) else "fill")
        self.view(np.ndarray)[key] = value.view(np.ndarray) if isinstance(value, np.ndarray) else value

    # Reading values on the host: a sync each -------------------------------------------------
    def get(self):
        _add("sync")
        return self.view(np.ndarray).copy()

    def item(self, *args):
        _add("sync")
        return self.view(np.ndarray).item(*args)

    def tolist(self):
        _add("sync")
        return self.view(np.ndarray).tolist()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        return int(self.item())

    def __bool__(self):
        return bool(self.item())

    def __format__(self, spec):
        return format(self.item(), spec)


def _count_matmul(a, b):
    a, b = (x if isinstance(x, np.ndarray) else np.asarray(x) for x in (a, b))
    if a.ndim <= 2 and b.ndim <= 2:                 # cupy.dot: cuBLAS takes C or F order
        _add("copy", sum(not _any_contiguous(x) for x in (a, b) if x.ndim == 2))
    else:                                           # cupy.matmul: C order, batched GEMM
        _add("copy", sum(not x.flags.c_contiguous for x in (a, b)))
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        if a.shape[:-2] != batch or b.shape[:-2] != batch:
            _add("elementwise", 3)                  # _mat_ptrs of a, b and the output
    _add("GEMM")


# NumPy functions called on device arrays (through __array_function__) ------------------------

def _concatenate(arrays, axis=0, **kwargs):
    arrays = list(arrays)
    if len(arrays) <= 8:
        _add("copy", len(arrays))       # one elementwise copy per array
    else:
        _add("copy")                    # one kernel, after copying the pointer array in
        _add("host->device")
    return _device(np.concatenate(_plain(arrays), axis=axis, **kwargs))


def _stack(arrays, axis=0, **kwargs):
    arrays = list(arrays)
    return _concatenate([np.expand_dims(a.view(np.ndarray), axis).view(DeviceArray)
                         for a in arrays], axis=axis)


def _elementwise(function):
    def rule(*args, **kwargs):
        _add("elementwise")
        return _device(function(*_plain(args), **kwargs))
    return rule


def _free(function):
    def rule(*args, **kwargs):
        return function(*_plain(args), **kwargs)
    return rule


def _vdot(a, b):
    _add("copy", sum(not x.flags.c_contiguous for x in (a, b)))        # ravel
    _add("GEMM")
    return _device(np.vdot(_plain(a), _plain(b)))


def _sum(a, *args, **kwargs):
    return a.sum(*args, **kwargs)


def _filled(function):
    def rule(a, *args, **kwargs):
        _add("fill")
        return _device(function(_plain(a), *args, **kwargs))
    return rule


def _empty_like(a, *args, **kwargs):
    return _device(np.empty_like(_plain(a), *args, **kwargs))


def _take_along_axis(a, indices, axis):
    _add("elementwise", a.ndim - 1)     # cupy.arange of each other axis, to index with
    _add("gather")                      # then one read with the index arrays
    return _device(np.take_along_axis(_plain(a), _plain(indices), axis))


def _copyto(dst, src, **kwargs):
    _add("copy")
    np.copyto(_plain(dst), _plain(src), **kwargs)


FUNCTIONS = {
    np.concatenate: _concatenate, np.stack: _stack, np.where: _elementwise(np.where),
    np.vdot: _vdot, np.sum: _sum, np.copyto: _copyto, np.take_along_axis: _take_along_axis,
    np.zeros_like: _filled(np.zeros_like), np.ones_like: _filled(np.ones_like),
    np.full_like: _filled(np.full_like), np.empty_like: _empty_like,
    np.shape: _free(np.shape), np.ndim: _free(np.ndim), np.size: _free(np.size),
    np.may_share_memory: _free(np.may_share_memory), np.shares_memory: _free(np.shares_memory),
    np.result_type: _free(np.result_type), np.broadcast_shapes: _free(np.broadcast_shapes),
}


# The stand-in for the cupy module ---------------------------------------------------------------

def _asarray(a, dtype=None, order=None):
    if isinstance(a, DeviceArray):
        return a if dtype is None or np.dtype(dtype) == a.dtype else a.astype(dtype)
    _add("host->device")
    return np.array(a, dtype=dtype, order=order).view(DeviceArray)


def _array(a, dtype=None, copy=True, order="K"):
    if isinstance(a, DeviceArray):
        return a.astype(dtype or a.dtype) if copy else _asarray(a, dtype)
    return _asarray(a, dtype, None if order == "K" else order)


def _ascontiguousarray(a, dtype=None):
    a = _asarray(a, dtype)
    if a.flags.c_contiguous:
        return a
    _add("copy")
    return np.ascontiguousarray(a.view(np.ndarray)).view(DeviceArray)


def _created(function, category=None):
    def create(*args, **kwargs):
        if category:
            _add(category)
        return function(*args, **kwargs).view(DeviceArray)
    return create


def _count_launch(kernel, blocks, threads):
    _add("kernel")


class _StandInCupy(types.ModuleType):
    """`device`: what the counted step gets from array_module instead of cupy. Creation functions
    make DeviceArrays; every other name is NumPy's (its ufuncs and functions then dispatch on
    the DeviceArrays they are given)."""

    ndarray = DeviceArray
    asarray = staticmethod(_asarray)
    array = staticmethod(_array)
    ascontiguousarray = staticmethod(_ascontiguousarray)
    empty = staticmethod(_created(np.empty))
    zeros = staticmethod(_created(np.zeros, "fill"))
    ones = staticmethod(_created(np.ones, "fill"))
    full = staticmethod(_created(np.full, "fill"))
    arange = staticmethod(_created(np.arange, "elementwise"))     # CuPy's arange is a kernel
    count_launch = staticmethod(_count_launch)      # kernels.launch reports each kernel launch

    def __getattr__(self, name):
        return getattr(np, name)


device = _StandInCupy("rawcap.count.device", "NumPy arrays standing for CuPy arrays, counted")


def to_device(a):
    """A NumPy array as a DeviceArray (a counted host-to-device copy when counting)."""
    return _asarray(a)


# The counted step -------------------------------------------------------------------------------

def random_batch(config, images, captions_per_image, length, rng):
    """A host batch as train's loader makes one: images float32, ids int32, a full mask."""
    from .data.batches import Batch
    B = images * captions_per_image
    ids = lambda: rng.integers(4, config.vocab_size, (B, length)).astype(np.int32)   # noqa: E731
    return Batch(rng.random((images, 3, config.image_size, config.image_size), dtype=np.float32),
                 ids(), ids(), np.ones((B, length), bool),
                 np.repeat(np.arange(images, dtype=np.int32), captions_per_image),
                 np.arange(images), np.arange(B))


def count_step(config, images=32, captions_per_image=5, length=20, clip=1e-6, seed=0):
    """Run one training step (train's loop body: rawcap.train.train_step) on DeviceArrays
    -> the Tally. The default clip is below any gradient norm, so the clipping's scaling is
    counted too (as in the steps where it happens). Numba's CUDA simulator must be on
    (NUMBA_ENABLE_CUDASIM=1 before numba.cuda is imported): each op's GPU default, a CUDA
    kernel, runs in it."""
    from numba import config as numba_config
    if not numba_config.ENABLE_CUDASIM:
        raise RuntimeError("rawcap.count runs the CUDA kernels in Numba's simulator: set "
                           "NUMBA_ENABLE_CUDASIM=1 before numba.cuda is imported")
    from . import encoder, model, optim, train
    rng = np.random.default_rng(seed)
    # What a run makes once, before its first step (not counted): as train_in does.
    params = model.to_device(model.init_params(config, rng), device)
    optimizer = optim.make_optimizer("adam", model.trainable(params))
    encoder.pixel_statistics(device, config.pixel_mean, config.pixel_std, np.dtype(np.float32))
    batch = random_batch(config, images, captions_per_image, length, rng)
    phases = {train.train_step.__code__: "batch copy", model.forward.__code__: "forward",
              model.backward.__code__: "backward", optim.check_and_clip.__code__: "check, clip",
              optim.Adam.step.__code__: "Adam"}

    def losses(arrays, statistics):
        return model.loss_and_grads(params, config, *arrays, rng, statistics)

    with counting(phases) as tally:
        train.train_step(params, config, batch, device, optimizer, 1e-3, clip, losses,
                         {"updating": False})
    return tally


PHASES = ("batch copy", "forward", "backward", "check, clip", "Adam", "other")


def recipe_config():
    """The Flickr8k recipe's structure (docs/flickr8k.md: 4 conv blocks, f_beta, dropout 0.5,
    Adam, clipping at 5) with tiny widths, so the simulator runs the step in seconds."""
    from .model import Config
    return Config(vocab_size=11, image_size=16, channels=(2, 3, 2, 3), embed_size=3,
                  hidden_size=4, attention_size=5, dropout=0.5)


def report(tally):
    """The table of a Tally: launches by phase and kind, then the syncs and copies by place."""
    phases = [p for p in PHASES if tally.total(LAUNCHES + ("host->device", "sync"), p)]
    kinds = [k for k in LAUNCHES if tally.total((k,))]
    lines = [f"  {'':<14}" + "".join(f"{p:>13}" for p in phases) + f"{'step':>9}"]
    for kind in kinds + ["launches", "host->device", "sync"]:
        chosen = LAUNCHES if kind == "launches" else (kind,)
        if kind == "launches":
            lines.append("  " + "-" * (14 + 13 * len(phases) + 9))
        lines.append(f"  {kind:<14}" + "".join(f"{tally.total(chosen, p):>13}" for p in phases)
                     + f"{tally.total(chosen):>9}")
    for title, places in (("host syncs (device values read on the host)", tally.syncs),
                          ("host-to-device copies", tally.copies_in)):
        lines.append(f"{title}, by where they happen:")
        lines += [f"  {n:>4}  {where}" for where, n in sorted(places.items())] or ["     none"]
    return lines
