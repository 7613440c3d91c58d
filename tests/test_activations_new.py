"""leaky_relu, elu, selu, gelu, swish (silu) and softplus in the compiled
kernels: against their NumPy twins in pynn.reference, against finite
differences through whole networks, at extreme inputs, and through the
model's API (training paths, files, pynn.keras)."""
import math
import tracemalloc

import numpy as np
import pytest

import pynn
from conftest import TOL, assert_close, make_model
from pynn import _dense, activations, keras
from pynn import reference as ref
from pynn.training.runners import run_batches

NEW = ["leaky_relu", "elu", "selu", "gelu", "swish", "softplus"]
FROM_Z = {"gelu", "swish"}


def twin(name):
    """(value, derivative as the compiled kernels take it) of the NumPy twin:
    the derivative is a function of (z, a), from the output where the
    kernels take it from the output (the older element-wise activations:
    their twins of pynn.reference's first part)."""
    if name not in ref.PREACTIVATION_ACTIVATIONS:
        return (lambda z: ref.activate(z, name),
                lambda z, a: ref.activation_backward(np.ones_like(a), a, name))
    f, df, df_out = ref.PREACTIVATION_ACTIVATIONS[name]
    if name in FROM_Z:
        return f, lambda z, a: df(z)
    return f, lambda z, a: df_out(a)


def test_names_codes_and_the_silu_alias():
    assert set(NEW) <= set(activations.names())
    assert "silu" not in activations.names()
    assert activations.get("silu") == activations.get("SiLU") == "swish"
    assert [activations.code(n) for n in NEW] == [5, 6, 7, 8, 9, 10]
    assert {n for n in activations.names() if activations.needs_preactivation(n)} == FROM_Z
    assert activations.needs_preactivation(activations.GELU)
    assert not activations.needs_preactivation(activations.ELU)
    # the twins agree on which derivatives need z
    assert {n for n in NEW if ref.PREACTIVATION_ACTIVATIONS[n][2] is None} == FROM_Z


def _one_to_one(z):
    # a layer whose pre-activation is z itself: z (n, 1) through W = 1, b = 0
    return z[:, None], np.ones((1, 1), z.dtype), np.zeros(1, z.dtype)


@pytest.mark.parametrize("name", NEW)
def test_kernel_per_element_matches_its_twin(name, dtype, rng):
    # the values and derivatives themselves, free of any GEMM rounding;
    # odd n: vector loops and their tails
    z = np.concatenate([rng.standard_normal(1001) * 4, [0.0, -0.0, 1e-30, -1e-30]]).astype(dtype)
    x, W, b = _one_to_one(z)
    a = np.empty_like(x)
    _dense.dense_forward(x, W, b, activations.code(name), a)
    f, df = twin(name)
    assert a.dtype == dtype
    assert_close(a[:, 0], f(z), dtype)
    grad_a = rng.standard_normal(z.shape).astype(dtype)
    dz = grad_a[:, None].copy()
    _dense.dense_backward(x, W, a, dz, activations.code(name), np.empty_like(W),
                          np.empty_like(b), None, x if name in FROM_Z else None)
    assert_close(dz[:, 0], grad_a * df(z, f(z)), dtype)


@pytest.mark.parametrize("name", NEW)
def test_wide_rows_match_the_twin_across_chunks_and_branches(name, dtype, rng):
    # rows of 700: the vectorised passes' chunks of 256 and their tails; the
    # values around -1/4 and 0, where elu's, selu's and softplus's
    # exponentials switch between the vectorised exp and libm's expm1
    m = 700
    z = np.concatenate([np.linspace(-0.3, -0.2, 400), np.linspace(-1e-3, 1e-3, 400),
                        rng.standard_normal(1300) * 6])[:3 * m]
    x = rng.permutation(z).reshape(3, m).astype(dtype)
    W = np.eye(m, dtype=dtype)          # z = x exactly: x @ I adds zeros only
    b = np.zeros(m, dtype)
    a = np.empty_like(x)
    _dense.dense_forward(x, W, b, activations.code(name), a)
    f, df = twin(name)
    assert_close(a, f(x), dtype)
    grad_a = rng.standard_normal(x.shape).astype(dtype)
    dz = grad_a.copy()
    _dense.dense_backward(x, W, a, dz, activations.code(name), np.empty_like(W),
                          np.empty_like(b), None, x if name in FROM_Z else None)
    assert_close(dz, grad_a * df(x, f(x)), dtype)
    # near 0, relatively: exp(z) - 1 in place of expm1 would be off by
    # about one float's epsilon absolutely, far more than that relatively
    near = np.abs(x) <= 1e-3
    rtol = TOL[dtype]["rtol"]
    np.testing.assert_allclose(a[near], f(x)[near], rtol=rtol, atol=0)
    np.testing.assert_allclose(dz[near], (grad_a * df(x, f(x)))[near], rtol=rtol, atol=0)


