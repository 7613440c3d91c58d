"""The step count equals the updates applied, wherever an interrupt lands.

A SIGINT reaches Python only between bytecodes: one sent while a compiled
call runs without the GIL is raised as that call returns, after its updates
were applied.  The compiled loops count each update they apply
(Network.iterations, the counter of _optim.step), and the Python side reads
that count back in a ``finally``, so the count is right however the call
ends.  Each test replays the count it finds with train_on_batch on a twin
model and asks for the same weights, bit for bit.
"""
import os
import signal
import threading
import time

import numpy as np
import pytest

import pynn


def _data(dtype, n=6000, n_in=128, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, n_in)).astype(dtype)
    y = rng.normal(size=(n, 10)).astype(dtype)
    return x, y


def _model(dtype, optimizer, n_in=128):
    m = pynn.Sequential([pynn.Dense(256, activation="relu", input_dim=n_in),
                         pynn.Dense(10)], dtype=dtype, seed=7)
    m.compile(loss="mse", optimizer=optimizer)
    return m


OPTIMIZERS = {
    "sgd-momentum": lambda: pynn.SGD(1e-3, momentum=0.9),
    "adam": lambda: pynn.Adam(1e-4),
}


def _replay(dtype, make_opt, x, y, batch_size, n_updates):
    # the same batches in the same order (fit without shuffling), one call each
    twin = _model(dtype, make_opt(), x.shape[1])
    n_batches = -(-x.shape[0] // batch_size)
    for k in range(n_updates):
        rows = slice((k % n_batches) * batch_size, (k % n_batches + 1) * batch_size)
        twin.train_on_batch(x[rows], y[rows])
    return twin


def _assert_count_matches_weights(model, dtype, make_opt, x, y, batch_size):
    n = model.optimizer.iterations
    twin = _replay(dtype, make_opt, x, y, batch_size, n)
    assert twin.optimizer.iterations == n
    for a, b in zip(model.get_weights(), twin.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(model.optimizer.state, twin.optimizer.state)
    return n


@pytest.fixture
def sigint_raises():
    # the interpreter's own handler, whatever the test runner installed
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, old)


def _sigint_after(seconds):
    def send():
        time.sleep(seconds)
        os.kill(os.getpid(), signal.SIGINT)
    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


class _InterruptEarly(pynn.callbacks.Callback):
    """Sends a SIGINT shortly after an epoch begins: it arrives while the
    epoch's single compiled call runs (an epoch lasts far longer)."""

    def __init__(self, delay):
        self.delay, self.thread, self.started = delay, None, None

    def on_epoch_begin(self, epoch, logs=None):
        if self.thread is None and epoch == 1:
            self.started = time.perf_counter()
            self.thread = _sigint_after(self.delay)


@pytest.mark.parametrize("opt_name", sorted(OPTIMIZERS))
def test_real_sigint_inside_a_compiled_epoch(dtype, opt_name, sigint_raises):
    make_opt = OPTIMIZERS[opt_name]
    x, y = _data(dtype)
    m = _model(dtype, make_opt())
    batch_size = 8
    n_batches = -(-x.shape[0] // batch_size)
    cb = _InterruptEarly(delay=0.02)
    start = time.perf_counter()
    m.fit(x, y, epochs=1, batch_size=batch_size, shuffle=False, verbose=0)
    epoch_seconds = time.perf_counter() - start
    with pytest.raises(KeyboardInterrupt):
        m.fit(x, y, epochs=50, batch_size=batch_size, shuffle=False, verbose=0,
              callbacks=[cb])
    cb.thread.join()
    n = _assert_count_matches_weights(m, dtype, make_opt, x, y, batch_size)
    if epoch_seconds > 10 * cb.delay:
        # the signal arrived inside the second epoch's compiled call, which
        # ran to its end: with the timing fit's epoch, three epochs applied,
        # three counted (before the count moved into the compiled loop, the
        # interrupted epoch was lost)
        assert n == 3 * n_batches


def test_real_sigint_inside_a_compiled_step(dtype, sigint_raises):
    # one long train_on_batch: the signal lands in the compiled step
    make_opt = OPTIMIZERS["adam"]
    x, y = _data(dtype, n=40000)
    m = _model(dtype, make_opt())
    start = time.perf_counter()
    m.train_on_batch(x, y)
    step_seconds = time.perf_counter() - start
    thread = _sigint_after(min(0.01, step_seconds / 10))
    with pytest.raises(KeyboardInterrupt):
        for _ in range(1000):
            m.train_on_batch(x, y)
    thread.join()
    n = _assert_count_matches_weights(m, dtype, make_opt, x, y, x.shape[0])
    assert n >= 1


class _Raise(Exception):
    pass


def test_interrupts_at_every_python_boundary(dtype):
    # where the interpreter can raise: in a callback between batches (the
    # per-batch runner), in a schedule evaluated before each step (one
    # compiled call per batch), at each count k
    x, y = _data(dtype, n=400)
    batch_size = 32

    class Stop(pynn.callbacks.Callback):
        def __init__(self, at):
            self.at, self.seen = at, 0

        def on_batch_end(self, batch, logs=None):
            self.seen += 1
            if self.seen == self.at:
                raise KeyboardInterrupt

    for at in (1, 5, 13, 14, 20):
        make_opt = OPTIMIZERS["sgd-momentum"]
        m = _model(dtype, make_opt())
        with pytest.raises(KeyboardInterrupt):
            m.fit(x, y, epochs=3, batch_size=batch_size, shuffle=False, verbose=0,
                  callbacks=[Stop(at)])
        assert _assert_count_matches_weights(m, dtype, make_opt, x, y, batch_size) == at

    for at in (0, 3, 13, 27):
        def schedule(step, at=at):
            if step == at:
                raise KeyboardInterrupt
            return 1e-3

        def make_opt(schedule=schedule):
            return pynn.SGD(schedule, momentum=0.9)
        m = _model(dtype, make_opt())
        with pytest.raises(KeyboardInterrupt):
            m.fit(x, y, epochs=3, batch_size=batch_size, shuffle=False, verbose=0)
        assert m.optimizer.iterations == at
        m.optimizer.learning_rate = 1e-3    # the replay must not stop again

        def replay_opt():
            return pynn.SGD(1e-3, momentum=0.9)
        _assert_count_matches_weights(m, dtype, replay_opt, x, y, batch_size)


def test_optimizer_apply_counts_inside_the_compiled_update(dtype):
    # Optimizer.apply, the update of distributed training: the count comes
    # back from the compiled step, and a refused update is not counted
    opt = pynn.Adam(0.1)
    w = np.ones(4, dtype)
    opt.build(4, dtype)
    opt.apply(w, np.full(4, 0.5, dtype), 4)
    opt.apply(w, np.full(4, 0.5, dtype), 4)
    assert opt.iterations == 2
    before = w.copy()
    with pytest.raises(FloatingPointError):
        opt.apply(w, np.array([np.inf, 0, 0, 0], dtype), 4)
    assert opt.iterations == 2
    np.testing.assert_array_equal(w, before)
