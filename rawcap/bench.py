"""Time one training step of the captioner on random data: forward, backward, optimizer step.

    python -m rawcap.bench [--device cpu|cuda] [--batch-size 32] [--captions-per-image 5] [--steps 10]

Warm-up steps first, then the median of `--steps` timed steps of each part; the figure that
matters (images per second through a whole step) is printed last.
"""
import argparse
import sys
import time

import numpy as np

from .backend import get_device
from .model import Config, backward, forward, init_params
from .optim import make_optimizer


def synchronize(xp):
    if xp.__name__ == "cupy":
        xp.cuda.Device().synchronize()


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m rawcap.bench", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--batch-size", type=int, default=32, help="images per step")
    p.add_argument("--captions-per-image", type=int, default=5)
    p.add_argument("--length", type=int, default=20, help="time steps T of every caption")
    p.add_argument("--vocab-size", type=int, default=2541, help="V (Flickr8k's at min count 5)")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--channels", default="16,32,64")
    p.add_argument("--embed-size", type=int, default=64)
    p.add_argument("--hidden-size", type=int, default=128)
    p.add_argument("--attention-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=10, help="timed steps")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    args = p.parse_args(argv)

    try:
        xp = get_device(args.device)
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    config = Config(vocab_size=args.vocab_size, image_size=args.image_size,
                    channels=tuple(int(c) for c in args.channels.split(",")),
                    embed_size=args.embed_size, hidden_size=args.hidden_size,
                    attention_size=args.attention_size)
    rng = np.random.default_rng(0)
    params = {k: xp.asarray(v) for k, v in init_params(config, rng).items()}
    optimizer = make_optimizer("adam", params)
    B_img, B, T = args.batch_size, args.batch_size * args.captions_per_image, args.length
    batch = [xp.asarray(a) for a in (
        rng.random((B_img, 3, config.image_size, config.image_size), dtype=np.float32),
        rng.integers(0, config.vocab_size, (B, T)), rng.integers(0, config.vocab_size, (B, T)),
        np.ones((B, T), bool), np.repeat(np.arange(B_img), args.captions_per_image))]

    times = {"forward": [], "backward": [], "optimizer": []}
    for step in range(args.warmup + args.steps):
        marks = [time.perf_counter()]
        loss, _, cache = forward(params, config, *batch, rng)
        synchronize(xp)
        marks.append(time.perf_counter())
        grads = backward(cache)
        synchronize(xp)
        marks.append(time.perf_counter())
        optimizer.step(params, grads, 1e-3)
        synchronize(xp)
        marks.append(time.perf_counter())
        if step >= args.warmup:
            for name, start, end in zip(times, marks, marks[1:]):
                times[name].append(end - start)

    print(f"rawcap.bench on {args.device}: {B_img} images x {args.captions_per_image} captions, "
          f"T={T}, V={config.vocab_size}, S={config.image_size}, channels {config.channels}, "
          f"E={config.embed_size} H={config.hidden_size} A={config.attention_size}; "
          f"median of {args.steps} steps after {args.warmup} warm-up")
    total = 0.0
    for name, samples in times.items():
        ms = 1e3 * float(np.median(samples))
        total += ms
        print(f"  {name:<10} {ms:9.1f} ms")
    print(f"  {'step':<10} {total:9.1f} ms  (the sum of the three medians)")
    print(f"{B_img / total * 1e3:.1f} images/s ({B / total * 1e3:.0f} captions/s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
