"""The model in the box: a run's best checkpoint as the small weights file the package ships.

    python -m rawcap.ship RUN_DIR_OR_CHECKPOINT [--out rawcap/weights/flickr8k.h5] [--float32]
                          [--beam 5 --length-penalty 0.7 --metrics RUN/beam5/metrics.json]

The shipped file is a checkpoint of the usual format (rawcap.checkpoint: a SHA-256 of every
part, verified on load; written to a temporary file and renamed), holding only what decoding needs:

    params     the weights, float16 by default (half the bytes; load_model turns them back into
               float32), and the batchnorm running statistics, kept float32; not the head of
               the bag-of-words loss (--bag-of-words), which only trains the encoder
    optimizer  nothing
    meta       config (sizes, pixel mean and std, resize mode), vocabulary, the data options the
               vocabulary was built with, where the weights came from (run, epoch, val BLEU-4),
               the decoding chosen for it on val (--beam, --length-penalty: what caption and
               evaluate then use unless told otherwise), and the run's test metrics at that
               decoding if it has them (--metrics, default RUN/metrics.json)

`python -m rawcap.caption photo.jpg` and `python -m rawcap.evaluate --data-dir DATASET` use it
when they are given no checkpoint. It lives at SHIPPED inside the package (setup.py's
package_data installs it); the environment variable RAWCAP_MODEL names another file instead.
"""
import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from .checkpoint import CheckpointError, find_checkpoint, load_checkpoint, model_meta, save_checkpoint
from .cli import HelpFormatter, nonnegative_float, positive_int
from .decode import BEAM_SIZE, LENGTH_NORMALIZATION, decoding

SHIPPED = Path(__file__).parent / "weights" / "flickr8k.h5"
ENVIRONMENT = "RAWCAP_MODEL"
TRAINING_ONLY = ("args", "log", "dropout_rng", "batch", "epoch_loss", "epoch_batches")
TRAINING_HEAD = ("bow_w", "bow_b")     # the bag-of-words loss's: it only trains the encoder


def shipped_path():
    """Where the shipped model is: $RAWCAP_MODEL if set, else SHIPPED in the package."""
    return Path(os.environ.get(ENVIRONMENT) or SHIPPED)


def in_package(path):
    """Whether `path` lies in the package's weights folder, beside SHIPPED: no place for the
    files a command writes (they would land in the installed package)."""
    return Path(path).resolve().parent == SHIPPED.parent.resolve()


def find_model(path=None):
    """A checkpoint file for `path` (a run directory: checkpoint.find_checkpoint), or the
    shipped model when path is None; CheckpointError if there is none."""
    if path is not None:
        return find_checkpoint(path)
    path = shipped_path()
    if not path.is_file():
        where = f"${ENVIRONMENT} = {path}" if os.environ.get(ENVIRONMENT) else str(path)
        raise CheckpointError(
            f"no checkpoint given, and this install has no shipped model (looked for {where}); "
            f"give a checkpoint or run directory first, e.g. runs/flickr8k")
    return path


def load_model(path):
    """A training checkpoint or a shipped file -> (params: float32 NumPy arrays, Config, meta).
    CheckpointError naming the file if it is damaged, not a model, or its vocabulary does not
    fit its output layer."""
    params, _, meta = load_checkpoint(path)
    config = model_meta(meta, path)
    sizes = {"vocabulary": len(meta["vocab"]), "config.vocab_size": config.vocab_size,
             "the output layer": params["out_w"].shape[-1] if "out_w" in params else config.vocab_size}
    if len(set(sizes.values())) > 1:
        raise CheckpointError(f"{path}: its vocabulary and model disagree: "
                              + ", ".join(f"{k} {v}" for k, v in sizes.items()))
    return {k: v.astype(np.float32, copy=False) for k, v in params.items()}, config, meta


def model_decoding(meta):
    """(beam size, length penalty) a model decodes with unless told otherwise: the ones its shipped
    file records (chosen on val), else BEAM_SIZE and LENGTH_NORMALIZATION."""
    chosen = (meta.get("shipped") or {}).get("decoding") or {}
    return chosen.get("beam", BEAM_SIZE), chosen.get("length_penalty", LENGTH_NORMALIZATION)


def describe(path, meta):
    """One line saying which model this is: file, data, size, where it came from, its scores.
    A file rawcap.ship wrote is "the shipped model" only where caption and evaluate would find
    it by default (shipped_path); any other, e.g. an ensemble's member, is "the model file"."""
    shipped = meta.get("shipped")
    if not shipped:
        best_epoch = meta.get("best_epoch", "?")        # 0: val chose none (--train-on-val)
        best = "" if best_epoch == 0 else (
            f", best val BLEU-4 {meta.get('best_bleu4', float('nan')):.4f} at epoch {best_epoch}")
        return f"{path} (epoch {meta.get('epoch', '?')}{best})"
    parts = [f"{shipped['dataset']}, {shipped['parameters'] / 1e6:.2f} M parameters "
             f"({shipped['dtype']}), epoch {shipped['epoch']} of run {shipped['run']}",
             f"decodes with {decoding(*model_decoding(meta))}"]
    test = shipped.get("test")
    if test:
        parts.append(f"the run's test BLEU-4 {test['bleu4']:.4f}, CIDEr-D {test['cider']:.4f} "
                     f"({test['decoding']})")
    name = "the shipped model" if Path(path).resolve() == shipped_path().resolve() else "the model file"
    return f"{name} {path}: " + "; ".join(parts)


