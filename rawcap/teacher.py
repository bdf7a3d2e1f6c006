"""A teacher's next-word distributions for the train captions: word-level distillation.

    python -m rawcap.teacher MODEL [MODEL ...] --cache CACHE --out teacher.h5 [--top-k 8]
                             [--temperature 1]
    python -m rawcap.train --cache CACHE --teacher teacher.h5 --teacher-weight 1 ...

Shapes: K captions in the cache, M = max_length + 2 tokens a caption row, k kept words.

The teacher (one trained model, or several as an ensemble) reads each train caption
teacher-forced, on its image as the cache holds it (eval mode: no dropout, no augmentation,
batchnorm's running statistics), and gives at each step t a distribution over the next word:
the mean of the models' log-probabilities, as an ensemble decodes (rawcap.decode),

    s_t[v] = mean_m log p_m(v | image, w_1 .. w_t)

of which the k largest are kept and renormalised at a temperature tau (default 1),
q_t[j] = exp(s_t[j] / tau) / sum_k exp(s_t / tau), so that a training step reads k numbers a
token, not V; tau > 1 flattens the teacher's judgement (its second and third words weigh more),
tau < 1 sharpens it (tau -> 0: its first word alone, sequence-level's targets read step by step). A student trained with --teacher adds
teacher_weight * (mean over tokens of -sum_v q_t[v] log p(v)) to its loss (rawcap.model):
where sequence-level distillation (rawcap.data distill) trains on the teacher's one best caption,
this hands on the teacher's whole judgement of every next word, the soft targets of Hinton et al.
(2015) and the word-level distillation of Kim & Rush (2016).

File (HDF5): indices int32 [K, M - 1, k] and probs float32 [K, M - 1, k], row r for caption
row r of the cache; step t predicts token t + 1 (the targets of rawcap.data.batches), and steps
past a caption's <end>, and the rows of val and test captions, are 0. Attributes:
cache_fingerprint (the cache it belongs to), models (their files), top_k, temperature.
Written to a temporary file and renamed.
"""
import argparse
import json
import os
import sys
from pathlib import Path

import h5py
import numpy as np
from tqdm import tqdm

from .checkpoint import CheckpointError
from .data.batches import CaptionBatches
from .data.cache import cache_fingerprint, open_cache
from .layers.loss import log_softmax
from .model import teacher_forced


def teacher_log_probs(models, images, inputs, caption_image):
    """s[B, T, V]: the mean over `models` [(params, config), ...] of log p(next word), read
    teacher-forced in eval mode (arguments as for model.loss_and_grads)."""
    total = 0
    for params, config in models:
        logits = teacher_forced(params, config, images, inputs, caption_image, train=False)[0]
        total = total + log_softmax(logits, out=logits)
    return total / len(models)


def top_k_targets(scores, mask, k, temperature=1.0):
    """scores[B, T, V], mask[B, T] -> indices int32 [B, T, k] of the k largest scores of each
    step (largest first) and probs float32 [B, T, k], the softmax of scores / temperature among
    the k; 0 where not mask."""
    indices = np.argpartition(-scores, k - 1, axis=2)[:, :, :k]
    top = np.take_along_axis(scores, indices, axis=2)
    order = np.argsort(-top, axis=2, kind="stable")
    indices, top = (np.take_along_axis(a, order, axis=2) for a in (indices, top))
    probs = np.exp((top - top[:, :, :1]) / temperature)
    probs /= probs.sum(axis=2, keepdims=True)
    return (indices * mask[:, :, None]).astype(np.int32), (probs * mask[:, :, None]).astype(np.float32)


