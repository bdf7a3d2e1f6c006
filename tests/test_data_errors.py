"""Bad bytes and repeated lines in the caption and split files: errors that name the file and
line, which --skip-bad skips (in rawcap.data prepare and in train), and train on a prepared cache."""
import json

import pytest

from rawcap import train
from rawcap.data.flickr8k import DataError, read_corpus

from data_fixtures import write_dataset

TINY = ["--image-size", "32", "--channels", "4,8", "--embed-size", "8", "--hidden-size", "16",
        "--attention-size", "8", "--batch-size", "4", "--quiet", "--epochs", "1", "--min-count", "1"]


def insert_line(path, number, raw):
    """Put the bytes `raw` in as line `number` of `path`."""
    lines = path.read_bytes().splitlines(keepends=True)
    lines.insert(number - 1, raw + b"\n")
    path.write_bytes(b"".join(lines))


@pytest.mark.parametrize("layout, file, number, raw", [
    ("flickr8k", "Flickr8k.token.txt", 7, b"img00.jpg#9\tA caf\xe9 square."),
    ("flickr8k", "Flickr_8k.trainImages.txt", 2, b"img\xff.jpg"),
    ("kaggle", "captions.txt", 4, b"img00.jpg,A caf\xe9 square."),
], ids=["token-file", "split-file", "kaggle"])
def test_a_line_that_is_not_utf8_is_named_and_skip_bad_skips_it(tmp_path, layout, file, number, raw):
    write_dataset(tmp_path, layout)
    insert_line(tmp_path / file, number, raw)
    with pytest.raises(DataError) as caught:
        read_corpus(tmp_path)
    assert str(caught.value).startswith(f"{tmp_path / file}:{number}: not UTF-8 text: byte 0x")
    corpus = read_corpus(tmp_path, skip_bad=True)
    assert corpus.skipped == {"not UTF-8 text": 1}
    assert len(corpus.images) == 12 and all(len(c) == 5 for c in corpus.captions.values())


def test_karpathy_json_that_is_not_utf8_names_its_line(tmp_path):
    write_dataset(tmp_path, "karpathy")
    path = tmp_path / "dataset_flickr8k.json"
    text = json.dumps(json.loads(path.read_text()), indent=1).encode()
    path.write_bytes(text.replace(b"square", b"squar\xe9", 1))
    line = text[:text.index(b"square")].count(b"\n") + 1
    with pytest.raises(DataError, match=rf"^{path}:{line}: not UTF-8 text \(byte 0xe9\)"):
        read_corpus(tmp_path, skip_bad=True)


def test_a_caption_listed_twice_in_the_token_file_is_an_error(tmp_path):
    write_dataset(tmp_path, "flickr8k")
    path = tmp_path / "Flickr8k.token.txt"
    insert_line(path, 61, path.read_bytes().splitlines()[2])        # img00.jpg#2 again
    with pytest.raises(DataError, match=rf"^{path}:61: caption listed twice: img00.jpg#2, first at line 3"):
        read_corpus(tmp_path)
    corpus = read_corpus(tmp_path, skip_bad=True)
    assert corpus.skipped == {"caption listed twice": 1} and len(corpus.captions["img00.jpg"]) == 5


def test_a_repeated_kaggle_line_is_kept_and_reported(tmp_path):
    write_dataset(tmp_path, "kaggle")
    path = tmp_path / "captions.txt"
    insert_line(path, 62, path.read_bytes().splitlines()[1])
    corpus = read_corpus(tmp_path)
    assert len(corpus.captions["img00.jpg"]) == 6
    assert corpus.notes == [f"1 caption lines repeat an earlier line of the same image word for "
                            f"word (kept), e.g. {path}:62 repeats line 2"]


def test_train_skip_bad_trains_on_a_dataset_with_a_bad_line(tmp_path, monkeypatch, capsys):
    write_dataset(tmp_path / "ds", "flickr8k")
    insert_line(tmp_path / "ds" / "Flickr8k.token.txt", 7, b"img00.jpg#9\tA caf\xe9 square.")
    monkeypatch.chdir(tmp_path)
    argv = TINY + ["--data", "flickr8k", "--data-dir", "ds", "--out", "run"]
    assert train.main(argv) == 2
    err = capsys.readouterr().err
    assert "Flickr8k.token.txt:7: not UTF-8 text" in err and "--skip-bad" in err
    assert not (tmp_path / "run").exists()
    assert train.main(argv + ["--skip-bad"]) == 0
    assert (tmp_path / "run" / "metrics.json").is_file()


def test_train_on_a_prepared_cache(tmp_path, monkeypatch):
    from rawcap.data.__main__ import main as data_main
    write_dataset(tmp_path / "ds", "kaggle")
    monkeypatch.chdir(tmp_path)
    assert data_main(["prepare", "--data-dir", "ds", "--out", "mine.h5", "--size", "32",
                      "--min-count", "1"]) == 0
    model = ["--channels", "4,8", "--embed-size", "8", "--hidden-size", "16", "--attention-size",
             "8", "--batch-size", "4", "--quiet", "--epochs", "1"]
    assert train.main(model + ["--cache", "mine.h5"]) == 0
    config = json.loads((tmp_path / "runs" / "mine" / "config.json").read_text())     # its name
    assert config["cache"] == str(tmp_path / "mine.h5") and not (tmp_path / "data").exists()
    # The run records the cache's data options, not the defaults of the ones it did not use.
    assert {k: config["train"][k] for k in ("data", "data_dir", "image_size", "min_count")} == {
        "data": "ds", "data_dir": str(tmp_path / "ds"), "image_size": 32, "min_count": 1}
