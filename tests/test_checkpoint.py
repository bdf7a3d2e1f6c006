"""Checkpoints: round trips of params, optimizer state and meta; atomic writes; bad files."""
import os
import re

import h5py
import numpy as np
import pytest

from rawcap import checkpoint
from rawcap.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from rawcap.optim import Adam


def contents(seed=0):
    """Params in both float dtypes, an Adam state after two steps, and a meta dict like train's."""
    rng = np.random.default_rng(seed)
    params = {"conv1_w": rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
              "out_b": rng.standard_normal(7), "att_v": rng.standard_normal(5).astype(np.float32)}
    optimizer = Adam(params)
    for _ in range(2):
        grads = {k: rng.standard_normal(p.shape).astype(p.dtype) for k, p in params.items()}
        optimizer.step(params, grads, 0.1)
    meta = {"step": 2, "epoch": 0, "best_bleu4": -1.0, "config": {"channels": [16, 32], "f_beta": True},
            "vocab": ["<pad>", "<start>", "a", "dog", "é"], "dropout_rng": rng.bit_generator.state}
    return params, optimizer, meta


def test_round_trip(tmp_path):
    params, optimizer, meta = contents()
    state = dict(optimizer.state_dict(), lr=0.25)
    save_checkpoint(tmp_path / "c.h5", params, state, meta)
    got_params, got_state, got_meta = load_checkpoint(tmp_path / "c.h5")

    assert list(got_params) == list(params)                 # in the order saved
    for name, p in params.items():
        assert got_params[name].dtype == p.dtype
        np.testing.assert_array_equal(got_params[name], p)
    assert got_state.keys() == state.keys()
    assert type(got_state["t"]) is int and got_state["t"] == 2
    assert type(got_state["lr"]) is float and got_state["lr"] == 0.25
    for key, value in state.items():
        np.testing.assert_array_equal(got_state[key], value)
    assert got_meta == meta


def test_resumed_optimizer_continues_identically(tmp_path):
    params, optimizer, meta = contents()
    save_checkpoint(tmp_path / "c.h5", params, optimizer.state_dict(), meta)
    got_params, got_state, _ = load_checkpoint(tmp_path / "c.h5")
    resumed = Adam(got_params)
    resumed.load_state_dict(got_state)
    grads = {k: np.full_like(p, 0.3) for k, p in params.items()}
    optimizer.step(params, grads, 0.1)
    resumed.step(got_params, grads, 0.1)
    assert all(np.array_equal(got_params[k], params[k]) for k in params)


def test_meta_restores_a_generator(tmp_path):
    rng = np.random.default_rng(42)
    rng.random(10)
    save_checkpoint(tmp_path / "c.h5", {}, {}, {"rng": rng.bit_generator.state})
    want = rng.random(5)
    restored = np.random.default_rng()
    restored.bit_generator.state = load_checkpoint(tmp_path / "c.h5")[2]["rng"]
    np.testing.assert_array_equal(restored.random(5), want)


def test_meta_numpy_scalars_become_numbers(tmp_path):
    save_checkpoint(tmp_path / "c.h5", {}, {}, {"step": np.int64(7), "score": np.float32(0.5)})
    meta = load_checkpoint(tmp_path / "c.h5")[2]
    assert meta == {"step": 7, "score": 0.5} and type(meta["step"]) is int


def test_bad_meta_or_state_writes_nothing(tmp_path):
    path = tmp_path / "c.h5"
    with pytest.raises(ValueError, match="checkpoint meta is not JSON-serialisable: .*PosixPath"):
        save_checkpoint(path, {}, {}, {"cache": tmp_path})
    with pytest.raises(ValueError, match=re.escape("optimizer_state['kind'] must be an array, int or float")):
        save_checkpoint(path, {}, {"kind": "adam"}, {})
    assert os.listdir(tmp_path) == []


def test_overwrite_replaces_the_old_checkpoint(tmp_path):
    path = tmp_path / "c.h5"
    save_checkpoint(path, {"w": np.zeros(2)}, {}, {"step": 1})
    save_checkpoint(path, {"w": np.ones(2)}, {}, {"step": 2})
    params, _, meta = load_checkpoint(path)
    assert meta["step"] == 2 and params["w"].tolist() == [1.0, 1.0]
    assert os.listdir(tmp_path) == ["c.h5"]


@pytest.mark.parametrize("interruption", [OSError("disk full"), KeyboardInterrupt()], ids=["error", "ctrl-c"])
def test_interrupted_write_keeps_the_old_checkpoint(tmp_path, monkeypatch, interruption):
    path = tmp_path / "c.h5"
    params, optimizer, meta = contents()
    save_checkpoint(path, params, optimizer.state_dict(), meta)
    before = path.read_bytes()

    create_dataset = h5py.Group.create_dataset
    written = []

    def fail_on_the_third(self, name, **options):
        written.append(name)
        if len(written) == 3:
            raise interruption
        return create_dataset(self, name, **options)

    monkeypatch.setattr(h5py.Group, "create_dataset", fail_on_the_third)
    with pytest.raises(type(interruption)):
        save_checkpoint(path, {k: p + 1 for k, p in params.items()}, optimizer.state_dict(),
                        dict(meta, step=3))
    assert len(written) == 3                    # it failed midway through the parameters
    assert os.listdir(tmp_path) == ["c.h5"]     # no temporary file left behind
    assert path.read_bytes() == before
    monkeypatch.undo()
    assert load_checkpoint(path)[2]["step"] == 2


def raises_about(path, message):
    """pytest.raises for a CheckpointError whose message is "<path>: <message>" (and maybe more)."""
    return pytest.raises(CheckpointError, match="^" + re.escape(f"{path}: {message}"))


