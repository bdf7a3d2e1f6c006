"""Sequence-level distillation: a cache whose train captions are a teacher's (rawcap.data.distill)."""
import json

import numpy as np
import pytest

from rawcap.data.__main__ import main
from rawcap.data.batches import CaptionBatches
from rawcap.data.cache import cache_fingerprint, check_cache, open_cache, prepare, read_references, stats
from rawcap.data.distill import distill
from rawcap.data.vocab import UNK_ID, Vocabulary

from data_fixtures import NAMES, SPLIT_OF, write_dataset

TRAIN = [name for name in NAMES if SPLIT_OF[name] == "train"]


def taught(name):
    return "a plain square" if TRAIN.index(name) % 2 else "one square"


@pytest.fixture
def cache(tmp_path):
    write_dataset(tmp_path / "data")
    return prepare(tmp_path / "data", tmp_path / "cache.h5", size=16, min_count=1,
                   progress=False, log=lambda line: None)


def teacher(tmp_path, captions=None):
    """A teacher's captions JSON: each train image is 'a plain square' or 'one square' unless given."""
    captions = captions or {name: taught(name) for name in TRAIN}
    path = tmp_path / "captions_train.json"
    path.write_text(json.dumps(captions))
    return path


def contents(path):
    with open_cache(path) as f:
        return {name: f[name][:] for name in f}, dict(f.attrs)


@pytest.mark.parametrize("keep", [False, True])
def test_train_captions_are_the_teachers_and_val_and_test_are_untouched(tmp_path, cache, keep):
    out = tmp_path / "distilled.h5"
    assert distill(cache, teacher(tmp_path), out, keep_references=keep) == (8, 8)
    old_refs, _ = read_references(cache)
    new_refs, names = read_references(out)
    for row, name in enumerate(names):
        if SPLIT_OF[name] == "train":
            teachers = [taught(name).split()]
            assert new_refs[row] == (old_refs[row] + teachers if keep else teachers)
        else:
            assert new_refs[row] == old_refs[row]
    old, old_attrs = contents(cache)
    new, attrs = contents(out)
    for name in ("images", "filenames", "split"):
        np.testing.assert_array_equal(new[name], old[name])
    vocab = Vocabulary.from_json(attrs["vocab"])
    train = np.isin(new["caption_image"], [NAMES.index(name) for name in TRAIN])
    assert train.sum() == (48 if keep else 8) and len(train) == (68 if keep else 28)
    for ids, length, text in zip(*(new[k][train] for k in ("captions", "caption_lengths", "caption_text"))):
        assert vocab.decode(ids) == text.decode().split() and not ids[length:].any()
    check_cache(out, vocab=vocab.words, image_size=16)          # a model of the old cache takes it
    assert attrs["fingerprint"] != old_attrs["fingerprint"]
    assert attrs["unk_tokens"] == (new["captions"] == UNK_ID).sum() and attrs["truncated"] == 0
    assert any(line.startswith("distilled: train references") for line in stats(out))


def test_the_student_sees_one_caption_per_train_image(tmp_path, cache):
    out = tmp_path / "distilled.h5"
    distill(cache, teacher(tmp_path), out)
    batches = list(CaptionBatches(out, "train", batch_size=3, per_image=True, prefetch=0).epoch(0))
    assert sum(len(b.images) for b in batches) == 8
    assert all(len(b.caption_image) == len(b.images) for b in batches)


def test_the_fingerprint_follows_the_teachers_captions(tmp_path, cache):
    distill(cache, teacher(tmp_path), tmp_path / "a.h5")
    distill(cache, teacher(tmp_path), tmp_path / "b.h5")
    distill(cache, teacher(tmp_path, {name: "a shape" for name in TRAIN}), tmp_path / "c.h5")
    keys = [cache_fingerprint(tmp_path / f"{x}.h5") for x in "abc"]
    assert keys[0] == keys[1] != keys[2]


@pytest.mark.parametrize("captions, message", [
    (lambda: {name: "a shape" for name in TRAIN[1:]}, "no caption for 1 of the 8 train images"),
    (lambda: {**{name: "a shape" for name in TRAIN}, NAMES[9]: "a shape"}, "is a val image"),
    (lambda: {**{name: "a shape" for name in TRAIN}, "other.jpg": "a shape"}, "not in the cache"),
    (lambda: {**{name: "a shape" for name in TRAIN}, TRAIN[0]: " "}, "must be a non-empty string"),
    (lambda: ["a shape"], "maps file names to captions"),
])
def test_a_teacher_file_that_does_not_fit_is_refused_by_name(tmp_path, cache, captions, message):
    path = tmp_path / "captions_train.json"
    path.write_text(json.dumps(captions()))
    with pytest.raises(ValueError, match=message) as error:
        distill(cache, path, tmp_path / "out.h5")
    assert str(path) in str(error.value)
    assert not (tmp_path / "out.h5").exists()


def test_the_command_line_writes_the_cache_and_says_so(tmp_path, cache, capsys):
    out = tmp_path / "distilled.h5"
    assert main(["distill", str(cache), str(teacher(tmp_path)), "--out", str(out),
                 "--keep-references"]) == 0
    assert "8 teacher captions for 8 train images beside their references" in capsys.readouterr().out
    (tmp_path / "bad.json").write_text("{not json")
    assert main(["distill", str(cache), str(tmp_path / "bad.json"), "--out", str(out)]) == 2
    assert "bad.json: not a captions JSON" in capsys.readouterr().err


def test_a_teacher_caption_longer_than_max_length_is_cut_and_counted(tmp_path, cache):
    long = " ".join(["square"] * 25)
    distill(cache, teacher(tmp_path, {name: long if name == TRAIN[0] else "a square" for name in TRAIN}),
            tmp_path / "out.h5")
    new, attrs = contents(tmp_path / "out.h5")
    first = new["caption_image"] == NAMES.index(TRAIN[0])
    assert attrs["truncated"] == 1 and new["caption_lengths"][first].tolist() == [22]
    assert new["caption_text"][first][0].decode() == long          # the references keep every word
