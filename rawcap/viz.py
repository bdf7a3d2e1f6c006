"""Pictures of what happens inside a trained captioner.

    python -m rawcap.viz gradflow runs/shapes-rnn runs/shapes --out gradflow.png

gradflow: how far back in time the gradient of one word's loss reaches. For a batch of
captions, L is the sum over captions of the cross-entropy of each caption's last prediction
(its <end>, which depends on everything the decoder read before). Back-propagating L through
the decoder, one step at a time with the model's own decode_step_backward, gives at every step

    ||dL/dh_t||   the total gradient on the hidden state h_t (from the steps after t)
    ||dL/dc_t||   (LSTM) the gradient that reaches the cell c_t from step t+1, along the cell path

per caption, plotted against k = (the step of the last prediction) - t: k steps back in time.
A vanilla RNN multiplies the gradient by diag(1 - h^2) @ Wh.T at every step back, and it fades;
the LSTM's cell multiplies it by the forget gate only (docs/backprop.md, section 4).
"""
import argparse
import os
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")                   # draw to files; no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from . import layers as nn  # noqa: E402
from .checkpoint import CheckpointError, find_checkpoint, load_checkpoint  # noqa: E402
from .data.batches import CaptionBatches  # noqa: E402
from .decoder import decode_step, decode_step_backward, init_decoder  # noqa: E402
from .encoder import encode  # noqa: E402
from .model import Config  # noqa: E402
from .output import output_backward, output_forward  # noqa: E402


def gradient_flow(params, config, images, inputs, targets, mask, caption_image):
    """The gradient of each caption's last-word loss on every hidden state (dropout off).

    images[B_img, 3, S, S] in [0, 1]; inputs, targets, mask[B, T] (mask: the real targets, a
    prefix of each row); caption_image[B].
    -> dh[B, T]: ||dL/dh_t|| per caption and step; dc[B, T]: ||dL/dc_t|| along the cell path
       (None for the RNN); last[B]: the step of each caption's last prediction. Entries after
       `last` are 0 (those steps do not reach L).
    """
    B, T = inputs.shape
    last = mask.sum(axis=1).astype(np.int64) - 1
    if (last < 0).any():
        raise ValueError("gradient_flow: every caption needs at least one real target in mask")

    feats_img, _ = encode(params, config, images)
    feats = feats_img[caption_image]
    proj, h, c, _ = init_decoder(params, feats)
    words = params["embed_w"][inputs]
    hs, steps = np.empty((B, T, h.shape[1]), h.dtype), []
    alphas = np.empty((B, T, feats.shape[1]), h.dtype)
    for t in range(T):
        h, c, alphas[:, t], step = decode_step(params, config, feats, proj, h, c, words[:, t])
        hs[:, t] = h
        steps.append(step)

    # L = sum_n CE(caption n's last prediction); the layer averages over the B scored tokens,
    # so dloss = B makes each caption's gradient that of its own loss.
    scored = np.zeros((B, T), bool)
    scored[np.arange(B), last] = True
    logits, out = output_forward(params, hs, words, alphas, feats)
    _, ce = nn.softmax_cross_entropy_forward(logits, targets, scored)
    grads = {name: np.zeros_like(p) for name, p in params.items()}
    dhs, _, dalphas, _ = output_backward(nn.softmax_cross_entropy_backward(B, ce), out, grads)
    dh_norm, dc_norm = np.zeros((B, T)), np.zeros((B, T))
    dh_next, dc = np.zeros_like(h), None
    for t in reversed(range(T)):
        dh = dhs[:, t] + dh_next                    # the total gradient on h_t
        dh_norm[:, t] = np.linalg.norm(dh, axis=1)
        if dc is not None:                          # what step t+1 sent back to c_t
            dc_norm[:, t] = np.linalg.norm(dc, axis=1)
        dalpha = None if dalphas is None else dalphas[:, t]    # (the deep output reads alpha_t)
        _, _, dh_next, dc, _ = decode_step_backward(dh, dc, dalpha, steps[t], grads)
    return dh_norm, (dc_norm if config.cell == "lstm" else None), last


def steps_back(norms, last):
    """norms[B, T], last[B] -> [B, max(last) + 1]: row n holds norms[n, last[n] - k] at column k
    (NaN where the caption has no step k back)."""
    B = len(last)
    out = np.full((B, int(last.max()) + 1), np.nan)
    for n in range(B):
        out[n, :last[n] + 1] = norms[n, last[n]::-1]
    return out


