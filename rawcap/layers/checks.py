"""Argument checks for the layers: a bad input raises a ValueError naming the argument and shapes.

    dims = Dims("attention_forward")
    dims.check("feats", feats, "N L D")
    dims.check("h", h, "N H")          # h's N must equal feats' N, or this raises

An axis is bound by the first array that has it and every later array must agree, so the
message can say where the conflicting size came from. `4H` means "four times H"; a leading
`...` allows any number of leading axes. Float arguments must all share one dtype.
"""
import re

import numpy as np

_AXIS = re.compile(r"^(\d*)([A-Za-z]\w*)$")


class Dims:
    """Sizes of named axes, bound as the arguments of one call are checked."""

    def __init__(self, where):
        self.where = where
        self.sizes = {}          # axis -> (size, name of the array that fixed it)
        self.float_dtype = None  # (dtype, name of the array that fixed it)

    def fail(self, message):
        raise ValueError(f"{self.where}: {message}")

    def check(self, name, x, axes, kind="float"):
        """Check array `x` (called `name`) against `axes` ("N T D", "D 4H", "... D") and `kind`.

        kind: "float" (floating, same dtype as the other floats), "int" (any integer dtype),
        or "mask" (bool, integer or floating).
        """
        if not (hasattr(x, "shape") and hasattr(x, "dtype")):
            self.fail(f"{name} must be an array, got {type(x).__name__}")
        axes = axes.split()
        any_leading = axes[0] == "..."
        if any_leading:
            axes = axes[1:]
        if x.ndim < len(axes) or (not any_leading and x.ndim != len(axes)):
            at_least = "at least " if any_leading else ""
            self.fail(f"{name} must have {at_least}{len(axes)} dims [{', '.join(axes)}], "
                      f"got shape {tuple(x.shape)}")
        for axis, size in zip(axes, x.shape[x.ndim - len(axes):]):
            self._bind(name, x, axis, size)
        self._check_kind(name, x, kind)

    def _bind(self, name, x, axis, size):
        multiple, base = _AXIS.match(axis).groups()
        multiple = int(multiple or 1)
        if base in self.sizes:
            bound, source = self.sizes[base]
            if size != multiple * bound:
                self.fail(f"{name} has shape {tuple(x.shape)}, but its {axis} axis should be "
                          f"{multiple * bound} ({base}={bound} from {source})")
        elif size % multiple:
            self.fail(f"{name} has shape {tuple(x.shape)}: its {axis} axis ({size}) "
                      f"is not a multiple of {multiple}")
        else:
            self.sizes[base] = (size // multiple, name)

    def _check_kind(self, name, x, kind):
        dtype = np.dtype(x.dtype)
        if kind == "int":
            if dtype.kind not in "iu":
                self.fail(f"{name} must hold integers, got dtype {dtype}")
        elif kind == "mask":
            if dtype.kind not in "biuf":
                self.fail(f"{name} must be bool or numeric, got dtype {dtype}")
        elif dtype not in (np.float32, np.float64):
            self.fail(f"{name} must be float32 or float64, got dtype {dtype}")
        elif self.float_dtype is None:
            self.float_dtype = (dtype, name)
        elif dtype != self.float_dtype[0]:
            self.fail(f"{name} is {dtype} but {self.float_dtype[1]} is {self.float_dtype[0]}: "
                      f"use one float dtype for all arguments")

    def __getitem__(self, axis):
        return self.sizes[axis][0]


def check_ids(where, name, ids, size):
    """Raise unless every id in the integer array `ids` lies in [0, size)."""
    if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= size):
        raise ValueError(f"{where}: {name} must lie in [0, {size}), "
                         f"got values in [{int(ids.min())}, {int(ids.max())}]")


def check_grad(where, name, grad, shape):
    """Raise unless the upstream gradient `grad` has the forward output's `shape`."""
    if not hasattr(grad, "shape") or tuple(grad.shape) != tuple(shape):
        got = tuple(grad.shape) if hasattr(grad, "shape") else type(grad).__name__
        raise ValueError(f"{where}: {name} must have the forward output's shape {tuple(shape)}, "
                         f"got {got}")


def check_positive_int(where, name, value, minimum=1):
    """Raise unless `value` is an int >= minimum (conv strides, padding, pool sizes)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{where}: {name} must be an integer >= {minimum}, got {value!r}")