@pytest.mark.parametrize("name", NEW)
@pytest.mark.parametrize("need_grad_x", [True, False])
def test_dense_layer_forward_and_backward_match_the_twin(name, need_grad_x, dtype, rng):
    n, n_in, n_out = 19, 11, 7
    x = rng.standard_normal((n, n_in)).astype(dtype)
    W = (rng.standard_normal((n_out, n_in)) / math.sqrt(n_in)).astype(dtype)
    b = rng.standard_normal(n_out).astype(dtype)
    f, df = twin(name)
    z = x @ W.T + b
    a = np.empty((n, n_out), dtype)
    _dense.dense_forward(x, W, b, activations.code(name), a)
    assert_close(a, f(z), dtype, scale=10)
    grad_a = rng.standard_normal((n, n_out)).astype(dtype)
    grad_z = grad_a * df(z, f(z))
    dz, dW, db = grad_a.copy(), np.empty_like(W), np.empty_like(b)
    dX = np.empty_like(x) if need_grad_x else None
    _dense.dense_backward(x, W, a, dz, activations.code(name), dW, db, dX,
                          z if name in FROM_Z else None)
    assert_close(dz, grad_z, dtype, scale=10)
    assert_close(dW, grad_z.T @ x, dtype, scale=10)
    assert_close(db, grad_z.sum(axis=0), dtype, scale=10)
    if need_grad_x:
        assert_close(dX, grad_z @ W, dtype, scale=10)
    # the Python-level layer, which works out z itself where it is needed
    layer = pynn.Sequential([pynn.Dense(n_out, activation=name, input_dim=n_in)],
                            dtype=dtype).layers[0]
    layer.W[...] = W
    layer.b[...] = b
    assert_close(layer.forward(x), f(z), dtype, scale=10)
    gx = layer.backward(x, layer.forward(x), grad_a, need_grad_x)
    assert_close(layer.dW, grad_z.T @ x, dtype, scale=10)
    if need_grad_x:
        assert_close(gx, grad_z @ W, dtype, scale=10)


def test_dense_backward_asks_for_the_preactivation_it_needs(rng):
    x = rng.standard_normal((4, 3))
    W = rng.standard_normal((2, 3))
    a, dz = np.empty((4, 2)), np.ones((4, 2))
    for name in FROM_Z:
        with pytest.raises(ValueError, match="Z must be given"):
            _dense.dense_backward(x, W, a, dz, activations.code(name), np.empty_like(W),
                                  np.empty(2))
        with pytest.raises(ValueError, match=r"Z \(4, 3\)"):
            _dense.dense_backward(x, W, a, dz, activations.code(name), np.empty_like(W),
                                  np.empty(2), None, np.empty((4, 3)))
    np.testing.assert_array_equal(dz, 1)      # nothing ran


EXTREMES = [-1e4, -1e3, -100.0, -30.0, -1.0, -1e-30, 0.0, 1e-30, 1.0, 30.0, 100.0, 1e3, 1e4]


@pytest.mark.parametrize("name", NEW)
def test_stable_at_extreme_inputs(name, dtype):
    z = np.array(EXTREMES, dtype=dtype)
    x, W, b = _one_to_one(z)
    a = np.empty_like(x)
    with np.errstate(all="raise"):
        _dense.dense_forward(x, W, b, activations.code(name), a)
        dz = np.ones_like(x)
        _dense.dense_backward(x, W, a, dz, activations.code(name), np.empty_like(W),
                              np.empty_like(b), None, x)
    assert np.all(np.isfinite(a)) and np.all(np.isfinite(dz))
    f, df = twin(name)
    assert_close(a[:, 0], f(z), dtype)
    assert_close(dz[:, 0], df(z, f(z)), dtype)
    # the limits themselves: identity-like on the right (but selu's scale),
    # a constant on the left
    slope_right = ref.SELU_SCALE if name == "selu" else 1.0
    left = {"leaky_relu": -2e3, "elu": -1.0, "selu": -ref.SELU_SCALE * ref.SELU_ALPHA,
            "gelu": 0.0, "swish": 0.0, "softplus": 0.0}[name]
    np.testing.assert_allclose(a[-1, 0], slope_right * 1e4, rtol=1e-6)
    np.testing.assert_allclose(a[0, 0], left, rtol=1e-6)


