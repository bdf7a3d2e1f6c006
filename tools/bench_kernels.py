"""Every version of every op, validated against version 0, then timed side by side.

    python tools/bench_kernels.py [--ops softmax_ce,lstm_sequence] [--repeats 50] [--json OUT]
    NUMBA_ENABLE_CUDASIM=1 python tools/bench_kernels.py --tiny --repeats 1   # the harness's own test

In the spirit of llm.c's dev/cuda benchmarks. Each case is one op's forward and backward at one
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
"""
import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from rawcap.backend import implementation, to_numpy, versions

TOLERANCE = 1e-4


@dataclass
class Case:
    """One op at one shape. `inputs(xp, rng)` makes the arrays; `run(version, inputs)` runs the
    forward and backward with that version and returns the outputs to validate; `torch(inputs)`
    (optional) returns a callable that does the same with PyTorch and returns the same outputs."""
    op: str
    shape: str
    inputs: Callable
    run: Callable
    bytes: int = 0              # minimum bytes moved by forward + backward (streaming ops)
    flops: int = 0              # floating-point operations (GEMM-bound ops)
    torch: Callable = None
    versions: tuple = None      # default: the op's registry versions


def fn(function, version):
    return implementation(function, version)


# --- the cases -----------------------------------------------------------------------------

def lstm_pointwise_case(N, H):
    def inputs(xp, rng):
        return [xp.asarray(rng.standard_normal(s), dtype=np.float32)
                for s in [(N, 4 * H), (N, H), (N, H), (N, H)]]

    def run(version, args):
        a, c_prev, dh, dc = args
        h, c, cache = fn("lstm_pointwise_forward", version)(a, c_prev)
        return (h, c, *fn("lstm_pointwise_backward", version)(dh, dc, cache))

    def torch_run(args):
        import torch
        a, c_prev, dh, dc = (torch.from_dlpack(x) for x in args)

        def go():
            a_ = a.detach().requires_grad_()
            c_ = c_prev.detach().requires_grad_()
            i, f, g, o = a_.chunk(4, dim=1)
            c = torch.sigmoid(f) * c_ + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            torch.autograd.backward([h, c], [dh, dc])
            return h, c, a_.grad, c_.grad
        return go
    # forward reads a, c_prev and writes h, c (7NH); backward reads dh, dc and what a and c_prev
    # hold (7NH) and writes da, dc_prev (5NH)
    return Case("lstm_pointwise", f"N={N} H={H}", inputs, run, bytes=19 * N * H * 4, torch=torch_run)


def softmax_ce_case(N, T, V):
    def inputs(xp, rng):
        mask = rng.random((N, T)) < 0.8
        return [xp.asarray(4 * rng.standard_normal((N, T, V)), dtype=np.float32),
                xp.asarray(rng.integers(0, V, (N, T))), xp.asarray(mask)]

    def run(version, args):
        loss, cache = fn("softmax_cross_entropy_forward", version)(*args)
        return loss, fn("softmax_cross_entropy_backward", version)(cache)

    def torch_run(args):
        import torch
        import torch.nn.functional as F
        logits, targets, mask = (torch.from_dlpack(x) for x in args)
        ignored = torch.where(mask, targets, torch.full_like(targets, -100))

        def go():
            x = logits.detach().requires_grad_()
            loss = F.cross_entropy(x.view(-1, V), ignored.view(-1), ignore_index=-100)
            loss.backward()
            return loss, x.grad
        return go
    # read the logits, write dlogits
    return Case("softmax_ce", f"N={N} T={T} V={V}", inputs, run, bytes=2 * N * T * V * 4,
                torch=torch_run)


def attention_case(N, L, D, H, A):
    def inputs(xp, rng):
        shapes = [(N, L, D), (N, L, A), (N, H), (H, A), (A,), (N, D), (N, L)]
        return [xp.asarray(0.5 * rng.standard_normal(s), dtype=np.float32) for s in shapes]

    def run(version, args):
        *forward_args, dcontext, dalpha = args
        context, alpha, cache = fn("attention_forward", version)(*forward_args)
        return (context, alpha, *fn("attention_backward", version)(dcontext, dalpha, cache))

    def torch_run(args):
        import torch
        tensors = [torch.from_dlpack(x) for x in args]

        def go():
            feats, proj, h, Wh, v = (t.detach().requires_grad_() for t in tensors[:5])
            z = torch.tanh(proj + (h @ Wh)[:, None, :])
            alpha = torch.softmax(z @ v, dim=1)
            context = (alpha[:, None, :] @ feats)[:, 0, :]
            torch.autograd.backward([context, alpha], tensors[5:])
            return context, alpha, feats.grad, proj.grad, h.grad, Wh.grad, v.grad
        return go
    # forward reads feats and proj, writes alpha and context; backward reads feats, proj
    # (or z) and writes dfeats and dproj
    return Case("attention", f"N={N} L={L} D={D} A={A}", inputs, run,
                bytes=(3 * N * L * D + 3 * N * L * A) * 4, torch=torch_run)


