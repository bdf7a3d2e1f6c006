"""The captioner trained on the textbook layers and on each planted bug: what a bug does to learning.

    python -m tools.planted_bugs --epochs 2 --out docs/results/planted-bugs

Writes an answer key (python -m rawcap.exercises make --solutions) and one copy per bug of
rawcap/exercises/planted.py, trains `python -m rawcap.train --layers <copy> --kernels all=0` on
each with the same seed and data (the built-in dataset by default; any train options after --),
and records every step's training cross-entropy. Out: losses.csv (step, one column per run),
summary.json (each run's last-epoch mean loss and val BLEU-4, or the error that stopped it)
and losses.png.
"""
import argparse
import contextlib
import csv
import io
import itertools
import json
import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from rawcap import train  # noqa: E402
from rawcap.exercises.make import make  # noqa: E402
from rawcap.exercises.planted import PLANTED, plant_bug  # noqa: E402
from rawcap.model import loss_and_grads  # noqa: E402


def train_recording(argv):
    """train.main(argv), recording each step's cross-entropy -> (exit status, [losses], stderr)."""
    losses, errors = [], io.StringIO()

    def recording(*args, **kwargs):
        loss, parts, grads = loss_and_grads(*args, **kwargs)
        losses.append(parts["ce"])
        return loss, parts, grads

    train.loss_and_grads = recording
    try:
        with contextlib.redirect_stderr(errors):
            status = train.main(argv)
    finally:
        train.loss_and_grads = loss_and_grads
    print(errors.getvalue(), end="", file=sys.stderr)
    return status, losses, errors.getvalue().strip()


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tools.planted_bugs",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="the folder for losses.csv, summary.json, losses.png")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--bugs", default=",".join(PLANTED), help="comma-separated names from planted.py")
    parser.add_argument("train_options", nargs="*", help="more options for rawcap.train (after --)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    curves, summary = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in ["textbook"] + args.bugs.split(","):
            layers = Path(tmp) / f"layers-{len(curves)}"
            make(layers, solutions=True)
            if name != "textbook":
                plant_bug(layers, name)
            run_dir = Path(tmp) / f"run-{len(curves)}"
            print(f"== {name}", flush=True)
            status, curves[name], error = train_recording(
                ["--epochs", str(args.epochs), "--kernels", "all=0", "--layers", str(layers),
                 "--test-beam", "1", "--quiet", "--out", str(run_dir), *args.train_options])
            if status != 0:
                summary[name] = {"exit_status": status, "error": error, "steps": len(curves[name])}
                continue
            with open(run_dir / "log.csv", newline="") as f:
                last = list(csv.DictReader(f))[-1]
            summary[name] = {"last_epoch_train_loss": float(last["train_loss"]),
                             "val_bleu4": float(last["val_bleu4"]), "steps": len(curves[name])}
    with open(out / "losses.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["step"] + list(curves))
        for step, row in enumerate(itertools.zip_longest(*curves.values()), 1):
            writer.writerow([step] + ["" if loss is None else f"{loss:.4f}" for loss in row])
    (out / "summary.json").write_text(json.dumps({"epochs": args.epochs, "train_options": args.train_options,
                                                  "runs": summary}, indent=1) + "\n")
    fig, axis = plt.subplots(figsize=(7, 4), dpi=100)
    for name, losses in curves.items():
        if len(losses) < 2:
            continue
        axis.plot(range(1, len(losses) + 1), losses, lw=2.2 if name == "textbook" else 1.2,
                  color="black" if name == "textbook" else None, label=name)
    axis.set_xlabel("step")
    axis.set_ylabel("train cross-entropy")
    axis.set_title("the captioner on the textbook layers and on planted bugs")
    axis.legend()
    fig.tight_layout()
    fig.savefig(out / "losses.png")
    for name, s in summary.items():
        print(f"{name:<24} " + (f"last-epoch loss {s['last_epoch_train_loss']:.4f}   "
                                f"val BLEU-4 {s['val_bleu4']:.4f}" if "error" not in s else s["error"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
