"""Train the captioner.

    python -m rawcap.train                                   # the built-in dataset, on the CPU
    python -m rawcap.train --data flickr8k --data-dir data/flickr8k --device cuda
    python -m rawcap.train --resume runs/shapes              # continue exactly where it stopped
    python -m rawcap.train --scst --init-from runs/shapes/best.h5 --lr 5e-5 --out runs/scst

With no arguments it generates the built-in dataset (data/shapes) if absent, caches it, trains,
decodes the val split greedily after every epoch (BLEU-4 picks best.h5), and finally scores the
test split with best.h5 (--train-on-val, which trains on val too, keeps no best.h5). The run
directory holds config.json, log.csv (one row per epoch), loss.png, last.h5 and best.h5,
metrics.json and captions_test.json, and belongs to this run alone (rawcap/run_dir.py: a used
folder is refused unless --overwrite, a lock refuses a second process). Every option is checked
before anything is read or created. Ctrl-C (or kill -9) stops the run; --resume continues from
last.h5, bit for bit on the CPU. --layers hw/ trains with a student's own layer functions
(rawcap.student) in place of the textbook's. --scst fine-tunes a trained model on the CIDEr-D of
its own sampled captions (self-critical training, rawcap/scst.py); --teacher FILE adds a
teacher's next-word distributions to the loss (word-level distillation, rawcap/teacher.py).
"""
import argparse
import json
import signal
import sys
import threading
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .backend import get_device, set_kernels
from .checkpoint import CheckpointError, load_checkpoint
from .data.batches import CaptionBatches, channel_stats, check_batch
from .data.cache import (cache_fingerprint, cache_path_for, cache_resize, check_cache, open_cache,
                         prepare)
from .data.shapes import generate_shapes
from .evaluate import evaluate_split, write_json
from .metrics import format_table
from .model import Config, init_params, loss_and_grads, to_device, trainable
from .optim import NonFiniteError, check_and_clip, learning_rate, make_optimizer
from .run_dir import Run
from .scst import CiderReward
from .scst import loss_and_grads as scst_loss_and_grads
from .ship import TRAINING_HEAD
from .student import load_layers
from .teacher import Teacher, check_teacher
from .train_options import (DEFAULT_EPOCHS, args_channels, args_pools, default_size, out_dir,
                            parse_args)

def prepare_data(args, log):
    """Make sure the dataset and its cache exist -> the cache path. The cache is named after the
    dataset folder, the image size and a hash of the folder's full path and the options.
    With --cache, args takes the cache's own data options, so that the run (and a model shipped
    from it) records the data it was trained on, not the defaults of options it did not use."""
    if args.cache:
        with open_cache(args.cache) as f:
            args.data_dir = str(f.attrs["data_dir"])
            args.data = Path(args.data_dir).name
            args.image_size, args.resize = int(f.attrs["image_size"]), cache_resize(f.attrs)
            args.min_count, args.max_length = int(f.attrs["min_count"]), int(f.attrs["max_length"])
        return Path(args.cache).resolve()
    size = args.image_size or default_size(args)
    data_dir = Path(args.data_dir or "data/shapes")
    if args.data == "shapes" and not (data_dir / "shapes.json").is_file():
        log(f"generating the built-in dataset in {data_dir}")
        generate_shapes(data_dir, progress=not args.quiet)
    options = dict(size=size, min_count=args.min_count, max_length=args.max_length,
                   skip_bad=args.skip_bad, resize=args.resize)
    cache = cache_path_for(data_dir, **options)
    prepare(data_dir, cache, **options, progress=not args.quiet, log=log)
    return cache


def model_config(args, cache):
    with open_cache(cache) as f:
        vocab_size = len(json.loads(f.attrs["vocab"])["words"])
        size = int(f.attrs["image_size"])
        resize = cache_resize(f.attrs)
    pools = args_pools(args)
    if size % 2 ** pools:
        raise ValueError(f"{cache}: images of {size} pixels, not a multiple of 2^{pools} "
                         f"(--channels {args_channels(args)}"
                         f"{', --no-final-pool' if args.no_final_pool else ''})")
    mean, std = channel_stats(cache)
    return Config(vocab_size=vocab_size, image_size=size, channels=tuple(args.channels),
                  embed_size=args.embed_size, hidden_size=args.hidden_size,
                  attention_size=args.attention_size, dropout=args.dropout,
                  embed_dropout=args.embed_dropout,
                  lambda_alpha=args.lambda_alpha, weight_decay=args.weight_decay,
                  bag_of_words=args.bag_of_words, label_smoothing=args.label_smoothing,
                  teacher_weight=args.teacher_weight if args.teacher else 0.0,
                  f_beta=not args.no_f_beta, blind=args.blind, batchnorm=args.batchnorm,
                  residual=args.residual, residual_after_pool=args.residual_after_pool,
                  residual_units=args.residual_units, deep_output=args.deep_output,
                  final_pool=not args.no_final_pool, cell=args.cell,
                  pixel_mean=tuple(map(float, mean)), pixel_std=tuple(map(float, std)), resize=resize)


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


