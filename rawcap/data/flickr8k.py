"""Readers for the caption layouts people have, detected from the data directory.

    flickr8k   Flickr8k.token.txt ("IMAGE.jpg#N<TAB>caption") + Flickr_8k.{train,dev,test}Images.txt
    kaggle     captions.txt (csv "image,caption"); split files optional, else a seeded split
    karpathy   Karpathy's dataset_*.json of any dataset: dataset_flickr8k.json, dataset_flickr30k.json,
               dataset_coco.json (images[*].filename, split, sentences[*].tokens / raw, and COCO's
               filepath: the image is then FILEPATH/FILENAME, e.g. val2014/COCO_val2014_...jpg)
    tsv        your own photos: captions.tsv (or any FILE.tsv given as the data "directory"), one
               line per caption, "IMAGE_PATH<TAB>caption" or "IMAGE_PATH<TAB>caption<TAB>split",
               paths relative to the file's folder; without a split column, a seeded split.
               Empty lines and lines starting with # are skipped.

Images live in Images/, Flicker8k_Dataset/, Flickr8k_Dataset/, images/ or flickr30k-images/
(karpathy: else in the directory itself, e.g. COCO's train2014/ and val2014/; tsv: where the
paths say). The official dev split is called "val" here (and Karpathy's "restval" is train).
A bad entry (malformed line, bytes that are not UTF-8, a caption listed twice, an empty caption,
an image with no captions or no file) raises a DataError naming the file and line, unless
`skip_bad` is set: then it is skipped and counted, never dropped silently. Captions of images
that are in no split (Flickr8k's token file has one bogus id, `2258277193_586949ec62.jpg.1`)
are not used, and are counted and reported.
"""
import csv
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .tokenize import tokenize

SPLITS = ("train", "val", "test")
TOKEN_FILE = "Flickr8k.token.txt"
SPLIT_FILES = {"train": "Flickr_8k.trainImages.txt", "val": "Flickr_8k.devImages.txt",
               "test": "Flickr_8k.testImages.txt"}
KAGGLE_FILE = "captions.txt"
KARPATHY_FILE = "dataset_*.json"
TSV_FILE = "captions.tsv"
LAYOUTS = {"flickr8k": TOKEN_FILE, "kaggle": KAGGLE_FILE, "karpathy": KARPATHY_FILE, "tsv": TSV_FILE}
IMAGE_DIRS = ("Images", "Flicker8k_Dataset", "Flickr8k_Dataset", "images", "flickr30k-images")
SPLIT_ALIASES = {"restval": "train", "dev": "val"}


class DataError(ValueError):
    """Bad input data; the message starts with the file (and line) at fault."""


@dataclass
class Corpus:
    """What a reader found: the images of each split and their tokenized captions."""
    layout: str
    image_dir: Path
    images: list = field(default_factory=list)      # [(file name, split)], train then val then test
    captions: dict = field(default_factory=dict)    # file name -> [token list, ...]
    skipped: Counter = field(default_factory=Counter)   # reason -> how many were skipped
    notes: list = field(default_factory=list)       # what the user should be told
    files: list = field(default_factory=list)       # the caption and split files read
    repeats: list = field(default_factory=list)     # [(file name, where)]: lines seen twice

    def bad(self, where, reason, skip_bad, detail=""):
        """A bad entry at `where` (file:line): raise, or (with skip_bad) count it under `reason`."""
        if not skip_bad:
            detail = f": {detail}" if detail else ""
            raise DataError(f"{where}: {reason}{detail} (--skip-bad skips and counts such entries)")
        self.skipped[reason] += 1


def caption_file(data_dir, layout):
    """The caption file of `layout` in `data_dir`, or None. Karpathy's is any dataset_*.json,
    but only one may be there."""
    data_dir = Path(data_dir)
    if layout != "karpathy":
        return data_dir / LAYOUTS[layout] if (data_dir / LAYOUTS[layout]).is_file() else None
    found = sorted(data_dir.glob(KARPATHY_FILE))
    if len(found) > 1:
        raise DataError(f"{data_dir}: several Karpathy files ({', '.join(p.name for p in found)}); "
                        f"keep one, or give each dataset its own folder")
    return found[0] if found else None


