"""tools/ptx_check.py: every kernel, compiled for float32 arrays, has no float64 instruction.

Compiling needs Numba's NVVM (the CUDA toolkit's compiler library), not a GPU; the simulator
compiles nothing, so the check runs in a subprocess without NUMBA_ENABLE_CUDASIM. Where NVVM
is missing the test skips and says so.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_float32_kernels_compile_without_float64_instructions():
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    run = subprocess.run([sys.executable, "-m", "tools.ptx_check"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    if run.returncode == 3:
        pytest.skip(run.stdout.strip())
    assert run.returncode == 0, run.stdout + run.stderr
    assert "attention_warp.forward" in run.stdout and "softmax_ce._forward" in run.stdout


def test_ptx_check_refuses_the_simulator():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", PYTHONPATH=str(ROOT))
    run = subprocess.run([sys.executable, "-m", "tools.ptx_check"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "simulator" in run.stderr
