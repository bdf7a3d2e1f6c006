"""Small things a user meets: train --help's defaults, python -m rawcap.plot, what rawcap.env
lists, whole-number epoch ticks, and gradcheck --kernels without the simulator."""
import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from rawcap import env, plot, train
from rawcap.run_dir import LOG_COLUMNS

ROOT = Path(__file__).resolve().parents[1]


def test_train_help_shows_each_default_once_and_never_none(capsys):
    with pytest.raises(SystemExit):
        train.main(["--help"])
    out = " ".join(capsys.readouterr().out.split())     # argparse wraps lines
    assert "default: None" not in out and "(default: False)" not in out
    assert "epochs in all (default 5; with --resume, the run's own)" in out
    for shown in ("--lr LR peak learning rate (default: 0.003)", "(default: 32)",
                  "word embedding size E (default: 64)",
                  "dropout before the output layer (default: 0.3)", "(default: 16,32,64)"):
        assert shown in out, shown


def write_log(path, epochs):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, LOG_COLUMNS)
        writer.writeheader()
        for e in range(1, epochs + 1):
            writer.writerow({k: 1.0 / e for k in LOG_COLUMNS} | {"epoch": e})


@pytest.mark.parametrize("epochs", [2, 3, 7])
def test_the_epoch_axis_has_whole_numbers_only(tmp_path, epochs):
    write_log(tmp_path / "log.csv", epochs)
    fig = plot.draw_log(plot.read_log(tmp_path / "log.csv"))
    fig.canvas.draw()
    ticks = [t for t in fig.axes[0].get_xticks() if 1 <= t <= epochs]
    assert ticks and all(float(t).is_integer() for t in ticks)


def test_plot_command_draws_a_run_and_refuses_what_is_not_one(tmp_path, capsys):
    write_log(tmp_path / "log.csv", 3)
    assert plot.main([str(tmp_path)]) == 0
    with Image.open(tmp_path / "loss.png") as png:
        assert png.format == "PNG"
    assert plot.main([str(tmp_path / "log.csv"), "--out", str(tmp_path / "c.png")]) == 0
    assert (tmp_path / "c.png").is_file() and not list(tmp_path.glob("*.tmp-*"))
    (tmp_path / "notes.csv").write_text("a,b\n1,2\n")
    assert plot.main([str(tmp_path / "notes.csv")]) == 2
    assert f"{tmp_path / 'notes.csv'}: not a rawcap log.csv" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        plot.main([])
    assert stop.value.code == 2


def test_plot_compares_the_val_curves_of_several_runs(tmp_path, capsys):
    for name, epochs in (("a", 3), ("b", 5)):
        (tmp_path / name).mkdir()
        write_log(tmp_path / name / "log.csv", epochs)
    with pytest.raises(SystemExit) as stop:                 # one picture for two runs: name it
        plot.main([str(tmp_path / "a"), str(tmp_path / "b")])
    assert stop.value.code == 2 and "--out" in capsys.readouterr().err
    assert plot.main([str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "v.png")]) == 0
    with Image.open(tmp_path / "v.png") as png:
        assert png.format == "PNG"
    fig = plot.draw_comparison([(n, plot.read_log(tmp_path / n / "log.csv")) for n in "ab"])
    bleu, cider = fig.axes
    assert [line.get_label() for line in bleu.get_lines()] == ["a", "b"]
    assert list(cider.get_lines()[1].get_ydata()) == [1.0 / e for e in range(1, 6)]


def test_env_lists_the_libraries_and_the_blas():
    lines = env.report()
    for name in ("NumPy", "SciPy", "Pillow", "h5py", "Numba"):
        assert any(line.startswith(f"{name} ") and "not installed" not in line for line in lines), name
    blas = next(line for line in lines if line.startswith("NumPy "))
    assert "BLAS: " in blas and "unknown" not in blas


def test_gradcheck_kernels_without_the_simulator_is_an_error_not_a_traceback():
    environ = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    environ["PYTHONPATH"] = str(ROOT)
    done = subprocess.run([sys.executable, "-m", "rawcap.gradcheck", "--kernels", "all=1",
                           "--layer", "lstm_pointwise"], env=environ, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 2
    assert "error: --kernels all=1: lstm_pointwise:" in done.stderr
    assert "NUMBA_ENABLE_CUDASIM=1" in done.stderr and "Traceback" not in done.stderr
