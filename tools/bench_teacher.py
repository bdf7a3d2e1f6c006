"""What the teacher's term (train --teacher) adds to a training step's forward and backward.

    OMP_NUM_THREADS=1 python -m tools.bench_teacher

model.loss_and_grads at the Flickr8k recipe's shape (docs/results/flickr8k/config.json; 32
images x 5 captions, T 16, random weights and words), without and with a teacher's top-8 soft
targets, alternating, 15 times each; prints the medians and their ratio, and the median time of
the term's own work (its layer's forward and backward, and the cross-entropy's gradient scaled
by 1 + beta) on logits of that shape.
"""
import json
import time

import numpy as np

from rawcap.layers import distillation_backward, distillation_forward
from rawcap.model import Config, init_params, loss_and_grads


def main(repeats=15, top_k=8, images=32, captions_per_image=5, T=16):
    config = json.load(open("docs/results/flickr8k/config.json"))["model"]
    plain = Config.from_dict(config)
    taught = Config.from_dict(dict(config, teacher_weight=1.0))
    rng = np.random.default_rng(0)
    params = init_params(plain, rng)
    B, V, S = images * captions_per_image, plain.vocab_size, plain.image_size
    pixels = rng.random((images, 3, S, S), dtype=np.float32)
    inputs, targets = (rng.integers(4, V, (B, T)).astype(np.int32) for _ in range(2))
    mask, owner = np.ones((B, T), bool), np.repeat(np.arange(images, dtype=np.int32), captions_per_image)
    indices = np.array([[rng.choice(V, top_k, replace=False) for _ in range(T)] for _ in range(B)],
                       dtype=np.int32)
    probs = rng.dirichlet(np.ones(top_k), (B, T)).astype(np.float32)
    runs = {"plain": (plain, None), "teacher": (taught, (indices, probs))}
    seconds = {name: [] for name in runs}
    for _ in range(repeats):
        for name, (config, soft_targets) in runs.items():
            start = time.perf_counter()
            loss_and_grads(params, config, pixels, inputs, targets, mask, owner,
                           np.random.default_rng(1), soft_targets=soft_targets)
            seconds[name].append(time.perf_counter() - start)
    plain_s, teacher_s = (float(np.median(seconds[name])) for name in runs)
    print(f"loss_and_grads, median of {repeats}: without a teacher {plain_s:.3f} s, with "
          f"one (top {top_k}) {teacher_s:.3f} s, ratio {teacher_s / plain_s:.2f}")
    logits = rng.standard_normal((B, T, V), dtype=np.float32)
    dlogits = rng.standard_normal((B, T, V), dtype=np.float32)      # stands in for the CE's
    term = []
    for _ in range(repeats):
        start = time.perf_counter()
        _, cache = distillation_forward(logits, targets, mask, indices, probs)
        dlogits *= 1 + taught.teacher_weight
        distillation_backward(taught.teacher_weight, dlogits, cache)
        term.append(time.perf_counter() - start)
    print(f"the term's own work, median of {repeats}: {1e3 * float(np.median(term)):.1f} ms")


if __name__ == "__main__":
    main()
