"""Resident memory over many training steps and save/load cycles.

    python examples/memory_check.py [--steps 10000] [--cycles 1000]

Prints the resident set size (RSS, from /proc/self/statm, or the peak from
getrusage where there is no /proc) after a warm-up and after each phase,
and the reference counts of the model's buffers.  Exits with status 1 when
either phase grows RSS by more than --tolerance MiB: a leak of even a few
hundred bytes per step or per cycle would show here.
"""
import argparse
import os
import resource
import sys
import tempfile

import numpy as np

import pynn


def rss_mib():
    """Current resident set size in MiB (the peak, without /proc)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / (2**20 if sys.platform == "darwin" else 2**10)


def make_model():
    net = pynn.Sequential([pynn.Dense(64, activation="relu", input_dim=20),
                           pynn.Dense(3, activation="softmax")], seed=0)
    net.compile(loss="categorical_crossentropy", optimizer=pynn.Adam(1e-3),
                metrics=["accuracy"])
    return net


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--cycles", type=int, default=1_000)
    parser.add_argument("--tolerance", type=float, default=4.0,
                        help="allowed RSS growth per phase, MiB")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 20)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 64)]
    net = make_model()
    refs = [sys.getrefcount(net.params), sys.getrefcount(net.grads)]

    # warm-up: every buffer (work space, batch buffers, optimizer state) is
    # allocated on first use; what follows must allocate nothing that stays
    for _ in range(200):
        net.train_on_batch(x, y)
    net.fit(x, y, epochs=2, batch_size=16, verbose=0)
    net.predict(x)
    net.evaluate(x, y)
    start = rss_mib()
    for _ in range(args.steps):
        net.train_on_batch(x, y)
    for _ in range(args.steps // 100):
        net.fit(x, y, epochs=1, batch_size=16, verbose=0)
        net.predict(x)
        net.evaluate(x, y)
    after_steps = rss_mib()
    refs_after = [sys.getrefcount(net.params), sys.getrefcount(net.grads)]

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.npz")
        for _ in range(20):
            net.save(path)
            pynn.load(path)
        before_io = rss_mib()
        for _ in range(args.cycles):
            net.save(path)
            back = pynn.load(path)
        after_io = rss_mib()
    assert np.array_equal(back.params, net.params)

    grow_steps, grow_io = after_steps - start, after_io - before_io
    print(f"train: {args.steps} train_on_batch + {args.steps // 100} fit/predict/evaluate: "
          f"RSS {start:.1f} -> {after_steps:.1f} MiB ({grow_steps:+.2f})")
    print(f"io:    {args.cycles} save/load cycles: "
          f"RSS {before_io:.1f} -> {after_io:.1f} MiB ({grow_io:+.2f})")
    print(f"refcounts of params, grads: {refs} -> {refs_after}")
    ok = grow_steps <= args.tolerance and grow_io <= args.tolerance and refs == refs_after
    print("flat" if ok else "GROWING")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