@pytest.mark.parametrize("name", NEW)
def test_network_at_extreme_preactivations_stays_finite(name, dtype):
    # weights that push every pre-activation to +-1e4
    net = make_model((3, name), (2, None), input_dim=2, dtype=dtype)
    w = net.get_weights()
    w[0][...] = [[1e4, 0], [-1e4, 0], [0, 1e4]]
    w[2][...] = 1e-4
    net.set_weights(w)
    x = np.array([[1, 1], [-1, -1], [1, -1]], dtype=dtype)
    y = np.zeros((3, 2), dtype=dtype)
    loss, grads = net.gradients(x, y)
    assert np.isfinite(loss) and all(np.all(np.isfinite(g)) for g in grads)
    assert np.all(np.isfinite(net.predict(x)))


class TwinNetwork:
    """A whole network in NumPy from the twins, keeping z for every layer."""

    def __init__(self, weights, names):
        self.W, self.b, self.names = weights[0::2], weights[1::2], names

    def gradients(self, x, y):
        outputs, pre = [x], []
        for W, b, name in zip(self.W, self.b, self.names):
            z = outputs[-1] @ W.T + b
            pre.append(z)
            outputs.append(twin(name)[0](z))
        loss, grad = ref.mse(outputs[-1], y)
        grad = grad.astype(x.dtype)
        grads = []
        for i in range(len(self.W) - 1, -1, -1):
            grad = grad * twin(self.names[i])[1](pre[i], outputs[i + 1])
            grads = [grad.T @ outputs[i], grad.sum(axis=0)] + grads
            grad = grad @ self.W[i]
        return loss, grads


@pytest.mark.parametrize("name", NEW)
def test_network_gradients_match_the_twin_network(name, dtype, rng):
    # the activation on two hidden layers, between them a layer that keeps
    # no z: the kept pre-activations' offsets must not cross
    names = [name, "tanh", name, "linear"]
    net = make_model((7, name), (5, "tanh"), (6, name), (3, None), input_dim=4, dtype=dtype,
                     seed=3)
    x = rng.standard_normal((13, 4)).astype(dtype)
    y = rng.standard_normal((13, 3)).astype(dtype)
    loss, grads = net.gradients(x, y)
    want_loss, want = TwinNetwork(net.get_weights(), names).gradients(x, y)
    assert loss == pytest.approx(want_loss, rel=1e-5 if dtype == np.float32 else 1e-12)
    for g, w in zip(grads, want):
        assert_close(g, w, dtype, scale=10)


@pytest.mark.parametrize("name", NEW)
def test_whole_network_agrees_with_finite_differences(name):
    rng = np.random.default_rng(7)
    net = make_model((6, name), (5, name), (3, None), input_dim=4, dtype="float64", seed=2)
    x, y = rng.standard_normal((10, 4)), rng.standard_normal((10, 3))
    errors = pynn.check_gradients(net, x, y)
    assert max(errors.values()) < 1e-6, errors


def test_only_the_layers_that_need_it_keep_their_preactivation():
    net = make_model((5, "gelu"), (4, "relu"), (3, "swish"), (2, "softplus"), input_dim=6)
    layout = net.engine.layout
    # past the outputs (5+4+3+2) and two delta buffers (2 x 5)
    np.testing.assert_array_equal(layout[:, 5], [24, -1, 29, -1])
    plain = make_model((5, "elu"), (4, "selu"), input_dim=6)
    np.testing.assert_array_equal(plain.engine.layout[:, 5], [-1, -1])


def _layout(act_codes, z_column, widths=(4, 3)):
    rows, n_in, w_off, b_off = [], 2, 0, 100
    for width, act, z in zip(widths, act_codes, z_column):
        # Dense rows: kind 0, the layer kinds' columns unused (-1)
        rows.append((n_in, width, w_off, b_off, act, z, 0)
                    + (-1,) * (_dense.LAYOUT_WIDTH - 7))
        w_off += n_in * width
        b_off += width
        n_in = width
    return np.array(rows, dtype=np.intp)


@pytest.mark.parametrize("z_column, match", [
    ((-1, -1), r"must be an offset in \[15, 18\]"),  # gelu without its z
    ((3, -1), r"offset in \[15, 18\].*got 3"),        # over the outputs
    ((2**62, -1), "got 4611686018427387904"),          # past any buffer
    ((15, 3), "must be -1"),                        # relu given a z
    ((15, 17), "overlapping"),
])
def test_network_refuses_preactivation_offsets_it_cannot_trust(z_column, match):
    params = np.zeros(120)
    codes = (activations.GELU, activations.RELU if match == "must be -1"
             else activations.SWISH)
    with pytest.raises(ValueError, match=match):
        _dense.Network(params, np.zeros_like(params), _layout(codes, z_column))
    # the right one is taken
    _dense.Network(params, np.zeros_like(params),
                   _layout((activations.GELU, activations.SWISH), (15, 19)))