def test_missing_file(tmp_path):
    with raises_about(tmp_path / "none.h5", "no such checkpoint file"):
        load_checkpoint(tmp_path / "none.h5")


def test_truncated_file(tmp_path):
    path = tmp_path / "c.h5"
    params, optimizer, meta = contents()
    save_checkpoint(path, params, optimizer.state_dict(), meta)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with raises_about(path, "a damaged HDF5 file, truncated or corrupt (") as error:
        load_checkpoint(path)
    assert "truncated file" in str(error.value)          # HDF5's own words, kept in the message


def test_not_an_hdf5_file(tmp_path):
    path = tmp_path / "c.h5"
    path.write_text("step,loss\n1,2.5\n")
    with raises_about(path, "not an HDF5 file, so not a rawcap checkpoint"):
        load_checkpoint(path)


def test_foreign_hdf5_file(tmp_path):
    path = tmp_path / "c.h5"
    with h5py.File(path, "w") as f:
        f["images"] = np.zeros((2, 3))
    message = "an HDF5 file but not a rawcap checkpoint (it has no 'rawcap_checkpoint' attribute)"
    with raises_about(path, message):
        load_checkpoint(path)


def test_newer_format(tmp_path):
    path = tmp_path / "c.h5"
    save_checkpoint(path, {}, {}, {})
    with h5py.File(path, "a") as f:
        f.attrs["rawcap_checkpoint"] = checkpoint.FORMAT + 1
    with raises_about(path, "checkpoint format 3, but this rawcap reads format 2"):
        load_checkpoint(path)


def test_damaged_checkpoint(tmp_path):
    path = tmp_path / "c.h5"
    save_checkpoint(path, {}, {}, {})
    with h5py.File(path, "a") as f:
        del f["params"]
    with raises_about(path, "a damaged rawcap checkpoint ("):
        load_checkpoint(path)


def test_checkpoint_error_is_a_value_error():
    assert issubclass(CheckpointError, ValueError)


# Checksums: every part of the file is verified on load -------------------------------------------

def test_random_damage_is_refused_or_harmless(tmp_path):
    """Random bytes written at 60 offsets spread over the file, one copy each: every load either
    refuses with an error naming the file, or returns exactly what was saved (the bytes hit
    unused space in the HDF5 file). Before checksums, damage inside an array loaded silently."""
    params, optimizer, meta = contents()
    state = optimizer.state_dict()
    original = tmp_path / "c.h5"
    save_checkpoint(original, params, state, meta)
    data = original.read_bytes()
    rng = np.random.default_rng(0)
    refused = 0
    for k, offset in enumerate(np.linspace(0, len(data) - 8, 60).astype(int)):
        damaged = bytearray(data)
        damaged[offset:offset + 8] = rng.integers(0, 256, 8, dtype=np.uint8).tobytes()
        if bytes(damaged) == data:
            continue
        path = tmp_path / f"damaged-{k}.h5"
        path.write_bytes(bytes(damaged))
        try:
            got_params, got_state, got_meta = load_checkpoint(path)
        except CheckpointError as e:
            assert str(e).startswith(f"{path}: "), e
            refused += 1
            continue
        assert got_meta == meta, offset
        assert all(np.array_equal(got_params[n], p) for n, p in params.items()), offset
        assert all(np.array_equal(got_state[key], v) for key, v in state.items()), offset
    assert refused >= 20            # 32 of 60 with h5py 3: the arrays and metadata are most of it


def test_a_changed_array_is_named(tmp_path):
    params, optimizer, meta = contents()
    path = tmp_path / "c.h5"
    save_checkpoint(path, params, optimizer.state_dict(), meta)
    with h5py.File(path, "a") as f:
        f["params/conv1_w"][0, 0, 0, 0] += 1
    with raises_about(path, "damaged: the array params/conv1_w does not match its checksum"):
        load_checkpoint(path)


def test_changed_metadata_is_refused(tmp_path):
    params, optimizer, meta = contents()
    path = tmp_path / "c.h5"
    save_checkpoint(path, params, optimizer.state_dict(), meta)
    with h5py.File(path, "a") as f:
        f.attrs["meta"] = f.attrs["meta"].replace('"epoch": 0', '"epoch": 7')
    with raises_about(path, "damaged: its metadata (meta) does not match its checksum"):
        load_checkpoint(path)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_weights_are_refused(tmp_path, bad):
    params, optimizer, meta = contents()
    params["out_b"][3] = bad
    path = tmp_path / "c.h5"
    save_checkpoint(path, params, optimizer.state_dict(), meta)
    with raises_about(path, "the array params/out_b holds NaN or infinite values"):
        load_checkpoint(path)


def test_format_1_is_refused_with_the_reason(tmp_path):
    path = tmp_path / "c.h5"
    with h5py.File(path, "w") as f:
        f.attrs["rawcap_checkpoint"] = 1
        f.attrs["meta"] = "{}"
    with raises_about(path, "checkpoint format 1, but this rawcap reads format 2 (format 1 had no checksums"):
        load_checkpoint(path)


@pytest.mark.parametrize("command", ["evaluate", "caption"])
def test_a_checkpoint_not_made_by_train_is_refused_by_name(tmp_path, capsys, command):
    from rawcap import caption, evaluate
    params, optimizer, meta = contents()
    path = tmp_path / "c.h5"
    save_checkpoint(path, params, optimizer.state_dict(), {"step": 2})
    (tmp_path / "photo.png").write_bytes(b"")
    argv = [str(path)] + ([str(tmp_path / "photo.png")] if command == "caption" else [])
    assert {"evaluate": evaluate.main, "caption": caption.main}[command](argv) == 2
    assert (f"error: {path}: not a checkpoint of rawcap.train (its metadata has no config, vocab, "
            f"cache)") in capsys.readouterr().err
