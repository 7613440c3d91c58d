"""Threads: no shared state between models, and one model shared between
threads is serialised by its lock, never corrupted.

The kernels release the GIL (a single step does from GIL_KEPT_BELOW_FLOPS
floating-point operations on, every epoch does), so these threads really do
run at once.
n_threads=1 pins the BLAS's own threading, whose partitioning of a product
could otherwise depend on what else is running (see README, reproducibility).
"""
import threading
import time

import numpy as np
import pytest

import pynn
from conftest import make_model

rng = np.random.default_rng(5)
X = rng.standard_normal((512, 32))
Y = np.tanh(X[:, :4] @ rng.standard_normal((4, 4)))


def make(seed, opt="adam", dtype="float64"):
    return make_model((64, "relu"), (4, "tanh"), input_dim=32, dtype=dtype, seed=seed,
                      n_threads=1, optimizer=pynn.Adam(0.003) if opt == "adam"
                      else pynn.SGD(0.05, momentum=0.9))


def run_threads(*targets, timeout=120):
    errors = []

    def guard(fn):
        try:
            fn()
        except BaseException as exc:          # reported in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=guard, args=(t,)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
        assert not t.is_alive(), "a thread hung"
    if errors:
        raise errors[0]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_two_models_in_two_threads_equal_serial_runs(dtype):
    def train(net):
        net.fit(X, Y, epochs=4, batch_size=16, verbose=0)
        for _ in range(20):
            net.train_on_batch(X[:64], Y[:64])
        net.fit(X, Y, epochs=1, batch_size=32, verbose=0,
                callbacks=[pynn.LambdaCallback(on_batch_end=lambda b, logs: None)])

    serial = [make(1, "adam", dtype), make(2, "sgd", dtype)]
    for net in serial:
        train(net)
    concurrent = [make(1, "adam", dtype), make(2, "sgd", dtype)]
    run_threads(*(lambda net=net: train(net) for net in concurrent))
    for a, b in zip(serial, concurrent):
        np.testing.assert_array_equal(a.params, b.params)
        np.testing.assert_array_equal(a.optimizer.state, b.optimizer.state)
        np.testing.assert_array_equal(a.predict(X), b.predict(X))


def test_fit_against_train_on_batch_on_one_model_is_some_serial_order():
    """fit holds the model's lock for the whole run and train_on_batch for
    one step, so the result is one of the K + 1 serial interleavings."""
    K = 6
    shared = make(3, "sgd")
    run_threads(lambda: shared.fit(X, Y, epochs=3, batch_size=32, shuffle=False,
                                   verbose=0),
                lambda: [shared.train_on_batch(X[:50], Y[:50]) for _ in range(K)])
    outcomes = []
    for before in range(K + 1):
        net = make(3, "sgd")
        for _ in range(before):
            net.train_on_batch(X[:50], Y[:50])
        net.fit(X, Y, epochs=3, batch_size=32, shuffle=False, verbose=0)
        for _ in range(K - before):
            net.train_on_batch(X[:50], Y[:50])
        outcomes.append(net.params)
    assert any(np.array_equal(shared.params, p) for p in outcomes)
    assert shared.optimizer.iterations == 3 * 16 + K


def test_readers_never_see_a_half_trained_model():
    """predict, evaluate, get_weights and save from other threads during a
    fit see the weights from before it or after it, nothing in between."""
    net = make(4, "adam", "float32")
    start_out, start_w = net.predict(X[:64]), net.get_weights()
    seen = {"predict": [], "weights": [], "evaluate": []}
    started = threading.Event()
    finished = threading.Event()

    def trainer():
        started.set()
        net.fit(X, Y, epochs=5, batch_size=8, verbose=0)
        finished.set()

    def reader():
        started.wait()
        while not finished.is_set():
            seen["predict"].append(net.predict(X[:64]))
            seen["weights"].append(net.get_weights()[0])
            seen["evaluate"].append(net.evaluate(X, Y, return_dict=True)["loss"])

    run_threads(trainer, reader, reader)
    end_out, end_w = net.predict(X[:64]), net.get_weights()
    for out in seen["predict"]:
        # (the same rows in the same batch: products of another shape may round differently)
        assert np.array_equal(out, start_out) or np.array_equal(out, end_out)
    for w in seen["weights"]:
        assert np.array_equal(w, start_w[0]) or np.array_equal(w, end_w[0])
    assert np.isfinite(net.params).all()
    # still trains correctly afterwards: same as a model given its weights
    twin = make(4, "adam", "float32")
    twin.set_weights(end_w)
    twin.optimizer.state = None
    net.compile(loss="mse", optimizer=pynn.SGD(0.01))
    twin.compile(loss="mse", optimizer=pynn.SGD(0.01))
    net.train_on_batch(X[:32], Y[:32])
    twin.train_on_batch(X[:32], Y[:32])
    np.testing.assert_array_equal(net.params, twin.params)


