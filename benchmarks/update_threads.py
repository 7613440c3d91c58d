"""The optimizer's check and update over a flat buffer, on one thread and on two.

    python benchmarks/update_threads.py                  # the default sizes
    python benchmarks/update_threads.py --sizes 65536,262144,8400000 --dtype float64
    python benchmarks/update_threads.py --blas openblas  # spin OpenBLAS's pool first

One call of pynn._optim.step is what a train_on_batch does after its
backward pass: the exact finiteness check, then the update, over every
parameter (SGD with Nesterov momentum and weight decay by default; its
state, the velocity, read and written).  Each contender (a size, a thread
count) runs in a process of its own, blocks of calls taking turns round
after round; the figure is the median block's time per call.  With
--blas, each call follows a product on that BLAS's threads, as the update
follows the backward pass's products in a step, so that the pool's threads
are awake (spinning or going to sleep) when the update starts.

Prints the load average with the figures: on a loaded machine they mean
little.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

OPTIMIZERS = {
    # code, settings (optim_kernels.pxd's sequence), state length per parameter
    "sgd-nesterov": (0, [0.01, 0.9, 1.0, 1e-4], 1),
    "adam": (1, [1e-3, 0.9, 0.999, 1e-7, 0.0], 2),
}


def worker(args):
    os.environ.setdefault("PYNN_BLAS", args.blas or "openblas")
    import pynn  # noqa: F401  (installs the GEMM backend)
    from pynn import _dense, _optim
    code, hyper, per = OPTIMIZERS[args.optimizer]
    dtype = np.dtype(args.dtype)
    rng = np.random.default_rng(0)
    n = args.size
    w = rng.standard_normal(n).astype(dtype)
    g = (1e-3 * rng.standard_normal(n)).astype(dtype)
    state = np.zeros(per * n, dtype)
    if args.blas:
        a = rng.standard_normal((256, 1024)).astype(dtype)
        wb = rng.standard_normal((1024, 1024)).astype(dtype)
        out = np.empty((256, 1024), dtype)
        zero = np.zeros(1024, dtype)
    times = []
    for line in sys.stdin:
        if line.strip() == "stop":
            break
        block = []
        for _ in range(args.calls):
            if args.blas:
                _dense.dense_forward(a, wb, zero, 0, out)
            t0 = time.perf_counter()
            # parallel_min 0: two threads whatever the size, to find the threshold
            _optim.step(code, w, g, state, hyper, n // 2, n_threads=args.threads,
                        parallel_min=0)
            block.append(time.perf_counter() - t0)
        times.append(float(np.median(block)))
        print(json.dumps(times[-1]), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="16384,65536,131072,262144,524288,1048576,8400000")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--optimizer", default="sgd-nesterov", choices=sorted(OPTIMIZERS))
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--blas", choices=["openblas", "mkl"], default=None)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--calls", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    print(f"load average at start: {os.getloadavg()}; {args.optimizer}, {args.dtype}, "
          f"after a product on: {args.blas or 'none'}")
    print("| elements | 1 thread | 2 threads | speed-up |")
    print("|---|---|---|---|")
    for size in map(int, args.sizes.split(",")):
        calls = max(5, min(400, int(2e8 // (size * 20))))
        procs = {}
        for threads in (1, 2):
            cmd = [sys.executable, __file__, "--worker", "--size", str(size),
                   "--threads", str(threads), "--calls", str(calls),
                   "--dtype", args.dtype, "--optimizer", args.optimizer]
            if args.blas:
                cmd += ["--blas", args.blas]
            procs[threads] = subprocess.Popen(cmd, stdin=subprocess.PIPE,
                                              stdout=subprocess.PIPE, text=True)
        medians = {1: [], 2: []}
        for r in range(args.rounds + 1):          # the first round warms up
            for threads in ((1, 2) if r % 2 else (2, 1)):
                p = procs[threads]
                p.stdin.write("go\n")
                p.stdin.flush()
                t = json.loads(p.stdout.readline())
                if r:
                    medians[threads].append(t)
        for p in procs.values():
            p.stdin.write("stop\n")
            p.stdin.flush()
            p.wait()
        one, two = (float(np.median(medians[t])) for t in (1, 2))
        print(f"| {size} | {one * 1e6:.1f} µs | {two * 1e6:.1f} µs | {one / two:.2f}× |",
              flush=True)
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
