"""tools/gpu_check.py without a GPU: it says "no GPU", writes nothing and exits with status 2."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("simulator", ["1", None])
def test_gpu_check_without_a_gpu_says_so_and_writes_nothing(tmp_path, simulator):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    env["PYTHONPATH"] = str(ROOT)
    if simulator:
        env["NUMBA_ENABLE_CUDASIM"] = simulator
    else:
        try:
            import cupy
            cupy.cuda.runtime.getDeviceCount()
            pytest.skip("this machine has a usable GPU")
        except Exception:       # no CuPy, no driver, no device: the case under test
            pass
    run = subprocess.run([sys.executable, "-m", "tools.gpu_check", "--out", str(tmp_path / "gpu")],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert run.stderr.startswith("no GPU: ") and "nothing was written" in run.stderr
    assert not (tmp_path / "gpu").exists()


def test_gpu_check_help_lists_the_files():
    run = subprocess.run([sys.executable, "-m", "tools.gpu_check", "--help"], cwd=ROOT,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True)
    assert run.returncode == 0
    assert "bench_kernels.txt" in run.stdout and "deterministic_a/b.txt" in run.stdout


def test_gpu_check_records_each_step_with_commit_and_versions(tmp_path, monkeypatch):
    """The machinery, with a stand-in GPU and two stand-in steps: one that passes and one that
    overruns its budget (recorded as timed out, exit status 1)."""
    from tools import gpu_check
    monkeypatch.setattr(gpu_check, "find_gpu", lambda: ("Stand-in GPU 80GB", None))
    monkeypatch.setattr(gpu_check, "STEPS", [
        ("env.txt", 20, [sys.executable, "-c", "print('hello from a step')"]),
        ("slow.txt", 1, [sys.executable, "-c", "import time; time.sleep(30)"])])
    assert gpu_check.main(["--out", str(tmp_path)]) == 1
    folder = tmp_path / "Stand-in-GPU-80GB"
    env, slow, summary = ((folder / name).read_text() for name in ("env.txt", "slow.txt", "summary.txt"))
    for text in (env, slow, summary):
        assert text.startswith("commit: ") and "NumPy " in text and "Numba " in text
    assert "hello from a step" in env and "status: ok" in env
    assert "timed out after 1 s" in slow and "timed out" in summary
