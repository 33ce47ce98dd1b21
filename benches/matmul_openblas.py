#!/usr/bin/env python3
"""SGEMM GFLOP/s of numpy's OpenBLAS at the shapes of benches/matmul.rs (rlhf-tensor), on 1 and 2
threads: the CPU baseline that BENCHMARKS.md quotes ratios against. Run in the same sitting as
`cargo bench -p rlhf-tensor --bench matmul`.

    python3 -m venv ~/.cache/venv-bench && ~/.cache/venv-bench/bin/pip install numpy threadpoolctl
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE ~/.cache/venv-bench/bin/python benches/matmul_openblas.py

OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE force a slower kernel on some machines here; unset them for
this measurement (the script prints the kernel that ran). Reports the median of timed batches."""
import statistics
import sys
import time

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

SHAPES = [(256, 768, 2304), (256, 768, 768), (256, 768, 3072), (256, 3072, 768),
          (256, 768, 50257), (2048, 128, 384), (2048, 128, 512), (2048, 512, 128),
          (1024, 1024, 1024)]


def gflops(m, k, n, batches=7):
    rng = np.random.default_rng(0)
    a = rng.random((m, k), dtype=np.float32)
    b = rng.random((k, n), dtype=np.float32)
    a @ b  # warm-up
    reps = max(2, int(1e9 / (2 * m * k * n)))
    rates = []
    for _ in range(batches):
        start = time.perf_counter()
        for _ in range(reps):
            a @ b
        rates.append(2 * m * k * n * reps / (time.perf_counter() - start) / 1e9)
    return statistics.median(rates)


def main():
    shapes = [tuple(map(int, s.split(","))) for s in sys.argv[1:]] or SHAPES
    kernels = [i.get("architecture") for i in threadpool_info() if i.get("internal_api") == "openblas"]
    print(f"openblas kernel: {kernels}")
    print(f"{'M x K x N':>18} {'1 thread':>10} {'2 threads':>10}  GFLOP/s (median)")
    for m, k, n in shapes:
        row = []
        for threads in (1, 2):
            with threadpool_limits(threads):
                row.append(gflops(m, k, n))
        print(f"{f'{m}x{k}x{n}':>18} {row[0]:>10.1f} {row[1]:>10.1f}")


if __name__ == "__main__":
    main()
