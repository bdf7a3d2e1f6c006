"""HDF5 checkpoints: the parameters, the optimizer's state and a JSON dict of everything else.

Layout of a checkpoint file:
    attrs["rawcap_checkpoint"] = 1          the format marker, checked on load
    attrs["meta"]              JSON string: step, epoch, config, vocabulary, RNG states, best score...
    params/<name>              one dataset per parameter, as NumPy stores it (dtype kept)
    optimizer/<key>            one dataset per array of the optimizer's state_dict() ("m/conv1_w" is
                               the dataset conv1_w in the group optimizer/m); its int and float
                               scalars ("t") are attributes of the group optimizer

A checkpoint is written atomically: into `path + ".tmp-PID"`, flushed to disk, then renamed over
`path` (os.replace is atomic). A write that fails or is interrupted (Ctrl-C included) removes its
temporary file and leaves the previous checkpoint as it was.
"""
import json
import os

import h5py
import numpy as np

from .backend import to_numpy

FORMAT = 1


class CheckpointError(ValueError):
    """A file that cannot be loaded as a rawcap checkpoint; the message names the file and why."""


def save_checkpoint(path, params, optimizer_state, meta):
    """Write params (name -> NumPy or CuPy array), optimizer_state (a flat dict from state_dict():
    str -> array, int or float) and meta (a JSON-serialisable dict) to `path`, atomically."""
    try:
        meta_json = json.dumps(meta, default=_numpy_scalar)
    except (TypeError, ValueError) as e:
        raise ValueError(f"checkpoint meta is not JSON-serialisable: {e}") from None
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with h5py.File(tmp, "w", track_order=True) as f:
            f.attrs["rawcap_checkpoint"] = FORMAT
            f.attrs["meta"] = meta_json
            group = f.create_group("params", track_order=True)
            for name, array in params.items():
                group.create_dataset(name, data=to_numpy(array))
            group = f.create_group("optimizer", track_order=True)
            for key, value in optimizer_state.items():
                if isinstance(value, (int, float, np.integer, np.floating)):
                    group.attrs[key] = value
                else:
                    group.create_dataset(key, data=_numeric_array(key, value))
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def load_checkpoint(path):
    """Read a checkpoint -> (params: dict of NumPy arrays, optimizer_state: dict, meta: dict).

    Raises CheckpointError for a missing file, a file that is not HDF5, a damaged (truncated)
    one, and an HDF5 file that is not a rawcap checkpoint.
    """
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: no such checkpoint file")
    if not h5py.is_hdf5(path):
        raise CheckpointError(f"{path}: not an HDF5 file, so not a rawcap checkpoint")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise CheckpointError(f"{path}: a damaged HDF5 file, truncated or corrupt ({e})") from None
    with f:
        version = f.attrs.get("rawcap_checkpoint")
        if version is None:
            raise CheckpointError(f"{path}: an HDF5 file but not a rawcap checkpoint "
                                  f"(it has no 'rawcap_checkpoint' attribute)")
        if version != FORMAT:
            raise CheckpointError(f"{path}: checkpoint format {version}, "
                                  f"but this rawcap reads format {FORMAT}")
        try:
            params = dict(_arrays(f["params"]))
            optimizer_state = dict(_arrays(f["optimizer"]))
            optimizer_state.update((key, value.item()) for key, value in f["optimizer"].attrs.items())
            meta = json.loads(f.attrs["meta"])
        except (KeyError, OSError, ValueError) as e:
            raise CheckpointError(f"{path}: a damaged rawcap checkpoint ({e})") from None
    return params, optimizer_state, meta


def _arrays(group, prefix=""):
    """(key, NumPy array) for every dataset under `group`, keys relative to it ("m/conv1_w")."""
    for name, item in group.items():
        if isinstance(item, h5py.Group):
            yield from _arrays(item, f"{prefix}{name}/")
        else:
            yield prefix + name, item[...]


def _numeric_array(key, value):
    """`value` as a NumPy array of numbers, or a ValueError naming the optimizer state's key."""
    array = to_numpy(value)
    if array.dtype.kind not in "biuf":
        raise ValueError(f"optimizer_state[{key!r}] must be an array, int or float, "
                         f"got {type(value).__name__} of dtype {array.dtype}")
    return array


def _numpy_scalar(value):
    """json.dumps's fallback: NumPy scalars (np.int64(3), np.float32(0.5)) as Python numbers."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
