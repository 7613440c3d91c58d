"""Bad input is refused with a clear error before any compiled code runs."""
import numpy as np
import pytest

import pynn


@pytest.fixture
def net():
    net = pynn.Sequential([pynn.Dense(4, activation="relu", input_dim=3), pynn.Dense(2)], seed=0)
    net.compile(loss="mse", optimizer=pynn.SGD(learning_rate=0.1))
    return net


X = np.ones((10, 3))
Y = np.ones((10, 2))


def test_wrong_number_of_features(net):
    with pytest.raises(ValueError, match="5 features.*expects 3"):
        net.fit(np.ones((10, 5)), Y, verbose=0)
    with pytest.raises(ValueError, match="5 features"):
        net.predict(np.ones((10, 5)))


def test_x_and_y_lengths_differ(net):
    with pytest.raises(ValueError, match="10 and 9"):
        net.fit(X, Y[:9], verbose=0)


def test_wrong_ndim(net):
    with pytest.raises(ValueError, match=r"2-D.*\(10, 3, 1\)"):
        net.predict(X[..., None])
    with pytest.raises(ValueError, match=r"shape \(n_samples, 2\).*\(10, 3\)"):
        net.train_on_batch(X, np.ones((10, 3)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values(net, bad):
    x = X.copy()
    x[3, 1] = bad
    with pytest.raises(ValueError, match="x contains 1 NaN or infinite"):
        net.fit(x, Y, verbose=0)
    y = Y.copy()
    y[0, 0] = bad
    with pytest.raises(ValueError, match="y contains 1 NaN or infinite"):
        net.train_on_batch(X, y)


def test_unknown_names():
    with pytest.raises(ValueError, match="'relux'.*valid names.*relu"):
        pynn.Dense(3, activation="relux")
    net = pynn.Sequential([pynn.Dense(1, input_dim=1)])
    with pytest.raises(ValueError, match="'msa'"):
        net.compile(loss="msa")
    with pytest.raises(ValueError, match="'adadelta'"):
        net.compile(optimizer="adadelta")


def test_fit_before_compile():
    net = pynn.Sequential([pynn.Dense(2, input_dim=3)])
    with pytest.raises(RuntimeError, match="compile"):
        net.fit(X, Y, verbose=0)


@pytest.mark.parametrize("batch_size", [0, -4])
def test_non_positive_batch_size(net, batch_size):
    with pytest.raises(ValueError, match=f"batch_size.*{batch_size}"):
        net.fit(X, Y, batch_size=batch_size, verbose=0)


@pytest.mark.parametrize("batch_size", [2.5, "32", True])
def test_batch_size_of_wrong_type(net, batch_size):
    with pytest.raises(TypeError, match="batch_size"):
        net.fit(X, Y, batch_size=batch_size, verbose=0)


def test_negative_epochs(net):
    with pytest.raises(ValueError, match="epochs.*-1"):
        net.fit(X, Y, epochs=-1, verbose=0)


def test_non_positive_learning_rate():
    with pytest.raises(ValueError, match="learning_rate.*-0.1"):
        pynn.SGD(learning_rate=-0.1)


def test_non_numeric_arrays(net):
    with pytest.raises(TypeError, match="dtype"):
        net.predict(np.array([["a", "b", "c"]]))
    with pytest.raises(TypeError, match="complex"):
        net.predict(np.ones((2, 3), dtype=complex))
    with pytest.raises(TypeError, match="string"):
        net.predict("abc")


def test_empty_input(net):
    with pytest.raises(ValueError, match="empty"):
        net.predict(np.ones((0, 3)))


def test_bad_layer_sizes_and_dtype():
    with pytest.raises(ValueError, match="units.*0"):
        pynn.Dense(0)
    with pytest.raises(TypeError, match="units"):
        pynn.Dense(2.0)
    with pytest.raises(ValueError, match="float16"):
        pynn.Sequential(dtype="float16")


def test_set_weights_checks(net):
    ws = net.get_weights()
    with pytest.raises(ValueError, match="4 arrays, got 3"):
        net.set_weights(ws[:3])
    bad = list(ws)
    bad[2] = np.ones((3, 4))
    with pytest.raises(ValueError, match=r"weights\[2\].*\(2, 4\).*\(3, 4\)"):
        net.set_weights(bad)
    bad[2] = np.full((2, 4), np.nan)
    with pytest.raises(ValueError, match=r"weights\[2\].*NaN"):
        net.set_weights(bad)
    np.testing.assert_array_equal(net.get_weights()[2], ws[2])  # untouched on failure
