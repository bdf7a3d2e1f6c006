"""A few self-critical steps on a trained checkpoint, and what they change on the val split.

    python -m tools.scst_trial runs/shapes/best.h5 --steps 30 --batch-size 32 --lr 5e-5

Prints val BLEU-4, CIDEr-D and the number of distinct captions (greedy) before and after, and
the mean sampled and greedy rewards of every step. For a quick look on a CPU, where a whole
`python -m rawcap.train --scst` epoch takes long; nothing is saved.
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np

from rawcap.checkpoint import load_checkpoint
from rawcap.data.batches import CaptionBatches
from rawcap.evaluate import evaluate_split
from rawcap.model import Config, trainable
from rawcap.optim import Adam, clip_global_norm
from rawcap.scst import CiderReward, loss_and_grads


def val_summary(params, config, cache):
    scores, captions, _ = evaluate_split(params, config, cache, "val", beam=1, progress=False)
    return (f"val (greedy): BLEU-4 {scores['bleu4']:.4f}  CIDEr-D {scores['cider']:.4f}  "
            f"distinct captions {len(set(captions.values()))} of {len(captions)}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=32, help="images per step")
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    params, _, meta = load_checkpoint(args.checkpoint)
    config, cache = Config.from_dict(meta["config"]), Path(meta["cache"])
    print(f"{args.checkpoint} (epoch {meta['epoch']}), cache {cache}")
    print("before", val_summary(params, config, cache))
    reward, rng = CiderReward(cache), np.random.default_rng(args.seed)
    optimizer = Adam(trainable(params))
    batches = CaptionBatches(cache, "train", args.batch_size, seed=args.seed, per_image=True).epoch(0)
    start = time.time()
    for step in range(args.steps):
        batch = next(batches)
        _, parts, grads = loss_and_grads(params, config, batch.images, batch.image_rows, reward, rng)
        clip_global_norm(grads, 5.0)
        optimizer.step(trainable(params), grads, args.lr)
        print(json.dumps({"step": step + 1, "sampled": round(parts["reward"], 4),
                          "greedy": round(parts["baseline"], 4)}))
    print(f"{args.steps} steps of {args.batch_size} images in {time.time() - start:.0f} s")
    print("after ", val_summary(params, config, cache))


if __name__ == "__main__":
    main()
