"""The passes outside the products on two threads (pynn/kernels/workers.h,
optim_kernels.pxd, activation_kernels.pxd):
the same bits as on one, the same refusals, and a helper thread that is
really used, shared safely, and survives fork."""
import ctypes
import os
import threading
import time

import numpy as np
import pytest

import pynn
from pynn import _optim
from pynn._dense import MODULE as _dense     # the build that runs

# every optimizer, with the settings that take each of its kernel's branches
OPTIMIZERS = {
    "sgd": lambda: pynn.SGD(0.05),
    "sgd-decay": lambda: pynn.SGD(0.05, weight_decay=1e-3),
    "sgd-classic": lambda: pynn.SGD(0.05, momentum=0.9),
    "sgd-nesterov-decay": lambda: pynn.SGD(0.05, momentum=0.9, nesterov=True,
                                           weight_decay=1e-3),
    "adam": lambda: pynn.Adam(1e-2),
    "adam-decay": lambda: pynn.Adam(1e-2, weight_decay=1e-3),
    "adamw": lambda: pynn.AdamW(1e-2, weight_decay=1e-2),
    "rmsprop-centered": lambda: pynn.RMSprop(1e-2, momentum=0.5, centered=True),
    "nadam": lambda: pynn.Nadam(1e-2),
    "adagrad": lambda: pynn.Adagrad(1e-1),
}


def helper_count(module, handoffs):
    fn = ctypes.CDLL(module.__file__).pynn_worker_count
    fn.restype = ctypes.c_longlong
    return fn(handoffs)


def helper_tasks(module):
    """The shares handed to the helper thread of a compiled module so far
    (one per pass run on two threads; the helper runs it, or its caller
    takes it back when the helper had not begun it yet)."""
    return helper_count(module, 1)


def helper_ran(module):
    """The shares the helper thread itself has run so far."""
    return helper_count(module, 0)


def problem(n, dtype, seed=0):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(n).astype(dtype)
    grads = [rng.standard_normal(n).astype(dtype) for _ in range(3)]
    return w, grads


def run_steps(name, w, grads, decay_end, n_threads, parallel_min):
    """Three updates through the kernel: the parameters, the state and
    the helper's tasks they took."""
    opt = OPTIMIZERS[name]()
    opt.build(w.shape[0], w.dtype)
    w = w.copy()
    count = np.zeros(1, np.int64)
    before = helper_tasks(_optim)
    for g in grads:
        opt.iterations = int(count[0])
        _optim.step(opt.code, w, g.copy(), opt.state, opt.hyper(), decay_end, count,
                    n_threads=n_threads, parallel_min=parallel_min)
    return w, opt.state, helper_tasks(_optim) - before


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("n, decay_end", [(33, 17), (100, 50), (1001, 0), (1001, 1001),
                                          (4097, 1), (4097, 4096), (65537, 30000)])
def test_two_threads_give_the_bits_of_one(name, n, decay_end, dtype):
    # a cut at a multiple of 16 inside the decayed variable, inside the
    # other, or at the end of one; odd sizes leave tails on both sides
    w, grads = problem(n, dtype)
    w1, s1, t1 = run_steps(name, w, grads, decay_end, 1, 0)
    w2, s2, t2 = run_steps(name, w, grads, decay_end, 2, 0)
    assert t1 == 0
    assert t2 == 2 * len(grads)        # the check and the update, each step
    assert not np.array_equal(w1, w)
    np.testing.assert_array_equal(w1, w2)
    np.testing.assert_array_equal(s1, s2)


