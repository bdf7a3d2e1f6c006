"""What launching a Numba kernel on CuPy arrays costs on the host, per launch.

    python -m tools.launch_cost [--launches 2000]
    NUMBA_ENABLE_CUDASIM=1 python -m tools.launch_cost     # only the rawcap helper's own share

A training step launches ~135 Numba kernels (issue 13's count); if each costs more host time
than the GPU spends running it, the GPU waits on Python. Rows, each the median of --launches
calls, in microseconds of host time (launches are queued, not waited for):

  helper only       kernels.launch.launch with a stand-in kernel on NumPy arrays: the argument
                    sorting and stream lookup rawcap adds (the only row under the simulator;
                    on a GPU the same row also wraps each CuPy array)
  as_cuda_array     numba.cuda.as_cuda_array(x, sync=False) of one CuPy array
  numba launch, k   kernel[blocks, threads, stream](k pre-wrapped device arrays)
  rawcap launch, k  kernels.launch.launch with k CuPy arrays: wrapping plus launch
  cupy op           `x += 1` on a small CuPy array (a CuPy elementwise kernel), for scale
"""
import argparse
import statistics
import sys
import time

import numpy as np


def median_us(call, launches):
    samples = []
    for _ in range(launches):
        start = time.perf_counter()
        call()
        samples.append(1e6 * (time.perf_counter() - start))
    return statistics.median(samples)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m tools.launch_cost", description=__doc__.split("\n\n")[0])
    p.add_argument("--launches", type=int, default=2000, help="calls per row")
    args = p.parse_args(argv)
    from numba import cuda

    from kernels import launch as launching

    class StandIn:
        def __getitem__(self, configuration):
            return lambda *arrays: None

    rows = []
    if launching.simulator():
        arrays = [np.zeros(256, np.float32) for _ in range(8)]
        rows.append(("helper only, 8 arrays", median_us(
            lambda: launching.launch(StandIn(), 1, 32, *arrays, 1.0), args.launches)))
        print("NUMBA_ENABLE_CUDASIM=1: only rawcap's share is measured; the rest needs a GPU")
    else:
        import cupy

        @cuda.jit
        def touch(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11):
            k = cuda.grid(1)
            if k < a0.shape[0]:
                a0[k] += a1[k] + a2[k] + a3[k] + a4[k] + a5[k] + a6[k] + a7[k] + a8[k] + a9[k] + a10[k] + a11[k]

        x = [cupy.zeros(256, np.float32) for _ in range(12)]
        stream = launching.current_stream(cupy)
        wrapped = [cuda.as_cuda_array(a, sync=False) for a in x]
        launching.launch(touch, 1, 256, *x)                     # compile first
        cupy.cuda.Device().synchronize()
        rows.append(("as_cuda_array", median_us(lambda: cuda.as_cuda_array(x[0], sync=False),
                                                args.launches)))
        rows.append(("numba launch, 12 wrapped arrays", median_us(
            lambda: touch[1, 256, stream](*wrapped), args.launches)))
        rows.append(("rawcap launch, 12 CuPy arrays", median_us(
            lambda: launching.launch(touch, 1, 256, *x), args.launches)))
        rows.append(("wrap 12 arrays + helper, no launch", median_us(
            lambda: launching.launch(StandIn(), 1, 256, *x), args.launches)))
        rows.append(("cupy op (x += 1)", median_us(lambda: x[0].__iadd__(1), args.launches)))
        cupy.cuda.Device().synchronize()
    print(f"host time per call, median of {args.launches}:")
    for name, us in rows:
        print(f"  {name:<34} {us:8.1f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
