"""The HDF5 cache: prepare's layout and contents, reuse and rebuild, interrupted writes, bad files,
stats, and the command line."""
import json
import os
import subprocess
import sys
import re

import h5py
import numpy as np
import pytest

from rawcap.data import cache
from rawcap.data.__main__ import main
from rawcap.data.cache import open_cache, prepare, stats, vocab_path
from rawcap.data.flickr8k import SPLITS
from rawcap.data.images import ImageError
from rawcap.data.vocab import UNK_ID, Vocabulary

from data_fixtures import COLOUR_OF, COLOURS, NAMES, SPLIT_OF, expected_tokens, write_dataset

SIZE = 16


def build(tmp_path, log=None, **options):
    """Write the fixture dataset (once) and prepare tmp_path/out/cache.h5 from it -> its path."""
    if not (tmp_path / "data").exists():
        write_dataset(tmp_path / "data")
    options = {"size": SIZE, "min_count": 1, **options}
    return prepare(tmp_path / "data", tmp_path / "out" / "cache.h5", progress=False,
                   log=log if log is not None else (lambda line: None), **options)


def test_prepare_writes_every_dataset_with_its_shape_and_dtype(tmp_path):
    path = build(tmp_path, max_length=20)
    with open_cache(path) as f:
        shapes = {name: (f[name].shape, f[name].dtype) for name in f}
        attrs = dict(f.attrs)
        vocab = Vocabulary.from_json(attrs["vocab"])
        assert list(f["filenames"].asstr()[:]) == NAMES
        assert [SPLITS[s] for s in f["split"][:]] == [SPLIT_OF[name] for name in NAMES]
    strings = h5py.string_dtype()
    assert shapes == {"images": ((12, 3, SIZE, SIZE), np.uint8), "filenames": ((12,), strings),
                      "split": ((12,), np.uint8), "captions": ((60, 22), np.int32),
                      "caption_lengths": ((60,), np.int32), "caption_image": ((60,), np.int32),
                      "caption_text": ((60,), strings)}
    assert json.loads(attrs["split_names"]) == ["train", "val", "test"]
    assert (attrs["image_size"], attrs["max_length"], attrs["min_count"]) == (SIZE, 20, 1)
    assert attrs["layout"] == "flickr8k" and json.loads(attrs["skipped"]) == {}
    assert Vocabulary.load(vocab_path(path)).words == vocab.words
    assert sorted(os.listdir(path.parent)) == ["cache.h5", "cache.vocab.json"]   # no .tmp left


def test_cached_captions_decode_to_their_text_and_point_at_their_image(tmp_path):
    with open_cache(build(tmp_path, max_length=20)) as f:
        images, captions, owner = f["images"][:], f["captions"][:], f["caption_image"][:]
        lengths, texts = f["caption_lengths"][:], list(f["caption_text"].asstr()[:])
        vocab = Vocabulary.from_json(f.attrs["vocab"])
        unk_tokens = f.attrs["unk_tokens"]
    assert texts == [" ".join(t) for tokens in expected_tokens().values() for t in tokens]
    decoded = 0
    for k, text in enumerate(texts):
        tokens = text.split()
        assert lengths[k] == len(tokens) + 2 and not captions[k, lengths[k]:].any()  # then <pad>
        if all(word in vocab.ids for word in tokens):
            assert vocab.decode(captions[k]) == tokens
            decoded += 1
        colour = next(word for word in tokens if word in COLOURS)
        assert colour == COLOUR_OF[NAMES[owner[k]]]
        pixels = images[owner[k]].reshape(3, -1).mean(axis=1)
        assert np.abs(pixels - COLOURS[colour]).max() < 8            # distinct solid colours
    assert decoded == 40            # train's; val and test colours are not in train: <unk>
    assert unk_tokens == (captions == UNK_ID).sum() == 20


def test_long_captions_are_truncated_and_counted(tmp_path):
    with open_cache(build(tmp_path, max_length=3)) as f:
        captions, lengths = f["captions"][:], f["caption_lengths"][:]
        texts = list(f["caption_text"].asstr()[:])
        vocab = Vocabulary.from_json(f.attrs["vocab"])
        truncated = f.attrs["truncated"]
    assert captions.shape == (60, 5) and lengths.max() == 5
    assert truncated == sum(len(text.split()) > 3 for text in texts) > 0
    assert vocab.decode(captions[1]) == texts[1].split()[:3]     # the text keeps all 9 words


