"""Score a trained captioner on a split: real decoding (no teacher forcing), all references.

    python -m rawcap.evaluate RUN_DIR_OR_CHECKPOINT [--split test] [--beam 3]

Prints the metric table with its protocol and writes metrics_{split}.json (or metrics.json for
the test split) and captions_{split}.json (file name -> generated caption) next to the run.
"""
import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .backend import array_module
from .checkpoint import CheckpointError, load_checkpoint, model_meta
from .data.batches import CaptionBatches
from .cli import HelpFormatter, existing_file, output_dir, positive_int
from .data.cache import check_cache, open_cache
from .data.vocab import Vocabulary
from .decode import decode
from .metrics import format_table, score_captions


def generate_split(params, config, cache_path, split, beam=1, batch_size=50, max_length=20,
                   progress=True):
    """Caption every image of `split` -> (file names, generated token lists, reference token lists)."""
    with open_cache(cache_path) as f:
        vocab = Vocabulary.from_json(f.attrs["vocab"])
        filenames = f["filenames"].asstr()[:]
        texts = f["caption_text"].asstr()[:]
        owner = f["caption_image"][:]
    references = {}
    for text, row in zip(texts, owner):
        references.setdefault(int(row), []).append(text.split())
    loader = CaptionBatches(cache_path, split, batch_size, per_image=True)
    some_param = next(iter(params.values()))
    xp = array_module(some_param)
    names, hypotheses, refs = [], [], []
    for batch in tqdm(loader.epoch(0), total=len(loader), desc=f"decode {split}", unit="batch",
                      disable=not progress, leave=False):
        images = xp.asarray(batch.images, dtype=some_param.dtype)   # onto the params' device
        captions = decode(params, config, images, beam_size=beam, max_length=max_length)
        for row, tokens in zip(batch.image_rows, captions.tokens):
            names.append(filenames[row])
            hypotheses.append(vocab.decode(tokens))
            refs.append(references[int(row)])
    order = np.argsort(names)                      # a stable, shuffle-free order for the files
    return [names[i] for i in order], [hypotheses[i] for i in order], [refs[i] for i in order]


def evaluate_split(params, config, cache_path, split, beam=1, progress=True, meteor=False):
    """-> (scores dict, {file name: caption}, protocol string). METEOR only when asked (it
    needs pycocoevalcap and Java; a warning says why it is left out)."""
    names, hypotheses, references = generate_split(params, config, cache_path, split, beam,
                                                   progress=progress)
    scores = score_captions(references, hypotheses, meteor=meteor)
    n_refs = sorted({len(r) for r in references})
    protocol = (f"{split} split, {len(names)} images, {'/'.join(map(str, n_refs))} references "
                f"per image, {'greedy' if beam == 1 else f'beam {beam}'} decoding, rawcap.metrics "
                f"(coco-caption conventions)")
    return scores, dict(zip(names, (" ".join(h) for h in hypotheses))), protocol


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


def find_checkpoint(path):
    """A run directory means its best.h5 (else last.h5); a file is taken as it is."""
    path = Path(path)
    if path.is_dir():
        for name in ("best.h5", "last.h5"):
            if (path / name).is_file():
                return path / name
        raise CheckpointError(f"{path}: no best.h5 or last.h5 in this run directory")
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m rawcap.evaluate", description=__doc__.split("\n\n")[0],
                                     formatter_class=HelpFormatter)
    parser.add_argument("run", help="a run directory (uses best.h5) or a checkpoint file")
    parser.add_argument("--split", default="test", choices=["train", "val", "test"])
    parser.add_argument("--beam", type=positive_int, default=3, help="beam size; 1 is greedy")
    parser.add_argument("--cache", type=existing_file,
                        help="the HDF5 cache to read (default: the one the run trained on); its "
                             "vocabulary and image size must be the checkpoint's")
    parser.add_argument("--out", type=output_dir,
                        help="where to write the json files, created if missing (default: the run directory)")
    parser.add_argument("--meteor", action="store_true",
                        help="add METEOR (needs pycocoevalcap and Java; skipped with a warning otherwise)")
    args = parser.parse_args(argv)
    try:
        checkpoint = find_checkpoint(args.run)
        params, _, meta = load_checkpoint(checkpoint)
        config = model_meta(meta, checkpoint)
        cache = args.cache or meta["cache"]
        # The run's own cache must still hold the data it trained on; any cache must share
        # the checkpoint's vocabulary and image size.
        check_cache(cache, vocab=meta["vocab"], image_size=config.image_size,
                    fingerprint=None if args.cache else meta.get("cache_fingerprint"),
                    checkpoint=checkpoint)
        scores, captions, protocol = evaluate_split(params, config, cache, args.split, args.beam,
                                                    meteor=args.meteor)
    except (CheckpointError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_table(scores, protocol))
    out = Path(args.out or checkpoint.parent)
    out.mkdir(parents=True, exist_ok=True)
    metrics_file = out / ("metrics.json" if args.split == "test" else f"metrics_{args.split}.json")
    captions_file = out / f"captions_{args.split}.json"
    write_json(metrics_file, {**scores, "protocol": protocol,    # the checkpoint from out/
                              "checkpoint": os.path.relpath(checkpoint, out)})
    write_json(captions_file, captions)
    print(f"wrote {metrics_file} and {captions_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
