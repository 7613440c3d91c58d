"""The network kernels' builds per instruction set give the same bits.

setup.py compiles csrc/dense.pyx for baseline x86-64, AVX2 and AVX-512F;
pynn/_dense.py imports the widest this CPU runs (PYNN_ISA picks one).
Each build trains the same models in a process of its own (the GEMM backend
and the tile GEMM alike in each), and every parameter, optimizer state, moving statistic,
loss, prediction and evaluation must match bit for bit.
"""
import hashlib
import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import pynn
from pynn import _dense

RUNS = [isa for isa in _dense.built_isas()
        if isa in pynn._elementwise.supported_isas()]

# every activation, layer kind, loss and optimizer the compiled step runs,
# each in a small model trained by a compiled epoch (shuffled) and by
# train_on_batch, in both dtypes
SCRIPT = r"""
import hashlib, json, sys
import numpy as np
import pynn
from pynn import _dense

def digest(*arrays):
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()

CASES = [
    ("relu", "mse", lambda: pynn.optimizers.SGD(0.05, momentum=0.9, nesterov=True, weight_decay=1e-3)),
    ("tanh", "huber", lambda: pynn.optimizers.Adam(0.01)),
    ("sigmoid", "mae", lambda: pynn.optimizers.AdamW(0.01, weight_decay=0.01)),
    ("gelu", "mse", lambda: pynn.optimizers.RMSprop(0.01, momentum=0.5, centered=True)),
    ("swish", "mse", lambda: pynn.optimizers.Nadam(0.01)),
    ("softplus", "mse", lambda: pynn.optimizers.Adagrad(0.05)),
    ("elu", "binary_crossentropy", lambda: pynn.optimizers.SGD(0.05, momentum=0.9)),
    ("selu", "categorical_crossentropy", lambda: pynn.optimizers.SGD(0.05)),
    ("leaky_relu", "sparse_categorical_crossentropy", lambda: pynn.optimizers.Adam(0.01)),
]
out = {"isa": _dense.ISA}
rng = np.random.default_rng(7)
for dtype in ("float32", "float64"):
    x = rng.standard_normal((203, 37)).astype(dtype)
    for act, loss, opt in CASES:
        sparse = loss.startswith("sparse")
        width = 5
        if sparse:
            y = rng.integers(0, width, size=(203, 1)).astype(dtype)
        elif loss.endswith("crossentropy"):
            y = np.eye(width, dtype=dtype)[rng.integers(0, width, 203)]
            if loss == "binary_crossentropy":
                y = (rng.random((203, width)) < 0.5).astype(dtype)
        else:
            y = rng.standard_normal((203, width)).astype(dtype)
        last = {"binary_crossentropy": "sigmoid", "categorical_crossentropy": "softmax",
                "sparse_categorical_crossentropy": "softmax"}.get(loss, "linear")
        model = pynn.Sequential([
            pynn.Dense(33, activation=act, input_dim=37),
            pynn.BatchNormalization(),
            pynn.Dropout(0.2),
            pynn.Dense(19, activation=act),
            pynn.LayerNormalization(),
            pynn.Dense(width, activation=last)], dtype=dtype, seed=3)
        model.compile(optimizer=opt(), loss=loss)
        hist = model.fit(x, y, epochs=2, batch_size=16, shuffle=True, verbose=0)
        for k in range(0, 64, 16):
            model.train_on_batch(x[k:k + 16], y[k:k + 16])
        pred = model.predict(x, verbose=0)
        ev = model.evaluate(x, y, verbose=0)
        out[f"{dtype}/{act}/{loss}"] = digest(
            model.params, model.optimizer.state, np.array(hist.history["loss"]), pred,
            np.array([ev]), *model.get_weights())
    # a layer big enough for its products to run in halves (on the tile
    # GEMM where it is on)
    xs = rng.standard_normal((96, 512)).astype(dtype)
    ys = rng.standard_normal((96, 5)).astype(dtype)
    model = pynn.Sequential([pynn.Dense(64, activation="relu", input_dim=512),
                             pynn.Dense(96, activation="tanh"), pynn.Dense(5)],
                            dtype=dtype, seed=3)
    model.compile(optimizer=pynn.optimizers.SGD(0.01, momentum=0.9), loss="mse")
    hist = model.fit(xs, ys, epochs=2, batch_size=32, shuffle=True, verbose=0)
    out[f"{dtype}/split"] = digest(model.params, model.optimizer.state,
                                   np.array(hist.history["loss"]), model.predict(xs, verbose=0))
print(json.dumps(out))
"""


def run_on(isa):
    env = dict(os.environ, PYNN_ISA=isa)
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(len(RUNS) < 2, reason="this CPU runs one build of the kernels only")
def test_every_build_gives_the_same_bits():
    results = {isa: run_on(isa) for isa in RUNS}
    for isa, res in results.items():
        assert res.pop("isa") == isa          # PYNN_ISA honoured
    base = results[RUNS[0]]
    assert len(base) == 2 * (9 + 1)
    for isa in RUNS[1:]:
        differ = [k for k in base if results[isa][k] != base[k]]
        assert not differ, f"the {isa} build differs from the {RUNS[0]} one on {differ}"


def test_the_widest_build_the_cpu_runs_is_imported():
    assert _dense.ISA == RUNS[-1] or os.environ.get("PYNN_ISA")
    assert _dense.MODULE.__name__ == f"pynn._dense_{_dense.ISA}"
    assert _dense.Network is _dense.MODULE.Network


@pytest.mark.parametrize("value", ["sse9", "AVX1024"])
def test_an_unknown_request_warns_and_falls_back(value):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        isa, status = _dense._choose(value.lower())
    assert (isa, status) == (RUNS[-1], "ignored")
    assert any(value.lower() in str(w.message) and issubclass(w.category, RuntimeWarning)
               for w in caught)


@pytest.mark.skipif("avx512f" in RUNS, reason="this CPU runs every build")
def test_a_build_the_cpu_cannot_run_is_refused():
    with pytest.warns(RuntimeWarning, match="avx512f"):
        isa, status = _dense._choose("avx512f")
    assert isa == RUNS[-1] and status == "ignored"


def test_info_names_the_build():
    done = subprocess.run([sys.executable, "-m", "pynn", "info"], capture_output=True,
                          text=True, timeout=120)
    assert f"network kernels: the {_dense.ISA} build" in done.stdout


def test_the_digest_sees_a_changed_bit():
    # the comparison above can fail: one bit flipped changes the digest
    a = np.arange(10, dtype=np.float32)
    b = a.copy()
    b.view(np.uint32)[3] ^= 1
    assert hashlib.sha256(a.tobytes()).hexdigest() != hashlib.sha256(b.tobytes()).hexdigest()
