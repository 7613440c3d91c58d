"""Threads: no shared state between models, and one model shared between
threads is serialised by its lock, never corrupted.

The kernels release the GIL, so these threads really do run at once.
n_threads=1 pins the BLAS's own threading, whose partitioning of a product
could otherwise depend on what else is running (see README, reproducibility).
"""
import threading

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
            seen["evaluate"].append(net.evaluate(X, Y)["loss"])

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
    net = make(7, "adam")
    saved = []
    started = threading.Event()

    def trainer():
        started.set()
        net.fit(X, Y, epochs=3, batch_size=8, verbose=0)

    def saver():
        started.wait()
        for i in range(3):
            saved.append(net.save(tmp_path / f"m{i}.npz"))

    run_threads(trainer, saver)
    for path in saved:
        back = pynn.load(path)
        # a consistent snapshot: the Adam step count matches the state it
        # was saved with, i.e. it is the start or the end of the fit
        assert back.optimizer.iterations in (0, net.optimizer.iterations)
        if back.optimizer.iterations:
            np.testing.assert_array_equal(back.params, net.params)
