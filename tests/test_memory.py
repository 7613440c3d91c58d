"""No leaks: repeated steps, fits and save/load cycles allocate nothing that stays.

tracemalloc sees every Python object and every NumPy buffer (NumPy reports
its allocations to it), so growth of the traced total after a warm-up is a
leak, whatever its size.  examples/memory_check.py measures resident memory
over 10**4 steps and 10**3 save/load cycles.
"""
import gc
import sys
import tracemalloc

import numpy as np

import pynn
from conftest import make_model

rng = np.random.default_rng(0)
X = rng.standard_normal((64, 20)).astype(np.float32)
Y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 64)]


def make():
    return make_model((32, "relu"), (3, "softmax"), input_dim=20, dtype="float32",
                      loss="categorical_crossentropy", optimizer=pynn.Adam(1e-3),
                      metrics=["accuracy"])


def traced_growth(work, repeats):
    """Bytes allocated and kept per call of ``work``, after a warm-up.

    Measured between ``repeats`` and ``3 * repeats`` calls, so that one-off
    growth (a cache filling, a dict resizing somewhere) in the first window
    is not taken for a leak; a leak grows in proportion to the calls.
    """
    for _ in range(repeats):
        work()
    gc.collect()
    tracemalloc.start()
    try:
        for _ in range(repeats):
            work()
        gc.collect()
        first = tracemalloc.get_traced_memory()[0]
        for _ in range(2 * repeats):
            work()
        gc.collect()
        return (tracemalloc.get_traced_memory()[0] - first) / (2 * repeats)
    finally:
        tracemalloc.stop()


def test_training_steps_do_not_leak():
    net = make()
    refs = [sys.getrefcount(a) for a in (net.params, net.grads, net.optimizer.state)]

    def work():
        net.train_on_batch(X, Y)
        net.gradients(X[:8], Y[:8])

    # the smallest Python object is 16 bytes: a leaked object per step shows
    assert traced_growth(work, 500) < 8
    assert [sys.getrefcount(a) for a in (net.params, net.grads, net.optimizer.state)] == refs


def test_fit_predict_evaluate_do_not_leak():
    net = make()

    def work():
        net.fit(X, Y, epochs=1, batch_size=16, verbose=0, validation_data=(X, Y))
        net.predict(X)
        net.evaluate(X, Y)

    assert traced_growth(work, 20) < 64


def test_save_load_cycles_do_not_leak(tmp_path):
    net = make()
    net.fit(X, Y, epochs=1, verbose=0)
    path = tmp_path / "m.npz"

    def work():
        net.save(path)
        pynn.load(path)

    # Allocator and cache noise here settles at some hundred bytes per cycle
    # over the first thousand (measured: 5 KB, then 1.2 KB, then 0.6 KB per
    # 500 cycles); a leaked model, buffer or file handle is over 4 KB a cycle.
    assert traced_growth(work, 40) < 1024


def test_models_are_freed():
    # nothing (a cache, a callback, the compiled network) keeps a model alive
    import weakref
    net = make()
    net.fit(X, Y, epochs=1, verbose=0, callbacks=[pynn.EarlyStopping(monitor="loss")])
    ref = weakref.ref(net)
    params = weakref.ref(net.params.base if net.params.base is not None else net.params)
    del net
    gc.collect()
    assert ref() is None and params() is None
