"""check_gradients and summary."""
import numpy as np
import pytest

import pynn
from conftest import make_model


def make_net(dtype="float32"):
    return make_model((6, "tanh"), (5, "sigmoid"), (3, None), input_dim=4, dtype=dtype, seed=2)


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    return rng.standard_normal((10, 4)), rng.standard_normal((10, 3))


def test_backprop_agrees_with_finite_differences(batch, dtype):
    net = make_net(dtype)
    before = net.params.copy()
    errors = pynn.check_gradients(net, *batch)
    assert list(errors) == ["dense/W", "dense/b", "dense_1/W", "dense_1/b",
                            "dense_2/W", "dense_2/b"]
    assert max(errors.values()) < 1e-6, errors
    np.testing.assert_array_equal(net.params, before)        # the model is untouched


def test_a_wrong_gradient_is_caught(batch, monkeypatch):
    net = make_net("float64")
    original = pynn.Sequential.gradients

    def off_by_one_percent(self, x, y):
        loss, grads = original(self, x, y)
        grads[2] = grads[2] * 1.01
        return loss, grads

    monkeypatch.setattr(pynn.Sequential, "gradients", off_by_one_percent)
    errors = pynn.check_gradients(net, *batch)
    assert errors["dense_1/W"] == pytest.approx(0.01 / 1.01, rel=1e-4)   # |1.01g - g| / |1.01g|
    assert errors["dense/W"] < 1e-6


def test_check_gradients_needs_a_compiled_model(batch):
    net = pynn.Sequential([pynn.Dense(2, input_dim=4)])
    with pytest.raises(RuntimeError, match="compile"):
        pynn.check_gradients(net, *batch)
    with pytest.raises(TypeError, match="Sequential"):
        pynn.check_gradients("net", *batch)


def test_summary_as_keras_prints_it(capsys):
    net = make_net()
    assert net.summary() is None
    text = capsys.readouterr().out
    assert text == net.summary(print_fn=None) + "\n"
    lines = text.splitlines()
    assert lines[0] == 'Model: "sequential"'
    assert lines[2].split() == ["Layer", "(type)", "Output", "Shape", "Param", "#"]
    rows = [line.split() for line in lines if "(Dense)" in line]
    assert rows == [["dense", "(Dense)", "(None,", "6)", "30"],
                    ["dense_1", "(Dense)", "(None,", "5)", "35"],
                    ["dense_2", "(Dense)", "(None,", "3)", "18"]]
    assert "Total params: 83 (332 B)" in text
    assert "Non-trainable params: 0" in text


def test_summary_of_an_unbuilt_model():
    net = pynn.Sequential([pynn.Dense(4), pynn.Dense(2, name="head")])
    text = net.summary(print_fn=None)
    assert "0 (unbuilt)" in text and "head (Dense)" in text and "unknown" in text


def smooth_networks(n):
    """Small float64 networks of smooth activations, with data that saturates some units."""
    rng = np.random.default_rng(5)
    for trial in range(n):
        act = ["tanh", "sigmoid"][trial % 2]
        loss, last = [("mse", None), ("binary_crossentropy", "sigmoid"),
                      ("categorical_crossentropy", "softmax"), ("mse", "tanh")][trial % 4]
        n_in, hidden, n_out = (int(v) for v in rng.integers(2, 12, size=3))
        net = pynn.Sequential([pynn.Dense(hidden, activation=act, input_dim=n_in),
                               pynn.Dense(hidden, activation=act),
                               pynn.Dense(n_out, activation=last)], dtype="float64", seed=trial)
        net.compile(loss=loss)
        x = rng.normal(size=(8, n_in)) * 3
        y = rng.random((8, n_out))
        yield net, x, y / y.sum(1, keepdims=True) if last == "softmax" else y


def test_correct_and_wrong_gradients_are_orders_of_magnitude_apart(monkeypatch):
    # The entry-wise maximum reached 1e-6..1e-4 on such correct networks
    # (rounding noise where a gradient entry is tiny); the norm-wise error
    # stays under 1e-6, and a wrong gradient scores 1e-3 or more.
    correct = max(max(pynn.check_gradients(*case).values()) for case in smooth_networks(16))
    assert correct < 1e-6
    original = pynn.Sequential.gradients

    def one_entry_off(self, x, y):
        loss, grads = original(self, x, y)
        for g in grads:
            g.reshape(-1)[0] += 0.01 * np.linalg.norm(g)      # 1% of the array's norm
        return loss, grads

    monkeypatch.setattr(pynn.Sequential, "gradients", one_entry_off)
    wrong = min(min(pynn.check_gradients(*case).values()) for case in smooth_networks(4))
    assert wrong > 1e-3
    assert wrong / correct > 1e3
