"""Throughput of pynn's generator against NumPy's, filling arrays in place.

Run as ``python -m pynn.bench_random [--n N] [--repeat R]``.  For each
distribution the two fills alternate (pynn, NumPy, pynn, NumPy, ...) on
arrays of the same size, so that both see the same machine conditions; the
best time of each is reported as millions of values per second, with the
ratio pynn / NumPy (above 1 means pynn is faster).
"""
import argparse
import time

import numpy as np

from pynn._random import Generator


def _best_interleaved(fill_a, fill_b, repeat):
    best_a = best_b = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fill_a()
        t1 = time.perf_counter()
        fill_b()
        t2 = time.perf_counter()
        best_a = min(best_a, t1 - t0)
        best_b = min(best_b, t2 - t1)
    return best_a, best_b


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10**7, help="values per fill")
    parser.add_argument("--repeat", type=int, default=7, help="fills of each")
    args = parser.parse_args(argv)
    n = args.n

    ours = Generator(12345)
    theirs = np.random.Generator(np.random.PCG64(12345))
    x64 = np.empty(n, dtype=np.float64)
    y64 = np.empty(n, dtype=np.float64)
    x32 = np.empty(n, dtype=np.float32)
    y32 = np.empty(n, dtype=np.float32)

    cases = [
        ("standard_normal float64",
         lambda: ours.standard_normal(x64),
         lambda: theirs.standard_normal(out=y64)),
        ("standard_normal float32",
         lambda: ours.standard_normal(x32),
         lambda: theirs.standard_normal(out=y32, dtype=np.float32)),
        ("uniform float64",
         lambda: ours.uniform(x64, 0.0, 1.0),
         lambda: theirs.random(out=y64)),
        ("uniform float32",
         lambda: ours.uniform(x32, 0.0, 1.0),
         lambda: theirs.random(out=y32, dtype=np.float32)),
    ]
    print(f"n = {n:,} values per fill, best of {args.repeat} interleaved fills")
    print(f"{'fill':<26}{'pynn Mval/s':>13}{'NumPy Mval/s':>14}{'pynn/NumPy':>12}")
    for name, fa, fb in cases:
        fa(), fb()  # warm up (page in the arrays)
        ta, tb = _best_interleaved(fa, fb, args.repeat)
        print(f"{name:<26}{n / ta / 1e6:>13.1f}{n / tb / 1e6:>14.1f}{tb / ta:>12.2f}")


if __name__ == "__main__":
    main()