@pytest.mark.parametrize("name", ["gelu", "swish"])
def test_compiled_epoch_equals_train_on_batch_bit_for_bit(name, dtype, rng):
    def make():
        return make_model((12, name), (9, name), (3, None), input_dim=5, dtype=dtype, seed=4,
                          optimizer=pynn.SGD(learning_rate=0.05, momentum=0.9))
    x = rng.standard_normal((53, 5)).astype(dtype)
    y = rng.standard_normal((53, 3)).astype(dtype)
    order = rng.permutation(53).astype(np.intp)
    a, b = make(), make()
    losses = np.empty(6)
    assert run_batches(a, x, y, order, 10, 0, 6, losses) == 6
    expected = []
    for k in range(0, 53, 10):
        expected.append(b.train_on_batch(x[order[k:k + 10]], y[order[k:k + 10]]))
        np.testing.assert_array_equal(losses[:len(expected)], expected)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    # and fit, through the compiled epoch, trains: the loss falls
    history = a.fit(x, y, epochs=20, batch_size=10, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]


def _memory_after(run):
    """(held, peak) bytes that run() leaves and needs, traced by tracemalloc."""
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        run()
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return current - base, peak - base


def test_steps_with_kept_preactivations_allocate_nothing(rng):
    # the kept z live in the work buffer, grown once with it
    net = make_model((24, "gelu"), (16, "swish"), (3, None), input_dim=10)
    x = rng.standard_normal((64, 10))
    y = rng.standard_normal((64, 3))
    losses = np.empty(4)
    net.train_on_batch(x, y)
    run_batches(net, x, y, None, 16, 0, 4, losses)
    def steps():
        for _ in range(300):
            net.train_on_batch(x, y)

    def epochs():
        for _ in range(100):
            run_batches(net, x, y, None, 16, 0, 4, losses)

    for run in (steps, epochs):
        held, peak = _memory_after(run)
        assert held < 512 and peak < 4096, (held, peak)


def test_save_and_load_round_trip(tmp_path, rng):
    net = make_model(*[(4, n) for n in NEW], (2, "silu"), input_dim=3, seed=5,
                     optimizer=pynn.Adam(0.01))
    x = rng.standard_normal((20, 3))
    y = rng.standard_normal((20, 2))
    net.fit(x, y, epochs=2, batch_size=5, verbose=0)
    path = tmp_path / "acts.pynn"
    net.save(path)
    back = pynn.load(path)
    assert [layer.activation for layer in back.layers] == NEW + ["swish"]
    np.testing.assert_array_equal(back.predict(x), net.predict(x))
    # training goes on exactly where it was
    assert back.train_on_batch(x, y) == net.train_on_batch(x, y)
    np.testing.assert_array_equal(back.params, net.params)
    config = pynn.Sequential.from_config(net.get_config())
    assert [layer.activation for layer in config.layers] == NEW + ["swish"]


def test_through_pynn_keras(rng):
    x = rng.standard_normal((6, 3))
    model = keras.Sequential([keras.Input(shape=(3,)),
                              keras.layers.Dense(4, activation="gelu"),
                              keras.layers.Dense(4, activation=keras.activations.silu),
                              keras.layers.Dense(4, activation="leaky_relu"),
                              keras.layers.Dense(4),
                              keras.layers.Activation("softplus"),
                              keras.layers.Dense(1, activation=keras.activations.selu)])
    model.compile(optimizer="adam", loss="mse")
    assert [layer.activation for layer in model.pynn_model.layers] == \
        ["gelu", "swish", "leaky_relu", "softplus", "selu"]
    out = model.predict(x, verbose=0)
    h = x
    for (kernel, bias), f in zip(zip(*[iter(model.get_weights())] * 2),
                                 [keras.activations.gelu, keras.activations.swish,
                                  keras.activations.leaky_relu, keras.activations.softplus,
                                  keras.activations.selu]):
        h = f(h @ kernel + bias)
    np.testing.assert_allclose(out, h, rtol=1e-5, atol=1e-7)
    # the NumPy functions, with Keras's defaults
    z = np.array([-2.0, 0.5])
    np.testing.assert_allclose(keras.activations.leaky_relu(z), [-0.4, 0.5])
    np.testing.assert_allclose(keras.activations.elu(z), [math.expm1(-2), 0.5])
    np.testing.assert_allclose(keras.activations.gelu(z, approximate=True), ref.gelu_tanh(z))
