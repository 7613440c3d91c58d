"""A Dense layer's products in two halves of its units, on two cores.

A training step whose products run on one thread each splits every Dense
layer of at least SPLIT_MIN_MACS multiply-adds per product: the helper
thread computes the forward and weight-gradient products of the second
half of the units and updates those rows, and dX is summed from the two
halves' shares (dense.pyx, "A Dense layer's products in two halves").  The
split is a function of the shapes alone: with the helper or without it the
step computes the same halves, to the same bits.
"""
import ctypes

import numpy as np
import pytest

import pynn
from conftest import assert_fit_equals_steps, assert_shuffled_epoch_equals_steps, make_model
from pynn import _threads, reference
from pynn._dense import MODULE as built
from pynn.errors import DivergenceError

# 300-256-256-10 at batch 32: the first two layers' products are of 2.5M and
# 2.1M multiply-adds (split; the second with a dX), the last's of 82k (not);
# 23 MFLOP a step, below the one-thread threshold
LAYERS = ((256, "relu"), (256, "tanh"), (10, None))
N_IN, BATCH = 300, 32
rng = np.random.default_rng(21)
X = rng.standard_normal((4 * BATCH, N_IN))
Y = rng.standard_normal((4 * BATCH, 10))


def model(dtype, optimizer=None, n_threads=None):
    return make_model(*LAYERS, input_dim=N_IN, dtype=dtype, seed=4, n_threads=n_threads,
                      optimizer=optimizer or pynn.SGD(0.01, momentum=0.9, nesterov=True))


def helper_count(handed):
    fn = ctypes.CDLL(built.__file__).pynn_worker_count
    fn.restype = ctypes.c_longlong
    return fn(handed)


def blas_threads():
    getter = _threads.thread_count_getter()
    return ctypes.CFUNCTYPE(ctypes.c_int)(getter)() if getter else 1


def test_the_rule_splits_the_big_layers_of_a_one_thread_step():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        if blas_threads() < 2:
            pytest.skip("the BLAS runs one thread here: no helper")
        counts_of_splits()


def counts_of_splits():
    net = model(np.float32)
    x, y = X[:BATCH].astype(np.float32), Y[:BATCH].astype(np.float32)
    net.train_on_batch(x, y)
    before = helper_count(True)
    net.train_on_batch(x, y)
    # two split layers' forward and backward products, the check and the update
    assert helper_count(True) - before == 2 + 2 + 2
    # a step of 8 rows: 8 x 300 x 256 = 614k multiply-adds in the first
    # layer, 524k in the second (the threshold, split), none above
    before = helper_count(True)
    net.train_on_batch(x[:8], y[:8])
    assert helper_count(True) - before == 2 + 2 + 2
    before = helper_count(True)
    net.train_on_batch(x[:7], y[:7])    # 7 rows: the second layer's 459k are not
    assert helper_count(True) - before == 1 + 1 + 2


@pytest.mark.parametrize("loss", ["mse", "categorical_crossentropy"])
def test_split_steps_follow_the_reference(dtype, loss):
    net = make_model((256, "relu"), (256, "tanh"), (10, "softmax" if loss != "mse" else None),
                     input_dim=N_IN, dtype=dtype, seed=4, loss=loss,
                     optimizer=pynn.SGD(0.01, momentum=0.9, nesterov=True))
    acts = ["relu", "tanh", "softmax" if loss != "mse" else "linear"]
    ref = reference.ReferenceNetwork(net.get_weights(), acts, loss=loss, learning_rate=0.01,
                                     momentum=0.9, nesterov=True)
    y = Y if loss == "mse" else np.eye(10)[rng.integers(0, 10, len(Y))]
    x, y = X.astype(dtype), y.astype(dtype)
    for k in range(0, len(X), BATCH):
        net.train_on_batch(x[k:k + BATCH], y[k:k + BATCH])
        ref.train_step(x[k:k + BATCH], y[k:k + BATCH])
    tol = 1e-4 if dtype == np.float32 else 1e-11
    for a, b in zip(net.get_weights(), ref.get_weights()):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def test_split_gradients_match_finite_differences():
    net = make_model((64, "tanh"), (64, "tanh"), (3, None), input_dim=200, dtype="float64",
                     seed=2)
    x, y = rng.standard_normal((48, 200)), rng.standard_normal((48, 3))
    assert 48 * 64 * 64 < 2 ** 19 <= 48 * 200 * 64     # the first layer splits
    _, grads = net.gradients(x, y)
    weights = net.get_weights()
    for i in (0, 2):                                   # W1 (split) and W2 (dX from halves)
        for r, c in ((0, 0), (40, 7), (63, 63 if i else 199)):
            w = weights[i]
            old = w[r, c]
            values = []
            for step in (1e-6, -1e-6):
                w[r, c] = old + step
                net.set_weights(weights)
                values.append(net.evaluate(x, y, verbose=0))
            w[r, c] = old
            net.set_weights(weights)
            assert grads[i][r, c] == pytest.approx((values[0] - values[1]) / 2e-6,
                                                   rel=1e-6, abs=1e-9)


