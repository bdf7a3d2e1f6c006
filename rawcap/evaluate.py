"""Score a trained captioner on a split: real decoding (no teacher forcing), all references.

    python -m rawcap.evaluate RUN_DIR_OR_CHECKPOINT [--split test] [--beam 3] [--length-penalty 0.7]
    python -m rawcap.evaluate --data-dir data/flickr8k --out scores/       # the shipped model
    python -m rawcap.evaluate RUN --split val --beam 1,2,3,5 --length-penalty 0,0.5,1   # a sweep
    python -m rawcap.evaluate RUN_A RUN_B --split val --out ensemble/       # an ensemble

Prints the metric table with its protocol and writes metrics_{split}.json (or metrics.json for
the test split) and captions_{split}.json (file name -> generated caption) next to the run.
Several beam sizes or length penalties make a sweep: every combination is scored on the split
(val or train, never test: a sweep chooses, and choosing on test would make its scores
optimistic), printed as a table and written to sweep_{split}.json. Several runs decode as one
ensemble (rawcap.decode: the mean of their next-word log-probabilities); they must share the
vocabulary, image size and resize mode.
"""
import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .backend import array_module
from .checkpoint import CheckpointError
from .data.batches import CaptionBatches
from .cli import (HelpFormatter, existing_dir, existing_file, list_of, nonnegative_float, output_dir,
                  positive_int)
from .data.cache import cache_path_for, check_cache, open_cache, prepare, read_references
from .data.vocab import Vocabulary
from .decode import LENGTH_NORMALIZATION, decode, decoding, members
from .metrics import format_table, score_captions
from .ship import describe, in_package, load_models, model_decoding


def generate_split(params, config, cache_path, split, beam=1, batch_size=50, max_length=20,
                   progress=True, length_penalty=LENGTH_NORMALIZATION):
    """Caption every image of `split` -> (file names, generated token lists, reference token lists)."""
    with open_cache(cache_path) as f:
        vocab = Vocabulary.from_json(f.attrs["vocab"])
    references, filenames = read_references(cache_path, split)
    loader = CaptionBatches(cache_path, split, batch_size, per_image=True)
    some_param = next(iter(members(params, config)[0][0].values()))
    xp = array_module(some_param)
    names, hypotheses, refs = [], [], []
    for batch in tqdm(loader.epoch(0), total=len(loader), desc=f"decode {split}", unit="batch",
                      disable=not progress, leave=False):
        images = xp.asarray(batch.images, dtype=some_param.dtype)   # onto the params' device
        captions = decode(params, config, images, beam_size=beam, max_length=max_length,
                          length_normalization=length_penalty)
        for row, tokens in zip(batch.image_rows, captions.tokens):
            names.append(filenames[row])
            hypotheses.append(vocab.decode(tokens))
            refs.append(references[int(row)])
    order = np.argsort(names)                      # a stable, shuffle-free order for the files
    return [names[i] for i in order], [hypotheses[i] for i in order], [refs[i] for i in order]


def evaluate_split(params, config, cache_path, split, beam=1, progress=True, meteor=False,
                   length_penalty=LENGTH_NORMALIZATION):
    """-> (scores dict, {file name: caption}, protocol string). METEOR only when asked (it
    needs pycocoevalcap and Java; a warning says why it is left out)."""
    names, hypotheses, references = generate_split(params, config, cache_path, split, beam,
                                                   progress=progress, length_penalty=length_penalty)
    scores = score_captions(references, hypotheses, meteor=meteor)
    n_refs = sorted({len(r) for r in references})
    protocol = (f"{split} split, {len(names)} images, {'/'.join(map(str, n_refs))} references "
                f"per image, {decoding(beam, length_penalty)} decoding, rawcap.metrics "
                f"(coco-caption conventions)")
    return scores, dict(zip(names, (" ".join(h) for h in hypotheses))), protocol