@pytest.mark.parametrize("name", ["sgd-nesterov-decay", "adam", "rmsprop-centered"])
def test_the_threshold_decides(name, dtype):
    # the kernels' own threshold: below it one thread, from it two, with
    # the same bits either way
    from pynn._optim import PARALLEL_MIN_ELEMENTS as limit
    for n in (limit - 1, limit, limit + 17):
        w, grads = problem(n, dtype, seed=n)
        w1, s1, t1 = run_steps(name, w, grads[:1], n // 3, 1, -1)
        w2, s2, t2 = run_steps(name, w, grads[:1], n // 3, 2, -1)
        assert t1 == 0 and t2 == (0 if n < limit else 2)
        np.testing.assert_array_equal(w1, w2)
        np.testing.assert_array_equal(s1, s2)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("where", ["first", "second"])
@pytest.mark.parametrize("bad", ["nan-gradient", "overflow"])
def test_a_refusal_in_either_share_changes_nothing(name, where, bad, dtype):
    n = 4099
    w, grads = problem(n, dtype)
    opt = OPTIMIZERS[name]()
    opt.build(n, dtype)
    count = np.zeros(1, np.int64)
    _optim.step(opt.code, w, grads[0].copy(), opt.state, opt.hyper(), 2000, count,
                n_threads=2, parallel_min=0)        # a state that is not all zeros
    g = grads[1].copy()
    i = 100 if where == "first" else n - 100
    if bad == "nan-gradient":
        g[i] = np.nan
    else:
        # finite, but the update (or g * g in the state) overflows
        g[i] = np.finfo(dtype).max
        w[i] = -0.99 * np.finfo(dtype).max
    w_before, state_before, g_before = w.copy(), opt.state.copy(), g.copy()
    before = helper_tasks(_optim)
    opt.iterations = int(count[0])
    with pytest.raises(FloatingPointError):
        _optim.step(opt.code, w, g, opt.state, opt.hyper(), 2000, count,
                    n_threads=2, parallel_min=0)
    assert helper_tasks(_optim) - before == 1       # the check ran on two threads
    assert count[0] == 1
    np.testing.assert_array_equal(w, w_before)
    np.testing.assert_array_equal(opt.state, state_before)
    np.testing.assert_array_equal(g, g_before)


def test_the_helper_flushes_subnormals_as_its_caller_does():
    # flush-to-zero is per thread: the share on the helper must read and
    # write subnormals as the caller's share does (as zero)
    n = 4096
    tiny = np.finfo(np.float32).smallest_normal / 8
    w = np.full(n, tiny, np.float32)
    g = np.zeros(n, np.float32)
    results = []
    for n_threads in (1, 2):
        v = np.full(n, tiny, np.float32)
        wt = w.copy()
        _optim.step(0, wt, g.copy(), v, [0.1, 0.5, 0.0, 0.0], n, n_threads=n_threads,
                    parallel_min=0)
        results.append((wt, v))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])
    assert not results[1][0].any() and not results[1][1].any()


