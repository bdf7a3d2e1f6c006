"""HDF5 checkpoints: the parameters, the optimizer's state and a JSON dict of everything else,
with a checksum of every part, verified on load.

Layout of a checkpoint file:
    attrs["rawcap_checkpoint"] = 2          the format marker, checked on load
    attrs["meta"]              JSON string: step, epoch, config, vocabulary, RNG states, best score...
    attrs["checksums"]         JSON: SHA-256 of every dataset (of its dtype, shape and bytes), of
                               "meta" and of the optimizer's scalars
    attrs["checksums_sha256"]  SHA-256 of the checksums' JSON itself
    params/<name>              one dataset per parameter, as NumPy stores it (dtype kept)
    optimizer/<key>            one dataset per array of the optimizer's state_dict() ("m/conv1_w" is
                               the dataset conv1_w in the group optimizer/m); its int and float
                               scalars ("t") are attributes of the group optimizer

Loading refuses, with a CheckpointError naming the file and what is wrong: a missing or
non-HDF5 file, a truncated one, another format, any part whose bytes no longer match its
checksum, a dataset missing or added, and non-finite (NaN, inf) parameters or optimizer state.

A checkpoint is written atomically: into `path + ".tmp-PID"`, flushed to disk, then renamed over
`path` (os.replace is atomic). A write that fails or is interrupted (Ctrl-C included) removes its
temporary file and leaves the previous checkpoint as it was.
"""
import hashlib
import json
import os
from pathlib import Path

import h5py
import numpy as np

from .backend import to_numpy

FORMAT = 2


class CheckpointError(ValueError):
    """A file that cannot be loaded as a rawcap checkpoint; the message names the file and why."""


