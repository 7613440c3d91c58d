"""What one training step of a tiny network costs at each layer of the stack.

    python benchmarks/call_floor.py                  # float32
    python benchmarks/call_floor.py --dtype float64
    PYNN_BLAS=openblas python benchmarks/call_floor.py

A 64-32-10 relu network, batch 16, SGD with Nesterov momentum, MSE (the
benchmark's "tiny"): microseconds per call of ``model.train_on_batch``,
``model.step`` (arrays already checked), the compiled network's step
(``model.engine.step``), ``optimizer.hyper()`` and
``optimizer.kernel_settings()``, each the best of many loops of 2000
calls, the loops of the five interleaved.  The differences are the cost of
each Python layer above the compiled step.  The load average is printed:
on a loaded machine the figures mean little.
"""
import argparse
import os
import time

import numpy as np

import pynn
from pynn import _threads


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--rounds", type=int, default=60)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    model = pynn.Sequential([pynn.Dense(32, activation="relu", input_dim=64),
                             pynn.Dense(10)], dtype=args.dtype, seed=0)
    model.compile(pynn.SGD(0.001, momentum=0.9, nesterov=True), "mse")
    x = rng.standard_normal((16, 64)).astype(args.dtype)
    y = rng.standard_normal((16, 10)).astype(args.dtype)
    model.step(x, y)                 # the network holds the optimizer's settings
    net, opt = model.engine, model.optimizer
    calls = {"model.train_on_batch": lambda: model.train_on_batch(x, y),
             "model.step": lambda: model.step(x, y),
             "model.engine.step": lambda: net.step(x, y),
             "optimizer.hyper()": opt.hyper,
             "optimizer.kernel_settings()": opt.kernel_settings}
    best = dict.fromkeys(calls, float("inf"))
    n = 2000
    for _ in range(args.rounds):
        for name, call in calls.items():
            t0 = time.perf_counter()
            for _ in range(n):
                call()
            best[name] = min(best[name], (time.perf_counter() - t0) / n)
    load = os.getloadavg()
    print(f"tiny 64-32-10, batch 16, {args.dtype}, GEMM {_threads.backend()}; "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} ({os.cpu_count()} cores)")
    for name, seconds in best.items():
        print(f"{name:30s} {seconds * 1e6:7.3f} µs")


if __name__ == "__main__":
    main()
