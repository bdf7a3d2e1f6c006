"""The training curves of a run: log.csv -> loss.png (train loss and val BLEU-4 per epoch)."""
import csv

import matplotlib

matplotlib.use("Agg")                   # draw to files; no display needed
import matplotlib.pyplot as plt  # noqa: E402


def plot_log(log_csv, png):
    with open(log_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    epochs = [int(r["epoch"]) for r in rows]
    fig, loss_axis = plt.subplots(figsize=(6, 3.5), dpi=100)
    loss_axis.plot(epochs, [float(r["train_loss"]) for r in rows], "o-", color="tab:blue")
    loss_axis.set_xlabel("epoch")
    loss_axis.set_ylabel("train cross-entropy", color="tab:blue")
    bleu_axis = loss_axis.twinx()
    bleu_axis.plot(epochs, [float(r["val_bleu4"]) for r in rows], "s-", color="tab:red")
    bleu_axis.set_ylabel("val BLEU-4 (greedy)", color="tab:red")
    loss_axis.set_title("training curves")
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)
