"""What Numba's compilation costs a first run: the same command with a cold and a warm cache.

    python -m tools.compile_cost                       # a short run of the default main job
    python -m tools.compile_cost -- --epochs 2         # more arguments for rawcap.train

The command is `python -m rawcap.train` on a small built-in dataset (generated into a temporary
folder; one epoch; every code path of the default job runs: training steps, greedy validation,
the beam-search test), so it compiles the same functions for the same types as the default job,
whose image and dataset sizes change no signature. It runs twice with NUMBA_CACHE_DIR pointed at
a fresh folder: cold (every @njit function it calls compiles and is written to the cache), then
warm (loaded). Printed: each run's wall and CPU seconds (user + system, all threads), and for
the cold run each function that compiled, with its signatures and the wall and CPU seconds of
its compilation (a function compiled inside another's is counted in the outer one).
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SMALL = ["--data-dir", "shapes", "--image-size", "32", "--epochs", "1", "--quiet"]


def record_compilations(train_args, out):
    """(In the child process.) Run rawcap.train with train_args, writing each outermost Numba
    compilation (function, signature, wall s, CPU s) to `out` as JSON."""
    from numba.core import event

    records, open_at = [], []

    class Listener(event.Listener):
        def on_start(self, ev):
            open_at.append((time.perf_counter(), time.process_time()))

        def on_end(self, ev):
            wall, cpu = open_at.pop()
            if not open_at:         # outermost: it includes the functions compiled inside it
                f = ev.data["dispatcher"].py_func
                records.append((f"{f.__module__}.{f.__qualname__}", str(ev.data["args"]),
                                time.perf_counter() - wall, time.process_time() - cpu))

    event.register("numba:compile", Listener())
    from rawcap import train
    status = train.main(train_args)
    Path(out).write_text(json.dumps({"status": status, "compilations": records}))


def run(train_args, cache_dir, workdir):
    """One child run -> (wall s, CPU s, the child's record)."""
    record = Path(workdir) / "record.json"
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir), PYTHONPATH=str(ROOT))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "tools.compile_cost", "--child", str(record), "--",
                    *train_args], cwd=workdir, env=env, check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, json.loads(record.read_text())


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--child", metavar="RECORD", help=argparse.SUPPRESS)
    p.add_argument("--images", type=int, default=64, help="images in the small dataset (default 64)")
    p.add_argument("train_args", nargs="*", help="more arguments for rawcap.train (after --)")
    args = p.parse_args(argv)
    if args.child:
        return record_compilations(args.train_args, args.child)
    from rawcap.data.shapes import generate_shapes
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        generate_shapes(tmp / "shapes", n_images=args.images, image_size=32, workers=1, progress=False)
        runs = {}
        for name in ("cold", "warm"):
            out = ["--out", str(tmp / name)]
            runs[name] = run(SMALL + out + args.train_args, tmp / "numba-cache", tmp)
    print(f"python -m rawcap.train {' '.join(SMALL + args.train_args)}  ({args.images} images)")
    for name, (wall, cpu, record) in runs.items():
        spent = sum(r[2] for r in record["compilations"]), sum(r[3] for r in record["compilations"])
        print(f"  {name}: {wall:6.1f} s wall, {cpu:6.1f} s CPU; compiling: "
              f"{spent[0]:5.1f} s wall, {spent[1]:5.1f} s CPU ({len(record['compilations'])} signatures)")
    print("  compiled in the cold run (wall s, CPU s):")
    for name, signature, wall, cpu in sorted(runs["cold"][2]["compilations"], key=lambda r: -r[3]):
        print(f"    {wall:5.1f} {cpu:5.1f}  {name}{signature}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
