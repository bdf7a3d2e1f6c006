"""train --layers: the captioner trained on a student's functions; the untouched solution gives
the textbook run bit for bit, a planted bug still trains (differently), mistakes are clear errors."""
import numpy as np
import pytest

from rawcap import train
from rawcap.checkpoint import load_checkpoint
from rawcap.exercises.make import make
from rawcap.exercises.planted import plant_bug
from rawcap.model import loss_and_grads

from test_cli import TINY, in_workdir, workdir  # noqa: F401  (the tiny dataset's fixtures)


def run(out, *more, monkeypatch=None):
    """One epoch of the tiny run -> (exit status, the CE loss of every step)."""
    losses = []

    def spy(*args, **kwargs):
        loss, parts, grads = loss_and_grads(*args, **kwargs)
        losses.append(parts["ce"])
        return loss, parts, grads
    monkeypatch.setattr(train, "loss_and_grads", spy)
    status = train.main(TINY + ["--data-dir", "shapes", "--epochs", "1", "--test-beam", "1",
                                "--out", str(out), *more])
    return status, losses


@pytest.fixture
def key(tmp_path):
    make(tmp_path / "key", solutions=True)
    return tmp_path / "key"


def test_the_untouched_solution_reproduces_the_textbook_run_exactly(in_workdir, tmp_path, key, monkeypatch):
    status, textbook = run(tmp_path / "textbook", "--kernels", "all=0", monkeypatch=monkeypatch)
    status2, student = run(tmp_path / "student", "--kernels", "all=0", "--layers", str(key),
                           monkeypatch=monkeypatch)
    assert status == status2 == 0 and len(textbook) == 5
    assert student == textbook                                   # every step's loss, exactly
    a, b = (load_checkpoint(tmp_path / name / "last.h5")[0] for name in ("textbook", "student"))
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])


def test_a_planted_bug_still_trains_but_learns_differently(in_workdir, tmp_path, key, monkeypatch, capsys):
    plant_bug(key, "no tanh'(c)")
    status, textbook = run(tmp_path / "textbook", "--kernels", "all=0", monkeypatch=monkeypatch)
    status2, buggy = run(tmp_path / "buggy", "--kernels", "all=0", "--layers", str(key),
                         monkeypatch=monkeypatch)
    assert status == status2 == 0
    assert buggy[0] == textbook[0] and buggy[1:] != textbook[1:]   # same start, other updates
    assert "never calls lstm_backward" in capsys.readouterr().out


def test_stubs_and_functions_the_run_never_calls_are_clear_errors(in_workdir, tmp_path, key,
                                                                   monkeypatch, capsys):
    make(tmp_path / "hw", only=["attention_backward"])
    assert run(tmp_path / "a", "--layers", str(tmp_path / "hw"), monkeypatch=monkeypatch)[0] == 2
    assert "hw/attention.py: attention_backward is not implemented yet" in capsys.readouterr().err
    # --blind skips the encoder: the student's conv and pool would never run.
    assert run(tmp_path / "b", "--blind", "--layers", str(key), monkeypatch=monkeypatch)[0] == 2
    err = capsys.readouterr().err
    assert "col2im" in err and "conv2d_backward" in err and "never called by the first training step" in err


def test_the_planted_bugs_tool_records_curves_and_stopped_runs(in_workdir, tmp_path):
    import csv
    import json
    from tools import planted_bugs
    out = tmp_path / "curves"
    assert planted_bugs.main(["--epochs", "1", "--bugs", "no tanh'(c),dc_prev = dc", "--out", str(out),
                              "--", "--data-dir", "shapes", *TINY]) == 0
    with open(out / "losses.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 5 and rows[0]["textbook"] == rows[0]["no tanh'(c)"]
    assert rows[-1]["textbook"] != rows[-1]["no tanh'(c)"] and rows[0]["dc_prev = dc"] == ""
    runs = json.loads((out / "summary.json").read_text())["runs"]
    assert runs["textbook"]["steps"] == 5 and "val_bleu4" in runs["no tanh'(c)"]
    # dc_prev = dc returns None at the last step; the model's c0 backward then stops the run.
    assert runs["dc_prev = dc"]["exit_status"] == 2 and "tanh_backward" in runs["dc_prev = dc"]["error"]
    assert (out / "losses.png").stat().st_size > 0