def detect_layout(data_dir):
    """The layout of `data_dir`: the first of flickr8k, kaggle, karpathy, tsv whose caption file exists."""
    for layout in LAYOUTS:
        if caption_file(data_dir, layout):
            return layout
    raise DataError(f"{data_dir}: no caption file found (looked for {', '.join(LAYOUTS.values())})")


def find_image_dir(data_dir, layout="flickr8k"):
    for name in IMAGE_DIRS:
        if (Path(data_dir) / name).is_dir():
            return Path(data_dir) / name
    if layout in ("karpathy", "tsv"):       # COCO's train2014/, val2014/; your own paths
        return Path(data_dir)
    raise DataError(f"{data_dir}: no image folder found (looked for {', '.join(IMAGE_DIRS)})")


def read_corpus(data_dir, layout="auto", skip_bad=False, split_seed=0):
    """Read captions and splits from `data_dir` (a folder, or a .tsv file) in any layout -> Corpus."""
    data_dir = Path(data_dir)
    if data_dir.is_file() and data_dir.suffix.lower() == ".tsv" and layout in ("auto", "tsv"):
        corpus = Corpus("tsv", data_dir.parent, files=[data_dir])
        split_of, where_listed = _read_tsv(data_dir, corpus, skip_bad, split_seed)
        _collect_images(corpus, split_of, where_listed, skip_bad)
        return corpus
    if not data_dir.is_dir():
        raise DataError(f"{data_dir}: no such directory")
    layout = detect_layout(data_dir) if layout == "auto" else layout
    if layout not in LAYOUTS:
        raise DataError(f"unknown layout {layout!r}; one of auto, {', '.join(LAYOUTS)}")
    path = caption_file(data_dir, layout)
    if path is None:
        raise DataError(f"{data_dir / LAYOUTS[layout]}: no such file (the {layout} layout's captions)")
    corpus = Corpus(layout, data_dir if layout == "tsv" else find_image_dir(data_dir, layout),
                    files=[path])
    if layout == "karpathy":
        split_of, where_listed = _read_karpathy(path, corpus, skip_bad)
    elif layout == "tsv":
        split_of, where_listed = _read_tsv(path, corpus, skip_bad, split_seed)
    else:
        if layout == "flickr8k":
            _read_token_file(path, corpus, skip_bad)
        else:
            _read_kaggle(path, corpus, skip_bad)
        if all((data_dir / name).is_file() for name in SPLIT_FILES.values()):
            split_of, where_listed = _read_split_files(data_dir, corpus, skip_bad)
        elif layout == "flickr8k":
            raise DataError(f"{data_dir}: the flickr8k layout needs {', '.join(SPLIT_FILES.values())}")
        else:
            split_of, where_listed = _seeded_split(sorted(corpus.captions), split_seed, corpus, path)
    _collect_images(corpus, split_of, where_listed, skip_bad)
    return corpus


def read_lines(path, corpus, skip_bad):
    """(line number, text) for every line of `path`, decoded as UTF-8 one line at a time (a
    byte-order mark is dropped), so that a line that is not UTF-8 is a bad entry naming its
    line; with skip_bad it comes as "" (an empty line), keeping the numbers of the others."""
    for number, raw in enumerate(Path(path).read_bytes().splitlines(), 1):
        try:
            text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as e:
            corpus.bad(f"{path}:{number}", "not UTF-8 text", skip_bad,
                       f"byte 0x{raw[e.start]:02x} at column {e.start + 1}")
            text = ""
        yield number, text


def _add_caption(corpus, name, caption, where, skip_bad):
    tokens = tokenize(caption)
    if not tokens:
        corpus.bad(where, "empty caption", skip_bad)
    else:
        corpus.captions.setdefault(name, []).append(tokens)


