import numpy as np
import pytest

# finite differences, one helper for every test: the one check_gradients uses
from pynn.gradcheck import central_differences  # noqa: F401

# Tolerances per dtype for comparisons of compiled kernels with the NumPy
# reference: both are correct, but sum in different orders.
TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-12, atol=1e-13)}

ACTIVATIONS = ["linear", "relu", "tanh", "sigmoid", "softmax"]


@pytest.fixture(params=[np.float32, np.float64], ids=["float32", "float64"])
def dtype(request):
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def assert_close(actual, desired, dtype, scale=1.0):
    tol = TOL[dtype]
    np.testing.assert_allclose(actual, desired, rtol=tol["rtol"] * scale,
                               atol=tol["atol"] * scale)


def make_model(*layers, input_dim, dtype="float64", seed=0, loss="mse", optimizer="sgd",
               metrics=None, n_threads=None):
    """A compiled Sequential, the model factory of the tests.

    ``layers`` are ``(units, activation)`` pairs, the first layer taking
    ``input_dim`` inputs; the rest goes to Sequential and compile.
    """
    import pynn
    dense = [pynn.Dense(units, activation=act, input_dim=input_dim if i == 0 else None)
             for i, (units, act) in enumerate(layers)]
    net = pynn.Sequential(dense, dtype=dtype, seed=seed, n_threads=n_threads)
    net.compile(loss=loss, optimizer=optimizer,
                metrics=None if metrics is None else list(metrics))
    return net


def assert_fit_equals_steps(make, x, y, epochs=2, batch_size=8):
    """fit's compiled epochs (no shuffling) and train_on_batch on the same
    batches leave two models made by ``make()`` with the same parameters
    and optimizer state, bit for bit."""
    fitted, stepped = make(), make()
    fitted.fit(x, y, epochs=epochs, batch_size=batch_size, shuffle=False, verbose=0)
    for _ in range(epochs):
        for k in range(0, x.shape[0], batch_size):
            stepped.train_on_batch(x[k:k + batch_size], y[k:k + batch_size])
    np.testing.assert_array_equal(fitted.params, stepped.params)
    np.testing.assert_array_equal(fitted.optimizer.state, stepped.optimizer.state)


def assert_shuffled_epoch_equals_steps(make, x, y, order, batch_size):
    """The compiled epoch over the rows ``order`` (gather and steps in C)
    and train_on_batch on the same rows gathered in NumPy: the same batch
    losses and weights, bit for bit.  Returns both models."""
    from pynn.training.runners import run_batches
    a, b = make(), make()
    n_batches = -(-x.shape[0] // batch_size)
    losses = np.empty(n_batches)
    assert run_batches(a, x, y, order, batch_size, 0, n_batches, losses) == n_batches
    expected = [b.train_on_batch(x[order[k:k + batch_size]], y[order[k:k + batch_size]])
                for k in range(0, x.shape[0], batch_size)]
    np.testing.assert_array_equal(losses, expected)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    return a, b
