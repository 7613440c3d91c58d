"""pynn against scikit-learn's MLPClassifier on scikit-learn's digits.

The same network on both sides (64 inputs, one hidden layer of 100 relu
units, 10 softmax outputs), the same solver (Adam, learning rate 1e-3,
batches of 200, L2 alpha 1e-4) and the same number of epochs (tol=0 and
n_iter_no_change above the epochs, so neither stops early).  The digits are
scaled to [0, 1] and split 75/25, stratified.  Runs are interleaved (pynn,
scikit-learn, pynn, ...) with seeds 0, 1, ..., and the table shows the
median over the repeats of the test accuracy and of the fit time.

    python examples/digits_vs_sklearn.py [--epochs E] [--repeats R] [--hidden H]

Needs scikit-learn (pip install "pynn[sklearn]").
"""
import argparse
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as SkMLPClassifier

import pynn
from pynn.sklearn import MLPClassifier


def pynn_sequential(x_train, y_train, x_test, y_test, params, seed, dtype):
    """pynn's own API, the estimator's network trained the Keras way."""
    net = pynn.Sequential([
        pynn.Dense(params["hidden_layer_sizes"][0], "relu", input_dim=x_train.shape[1]),
        pynn.Dense(10, "softmax")], dtype=dtype, seed=seed)
    net.compile("sparse_categorical_crossentropy",
                pynn.Adam(params["learning_rate_init"], epsilon=params["epsilon"],
                          weight_decay=params["alpha"] / params["batch_size"]),
                metrics=["accuracy"])
    start = time.perf_counter()
    net.fit(x_train, y_train, epochs=params["max_iter"], batch_size=params["batch_size"],
            verbose=0)
    seconds = time.perf_counter() - start
    return net.evaluate(x_test, y_test)["accuracy"], seconds


def estimator(cls, x_train, y_train, x_test, y_test, params, seed, **extra):
    clf = cls(random_state=seed, **params, **extra)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(x_train, y_train)
    seconds = time.perf_counter() - start
    assert clf.n_iter_ == params["max_iter"]
    return clf.score(x_test, y_test), seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--hidden", type=int, default=100)
    args = parser.parse_args(argv)

    x, y = load_digits(return_X_y=True)
    x = x / 16.0
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.25, stratify=y, random_state=0)
    params = dict(hidden_layer_sizes=(args.hidden,), activation="relu", solver="adam",
                  learning_rate_init=1e-3, batch_size=200, alpha=1e-4, epsilon=1e-8,
                  max_iter=args.epochs, tol=0.0, n_iter_no_change=args.epochs + 1)
    runs = {
        "scikit-learn MLPClassifier (float64)":
            lambda seed: estimator(SkMLPClassifier, x_train, y_train, x_test, y_test,
                                   params, seed),
        "pynn.sklearn.MLPClassifier (float64)":
            lambda seed: estimator(MLPClassifier, x_train, y_train, x_test, y_test,
                                   params, seed),
        "pynn.sklearn.MLPClassifier (float32)":
            lambda seed: estimator(MLPClassifier, x_train, y_train, x_test, y_test,
                                   params, seed, dtype="float32"),
        "pynn.Sequential (float32)":
            lambda seed: pynn_sequential(x_train, y_train, x_test, y_test, params, seed,
                                         "float32"),
    }
    results = {name: [] for name in runs}
    for seed in range(args.repeats):
        for name, run in runs.items():
            results[name].append(run(seed))

    print(f"digits: {x_train.shape[0]} train / {x_test.shape[0]} test samples, "
          f"64-{args.hidden}-10 relu/softmax, Adam lr 1e-3, batch 200, alpha 1e-4, "
          f"{args.epochs} epochs; median of {args.repeats} interleaved runs\n")
    base = np.median([s for _, s in results["scikit-learn MLPClassifier (float64)"]])
    print("| model | test accuracy (median, min-max) | fit time (median) | speed vs scikit-learn |")
    print("|---|---|---|---|")
    for name, values in results.items():
        acc = np.array([a for a, _ in values])
        sec = np.median([s for _, s in values])
        print(f"| {name} | {np.median(acc):.4f} ({acc.min():.4f}-{acc.max():.4f}) "
              f"| {sec:.3f} s | {base / sec:.1f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
