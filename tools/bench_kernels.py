"""Every version of every op, validated against version 0, then timed side by side.

    python -m tools.bench_kernels [--ops softmax_ce,lstm_sequence] [--repeats 50] [--json OUT]
    NUMBA_ENABLE_CUDASIM=1 python -m tools.bench_kernels --tiny --repeats 1   # the harness's own test
    python -m tools.bench_kernels --device cpu --recipe-shapes --ops lstm_pointwise,embedding

In the spirit of llm.c's dev/cuda benchmarks. Each case (tools/bench_cases.py) is one op's forward and backward at one
shape: the model's real shape (the Flickr8k recipe in docs/flickr8k.md) and a large one. For each
version (0 = the layer on CuPy arrays, 1, 2, ... = kernels/, "torch" = PyTorch/cuDNN when PyTorch
with CUDA is installed) the harness

1. validates: every output against version 0's, max |a - b| / max |b| below 1e-4 (FP32);
   a version that fails is reported and not timed;
2. times: warm-up runs, then the median of --repeats runs measured with CUDA events. Before each
   run a buffer twice the size of the L2 cache is written, so inputs come from memory as they do
   in training, not from a warm L2.

Columns: the median ms; GB/s from the minimum bytes the op must move (its inputs read and its
outputs written once, counted per case below) or TFLOP/s for GEMM-bound cases; that rate as a
% of the device-to-device copy bandwidth measured in the same run (cupy copy of 512 MiB); and
"vs torch" = torch's ms / this version's ms (above 1: faster than the reference).
FP32 everywhere, TF32 off on both sides (cuBLAS through CuPy does not use TF32 unless asked).
Under the simulator the shapes are tiny and the timings mean nothing: that run tests the harness.
--device cpu runs version 0 and the CPU versions (kernels/cpu/) on NumPy arrays, timed with
perf_counter (no cache scrubbing: an input smaller than the CPU's caches may stay in them), the
copy bandwidth being NumPy's memory copy; there is no PyTorch reference row.
"""
import argparse
import json
import os
import subprocess
import sys
import time
import numpy as np

from rawcap.backend import to_numpy

from tools.bench_cases import case_versions, cases

TOLERANCE = 1e-4


class Timer:
    """Median milliseconds of a callable: CUDA events on a GPU (after writing an L2-scrubbing
    buffer), perf_counter under the simulator."""

    def __init__(self, xp, warmup, repeats):
        self.xp, self.warmup, self.repeats = xp, warmup, repeats
        self.scrub = None
        if xp is not np:
            l2 = xp.cuda.Device().attributes["L2CacheSize"]
            self.scrub = xp.empty(2 * l2, dtype=np.uint8)

    def median_ms(self, run):
        for _ in range(self.warmup):
            run()
        samples = []
        for k in range(self.repeats):
            if self.scrub is None:
                start = time.perf_counter()
                run()
                samples.append(1e3 * (time.perf_counter() - start))
                continue
            self.scrub.fill(k % 256)
            start, end = self.xp.cuda.Event(), self.xp.cuda.Event()
            start.record()
            run()
            end.record()
            end.synchronize()
            samples.append(self.xp.cuda.get_elapsed_time(start, end))
        return float(np.median(samples))