def test_many_threads_hammering_one_model():
    # every call holds the lock: the count of steps is exact and the
    # weights are finite, whatever the interleaving
    net = make(6, "adam", "float32")
    n_threads, steps = 4, 25

    def worker(i):
        for k in range(steps):
            net.train_on_batch(X[k:k + 16], Y[k:k + 16])
            if k % 5 == 0:
                net.predict(X[:8])
                net.set_weights(net.get_weights())

    run_threads(*(lambda i=i: worker(i) for i in range(n_threads)))
    assert net.optimizer.iterations == n_threads * steps
    assert np.isfinite(net.params).all() and np.isfinite(net.optimizer.state).all()


def test_save_during_fit_writes_one_consistent_model(tmp_path):
    """Saves from another thread while fit runs: each file holds the weights,
    optimizer state and step count of one moment, the same moment for all
    three.  A callback records the model at each epoch end, so whatever
    moment a save caught (the start, an epoch end, the end), its weights
    must be the ones recorded for its step count."""
    net = make(7, "adam")
    snapshots = {0: (net.params.copy(), net.optimizer.state.copy())}

    saved, issued_during_fit = [], []
    first_epoch_done, issuing, finished = (threading.Event() for _ in range(3))

    def record(epoch, logs):
        snapshots[net.optimizer.iterations] = (net.params.copy(),
                                               net.optimizer.state.copy())
        if epoch == 0:          # let the saver start while fit is mid-way
            first_epoch_done.set()
            issuing.wait(30)

    # epochs long enough (512 batches) for an unguarded save to land inside one
    x, y = np.tile(X, (8, 1)), np.tile(Y, (8, 1))

    def trainer():
        net.fit(x, y, epochs=3, batch_size=8, verbose=0,
                callbacks=[pynn.LambdaCallback(on_epoch_end=record)])
        finished.set()

    def saver():
        first_epoch_done.wait(60)
        while not finished.is_set() and len(saved) < 50:
            issued_during_fit.append(True)
            issuing.set()
            saved.append(net.save(tmp_path / f"m{len(saved)}.npz"))

    run_threads(trainer, saver)
    assert issued_during_fit, "no save was made while fit ran: nothing was tested"
    assert net.optimizer.iterations == 3 * 512
    for path in saved:
        back = pynn.load(path)
        n = back.optimizer.iterations
        assert n in snapshots, f"a save caught step {n}, not a step boundary of the fit"
        params, state = snapshots[n]
        np.testing.assert_array_equal(back.params, params)
        np.testing.assert_array_equal(back.optimizer.state, state)


def forward(weights, x):
    """The network of ``make`` in NumPy: relu, then tanh."""
    W1, b1, W2, b2 = weights
    return np.tanh(np.maximum(x @ W1.T + b1, 0) @ W2.T + b2)


def test_every_entry_point_from_several_threads_at_once(tmp_path):
    """fit runs while other threads compile (switching momentum, which
    frees or allocates the velocity buffer), assign optimizers, set
    weights, save and predict: nothing crashes or raises, every prediction
    is that of the weights of its moment, every file loads as one model."""
    net = make(8, "sgd")
    done = threading.Event()
    go = threading.Barrier(6)
    seen, saved = [], []

    def repeat(action):
        # each at least once, and on until the fits are over
        def loop():
            go.wait()
            while True:
                action()
                if done.is_set():
                    break
        return loop

    def fitter():
        go.wait()
        try:
            for _ in range(3):
                net.fit(X, Y, epochs=2, batch_size=16, verbose=0)
                net.train_on_batch(X[:32], Y[:32])
        finally:
            done.set()

    def recompile():
        with net.lock:          # a change of settings and the compile, together
            opt = net.optimizer
            opt.momentum = 0.0 if opt.momentum else 0.9
            net.compile(loss="mse", optimizer=opt)

    def assign():
        net.optimizer = pynn.SGD(0.02, momentum=0.5)

    def save():
        saved.append(net.save(tmp_path / f"m{len(saved) % 4}.npz"))

    def predict():
        with net.lock:          # weights and outputs of one moment
            seen.append((net.get_weights(), net.predict(X[:32])))

    run_threads(fitter, repeat(recompile), repeat(assign),
                repeat(lambda: net.set_weights(net.get_weights())), repeat(save),
                repeat(predict))
    assert seen and saved
    for weights, out in seen:
        np.testing.assert_allclose(out, forward(weights, X[:32]), rtol=1e-12, atol=1e-12)
    for path in set(saved):
        back = pynn.load(path)
        np.testing.assert_allclose(back.predict(X[:32]), forward(back.get_weights(), X[:32]),
                                   rtol=1e-12, atol=1e-12)
    assert np.isfinite(net.params).all()
    np.testing.assert_allclose(net.predict(X[:32]), forward(net.get_weights(), X[:32]),
                               rtol=1e-12, atol=1e-12)