def save_checkpoint(path, params, optimizer_state, meta):
    """Write params (name -> NumPy or CuPy array), optimizer_state (a flat dict from state_dict():
    str -> array, int or float) and meta (a JSON-serialisable dict) to `path`, atomically."""
    try:
        meta_json = json.dumps(meta, default=_numpy_scalar)
    except (TypeError, ValueError) as e:
        raise ValueError(f"checkpoint meta is not JSON-serialisable: {e}") from None
    arrays = {f"params/{name}": to_numpy(array) for name, array in params.items()}
    scalars = {}
    for key, value in optimizer_state.items():
        if isinstance(value, (int, float, np.integer, np.floating)):
            scalars[key] = value.item() if isinstance(value, np.generic) else value
        else:
            arrays[f"optimizer/{key}"] = _numeric_array(key, value)
    checksums = {key: _array_digest(array) for key, array in arrays.items()}
    checksums.update(meta=_digest(meta_json.encode()), optimizer_scalars=_scalars_digest(scalars))
    checksums_json = json.dumps(checksums, sort_keys=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with h5py.File(tmp, "w", track_order=True) as f:
            f.attrs["rawcap_checkpoint"] = FORMAT
            f.attrs["meta"] = meta_json
            f.attrs["checksums"] = checksums_json
            f.attrs["checksums_sha256"] = _digest(checksums_json.encode())
            f.create_group("params", track_order=True)
            group = f.create_group("optimizer", track_order=True)
            group.attrs.update(scalars)
            for key, array in arrays.items():
                f.create_dataset(key, data=array)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def load_checkpoint(path):
    """Read a checkpoint -> (params: dict of NumPy arrays, optimizer_state: dict, meta: dict).

    Raises CheckpointError, naming the file and what is wrong, for anything but an intact
    checkpoint of this format with finite weights (the module docstring lists the checks).
    """
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: no such checkpoint file")
    if not h5py.is_hdf5(path):
        raise CheckpointError(f"{path}: not an HDF5 file, so not a rawcap checkpoint")
    try:
        f = h5py.File(path, "r")
    except Exception as e:           # h5py raises OSError, KeyError, ... for damaged files
        raise CheckpointError(f"{path}: a damaged HDF5 file, truncated or corrupt ({e})") from None
    try:
        with f:
            return _read(f, path)
    except CheckpointError:
        raise
    except Exception as e:
        raise CheckpointError(f"{path}: a damaged rawcap checkpoint "
                              f"({type(e).__name__}: {e})") from None


def model_meta(meta, path):
    """The model config of a training checkpoint's meta; CheckpointError naming the file if meta
    lacks what caption and evaluate need (a checkpoint saved by something else than train)."""
    from .model import Config
    missing = [key for key in ("config", "vocab", "cache") if key not in meta]
    if missing:
        raise CheckpointError(f"{path}: not a checkpoint of rawcap.train (its metadata has no "
                              f"{', '.join(missing)})")
    try:
        return Config.from_dict(meta["config"])
    except (TypeError, KeyError) as e:
        raise CheckpointError(f"{path}: its model config is not one this rawcap reads ({e})") from None


def find_checkpoint(path):
    """A run directory means its best.h5 (else last.h5); a file is taken as it is."""
    path = Path(path)
    if path.is_dir():
        for name in ("best.h5", "last.h5"):
            if (path / name).is_file():
                return path / name
        raise CheckpointError(f"{path}: no best.h5 or last.h5 in this run directory")
    return path


def _read(f, path):
    version = f.attrs.get("rawcap_checkpoint")
    if version is None:
        raise CheckpointError(f"{path}: an HDF5 file but not a rawcap checkpoint "
                              f"(it has no 'rawcap_checkpoint' attribute)")
    if version != FORMAT:
        raise CheckpointError(f"{path}: checkpoint format {version}, but this rawcap reads "
                              f"format {FORMAT}" + (" (format 1 had no checksums; train again)"
                                                    if version == 1 else ""))
    checksums_json = _text(f.attrs.get("checksums", ""))
    if _digest(checksums_json.encode()) != _text(f.attrs.get("checksums_sha256", "")):
        raise CheckpointError(f"{path}: damaged: its table of checksums does not match its own checksum")
    checksums = json.loads(checksums_json)
    meta_json = _text(f.attrs.get("meta", ""))
    if _digest(meta_json.encode()) != checksums.get("meta"):
        raise CheckpointError(f"{path}: damaged: its metadata (meta) does not match its checksum")
    arrays = {f"params/{key}": a for key, a in _arrays(f["params"])}
    arrays.update((f"optimizer/{key}", a) for key, a in _arrays(f["optimizer"]))
    expected = set(checksums) - {"meta", "optimizer_scalars"}
    for key in sorted(expected - set(arrays)):
        raise CheckpointError(f"{path}: damaged: the array {key} is missing")
    for key in sorted(set(arrays) - expected):
        raise CheckpointError(f"{path}: damaged: an array {key} that it never saved")
    for key, array in arrays.items():
        if _array_digest(array) != checksums[key]:
            raise CheckpointError(f"{path}: damaged: the array {key} does not match its checksum")
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise CheckpointError(f"{path}: the array {key} holds NaN or infinite values; "
                                  f"a run that diverged, not weights to use")
    scalars = {key: value.item() for key, value in f["optimizer"].attrs.items()}
    if _scalars_digest(scalars) != checksums.get("optimizer_scalars"):
        raise CheckpointError(f"{path}: damaged: the optimizer's scalars do not match their checksum")
    params = {key[len("params/"):]: a for key, a in arrays.items() if key.startswith("params/")}
    optimizer_state = {key[len("optimizer/"):]: a for key, a in arrays.items()
                       if key.startswith("optimizer/")}
    optimizer_state.update(scalars)
    return params, optimizer_state, json.loads(meta_json)


def _text(value):
    return value.decode() if isinstance(value, bytes) else str(value)


def _digest(data):
    return hashlib.sha256(data).hexdigest()


def _array_digest(array):
    """SHA-256 of an array's dtype, shape and bytes (C order)."""
    array = np.ascontiguousarray(array)
    header = f"{array.dtype.str}{array.shape}".encode()
    return _digest(header + array.tobytes())


def _scalars_digest(scalars):
    return _digest(json.dumps(scalars, sort_keys=True).encode())


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
