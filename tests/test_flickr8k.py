"""read_corpus on the three layouts: same result, detection, seeded split, bad inputs, real data."""
import json
from collections import Counter
from pathlib import Path

import pytest

from rawcap.data.flickr8k import DataError, read_corpus
from rawcap.data.vocab import Vocabulary

from data_fixtures import BOGUS_ID, NAMES, SPLIT_OF, expected_tokens, write_dataset

LAYOUTS = ["flickr8k", "kaggle", "karpathy"]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_each_layout_gives_the_same_images_splits_and_captions(tmp_path, layout):
    corpus = read_corpus(write_dataset(tmp_path, layout))          # layout="auto"
    assert corpus.layout == layout
    assert corpus.image_dir == tmp_path / "Images"
    assert corpus.images == [(name, SPLIT_OF[name]) for name in NAMES]
    assert corpus.captions == expected_tokens()
    assert not corpus.skipped and not corpus.notes


@pytest.mark.parametrize("folder", ["Images", "Flicker8k_Dataset", "Flickr8k_Dataset", "images"])
def test_each_image_folder_name_is_found(tmp_path, folder):
    corpus = read_corpus(write_dataset(tmp_path, image_dir=folder))
    assert corpus.image_dir == tmp_path / folder and len(corpus.images) == 12


def test_the_token_file_wins_when_several_caption_files_exist(tmp_path):
    write_dataset(tmp_path, "karpathy")
    write_dataset(tmp_path, "flickr8k")
    assert read_corpus(tmp_path).layout == "flickr8k"
    assert read_corpus(tmp_path, layout="karpathy").layout == "karpathy"


@pytest.mark.parametrize("problem, words", [
    ("no-directory", "no such directory"),
    ("no-caption-file", "no caption file found"),
    ("no-image-folder", "no image folder"),
    ("unknown-layout", "unknown layout 'coco'"),
    ("token-file-without-split-files", "needs Flickr_8k.trainImages.txt"),
])
def test_an_unusable_directory_gives_data_error(tmp_path, problem, words):
    root = tmp_path / "data"
    layout = "coco" if problem == "unknown-layout" else "auto"
    if problem != "no-directory":
        write_dataset(root)
    if problem == "no-caption-file":
        (root / "Flickr8k.token.txt").unlink()
    if problem == "no-image-folder":
        (root / "Images").rename(root / "photos")
    if problem == "token-file-without-split-files":
        (root / "Flickr_8k.devImages.txt").unlink()
    with pytest.raises(DataError, match=words):
        read_corpus(root, layout=layout)


@pytest.mark.parametrize("layout", ["flickr8k", "kaggle"])
def test_an_explicit_layout_without_its_caption_file_gives_data_error(tmp_path, layout):
    write_dataset(tmp_path, "karpathy")
    with pytest.raises(DataError, match="not found|no such|missing"):
        read_corpus(tmp_path, layout=layout)


def test_kaggle_without_split_files_makes_a_seeded_split_and_says_so(tmp_path):
    write_dataset(tmp_path, "kaggle", split_files=False)
    corpus = read_corpus(tmp_path, split_seed=3)
    assert Counter(split for _, split in corpus.images) == {"train": 9, "val": 2, "test": 1}
    assert sorted(name for name, _ in corpus.images) == sorted(NAMES)
    assert corpus.captions == expected_tokens()
    assert len(corpus.notes) == 1 and "seeded split (seed 3)" in corpus.notes[0]
    assert read_corpus(tmp_path, split_seed=3).images == corpus.images
    assert read_corpus(tmp_path, split_seed=4).images != corpus.images


def test_kaggle_captions_with_commas_quoted_or_not(tmp_path):
    write_dataset(tmp_path, "kaggle", extra_lines=['img00.jpg,"A red, shiny square."',
                                                   "img00.jpg,A red, shiny square."])
    text = (tmp_path / "captions.txt").read_text()
    assert '"The picture is red, isn\'t it?"' in text and '"One ""red"" tile' in text  # quoted
    corpus = read_corpus(tmp_path)
    assert corpus.captions["img00.jpg"] == expected_tokens()["img00.jpg"] + [
        ["a", "red", "shiny", "square"], ["a", "red", "shiny", "square"]]


@pytest.mark.parametrize("layout", ["flickr8k", "kaggle"])
def test_captions_of_an_id_in_no_split_are_skipped_and_reported(tmp_path, layout):
    corpus = read_corpus(write_dataset(tmp_path, layout, bogus_id=True))
    assert len(corpus.images) == 12 and BOGUS_ID not in corpus.captions
    assert corpus.skipped == {"captions of images in no split": 5}
    assert len(corpus.notes) == 1 and BOGUS_ID in corpus.notes[0]


