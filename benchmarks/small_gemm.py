"""Where MKL's GEMM starts to beat SciPy's OpenBLAS, per call, on the
products of a dense network's step: the measurement behind
PYNN_SMALL_GEMM_MAX (csrc/blas_backend.h), below which the kernels keep
OpenBLAS even when MKL is the backend.

    python benchmarks/small_gemm.py            # needs the mkl extra
    python benchmarks/small_gemm.py --quick    # one process per library

For each product of a Dense(n_out) on n_in inputs at batch n (forward
X @ W.T, weight gradient dZ.T @ X, input gradient dZ @ W) and for square
products: the time of one call from compiled code (a loop of calls in one
nogil block, pynn._gemm.matmul with repeat), one BLAS thread (as pynn runs
small steps).  Each library is timed in processes of its own, alternating,
the median of the processes' best loops.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

LAYERS = [(64, 32), (32, 10), (128, 64), (64, 10), (784, 128), (128, 10), (256, 256)]
BATCHES = [1, 8, 16, 32, 64, 128]
SQUARES = [4, 8, 16, 24, 32, 40, 48, 64]


def shapes():
    out = set()
    for n_in, n_out in LAYERS:
        for n in BATCHES:
            out.add((False, True, n, n_out, n_in))     # X @ W.T
            out.add((True, False, n_out, n_in, n))     # dZ.T @ X
            out.add((False, False, n, n_in, n_out))    # dZ @ W
    for s in SQUARES:
        for ta in (False, True):
            for tb in (False, True):
                out.add((ta, tb, s, s, s))
    return sorted(out, key=lambda s: (s[2] * s[3] * s[4], s))


def worker(library):
    from threadpoolctl import threadpool_limits

    from pynn import _gemm
    rng = np.random.default_rng(0)
    rows = []
    with threadpool_limits(1):
        for dtype in ("float32", "float64"):
            for ta, tb, m, n, k in shapes():
                a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
                b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
                c = np.zeros((m, n), dtype=dtype)
                repeat = max(20, int(2e7 / (m * n * k)))
                _gemm.matmul(ta, tb, 1.0, a, b, 0.0, c, library, max(1, repeat // 10))
                best = float("inf")
                for _ in range(3):
                    t0 = time.perf_counter()
                    _gemm.matmul(ta, tb, 1.0, a, b, 0.0, c, library, repeat)
                    best = min(best, (time.perf_counter() - t0) / repeat)
                rows.append([dtype, ta, tb, m, n, k, best])
    print(json.dumps(rows))


def run(library):
    env = dict(os.environ, PYNN_BLAS="mkl")
    out = subprocess.run([sys.executable, __file__, "--worker", library], env=env,
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--worker")
    args = parser.parse_args()
    if args.worker:
        worker(args.worker)
        return
    from pynn import _gemm, _threads
    if not _threads.mkl_library_path():
        sys.exit("the mkl wheel is not installed: OpenBLAS is the only GEMM, nothing to compare")
    load = os.getloadavg()
    print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
          f"({os.cpu_count()} cores); threshold in this build: m*n*k <= "
          f"{_gemm.SMALL_GEMM_MAX}")
    rounds = 1 if args.quick else 3
    runs = {"openblas": [], "backend": []}
    for _ in range(rounds):
        for library in runs:
            runs[library].append(run(library))
    print(f"\none call, µs (median of {rounds} processes each), one thread\n")
    print("| dtype | op | m x n x k | m*n*k | OpenBLAS | MKL | faster |")
    print("|---|---|---|---|---|---|---|")
    totals = {}
    for i, row in enumerate(runs["openblas"][0]):
        dtype, ta, tb, m, n, k = row[:6]
        ob = float(np.median([r[i][6] for r in runs["openblas"]])) * 1e6
        mk = float(np.median([r[i][6] for r in runs["backend"]])) * 1e6
        op = ("T" if ta else "N") + ("T" if tb else "N")
        print(f"| {dtype} | {op} | {m}x{n}x{k} | {m * n * k} | {ob:.3f} | {mk:.3f} | "
              f"{'OpenBLAS' if ob <= mk else 'MKL'} |")
        bucket = next(b for b in BUCKETS if m * n * k <= b)
        t = totals.setdefault((dtype, bucket), [0.0, 0.0, 0, 0])
        t[0] += ob
        t[1] += mk
        t[2] += ob <= mk
        t[3] += 1
    print("\nby size, the shapes above together: OpenBLAS's time / MKL's, and how "
          "many OpenBLAS wins\n")
    print("| dtype | m*n*k in | OpenBLAS / MKL | OpenBLAS faster |")
    print("|---|---|---|---|")
    for (dtype, bucket), (ob, mk, wins, count) in sorted(totals.items()):
        j = BUCKETS.index(bucket)
        span = (f"> {BUCKETS[j - 1]}" if bucket == BUCKETS[-1]
                else f"{BUCKETS[j - 1] + 1 if j else 1}..{bucket}")
        print(f"| {dtype} | {span} | {ob / mk:.2f} | {wins} of {count} |")


BUCKETS = [4096, 16384, 32768, 65536, 262144, 1 << 62]


if __name__ == "__main__":
    main()