def test_an_unchanged_cache_is_reused(tmp_path):
    path = build(tmp_path)
    before = (path.stat().st_mtime_ns, path.stat().st_ino)
    messages = []
    assert build(tmp_path, log=messages.append) == path
    assert (path.stat().st_mtime_ns, path.stat().st_ino) == before
    assert "reusing" in messages[-1]


def edit_caption_file(data):
    token_file = data / "Flickr8k.token.txt"
    token_file.write_text(token_file.read_text().replace("A red square.", "A dark red square."))


def touch(path):
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))


@pytest.mark.parametrize("change, options", [
    (None, {"size": 24}),
    (None, {"min_count": 2}),
    (None, {"max_length": 4}),
    (edit_caption_file, {}),
    (lambda data: touch(data / "Images" / "img05.jpg"), {}),
], ids=["size", "min_count", "max_length", "caption-file-edited", "image-touched"])
def test_a_changed_option_or_input_rebuilds(tmp_path, change, options):
    path = build(tmp_path)
    before = path.stat().st_ino
    if change:
        change(tmp_path / "data")
    messages = []
    build(tmp_path, log=messages.append, **options)
    assert messages[-1].startswith(f"wrote {path}") and path.stat().st_ino != before
    with open_cache(path) as f:
        attrs = {"size": f.attrs["image_size"], "min_count": f.attrs["min_count"],
                 "max_length": f.attrs["max_length"]}
    assert options.items() <= attrs.items()


def test_the_caption_file_is_fingerprinted_by_content_not_mtime(tmp_path):
    build(tmp_path)
    touch(tmp_path / "data" / "Flickr8k.token.txt")
    messages = []
    build(tmp_path, log=messages.append)
    assert "reusing" in messages[-1]


def test_reusing_a_cache_restores_its_vocab_json(tmp_path):
    path = build(tmp_path)
    vocab_path(path).unlink()
    build(tmp_path)
    assert vocab_path(path).is_file()


class InterruptedFile(h5py.File):
    """An h5py.File whose writes are interrupted (Ctrl-C) after the first datasets."""

    def create_dataset(self, name, *args, **kwargs):
        if name == "captions":
            raise KeyboardInterrupt
        return super().create_dataset(name, *args, **kwargs)


def test_an_interrupted_write_leaves_no_cache_and_no_temporary_file(tmp_path, monkeypatch):
    monkeypatch.setattr(cache.h5py, "File", InterruptedFile)
    with pytest.raises(KeyboardInterrupt):
        build(tmp_path)
    assert os.listdir(tmp_path / "out") == []


def test_an_interrupted_rebuild_keeps_the_old_cache(tmp_path, monkeypatch):
    path = build(tmp_path)
    before = path.read_bytes()
    monkeypatch.setattr(cache.h5py, "File", InterruptedFile)
    with pytest.raises(KeyboardInterrupt):
        build(tmp_path, size=24)
    assert path.read_bytes() == before
    assert sorted(os.listdir(path.parent)) == ["cache.h5", "cache.vocab.json"]


def test_prepare_removes_the_temporary_file_of_a_killed_prepare(tmp_path):
    """kill -9 runs no cleanup: the next prepare removes OUT.tmp-PID of a process that is gone,
    and leaves the one of a process still writing."""
    out = tmp_path / "out"
    out.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    (out / f"cache.h5.tmp-{dead}").write_bytes(b"half a cache")
    (out / f"cache.h5.tmp-{os.getppid()}").write_bytes(b"another prepare, still running")
    build(tmp_path)
    assert sorted(os.listdir(out)) == ["cache.h5", f"cache.h5.tmp-{os.getppid()}", "cache.vocab.json"]


def test_a_truncated_jpeg_stops_prepare_naming_the_file(tmp_path):
    write_dataset(tmp_path / "data", truncated=["img06.jpg"])
    bad = tmp_path / "data" / "Images" / "img06.jpg"
    with pytest.raises(ImageError, match=re.escape(str(bad))):
        build(tmp_path)
    assert list(tmp_path.glob("out/*")) == []


