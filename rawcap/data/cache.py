"""The preprocessed cache: one HDF5 file per (dataset, image size, vocabulary options).

`prepare` reads a Flickr8k-style directory, preprocesses every image once, builds the
vocabulary on the training split and encodes every caption; `stats` describes a cache. The
layout of the file is documented in `rawcap/data/__init__.py` and the README.
The file is written under a temporary name and renamed at the end, so an interrupted run
never leaves a cache that looks complete; a cache whose inputs and options have not changed
(same fingerprint) is reused.
"""
import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import h5py
import numpy as np
from tqdm import tqdm

from .flickr8k import SPLITS, read_corpus
from .images import ImageError, check_resize, load_image
from .vocab import END_ID, PAD_ID, UNK_ID, Vocabulary

FORMAT_VERSION = 1
DATASETS = ("images", "split", "captions", "caption_lengths", "caption_image", "filenames",
            "caption_text")


def vocab_path(cache_path):
    """Where the vocabulary JSON sits next to a cache: data/x.h5 -> data/x.vocab.json."""
    return Path(cache_path).with_suffix(".vocab.json")


def fingerprint(data_dir, corpus, options):
    """A hash of the caption and split files, every used image's size and mtime, and the options."""
    digest = hashlib.sha256(json.dumps({"version": FORMAT_VERSION, **options}, sort_keys=True).encode())
    for path in corpus.files:
        digest.update(Path(path).name.encode() + Path(path).read_bytes())
    for name, split in corpus.images:
        stat = (corpus.image_dir / name).stat()
        digest.update(f"{name}|{split}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


def cache_path_for(data_dir, size, min_count, max_length, skip_bad=False, root="data",
                   resize="crop"):
    """Where train keeps the cache of `data_dir` with these options:
    data/<folder>-<size>-<hash>.h5, the hash (8 hex digits) of the folder's full path and the
    options, so two datasets in folders of the same name, or one with other options, never
    share a file."""
    key = json.dumps({"data_dir": str(Path(data_dir).resolve()), "size": size,
                      "min_count": min_count, "max_length": max_length, "skip_bad": skip_bad,
                      **({"resize": resize} if resize != "crop" else {})},
                     sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:8]
    return (Path(root) / f"{Path(data_dir).resolve().name}-{size}-{digest}.h5").resolve()


def cache_fingerprint(path):
    """The fingerprint of the cache at `path` (its inputs and options); ValueError if it is not
    a complete cache."""
    with open_cache(path) as f:
        key = f.attrs.get("fingerprint")
    if key is None:
        raise ValueError(f"{path}: a cache without a fingerprint (incomplete; prepare it again)")
    return str(key)


def check_cache(path, vocab, image_size, fingerprint=None, checkpoint="the checkpoint",
                resize=None):
    """Refuse (ValueError) a cache that does not go with a checkpoint: another vocabulary or
    image size, (given `resize`) images resized another way, or (given `fingerprint`) other
    data than the run was trained on."""
    with open_cache(path) as f:
        words = json.loads(f.attrs["vocab"])["words"]
        size = int(f.attrs["image_size"])
        cached_resize = cache_resize(f.attrs)
        key, source = f.attrs.get("fingerprint"), f.attrs.get("data_dir", "?")
    if fingerprint is not None and key != fingerprint:
        raise ValueError(f"{path}: this cache now holds other data than {checkpoint} was "
                         f"trained on (it was rebuilt, now from {source}); prepare the run's "
                         f"data again, or name a cache with --cache")
    if size != image_size:
        raise ValueError(f"{path}: images of {size} pixels, but {checkpoint} was trained on "
                         f"{image_size}")
    if resize is not None and cached_resize != resize:
        raise ValueError(f"{path}: images resized by {cached_resize}, but {checkpoint} expects "
                         f"{resize} (prepare the data with --resize {resize})")
    if words != list(vocab):
        raise ValueError(f"{path}: its vocabulary ({len(words)} entries) is not the one "
                         f"{checkpoint} was trained with ({len(vocab)} entries)")


def cached_fingerprint(path):
    """The fingerprint stored in an existing, complete cache, or None."""
    try:
        with h5py.File(path, "r") as f:
            return f.attrs.get("fingerprint")
    except (OSError, ValueError):
        return None


def prepare(data_dir, out, size=128, min_count=5, max_length=20, layout="auto", skip_bad=False,
            split_seed=0, workers=None, chunk=64, progress=True, log=print, resize="crop"):
    """Build the cache `out` from `data_dir`; returns the path. Reuses an up-to-date cache.
    Images are preprocessed `chunk` at a time and written to the file as they come, so the
    dataset never has to fit in memory. resize: how images become size x size, "crop" or
    "squash" (rawcap.data.images)."""
    check_resize(resize)
    corpus = read_corpus(data_dir, layout, skip_bad, split_seed)
    for note in corpus.notes:
        log(f"note: {note}")
    options = dict(size=size, min_count=min_count, max_length=max_length, layout=corpus.layout,
                   skip_bad=skip_bad, split_seed=split_seed,
                   **({"resize": resize} if resize != "crop" else {}))   # crop: as before it existed
    key = fingerprint(data_dir, corpus, options)
    if Path(out).is_file() and cached_fingerprint(out) == key:
        log(f"{out} is up to date with {data_dir}: reusing it")
        if not vocab_path(out).is_file():
            with h5py.File(out, "r") as f:
                Vocabulary.from_json(f.attrs["vocab"]).save(vocab_path(out))
        return Path(out)

    Path(out).parent.mkdir(parents=True, exist_ok=True)
    for stale in remove_dead_temporaries(out):
        log(f"note: removed {stale}, left by a process that was killed while writing it")
    tmp = f"{out}.tmp-{os.getpid()}"
    try:
        with h5py.File(tmp, "w") as f:
            kept = _write_images(f, corpus, size, resize, skip_bad, workers, chunk, progress)
            vocab, n_captions, truncated = _write_captions(f, corpus, kept, min_count, max_length,
                                                           data_dir)
            f.attrs.update(dict(
                format_version=FORMAT_VERSION, vocab=vocab.to_json(), image_size=size, resize=resize,
                max_length=max_length, min_count=min_count, layout=corpus.layout,
                data_dir=str(Path(data_dir).resolve()), split_names=json.dumps(SPLITS),
                truncated=truncated, unk_tokens=int((f["captions"][:] == UNK_ID).sum()),
                skipped=json.dumps(dict(corpus.skipped)), notes=json.dumps(corpus.notes)))
            f.attrs["fingerprint"] = key            # last: only a complete file carries it
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    if truncated:
        log(f"note: {truncated} of {n_captions} captions were longer than {max_length} words "
            f"and were truncated")
    vocab.save(vocab_path(out))
    log(f"wrote {out}: {len(kept)} images, {n_captions} captions, vocabulary of {len(vocab)} "
        f"(and {vocab_path(out)})")
    return Path(out)


def remove_dead_temporaries(out):
    """Delete OUT.tmp-PID files whose process no longer runs (killed while writing) -> their paths.
    Those of live processes (another prepare of the same cache) are left alone."""
    removed = []
    for path in Path(out).parent.glob(f"{Path(out).name}.tmp-*"):
        pid = path.name.rsplit("-", 1)[1]
        if pid.isdigit() and not _running(int(pid)):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _running(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:         # another user's process
        return True
    return True


def _write_images(f, corpus, size, resize, skip_bad, workers, chunk, progress):
    """Preprocess every image in threads (Pillow decodes without the GIL), `chunk` at a time,
    into f["images"] and f["filenames"]; unreadable ones are left out (skip_bad) -> the kept
    (file name, split) entries, in the file's row order."""
    def load(name):
        try:
            return load_image(corpus.image_dir / name, size, resize)
        except ImageError as e:
            if not skip_bad:
                raise ImageError(f"{e} (--skip-bad skips and counts such images)") from None
            return e

    images = f.create_dataset("images", shape=(len(corpus.images), 3, size, size), dtype=np.uint8,
                              maxshape=(None, 3, size, size), chunks=(1, 3, size, size))
    kept = []
    with ThreadPoolExecutor(workers or os.cpu_count()) as pool, \
            tqdm(total=len(corpus.images), desc="images", unit="img", disable=not progress) as bar:
        for start in range(0, len(corpus.images), chunk):
            entries = corpus.images[start:start + chunk]
            for entry, result in zip(entries, pool.map(load, [name for name, _ in entries])):
                if isinstance(result, ImageError):
                    corpus.skipped["unreadable image"] += 1
                else:
                    images[len(kept)] = result
                    kept.append(entry)
            bar.update(len(entries))
    images.resize(len(kept), axis=0)
    f.create_dataset("filenames", data=[name for name, _ in kept], dtype=h5py.string_dtype())
    f.create_dataset("split", data=[SPLITS.index(split) for _, split in kept], dtype=np.uint8)
    return kept


def _write_captions(f, corpus, kept, min_count, max_length, data_dir):
    """The vocabulary (built on train) and every caption of the kept images, encoded, into f
    -> (vocab, number of captions, number truncated)."""
    train_captions = [tokens for name, split in kept if split == "train"
                      for tokens in corpus.captions[name]]
    if not train_captions:
        raise ValueError(f"{data_dir}: the training split has no captions")
    vocab = Vocabulary.build(train_captions, min_count)
    owned = [(i, tokens) for i, (name, _) in enumerate(kept) for tokens in corpus.captions[name]]
    rows, lengths, truncated = encode_rows(vocab, [tokens for _, tokens in owned], max_length)
    f.create_dataset("captions", data=rows)
    f.create_dataset("caption_lengths", data=lengths)
    f.create_dataset("caption_image", data=np.array([i for i, _ in owned], dtype=np.int32))
    f.create_dataset("caption_text", data=[" ".join(tokens) for _, tokens in owned],
                     dtype=h5py.string_dtype())
    return vocab, len(rows), truncated


def encode_rows(vocab, captions, max_length):
    """Token lists -> the cache's caption rows: (ids int32 [K, max_length + 2], <start> w_1 ..
    w_n <end> then <pad>; lengths int32 [K], n + 2; how many were cut to max_length words)."""
    rows = np.full((len(captions), max_length + 2), PAD_ID, dtype=np.int32)
    lengths, truncated = np.zeros(len(captions), dtype=np.int32), 0
    for k, tokens in enumerate(captions):
        ids, cut = vocab.encode(tokens, max_length)
        rows[k, :len(ids)], lengths[k] = ids, len(ids)
        truncated += cut
    return rows, lengths, truncated


def open_cache(path):
    """The cache at `path`, opened for reading; ValueError if it is missing or not a cache."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such file")
    try:
        file = h5py.File(path, "r")
    except OSError as error:
        raise ValueError(f"{path}: not an HDF5 file ({error})") from None
    missing = [name for name in DATASETS if name not in file]
    if missing:
        file.close()
        raise ValueError(f"{path}: not a rawcap cache, missing datasets {missing}")
    return file


def read_references(path, split=None):
    """Every reference caption of the cache at `path`, as the metrics take them
    -> {image row: [token list, ...]} (of one split only if `split` names it), file names[rows]."""
    with open_cache(path) as f:
        filenames = f["filenames"].asstr()[:]
        texts = f["caption_text"].asstr()[:]
        owner, image_split = f["caption_image"][:], f["split"][:]
    references = {}
    for text, row in zip(texts, owner):
        if split is None or image_split[row] == SPLITS.index(split):
            references.setdefault(int(row), []).append(text.split())
    return references, filenames


def cache_resize(attrs):
    """How a cache's images were resized: its `resize` attribute; caches written before it
    existed were all centre-cropped."""
    resize = attrs.get("resize", "crop")
    return resize if isinstance(resize, str) else resize.decode()


def stats(path):
    """A description of the cache at `path`, as lines of text."""
    with open_cache(path) as f:
        split = f["split"][:]
        owner = f["caption_image"][:]
        captions = f["captions"][:]
        words = np.array([len(t.split()) for t in f["caption_text"].asstr()[:]])
        attrs = dict(f.attrs)
        image_shape = f["images"].shape
    if "vocab" not in attrs:
        raise ValueError(f"{path}: not a rawcap cache (no vocabulary)")
    vocab = Vocabulary.from_json(attrs["vocab"])
    lines = [f"{path}: {attrs['layout']} layout from {attrs['data_dir']}, "
             f"images {image_shape[2]}x{image_shape[3]} ({cache_resize(attrs)})",
             f"{'split':<6} {'images':>7} {'captions':>9} {'tokens':>8} {'<unk>':>7}"]
    for s, name in enumerate(SPLITS):
        rows = captions[split[owner] == s]
        words_in = (rows > END_ID).sum()             # words: not <pad>, <start>, <end>
        unk = (rows == UNK_ID).sum()
        lines.append(f"{name:<6} {(split == s).sum():>7} {len(rows):>9} {words_in:>8} "
                     f"{unk:>7} ({100 * unk / max(words_in, 1):.2f}%)")
    p = np.percentile(words, [5, 25, 50, 75, 95]) if len(words) else [0] * 5
    lines += [f"vocabulary: {len(vocab)} entries (4 special + words seen >= {attrs['min_count']} "
              f"times in train)",
              f"caption length in words: p5 {p[0]:.0f}, p25 {p[1]:.0f}, median {p[2]:.0f}, "
              f"p75 {p[3]:.0f}, p95 {p[4]:.0f}, max {words.max(initial=0)}",
              f"truncated to {attrs['max_length']} words: {attrs['truncated']} captions",
              f"skipped: {attrs['skipped']}"]
    lines += [f"note: {note}" for note in json.loads(attrs.get("notes", "[]"))]
    if "distilled_from" in attrs:
        how = "joined" if attrs["distilled_keep_references"] else "replaced"
        lines.append(f"distilled: train references {how} by the captions of {attrs['distilled_from']}")
    return lines
