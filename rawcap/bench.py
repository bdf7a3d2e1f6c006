"""Time one training step of the captioner on random data: forward, backward, optimizer step.

    python -m rawcap.bench [--device cpu|cuda] [--batch-size 32] [--captions-per-image 5] [--steps 10]
    python -m rawcap.bench --compare-torch          # then the same step in PyTorch, for scale
    python -m rawcap.bench --profile                # then where a step goes, op by op
    python -m rawcap.bench --count                  # what a GPU step launches and syncs (no GPU)

Warm-up steps first, then the median of `--steps` timed steps of each part; the figure that
matters (images per second through a whole step) is printed last.

--compare-torch then times tools/torch_reference.py, the same model in PyTorch (LSTMCell decoder,
autograd, torch.optim.Adam), on the same device, shapes, dropout and float32, TF32 off, and prints
the median whole step of each and their ratio. It needs PyTorch and a checkout of the repository
(tools/ is not installed with rawcap). PyTorch gets as many CPU threads as NumPy's BLAS has, and
those come from the environment when NumPy is imported ($OPENBLAS_NUM_THREADS, else
$OMP_NUM_THREADS, else one per CPU): `OMP_NUM_THREADS=2 python -m rawcap.bench --compare-torch`
runs both sides on two threads.

--count runs one step of `rawcap.train.train_step` at the Flickr8k recipe's structure (T from
--length, 4 conv blocks, f_beta, dropout, Adam, clipping that scales the gradients) with tiny widths, on arrays that
stand for CuPy arrays, with each op's GPU default (the CUDA kernels, in Numba's CUDA simulator),
and prints how many kernels, cuBLAS calls and other CuPy operations it launches, and where it
reads device values on the host (rawcap/count.py says how each operation is counted). No GPU
is needed; the counts are the GPU path's, whatever the widths.

--profile times every call of an op of rawcap.backend (the device synchronised around each)
during the timed steps and prints a table: op function, version, calls and milliseconds per
step, share of the step; the rest of the step (the GEMMs of the affine and LSTM layers, the
model's glue) is one line.
"""
import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from collections import defaultdict
from contextlib import nullcontext

from .backend import OPS, get_device, profiling, set_kernels, version_in_effect
from .cli import positive_int
from .model import Config, backward, forward, init_params, to_device, trainable
from .optim import make_optimizer


def synchronize(xp):
    if xp.__name__ == "cupy":
        xp.cuda.Device().synchronize()


def numpy_threads():
    """The threads NumPy's BLAS (OpenBLAS) runs on, as it read them from the environment at
    import: $OPENBLAS_NUM_THREADS, else $OMP_NUM_THREADS, else one per CPU."""
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(variable, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    return os.cpu_count() or 1


def find_torch_reference():
    """The path of tools/torch_reference.py in the checkout this package sits in (tools/ is not
    installed), or an error message: PyTorch missing, or no checkout. Nothing is imported yet:
    PyTorch loads its own OpenMP runtime, which must not be in the process while rawcap is timed."""
    if importlib.util.find_spec("torch") is None:
        return None, "--compare-torch needs PyTorch (pip install torch)"
    path = Path(__file__).resolve().parents[1] / "tools" / "torch_reference.py"
    if not path.is_file():
        return None, f"--compare-torch needs a checkout of rawcap: {path} not found"
    return path, None


TORCH_TIMING = """
import importlib.util, json, sys
from rawcap.model import Config
spec = importlib.util.spec_from_file_location("torch_reference", sys.argv[1])
reference = importlib.util.module_from_spec(spec)
spec.loader.exec_module(reference)
import torch
a = json.loads(sys.argv[2])
seconds = reference.time_step(Config.from_dict(a["config"]), a["batch_size"], a["captions_per_image"],
                              a["length"], a["device"], a["steps"], a["warmup"], threads=a["threads"])
print(json.dumps({"seconds": seconds, "torch": torch.__version__}))
"""


def compare_torch(reference_path, config, args, rawcap_seconds):
    """Time the PyTorch model at the bench's shapes and print both medians and their ratio.

    PyTorch runs in a fresh Python process with the environment rawcap was started with (and
    rawcap's malloc options, kernels/cpu/memory.py, where it set them): each
    side gets its own OpenMP runtime with its own settings, and neither inherits the other's
    memory (timed in one process, PyTorch's step after rawcap's was ~25% slower than alone)."""
    import kernels.cpu
    env = dict(os.environ)
    if kernels.cpu.PASSIVE_WAIT_SET_HERE:       # rawcap's setting, not the user's
        env.pop("OMP_WAIT_POLICY", None)
    if kernels.cpu.MEMORY_KEPT:                 # the same malloc options as rawcap's side
        env.update(kernels.cpu.memory.ENVIRONMENT)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[1]),
                                                      env.get("PYTHONPATH")]))
    threads = numpy_threads()
    job = dict(config=config.to_dict(), batch_size=args.batch_size,
               captions_per_image=args.captions_per_image, length=args.length, device=args.device,
               steps=args.steps, warmup=args.warmup, threads=threads)
    done = subprocess.run([sys.executable, "-c", TORCH_TIMING, str(reference_path), json.dumps(job)],
                          env=env, capture_output=True, text=True)
    if done.returncode:
        print(f"error: the PyTorch timing failed:\n{done.stderr}", file=sys.stderr)
        return 1
    result = json.loads(done.stdout.strip().splitlines()[-1])
    seconds = result["seconds"]
    print(f"compared with PyTorch {result['torch']} (tools/torch_reference.py, in its own process) "
          f"on {args.device}, {threads} CPU threads each; median whole step (forward, backward, Adam):")
    print(f"  {'rawcap':<10} {1e3 * rawcap_seconds:9.1f} ms")
    print(f"  {'PyTorch':<10} {1e3 * seconds:9.1f} ms")
    print(f"  rawcap / PyTorch = {rawcap_seconds / seconds:.2f}  (above 1: rawcap is slower)")
    return 0