def write_teacher(models, cache, out, top_k=8, temperature=1.0, files=(), batch_size=50,
                  progress=True):
    """Write the teacher file (module docstring) of `models` [(params, config), ...] for the
    train captions of `cache` to `out` -> out. files: the models' file names, recorded."""
    with open_cache(cache) as f:
        K, M = f["captions"].shape
        fingerprint = cache_fingerprint(cache)
    V = models[0][1].vocab_size
    if not 1 <= top_k <= V:
        raise ValueError(f"--top-k must lie in [1, {V}] (the vocabulary), got {top_k}")
    if not temperature > 0:
        raise ValueError(f"--temperature must be above 0, got {temperature}")
    indices = np.zeros((K, M - 1, top_k), np.int32)
    probs = np.zeros((K, M - 1, top_k), np.float32)
    loader = CaptionBatches(cache, "train", batch_size, per_image=True, prefetch=0)
    for batch in tqdm(loader.epoch(0), total=len(loader), desc="teacher", unit="batch",
                      disable=not progress):
        scores = teacher_log_probs(models, batch.images, batch.inputs, batch.caption_image)
        T = batch.inputs.shape[1]
        rows = batch.caption_rows
        indices[rows, :T], probs[rows, :T] = top_k_targets(scores, batch.mask, top_k,
                                                                   temperature)
    tmp = f"{out}.tmp-{os.getpid()}"
    try:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("indices", data=indices, compression="gzip")
            f.create_dataset("probs", data=probs, compression="gzip")
            f.attrs.update(cache_fingerprint=fingerprint, top_k=top_k, temperature=temperature,
                           models=json.dumps([str(p) for p in files]))
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return Path(out)


def check_teacher(path, cache):
    """Raise a ValueError naming `path` unless it is a teacher file written for `cache`."""
    try:
        with h5py.File(path, "r") as f:
            fingerprint = str(f.attrs["cache_fingerprint"])
            if not {"indices", "probs"} <= f.keys():
                raise KeyError("it has no indices and probs")
    except (OSError, KeyError) as e:
        raise ValueError(f"--teacher {path}: not a teacher file (python -m rawcap.teacher "
                         f"writes one): {e}") from None
    if fingerprint != cache_fingerprint(cache):
        raise ValueError(f"--teacher {path} was written for another cache than {cache} (its "
                         f"fingerprint differs); write one for this cache with python -m "
                         f"rawcap.teacher")


class Teacher:
    """A teacher file, read into memory, for the batches of one cache.

    teacher = Teacher("teacher.h5", cache)       # ValueError if it belongs to another cache
    indices, probs = teacher.targets(batch)      # [B, T, k] each, T the batch's
    """

    def __init__(self, path, cache):
        check_teacher(path, cache)
        with h5py.File(path, "r") as f:
            self.indices, self.probs = f["indices"][()], f["probs"][()]

    def targets(self, batch):
        """The soft targets of a Batch's captions: (indices, probs), [B, T, k] each."""
        T = batch.targets.shape[1]
        return self.indices[batch.caption_rows, :T], self.probs[batch.caption_rows, :T]


def main(argv=None):
    from .ship import load_model
    parser = argparse.ArgumentParser(
        prog="python -m rawcap.teacher",
        description="Write a teacher's next-word distributions for the train captions of a cache "
                    "(its k likeliest words at every step, teacher-forced), the targets of "
                    "python -m rawcap.train --teacher FILE (word-level distillation).")
    parser.add_argument("models", nargs="+", help="trained models (last.h5, best.h5 or a shipped "
                        "file); several are one teacher, an ensemble (mean log-probabilities)")
    parser.add_argument("--cache", required=True, help="the cache the student will train on")
    parser.add_argument("--out", required=True, help="the teacher file to write (HDF5)")
    parser.add_argument("--top-k", type=int, default=8,
                        help="words kept at each step, renormalised (default 8)")
    parser.add_argument("--temperature", type=float, default=1.0,
                        help="the k words' softmax is taken of the scores / this: above 1 "
                             "flattens the teacher's distribution, below 1 sharpens it (default 1)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        loaded = [load_model(path) for path in args.models]
        with open_cache(args.cache) as f:
            words = json.loads(f.attrs["vocab"])["words"]
        for path, (_, _, meta) in zip(args.models, loaded):
            if meta["vocab"] != words:
                raise ValueError(f"{path}: its vocabulary is not the one of {args.cache}; a "
                                 f"teacher must read and write the student's words")
        models = [(params, config) for params, config, _ in loaded]
        out = write_teacher(models, args.cache, args.out, args.top_k, args.temperature,
                            args.models, progress=not args.quiet)
    except (CheckpointError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
