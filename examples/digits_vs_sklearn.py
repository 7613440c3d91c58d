"""pynn against scikit-learn's MLPClassifier on scikit-learn's digits.

The same network on both sides (64 inputs, one hidden layer of 100 relu
units, 10 softmax outputs, L2 alpha 1e-4) and the same solver, in float64
and in float32 (the dtype of X, which both estimators follow):

- adam: learning rate 1e-3, batches of 200, exactly E epochs (tol=0 and
  n_iter_no_change above the epochs, so neither stops early);
- lbfgs: at most E iterations of L-BFGS-B on the full-batch objective (the
  iterations each side ran are shown).

The digits are scaled to [0, 1] and split 75/25, stratified.  Each fit runs
in its own process (two BLAS thread pools in one process would compete for
the cores); runs are interleaved (every contender with seed 0, then with
seed 1, ...) and the table shows the median over the repeats of the test
accuracy, of the fit's wall time and of its CPU time (all threads of the
process; BLAS threads that spin waiting count too).  On a machine shared with
other work the CPU times are the steadier figure; ``--blas-threads 1`` runs
every fit with one BLAS thread.  pynn.Sequential (float32, Adam) is pynn's own
API on the same network.

    python examples/digits_vs_sklearn.py [--epochs E] [--repeats R] [--hidden H]
                                         [--solvers adam,lbfgs] [--blas-threads N]

Needs scikit-learn (pip install "pynn[sklearn]").
"""
import argparse
import json
import os
import subprocess
import sys
import time
import warnings

import numpy as np

CONTENDERS = [("scikit-learn MLPClassifier", "float64"), ("scikit-learn MLPClassifier", "float32"),
              ("pynn.sklearn.MLPClassifier", "float64"), ("pynn.sklearn.MLPClassifier", "float32")]


def load(dtype):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(dtype)
    return train_test_split(x, y, test_size=0.25, stratify=y, random_state=0)


def params(solver, epochs, hidden):
    common = dict(hidden_layer_sizes=(hidden,), activation="relu", solver=solver, alpha=1e-4,
                  max_iter=epochs)
    if solver == "lbfgs":
        return common
    return dict(common, learning_rate_init=1e-3, batch_size=200, epsilon=1e-8, tol=0.0,
                n_iter_no_change=epochs + 1)


def run_one(name, dtype, solver, epochs, hidden, seed):
    """One fit in this process: test accuracy, wall and CPU seconds of the
    fit, iterations."""
    from sklearn.exceptions import ConvergenceWarning
    x_train, x_test, y_train, y_test = load(dtype)
    settings = params(solver, epochs, hidden)
    if name == "pynn.Sequential":
        import pynn
        net = pynn.Sequential([pynn.Dense(hidden, "relu", input_dim=x_train.shape[1]),
                               pynn.Dense(10, "softmax")], dtype=dtype, seed=seed)
        net.compile(loss="sparse_categorical_crossentropy",
                    optimizer=pynn.Adam(settings["learning_rate_init"], epsilon=settings["epsilon"],
                              weight_decay=settings["alpha"] / settings["batch_size"]),
                    metrics=["accuracy"])
        start, cpu = time.perf_counter(), time.process_time()
        net.fit(x_train, y_train, epochs=epochs, batch_size=settings["batch_size"], verbose=0)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        return net.evaluate(x_test, y_test, return_dict=True)["accuracy"], seconds, cpu, epochs
    if name.startswith("scikit-learn"):
        from sklearn.neural_network import MLPClassifier
    else:
        from pynn.sklearn import MLPClassifier
    clf = MLPClassifier(random_state=seed, **settings)
    start, cpu = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(x_train, y_train)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    assert clf.coefs_[0].dtype == dtype or solver == "lbfgs"
    return clf.score(x_test, y_test), seconds, cpu, clf.n_iter_


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--hidden", type=int, default=100)
    parser.add_argument("--solvers", default="adam,lbfgs")
    parser.add_argument("--blas-threads", type=int, default=None,
                        help="BLAS threads of every fit (default: the BLAS's own choice)")
    parser.add_argument("--one", nargs=4, metavar=("NAME", "DTYPE", "SOLVER", "SEED"),
                        help=argparse.SUPPRESS)  # a single run, in a child process
    args = parser.parse_args(argv)
    if args.one:
        name, dtype, solver, seed = args.one
        print(json.dumps(run_one(name, dtype, solver, args.epochs, args.hidden, int(seed))))
        return 0

    env = dict(os.environ)
    if args.blas_threads:
        for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[name] = str(args.blas_threads)
    n_train, n_test = (len(part) for part in load("float64")[:2])
    print(f"digits: {n_train} train / {n_test} test samples, 64-{args.hidden}-10 "
          f"relu/softmax, alpha 1e-4; each fit in its own process"
          f"{f' with {args.blas_threads} BLAS thread(s)' if args.blas_threads else ''}; "
          f"median of {args.repeats} interleaved runs")
    for solver in args.solvers.split(","):
        runs = CONTENDERS + ([("pynn.Sequential", "float32")] if solver == "adam" else [])
        results = {run: [] for run in runs}
        for seed in range(args.repeats):
            for name, dtype in runs:
                out = subprocess.run(
                    [sys.executable, __file__, "--epochs", str(args.epochs), "--hidden",
                     str(args.hidden), "--one", name, dtype, solver, str(seed)],
                    capture_output=True, text=True, check=True, env=env).stdout
                results[(name, dtype)].append(json.loads(out.splitlines()[-1]))
        what = (f"Adam lr 1e-3, batch 200, {args.epochs} epochs" if solver == "adam"
                else f"L-BFGS-B, at most {args.epochs} iterations")
        print(f"\n{solver}: {what}\n")
        base = np.median([cpu for _, _, cpu, _ in results[CONTENDERS[0]]])
        print("| model | dtype | test accuracy (median, min-max) | iterations (median) "
              "| fit wall time (median) | fit CPU time (median) | CPU vs scikit-learn float64 |")
        print("|---|---|---|---|---|---|---|")
        for (name, dtype), values in results.items():
            acc, sec, cpu, iters = (np.array(column) for column in zip(*values))
            print(f"| {name} | {dtype} | {np.median(acc):.4f} ({acc.min():.4f}-{acc.max():.4f}) "
                  f"| {np.median(iters):g} | {np.median(sec):.3f} s | {np.median(cpu):.3f} s "
                  f"| {base / np.median(cpu):.1f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
