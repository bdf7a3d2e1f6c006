"""Train the captioner.

    python -m rawcap.train                                   # the built-in dataset, on the CPU
    python -m rawcap.train --data flickr8k --data-dir ../shared/flickr8k --device cuda
    python -m rawcap.train --resume runs/shapes              # continue exactly where it stopped

With no arguments it generates the built-in dataset (data/shapes) if absent, caches it, trains,
decodes the val split greedily after every epoch (BLEU-4 picks best.h5), and finally scores
the test split with best.h5. The run directory holds config.json, log.csv (one row per epoch),
loss.png, last.h5 and best.h5, metrics.json and captions_test.json. Ctrl-C saves last.h5 and
exits; --resume continues from it, bit for bit on the CPU.
"""
import argparse
import csv
import json
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .backend import get_device, set_kernels, to_numpy
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .data.batches import CaptionBatches, channel_stats
from .data.cache import open_cache, prepare
from .data.shapes import generate_shapes
from .evaluate import evaluate_split, write_json
from .metrics import format_table
from .model import Config, init_params, loss_and_grads
from .optim import NonFiniteError, check_finite, clip_global_norm, learning_rate, make_optimizer
from .plot import plot_log

LOG_COLUMNS = ("epoch", "step", "train_loss", "val_bleu1", "val_bleu2", "val_bleu3", "val_bleu4",
               "val_rouge_l", "val_cider", "lr", "seconds", "images_per_s")


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m rawcap.train", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g = p.add_argument_group("data")
    g.add_argument("--data", default="shapes", choices=["shapes", "flickr8k"],
                   help="the built-in dataset, or Flickr8k in any of its layouts")
    g.add_argument("--data-dir", help="the dataset directory (default data/shapes; required for flickr8k)")
    g.add_argument("--image-size", type=int, help="image side S (default 64 for shapes, 128 for flickr8k)")
    g.add_argument("--min-count", type=int, default=5, help="vocabulary: minimum word count in train")
    g.add_argument("--max-length", type=int, default=20, help="captions are cut to this many words")
    g.add_argument("--augment", action="store_true",
                   help="shift training images by up to S/16 pixels and mirror half of them")
    g = p.add_argument_group("run")
    g.add_argument("--out", help="the run directory (default runs/DATA)")
    g.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last.h5")
    g.add_argument("--init-from", metavar="CHECKPOINT", help="start a new run from these weights")
    g.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    g.add_argument("--kernels", metavar="PINS",
                   help="pin kernel versions per op, e.g. lstm_pointwise=0,softmax_ce=1 or all=0 "
                        "(default: $RAWCAP_KERNELS, else each op's best; python -m rawcap.env lists them)")
    g.add_argument("--deterministic", action="store_true",
                   help="on a GPU, avoid kernels whose atomic adds make runs differ in the last bits "
                        "(the embedding backward sorts its tokens instead)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--epochs", type=int, help="epochs in all (default 5; with --resume, the run's own)")
    g.add_argument("--batch-size", type=int, default=32, help="images per batch, each with all its captions")
    g.add_argument("--test-beam", type=int, default=3, help="beam size for the final test scores")
    g.add_argument("--quiet", action="store_true", help="no progress bars")
    g = p.add_argument_group("optimisation")
    g.add_argument("--optimizer", default="adam", choices=["adam", "sgd"])
    g.add_argument("--lr", type=float, default=3e-3, help="peak learning rate")
    g.add_argument("--schedule", default="cosine", choices=["cosine", "step", "constant"])
    g.add_argument("--warmup-steps", type=int, default=50)
    g.add_argument("--decay-every", type=int, help="step schedule: steps between decays (default: an epoch)")
    g.add_argument("--decay-factor", type=float, default=0.5, help="step schedule: lr multiplier")
    g.add_argument("--clip", type=float, default=5.0, help="global gradient norm limit (0: off)")
    g = p.add_argument_group("model")
    g.add_argument("--channels", default="16,32,64", help="conv widths, one 2x pooling block each")
    g.add_argument("--cell", default="lstm", choices=["lstm", "rnn"],
                   help="the decoder's recurrent cell: an LSTM, or a vanilla tanh RNN (the warm-up "
                        "the LSTM improves on)")
    g.add_argument("--embed-size", type=int, default=64)
    g.add_argument("--hidden-size", type=int, default=128)
    g.add_argument("--attention-size", type=int, default=64)
    g.add_argument("--dropout", type=float, default=0.3)
    g.add_argument("--lambda-alpha", type=float, default=0.02, help="doubly stochastic attention penalty")
    g.add_argument("--weight-decay", type=float, default=0.0)
    g.add_argument("--no-f-beta", action="store_true", help="drop the sigmoid gate on the context")
    g.add_argument("--blind", action="store_true",
                   help="zero the image features: a baseline that shows what the image contributes")
    return p.parse_args(argv)


