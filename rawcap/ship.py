"""The model in the box: a run's best checkpoint as the small weights file the package ships.

    python -m rawcap.ship RUN_DIR_OR_CHECKPOINT [--out rawcap/weights/flickr8k.h5] [--float32]
                          [--beam 5 --length-penalty 0.7 --metrics RUN/beam5/metrics.json]
    python -m rawcap.ship RUN_A RUN_B RUN_C --metrics ENSEMBLE/metrics.json     # an ensemble

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
ORIGIN = ("run", "checkpoint", "epoch", "best_val_bleu4", "parameters", "dataset", "data")


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


def load_models(paths):
    """The models to decode with -> [(checkpoint path, (params, Config, meta))]: each of `paths`
    (find_model: run directories or files), or the shipped model when there are none; a shipped
    ensemble's first file brings its other members, which lie beside it."""
    models = []
    for path in paths or [None]:
        checkpoint = find_model(path)
        params, config, meta = load_model(checkpoint)
        models.append((checkpoint, (params, config, meta)))
        for name in ensemble_members(meta):
            member = checkpoint.parent / name
            if not member.is_file():
                raise CheckpointError(f"{checkpoint} is an ensemble's first file and names "
                                      f"{name} as a member; there is no {member}")
            models.append((member, load_model(member)))
    check_ensemble(*zip(*models))
    return models


def check_ensemble(checkpoints, models):
    """Raise a ValueError unless the models can caption together: one vocabulary, image size
    and resize mode (the images and the words are shared)."""
    (first, (_, config, meta)), *rest = zip(checkpoints, models)
    for path, (_, other, other_meta) in rest:
        for what, a, b in (("vocabulary", meta["vocab"], other_meta["vocab"]),
                           ("image size", config.image_size, other.image_size),
                           ("resize mode", config.resize, other.resize)):
            if a != b:
                raise ValueError(f"{first} and {path} differ in their {what}: the models of "
                                 f"an ensemble must share it")


def ensemble_members(meta):
    """The file names of the other members a shipped ensemble's first file names (else none)."""
    return (meta.get("shipped") or {}).get("ensemble", [])


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
    members = ensemble_members(meta)
    parts = [f"{shipped['dataset']}, {shipped['parameters'] / 1e6:.2f} M parameters "
             f"({shipped['dtype']}), epoch {shipped['epoch']} of run {shipped['run']}",
             f"decodes with {decoding(*model_decoding(meta))}"]
    if members:
        parts.insert(1, f"decoded together with {', '.join(members)} beside it")
    test = shipped.get("test")
    if test:
        parts.append(f"{'the ensemble' if members else 'the run'}'s test BLEU-4 "
                     f"{test['bleu4']:.4f}, CIDEr-D {test['cider']:.4f} ({test['decoding']})")
    name = "the shipped model" if Path(path).resolve() == shipped_path().resolve() else "the model file"
    return f"{name} {path}: " + "; ".join(parts)


def export(checkpoints, out, float16=True, beam=BEAM_SIZE, length_penalty=LENGTH_NORMALIZATION,
           metrics=None):
    """Write the shipped file `out` from one checkpoint, or an ensemble's files (out, OUT-2.h5,
    ...) from several -> a dict describing each file written. metrics: the test metrics.json of
    that model or ensemble at this decoding (default: the first checkpoint's run's metrics.json)."""
    out, chosen = Path(out), decoding(beam, length_penalty)
    test = _test_scores(Path(metrics) if metrics else Path(checkpoints[0]).parent / "metrics.json",
                        checkpoints, chosen, explicit=bool(metrics))
    paths = [out] + [out.with_name(f"{out.stem}-{i}{out.suffix}") for i in range(2, len(checkpoints) + 1)]
    # all read before any is written: out may be one of them (a shipped file shipped again)
    smalls = [_small_model(checkpoint, float16) for checkpoint in checkpoints]
    check_ensemble(checkpoints, [(small, model_meta(meta, checkpoint), meta)
                                 for checkpoint, (small, meta, _) in zip(checkpoints, smalls)])
    written = []
    for i, (path, (small, meta, shipped)) in enumerate(zip(paths, smalls)):
        shipped = dict(shipped, decoding=dict(beam=beam, length_penalty=length_penalty),
                       test=test if i == 0 else None)
        if i == 0 and len(paths) > 1:
            shipped["ensemble"] = [p.name for p in paths[1:]]
        save_checkpoint(path, small, {}, dict(meta, shipped=shipped))
        written.append(dict(shipped, path=path, bytes=os.path.getsize(path),
                            resize=meta["config"]["resize"]))
    return written


