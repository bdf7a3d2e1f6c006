"""A run folder belongs to one run: a new run refuses a folder holding one, --overwrite replaces
it, a lock refuses a second process, and temporary files a killed writer left are removed."""
import csv

import pytest

from rawcap import train
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
    assert "has finished training (1 epochs): scoring the test split" in out and "resuming" not in out