def weights_from(checkpoint, params):
    """The checkpoint's parameters, checked against the new model's names and shapes. A shipped
    model has no bag-of-words head (ship drops it: only training uses it), so that head, and
    only that, starts fresh when the checkpoint lacks it."""
    loaded = load_checkpoint(checkpoint)[0]
    loaded.update({name: params[name] for name in TRAINING_HEAD
                   if name in params and name not in loaded})
    for name, p in params.items():
        if name not in loaded or loaded[name].shape != p.shape:
            got = loaded[name].shape if name in loaded else "nothing"
            raise ValueError(f"--init-from {checkpoint}: {name} has {got}, this model needs "
                             f"{p.shape} (use the same model sizes and vocabulary)")
    return {name: loaded[name].astype(p.dtype) for name, p in params.items()}


def start_run(args, log):
    """A new run: the data, the model, the claimed run folder and its config.json
    -> (args, run, cache, config, params, optimizer state or None, meta)."""
    args.epochs = args.epochs or DEFAULT_EPOCHS
    cache = prepare_data(args, log)
    config = model_config(args, cache)
    if args.teacher:
        check_teacher(args.teacher, cache)
    params = init_params(config, np.random.default_rng(args.seed))
    if args.init_from:
        params = weights_from(args.init_from, params)
    run = Run(out_dir(args), "overwrite" if args.overwrite else "new")
    write_json(run.path / "config.json", {"model": config.to_dict(), "train": vars(args),
                                          "cache": str(cache)})
    meta = dict(epoch=0, batch=0, step=0, best_bleu4=-1.0, best_epoch=0, epoch_loss=0.0,
                epoch_batches=0, log=[], cache_fingerprint=cache_fingerprint(cache),
                dropout_rng=np.random.default_rng(args.seed + 1).bit_generator.state)
    return args, run, cache, config, params, None, meta


def resume_run(args, log):
    """The run in args.resume, as its last.h5 left it, with its own options (only those in
    train_options.RESUME_OPTIONS may be given again) -> the same tuple as start_run."""
    params, opt_state, meta = load_checkpoint(Path(args.resume) / "last.h5")
    saved = meta["args"]
    for key in args.changed:
        if json.loads(json.dumps(getattr(args, key))) != saved.get(key):
            option = "--" + key.replace("_", "-")
            raise ValueError(f"--resume continues {args.resume} with its own options: {option} "
                             f"{getattr(args, key)} differs from the run's {saved.get(key)}; drop "
                             f"{option}, or start a new run from its weights with --init-from")
    saved.update(epochs=args.epochs or saved["epochs"], quiet=args.quiet, device=args.device,
                 kernels=args.kernels, deterministic=args.deterministic, resume=args.resume)
    args = argparse.Namespace(**saved)
    config, cache = Config.from_dict(meta["config"]), Path(meta["cache"])
    check_cache(cache, vocab=meta["vocab"], image_size=config.image_size,
                fingerprint=meta["cache_fingerprint"], checkpoint=Path(args.resume) / "last.h5")
    run = Run(args.resume, "resume")
    record_path = run.path / "config.json"
    record = json.loads(record_path.read_text()) if record_path.is_file() else None
    trained = max(args.epochs, meta["epoch"])     # a finished run asked for fewer only re-scores
    if record and record["train"]["epochs"] != trained:     # a new --epochs: the record says so
        record["train"]["epochs"] = trained
        write_json(record_path, record)
    for note in run.repair(meta) + [f"removed {name}, left by a killed process" for name in run.removed]:
        log(f"note: {note}")
    if meta["epoch"] >= args.epochs:
        log(f"{run.path} finished training at epoch {meta['epoch']} of {args.epochs}: "
            f"scoring the test split")
    else:
        log(f"resuming {run.path} at epoch {meta['epoch'] + 1} of {args.epochs}, "
            f"batch {meta['batch'] + 1}")
    return args, run, cache, config, params, opt_state, meta