def load_run(path):
    """A run directory or checkpoint -> (label, params as float64, Config, the cache it trained on)."""
    checkpoint = find_checkpoint(path)
    params, _, meta = load_checkpoint(checkpoint)
    config = Config.from_dict(meta["config"])
    return (f"{config.cell.upper()}  ({path})", {k: v.astype(np.float64) for k, v in params.items()},
            config, meta["cache"])


def gradflow_curves(path, split="val", batch_size=64, seed=0, cache=None):
    """-> label, cell, {"h": [B, K], "c": [B, K] (LSTM only)}: the norms k steps back for the
    first batch of `split` (fixed by seed), from the run or checkpoint at `path`."""
    label, params, config, run_cache = load_run(path)
    batch = next(iter(CaptionBatches(cache or run_cache, split, batch_size, seed=seed,
                                     prefetch=0).epoch(0)))
    dh, dc, last = gradient_flow(params, config, batch.images.astype(np.float64), batch.inputs,
                                 batch.targets, batch.mask, batch.caption_image)
    curves = {"h": steps_back(dh, last)}
    if dc is not None:
        curves["c"] = steps_back(dc, last)
        curves["c"][:, 0] = np.nan                  # nothing reaches c from after the last step
    return label, config.cell, curves


def plot_gradflow(runs, png):
    """runs: [(label, cell, curves)] -> one panel per run, side by side, one log-scale y axis."""
    fig, axes = plt.subplots(1, len(runs), figsize=(5 * len(runs), 3.8), dpi=100, sharey=True,
                             squeeze=False)
    styles = {"h": ("tab:blue", "||dL/dh_t||"), "c": ("tab:red", "||dL/dc_t|| (cell path)")}
    for axis, (label, cell, curves) in zip(axes[0], runs):
        for key, norms in curves.items():
            color, name = styles[key]
            k = np.arange(norms.shape[1])
            enough = np.sum(~np.isnan(norms), axis=0) >= 5        # medians of 5 captions or more
            low, mid, high = np.nanpercentile(norms[:, enough], [25, 50, 75], axis=0)
            axis.plot(k[enough], mid, "o-", color=color, markersize=3, label=f"{name}, median")
            axis.fill_between(k[enough], low, high, color=color, alpha=0.2, label="25-75%")
        axis.set_yscale("log")
        axis.set_title(label, fontsize=10)
        axis.set_xlabel("k: steps before the last prediction")
        axis.grid(True, which="major", alpha=0.3)
        axis.legend(fontsize=8)
    axes[0][0].set_ylabel("gradient norm")
    fig.suptitle("gradient of the last word's loss, flowing back through time", fontsize=11)
    fig.tight_layout()
    png = Path(png)
    tmp = png.with_name(f".{png.name}.tmp-{os.getpid()}.png")
    try:
        fig.savefig(tmp)
        os.replace(tmp, png)
    finally:
        plt.close(fig)
        if tmp.exists():
            tmp.unlink()


def summary(label, curves, ks=(0, 1, 2, 4, 8, 12)):
    """A few lines of medians k steps back, for the terminal."""
    lines = [label]
    for key, norms in curves.items():
        cells = []
        for k in ks:
            if k < norms.shape[1] and np.sum(~np.isnan(norms[:, k])) >= 5:
                cells.append(f"k={k}: {np.nanmedian(norms[:, k]):.2e}")
        lines.append(f"  median ||dL/d{key}_t||  " + "  ".join(cells))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m rawcap.viz", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    flow = commands.add_parser(
        "gradflow", help="plot ||dL/dh_t|| (and ||dL/dc_t||) against time for one or more runs",
        description="For a batch of captions, back-propagate the loss of each caption's last "
                    "prediction and plot the gradient norm on every earlier hidden state (and "
                    "LSTM cell), one panel per run, side by side.")
    flow.add_argument("runs", nargs="+", metavar="RUN_OR_CHECKPOINT",
                      help="run directories (their best.h5) or checkpoint files, e.g. an RNN run "
                           "and an LSTM run")
    flow.add_argument("--out", default="gradflow.png", help="the picture to write (default gradflow.png)")
    flow.add_argument("--split", default="val", choices=["train", "val", "test"])
    flow.add_argument("--batch-size", type=int, default=64, help="captions in the batch (default 64)")
    flow.add_argument("--seed", type=int, default=0, help="which batch (default 0)")
    flow.add_argument("--cache", help="the HDF5 cache to read (default: the one each run trained on)")
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error(f"--batch-size must be at least 1, got {args.batch_size}")
    try:
        runs = [gradflow_curves(path, args.split, args.batch_size, args.seed, args.cache)
                for path in args.runs]
        plot_gradflow(runs, args.out)
    except (CheckpointError, ValueError, OSError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for label, _, curves in runs:
        print(summary(label, curves))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