class Profile:
    """Calls and seconds per (op function, version), as rawcap.backend.profiling records them."""

    def __init__(self):
        self.calls = defaultdict(int)
        self.seconds = defaultdict(float)

    def record(self, function, version, seconds):
        self.calls[function, version] += 1
        self.seconds[function, version] += seconds

    def table(self, steps, step_seconds):
        """Lines of the table, the costliest op first; step_seconds: the mean whole step."""
        lines = [f"  {'op function':<32} {'version':>7} {'calls':>6} {'ms/step':>9} {'% step':>7}"]
        for key in sorted(self.seconds, key=self.seconds.get, reverse=True):
            ms = 1e3 * self.seconds[key] / steps
            lines.append(f"  {key[0]:<32} {key[1]:>7} {self.calls[key] // steps:>6} {ms:9.1f} "
                         f"{100 * ms / (1e3 * step_seconds):6.1f}%")
        rest = step_seconds - sum(self.seconds.values()) / steps
        lines.append(f"  {'the rest: GEMMs, model glue':<32} {'':>7} {'':>6} {1e3 * rest:9.1f} "
                     f"{100 * rest / step_seconds:6.1f}%")
        return lines


def timed_step(xp, params, config, batch, rng, optimizer):
    """One training step -> the perf_counter marks before and after forward, backward, optimizer."""
    marks = [time.perf_counter()]
    _, _, cache = forward(params, config, *batch, rng)
    synchronize(xp)
    marks.append(time.perf_counter())
    grads = backward(cache)
    synchronize(xp)
    marks.append(time.perf_counter())
    optimizer.step(trainable(params), grads, 1e-3)
    synchronize(xp)
    marks.append(time.perf_counter())
    return marks