def train(args, log=print):
    """Run (or resume) training as `args` say; -> the exit status (0, 130 interrupted, 3 non-finite)."""
    xp = get_device(args.device)
    set_kernels(args.kernels, args.deterministic)
    args, run, cache, config, params, opt_state, meta = (resume_run if args.resume else start_run)(args, log)
    try:
        student = load_layers(args.layers) if getattr(args, "layers", None) else None
        with student.installed() if student else nullcontext():
            if student:
                log(f"layers from {args.layers}: {', '.join(student.functions)}")
            return train_in(run, args, xp, cache, config, params, opt_state, meta, log, student)
    finally:
        run.release()


def check_layers_ran(student, log):
    """After the first step: every student function ran, except the sequence LSTM, which the
    captioner (one step at a time) never calls."""
    sequence = [n for n in student.never_called() if n in ("lstm_forward", "lstm_backward")]
    if sequence:
        log(f"note: the captioner never calls {', '.join(sequence)} (it runs the LSTM one step at "
            "a time); python -m rawcap.exercises grade checks them")
    student.check_called("the first training step", exempt=sequence)


def train_step(params, config, batch, xp, optimizer, lr, clip, losses, progress):
    """One training step on a host batch, in place -> the loss parts.

    losses(arrays, statistics) -> loss, parts, grads of the batch's arrays on the device
    (model.loss_and_grads, or SCST's), putting batchnorm's updated running statistics into
    `statistics`. progress["updating"] is True while the parameters change in place.
    The parts come back as floats: the loss logging reads nothing more from the device.
    rawcap.count counts what this function launches and syncs on a GPU."""
    check_batch(batch, config.vocab_size)           # on the host: no device sync
    arrays = [xp.asarray(a) for a in batch[:5]]
    statistics = {}                 # batchnorm's running statistics, updated by this batch
    loss, parts, grads = losses(arrays, statistics)
    parts = check_and_clip(loss, parts, grads, clip)     # the step's one read of device values
    progress["updating"] = True     # params change in place from here ...
    optimizer.step(trainable(params), grads, lr)
    params.update(statistics)
    progress["updating"] = False    # ... to here
    return parts


