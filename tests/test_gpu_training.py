"""End to end on a real GPU: `python -m rawcap.train --device cuda` against the same run on the CPU.

Runs only where CuPy sees a GPU and the simulator is off (`pytest -m gpu` on a GPU machine);
elsewhere it skips and says why. Two epochs of the tiny shapes run of tests/test_cli.py on
each device, same seed: the GPU's kernels and cuBLAS sum in other orders than NumPy, so the
float32 losses agree closely but not bit for bit.
"""
import csv

import numpy as np
import pytest

from rawcap import train
from rawcap.data.shapes import generate_shapes

pytestmark = pytest.mark.gpu
TINY = ["--image-size", "32", "--channels", "4,8", "--embed-size", "8", "--hidden-size", "16",
        "--attention-size", "8", "--batch-size", "8", "--epochs", "2", "--quiet"]


@pytest.fixture(scope="module")
def gpu():
    from kernels.launch import simulator
    if simulator():
        pytest.skip("NUMBA_ENABLE_CUDASIM=1: this test needs a real GPU (run pytest -m gpu there)")
    try:
        import cupy
        cupy.cuda.runtime.getDeviceCount()
    except Exception as e:      # no CuPy, no driver, no device
        pytest.skip(f"no usable GPU: {e}")


def losses(run_dir):
    with open(run_dir / "log.csv") as f:
        return np.array([float(row["train_loss"]) for row in csv.DictReader(f)])


def test_cuda_training_matches_the_cpu(gpu, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    generate_shapes(tmp_path / "shapes", n_images=50, image_size=32, workers=1, progress=False)
    for device in ("cpu", "cuda"):
        assert train.main(TINY + ["--data-dir", "shapes", "--device", device,
                                  "--out", str(tmp_path / device)]) == 0
    cpu, cuda = losses(tmp_path / "cpu"), losses(tmp_path / "cuda")
    np.testing.assert_allclose(cuda, cpu, rtol=1e-3)
    assert (tmp_path / "cuda" / "metrics.json").is_file()


def test_deterministic_cuda_runs_repeat_exactly(gpu, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    generate_shapes(tmp_path / "shapes", n_images=50, image_size=32, workers=1, progress=False)
    for name in ("a", "b"):
        assert train.main(TINY + ["--data-dir", "shapes", "--device", "cuda", "--deterministic",
                                  "--out", str(tmp_path / name)]) == 0
    np.testing.assert_array_equal(losses(tmp_path / "a"), losses(tmp_path / "b"))