@pytest.mark.parametrize("faults, reason", [
    ({"truncated": ["img06.jpg"]}, "unreadable image"),
    ({"missing": ["img06.jpg"]}, "missing image file"),
])
def test_skip_bad_leaves_the_image_out_and_counts_it_in_the_cache(tmp_path, faults, reason):
    write_dataset(tmp_path / "data", **faults)
    with open_cache(build(tmp_path, skip_bad=True)) as f:
        names = list(f["filenames"].asstr()[:])
        owner, skipped = f["caption_image"][:], json.loads(f.attrs["skipped"])
    assert names == [name for name in NAMES if name != "img06.jpg"]
    assert len(owner) == 55 and set(owner) == set(range(11))
    assert sum(skipped.values()) == 1 and reason in next(iter(skipped))


def test_open_cache_rejects_files_that_are_not_caches(tmp_path):
    text_file = tmp_path / "notes.h5"
    text_file.write_text("not an HDF5 file")
    with pytest.raises(ValueError, match=re.escape(f"{text_file}: ") + "not an HDF5 file"):
        open_cache(text_file)
    partial = tmp_path / "partial.h5"
    with h5py.File(partial, "w") as f:
        f.create_dataset("images", data=np.zeros((1, 3, 4, 4), np.uint8))
    with pytest.raises(ValueError, match=re.escape(f"{partial}: ") + "not a rawcap cache"):
        open_cache(partial)
    with pytest.raises(ValueError, match=re.escape(str(tmp_path / "absent.h5"))):
        open_cache(tmp_path / "absent.h5")


def test_stats_reports_splits_vocabulary_lengths_and_unk(tmp_path):
    path = build(tmp_path)
    lines = stats(path)
    train_words = sum(len(tokens) for name, captions in expected_tokens().items()
                      if SPLIT_OF[name] == "train" for tokens in captions)
    text = "\n".join(lines)
    assert re.search(rf"^train +8 +40 +{train_words} +0 ", text, re.MULTILINE)
    assert re.search(r"^val +2 +10 +\d+ +10 \(", text, re.MULTILINE)   # an unseen colour each
    assert re.search(r"^test +2 +10 +\d+ +10 \(", text, re.MULTILINE)
    with open_cache(path) as f:
        size = len(Vocabulary.from_json(f.attrs["vocab"]))
        counts = [len(t.split()) for t in f["caption_text"].asstr()[:]]
    assert f"vocabulary: {size} entries" in text
    p5, p50, p95 = np.percentile(counts, [5, 50, 95])
    assert f"p5 {p5:.0f}," in text and f"median {p50:.0f}," in text
    assert f"p95 {p95:.0f}, max {max(counts)}" in text


def test_cli_prepare_and_stats_succeed(tmp_path, capsys):
    write_dataset(tmp_path / "data", "kaggle", split_files=False)
    out = tmp_path / "cache.h5"
    assert main(["prepare", "--data-dir", str(tmp_path / "data"), "--out", str(out),
                 "--size", "16", "--min-count", "1", "--workers", "2"]) == 0
    assert "seeded split" in capsys.readouterr().out and out.is_file()
    assert main(["stats", str(out)]) == 0
    assert "vocabulary:" in capsys.readouterr().out


@pytest.mark.parametrize("command", [["prepare", "--data-dir", "{dir}", "--out", "{dir}/c.h5"],
                                     ["stats", "{dir}/c.h5"]], ids=["prepare", "stats"])
def test_cli_reports_a_bad_path_with_status_2(tmp_path, capsys, command):
    missing = tmp_path / "no-such-dir"
    with pytest.raises(SystemExit) as stop:         # a usage error, before any work
        main([arg.format(dir=missing) for arg in command])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "error: argument" in err and str(missing) in err


def test_cli_reports_a_missing_caption_file_of_an_explicit_layout(tmp_path, capsys):
    write_dataset(tmp_path / "data", "karpathy")
    assert main(["prepare", "--data-dir", str(tmp_path / "data"), "--out",
                 str(tmp_path / "c.h5"), "--layout", "kaggle"]) == 2
    assert capsys.readouterr().err.startswith("error: ")
