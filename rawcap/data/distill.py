"""Sequence-level distillation (Kim & Rush 2016): a cache whose training captions are a teacher's.

    python -m rawcap.evaluate TEACHER.h5 [MORE.h5 ...] --split train --beam 5 --out teacher/
    python -m rawcap.data distill data/flickr8k.h5 teacher/captions_train.json --out data/distilled.h5
    python -m rawcap.train --cache data/distilled.h5 ...          # the student

A student trained with cross-entropy on the teacher's beam-search captions learns the one
caption the teacher would write for each image, instead of spreading its probability over
five people's. The new cache is a copy of the old one (images, vocabulary, val and test
untouched) in which each train image's reference captions are replaced by the teacher's
caption, or, with keep_references, joined by it. Its fingerprint is a hash of the old one's
and of the teacher's captions, so a checkpoint knows which it trained on.
"""
import hashlib
import json
import os
from pathlib import Path

import h5py
import numpy as np

from .cache import encode_rows, open_cache, vocab_path
from .flickr8k import SPLITS
from .vocab import UNK_ID, Vocabulary


def read_teacher_captions(path):
    """A captions JSON written by rawcap.evaluate -> {file name: caption text}; ValueError
    naming the file and entry if it is not one."""
    try:
        with open(path, encoding="utf-8") as f:
            captions = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: not a captions JSON ({error})") from None
    if not isinstance(captions, dict):
        raise ValueError(f"{path}: a captions JSON maps file names to captions, got a "
                         f"{type(captions).__name__}")
    for name, text in captions.items():
        if not isinstance(text, str) or not text.split():
            raise ValueError(f"{path}: the caption of {name!r} must be a non-empty string, "
                             f"got {text!r}")
    return captions


def distill(cache, teacher_captions, out, keep_references=False):
    """Write `out`: the cache `cache` with each train image's captions replaced by (or, with
    keep_references, joined by) the teacher's caption of it -> (images, captions added).

    Every train image must have a teacher caption, and every teacher caption must name a train
    image of the cache (ValueError otherwise: a student of half the images is a mistake).
    """
    captions = read_teacher_captions(teacher_captions)
    with open_cache(cache) as f:
        attrs = dict(f.attrs)
        filenames = f["filenames"].asstr()[:]
        split = f["split"][:]
        rows, lengths = f["captions"][:], f["caption_lengths"][:]
        owner, text = f["caption_image"][:], f["caption_text"].asstr()[:]
    vocab, max_length = Vocabulary.from_json(attrs["vocab"]), int(attrs["max_length"])
    train = np.flatnonzero(split == SPLITS.index("train"))
    row_of = {name: i for i, name in enumerate(filenames)}
    for name in captions:
        if name not in row_of or split[row_of[name]] != SPLITS.index("train"):
            where = "not in the cache" if name not in row_of else f"a {SPLITS[split[row_of[name]]]} image"
            raise ValueError(f"{teacher_captions}: {name!r} is {where}; distillation rewrites "
                             f"train captions only (decode with --split train)")
    missing = [filenames[i] for i in train if filenames[i] not in captions]
    if missing:
        raise ValueError(f"{teacher_captions}: no caption for {len(missing)} of the "
                         f"{len(train)} train images of {cache} (first {missing[0]!r})")

    kept = np.isin(owner, train, invert=True) | keep_references
    taught = [captions[filenames[i]].split() for i in train]
    new_rows, new_lengths, _ = encode_rows(vocab, taught, max_length)
    rows, lengths = np.concatenate([rows[kept], new_rows]), np.concatenate([lengths[kept], new_lengths])
    owner = np.concatenate([owner[kept], train]).astype(np.int32)
    text = [*text[kept], *(" ".join(tokens) for tokens in taught)]
    digest = hashlib.sha256(str(attrs["fingerprint"]).encode())
    digest.update(json.dumps({"keep_references": bool(keep_references)}).encode())
    digest.update(Path(teacher_captions).read_bytes())

    tmp = f"{out}.tmp-{os.getpid()}"
    try:
        with open_cache(cache) as source, h5py.File(tmp, "w") as f:
            for name in ("images", "filenames", "split"):
                source.copy(name, f)
            f.create_dataset("captions", data=rows)
            f.create_dataset("caption_lengths", data=lengths)
            f.create_dataset("caption_image", data=owner)
            f.create_dataset("caption_text", data=text, dtype=h5py.string_dtype())
            attrs.update(distilled_from=str(Path(teacher_captions).resolve()),
                         distilled_keep_references=bool(keep_references),
                         unk_tokens=int((rows == UNK_ID).sum()),
                         truncated=sum(len(t.split()) > max_length for t in text))
            attrs.pop("fingerprint")
            f.attrs.update(attrs)
            f.attrs["fingerprint"] = digest.hexdigest()     # last: only a complete file carries it
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    vocab.save(vocab_path(out))
    return len(train), len(taught)