def _read_token_file(path, corpus, skip_bad):
    first_at = {}                                   # IMAGE#N -> its line
    for number, line in read_lines(path, corpus, skip_bad):
        if not line.strip():
            continue
        key, tab, caption = line.partition("\t")
        name, hash_sign, index = key.partition("#")
        where = f"{path}:{number}"
        if not tab or not hash_sign or not index.strip().isdigit():
            corpus.bad(where, "malformed caption line, expected IMAGE#N<TAB>caption", skip_bad)
        elif key.strip() in first_at:
            corpus.bad(where, "caption listed twice", skip_bad,
                       f"{key.strip()}, first at line {first_at[key.strip()]}")
        else:
            first_at[key.strip()] = number
            _add_caption(corpus, name, caption, where, skip_bad)


def _read_kaggle(path, corpus, skip_bad):
    rows = csv.reader(line for _, line in read_lines(path, corpus, skip_bad))
    header = next(rows, None)
    if header is None or [h.strip() for h in header[:2]] != ["image", "caption"]:
        raise DataError(f"{path}:1: expected the header 'image,caption', got {header}")
    first_at, repeats = {}, []
    for row in rows:
        where = f"{path}:{rows.line_num}"
        if not any(cell.strip() for cell in row):
            continue
        if len(row) < 2 or not row[0].strip():
            corpus.bad(where, "malformed caption line, expected image,caption", skip_bad)
        else:   # an unquoted caption with commas comes as several cells
            line = (row[0].strip(), ",".join(row[1:]))
            if line in first_at:
                repeats.append((line[0], f"{where} repeats line {first_at[line]}"))
            first_at.setdefault(line, rows.line_num)
            _add_caption(corpus, *line, where, skip_bad)
    corpus.repeats += repeats


def _read_karpathy(path, corpus, skip_bad):
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not UTF-8 text (byte 0x{data[e.start]:02x}); one JSON "
                        f"document, so --skip-bad cannot skip it: fix or re-save the file") from None
    try:
        entries = json.loads(text)["images"]
    except (ValueError, KeyError, TypeError) as e:
        raise DataError(f"{path}: not Karpathy's dataset json ({type(e).__name__}: {e})") from None
    split_of, where_listed = {}, {}
    for i, entry in enumerate(entries):
        where = f"{path}: images[{i}]"
        try:
            name, split, sentences = entry["filename"], entry["split"], entry["sentences"]
        except (KeyError, TypeError):
            corpus.bad(where, "entry without filename, split and sentences", skip_bad)
            continue
        split = SPLIT_ALIASES.get(split, split)
        if entry.get("filepath"):                   # COCO: train2014/, val2014/
            name = f"{entry['filepath']}/{name}"
        if split not in SPLITS:
            corpus.bad(where, "unknown split", skip_bad, f"{split!r} for {name}")
            continue
        if name in split_of:
            corpus.bad(where, "image listed twice", skip_bad,
                       f"{name}, first at {where_listed[name]}")
            continue
        for j, sentence in enumerate(sentences):
            tokens = sentence.get("tokens") or tokenize(sentence.get("raw", ""))
            if not tokens:
                corpus.bad(f"{where}.sentences[{j}]", "empty caption", skip_bad)
            else:
                corpus.captions.setdefault(name, []).append([t.lower() for t in tokens])
        split_of[name], where_listed[name] = split, where
    return split_of, where_listed