def prepare_data(args, log):
    """Make sure the dataset and its cache exist -> the cache path."""
    size = args.image_size or (64 if args.data == "shapes" else 128)
    if args.data == "flickr8k" and not args.data_dir:
        raise ValueError("--data flickr8k needs --data-dir (the folder with the captions and images)")
    data_dir = Path(args.data_dir or "data/shapes")
    if args.data == "shapes" and not (data_dir / "shapes.json").is_file():
        log(f"generating the built-in dataset in {data_dir}")
        generate_shapes(data_dir, progress=not args.quiet)
    cache = (Path("data") / f"{data_dir.resolve().name}-{size}.h5").resolve()
    prepare(data_dir, cache, size=size, min_count=args.min_count, max_length=args.max_length,
            progress=not args.quiet, log=log)
    return cache


def model_config(args, cache):
    with open_cache(cache) as f:
        vocab_size = len(json.loads(f.attrs["vocab"])["words"])
        size = int(f.attrs["image_size"])
    mean, std = channel_stats(cache)
    return Config(vocab_size=vocab_size, image_size=size,
                  channels=tuple(int(c) for c in args.channels.split(",")),
                  embed_size=args.embed_size, hidden_size=args.hidden_size,
                  attention_size=args.attention_size, dropout=args.dropout,
                  lambda_alpha=args.lambda_alpha, weight_decay=args.weight_decay,
                  f_beta=not args.no_f_beta, blind=args.blind, cell=args.cell,
                  pixel_mean=tuple(map(float, mean)), pixel_std=tuple(map(float, std)))


def stop_on_ctrl_c(log):
    """A first Ctrl-C asks the run to stop after the step in progress; a second one stops at once.
    Either way last.h5 then holds the last finished step. -> the Event the training loop polls."""
    stop = threading.Event()

    def handler(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        log("\nCtrl-C: stopping after this step (press again to stop at once)")

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, handler)
    return stop


class Run:
    """The run directory: checkpoints, the epoch log and its plot."""

    def __init__(self, path):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)

    def log_epoch(self, row):
        new = not (self.path / "log.csv").is_file()
        with open(self.path / "log.csv", "a", newline="") as f:
            writer = csv.DictWriter(f, LOG_COLUMNS)
            if new:
                writer.writeheader()
            writer.writerow({k: row.get(k, "") for k in LOG_COLUMNS})
        plot_log(self.path / "log.csv", self.path / "loss.png")

    def save(self, name, params, optimizer, meta):
        save_checkpoint(self.path / name, {k: to_numpy(v) for k, v in params.items()},
                        optimizer.state_dict(), meta)


def weights_from(checkpoint, params):
    """The checkpoint's parameters, checked against the new model's names and shapes."""
    loaded = load_checkpoint(checkpoint)[0]
    for name, p in params.items():
        if name not in loaded or loaded[name].shape != p.shape:
            got = loaded[name].shape if name in loaded else "nothing"
            raise ValueError(f"--init-from {checkpoint}: {name} has {got}, this model needs "
                             f"{p.shape} (use the same model sizes and vocabulary)")
    return {name: loaded[name].astype(p.dtype) for name, p in params.items()}


