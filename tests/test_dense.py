"""Dense kernels against pynn/reference.py, and backprop against finite differences."""
import math

import numpy as np
import pytest

import pynn
from pynn import _dense, activations, reference
from conftest import ACTIVATIONS, assert_close, central_differences


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("n,n_in,n_out", [(1, 1, 1), (7, 5, 3), (33, 17, 65), (64, 784, 128)])
def test_forward_matches_reference(dtype, rng, activation, n, n_in, n_out):
    x = rng.standard_normal((n, n_in)).astype(dtype)
    W = rng.standard_normal((n_out, n_in)).astype(dtype) / math.sqrt(n_in)
    b = rng.standard_normal(n_out).astype(dtype)
    out = np.empty((n, n_out), dtype=dtype)
    _dense.dense_forward(x, W, b, activations.code(activation), out)
    assert_close(out, reference.dense_forward(x, W, b, activation), dtype, scale=10)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("need_grad_x", [True, False])
def test_backward_matches_reference(dtype, rng, activation, need_grad_x):
    n, n_in, n_out = 19, 11, 7
    x = rng.standard_normal((n, n_in)).astype(dtype)
    W = rng.standard_normal((n_out, n_in)).astype(dtype) / math.sqrt(n_in)
    b = rng.standard_normal(n_out).astype(dtype)
    a = reference.dense_forward(x, W, b, activation).astype(dtype)
    grad_a = rng.standard_normal((n, n_out)).astype(dtype)
    gW, gb, gx = reference.dense_backward(x, W, a, grad_a, activation, need_grad_x)

    dz = grad_a.copy()
    dW = np.empty_like(W)
    db = np.empty_like(b)
    dX = np.empty_like(x) if need_grad_x else None
    _dense.dense_backward(x, W, a, dz, activations.code(activation), dW, db, dX)
    assert_close(dW, gW, dtype, scale=10)
    assert_close(db, gb, dtype, scale=10)
    if need_grad_x:
        assert_close(dX, gx, dtype, scale=10)
    # dA was overwritten with dZ
    assert_close(dz, reference.activation_backward(grad_a, a, activation), dtype)


def test_sigmoid_stable_at_extremes(dtype):
    # X and W are zero, so Z = b: the activation sees exactly these values.
    z = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0], dtype=dtype)
    out = np.empty((1, 5), dtype=dtype)
    with np.errstate(all="raise"):
        _dense.dense_forward(np.zeros((1, 3), dtype), np.zeros((5, 3), dtype), z,
                             activations.SIGMOID, out)
    assert np.all(np.isfinite(out))
    assert out[0, 0] == 0.0 and out[0, 2] == 0.5 and out[0, 4] == 1.0
    np.testing.assert_allclose(out[0], reference.sigmoid(z), rtol=1e-6)


def _three_layer(activation, seed=0):
    net = pynn.Sequential([
        pynn.Dense(6, activation=activation, input_dim=4),
        pynn.Dense(5, activation=activation),
        pynn.Dense(3, activation=activation),
    ], dtype="float64", seed=seed)
    net.compile(loss="mse", optimizer="sgd")
    return net


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_gradients_match_central_differences(activation, rng):
    net = _three_layer(activation)
    x = rng.standard_normal((8, 4))
    y = rng.standard_normal((8, 3))
    _, grads = net.gradients(x, y)
    for array, grad in zip([p for layer in net.layers for p in (layer.W, layer.b)], grads):
        numeric = central_differences(lambda: net.evaluate(x, y), array, 1e-6)
        np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_network_gradients_match_reference(dtype, rng, activation):
    net = pynn.Sequential([pynn.Dense(16, activation=activation, input_dim=9),
                           pynn.Dense(4, activation=activation)], dtype=dtype, seed=3)
    net.compile(loss="mse")
    x = rng.standard_normal((13, 9)).astype(dtype)
    y = rng.standard_normal((13, 4)).astype(dtype)
    loss, grads = net.gradients(x, y)
    ref = reference.ReferenceNetwork(net.get_weights(), [activation] * 2)
    ref_loss, ref_grads = ref.gradients(x, y)
    assert loss == pytest.approx(ref_loss, rel=1e-5 if dtype == np.float32 else 1e-12)
    for g, r in zip(grads, ref_grads):
        assert_close(g, r, dtype, scale=10)


def test_python_path_matches_compiled_step(dtype, rng):
    """Layer-by-layer calls give the gradients of the one-call train step."""
    net = pynn.Sequential([pynn.Dense(12, activation="relu", input_dim=5),
                           pynn.Dense(8, activation="tanh"),
                           pynn.Dense(2)], dtype=dtype, seed=1)
    net.compile(loss="mse")
    x = rng.standard_normal((10, 5)).astype(dtype)
    y = rng.standard_normal((10, 2)).astype(dtype)
    _, grads = net.gradients(x, y)
    outs = [x]
    for layer in net.layers:
        outs.append(layer.forward(outs[-1]))
    _, grad = reference.mse(outs[-1], y)
    py_grads = []
    for i in range(len(net.layers) - 1, -1, -1):
        grad = net.layers[i].backward(outs[i], outs[i + 1], grad.astype(dtype), need_grad_x=i > 0)
        py_grads = [net.layers[i].dW.copy(), net.layers[i].db.copy()] + py_grads
    for g, p in zip(grads, py_grads):
        assert_close(g, p, dtype, scale=10)