def _read_tsv(path, corpus, skip_bad, split_seed):
    """Your own captions file: IMAGE_PATH<TAB>caption[<TAB>split] lines -> (split_of, where_listed).
    Either every line has a split or none has; then a seeded split is made."""
    split_of, where_listed, first_at, repeats = {}, {}, {}, []      # split None: not given
    for number, line in read_lines(path, corpus, skip_bad):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"{path}:{number}"
        cells = line.split("\t")
        name = cells[0].strip()
        split = SPLIT_ALIASES.get(cells[2].strip(), cells[2].strip()) if len(cells) == 3 else None
        if len(cells) not in (2, 3) or not name:
            corpus.bad(where, "malformed caption line, expected IMAGE_PATH<TAB>caption[<TAB>split]",
                       skip_bad, f"{len(cells)} tab-separated cells")
            continue
        if split is not None and split not in SPLITS:
            corpus.bad(where, "unknown split", skip_bad, f"{cells[2].strip()!r}; use train, val or test")
            continue
        if split_of and (split is None) != (None in split_of.values()):
            corpus.bad(where, "split column on some lines only", skip_bad,
                       "give every line a split, or none")
            continue
        if name in split_of and split_of[name] != split:
            corpus.bad(where, "image in two splits", skip_bad,
                       f"{name}: {split} here, {split_of[name]} at {where_listed[name]}")
            continue
        if (name, cells[1]) in first_at:
            repeats.append((name, f"{where} repeats line {first_at[name, cells[1]]}"))
        first_at.setdefault((name, cells[1]), number)
        split_of.setdefault(name, split)
        where_listed.setdefault(name, where)
        _add_caption(corpus, name, cells[1], where, skip_bad)
    corpus.repeats += repeats
    if split_of and None in split_of.values():
        split_of, _ = _seeded_split(sorted(split_of), split_seed, corpus, path)
    return split_of, where_listed


def _read_split_files(data_dir, corpus, skip_bad):
    split_of, where_listed = {}, {}
    for split, file_name in SPLIT_FILES.items():
        path = data_dir / file_name
        corpus.files.append(path)
        for number, line in read_lines(path, corpus, skip_bad):
            name = line.strip()
            if not name:
                continue
            if name in split_of:
                corpus.bad(f"{path}:{number}", "image listed twice", skip_bad,
                           f"{name}, first at {where_listed[name]} ({split_of[name]} split)")
                continue
            split_of[name], where_listed[name] = split, f"{path}:{number}"
    return split_of, where_listed


def _seeded_split(names, seed, corpus, source):
    """6000/1000/rest of a seeded shuffle (Flickr8k's sizes), or 75%/12.5%/rest when smaller."""
    order = np.random.default_rng(seed).permutation(len(names))
    n_train, n_val = (6000, 1000) if len(names) >= 8000 else \
        (round(0.75 * len(names)), round(0.125 * len(names)))
    split_of = {}
    for rank, i in enumerate(order):
        split_of[names[i]] = "train" if rank < n_train else "val" if rank < n_train + n_val else "test"
    corpus.notes.append(f"no split files: made a seeded split (seed {seed}) of the "
                        f"{len(names)} images, {n_train}/{n_val}/{len(names) - n_train - n_val}")
    return split_of, {name: f"{source} (seeded split)" for name in names}


def _collect_images(corpus, split_of, where_listed, skip_bad):
    """Keep the images that are in a split, have captions and have a file; report the rest."""
    for split in SPLITS:
        for name, image_split in split_of.items():
            if image_split != split:
                continue
            if name not in corpus.captions:
                corpus.bad(where_listed[name], "image with no captions", skip_bad, name)
            elif not (corpus.image_dir / name).is_file():
                corpus.bad(where_listed[name], "missing image file", skip_bad,
                           str(corpus.image_dir / name))
            else:
                corpus.images.append((name, split))
    unused = sorted(set(corpus.captions) - set(split_of))
    if unused:
        no_file = [n for n in unused if not (corpus.image_dir / n).is_file()]
        n_captions = sum(len(corpus.captions[n]) for n in unused)
        corpus.skipped["captions of images in no split"] += n_captions
        corpus.notes.append(
            f"{len(unused)} captioned image ids are in no split and are not used "
            f"({n_captions} captions), e.g. {', '.join(unused[:3])}"
            + (f"; {len(no_file)} without an image file, e.g. {no_file[0]}" if no_file else ""))
    used = {name for name, _ in corpus.images}
    # Caption lines that repeat an earlier line word for word are kept, not refused (real
    # Flickr8k has 10 such pairs: two annotators wrote the same sentence), and reported.
    repeats = [where for name, where in corpus.repeats if name in used]
    if repeats:
        corpus.notes.append(f"{len(repeats)} caption lines repeat an earlier line of the same "
                            f"image word for word (kept), e.g. {repeats[0]}")
    for name in list(corpus.captions):
        if name not in used:
            del corpus.captions[name]
