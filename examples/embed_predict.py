"""A trained model saved by one program, loaded and used by another.

The "trainer" (this script's first half) fits a small classifier and saves
it with ``model.save``: one .npz file of JSON and arrays, no pickle.  The
"host program" is a separate Python process that knows nothing of the
training code: it calls ``pynn.load`` and ``predict`` on rows it is handed,
and the trainer checks that its answers are bit-for-bit its own.

    python examples/embed_predict.py [--epochs E] [--path model.npz]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

import pynn

# The whole of the host program's use of pynn: load once, predict per request.
HOST_PROGRAM = """
import json, sys
import numpy as np
import pynn

model = pynn.load(sys.argv[1])                 # no training code needed here
for line in sys.stdin:                         # one JSON list of rows per request
    rows = np.asarray(json.loads(line), dtype=float)
    proba = model.predict(rows)
    print(json.dumps({"label": proba.argmax(axis=1).tolist(),
                      "proba": proba.tolist()}), flush=True)
"""


def make_data(n_samples=600, seed=0):
    """Three Gaussian blobs in 2-D."""
    rng = np.random.default_rng(seed)
    centers = np.array([[-2.0, 0.0], [2.0, 0.0], [0.0, 2.5]])
    labels = rng.integers(0, 3, size=n_samples)
    return centers[labels] + rng.normal(size=(n_samples, 2)), labels


def train_and_save(path, epochs):
    x, labels = make_data()
    net = pynn.Sequential([pynn.Dense(16, "relu", input_dim=2),
                           pynn.Dense(3, "softmax")], dtype="float64", seed=0)
    net.compile(pynn.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    net.fit(x, labels, epochs=epochs, batch_size=32, verbose=0)
    _, accuracy = net.evaluate(x, labels)
    print(f"trainer: accuracy {accuracy:.3f}, saved to {path}")
    net.save(path)
    return net


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--path", default=None, help="where to save (default: a temp dir)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        path = args.path or os.path.join(tmp, "model.npz")
        net = train_and_save(path, args.epochs)

        requests = [[[-2.0, 0.1], [2.1, -0.3]], [[0.0, 2.4]]]
        host = subprocess.run([sys.executable, "-c", HOST_PROGRAM, path],
                              input="".join(json.dumps(r) + "\n" for r in requests),
                              capture_output=True, text=True, check=True)
        for rows, line in zip(requests, host.stdout.splitlines()):
            answer = json.loads(line)
            print(f"host program: rows {rows} -> labels {answer['label']}")
            # JSON carries floats exactly (repr round-trips), so: bit for bit
            assert np.array_equal(np.array(answer["proba"]), net.predict(np.array(rows)))
    print("the host's predictions equal the trainer's, bit for bit")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