def train(args, log=print):
    """Run (or resume) training as `args` say; -> the exit status (0, 130 interrupted, 3 non-finite)."""
    xp = get_device(args.device)
    set_kernels(args.kernels, args.deterministic)
    if args.resume:
        params, opt_state, meta = load_checkpoint(Path(args.resume) / "last.h5")
        saved = meta["args"]
        saved.update(epochs=args.epochs or saved["epochs"], quiet=args.quiet, device=args.device,
                     resume=args.resume)
        args = argparse.Namespace(**saved)
        config, cache = Config.from_dict(meta["config"]), Path(meta["cache"])
        run = Run(args.resume)
        log(f"resuming {run.path} at epoch {meta['epoch'] + 1}, batch {meta['batch']}")
    else:
        args.epochs = args.epochs or 5
        cache = prepare_data(args, log)
        config = model_config(args, cache)
        rng = np.random.default_rng(args.seed)
        params = init_params(config, rng)
        if args.init_from:
            params = weights_from(args.init_from, params)
        run = Run(args.out or Path("runs") / args.data)
        write_json(run.path / "config.json", {"model": config.to_dict(), "train": vars(args),
                                              "cache": str(cache)})
        opt_state = None
        meta = dict(epoch=0, batch=0, step=0, best_bleu4=-1.0, epoch_loss=0.0, epoch_batches=0,
                    dropout_rng=np.random.default_rng(args.seed + 1).bit_generator.state)
    params = {k: xp.asarray(v) for k, v in params.items()}
    optimizer = make_optimizer(args.optimizer, params)
    if opt_state is not None:
        optimizer.load_state_dict(opt_state)
    dropout_rng = np.random.default_rng()
    dropout_rng.bit_generator.state = meta["dropout_rng"]
    loader = CaptionBatches(cache, "train", args.batch_size, seed=args.seed, per_image=True,
                            augment=getattr(args, "augment", False))
    total_steps = args.epochs * len(loader)

    def schedule(step):
        return learning_rate(step, args.lr, total_steps, args.schedule, args.warmup_steps,
                             args.decay_every or len(loader), args.decay_factor)

    lr = schedule(meta["step"])

    with open_cache(cache) as f:
        words = json.loads(f.attrs["vocab"])["words"]

    def checkpoint_meta():
        return dict(meta, config=config.to_dict(), cache=str(cache), args=vars(args), vocab=words,
                    dropout_rng=dropout_rng.bit_generator.state, test_beam=args.test_beam)

    stop = stop_on_ctrl_c(log)
    step_rng = dropout_rng.bit_generator.state      # the dropout RNG as the current step began
    updating = False
    try:
        while meta["epoch"] < args.epochs:
            epoch, start = meta["epoch"], meta["batch"]
            began, images_seen = time.time(), 0
            bar = tqdm(loader.epoch(epoch, start), total=len(loader), initial=start,
                       desc=f"epoch {epoch + 1}/{args.epochs}", unit="batch", disable=args.quiet)
            for batch in bar:
                if stop.is_set():
                    raise KeyboardInterrupt
                step_rng = dropout_rng.bit_generator.state
                tick = time.time()
                lr = schedule(meta["step"])
                arrays = [xp.asarray(a) for a in batch[:5]]
                loss, parts, grads = loss_and_grads(params, config, *arrays, dropout_rng)
                check_finite(loss, grads)
                if args.clip:
                    clip_global_norm(grads, args.clip)
                updating = True             # params change in place from here ...
                optimizer.step(params, grads, lr)
                updating = False            # ... to here
                meta.update(step=meta["step"] + 1, batch=meta["batch"] + 1,
                            epoch_loss=meta["epoch_loss"] + parts["ce"],
                            epoch_batches=meta["epoch_batches"] + 1)
                images_seen += len(batch.images)
                tokens_per_s = int(batch.mask.sum()) / (time.time() - tick)
                bar.set_postfix(loss=f"{parts['ce']:.3f}", tok_s=f"{tokens_per_s:.0f}", lr=f"{lr:.1e}")
            bar.close()
            seconds = time.time() - began
            scores, _, _ = evaluate_split(params, config, cache, "val", beam=1, progress=not args.quiet)
            row = dict(epoch=epoch + 1, step=meta["step"], lr=float(f"{lr:.3g}"), seconds=round(seconds, 1),
                       train_loss=round(meta["epoch_loss"] / max(meta["epoch_batches"], 1), 4),
                       images_per_s=round(images_seen / seconds, 1),
                       **{f"val_{k}": round(v, 4) for k, v in scores.items()})
            log(f"epoch {epoch + 1}: train loss {row['train_loss']}, val BLEU-4 {scores['bleu4']:.4f} "
                f"(greedy), {row['images_per_s']} images/s")
            run.log_epoch(row)
            meta.update(epoch=epoch + 1, batch=0, epoch_loss=0.0, epoch_batches=0)
            if scores["bleu4"] > meta["best_bleu4"]:
                meta["best_bleu4"] = scores["bleu4"]
                run.save("best.h5", params, optimizer, checkpoint_meta())
            run.save("last.h5", params, optimizer, checkpoint_meta())
    except KeyboardInterrupt:
        if updating:
            log("\nstopped in the middle of a parameter update: last.h5 keeps the previous save")
            return 130
        # Save the state as of the last finished step; an unfinished one is redone on resume.
        dropout_rng.bit_generator.state = step_rng
        run.save("last.h5", params, optimizer, checkpoint_meta())
        log(f"\ninterrupted: saved {run.path / 'last.h5'}; continue with "
            f"python -m rawcap.train --resume {run.path}")
        return 130
    except NonFiniteError as e:
        print(f"error: {e}; stopping. best.h5 is untouched; last.h5 holds the last finite epoch.",
              file=sys.stderr)
        return 3
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)

    best, _, _ = load_checkpoint(run.path / "best.h5")
    best = {k: xp.asarray(v) for k, v in best.items()}
    scores, captions, protocol = evaluate_split(best, config, cache, "test", beam=args.test_beam,
                                                progress=not args.quiet)
    write_json(run.path / "metrics.json", {**scores, "protocol": protocol,
                                           "checkpoint": str(run.path / "best.h5")})
    write_json(run.path / "captions_test.json", captions)
    log(format_table(scores, protocol))
    return 0


def main(argv=None):
    args = parse_args(argv)
    try:
        return train(args)
    except (CheckpointError, ValueError, OSError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