RECOMPILE_DURING_FIT = """
import sys, threading, time, numpy as np, pynn
n, width, pause = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
x = np.random.default_rng(0).normal(size=(n, width))
m = pynn.Sequential([pynn.Dense(2 * width, activation="relu", input_dim=width),
                     pynn.Dense(width)], dtype="float64")
opt = pynn.SGD(1e-4, momentum=0.9); m.compile(loss="mse", optimizer=opt)
def recompile():
    time.sleep(pause); opt.momentum = 0.0; m.compile(loss="mse", optimizer=opt)
t = threading.Thread(target=recompile); t.start()
m.fit(x, x, epochs=2, batch_size=32, verbose=0)
t.join()
assert np.isfinite(m.params).all() and opt.momentum == 0.0 and opt.state.size == 0
print("finished")
"""


def run_recompile_during_fit(*args):
    import os
    import subprocess
    import sys
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.path.dirname(os.path.dirname(pynn.__file__)), os.environ.get("PYTHONPATH", "")]))
    run = subprocess.run([sys.executable, "-c", RECOMPILE_DURING_FIT, *map(str, args)],
                         capture_output=True, text=True, timeout=600, env=env)
    # a crash of the interpreter shows as a negative return code (-11: SIGSEGV)
    assert run.returncode == 0 and "finished" in run.stdout, \
        (run.returncode, run.stderr[-2000:])


def test_compile_from_another_thread_while_fit_runs():
    """compile frees the velocity buffer the compiled epoch writes to: it
    waits for the fit to finish instead (without the wait this child
    process dies of SIGSEGV within a second)."""
    # 256 wide: buffers large enough to be returned to the system when freed
    run_recompile_during_fit(1500, 256, 0.05)


@pytest.mark.slow
def test_compile_from_another_thread_while_fit_runs_full_size():
    # the size at which the crash was first seen: 20000 samples of 256
    run_recompile_during_fit(20000, 256, 0.3)


def test_a_long_step_lets_other_python_threads_run():
    # A step of more than GIL_KEPT_BELOW_FLOPS floating-point operations
    # releases the GIL: another thread's Python code runs while it computes.
    # The main thread stamps the clock in a loop; some stamps must fall well
    # inside one of the worker's steps (none could while it held the GIL).
    from pynn._dense import MODULE as built
    model = make_model((1024, "relu"), (1024, None), input_dim=1024, dtype="float64",
                       seed=0, n_threads=1, optimizer=pynn.SGD(0.001))
    x = np.ones((128, 1024)), np.zeros((128, 1024))
    assert 128 * 2 * 3 * 1024 * 1024 > built.GIL_KEPT_BELOW_FLOPS
    model.train_on_batch(*x)
    spans, done = [], threading.Event()

    def worker():
        for _ in range(5):
            t0 = time.perf_counter()
            model.train_on_batch(*x)
            spans.append((t0, time.perf_counter()))
        done.set()

    stamps = []
    thread = threading.Thread(target=worker)
    thread.start()
    while not done.is_set():
        stamps.append(time.perf_counter())
    thread.join()
    stamps = np.array(stamps)
    margin = 1e-3
    inside = sum(int(np.count_nonzero((stamps > a + margin) & (stamps < b - margin)))
                 for a, b in spans)
    assert all(b - a > 4 * margin for a, b in spans)
    assert inside > 0
