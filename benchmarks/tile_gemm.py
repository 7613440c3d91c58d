"""The tile GEMM (csrc/pynn/kernels/tile_gemm.h) against SciPy's OpenBLAS
on one thread, on the products of the benchmark networks' split halves:
the measurement behind PYNN_TG_MAX_MNK and PYNN_TG_NT_MAX_K.

    python benchmarks/tile_gemm.py            # mnist's and mid's halves
    python benchmarks/tile_gemm.py --wide     # wide's halves (slow)
    python benchmarks/tile_gemm.py --dtype float64

Each product is timed from compiled code (pynn._gemm.matmul and
tile_matmul with repeat, one nogil loop), under threadpoolctl's limit of
one BLAS thread, as a half runs; each library in processes of its own,
alternating, the median of the processes' best loops.  "openblas" is one
call to SciPy's OpenBLAS; the tile GEMM needs a CPU with AVX-512F and FMA.
"""
import argparse
import json
import subprocess
import sys
import time

import numpy as np

# (m, n, k, trans_a, trans_b) of a split layer's half: forward X @ W_h.T,
# weight gradient dZ_h.T @ X, input gradient share dZ_h @ W_h
HALVES = {
    "mnist": [(32, 64, 784, False, True), (64, 784, 32, True, False)],
    "mid": [(128, 256, 784, False, True), (256, 784, 128, True, False),
            (128, 256, 512, False, True), (256, 512, 128, True, False),
            (128, 512, 256, False, False)],
    "wide": [(256, 1024, 1024, False, True), (1024, 1024, 256, True, False),
             (256, 1024, 2048, False, True), (1024, 2048, 256, True, False),
             (256, 2048, 1024, False, False), (256, 512, 2048, False, True),
             (512, 2048, 256, True, False), (256, 2048, 512, False, False)],
}


def worker(library, names, dtype):
    from threadpoolctl import threadpool_limits

    from pynn import _gemm
    rng = np.random.default_rng(0)
    out = {}
    with threadpool_limits(1):
        for name in names:
            for m, n, k, ta, tb in HALVES[name]:
                a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
                b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
                c = np.zeros((m, n), dtype)
                repeat = max(3, int(1e8 / (m * n * k)))

                def run(times):
                    if library == "tile":
                        _gemm.tile_matmul(ta, tb, 1.0, a, b, 0.0, c, times)
                    else:
                        _gemm.matmul(ta, tb, 1.0, a, b, 0.0, c, "openblas", times)
                run(1)
                best = float("inf")
                for _ in range(5):
                    start = time.perf_counter()
                    run(repeat)
                    best = min(best, (time.perf_counter() - start) / repeat)
                out[f"{name} {m}x{n}x{k} {'T' if ta else 'N'}{'T' if tb else 'N'}"] = best
    print(json.dumps(out))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wide", action="store_true", help="wide's halves instead")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--names", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.names.split(","), args.dtype)
        return
    from pynn import _gemm, _threads
    if not _gemm.tile_gemm_cpu():
        sys.exit("the tile GEMM needs a CPU with AVX-512F and FMA")
    from threadpoolctl import threadpool_info
    import scipy.linalg  # noqa: F401  (SciPy's OpenBLAS loaded, for its description)
    for lib in threadpool_info():
        print(f"BLAS {lib.get('internal_api')} {lib.get('version')}, kernel "
              f"{lib.get('architecture')}, {lib.get('filepath', '').split('/')[-1]}")
    print(f"pynn's backend: {_threads.backend_description()}; {args.dtype}, timed on one "
          f"thread")
    names = ["wide"] if args.wide else ["mnist", "mid"]
    times = {"openblas": [], "tile": []}
    for _ in range(args.rounds):
        for library in times:
            done = subprocess.run([sys.executable, __file__, "--worker", library,
                                   "--names", ",".join(names), "--dtype", args.dtype],
                                  capture_output=True, text=True, check=True)
            times[library].append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(f"{'product':32s} {'OpenBLAS':>12s} {'tile GEMM':>12s} {'ratio':>7s}")
    for key in times["tile"][0]:
        blas = float(np.median([t[key] for t in times["openblas"]]))
        tile = float(np.median([t[key] for t in times["tile"]]))
        print(f"{key:32s} {blas * 1e6:9.1f} us {tile * 1e6:9.1f} us {blas / tile:6.2f}x")


if __name__ == "__main__":
    main()
