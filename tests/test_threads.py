"""BLAS thread policy: per-call, thread-local, and never changing the results' meaning."""
import ctypes

import numpy as np
import pytest

import pynn
from pynn import _threads

needs_setter = pytest.mark.skipif(_threads.local_thread_setter() == 0,
                                  reason="SciPy's BLAS has no openblas_set_num_threads_local")


def blas_threads():
    from scipy.linalg import cython_blas
    lib = ctypes.CDLL(cython_blas.__file__)
    for name in ("openblas_get_num_threads", "scipy_openblas_get_num_threads"):
        fn = getattr(lib, name, None)
        if fn is not None:
            fn.restype = ctypes.c_int
            return fn()
    pytest.skip("no openblas_get_num_threads")


def train(n_threads, dtype=np.float64):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 300)).astype(dtype)
    y = rng.standard_normal((256, 20)).astype(dtype)
    net = pynn.Sequential([pynn.Dense(200, activation="relu", input_dim=300),
                           pynn.Dense(20)], dtype=dtype, seed=0, n_threads=n_threads)
    net.compile(loss="mse", optimizer=pynn.SGD(learning_rate=0.01, momentum=0.9))
    net.fit(x, y, epochs=2, batch_size=128, verbose=0)
    net.train_on_batch(x, y)
    return net


@needs_setter
@pytest.mark.parametrize("n_threads", [None, 1, 2])
def test_calls_leave_the_process_thread_count_alone(n_threads):
    before = blas_threads()
    train(n_threads)
    assert blas_threads() == before


@needs_setter
def test_threadpoolctl_limit_is_respected_and_kept():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        assert blas_threads() == 1
        train(None)
        assert blas_threads() == 1


@needs_setter
@pytest.mark.parametrize("n_threads", [None, 1, 2])
def test_a_small_step_keeps_threadpoolctl_s_limit(n_threads):
    # a step small enough for one thread (and a forced count) sets the
    # count for its products and puts back the one it found: the limit's
    threadpoolctl = pytest.importorskip("threadpoolctl")
    net = pynn.Sequential([pynn.Dense(8, activation="relu", input_dim=4), pynn.Dense(1)],
                          seed=0, n_threads=n_threads)
    net.compile(loss="mse", optimizer="sgd")
    x, y = np.ones((4, 4)), np.ones((4, 1))
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        net.train_on_batch(x, y)
        net.fit(x, y, epochs=1, verbose=0)
        net.predict(x, verbose=0)
        assert blas_threads() == 1
    before = blas_threads()
    net.train_on_batch(x, y)
    assert blas_threads() == before


def test_thread_count_does_not_change_the_results():
    a, b = train(1), train(2)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-12, atol=1e-12)


def test_bad_n_threads():
    with pytest.raises(ValueError, match="n_threads.*0"):
        pynn.Sequential(n_threads=0)
    with pytest.raises(TypeError, match="n_threads"):
        pynn.Sequential(n_threads=1.5)


def test_the_blas_is_asked_and_told_only_when_its_answer_matters():
    # Counting stand-ins for the BLAS's per-thread setter and its count: a
    # step whose products all go to SciPy's OpenBLAS small path (at most
    # PYNN_SMALL_GEMM_MAX multiply-adds, never threaded) sets no count, and
    # one with no pass big enough to split between threads asks for none
    told, asked = [], []
    setter = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int)(lambda n: told.append(n) or 2)
    getter = ctypes.CFUNCTYPE(ctypes.c_int)(lambda: asked.append(1) or 1)
    address = [ctypes.cast(f, ctypes.c_void_p).value for f in (setter, getter)]
    rng = np.random.default_rng(0)

    def model(n_in, width):
        net = pynn.Sequential([pynn.Dense(width, activation="relu", input_dim=n_in),
                               pynn.Dense(10)], dtype=np.float32, seed=0)
        net.compile(loss="mse", optimizer=pynn.SGD(0.01, momentum=0.9))
        net._net.set_thread_policy(address[0], 0, _threads.MIN_PARALLEL_FLOPS, address[1], 0)
        return net

    def step(net, rows):
        told.clear(), asked.clear()
        x = rng.standard_normal((rows, net.layers[0].input_dim)).astype(np.float32)
        net.train_on_batch(x, rng.standard_normal((rows, 10)).astype(np.float32))
        return list(told), len(asked)

    tiny = model(64, 32)                     # 16 x 64 x 32 = 32768 multiply-adds
    assert step(tiny, 16) == ([], 0)
    assert step(tiny, 17) == ([1, 2], 0)     # one more row: MKL's (or OpenBLAS's) count
    mnist = model(784, 128)                  # 13 MFLOP: one thread, put back after;
    assert step(mnist, 32) == ([1, 2], 1)    # its first layer's products may split
    small = model(64, 256)                   # 8 x 64 x 256: no pass to share
    assert step(small, 8) == ([1, 2], 0)
    # 512 rows: a training step splits its first layer (one BLAS thread per
    # half) and reads the count for the helper
    assert step(mnist, 512) == ([1, 2], 1)
    # predicting 1024 rows (209 MFLOP, no split): the products keep the BLAS's
    # count; 1024 x 128 outputs make an activation pass that may split
    told.clear(), asked.clear()
    mnist.predict(rng.standard_normal((1024, 784)).astype(np.float32), verbose=0)
    assert (told, len(asked)) == ([], 1)
