"""Everything a GPU can tell about rawcap, in one command and under 8 minutes, as committed files.

    PYTHONPATH=. python -m tools.gpu_check [--out docs/results/gpu] [--budget 470]

Run from a working tree on a machine with a GPU, CuPy, numba-cuda and PyTorch (nothing is
downloaded). Writes docs/results/gpu/<gpu name>/, one file per step, each opening with the
commit, the date, the GPU and the versions (python -m rawcap.env), and the command it ran:

  env.txt                 python -m rawcap.env
  pytest_gpu.txt          pytest -m gpu: every kernel against version 0 on the GPU; its summary
  ptx_check.txt           python -m tools.ptx_check: no float64 instruction on float32 arrays
  launch_cost.txt         python -m tools.launch_cost: host microseconds per launch
  bench_kernels.txt/.json python -m tools.bench_kernels: every op's versions, timed, vs cuDNN
  bench_default.txt       python -m rawcap.bench --device cuda (the default kernels)
  bench_all0.txt          the same with --kernels all=0 (the CuPy layers)
  bench_torch.txt         the same with --compare-torch (PyTorch's step, same shapes)
  train.txt               python -m rawcap.train --device cuda (the default run), timed, with
                          its test BLEU-4
  deterministic_a/b.txt   two one-epoch --deterministic runs; b's file compares their losses
                          exactly
  summary.txt             each step: ok / failed / timed out, seconds

Each step has a time budget (STEPS, guessed: nothing has been timed on a GPU yet, Numba's
compilation in every subprocess included); a step that overruns is stopped and recorded as
timed out, and the rest still run. No step runs past --budget seconds in all: the last one,
pytest, gets what is left. train.txt generates the built-in dataset in data/shapes if absent.
Exit status: 0 when every step passed, 1 when one failed or timed out, 2 when there is no
usable GPU (then nothing is written).
"""
import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable

