"""Dropout and the normalisations on scikit-learn's digits, and what each
new layer costs per training step.

    python benchmarks/layer_kinds.py             # both tables, markdown
    python benchmarks/layer_kinds.py --quick     # fewer seeds and repeats
    python benchmarks/layer_kinds.py --instructions   # table 2 in instructions
                                                      # (perf stat), not time

1. digits (8x8 images, 10 classes; 75/25 split, standardised), a 64-128-64-10
   relu/softmax network, Adam(1e-3), batch 32: test accuracy (mean and
   spread over seeds) and fit time, plain / with Dropout(0.2) after each
   hidden layer / with BatchNormalization after each / with both.
2. One training step of the 64-128-64-10 network, and of the same with one
   layer more on its 128-wide hidden output: Dropout, BatchNormalization,
   LayerNormalization, or a Dense(128) (the plain Dense step to compare
   with); the extra cost per step is the difference with the plain network
   (one BLAS thread, median of 7 blocks of steps).

Every configuration runs in a process of its own (two BLAS thread pools in
one process would spin into each other); the load average is printed with
the figures, which mean little on a loaded machine.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

HIDDEN = (128, 64)
VARIANTS = ("plain", "dropout", "batchnorm", "dropout+batchnorm")
EXTRA = ("none", "dense", "dropout", "batchnorm", "layernorm")


def digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=0,
                                                        stratify=y)
    mean, std = x_train.mean(axis=0), x_train.std(axis=0) + 1e-8
    return ((x_train - mean) / std, y_train.astype(np.float64),
            (x_test - mean) / std, y_test.astype(np.float64))


def network(variant, seed, extra="none", n_threads=None):
    import pynn
    layers = []
    for i, units in enumerate(HIDDEN):
        layers.append(pynn.Dense(units, activation="relu", input_dim=64 if i == 0 else None,
                                 kernel_initializer="he_uniform"))
        if "batchnorm" in variant:
            layers.append(pynn.BatchNormalization())
        if "dropout" in variant:
            layers.append(pynn.Dropout(0.2))
        if i == 0 and extra != "none":
            layers.append({"dense": lambda: pynn.Dense(HIDDEN[0], activation="relu"),
                           "dropout": lambda: pynn.Dropout(0.2),
                           "batchnorm": pynn.BatchNormalization,
                           "layernorm": pynn.LayerNormalization}[extra]())
    layers.append(pynn.Dense(10, activation="softmax"))
    model = pynn.Sequential(layers, seed=seed, n_threads=n_threads)
    model.compile(optimizer=pynn.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def accuracy_worker(variant, seed, epochs):
    x, y, x_test, y_test = digits()
    model = network(variant, seed)
    start = time.perf_counter()
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
    seconds = time.perf_counter() - start
    return {"accuracy": model.evaluate(x_test, y_test, return_dict=True)["accuracy"], "seconds": seconds}


def step_worker(extra, batch, repeats):
    x, y, _, _ = digits()
    x = np.ascontiguousarray(x[:batch], dtype=np.float32)
    y = np.ascontiguousarray(y[:batch, None], dtype=np.float32)
    model = network("plain", 0, extra, n_threads=1)     # no thread pool's wake-ups
    for _ in range(200):
        model.step(x, y)
    blocks = []
    for _ in range(7):
        start = time.perf_counter()
        for _ in range(repeats):
            model.step(x, y)
        blocks.append((time.perf_counter() - start) / repeats)
    return {"seconds": float(np.median(blocks))}


def steps_worker(extra, batch, count):
    # count steps after the warm-up: perf stat's instructions for count and
    # for 0 steps differ by what the steps executed
    x, y, _, _ = digits()
    x = np.ascontiguousarray(x[:batch], dtype=np.float32)
    y = np.ascontiguousarray(y[:batch, None], dtype=np.float32)
    model = network("plain", 0, extra, n_threads=1)
    for _ in range(20):
        model.step(x, y)
    for _ in range(count):
        model.step(x, y)
    return {}


def instructions(extra, batch, count):
    def counted(k):
        out = subprocess.run(["perf", "stat", "-x,", "-e", "instructions:u", sys.executable,
                              __file__, "--worker", "steps", extra, str(batch), str(k)],
                             check=True, capture_output=True, text=True).stderr
        value = next(line for line in out.splitlines() if "instructions" in line).split(",")[0]
        if not value.isdigit():
            raise SystemExit(f"perf cannot count instructions here ({value}): no access "
                             f"to the performance counters (a container, or "
                             f"perf_event_paranoid); time the steps instead")
        return int(value)
    return (counted(count) - counted(0)) / count


def run(*args):
    out = subprocess.run([sys.executable, __file__, "--worker", *map(str, args)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def print_costs(values, fmt):
    """A table's rows: each network's figure, the extra layer's cost over
    the plain network, and that cost over a Dense(128)'s."""
    dense = values["dense"] - values["none"]
    for extra in EXTRA:
        cost = values[extra] - values["none"]
        print(f"| {'plain' if extra == 'none' else '+ ' + extra} | {fmt(values[extra])} | "
              f"{'' if extra == 'none' else fmt(cost)} | "
              f"{'' if extra == 'none' else f'{cost / dense:.2f}'} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--instructions", action="store_true",
                        help="count the instructions of a step (perf stat) instead of "
                             "timing fits and steps: meaningful on a loaded machine")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, *rest = args.worker
        worker = {"fit": accuracy_worker, "step": step_worker, "steps": steps_worker}[kind]
        result = worker(rest[0], int(rest[1]), int(rest[2]))
        print(json.dumps(result))
        return 0
    if args.instructions:
        for batch in (32, 256):
            print(f"\ninstructions of one float32 training step, batch {batch}, one thread\n")
            print("| network | instructions | the extra layer's | vs a Dense(128) |\n"
                  "|---|---|---|---|")
            print_costs({extra: instructions(extra, batch, 500) for extra in EXTRA},
                        lambda v: f"{v:,.0f}")
        return 0
    seeds = range(2 if args.quick else 5)
    repeats = 200 if args.quick else 2000
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    print(f"\ndigits, 64-128-64-10 relu/softmax, Adam(1e-3), batch 32, {args.epochs} epochs, "
          f"seeds {list(seeds)}\n")
    print("| network | test accuracy | fit time (s) |\n|---|---|---|")
    for variant in VARIANTS:
        runs = [run("fit", variant, seed, args.epochs) for seed in seeds]
        acc = np.array([r["accuracy"] for r in runs])
        sec = np.array([r["seconds"] for r in runs])
        print(f"| {variant} | {acc.mean():.4f} ± {acc.std():.4f} | "
              f"{np.median(sec):.3f} |")
    for batch in (32, 256):
        print(f"\none float32 training step, batch {batch}: the 64-128-64-10 network, and "
              f"with one layer more on its 128-wide hidden output\n")
        print("| network | step (µs) | the extra layer's cost (µs) | vs a Dense(128) |\n"
              "|---|---|---|---|")
        print_costs({extra: run("step", extra, batch, repeats)["seconds"] for extra in EXTRA},
                    lambda v: f"{v * 1e6:.1f}")
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
