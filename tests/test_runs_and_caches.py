"""Runs and caches that cannot clobber each other.

A run folder belongs to one run: a new run refuses a folder holding one, --overwrite replaces
it, a lock refuses a second process, temporary files a killed writer left are removed, and
--resume keeps the run's own options. A cache is named after its source and options, and
evaluate and --resume refuse a cache that does not hold what the checkpoint was trained on.
"""
import csv
import json
import shutil

import pytest

from rawcap import evaluate, train
from rawcap.data.cache import cache_path_for, prepare
from rawcap.data.shapes import generate_shapes
from rawcap.run_dir import Run

TINY = ["--image-size", "32", "--channels", "4,8", "--embed-size", "8", "--hidden-size", "16",
        "--attention-size", "8", "--batch-size", "8", "--quiet", "--data-dir", "shapes",
        "--epochs", "1"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("runfolder")
    generate_shapes(root / "shapes", n_images=50, image_size=32, workers=1, progress=False)
    return root


@pytest.fixture
def trained(workdir, monkeypatch, tmp_path):
    """A finished 1-epoch run in tmp_path/run -> its folder."""
    monkeypatch.chdir(workdir)
    assert train.main(TINY + ["--out", str(tmp_path / "run")]) == 0
    return tmp_path / "run"


def snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def log_epochs(folder):
    with open(folder / "log.csv", newline="") as f:
        return [row["epoch"] for row in csv.DictReader(f)]


def test_a_new_run_refuses_a_folder_that_holds_a_run(trained, capsys):
    before = snapshot(trained)
    with pytest.raises(SystemExit) as stop:
        train.main(TINY + ["--out", str(trained)])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert f"{trained} already holds a run" in err
    assert f"--resume {trained}" in err and "--overwrite" in err
    assert snapshot(trained) == before


def test_overwrite_replaces_the_run(trained):
    assert train.main(TINY + ["--out", str(trained), "--overwrite"]) == 0
    assert log_epochs(trained) == ["1"]             # not 1, 1: the old log was deleted


def test_a_second_process_is_refused_by_the_lock(trained, capsys):
    with Run(trained, "resume"):                    # another training holds the folder
        assert train.main(TINY + ["--out", str(trained), "--overwrite"]) == 2
        assert train.main(["--resume", str(trained), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count(f"{trained} is in use by another training process") == 2
    assert log_epochs(trained) == ["1"] and (trained / "metrics.json").is_file()
    assert train.main(["--resume", str(trained), "--quiet"]) == 0     # released: free again


def test_claiming_a_folder_removes_temporary_files_a_killed_writer_left(trained, capsys):
    for name in ("last.h5.tmp-123", "log.csv.tmp-99"):
        (trained / name).write_bytes(b"half a file")
    assert train.main(["--resume", str(trained), "--quiet"]) == 0
    assert not list(trained.glob("*.tmp-*"))
    assert "removed last.h5.tmp-123" in capsys.readouterr().out


def test_finishing_a_finished_run_says_so(trained, capsys):
    assert train.main(["--resume", str(trained), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "finished training at epoch 1 of 1: scoring the test split" in out and "resuming" not in out


def test_resume_refuses_options_that_differ_from_the_run(trained, capsys):
    assert train.main(["--resume", str(trained), "--lr", "0.1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"--resume continues {trained} with its own options: --lr 0.1 differs from the run's 0.003" in err
    # The same value as the run's, or an option --resume may change, is fine.
    assert train.main(["--resume", str(trained), "--lr", "0.003", "--epochs", "1", "--quiet"]) == 0


# Caches -----------------------------------------------------------------------------------------

def test_cache_names_differ_by_source_folder_and_options(tmp_path):
    a, b = tmp_path / "a" / "shapes", tmp_path / "b" / "shapes"
    names = {cache_path_for(a, 32, 5, 20), cache_path_for(b, 32, 5, 20),
             cache_path_for(a, 64, 5, 20), cache_path_for(a, 32, 2, 20),
             cache_path_for(a, 32, 5, 16), cache_path_for(a, 32, 5, 20, skip_bad=True)}
    assert len(names) == 6
    assert all(n.name.startswith(("shapes-32-", "shapes-64-")) for n in names)


def run_cache(run_dir):
    return json.loads((run_dir / "config.json").read_text())["cache"]


def test_evaluate_and_resume_refuse_a_cache_rebuilt_from_other_data(trained, workdir, tmp_path, capsys):
    other = tmp_path / "other"
    generate_shapes(other, n_images=50, image_size=32, seed=7, workers=1, progress=False)
    cache = run_cache(trained)
    saved = tmp_path / "saved.h5"
    shutil.copy(cache, saved)
    try:
        prepare(other, cache, size=32, progress=False, log=lambda *a: None)
        assert evaluate.main([str(trained)]) == 2
        assert train.main(["--resume", str(trained), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert err.count(f"{cache}: this cache now holds other data than") == 2
    finally:
        shutil.copy(saved, cache)


@pytest.mark.parametrize("option, says", [
    (["--size", "16"], "images of 16 pixels, but"),
    (["--min-count", "50"], "its vocabulary ("),
])
def test_evaluate_refuses_a_cache_of_another_size_or_vocabulary(trained, workdir, tmp_path, capsys,
                                                                 option, says):
    other = tmp_path / "other.h5"
    size = int(option[1]) if option[0] == "--size" else 32
    min_count = int(option[1]) if option[0] == "--min-count" else 5
    prepare(workdir / "shapes", other, size=size, min_count=min_count, progress=False,
            log=lambda *a: None)
    assert evaluate.main([str(trained), "--cache", str(other)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {other}: ") and says in err


def test_caption_refuses_a_checkpoint_whose_vocabulary_does_not_fit_its_model(trained, workdir, tmp_path,
                                                                              capsys):
    from rawcap import caption
    from rawcap.checkpoint import load_checkpoint, save_checkpoint
    params, state, meta = load_checkpoint(trained / "best.h5")
    meta["vocab"] = meta["vocab"][:-3]
    save_checkpoint(tmp_path / "odd.h5", params, state, meta)
    image = workdir / "shapes" / "images" / "shapes_00000.jpg"
    assert image.is_file()
    assert caption.main([str(tmp_path / "odd.h5"), str(image)]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'odd.h5'}: its vocabulary and model disagree: vocabulary " in err
