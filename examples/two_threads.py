"""Two pynn models trained at once, in two threads of one host program.

pynn's training loop runs without the GIL (a whole epoch's batches are one
compiled call when fit has no per-batch callback and no live progress bar),
so two models in two threads train in parallel on two cores.  Each model
has its own lock: the threads share nothing but the interpreter.  The
script times the two trainings one after the other, then at once.

    python examples/two_threads.py [--samples N] [--epochs E] [--hidden H]

On one core, or with a BLAS that runs each product on every core already,
the two times are close; on two idle cores the threaded run takes about
half the sequential one.
"""
import argparse
import threading
import time

import numpy as np

import pynn


def make_task(seed, n_samples, n_features=32):
    """A regression problem of its own for each model."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_samples, n_features))
    w = rng.normal(size=(n_features, 1))
    y = np.tanh(x @ w / np.sqrt(n_features)) + 0.05 * rng.normal(size=(n_samples, 1))
    return x, y


def make_model(seed, n_features, hidden):
    # n_threads=1: each model's products on one BLAS thread, so the two
    # threads of the host program are what runs in parallel
    net = pynn.Sequential([pynn.Dense(hidden, "relu", input_dim=n_features,
                                      kernel_initializer="he_uniform"),
                           pynn.Dense(hidden, "relu", kernel_initializer="he_uniform"),
                           pynn.Dense(1)], dtype="float32", seed=seed, n_threads=1)
    net.compile(pynn.SGD(learning_rate=0.01, momentum=0.9), "mse")
    return net


def train(net, x, y, epochs, results, key):
    history = net.fit(x, y, epochs=epochs, batch_size=64, verbose=0)
    results[key] = history.history["loss"]


def run(n_samples, epochs, hidden, threaded):
    tasks = [make_task(seed, n_samples) for seed in (1, 2)]
    nets = [make_model(seed, x.shape[1], hidden) for seed, (x, _) in zip((1, 2), tasks)]
    results = {}
    start = time.perf_counter()
    if threaded:
        threads = [threading.Thread(target=train, args=(net, x, y, epochs, results, i))
                   for i, (net, (x, y)) in enumerate(zip(nets, tasks))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    else:
        for i, (net, (x, y)) in enumerate(zip(nets, tasks)):
            train(net, x, y, epochs, results, i)
    return time.perf_counter() - start, results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--hidden", type=int, default=128)
    args = parser.parse_args(argv)

    seq_time, seq = run(args.samples, args.epochs, args.hidden, threaded=False)
    par_time, par = run(args.samples, args.epochs, args.hidden, threaded=True)
    for i in (0, 1):
        print(f"model {i + 1}: loss {par[i][0]:.4f} -> {par[i][-1]:.4f} "
              f"(sequential run: {seq[i][-1]:.4f})")
        # the same seeds and data: threads change when, not what, is computed
        assert par[i] == seq[i], "threaded training differs from sequential"
    print(f"sequential: {seq_time:.2f} s   two threads: {par_time:.2f} s   "
          f"speed-up {seq_time / par_time:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