def conv2d_case(N, C, S, F):
    def inputs(xp, rng):
        return [xp.asarray(rng.standard_normal(s), dtype=np.float32)
                for s in [(N, C, S, S), (F, C, 3, 3), (N, F, S, S)]]

    def run(version, args):
        x, w, dout = args
        out, cache = fn("conv2d_forward", version)(x, w, None, pad=1)
        dx, dw, _ = fn("conv2d_backward", version)(dout, cache)
        return out, dx, dw

    def torch_run(args):
        import torch
        import torch.nn.functional as Fn
        x0, w0, dout = (torch.from_dlpack(t) for t in args)

        def go():
            x, w = x0.detach().requires_grad_(), w0.detach().requires_grad_()
            out = Fn.conv2d(x, w, padding=1)
            out.backward(dout)
            return out, x.grad, w.grad
        return go
    # three GEMMs of 2 * N * F * C*9 * S*S operations each
    return Case("conv2d", f"N={N} C={C} {S}x{S} F={F} k3", inputs, run,
                flops=3 * 2 * N * F * C * 9 * S * S, torch=torch_run)


def maxpool2d_case(N, C, S):
    def inputs(xp, rng):
        return [xp.asarray(rng.standard_normal((N, C, S, S)), dtype=np.float32),
                xp.asarray(rng.standard_normal((N, C, S // 2, S // 2)), dtype=np.float32)]

    def run(version, args):
        x, dout = args
        out, cache = fn("maxpool2d_forward", version)(x, 2, 2)
        return out, fn("maxpool2d_backward", version)(dout, cache)

    def torch_run(args):
        import torch
        import torch.nn.functional as F
        x0, dout = (torch.from_dlpack(t) for t in args)

        def go():
            x = x0.detach().requires_grad_()
            out = F.max_pool2d(x, 2, 2)
            out.backward(dout)
            return out, x.grad
        return go
    # forward reads x, writes x/4; backward reads dout (x/4) and writes dx
    return Case("maxpool2d", f"N={N} C={C} {S}x{S}", inputs, run,
                bytes=int(2.5 * N * C * S * S) * 4, torch=torch_run)


def bias_relu_case(N, C, S):
    def inputs(xp, rng):
        return [xp.asarray(rng.standard_normal(s), dtype=np.float32)
                for s in [(N, C, S, S), (C,), (N, C, S, S)]]

    def run(version, args):
        x, b, dout = args
        out, cache = fn("bias_relu_forward", version)(x, b)
        return (out, *fn("bias_relu_backward", version)(dout, cache))

    def torch_run(args):
        import torch
        x0, b0, dout = (torch.from_dlpack(t) for t in args)

        def go():
            x, b = x0.detach().requires_grad_(), b0.detach().requires_grad_()
            out = torch.relu(x + b[:, None, None])
            out.backward(dout)
            return out, x.grad, b.grad
        return go
    # forward reads x, writes out; backward reads dout and out, writes dx
    return Case("bias_relu", f"N={N} C={C} {S}x{S}", inputs, run, bytes=5 * N * C * S * S * 4,
                torch=torch_run)


def embedding_case(K, V, D):
    def inputs(xp, rng):
        return [xp.asarray(rng.integers(0, V, K)), xp.asarray(rng.standard_normal((V, D)), dtype=np.float32),
                xp.asarray(rng.standard_normal((K, D)), dtype=np.float32)]

    def run(version, args):
        ids, W, dout = args
        out, cache = fn("embedding_forward", version)(ids, W)
        return out, fn("embedding_backward", version)(dout, cache)

    def torch_run(args):
        import torch
        import torch.nn.functional as F
        ids, W0, dout = (torch.from_dlpack(t) for t in args)

        def go():
            W = W0.detach().requires_grad_()
            out = F.embedding(ids, W)
            out.backward(dout)
            return out, W.grad
        return go
    # forward reads K rows, writes them; backward reads dout and writes dW
    return Case("embedding", f"tokens={K} V={V} D={D}", inputs, run,
                bytes=(3 * K * D + V * D) * 4, torch=torch_run)


def adam_case(P):
    def inputs(xp, rng):
        return [xp.asarray(rng.standard_normal(P), dtype=np.float32) for _ in range(3)] + \
               [xp.asarray(rng.random(P), dtype=np.float32)]

    def run(version, args):
        p, g, m, v = (a.copy() for a in args)
        fn("adam_update", version)(p, g, m, v, 1e-3, 0.9, 0.999, 1e-8, 3)
        return p, m, v

    def torch_run(args):
        import torch
        p0, g, m0, v0 = (torch.from_dlpack(t) for t in args)
        p = p0.clone()
        optimizer = torch.optim.Adam([p], lr=1e-3, betas=(0.9, 0.999), eps=1e-8, fused=True)
        p.grad = g

        def go():
            with torch.no_grad():
                p.copy_(p0)
            optimizer.state[p] = {"step": torch.tensor(2.0, device=p.device),
                                  "exp_avg": m0.clone(), "exp_avg_sq": v0.clone()}
            optimizer.step()
            return p, optimizer.state[p]["exp_avg"], optimizer.state[p]["exp_avg_sq"]
        return go
    # read p, g, m, v; write p, m, v (the harness's copies of p, m, v are not counted)
    return Case("adam", f"P={P}", inputs, run, bytes=7 * P * 4, torch=torch_run)


def lstm_sequence_case(N, T, D, H):
    def inputs(xp, rng):
        shapes = [(N, T, D), (N, H), (N, H), (D, 4 * H), (H, 4 * H), (4 * H,), (N, T, H)]
        return [xp.asarray(0.3 * rng.standard_normal(s), dtype=np.float32) for s in shapes]

    def run(version, args):
        from rawcap.backend import kernels_pinned
        *forward_args, dh = args
        with kernels_pinned(f"lstm_pointwise={version}"):
            from rawcap.layers import lstm_backward, lstm_forward
            hs, cache = lstm_forward(*forward_args)
            dx, _, _, dWx, dWh, db = lstm_backward(dh, cache)
            return hs, dx, dWx, dWh, db

    def torch_run(args):
        import torch
        x0, h0, c0, Wx, Wh, b, dh = (torch.from_dlpack(t) for t in args)
        lstm = torch.nn.LSTM(D, H, batch_first=True).to(x0.device)
        with torch.no_grad():
            lstm.weight_ih_l0.copy_(Wx.T), lstm.weight_hh_l0.copy_(Wh.T)
            lstm.bias_ih_l0.copy_(b), lstm.bias_hh_l0.zero_()

        def go():
            lstm.zero_grad()
            x = x0.detach().requires_grad_()
            hs, _ = lstm(x, (h0[None], c0[None]))
            hs.backward(dh)
            return (hs, x.grad, lstm.weight_ih_l0.grad.T, lstm.weight_hh_l0.grad.T,
                    lstm.bias_ih_l0.grad)
        return go
    # every GEMM of forward and backward: x @ Wx, h @ Wh (2NT*4H*(D+H)), three times over
    return Case("lstm_sequence", f"N={N} T={T} D={D} H={H}", inputs, run,
                flops=3 * 2 * N * T * 4 * H * (D + H), torch=torch_run,
                versions=tuple(versions("lstm_pointwise")))


def cases(tiny):
    """The model's real shapes (the Flickr8k recipe: 32 images x 5 captions, T=20, V=2541,
    S=112, channels 16..128, E=128, H=256, A=128, L=49) and a large shape per op."""
    if tiny:
        return [lstm_pointwise_case(3, 5), softmax_ce_case(2, 3, 33), attention_case(2, 5, 3, 4, 3),
                conv2d_case(1, 2, 5, 3), maxpool2d_case(1, 2, 6), bias_relu_case(1, 2, 3),
                embedding_case(7, 5, 3), adam_case(33), lstm_sequence_case(2, 3, 4, 5)]
    return [
        lstm_pointwise_case(160, 256), lstm_pointwise_case(4096, 1024),
        softmax_ce_case(160, 20, 2541), softmax_ce_case(64, 64, 32768),
        attention_case(160, 49, 128, 256, 128), attention_case(512, 196, 256, 512, 256),
        conv2d_case(32, 3, 112, 16), conv2d_case(32, 64, 14, 128), conv2d_case(64, 64, 56, 128),
        maxpool2d_case(32, 16, 112), maxpool2d_case(64, 64, 112),
        bias_relu_case(32, 16, 112), bias_relu_case(64, 64, 112),
        embedding_case(160 * 20, 2541, 128), embedding_case(65536, 32768, 512),
        adam_case(1_600_000), adam_case(64_000_000),
        lstm_sequence_case(64, 20, 512, 512),
    ]


# --- measuring -----------------------------------------------------------------------------

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


def measure(case, xp, timer, bandwidth, torch):
    """The rows of one case: version 0, the kernels, and torch when it is at hand."""
    args = case.inputs(xp, np.random.default_rng(0))
    runners = {str(v): (lambda v=v: case.run(v, args)) for v in (case.versions or versions(case.op))}
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
    p.add_argument("--json", metavar="OUT", help="also write the table and environment as JSON")
    args = p.parse_args(argv)

    from kernels.launch import simulator
    if simulator():
        xp = np
    else:
        try:
            import cupy as xp
            xp.cuda.runtime.getDeviceCount()
        except Exception as e:
            print(f"error: bench_kernels needs a GPU with CuPy, or NUMBA_ENABLE_CUDASIM=1 ({e})",
                  file=sys.stderr)
            return 2
    selected = cases(args.tiny)
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
    print(f"device-to-device copy: {bandwidth:.1f} GB/s"
          + ("  (simulator: timings mean nothing)" if xp is np else ""))
    if torch is None:
        print("no PyTorch with CUDA here: no reference rows")
    rows = []
    for case in selected:
        for row in measure(case, xp, timer, bandwidth, torch):
            print(format_row(row), flush=True)
            rows.append(row)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"environment": env, "copy_gb_s": bandwidth, "rows": rows}, f, indent=1)
    return 0 if all(r["valid"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
