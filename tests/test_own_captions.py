"""The fourth layout, your own captions file (captions.tsv), and Karpathy's json of any dataset
(Flickr30k's and COCO's, with COCO's filepath folders); then training on them, with the cache
written image by image so a dataset larger than memory fits."""
import json
import tracemalloc

import numpy as np
import pytest
from PIL import Image

from rawcap import train
from rawcap.data.cache import open_cache, prepare
from rawcap.data.flickr8k import DataError, read_corpus
from rawcap.data.tokenize import tokenize

from data_fixtures import COLOURS, COLOUR_OF, HEIGHT, NAMES, SPLIT_OF, WIDTH, captions, expected_tokens

FOLDER_OF = {name: "holiday" if i % 2 else "home/garden" for i, name in enumerate(NAMES)}


def write_images(root, folder_of):
    for name in NAMES:
        path = root / folder_of(name) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (WIDTH, HEIGHT), COLOURS[COLOUR_OF[name]]).save(path, quality=95)


def write_tsv(root, with_split=True, extra=(), file="captions.tsv"):
    """Images in two folders, one caption per line, with or without the split column."""
    write_images(root, lambda name: FOLDER_OF[name])
    lines = ["# my photos: path, caption, split"]
    for name in NAMES:
        for caption in captions(name):
            cells = [f"{FOLDER_OF[name]}/{name}", caption] + ([SPLIT_OF[name]] if with_split else [])
            lines.append("\t".join(cells))
    (root / file).write_text("\n".join(lines + list(extra)) + "\n")
    return root / file


def karpathy_entries(filepath=None):
    entries = []
    for name in NAMES:
        entry = {"filename": name, "split": {"val": "val", "test": "test"}.get(SPLIT_OF[name], "restval"),
                 "sentences": [{"raw": c, "tokens": tokenize(c)} for c in captions(name)]}
        if filepath:
            entry["filepath"] = filepath(name)
        entries.append(entry)
    return {"images": entries, "dataset": "x"}


def relative(name):
    return f"{FOLDER_OF[name]}/{name}"


def test_tsv_with_a_split_column(tmp_path):
    write_tsv(tmp_path)
    corpus = read_corpus(tmp_path)
    assert corpus.layout == "tsv" and corpus.image_dir == tmp_path
    assert corpus.images == [(relative(n), SPLIT_OF[n]) for n in NAMES if SPLIT_OF[n] == "train"] + \
        [(relative(n), SPLIT_OF[n]) for n in NAMES if SPLIT_OF[n] == "val"] + \
        [(relative(n), SPLIT_OF[n]) for n in NAMES if SPLIT_OF[n] == "test"]
    assert corpus.captions == {relative(n): c for n, c in expected_tokens().items()}
    assert not corpus.skipped and not corpus.notes


def test_a_tsv_file_given_directly_and_without_splits_gets_a_seeded_split(tmp_path):
    path = write_tsv(tmp_path, with_split=False, file="mine.tsv")
    corpus = read_corpus(path, split_seed=3)
    assert corpus.layout == "tsv" and len(corpus.images) == 12
    assert [s for _, s in corpus.images].count("train") == 9
    assert "seeded split (seed 3)" in corpus.notes[0]
    assert read_corpus(path, split_seed=3).images == corpus.images


@pytest.mark.parametrize("line, says", [
    ("holiday/img01.jpg", "malformed caption line, expected IMAGE_PATH<TAB>caption[<TAB>split]"),
    ("holiday/img01.jpg\tA red square.\tholdout", "unknown split: 'holdout'"),
    ("holiday/img01.jpg\tA red square.\ttest", "image in two splits: holiday/img01.jpg: test here, train at"),
    ("holiday/img01.jpg\tA red square.", "split column on some lines only"),
])
def test_a_bad_tsv_line_is_named_and_skip_bad_skips_it(tmp_path, line, says):
    path = write_tsv(tmp_path, extra=[line])
    with pytest.raises(DataError) as caught:
        read_corpus(tmp_path)
    assert str(caught.value).startswith(f"{path}:62: ") and says in str(caught.value)
    corpus = read_corpus(tmp_path, skip_bad=True)
    assert sum(corpus.skipped.values()) == 1 and len(corpus.images) == 12


def test_karpathy_json_of_coco_with_filepath_folders(tmp_path):
    folder = {name: "val2014" if SPLIT_OF[name] != "train" else "train2014" for name in NAMES}
    write_images(tmp_path, folder.get)
    (tmp_path / "dataset_coco.json").write_text(json.dumps(karpathy_entries(folder.get)))
    corpus = read_corpus(tmp_path)
    assert corpus.layout == "karpathy" and corpus.image_dir == tmp_path
    assert sorted(corpus.images) == sorted((f"{folder[n]}/{n}", SPLIT_OF[n]) for n in NAMES)
    assert corpus.captions == {f"{folder[n]}/{n}": c for n, c in expected_tokens().items()}


def test_karpathy_json_of_flickr30k(tmp_path):
    write_images(tmp_path, lambda name: "flickr30k-images")
    (tmp_path / "dataset_flickr30k.json").write_text(json.dumps(karpathy_entries()))
    corpus = read_corpus(tmp_path)
    assert corpus.image_dir == tmp_path / "flickr30k-images" and len(corpus.images) == 12
    assert corpus.captions == expected_tokens()


def test_two_karpathy_files_in_one_folder_is_an_error(tmp_path):
    for name in ("dataset_coco.json", "dataset_flickr30k.json"):
        (tmp_path / name).write_text(json.dumps(karpathy_entries()))
    with pytest.raises(DataError, match="several Karpathy files"):
        read_corpus(tmp_path)


def test_prepare_writes_images_as_it_reads_them(tmp_path):
    """The cache is filled a few images at a time: Python never holds all the pixels at once.
    (It used to preprocess every image into one array first.)"""
    write_tsv(tmp_path)
    for name in NAMES:          # larger images, so the pixels dominate what is allocated
        path = tmp_path / FOLDER_OF[name] / name
        Image.new("RGB", (256, 256), COLOURS[COLOUR_OF[name]]).save(path, quality=95)
    size, all_pixels = 128, len(NAMES) * 3 * 128 * 128
    tracemalloc.start()
    try:
        prepare(tmp_path, tmp_path / "c.h5", size=size, min_count=1, workers=1, chunk=2,
                progress=False, log=lambda *a: None)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 0.8 * all_pixels, (peak, all_pixels)    # measured 0.54; 2.4 before
    with open_cache(tmp_path / "c.h5") as f:
        images, names = f["images"][:], list(f["filenames"].asstr()[:])
    assert images.shape == (12, 3, size, size)
    for name, image in zip(names, images):      # each row holds its own image
        colour = COLOURS[COLOUR_OF[name.split("/")[-1]]]
        assert np.abs(image[:, size // 2, size // 2].astype(int) - colour).max() <= 8


def test_train_on_your_own_captions_file(tmp_path, monkeypatch):
    path = write_tsv(tmp_path / "photos")
    monkeypatch.chdir(tmp_path)
    argv = ["--data", "custom", "--data-dir", str(path), "--image-size", "32", "--min-count", "1",
            "--channels", "4,8", "--embed-size", "8", "--hidden-size", "16", "--attention-size", "8",
            "--batch-size", "4", "--epochs", "1", "--quiet"]
    assert train.main(argv) == 0
    captions_test = json.loads((tmp_path / "runs" / "custom" / "captions_test.json").read_text())
    assert sorted(captions_test) == sorted(relative(n) for n in NAMES if SPLIT_OF[n] == "test")
