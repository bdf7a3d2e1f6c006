"""Every command checks its arguments before doing any work or creating anything: a bad value
is a usage error (exit status 2) that names the option, and the working folder stays empty."""
from pathlib import Path

import pytest

from rawcap import caption, evaluate, train
from rawcap.caption import attention_paths
from rawcap.data.__main__ import main as data_main


def fail(command, argv, capsys):
    """Run `command(argv)`, which must refuse with status 2 -> its stderr."""
    try:
        status = command(argv)
    except SystemExit as stop:
        status = stop.code
    assert status == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("argv, says", [
    (["--epochs", "0"], "--epochs: must be a whole number of 1 or more, got 0"),
    (["--image-size", "0"], "--image-size: must be a whole number of 1 or more, got 0"),
    (["--image-size", "36"], "--image-size 36 must be a multiple of 2^3 = 8"),
    (["--image-size", "62", "--channels", "4,8"], "--image-size 62 must be a multiple of 2^2 = 4"),
    (["--image-size", "34", "--no-final-pool"], "--image-size 34 must be a multiple of 2^2 = 4 "
     "(one 2x pooling per entry of --channels 16,32,64, less the last with --no-final-pool)"),
    (["--test-beam", "0"], "--test-beam: must be a whole number of 1 or more, got 0"),
    (["--batch-size", "-2"], "--batch-size: must be a whole number of 1 or more, got -2"),
    (["--lr", "0"], "--lr: must be a number above 0, got 0"),
    (["--lr", "nan"], "--lr: must be a number above 0, got nan"),
    (["--dropout", "1"], "--dropout: must be a probability in [0, 1), got 1"),
    (["--embed-dropout", "-0.1"], "--embed-dropout: must be a probability in [0, 1), got -0.1"),
    (["--clip", "-1"], "--clip: must be a number of 0 or more, got -1"),
    (["--bag-of-words", "-1"], "--bag-of-words: must be a number of 0 or more, got -1"),
    (["--channels", "16,x"], "--channels: '16,x' is not a comma-separated list"),
    (["--channels", "16,0"], "--channels: every entry must be 1 or more"),
    (["--epochs", "two"], "--epochs: 'two' is not a whole number of 1 or more"),
    (["--data-dir", "nowhere"], "--data-dir nowhere: no such folder or .tsv file"),
    (["--init-from", "nowhere.h5"], "--init-from: nowhere.h5: no such file"),
    (["--cache", "nowhere.h5"], "--cache: nowhere.h5: no such file"),
    (["--resume", "nowhere"], "--resume nowhere: no last.h5 there"),
    (["--kernels", "softmax_ce=9"], "softmax_ce has versions"),
], ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_train_refuses_bad_arguments_before_creating_anything(tmp_path, monkeypatch, capsys,
                                                              argv, says):
    monkeypatch.chdir(tmp_path)
    err = fail(train.main, argv + ["--quiet"], capsys)
    assert says in err
    assert list(tmp_path.iterdir()) == []       # no runs/, no data/, no dataset generated


def test_train_cache_excludes_the_options_of_preparing_one(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.h5").write_bytes(b"")
    err = fail(train.main, ["--cache", "x.h5", "--image-size", "32", "--min-count", "2"], capsys)
    assert "--cache uses the cache's own data and options; drop --image-size, --min-count" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.h5"]


@pytest.mark.parametrize("argv, says", [
    (["--beam", "0"], "--beam: must be a whole number of 1 or more, got 0"),
    (["--json", "missing/out.json"], "--json: missing/out.json: the folder missing does not exist"),
    (["--json", "."], "--json: . is a folder"),
    (["--attention", "missing/a.png"], "--attention: missing/a.png: the folder missing does not exist"),
    (["--attention", "a.txt"], "--attention: a.txt: give an image file name"),
    (["empty"], "no image files in empty"),
], ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_caption_refuses_bad_arguments_before_captioning(tmp_path, monkeypatch, capsys, argv, says):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "photo.jpg").write_bytes(b"")
    argv = ["run.h5", "photo.jpg", *argv] if argv != ["empty"] else ["run.h5", "empty"]
    err = fail(caption.main, argv, capsys)
    assert says in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "photo.jpg"]


def test_caption_needs_images_after_its_models(capsys):
    err = fail(caption.main, ["a.h5", "b.h5"], capsys)
    assert "b.h5 is a model; give the images to caption after it" in err


@pytest.mark.parametrize("argv, says", [
    (["run", "--beam", "0"], "--beam: must be a whole number of 1 or more, got 0"),
    (["run", "--beam", "1,0"], "--beam: must be a whole number of 1 or more, got 0"),
    (["run", "--length-penalty", "0,-1"], "--length-penalty: must be a number of 0 or more, got -1"),
    (["run", "--cache", "nowhere.h5"], "--cache: nowhere.h5: no such file"),
    (["run", "--out", "run"], "--out: run is a file, not a folder"),
    (["run", "run"], "scoring an ensemble: give --out FOLDER"),
], ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_evaluate_refuses_bad_arguments(tmp_path, monkeypatch, capsys, argv, says):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "run").write_bytes(b"")
    assert says in fail(evaluate.main, argv, capsys)
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


@pytest.mark.parametrize("argv, says", [
    (["prepare", "--data-dir", ".", "--out", "c.h5", "--size", "0"], "--size: must be a whole number"),
    (["prepare", "--data-dir", "nowhere", "--out", "c.h5"], "--data-dir: nowhere: no such folder"),
    (["stats", "nowhere.h5"], "nowhere.h5: no such file"),
    (["shapes", "--out", "s", "--images", "0"], "--images: must be a whole number"),
], ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_data_refuses_bad_arguments(tmp_path, monkeypatch, capsys, argv, says):
    monkeypatch.chdir(tmp_path)
    assert says in fail(data_main, argv, capsys)
    assert list(tmp_path.iterdir()) == []


def test_attention_files_of_images_with_one_stem_do_not_overwrite_each_other():
    files = [Path("a/x.jpg"), Path("a/x.png"), Path("b/x.png"), Path("a/y.jpg")]
    assert attention_paths("out/att.png", files) == [
        Path("out/att-x_jpg.png"), Path("out/att-x_png-1.png"), Path("out/att-x_png-2.png"),
        Path("out/att-y.png")]
    assert attention_paths("att.png", [Path("x.jpg")]) == [Path("att.png")]