def print_count(args):
    """bench --count: one GPU training step counted (rawcap.count), as a table."""
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"        # read when numba.cuda is first imported
    from . import count
    try:
        set_kernels(args.kernels)
        config = count.recipe_config()
        tally = count.count_step(config, images=2, captions_per_image=2, length=args.length)
    except (RuntimeError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    launches, syncs = tally.total(), tally.total(("sync",))
    print(f"rawcap.bench --count: one training step on the GPU path (each op's GPU default, run in "
          f"Numba's CUDA simulator), T={args.length}, {len(config.channels)} conv blocks, f_beta, "
          f"dropout, Adam, clipping that scales the gradients (rawcap.train.train_step); tiny "
          f"widths, which the counts do not depend on")
    print("  kernel versions: " + ", ".join(f"{op} {version_in_effect(op, count.device)}"
                                            for op in OPS))
    print("\n".join(count.report(tally)))
    print(f"{launches} launches (kernels, cuBLAS calls and CuPy operations), {syncs} host syncs, "
          f"{tally.total(('host->device',))} host-to-device copies per step")
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m rawcap.bench", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--kernels", metavar="PINS",
                   help="pin kernel versions, e.g. all=0 (default: $RAWCAP_KERNELS, else the best)")
    p.add_argument("--batch-size", type=int, default=32, help="images per step")
    p.add_argument("--captions-per-image", type=int, default=5)
    p.add_argument("--length", type=int, default=20, help="time steps T of every caption")
    p.add_argument("--vocab-size", type=int, default=2541, help="V (Flickr8k's at min count 5)")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--channels", default="16,32,64")
    p.add_argument("--embed-size", type=int, default=64)
    p.add_argument("--hidden-size", type=int, default=128)
    p.add_argument("--attention-size", type=int, default=64)
    p.add_argument("--batchnorm", action="store_true", help="batch normalisation after each conv")
    p.add_argument("--residual", action="store_true",
                   help="and a residual unit in each conv block (train --residual)")
    p.add_argument("--residual-after-pool", action="store_true",
                   help="each residual unit after its block's maxpool (train --residual-after-pool)")
    p.add_argument("--residual-units", type=positive_int, default=1, metavar="N",
                   help="N residual units in a row in each block (train --residual-units)")
    p.add_argument("--no-final-pool", action="store_true",
                   help="no maxpool after the last block: 4x the locations (train --no-final-pool)")
    p.add_argument("--deep-output", action="store_true",
                   help="Show-Attend-Tell's deep output layer (train --deep-output)")
    p.add_argument("--steps", type=int, default=10, help="timed steps")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    p.add_argument("--profile", action="store_true",
                   help="time every op of the step and print a table: version, calls, ms per "
                        "step, share of the step")
    p.add_argument("--compare-torch", action="store_true",
                   help="then time the same model in PyTorch (tools/torch_reference.py; needs "
                        "PyTorch and a checkout, run from the repository)")
    p.add_argument("--count", action="store_true",
                   help="count the launches and host syncs of one GPU training step, without a "
                        "GPU (Numba's CUDA simulator), and print them; nothing is timed")
    args = p.parse_args(argv)
    if args.residual and not args.batchnorm:
        p.error("--residual needs --batchnorm")
    if args.residual_after_pool and not args.residual:
        p.error("--residual-after-pool needs --residual")
    if args.residual_units > 1 and not args.residual:
        p.error("--residual-units needs --residual")
    if args.compare_torch and args.batchnorm:
        p.error("--compare-torch: tools/torch_reference.py has no batchnorm; drop --batchnorm")
    if args.count:
        return print_count(args)

    try:
        xp = get_device(args.device)
        set_kernels(args.kernels)
    except (RuntimeError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.compare_torch:
        reference, problem = find_torch_reference()
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            return 2
    config = Config(vocab_size=args.vocab_size, image_size=args.image_size,
                    channels=tuple(int(c) for c in args.channels.split(",")),
                    embed_size=args.embed_size, hidden_size=args.hidden_size,
                    attention_size=args.attention_size, batchnorm=args.batchnorm,
                    residual=args.residual, residual_after_pool=args.residual_after_pool,
                    residual_units=args.residual_units, deep_output=args.deep_output,
                    final_pool=not args.no_final_pool)
    rng = np.random.default_rng(0)
    params = to_device(init_params(config, rng), xp)         # in one buffer, as train has them
    optimizer = make_optimizer("adam", trainable(params))
    B_img, B, T = args.batch_size, args.batch_size * args.captions_per_image, args.length
    batch = [xp.asarray(a) for a in (
        rng.random((B_img, 3, config.image_size, config.image_size), dtype=np.float32),
        rng.integers(0, config.vocab_size, (B, T)), rng.integers(0, config.vocab_size, (B, T)),
        np.ones((B, T), bool), np.repeat(np.arange(B_img), args.captions_per_image))]

    times = {"forward": [], "backward": [], "optimizer": []}
    whole_steps = []
    profile = Profile() if args.profile else None
    for step in range(args.warmup + args.steps):
        recording = profiling(profile) if profile and step >= args.warmup else nullcontext()
        with recording:
            marks = timed_step(xp, params, config, batch, rng, optimizer)
        if step >= args.warmup:
            for name, start, end in zip(times, marks, marks[1:]):
                times[name].append(end - start)
            whole_steps.append(marks[-1] - marks[0])

    print(f"rawcap.bench on {args.device}: {B_img} images x {args.captions_per_image} captions, "
          f"T={T}, V={config.vocab_size}, S={config.image_size}, channels {config.channels}, "
          f"E={config.embed_size} H={config.hidden_size} A={config.attention_size}"
          f"{', batchnorm' if config.batchnorm else ''}{', residual' if config.residual else ''}"
          f"{' after pool' if config.residual_after_pool else ''}"
          f"{f' x {config.residual_units}' if config.residual_units > 1 else ''}"
          f"{', deep output' if config.deep_output else ''}"
          f"{'' if config.final_pool else f', no final pool (L={config.locations})'}; "
          f"median of {args.steps} steps after {args.warmup} warm-up")
    print("  kernel versions: " + ", ".join(f"{op} {version_in_effect(op, xp)}" for op in OPS))
    total = 0.0
    for name, samples in times.items():
        ms = 1e3 * float(np.median(samples))
        total += ms
        print(f"  {name:<10} {ms:9.1f} ms")
    print(f"  {'step':<10} {total:9.1f} ms  (the sum of the three medians)")
    print(f"{B_img / total * 1e3:.1f} images/s ({B / total * 1e3:.0f} captions/s)")
    if profile:
        print(f"where a step goes (--profile: mean of the {args.steps} timed steps):")
        print("\n".join(profile.table(args.steps, float(np.mean(whole_steps)))))
    if args.compare_torch:
        return compare_torch(reference, config, args, float(np.median(whole_steps)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
