"""The training curves of a run: log.csv -> loss.png (train loss and val BLEU-4 per epoch).

    python -m rawcap.plot runs/shapes                 # runs/shapes/log.csv -> runs/shapes/loss.png
    python -m rawcap.plot runs/shapes --out curves.png

train draws it after every epoch; the command redraws it, e.g. for a run copied elsewhere.
"""
import argparse
import csv
import os
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")                   # draw to files; no display needed
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402


def draw_log(rows):
    """The figure of the log's rows (dicts with epoch, train_loss, val_bleu4): epochs on the x
    axis as whole numbers."""
    epochs = [int(r["epoch"]) for r in rows]
    fig, loss_axis = plt.subplots(figsize=(6, 3.5), dpi=100)
    loss_axis.plot(epochs, [float(r["train_loss"]) for r in rows], "o-", color="tab:blue")
    loss_axis.set_xlabel("epoch")
    loss_axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    loss_axis.set_ylabel("train cross-entropy", color="tab:blue")
    bleu_axis = loss_axis.twinx()
    bleu_axis.plot(epochs, [float(r["val_bleu4"]) for r in rows], "s-", color="tab:red")
    bleu_axis.set_ylabel("val BLEU-4 (greedy)", color="tab:red")
    loss_axis.set_title("training curves")
    fig.tight_layout()
    return fig


def read_log(log_csv):
    """The rows of a log.csv; ValueError naming the file if it is not one."""
    with open(log_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    missing = {"epoch", "train_loss", "val_bleu4"} - set(rows[0] if rows else ())
    if missing:
        raise ValueError(f"{log_csv}: not a rawcap log.csv (no rows with {', '.join(sorted(missing))})")
    return rows


def plot_log(log_csv, png):
    """Draw log.csv into png, written to a temporary file and renamed."""
    fig = draw_log(read_log(log_csv))
    tmp = f"{png}.tmp-{os.getpid()}"
    try:
        fig.savefig(tmp, format="png")
        os.replace(tmp, png)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.remove(tmp)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m rawcap.plot", description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="a run folder (its log.csv) or a log.csv file")
    parser.add_argument("--out", help="the PNG to write (default: loss.png beside the log)")
    args = parser.parse_args(argv)
    log_csv = Path(args.run) / "log.csv" if Path(args.run).is_dir() else Path(args.run)
    if not log_csv.is_file():
        parser.error(f"{log_csv}: no such file")
    out = Path(args.out or log_csv.with_name("loss.png"))
    if not out.resolve().parent.is_dir():
        parser.error(f"--out {out}: the folder {out.parent} does not exist")
    try:
        plot_log(log_csv, out)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