def _small_model(checkpoint, float16):
    """A checkpoint's weights as shipped (float16 unless told otherwise, no bag-of-words head)
    -> (params, meta without what only training needs, where the weights came from)."""
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
    if "shipped" in meta:                       # shipped again: where it came from stays
        origin = {k: meta["shipped"][k] for k in ORIGIN}
    else:
        args = meta.get("args", {})
        origin = dict(run=Path(checkpoint).parent.name, checkpoint=Path(checkpoint).name,
                      epoch=meta.get("epoch"), best_val_bleu4=meta.get("best_bleu4"),
                      parameters=int(sum(v.size for k, v in params.items() if not is_statistic(k))),
                      dataset=args.get("data", "?"),
                      data={k: args[k] for k in ("min_count", "max_length", "skip_bad") if k in args})
    keep = {k: v for k, v in meta.items() if k not in TRAINING_ONLY + ("shipped",)}
    return small, dict(keep, config=config.to_dict()), dict(origin, dtype=np.dtype(dtype).name)


def _test_scores(metrics_file, checkpoints, chosen, explicit=False):
    """BLEU-4 and CIDEr-D of a test metrics.json of these checkpoints (one model, or an ensemble
    in this order) at the chosen decoding (text as decode.decoding writes it). The run's own
    file is skipped (None) if absent, of other checkpoints or of another decoding; a file named
    with --metrics must fit (ValueError)."""
    if not metrics_file.is_file():
        if explicit:
            raise ValueError(f"--metrics {metrics_file}: no such file")
        return None
    metrics = json.loads(metrics_file.read_text())
    protocol = metrics.get("protocol", "")
    names = [Path(c).name for c in checkpoints]
    scored = metrics.get("checkpoint", names)
    scored = scored if isinstance(scored, list) else [scored]
    problem = None
    if [Path(c).name for c in scored] != names:
        problem = f"it scored {', '.join(scored)}, not {', '.join(names)}"
    elif not protocol.startswith("test split") or f", {chosen} decoding," not in protocol:
        problem = f"it is not the test split at {chosen} ({protocol!r})"
    if problem and explicit:
        raise ValueError(f"--metrics {metrics_file}: {problem}; score it with python -m "
                         f"rawcap.evaluate RUN [RUN ...] --beam B --length-penalty A --out FOLDER")
    if problem:
        return None
    return dict(bleu4=metrics["bleu4"], cider=metrics["cider"], decoding=chosen)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m rawcap.ship", description=__doc__.split("\n\n")[0],
                                     formatter_class=HelpFormatter)
    parser.add_argument("run", nargs="+",
                        help="a run directory (uses best.h5; last.h5 after --train-on-val) or a "
                             "checkpoint file; several ship as an ensemble, decoded together")
    parser.add_argument("--out", default=str(SHIPPED),
                        help="the file to write (default: the package's shipped model, "
                             "%(default)s); an ensemble's other members go beside it as "
                             "OUT-2.h5, OUT-3.h5...")
    parser.add_argument("--float32", action="store_true",
                        help="store the weights as float32 (twice the size) instead of float16")
    parser.add_argument("--beam", type=positive_int, default=BEAM_SIZE,
                        help="the beam size chosen on val (evaluate --split val --beam 1,2,3,5): "
                             "caption and evaluate decode the shipped model with it by default")
    parser.add_argument("--length-penalty", metavar="ALPHA", type=nonnegative_float,
                        default=LENGTH_NORMALIZATION, help="the length penalty chosen with it")
    parser.add_argument("--metrics", metavar="FILE",
                        help="the test metrics.json of the model (or of the ensemble, from "
                             "evaluate RUN_A RUN_B ...) at that decoding, recorded in the file "
                             "(default: RUN/metrics.json if it is of that decoding)")
    args = parser.parse_args(argv)
    try:
        checkpoints = [find_model(run) for run in args.run]
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        written = export(checkpoints, args.out, float16=not args.float32, beam=args.beam,
                         length_penalty=args.length_penalty, metrics=args.metrics)
    except (CheckpointError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for checkpoint, info in zip(checkpoints, written):
        print(f"wrote {info['path']}: {info['bytes'] / 2 ** 20:.2f} MiB, {info['parameters']:,} "
              f"parameters as {info['dtype']}, from {checkpoint} (epoch {info['epoch']}), resize "
              f"{info['resize']}, decodes with {decoding(args.beam, args.length_penalty)}")
    if len(written) > 1:
        print(f"{written[0]['path']} decodes as an ensemble with {', '.join(written[0]['ensemble'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
