"""The encoder's ops on the CPU, version by version, at one model's shapes: medians side by side.

    OMP_NUM_THREADS=2 python -m tools.bench_encoder                  # the Flickr8k recipe's shapes
    python -m tools.bench_encoder --channels 16,32 --versions conv2d=0,2

Each block k of the encoder runs conv2d (3x3, pad 1, no bias) -> bias + ReLU -> 2x2 max-pool on
float32 arrays; block 0's input is the images, so its backward is conv2d_params_backward (no dx),
as in rawcap.encoder.encode_backward. Every version of an op is timed on the same inputs in turns
(round robin, so a load that comes and goes hits all of them alike), and each row gives the
median time in ms and its ratio to the first version listed.
"""
import argparse
import time

import numpy as np

from rawcap.backend import OP_OF, implementation, versions

OPS = ("conv2d", "bias_relu", "maxpool2d")


def encoder_calls(version, x, w, b, dconv, dpool, first):
    """{what: callable} for one block's ops at `version` (each op's forward, then its backward on
    a cache made once here)."""
    def f(name):
        return implementation(name, version[OP_OF[name]])
    conv_fwd, conv_bwd = f("conv2d_forward"), f("conv2d_params_backward" if first else "conv2d_backward")
    relu_fwd, relu_bwd = f("bias_relu_forward"), f("bias_relu_backward")
    pool_fwd, pool_bwd = f("maxpool2d_forward"), f("maxpool2d_backward")
    out, conv_cache = conv_fwd(x, w, None, pad=1)
    act, relu_cache = relu_fwd(out, b)
    _, pool_cache = pool_fwd(act, 2, 2)
    return {
        "conv2d forward": lambda: conv_fwd(x, w, None, pad=1),
        "conv2d backward" + (" (params)" if first else ""): lambda: conv_bwd(dconv, conv_cache),
        "bias_relu forward": lambda: relu_fwd(out, b),
        "bias_relu backward": lambda: relu_bwd(dconv, relu_cache),
        "maxpool2d forward": lambda: pool_fwd(act, 2, 2),
        "maxpool2d backward": lambda: pool_bwd(dpool, pool_cache),
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch-size", type=int, default=32, help="images per batch (default 32)")
    p.add_argument("--image-size", type=int, default=112, help="image side S (default 112)")
    p.add_argument("--channels", default="16,32,64,128", help="conv widths (default 16,32,64,128)")
    p.add_argument("--versions", default="",
                   help="op=v1/v2/... per op, e.g. conv2d=2/3 (default: every CPU version and 0)")
    p.add_argument("--repeats", type=int, default=15, help="timed runs per version (default 15)")
    args = p.parse_args(argv)
    chosen = {op: versions(op, "cpu") for op in OPS}
    for item in filter(None, args.versions.split(",")):
        op, _, vs = item.partition("=")
        chosen[op] = [int(v) for v in vs.split("/")]
    rounds = max(len(vs) for vs in chosen.values())
    settings = [{op: vs[min(r, len(vs) - 1)] for op, vs in chosen.items()} for r in range(rounds)]
    rng = np.random.default_rng(0)
    widths = [3] + [int(c) for c in args.channels.split(",")]
    side, total = args.image_size, np.zeros(rounds)
    print(f"encoder ops, float32, N={args.batch_size}, S={side}, channels {widths[1:]}, "
          f"median of {args.repeats} (ms); versions per column: "
          + " | ".join(" ".join(f"{op} {s[op]}" for op in OPS) for s in settings))
    for k in range(len(widths) - 1):
        C, F = widths[k], widths[k + 1]
        x = rng.standard_normal((args.batch_size, C, side, side)).astype(np.float32)
        w = (rng.standard_normal((F, C, 3, 3)) * 0.1).astype(np.float32)
        b = rng.standard_normal(F).astype(np.float32)
        dconv = rng.standard_normal((args.batch_size, F, side, side)).astype(np.float32)
        dpool = rng.standard_normal((args.batch_size, F, side // 2, side // 2)).astype(np.float32)
        calls = [encoder_calls(s, x, w, b, dconv, dpool, k == 0) for s in settings]
        for what in calls[0]:
            times = [[] for _ in settings]
            for _ in range(args.repeats + 1):           # the first round warms up
                for r, c in enumerate(calls):
                    start = time.perf_counter()
                    c[what]()
                    times[r].append(time.perf_counter() - start)
            medians = [1e3 * float(np.median(t[1:])) for t in times]
            total += medians
            print(f"  block {k} [{C:3d}->{F:3d}, {side:3d}^2] {what:28s}"
                  + "".join(f"{m:9.1f}" for m in medians)
                  + "".join(f"  x{m / medians[0]:.2f}" for m in medians[1:]))
        side //= 2
    print(f"  {'all blocks':51s}" + "".join(f"{m:9.1f}" for m in total)
          + "".join(f"  x{m / total[0]:.2f}" for m in total[1:]))


if __name__ == "__main__":
    main()