def test_the_helper_changes_no_bit(dtype):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    x, y = X.astype(dtype), Y.astype(dtype)

    def train(net):
        net.fit(x, y, epochs=2, batch_size=BATCH, verbose=0)
        for k in range(0, len(x), BATCH):
            net.train_on_batch(x[k:k + BATCH], y[k:k + BATCH])
        return net

    two = train(model(dtype))                              # the helper, if 2 cores
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        limited = train(model(dtype))                      # the caller alone
    pinned = train(model(dtype, n_threads=1))              # the caller alone
    for a, b, c in zip(two.get_weights(), limited.get_weights(), pinned.get_weights()):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    np.testing.assert_array_equal(two.optimizer.state, pinned.optimizer.state)


@pytest.mark.parametrize("optimizer", ["adam", "rmsprop", "sgd"])
def test_a_compiled_epoch_equals_its_steps_with_split_products(dtype, optimizer):
    x, y = X.astype(dtype), Y.astype(dtype)
    order = rng.permutation(len(x)).astype(np.intp)
    assert_shuffled_epoch_equals_steps(lambda: model(dtype, optimizer), x, y, order, BATCH)
    assert_fit_equals_steps(lambda: model(dtype, optimizer), x, y, batch_size=BATCH)


def test_a_refusal_in_the_helpers_rows_changes_nothing():
    # Input column 5 is zero: W1[200, 5] meets only zeros in the forward pass
    # and its gradient is 0, but a velocity of 3e38 there makes the update
    # overflow, in the rows the helper updates (units 128..255)
    net = model(np.float32, pynn.SGD(0.01, momentum=0.9))
    x, y = X[:BATCH].astype(np.float32), Y[:BATCH].astype(np.float32)
    x[:, 5] = 0
    net.train_on_batch(x, y)
    W = net.layers[0].W
    index = (W.ctypes.data - net.params.ctypes.data) // W.itemsize + 200 * N_IN + 5
    assert np.shares_memory(W, net.params)
    W[200, 5] = 3e38
    net.optimizer.state[index] = 3e38
    params, state = net.params.copy(), net.optimizer.state.copy()
    iterations = net.optimizer.iterations
    with pytest.raises(DivergenceError):
        net.train_on_batch(x, y)
    np.testing.assert_array_equal(net.params, params)
    np.testing.assert_array_equal(net.optimizer.state, state)
    assert net.optimizer.iterations == iterations


@pytest.mark.parametrize("dead", ["first", "second"])
@pytest.mark.parametrize("bad", ["overflow", "nan"])
@pytest.mark.parametrize("batch", [2, 3])
def test_an_epoch_refuses_a_gradient_that_is_not_finite_in_one_halfs_rows(dtype, dead, bad,
                                                                          batch):
    # The compiled epoch bounds the split layers' gradients in their halves
    # (the rows each core wrote) and, while the bounds vouch for it, skips
    # the exact check.  The units of one half of the first layer are dead
    # (bias -1e4): their gradient is 0.  Input column 7 meets zero weights,
    # so the forward pass never sees it; in the bad batch one sample holds
    # the largest finite value there (two samples the largest of either
    # sign, for a NaN) and targets of 1e6, so dW1[:, 7] is not finite in
    # the other half's rows alone.  A bound missing that half would let the
    # step through.  Batch 3 is the epoch's last, of 6 rows: no layer
    # splits there, and the bound of the batch before must not be reused.
    rows = slice(0, 128) if dead == "first" else slice(128, 256)

    def make():
        net = model(dtype, pynn.SGD(0.01, momentum=0.9))
        net.layers[0].W[:, 7] = 0
        net.layers[0].b[rows] = -1e4
        return net

    huge = np.finfo(dtype).max
    n = 3 * BATCH + 6 if batch == 3 else 4 * BATCH
    x, y = X[:n].astype(dtype), Y[:n].astype(dtype)
    x[:, 7] = 0
    x[batch * BATCH + 2, 7] = huge
    if bad == "nan":
        x[batch * BATCH + 4, 7] = -huge
    y[batch * BATCH:(batch + 1) * BATCH] = 1e6
    order = np.arange(n, dtype=np.intp)
    n_batches = -(-n // BATCH)
    from pynn.training.runners import run_batches
    net, before = make(), make()
    losses = np.empty(n_batches)
    assert run_batches(before, x, y, order, BATCH, 0, batch, losses) == batch
    handed = helper_count(True)
    assert run_batches(net, x, y, order, BATCH, 0, n_batches, losses) == batch
    if blas_threads() >= 2 and _threads.local_thread_setter() is not None:
        assert helper_count(True) > handed         # the steps did split
    for got, expected in zip(net.get_weights(), before.get_weights()):
        np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(net.optimizer.state, before.optimizer.state)
    # the same step alone is refused by the exact check
    with pytest.raises(DivergenceError):
        net.train_on_batch(x[batch * BATCH:(batch + 1) * BATCH],
                           y[batch * BATCH:(batch + 1) * BATCH])
