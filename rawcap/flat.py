"""Flat buffers: a dict of arrays that are views into one contiguous 1-D buffer.

The parameters, their gradients and Adam's m and v each live in one buffer, laid out alike
(the dict's order), so a step's elementwise work over all of them is one operation on the
buffer instead of one per array: one Adam update, one squared norm, one clipping scale. On a
GPU that is one launch instead of ~25 each (rawcap.bench --count).

    views = flatten({"w": w, "b": b})      # views["w"] is buffer[0:w.size].reshape(w.shape)
    buffer_of(views)                        # -> that buffer; None for arrays that are not such views

Nothing else changes: every array is an ordinary array of its own shape, and assigning to a
dict entry (d["w"] = new_array) just leaves that entry outside the buffer (buffer_of then
answers None and callers fall back to one operation per array).
"""
from .backend import array_module


def flatten(arrays, fill=None):
    """A dict of views into one new 1-D buffer, with the arrays' names and shapes: holding copies
    of their values, or `fill` everywhere (e.g. 0) if given. Arrays of mixed dtypes or devices
    get one buffer each instead."""
    if not arrays:
        return {}
    first = next(iter(arrays.values()))
    xp = array_module(first)
    if any(a.dtype != first.dtype or array_module(a) is not xp for a in arrays.values()):
        # one buffer holds one dtype on one device: each array gets its own (not flat)
        return {name: xp.full_like(a, fill) if fill is not None else a.copy()
                for name, a in arrays.items()}
    sizes = [a.size for a in arrays.values()]
    if fill is None:
        buffer = xp.empty(sum(sizes), dtype=first.dtype)
    else:
        buffer = xp.full(sum(sizes), fill, dtype=first.dtype)
    views, offset = {}, 0
    for (name, a), size in zip(arrays.items(), sizes):
        views[name] = buffer[offset:offset + size].reshape(a.shape)
        if fill is None:
            views[name][...] = a
        offset += size
    return views


def buffer_of(arrays):
    """The 1-D buffer that `arrays` (a dict) exactly tile in order, as `flatten` makes them, or None."""
    values = list(arrays.values())
    if not values:
        return None
    owner = _owner(values[0])
    if owner.ndim != 1 or not owner.flags.c_contiguous or owner.size != sum(a.size for a in values):
        return None
    address = _address(owner)
    for a in values:
        if _owner(a) is not owner or not a.flags.c_contiguous or _address(a) != address:
            return None
        address += a.nbytes
    return owner if type(owner) is type(values[0]) else owner.view(type(values[0]))


def _owner(a):
    """The array that owns a's memory: the end of the chain of bases (NumPy and CuPy point a
    view of a view at the owner directly, except across NumPy subclasses)."""
    while getattr(a.base, "shape", None) is not None:
        a = a.base
    return a


def _address(a):
    """The address of a's first element (CuPy: a.data.ptr; NumPy: the array interface's)."""
    pointer = getattr(a.data, "ptr", None)
    return a.__array_interface__["data"][0] if pointer is None else pointer