def sweep(params, config, cache_path, split, beams, penalties, progress=True):
    """Score every (beam, length penalty) on `split` -> a list of rows: beam, length_penalty
    (None for greedy, which has no use for it), every score, mean words and distinct captions."""
    if split == "test":
        raise ValueError("a sweep chooses the decoding, so it runs on --split val, and test is "
                         "scored once with the chosen setting (keeping the best of several "
                         "settings on test would flatter it)")
    settings = [(1, None)] if 1 in beams else []
    settings += [(b, a) for b in beams if b > 1 for a in penalties]
    rows = []
    for beam, penalty in tqdm(settings, desc="settings", disable=not progress):
        _, hypotheses, references = generate_split(
            params, config, cache_path, split, beam, progress=progress,
            length_penalty=LENGTH_NORMALIZATION if penalty is None else penalty)
        rows.append(dict(beam=beam, length_penalty=penalty,
                         **score_captions(references, hypotheses),
                         mean_words=float(np.mean([len(h) for h in hypotheses])),
                         distinct=len({" ".join(h) for h in hypotheses})))
    return rows


def format_sweep(rows):
    """The sweep as an aligned table, then the best setting by BLEU-4 and by CIDEr-D."""
    lines = [f"{'beam':>4}  {'length penalty':>14}  {'BLEU-4':>7}  {'CIDEr-D':>7}  "
             f"{'words':>5}  {'distinct':>8}"]
    for r in rows:
        penalty = "-" if r["length_penalty"] is None else f"{r['length_penalty']:g}"
        lines.append(f"{r['beam']:>4}  {penalty:>14}  {r['bleu4']:>7.4f}  {r['cider']:>7.4f}  "
                     f"{r['mean_words']:>5.2f}  {r['distinct']:>8}")
    for key, label in (("bleu4", "BLEU-4"), ("cider", "CIDEr-D")):
        best = max(rows, key=lambda r: r[key])
        lines.append(f"best {label}: " + ("greedy" if best["beam"] == 1 else
                     f"beam {best['beam']}, length penalty {best['length_penalty']:g}"))
    return "\n".join(lines)