def export(checkpoint, out, float16=True, beam=BEAM_SIZE, length_penalty=LENGTH_NORMALIZATION,
           metrics=None):
    """Write the shipped file `out` from a training checkpoint -> a dict describing it.
    metrics: the run's test metrics.json at this decoding (default: the run's metrics.json)."""
    from .model import is_statistic
    params, _, meta = load_checkpoint(checkpoint)
    config = model_meta(meta, checkpoint)
    if config.bag_of_words:                     # decoding never reads its head: leave it out
        params = {k: v for k, v in params.items() if k not in TRAINING_HEAD}
        config = replace(config, bag_of_words=0.0)
    dtype = np.float16 if float16 else np.float32
    small = {}
    for name, value in params.items():
        if float16 and not is_statistic(name) and np.abs(value).max() > np.finfo(np.float16).max:
            raise ValueError(f"{checkpoint}: {name} holds values beyond float16's range "
                             f"(|x| > 65504); ship it with --float32")
        small[name] = value.astype(np.float32 if is_statistic(name) else dtype)
    run = Path(checkpoint).parent
    args = meta.get("args", {})
    shipped = dict(run=run.name, checkpoint=Path(checkpoint).name, epoch=meta.get("epoch"),
                   best_val_bleu4=meta.get("best_bleu4"), dtype=np.dtype(dtype).name,
                   parameters=int(sum(v.size for k, v in params.items() if not is_statistic(k))),
                   dataset=args.get("data", "?"),
                   decoding=dict(beam=beam, length_penalty=length_penalty),
                   test=_test_scores(Path(metrics) if metrics else run / "metrics.json", checkpoint,
                                     decoding(beam, length_penalty), explicit=bool(metrics)),
                   data={k: args[k] for k in ("min_count", "max_length", "skip_bad") if k in args})
    keep = {k: v for k, v in meta.items() if k not in TRAINING_ONLY}
    save_checkpoint(out, small, {}, dict(keep, config=config.to_dict(), shipped=shipped))
    return dict(shipped, bytes=os.path.getsize(out), resize=config.resize)


def _test_scores(metrics_file, checkpoint, chosen, explicit=False):
    """BLEU-4 and CIDEr-D of a test metrics.json of this checkpoint at the chosen decoding (text
    as decode.decoding writes it). The run's own file is skipped (None) if absent, of another
    checkpoint or of another decoding; a file named with --metrics must fit (ValueError)."""
    if not metrics_file.is_file():
        if explicit:
            raise ValueError(f"--metrics {metrics_file}: no such file")
        return None
    metrics = json.loads(metrics_file.read_text())
    protocol = metrics.get("protocol", "")
    problem = None
    if Path(metrics.get("checkpoint", checkpoint)).name != Path(checkpoint).name:
        problem = f"it scored {metrics.get('checkpoint')}, not {Path(checkpoint).name}"
    elif not protocol.startswith("test split") or f", {chosen} decoding," not in protocol:
        problem = f"it is not the test split at {chosen} ({protocol!r})"
    if problem and explicit:
        raise ValueError(f"--metrics {metrics_file}: {problem}; score it with python -m "
                         f"rawcap.evaluate RUN --beam B --length-penalty A --out FOLDER")
    if problem:
        return None
    return dict(bleu4=metrics["bleu4"], cider=metrics["cider"], decoding=chosen)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m rawcap.ship", description=__doc__.split("\n\n")[0],
                                     formatter_class=HelpFormatter)
    parser.add_argument("run", help="a run directory (uses best.h5; last.h5 after --train-on-val) "
                                    "or a checkpoint file")
    parser.add_argument("--out", default=str(SHIPPED),
                        help="the file to write (default: the package's shipped model, %(default)s)")
    parser.add_argument("--float32", action="store_true",
                        help="store the weights as float32 (twice the size) instead of float16")
    parser.add_argument("--beam", type=positive_int, default=BEAM_SIZE,
                        help="the beam size chosen on val (evaluate --split val --beam 1,2,3,5): "
                             "caption and evaluate decode the shipped model with it by default")
    parser.add_argument("--length-penalty", metavar="ALPHA", type=nonnegative_float,
                        default=LENGTH_NORMALIZATION, help="the length penalty chosen with it")
    parser.add_argument("--metrics", metavar="FILE",
                        help="the run's test metrics.json at that decoding, recorded in the file "
                             "(default: RUN/metrics.json if it is of that decoding)")
    args = parser.parse_args(argv)
    try:
        checkpoint = find_model(args.run)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        info = export(checkpoint, args.out, float16=not args.float32, beam=args.beam,
                      length_penalty=args.length_penalty, metrics=args.metrics)
    except (CheckpointError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: {info['bytes'] / 2 ** 20:.2f} MiB, {info['parameters']:,} parameters "
          f"as {info['dtype']}, from {checkpoint} (epoch {info['epoch']}), resize {info['resize']}, "
          f"decodes with {decoding(args.beam, args.length_penalty)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