# (file, seconds, command); {out} is the result directory, {tmp} a scratch directory.
STEPS = [      # the cheap records first; pytest, which takes what is left, last
    ("env.txt", 15, [PY, "-m", "rawcap.env"]),
    ("ptx_check.txt", 25, [PY, "-m", "tools.ptx_check"]),
    ("launch_cost.txt", 15, [PY, "-m", "tools.launch_cost"]),
    ("bench_default.txt", 20, [PY, "-m", "rawcap.bench", "--device", "cuda"]),
    ("bench_all0.txt", 20, [PY, "-m", "rawcap.bench", "--device", "cuda", "--kernels", "all=0"]),
    ("bench_torch.txt", 35, [PY, "-m", "rawcap.bench", "--device", "cuda", "--compare-torch"]),
    ("bench_kernels.txt", 60, [PY, "-m", "tools.bench_kernels", "--repeats", "20",
                               "--json", "{out}/bench_kernels.json"]),
    ("train.txt", 130, [PY, "-m", "rawcap.train", "--device", "cuda", "--quiet", "--out", "{tmp}/train"]),
    ("deterministic_a.txt", 35, [PY, "-m", "rawcap.train", "--device", "cuda", "--deterministic",
                                 "--epochs", "1", "--quiet", "--out", "{tmp}/a"]),
    ("deterministic_b.txt", 35, [PY, "-m", "rawcap.train", "--device", "cuda", "--deterministic",
                                 "--epochs", "1", "--quiet", "--out", "{tmp}/b"]),
    ("pytest_gpu.txt", 120, [PY, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider", "tests"]),
]


def find_gpu():
    """(the GPU's name, None) or (None, why there is no usable GPU)."""
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return None, "NUMBA_ENABLE_CUDASIM=1 (the simulator, not a GPU)"
    try:
        import cupy
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return None, "the CUDA driver sees no device"
        name = cupy.cuda.runtime.getDeviceProperties(0)["name"]
        return (name.decode() if isinstance(name, bytes) else name), None
    except ImportError:
        return None, "CuPy is not installed"
    except Exception as e:      # CUDARuntimeError: no driver, no device
        return None, str(e)


def commit():
    """The checkout's commit, with "+ uncommitted changes" when the tree differs from it."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    head = git("rev-parse", "HEAD") or "unknown (not a git checkout)"
    return head + (" + uncommitted changes" if git("status", "--porcelain", "--untracked-files=no") else "")


def run_step(command, seconds, env):
    """-> (status, wall seconds, output) of one command, stopped after `seconds`."""
    start = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=seconds)
        status = "ok" if done.returncode == 0 else f"failed (exit {done.returncode})"
        output = done.stdout + done.stderr
    except subprocess.TimeoutExpired as e:
        status = f"timed out after {seconds} s"
        output = "".join(x.decode() if isinstance(x, bytes) else (x or "") for x in (e.stdout, e.stderr))
    return status, time.perf_counter() - start, output


def losses(run_dir):
    """The train_loss column of a run's log.csv, as text (compared exactly)."""
    import csv
    with open(run_dir / "log.csv") as f:
        return [row["train_loss"] for row in csv.DictReader(f)]


def write(path, text):
    """Write through a temporary file and a rename, so a stopped run leaves no half file."""
    partial = path.with_suffix(path.suffix + ".partial")
    partial.write_text(text)
    partial.replace(path)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m tools.gpu_check", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--out", default=str(ROOT / "docs" / "results" / "gpu"),
                   help="results root; the files go to OUT/<gpu name>/")
    p.add_argument("--budget", type=float, default=470.0,
                   help="seconds; no step starts once they are spent (default 470, under 8 minutes)")
    args = p.parse_args(argv)

    gpu, problem = find_gpu()
    if gpu is None:
        print(f"no GPU: {problem}. tools.gpu_check needs an NVIDIA GPU with CuPy and numba-cuda; "
              f"nothing was written.", file=sys.stderr)
        return 2
    out = Path(args.out) / re.sub(r"[^A-Za-z0-9.]+", "-", gpu).strip("-")
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    versions = subprocess.run([PY, "-m", "rawcap.env"], cwd=ROOT, env=env, capture_output=True,
                              text=True).stdout
    header = (f"commit: {commit()}\ndate: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}\n"
              f"{versions.strip()}\n")
    began, summary, all_ok = time.perf_counter(), [], True
    with tempfile.TemporaryDirectory() as tmp:
        for name, seconds, command in STEPS:
            left = args.budget - (time.perf_counter() - began)
            if left < 5:
                summary.append(f"{name:<22} skipped: the {args.budget:.0f} s budget is spent")
                all_ok = False
                continue
            command = [part.format(out=out, tmp=tmp) for part in command]
            status, wall, output = run_step(command, min(seconds, left), env)
            print(f"{name:<22} {status} ({wall:.0f} s)", flush=True)
            summary.append(f"{name:<22} {status:<28} {wall:6.1f} s")
            all_ok = all_ok and status == "ok"
            shown = "\n".join(output.splitlines()[-60:]) if name == "pytest_gpu.txt" else output
            extra = ""
            if name == "train.txt" and status == "ok":
                metrics = json.loads((Path(tmp) / "train" / "metrics.json").read_text())
                extra = f"\ntest BLEU-4: {metrics['bleu4']:.4f}   wall time: {wall:.1f} s\n"
            if name == "deterministic_b.txt" and status == "ok" and (Path(tmp) / "a" / "log.csv").exists():
                a, b = losses(Path(tmp) / "a"), losses(Path(tmp) / "b")
                verdict = "identical" if a == b else "DIFFERENT"
                extra = f"\ntrain losses, run a: {a}\ntrain losses, run b: {b}\n{verdict}\n"
                if a != b:
                    summary[-1] += "  losses differ"
                    all_ok = False
            write(out / name, f"{header}command: {' '.join(command)}\nstatus: {status}, {wall:.1f} s\n\n"
                              f"{shown}{extra}")
    write(out / "summary.txt", header + f"\ntools.gpu_check, {time.perf_counter() - began:.0f} s in all\n"
          + "\n".join(summary) + "\n")
    print(f"wrote {out}")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