def write_json(path, obj):
    """Write JSON atomically (temporary file, then rename)."""
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=1, sort_keys=True)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def model_cache(args, config, meta, checkpoint):
    """The cache to score on: --cache as given; --data-dir prepared (or reused) with the model's
    own data options; else the cache the run trained on, with its fingerprint checked."""
    resize = config.resize
    if args.cache:
        cache, fingerprint = args.cache, None
    elif args.data_dir:
        data = meta.get("shipped", {}).get("data") or meta.get("args", {})
        options = dict(min_count=data.get("min_count", 5), max_length=data.get("max_length", 20),
                       skip_bad=data.get("skip_bad", False))
        cache = prepare(args.data_dir, cache_path_for(args.data_dir, config.image_size, resize=resize,
                                                      **options),
                        size=config.image_size, resize=resize, progress=not args.quiet, **options)
        fingerprint = None
    else:
        cache, fingerprint = meta["cache"], meta.get("cache_fingerprint")
        if not Path(cache).is_file():
            raise ValueError(f"{cache}, the cache {checkpoint} was trained on, is not here; give "
                             f"the dataset with --data-dir DATASET (or a cache with --cache)")
    # The run's own cache must still hold the data it trained on; any cache must share the
    # checkpoint's vocabulary, image size and resize mode.
    check_cache(cache, vocab=meta["vocab"], image_size=config.image_size, fingerprint=fingerprint,
                checkpoint=checkpoint, resize=resize)
    return cache


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m rawcap.evaluate", description=__doc__.split("\n\n")[0],
                                     formatter_class=HelpFormatter)
    parser.add_argument("run", nargs="*",
                        help="a run directory (uses best.h5; last.h5 after --train-on-val) or a "
                             "checkpoint file (default: the shipped model, or $RAWCAP_MODEL); "
                             "several decode as an ensemble, the mean of their next-word "
                             "log-probabilities")
    parser.add_argument("--split", default="test", choices=["train", "val", "test"])
    parser.add_argument("--beam", metavar="K", type=list_of(positive_int),
                        help="beam size, 1 is greedy; several (1,2,3,5) make a sweep (default: "
                             "the one the shipped model was chosen with, else 3)")
    parser.add_argument("--length-penalty", metavar="ALPHA", type=list_of(nonnegative_float),
                        help="alpha: beam search ranks finished captions by log p / tokens^alpha "
                             "(0: plain log-probability, 1: per token); several (0,0.5,1) make a "
                             "sweep (default: the shipped model's, else 0.7)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--cache", type=existing_file,
                        help="the HDF5 cache to read (default: the one the run trained on); its "
                             "vocabulary, image size and resize mode must be the checkpoint's")
    source.add_argument("--data-dir", metavar="DATASET", type=existing_dir,
                        help="a dataset folder (as rawcap.data prepare reads): its cache is built "
                             "under data/ with the model's image size, resize mode and vocabulary "
                             "options, or reused")
    parser.add_argument("--out", type=output_dir,
                        help="where to write the json files, created if missing (default: the "
                             "run directory; required for the shipped model)")
    parser.add_argument("--meteor", action="store_true",
                        help="add METEOR (needs pycocoevalcap and Java; skipped with a warning otherwise)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    if not args.run and args.out is None:
        parser.error("scoring the shipped model: give --out FOLDER for its json files")
    if len(args.run) > 1 and args.out is None:
        parser.error("scoring an ensemble: give --out FOLDER for its json files")
    try:
        checkpoints, models = zip(*load_models(args.run))
        if args.out is None and in_package(checkpoints[0]):
            raise ValueError(f"{checkpoints[0]} is the shipped model, inside the package: give "
                             f"--out FOLDER for its json files")
        for checkpoint, (_, _, meta) in zip(checkpoints, models):
            print(f"model: {describe(checkpoint, meta)}")
        checkpoint, (params, config, meta) = checkpoints[0], models[0]
        if len(models) > 1:
            params, config = tuple(m[0] for m in models), tuple(m[1] for m in models)
        beam, penalty = model_decoding(meta)
        args.beam = args.beam or [beam]
        args.length_penalty = [penalty] if args.length_penalty is None else args.length_penalty
        is_sweep = len(args.beam) > 1 or len(args.length_penalty) > 1
        cache = model_cache(args, models[0][1], meta, checkpoint)
        if is_sweep:
            rows = sweep(params, config, cache, args.split, args.beam, args.length_penalty,
                         progress=not args.quiet)
        else:
            scores, captions, protocol = evaluate_split(
                params, config, cache, args.split, args.beam[0], progress=not args.quiet,
                meteor=args.meteor, length_penalty=args.length_penalty[0])
    except (CheckpointError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = Path(args.out or checkpoint.parent)
    out.mkdir(parents=True, exist_ok=True)
    # The checkpoint(s) as seen from out/: one path, or a list for an ensemble.
    scored = [os.path.relpath(c, out) for c in checkpoints]
    scored = scored[0] if len(scored) == 1 else scored
    if is_sweep:
        print(format_sweep(rows))
        sweep_file = out / f"sweep_{args.split}.json"
        write_json(sweep_file, {"split": args.split, "checkpoint": scored, "rows": rows})
        print(f"wrote {sweep_file}")
        return 0
    print(format_table(scores, protocol))
    metrics_file = out / ("metrics.json" if args.split == "test" else f"metrics_{args.split}.json")
    captions_file = out / f"captions_{args.split}.json"
    write_json(metrics_file, {**scores, "protocol": protocol, "checkpoint": scored})
    write_json(captions_file, captions)
    print(f"wrote {metrics_file} and {captions_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