def test_the_helper_takes_the_mode_its_caller_has_now():
    # the helper thread exists already (started by the tests above, in
    # the mode of that call); a caller rounding upwards must have both
    # shares rounded upwards
    try:
        libm = ctypes.CDLL("libm.so.6")
    except OSError:
        pytest.skip("no C99 fesetround to call")
    fe_upward = {"x86_64": 0x800, "AMD64": 0x800, "aarch64": 0x400000}.get(os.uname().machine)
    if fe_upward is None:
        pytest.skip("FE_UPWARD's value on this processor is not known here")
    n = 1 << 19
    w, grads = problem(n, np.float32)
    run_steps("adam", w, grads[:1], n // 2, 2, 0)      # the helper started
    nearest = run_steps("adam", w, grads, n // 2, 1, 0)
    assert libm.fesetround(fe_upward) == 0
    try:
        one = run_steps("adam", w, grads, n // 2, 1, 0)
        for _ in range(50):                # until the helper runs a share itself
            ran = helper_ran(_optim)
            two = run_steps("adam", w, grads, n // 2, 2, 0)
            if helper_ran(_optim) > ran:
                break
    finally:
        libm.fesetround(0)
    assert helper_ran(_optim) > ran, "the helper never ran a share"
    assert not np.array_equal(one[0], nearest[0])
    np.testing.assert_array_equal(one[0], two[0])
    np.testing.assert_array_equal(one[1], two[1])


# ---- whole models: the network's thread policy ----------------------------

def element_threads(net, count):
    """The model's products on two BLAS threads and its other passes on
    count threads: the BLAS's results may differ with its thread count
    (OpenBLAS's do on some shapes), pynn's own passes must not."""
    net._net.set_thread_policy(pynn._threads.local_thread_setter(), 2,
                               pynn._threads.MIN_PARALLEL_FLOPS,
                               pynn._threads.thread_count_getter(), count)
    return net

def big_model(dtype, optimizer, n_threads, frozen=False):
    # 620k parameters, above the kernels' threshold; a frozen first layer
    # leaves a hole in the variables' rows
    layers = [pynn.Dense(64, activation="tanh", input_dim=40),
              pynn.Dense(512, activation="relu"), pynn.Dense(1024, activation="relu"),
              pynn.Dense(8)]
    net = pynn.Sequential(layers, dtype=dtype, seed=3, n_threads=n_threads)
    if frozen:
        layers[0].trainable = False
    net.compile(loss="mse", optimizer=optimizer)
    return net if n_threads is None else element_threads(net, n_threads)


def data(dtype, n=96):
    rng = np.random.default_rng(1)
    return (rng.standard_normal((n, 40)).astype(dtype),
            rng.standard_normal((n, 8)).astype(dtype))


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_a_model_trained_on_one_and_two_threads_has_the_same_bits(name, dtype):
    x, y = data(dtype)
    nets, tasks = [], []
    for n_threads in (1, 2):
        net = big_model(dtype, OPTIMIZERS[name](), n_threads, frozen=name == "adam")
        assert net.count_params() >= _optim.PARALLEL_MIN_ELEMENTS
        before = helper_tasks(_dense)
        net.fit(x, y, epochs=2, batch_size=32, verbose=0)        # the compiled epochs
        for k in range(0, x.shape[0], 48):
            net.train_on_batch(x[k:k + 48], y[k:k + 48])
        tasks.append(helper_tasks(_dense) - before)
        nets.append(net)
    # six updates in the epochs (and at least their first check), then two
    # checked steps
    assert tasks[0] == 0 and tasks[1] >= 6 + 1 + 2 * 2
    np.testing.assert_array_equal(nets[0].params, nets[1].params)
    np.testing.assert_array_equal(nets[0].optimizer.state, nets[1].optimizer.state)


ACTIVATIONS = ["relu", "tanh", "sigmoid", "softmax", "leaky_relu", "elu", "selu",
               "gelu", "swish", "softplus"]


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_big_activation_passes_on_two_threads_give_the_bits_of_one(activation, dtype):
    # a 515 x 160 hidden output (an odd number of rows, above the
    # threshold): its forward and backward passes cut between two rows;
    # 50k parameters, below the update's threshold
    limit = _dense.ACT_PARALLEL_MIN_ELEMENTS
    rng = np.random.default_rng(2)
    x = rng.standard_normal((515, 40)).astype(dtype)
    y = rng.standard_normal((515, 8)).astype(dtype)
    results, tasks = [], []
    for n_threads in (1, 2):
        net = pynn.Sequential([pynn.Dense(160, activation=activation, input_dim=40),
                               pynn.Dense(8)], dtype=dtype, seed=4, n_threads=n_threads)
        net.compile(loss="mse", optimizer=pynn.SGD(0.01, momentum=0.9))
        element_threads(net, n_threads)
        before = helper_tasks(_dense)
        net.train_on_batch(x, y)
        net.fit(x, y, epochs=1, batch_size=515, verbose=0)
        out = net.predict(x)
        tasks.append(helper_tasks(_dense) - before)
        results.append((net.params.copy(), out))
    assert 515 * 160 >= limit and net.count_params() < _optim.PARALLEL_MIN_ELEMENTS
    cheap = activation in ("relu", "leaky_relu")     # their forward pass stays on one
    backward = 0 if cheap and 515 * 160 < 4 * limit else 1
    # and, for the two training steps, the first layer's products in halves
    # (515 x 40 x 160 multiply-adds: split) forward and backward, and the
    # update's check and update by owner; fit's shuffled batch gathered in halves
    split = 2 * (2 + 2) + 1
    assert 515 * 40 * 160 >= _dense.SPLIT_MIN_MACS
    assert tasks == [0, 2 * (backward + (0 if cheap else 1)) + (0 if cheap else 1) + split]
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])


def test_small_activation_passes_stay_on_one_thread():
    x, y = data(np.float32, 16)
    net = pynn.Sequential([pynn.Dense(160, activation="tanh", input_dim=40),
                           pynn.Dense(8)], dtype="float32", seed=4, n_threads=2)
    net.compile(loss="mse", optimizer="sgd")
    before = helper_tasks(_dense)
    net.train_on_batch(x, y)
    assert helper_tasks(_dense) == before


@pytest.mark.parametrize("n_threads", [1, 2])
def test_the_compiled_epoch_equals_train_on_batch(n_threads, dtype):
    from conftest import assert_fit_equals_steps
    x, y = data(dtype, 64)
    assert_fit_equals_steps(lambda: big_model(dtype, pynn.Adam(1e-3), n_threads),
                            x, y, epochs=2, batch_size=16)


def test_the_blas_thread_count_decides_without_n_threads():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if pynn._threads.thread_count_getter() == 0:
        pytest.skip("the BLAS gives no thread count")
    x, y = data(np.float32, 32)
    net = big_model(np.float32, pynn.SGD(0.01, momentum=0.9), None)
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        before = helper_tasks(_dense)
        net.train_on_batch(x, y)
        assert helper_tasks(_dense) == before
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        count = ctypes.CFUNCTYPE(ctypes.c_int)(pynn._threads.thread_count_getter())
        if count() < 2:
            pytest.skip("the BLAS runs one thread here")
        before = helper_tasks(_dense)
        net.train_on_batch(x, y)
        # the split products of the 512- and 1024-unit layers, forward and
        # backward, then the update's check and update
        assert helper_tasks(_dense) == before + 2 * 2 + 2


def test_several_python_threads_share_the_helper():
    # four networks trained at once: whoever finds the helper busy runs
    # both shares itself; every result is the one trained alone
    x, y = data(np.float32)

    def train(net):
        for _ in range(3):
            net.fit(x, y, epochs=1, batch_size=16, verbose=0)

    alone = big_model(np.float32, pynn.Adam(1e-3), 1)
    train(alone)
    nets = [big_model(np.float32, pynn.Adam(1e-3), 2) for _ in range(4)]
    threads = [threading.Thread(target=train, args=(net,)) for net in nets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for net in nets:
        np.testing.assert_array_equal(net.params, alone.params)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_child_gets_a_helper_of_its_own():
    # the kernel alone, without a product: MKL's OpenMP threads can hang a
    # forked child's GEMM, whatever pynn's helper does
    n = 1 << 19
    w, grads = problem(n, np.float32)
    opt = OPTIMIZERS["adam"]()
    opt.build(n, w.dtype)
    count = np.zeros(1, np.int64)

    def step(g, n_threads=2):
        opt.iterations = int(count[0])
        _optim.step(opt.code, w, g.copy(), opt.state, opt.hyper(), n // 2, count,
                    n_threads=n_threads, parallel_min=0)

    step(grads[0])                           # the parent's helper runs
    pid = os.fork()
    if pid == 0:
        # the child: no helper thread until it asks for one; it must get
        # one that runs shares, and the bits of one thread
        status = 1
        try:
            w0, state0, count0 = w.copy(), opt.state.copy(), count.copy()
            ran, k = helper_ran(_optim), 0
            while helper_ran(_optim) == ran and k < 100:
                step(grads[1])
                k += 1
            w2, state2 = w.copy(), opt.state.copy()
            w[:], opt.state[:], count[:] = w0, state0, count0
            for _ in range(k):
                step(grads[1], n_threads=1)
            if (helper_ran(_optim) > ran and np.array_equal(w, w2)
                    and np.array_equal(opt.state, state2)):
                status = 0
        finally:
            os._exit(status)
    deadline = time.monotonic() + 60
    while True:
        done, code = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            pytest.fail("the forked child hung in a two-thread pass")
        time.sleep(0.01)
    assert os.waitstatus_to_exitcode(code) == 0
    before = helper_tasks(_optim)
    step(grads[1])                           # the parent's helper still serves it
    assert helper_tasks(_optim) == before + 2
