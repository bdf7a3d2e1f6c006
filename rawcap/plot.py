"""The training curves of a run: log.csv -> loss.png (train loss and val BLEU-4 per epoch).

    python -m rawcap.plot runs/shapes                 # runs/shapes/log.csv -> runs/shapes/loss.png
    python -m rawcap.plot runs/shapes --out curves.png
    python -m rawcap.plot runs/a runs/b --out val.png # several runs: val BLEU-4 and CIDEr-D side by side

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


def draw_comparison(runs):
    """The val curves of several runs, [(label, log rows)]: val BLEU-4 and val CIDEr-D (greedy)
    per epoch, one line per run."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), dpi=100)
    for label, rows in runs:
        epochs = [int(r["epoch"]) for r in rows]
        for axis, key in zip(axes, ("val_bleu4", "val_cider")):
            axis.plot(epochs, [float(r[key]) for r in rows], "o-", markersize=3, label=label)
    for axis, name in zip(axes, ("val BLEU-4 (greedy)", "val CIDEr-D (greedy)")):
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_title(name)
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
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


def save(fig, png):
    """Write the figure to png through a temporary file and a rename."""
    tmp = f"{png}.tmp-{os.getpid()}"
    try:
        fig.savefig(tmp, format="png")
        os.replace(tmp, png)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.remove(tmp)


def plot_log(log_csv, png):
    """Draw log.csv into png."""
    save(draw_log(read_log(log_csv)), png)


def plot_comparison(log_csvs, png):
    """Draw the val curves of several log.csv files into png, each labelled by its run folder."""
    runs = []
    for log_csv in log_csvs:
        rows = read_log(log_csv)
        if "val_cider" not in rows[0]:
            raise ValueError(f"{log_csv}: no val_cider column (a log from before CIDEr-D was logged)")
        runs.append((log_csv.parent.name, rows))
    save(draw_comparison(runs), png)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m rawcap.plot", description=__doc__.split("\n\n")[0])
    parser.add_argument("run", nargs="+", help="a run folder (its log.csv) or a log.csv file; "
                                               "several: their val curves, compared")
    parser.add_argument("--out", help="the PNG to write (default: loss.png beside the log; "
                                      "required with several runs)")
    args = parser.parse_args(argv)
    logs = [Path(run) / "log.csv" if Path(run).is_dir() else Path(run) for run in args.run]
    for log_csv in logs:
        if not log_csv.is_file():
            parser.error(f"{log_csv}: no such file")
    if len(logs) > 1 and not args.out:
        parser.error("several runs are drawn into one picture: give it --out FILE.png")
    out = Path(args.out or logs[0].with_name("loss.png"))
    if not out.resolve().parent.is_dir():
        parser.error(f"--out {out}: the folder {out.parent} does not exist")
    try:
        if len(logs) > 1:
            plot_comparison(logs, out)
        else:
            plot_log(logs[0], out)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
