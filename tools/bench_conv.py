"""How close is conv2d (im2col + GEMM) to the GEMMs it cannot avoid?

    python tools/bench_conv.py [--dtype float32] [--repeats 20]

Times rawcap's conv2d forward and backward on x[32, 3, 64, 64], w[32, 3, 3, 3] (pad 1) against
the same products written as single bare NumPy GEMMs over a ready-made im2col matrix
cols[C*KH*KW, N*Ho*Wo] (rawcap keeps it per image, [N, C*KH*KW, Ho*Wo], and batches the GEMM):

    forward:   W2 @ cols                              W2 = w as [F, C*KH*KW]
    backward:  dout2 @ cols.T  and  W2.T @ dout2      dout2 = dout as [F, N*Ho*Wo]

The ratio is what im2col, col2im, the layout transposes and the bias cost on top of the GEMMs.
Prints the median of `--repeats` runs of each, measured side by side in this process.
"""
import argparse
import time

import numpy as np

from rawcap.layers import conv2d_backward, conv2d_forward
from rawcap.layers.conv import im2col


def median_ms(fn, repeats):
    fn()                                    # warm-up: first-touch page faults, BLAS threads
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--repeats", type=int, default=20, help="timed runs per row (default 20)")
    parser.add_argument("--shape", default="32,3,64,64,32,3",
                        help="N,C,H,W,F,K (default 32,3,64,64,32,3); stride 1, pad K//2")
    args = parser.parse_args()
    N, C, H, W, F, K = (int(s) for s in args.shape.split(","))
    pad = K // 2
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C, H, W)).astype(args.dtype)
    w = rng.standard_normal((F, C, K, K)).astype(args.dtype)
    b = rng.standard_normal(F).astype(args.dtype)
    out, cache = conv2d_forward(x, w, b, pad=pad)
    dout = rng.standard_normal(out.shape).astype(args.dtype)

    cols = np.ascontiguousarray(im2col(x, K, K, 1, pad).transpose(1, 0, 2)).reshape(C * K * K, -1)
    W2 = w.reshape(F, -1)
    dout2 = np.ascontiguousarray(dout.transpose(1, 0, 2, 3)).reshape(F, -1)
    rows = [
        ("forward", lambda: conv2d_forward(x, w, b, pad=pad), lambda: W2 @ cols),
        ("backward", lambda: conv2d_backward(dout, cache),
         lambda: (dout2 @ cols.T, W2.T @ dout2)),
        ("forward + backward", lambda: conv2d_backward(dout, conv2d_forward(x, w, b, pad=pad)[1]),
         lambda: (W2 @ cols, dout2 @ cols.T, W2.T @ dout2)),
    ]
    print(f"conv2d x[{N},{C},{H},{W}] w[{F},{C},{K},{K}] pad {pad}, {args.dtype}, "
          f"im2col matrix [{cols.shape[0]}, {cols.shape[1]}], median of {args.repeats} runs")
    print(f"{'pass':<20} {'rawcap ms':>10} {'GEMMs ms':>10} {'ratio':>7}")
    for name, ours, gemms in rows:
        t_ours, t_gemm = median_ms(ours, args.repeats), median_ms(gemms, args.repeats)
        print(f"{name:<20} {t_ours:>10.2f} {t_gemm:>10.2f} {t_ours / t_gemm:>6.2f}x")


if __name__ == "__main__":
    main()