def train_in(run, args, xp, cache, config, params, opt_state, meta, log, student=None):
    """The training loop, then the test scores: train()'s body once the run folder is claimed
    (with a student's layers in place if `student`: rawcap.student)."""
    params = to_device(params, xp)          # the trainable ones in one buffer (rawcap.flat)
    optimizer = make_optimizer(args.optimizer, trainable(params))
    if opt_state is not None:
        optimizer.load_state_dict(opt_state)
    dropout_rng = np.random.default_rng()
    dropout_rng.bit_generator.state = meta["dropout_rng"]
    train_on_val = getattr(args, "train_on_val", False)
    loader = CaptionBatches(cache, ("train", "val") if train_on_val else "train", args.batch_size,
                            seed=args.seed, per_image=True,
                            augment=getattr(args, "augment", False), zoom=getattr(args, "zoom", 1.0),
                            colour_jitter=getattr(args, "colour_jitter", 0.0))
    if train_on_val:
        log(f"training on train and val together ({loader.num_images} images): the val scores "
            f"below are of images the model has seen, so no best.h5 is kept and test is scored "
            f"with last.h5")
    total_steps = args.epochs * len(loader)

    def schedule(step):
        return learning_rate(step, args.lr, total_steps, args.schedule, args.warmup_steps,
                             args.decay_every or len(loader), args.decay_factor)

    lr = schedule(meta["step"])

    with open_cache(cache) as f:
        words = json.loads(f.attrs["vocab"])["words"]
    teacher = Teacher(args.teacher, cache) if getattr(args, "teacher", None) else None
    scst = getattr(args, "scst", False)
    reward = CiderReward(cache) if scst else None
    loss_part = "policy" if scst else "ce"

    def checkpoint_meta():
        return dict(meta, config=config.to_dict(), cache=str(cache), args=vars(args), vocab=words,
                    dropout_rng=dropout_rng.bit_generator.state, test_beam=args.test_beam)

    def losses(arrays, statistics):
        nonlocal student
        if scst:                        # (the dropout generator draws the samples)
            result = scst_loss_and_grads(params, config, arrays[0], batch.image_rows, reward,
                                         dropout_rng, samples=getattr(args, "scst_samples", 1),
                                         baseline=getattr(args, "scst_baseline", "greedy"))
        else:
            soft_targets = [xp.asarray(a) for a in teacher.targets(batch)] if teacher else None
            result = loss_and_grads(params, config, *arrays, dropout_rng, statistics,
                                    soft_targets=soft_targets)
        if student is not None:
            check_layers_ran(student, log)
            student = None
        return result

    stop = stop_on_ctrl_c(log)
    # The dropout RNG as of the last finished step: what last.h5 saves if a step is cut short.
    finished_rng = dropout_rng.bit_generator.state
    progress = {"updating": False}
    try:
        while meta["epoch"] < args.epochs:
            epoch, start = meta["epoch"], meta["batch"]
            began, images_seen = time.time(), 0
            bar = tqdm(loader.epoch(epoch, start), total=len(loader), initial=start,
                       desc=f"epoch {epoch + 1}/{args.epochs}", unit="batch", disable=args.quiet)
            for batch in bar:
                if stop.is_set():
                    raise KeyboardInterrupt
                tick = time.time()
                lr = schedule(meta["step"])
                parts = train_step(params, config, batch, xp, optimizer, lr, args.clip, losses, progress)
                meta.update(step=meta["step"] + 1, batch=meta["batch"] + 1,
                            epoch_loss=meta["epoch_loss"] + parts[loss_part],
                            epoch_batches=meta["epoch_batches"] + 1)
                finished_rng = dropout_rng.bit_generator.state
                images_seen += len(batch.images)
                tokens_per_s = int(batch.mask.sum()) / (time.time() - tick)
                if scst:
                    shown = dict(reward=f"{parts['reward']:.3f}", baseline=f"{parts['baseline']:.3f}")
                else:
                    shown = dict(loss=f"{parts['ce']:.3f}", tok_s=f"{tokens_per_s:.0f}")
                bar.set_postfix(**shown, lr=f"{lr:.1e}")
            bar.close()
            seconds = time.time() - began
            scores, _, _ = evaluate_split(params, config, cache, "val", beam=1, progress=not args.quiet)
            row = dict(epoch=epoch + 1, step=meta["step"], lr=float(f"{lr:.3g}"), seconds=round(seconds, 1),
                       train_loss=round(meta["epoch_loss"] / max(meta["epoch_batches"], 1), 4),
                       images_per_s=round(images_seen / seconds, 1),
                       **{f"val_{k}": round(v, 4) for k, v in scores.items()})
            # Val cannot choose among images the model trained on: --train-on-val keeps no best.h5.
            improved = not train_on_val and scores["bleu4"] > meta["best_bleu4"]
            meta.update(epoch=epoch + 1, batch=0, epoch_loss=0.0, epoch_batches=0,
                        log=meta["log"] + [row])
            if improved:
                meta.update(best_bleu4=scores["bleu4"], best_epoch=epoch + 1)
            # In this order a kill at any moment leaves a folder that --resume repairs (run_dir).
            run.save("last.h5", params, optimizer, checkpoint_meta())
            if improved:
                run.copy_last_to_best()
            run.write_log(meta["log"])
            log(f"epoch {epoch + 1}: train loss {row['train_loss']}, val BLEU-4 {scores['bleu4']:.4f} "
                f"(greedy), {row['images_per_s']} images/s")
            if stop.is_set():                   # Ctrl-C during the val decoding
                raise KeyboardInterrupt
    except KeyboardInterrupt:
        if progress["updating"]:
            log("\nstopped in the middle of a parameter update: last.h5 keeps the previous save")
            return 130
        # Save the state as of the last finished step; an unfinished one is redone on resume.
        dropout_rng.bit_generator.state = finished_rng
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

    scored = "last.h5" if train_on_val else "best.h5"
    final, _, _ = load_checkpoint(run.path / scored)
    final = {k: xp.asarray(v) for k, v in final.items()}
    try:
        scores, captions, protocol = evaluate_split(final, config, cache, "test", beam=args.test_beam,
                                                    progress=not args.quiet)
    except KeyboardInterrupt:
        log(f"\ninterrupted while scoring the test split; python -m rawcap.train --resume "
            f"{run.path} scores it again")
        return 130
    write_json(run.path / "metrics.json", {**scores, "protocol": protocol, "checkpoint": scored})
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
