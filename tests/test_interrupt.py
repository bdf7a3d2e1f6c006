"""A real Ctrl-C (SIGINT) or kill -9 sent to a training process, then --resume: the run ends
exactly as the same run did uninterrupted.

Each case runs `tests/interrupt_run.py`, which sends the training process a SIGINT at one point
(between two steps, in the middle of a step, during the val decoding, while the test split is
scored), or a SIGKILL in the middle of the saves, in a subprocess, so the
signal goes through rawcap.train's own handler. Then `--resume` finishes the run, and its
captions_test.json and metrics.json must equal the uninterrupted run's byte for byte, its
log.csv too but for the timing columns. Same tiny dataset and model as tests/test_cli.py.
"""
import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rawcap.data.shapes import generate_shapes

ROOT = Path(__file__).resolve().parents[1]
BATCHES = 5                 # 40 train images / batches of 8: one epoch
TINY = ["--image-size", "32", "--channels", "4,8", "--embed-size", "8", "--hidden-size", "16",
        "--attention-size", "8", "--batch-size", "8", "--quiet", "--data-dir", "shapes",
        "--epochs", "2"]
TIMING = ("seconds", "images_per_s")


def run(cwd, *argv):
    """A command in a subprocess that finds rawcap in this checkout -> CompletedProcess."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, *argv], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A folder with the tiny dataset in shapes/ and the uninterrupted run in runs/straight."""
    root = tmp_path_factory.mktemp("interrupt")
    generate_shapes(root / "shapes", n_images=50, image_size=32, workers=1, progress=False)
    done = run(root, "-m", "rawcap.train", *TINY, "--out", "runs/straight")
    assert done.returncode == 0, done.stderr
    return root


def log_without_timing(run_dir):
    with open(run_dir / "log.csv", newline="") as f:
        return [{k: v for k, v in row.items() if k not in TIMING} for row in csv.DictReader(f)]


@pytest.mark.parametrize("point, n", [
    ("between-steps", 3),               # epoch 1: steps 1 and 2 done, step 3 not begun
    ("between-steps", BATCHES + 1),     # the first batch of epoch 2, after epoch 1's val
    ("mid-step", BATCHES + 3),          # epoch 2, inside step 3
    ("decoding", 1),                    # while decoding the val split after epoch 1
    ("decoding", 2),                    # the val split after the last epoch
    ("decoding", 3),                    # while scoring the test split at the end
], ids=["between-steps-epoch1", "between-epochs", "mid-step-epoch2", "val-decoding-epoch1",
        "val-decoding-last-epoch", "test-scoring"])
def test_resume_after_a_real_sigint_ends_as_the_uninterrupted_run(workdir, point, n):
    name = f"runs/{point}-{n}"
    stopped = run(workdir, str(ROOT / "tests" / "interrupt_run.py"), point, str(n), *TINY,
                  "--out", name)
    assert stopped.returncode == 130, stopped.stdout + stopped.stderr
    assert "--resume" in stopped.stdout
    assert not (workdir / name / "metrics.json").exists()

    resumed = run(workdir, "-m", "rawcap.train", "--resume", name, "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    straight, interrupted = workdir / "runs" / "straight", workdir / name
    for file in ("captions_test.json", "metrics.json"):
        assert (interrupted / file).read_bytes() == (straight / file).read_bytes(), file
    assert log_without_timing(interrupted) == log_without_timing(straight)


def assert_same_run(run_dir, straight):
    for file in ("captions_test.json", "metrics.json"):
        assert (run_dir / file).read_bytes() == (straight / file).read_bytes(), file
    assert log_without_timing(run_dir) == log_without_timing(straight)


@pytest.mark.parametrize("method, n, left", [
    ("save", 2, "last.h5.tmp-"),        # writing epoch 2's last.h5: a temporary file is left
    ("copy_last_to_best", 1, None),     # between epoch 1's last.h5 and best.h5: no best.h5
    ("write_log", 2, None),             # after epoch 2's checkpoints, before its log row
], ids=["writing-last", "between-last-and-best", "before-the-log-row"])
def test_resume_after_kill_9_repairs_the_folder_and_ends_as_the_uninterrupted_run(
        workdir, method, n, left):
    name = f"runs/kill-{method}-{n}"
    killed = run(workdir, str(ROOT / "tests" / "interrupt_run.py"), f"kill-in-{method}", str(n),
                 *TINY, "--out", name)
    assert killed.returncode == -9, killed.stdout + killed.stderr
    folder = workdir / name
    if left:
        assert any(p.name.startswith(left) for p in folder.iterdir())
    if method == "copy_last_to_best":
        assert (folder / "last.h5").is_file() and not (folder / "best.h5").exists()

    resumed = run(workdir, "-m", "rawcap.train", "--resume", name, "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert not [p.name for p in folder.iterdir() if ".tmp-" in p.name]
    assert_same_run(folder, workdir / "runs" / "straight")


def test_resume_after_a_sigint_from_another_process(workdir):
    """The SIGINT comes from this test process, as a shell's Ctrl-C would, while the training
    process waits between steps 3 and 4 (it says so with the file `ready`)."""
    name = "runs/from-outside"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    ready, sent = workdir / "ready", workdir / "sent"
    with subprocess.Popen([sys.executable, str(ROOT / "tests" / "interrupt_run.py"),
                           "wait-between-steps", "4", *TINY, "--out", name], cwd=workdir, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as training:
        for _ in range(60000):
            if ready.exists() or training.poll() is not None:
                break
            time.sleep(0.01)
        assert ready.exists(), training.communicate()[0]
        training.send_signal(signal.SIGINT)
        sent.touch()
        output = training.communicate(timeout=600)[0]
    ready.unlink()
    sent.unlink()
    assert training.returncode == 130, output
    resumed = run(workdir, "-m", "rawcap.train", "--resume", name, "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert_same_run(workdir / name, workdir / "runs" / "straight")
