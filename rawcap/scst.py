"""Self-critical sequence training (Rennie et al. 2017): fine-tune a captioner on CIDEr-D.

    python -m rawcap.train --scst --init-from runs/shapes/best.h5 --lr 5e-5 --epochs 2 ...

After cross-entropy training, each batch of B images is captioned twice by the model itself:

    w^s ~ p(w | image)                   a caption sampled word by word (decode.sample_decode)
    w^g = greedy caption                  what the model writes at test time: the baseline
    a   = CIDEr-D(w^s) - CIDEr-D(w^g)     each against the image's train references
    loss = -(1/B) sum_images a * log p(w^s)            (rawcap.layers.policy_gradient)

--scst-samples K draws K captions per image (the loss then averages over the B*K samples), and
--scst-baseline mean compares each with the mean reward of the image's other K - 1 samples
instead of the greedy caption (Luo 2020, "a better variant of self-critical sequence training").

A sample that beats the greedy caption is made more likely, one that does worse less likely.
The reward is the metric itself, computed on whole captions the model wrote, so the training
sees what testing sees (no teacher forcing). The IDF of CIDEr-D comes from the references of
every train image, once (metrics.CiderD).

Both decodes and the loss run without dropout and with batchnorm in eval mode, so the samples
come from exactly the distribution whose log-probabilities the loss differentiates.
"""
import numpy as np

from .backend import array_module
from .data.cache import open_cache, read_references
from .data.vocab import END_ID, PAD_ID, START_ID, Vocabulary
from .decode import greedy_decode, sample_decode
from .metrics import CiderD
from .model import backward, forward


class CiderReward:
    """CIDEr-D of generated captions against the train references of their images.

        reward = CiderReward("data/shapes-64.h5")
        reward(image_rows, token_id_lists) -> float64 [B]

    image_rows are rows of the cache (a batch's image_rows); they must be train images.
    """

    def __init__(self, cache_path):
        with open_cache(cache_path) as f:
            self.vocab = Vocabulary.from_json(f.attrs["vocab"])
        references, _ = read_references(cache_path, "train")
        if not references:
            raise ValueError(f"{cache_path}: the train split has no captions to reward against")
        self.index = {row: i for i, row in enumerate(references)}
        self.scorer = CiderD(list(references.values()))

    def __call__(self, image_rows, captions):
        missing = [int(row) for row in image_rows if int(row) not in self.index]
        if missing:
            raise ValueError(f"CiderReward: image rows {missing[:5]} are not train images")
        return np.array([self.scorer.score(self.index[int(row)], self.vocab.decode(tokens))
                         for row, tokens in zip(image_rows, captions)], dtype=np.float64)


def teacher_batch(captions, max_length):
    """Generated captions (token lists without <start>/<end>) -> inputs, targets int32 [B, T],
    mask bool [B, T], as for cross-entropy: <start> w_1 .. w_n / w_1 .. w_n <end>. A caption
    cut at max_length words never chose <end>, so it gets no <end> target."""
    rows = [tokens + ([END_ID] if len(tokens) < max_length else []) for tokens in captions]
    T = max(len(row) for row in rows)
    targets = np.full((len(rows), T), PAD_ID, dtype=np.int32)
    inputs = np.full((len(rows), T), PAD_ID, dtype=np.int32)
    for b, row in enumerate(rows):
        targets[b, :len(row)] = row
        inputs[b, :len(row)] = [START_ID] + row[:-1]
    return inputs, targets, targets != PAD_ID


def loss_and_grads(params, config, images, image_rows, reward, rng, max_length=20, samples=1,
                   baseline="greedy"):
    """One self-critical step on images[B, 3, S, S] (cache rows image_rows[B], train images).

    rng: a NumPy Generator for the samples. samples K: captions sampled per image (B*K in all).
    baseline: "greedy", the greedy caption's reward (Rennie et al.), or "mean", the mean reward
    of the image's K - 1 other samples (Luo 2020; K >= 2; no greedy decode), which centres the
    advantages of each image on 0. -> loss, parts, grads keyed like trainable(params); parts:
    "policy", "smoothing", "teacher", "attention", "decay", "words" (the loss; "smoothing",
    "teacher" and "words" are 0: no label smoothing, teacher or bag-of-words loss on samples),
    and "reward" and "baseline", the mean CIDEr-D of the samples and of what they were compared
    with."""
    if baseline not in ("greedy", "mean") or samples < (2 if baseline == "mean" else 1):
        raise ValueError(f"scst: baseline {baseline!r} with {samples} samples per image "
                         f"(greedy takes 1 or more, mean 2 or more)")
    xp = array_module(images)
    B = len(images)
    owner = np.repeat(np.arange(B, dtype=np.int32), samples)      # each sample's image
    sampled = sample_decode(params, config, images[xp.asarray(owner)], rng, max_length)
    rewards = reward(np.asarray(image_rows)[owner], sampled.tokens)
    if baseline == "greedy":
        greedy = greedy_decode(params, config, images, max_length)
        baselines = reward(image_rows, greedy.tokens)[owner]
    else:
        per_image = rewards.reshape(B, samples)
        baselines = ((per_image.sum(axis=1, keepdims=True) - per_image) / (samples - 1)).ravel()
    inputs, targets, mask = (xp.asarray(a) for a in teacher_batch(sampled.tokens, max_length))
    advantages = xp.asarray(rewards - baselines, dtype=images.dtype)
    loss, parts, cache = forward(params, config, images, inputs, targets, mask, xp.asarray(owner),
                                 rng=None, train=False, advantages=advantages)
    parts.update(reward=float(rewards.mean()), baseline=float(baselines.mean()))
    return loss, parts, backward(cache)