def copy_bandwidth(xp, timer, size):
    """GB/s of a device-to-device copy of `size` bytes (read + write counted)."""
    src, dst = xp.ones(size // 4, np.float32), xp.empty(size // 4, np.float32)
    ms = timer.median_ms(lambda: dst.__setitem__(Ellipsis, src))
    return 2 * size / ms / 1e6


def max_relative_difference(got, want):
    worst = 0.0
    for a, b in zip(got, want, strict=True):
        a, b = to_numpy(a).astype(np.float64), to_numpy(b).astype(np.float64)
        if a.shape != b.shape:
            return float("inf")
        scale = np.abs(b).max(initial=0.0)
        worst = max(worst, float(np.abs(a - b).max(initial=0.0) / scale) if scale else 0.0)
    return worst


def torch_on_gpu():
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    return torch


def measure(case, xp, timer, bandwidth, torch, device="cuda"):
    """The rows of one case: version 0, the device's versions, and torch when it is at hand."""
    args = case.inputs(xp, np.random.default_rng(0))
    runners = {str(v): (lambda v=v: case.run(v, args)) for v in case_versions(case, device)}
    if torch is not None and case.torch is not None:
        runners["torch"] = case.torch(args)
    want = runners["0"]()
    rows = []
    for version, run in runners.items():
        error = max_relative_difference(run(), want)
        row = dict(op=case.op, version=version, shape=case.shape, max_rel_diff=error,
                   valid=error <= TOLERANCE)
        if row["valid"]:
            ms = timer.median_ms(run)
            row["ms"] = ms
            if case.flops:
                row["tflops"] = case.flops / ms / 1e9
            else:
                row["gb_s"] = case.bytes / ms / 1e6
                row["pct_copy"] = 100 * row["gb_s"] / bandwidth
        rows.append(row)
    reference = next((r for r in rows if r["version"] == "torch" and "ms" in r), None)
    for row in rows:
        if reference and "ms" in row:
            row["vs_torch"] = reference["ms"] / row["ms"]
    return rows


def format_row(row):
    rate = (f"{row['tflops']:8.2f} TFLOP/s" if "tflops" in row else
            f"{row['gb_s']:8.1f} GB/s {row['pct_copy']:5.1f}%" if "gb_s" in row else "")
    timing = f"{row['ms']:9.4f}" if "ms" in row else "  INVALID"
    vs = f"{row['vs_torch']:6.2f}x" if "vs_torch" in row else ""
    return (f"{row['op']:<15} {row['version']:>5}  {row['shape']:<28} {timing} ms  {rate:<22} "
            f"{vs:>7}  (max rel diff {row['max_rel_diff']:.1e})")


def environment(xp):
    """Device, library versions and commit: what a committed table must carry."""
    from rawcap.env import report
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {"command": " ".join(["python", *sys.argv]), "commit": commit, "report": report(),
            "simulator": os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ops", help="comma-separated ops to run (default: all)")
    p.add_argument("--repeats", type=int, default=50, help="timed runs per row (default 50)")
    p.add_argument("--warmup", type=int, default=5, help="untimed runs first (default 5)")
    p.add_argument("--tiny", action="store_true", help="tiny shapes (the simulator's test run)")
    p.add_argument("--recipe-shapes", action="store_true",
                   help="only the Flickr8k recipe's shapes, not the large ones (which take "
                        "minutes and GBs of memory on a CPU)")
    p.add_argument("--json", metavar="OUT", help="also write the table and environment as JSON")
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda",
                   help="cuda: the CUDA kernels (CuPy arrays, or the simulator); cpu: the CPU "
                        "versions of kernels/cpu/ on NumPy arrays (default: cuda)")
    args = p.parse_args(argv)

    from kernels.launch import simulator
    if args.device == "cpu" or simulator():
        xp = np
    else:
        try:
            import cupy as xp
            xp.cuda.runtime.getDeviceCount()
        except Exception as e:
            print(f"error: bench_kernels needs a GPU with CuPy, or NUMBA_ENABLE_CUDASIM=1 ({e})",
                  file=sys.stderr)
            return 2
    selected = cases(args.tiny, large=not args.recipe_shapes)
    if args.ops:
        wanted = set(args.ops.split(","))
        unknown = wanted - {c.op for c in selected}
        if unknown:
            p.error(f"--ops: unknown {sorted(unknown)}; the ops are {sorted({c.op for c in selected})}")
        selected = [c for c in selected if c.op in wanted]

    env = environment(xp)
    print("\n".join(env["report"]))
    print(f"commit {env['commit']}: {env['command']}")
    timer = Timer(xp, args.warmup, args.repeats)
    torch = torch_on_gpu() if xp is not np else None
    bandwidth = copy_bandwidth(xp, timer, (1 << 20) if args.tiny else (512 << 20))
    if args.device == "cpu":
        print(f"memory copy (NumPy): {bandwidth:.1f} GB/s; CPU versions, no PyTorch rows")
    else:
        print(f"device-to-device copy: {bandwidth:.1f} GB/s"
              + ("  (simulator: timings mean nothing)" if xp is np else ""))
        if torch is None:
            print("no PyTorch with CUDA here: no reference rows")
    rows = []
    for case in selected:
        for row in measure(case, xp, timer, bandwidth, torch, args.device):
            print(format_row(row), flush=True)
            rows.append(row)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"environment": env, "copy_gb_s": bandwidth, "rows": rows}, f, indent=1)
    return 0 if all(r["valid"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