# layout, faults, where the message points (relative to the data directory), what it says,
# and with skip_bad: the images and captions that are left
FAULTS = [
    pytest.param("flickr8k", dict(missing=["img03.png"]), "Flickr_8k.trainImages.txt:4",
                 "missing image file", 11, 55, id="missing-image"),
    pytest.param("flickr8k", dict(extra_lines=["img00.jpg A red square."]),
                 "Flickr8k.token.txt:61", "malformed caption line", 12, 60, id="line-without-tab"),
    pytest.param("flickr8k", dict(extra_lines=["img00.jpg#x\tA red square."]),
                 "Flickr8k.token.txt:61", "malformed caption line", 12, 60, id="line-bad-index"),
    pytest.param("flickr8k", dict(extra_split={"val": ["ghost.jpg"]}), "Flickr_8k.devImages.txt:3",
                 "image with no captions: ghost.jpg", 12, 60, id="split-entry-without-captions"),
    pytest.param("flickr8k", dict(empty_caption="img05.jpg"), "Flickr8k.token.txt:28",  # 5*5 + 3
                 "empty caption", 12, 59, id="empty-caption"),
    pytest.param("flickr8k", dict(extra_split={"test": ["img00.jpg"]}),
                 "Flickr_8k.testImages.txt:3", "image listed twice: img00.jpg, first at", 12, 60,
                 id="duplicate-split-entry"),
    pytest.param("kaggle", dict(extra_lines=["img00.jpg"]), "captions.txt:62",   # after the header
                 "malformed caption line", 12, 60, id="kaggle-line-without-caption"),
    pytest.param("kaggle", dict(empty_caption="img05.jpg"), "captions.txt:29",
                 "empty caption", 12, 59, id="kaggle-empty-caption"),
    pytest.param("kaggle", dict(missing=["img10.jpg"]), "Flickr_8k.testImages.txt:1",
                 "missing image file", 11, 55, id="kaggle-missing-image"),
    pytest.param("karpathy", dict(empty_caption="img05.jpg"),
                 "dataset_flickr8k.json: images[5].sentences[2]", "empty caption", 12, 59,
                 id="karpathy-empty-caption"),
    pytest.param("karpathy", dict(missing=["img03.png"]), "dataset_flickr8k.json: images[3]",
                 "missing image file", 11, 55, id="karpathy-missing-image"),
    pytest.param("karpathy", dict(extra_split={"val": ["ghost.jpg"]}),
                 "dataset_flickr8k.json: images[12]", "image with no captions: ghost.jpg", 12, 60,
                 id="karpathy-entry-without-captions"),
]


@pytest.mark.parametrize("layout, faults, where, words, n_images, n_captions", FAULTS)
def test_a_bad_entry_gives_data_error_naming_file_and_line(tmp_path, layout, faults, where, words,
                                                           n_images, n_captions):
    write_dataset(tmp_path, layout, **faults)
    with pytest.raises(DataError) as caught:
        read_corpus(tmp_path)
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / where}: ") and words in message
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("layout, faults, where, words, n_images, n_captions", FAULTS)
def test_skip_bad_skips_and_counts_a_bad_entry(tmp_path, layout, faults, where, words,
                                               n_images, n_captions):
    write_dataset(tmp_path, layout, **faults)
    corpus = read_corpus(tmp_path, skip_bad=True)
    assert sum(corpus.skipped.values()) == 1
    assert len(corpus.images) == n_images
    assert sum(len(corpus.captions[name]) for name, _ in corpus.images) == n_captions


def edit_karpathy(root, change):
    path = root / "dataset_flickr8k.json"
    data = json.loads(path.read_text())
    change(data["images"])
    path.write_text(json.dumps(data))


def test_karpathy_split_names_restval_dev_and_unknown(tmp_path):
    write_dataset(tmp_path, "karpathy")
    edit_karpathy(tmp_path, lambda images: (images[0].update(split="restval"),
                                            images[9].update(split="dev")))
    assert read_corpus(tmp_path).images == [(name, SPLIT_OF[name]) for name in NAMES]
    edit_karpathy(tmp_path, lambda images: images[9].update(split="holdout"))
    with pytest.raises(DataError, match=r"images\[9\]: unknown split: 'holdout'"):
        read_corpus(tmp_path)
    corpus = read_corpus(tmp_path, skip_bad=True)
    assert len(corpus.images) == 11 and sum(corpus.skipped.values()) == 1


def test_karpathy_duplicate_entry_gives_data_error(tmp_path):
    write_dataset(tmp_path, "karpathy")
    edit_karpathy(tmp_path, lambda images: images.append(
        {"filename": "img00.jpg", "split": "test", "sentences": [{"raw": "a duplicate"}]}))
    with pytest.raises(DataError, match=r"images\[12\].*img00.jpg"):
        read_corpus(tmp_path)


REAL = Path(__file__).resolve().parents[2] / "shared" / "flickr8k"


@pytest.mark.skipif(not (REAL / "dataset_flickr8k.json").is_file(),
                    reason=f"the real Flickr8k is not at {REAL}")
def test_real_flickr8k():
    corpus = read_corpus(REAL)
    assert corpus.layout == "flickr8k"
    splits = Counter(split for _, split in corpus.images)
    assert splits == {"train": 6000, "val": 1000, "test": 1000}
    assert all(len(corpus.captions[name]) == 5 for name, _ in corpus.images)
    assert any(BOGUS_ID in note for note in corpus.notes)

    # the vocabulary size, counted straight from Karpathy's json
    data = json.loads((REAL / "dataset_flickr8k.json").read_text())
    counts = Counter(token for image in data["images"] if image["split"] == "train"
                     for sentence in image["sentences"] for token in sentence["tokens"])
    train = [tokens for name, split in corpus.images if split == "train"
             for tokens in corpus.captions[name]]
    assert len(Vocabulary.build(train, min_count=5)) == 4 + sum(n >= 5 for n in counts.values())

    karpathy = read_corpus(REAL, layout="karpathy")
    assert sorted(karpathy.images) == sorted(corpus.images)
    assert karpathy.captions == corpus.captions
