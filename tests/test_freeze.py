"""Freezing: layer.trainable = False and model.trainable = False."""
import numpy as np
import pytest

import pynn
from pynn import DivergenceError

OPTIMIZERS = {
    "sgd": lambda: pynn.SGD(0.05),
    "momentum": lambda: pynn.SGD(0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
    "adam": lambda: pynn.Adam(0.01, weight_decay=0.01),
    "rmsprop": lambda: pynn.RMSprop(0.01, momentum=0.5, centered=True),
    "adamw": lambda: pynn.AdamW(0.01),
    "nadam": lambda: pynn.Nadam(0.01),
    "adagrad": lambda: pynn.Adagrad(0.05),
}


def make(dtype="float64", optimizer=None, frozen=(), seed=0):
    layers = [pynn.Dense(6, "tanh", input_dim=4), pynn.Dense(5, "relu"), pynn.Dense(2)]
    for i in frozen:
        layers[i].trainable = False
    net = pynn.Sequential(layers, dtype=dtype, seed=seed)
    net.compile(optimizer=optimizer or pynn.SGD(0.05, momentum=0.9), loss="mse")
    return net


def data(n=40, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4))
    return x, np.stack([np.sin(x[:, 0]), x[:, 1] * x[:, 2]], axis=1)


def ranges(net, layer):
    """The layer's (kernel, bias) slices of the flat buffer."""
    item = net.params.itemsize
    out = []
    for view in (layer.W, layer.b):
        start = (view.__array_interface__["data"][0]
                 - net.params.__array_interface__["data"][0]) // item
        out.append(slice(start, start + view.size))
    return out


def state_slices(net, layer):
    """Every copy of the layer's slices in the optimizer's state buffer."""
    n = net.params.shape[0]
    copies = net.optimizer.state.shape[0] // n
    return [slice(s.start + c * n, s.stop + c * n) for c in range(copies)
            for s in ranges(net, layer)]


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_frozen_weights_and_state_stay_bit_for_bit(name, dtype):
    x, y = data()
    net = make(dtype, OPTIMIZERS[name](), frozen=[1])
    frozen = net.layers[1]
    net.fit(x, y, epochs=1, batch_size=8, verbose=0)        # state exists, nonzero
    params0, state0 = net.params.copy(), net.optimizer.state.copy()
    net.fit(x, y, epochs=2, batch_size=8, verbose=0)
    for _ in range(3):
        net.train_on_batch(x[:8], y[:8])
    for s in ranges(net, frozen):
        np.testing.assert_array_equal(net.params[s], params0[s])
    for s in state_slices(net, frozen):
        np.testing.assert_array_equal(net.optimizer.state[s], state0[s])
    for layer in (net.layers[0], net.layers[2]):     # the others did train
        for s in ranges(net, layer):
            assert not np.array_equal(net.params[s], params0[s])
    assert frozen.trainable is False


def test_gradient_flows_through_a_frozen_layer():
    # Plain SGD: the trainable layers move by exactly -lr * their gradient,
    # the one the unfrozen model computes (the frozen layer's dX included)
    x, y = data(16)
    net = make("float32", pynn.SGD(0.1), frozen=[1])
    w0 = net.get_weights()
    _, grads = net.gradients(x, y)
    net.train_on_batch(x, y)
    lr = np.float32(0.1)
    for i, (w, w_before, g) in enumerate(zip(net.get_weights(), w0, grads)):
        if i in (2, 3):
            np.testing.assert_array_equal(w, w_before)
        else:
            assert np.any(g != 0)
            np.testing.assert_array_equal(w, w_before - lr * g)
    # the first layer's gradient is the same as without the freeze
    free = make("float32", pynn.SGD(0.1))
    _, free_grads = free.gradients(x, y)
    np.testing.assert_array_equal(free_grads[0], grads[0])


def test_compiled_epoch_equals_train_on_batch_with_a_frozen_layer(dtype):
    x, y = data(40)
    fitted = make(dtype, pynn.Adam(0.01), frozen=[0])
    stepped = make(dtype, pynn.Adam(0.01), frozen=[0])
    history = fitted.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    losses = [stepped.train_on_batch(x[k:k + 8], y[k:k + 8]) for k in range(0, 40, 8)]
    np.testing.assert_array_equal(fitted.params, stepped.params)
    np.testing.assert_array_equal(fitted.optimizer.state, stepped.optimizer.state)
    assert history.history["loss"][0] == pytest.approx(np.mean(losses), rel=1e-6)


def test_changing_trainable_after_compile_takes_effect_at_the_next_step():
    x, y = data(16)
    net = make("float64", pynn.Adam(0.01))
    layer = net.layers[2]
    net.train_on_batch(x, y)
    layer.trainable = False                      # no compile again
    before, state = net.params.copy(), net.optimizer.state.copy()
    net.train_on_batch(x, y)
    net.fit(x, y, epochs=1, batch_size=4, verbose=0)
    for s in ranges(net, layer):
        np.testing.assert_array_equal(net.params[s], before[s])
    for s in state_slices(net, layer):
        np.testing.assert_array_equal(net.optimizer.state[s], state[s])
    layer.trainable = True                       # resumes from its kept state
    net.train_on_batch(x, y)
    for s in ranges(net, layer):
        assert not np.array_equal(net.params[s], before[s])


def test_model_trainable_false_freezes_every_layer():
    x, y = data(16)
    net = make()
    net.trainable = False
    assert not any(layer.trainable for layer in net.layers)
    params = net.params.copy()
    net.fit(x, y, epochs=2, batch_size=4, verbose=0)
    net.train_on_batch(x, y)
    np.testing.assert_array_equal(net.params, params)
    # as Keras: with the model frozen, a layer's own flag does not unfreeze it
    net.layers[0].trainable = True
    net.train_on_batch(x, y)
    np.testing.assert_array_equal(net.params, params)
    assert net.trainable_weights == [] and len(net.non_trainable_weights) == 6
    net.trainable = True
    assert all(layer.trainable for layer in net.layers)
    net.train_on_batch(x, y)
    assert not np.array_equal(net.params, params)


def test_counts_and_summary_show_trainable_and_frozen():
    net = make(frozen=[1])
    frozen = 6 * 5 + 5
    assert net.count_params() == 4 * 6 + 6 + frozen + 5 * 2 + 2
    assert net.count_trainable_params() == net.count_params() - frozen
    text = net.summary(print_fn=None)
    assert f"Trainable params: {net.count_params() - frozen:,}" in text
    assert f"Non-trainable params: {frozen:,} ({frozen * 8} B)" in text
    assert [w.shape for w in net.non_trainable_weights] == [(5, 6), (5,)]
    assert len(net.trainable_weights) == 4
    assert net.layers[1].trainable_weights == [] and len(net.layers[1].non_trainable_weights) == 2


def test_frozen_flags_are_saved_and_loaded(tmp_path):
    x, y = data(16)
    net = make(frozen=[1])
    net.train_on_batch(x, y)
    path = tmp_path / "m.pynn"
    net.save(path)
    back = pynn.load(path)
    assert [layer.trainable for layer in back.layers] == [True, False, True]
    assert back.trainable is True
    net.train_on_batch(x, y)
    back.train_on_batch(x, y)
    np.testing.assert_array_equal(back.params, net.params)
    whole = make()
    whole.trainable = False
    config = whole.get_config()
    assert config["trainable"] is False
    again = pynn.Sequential.from_config(config)
    assert again.trainable is False and not any(la.trainable for la in again.layers)
    assert "trainable" not in make().get_config()          # unchanged for older readers


def test_a_refused_step_changes_nothing_with_a_frozen_layer():
    x, y = data(16)
    net = make("float64", pynn.SGD(1e300), frozen=[0])
    params, state = net.params.copy(), net.optimizer.state.copy()
    with pytest.raises(DivergenceError):
        net.train_on_batch(x, y * 1e10)      # finite loss, lr * gradient overflows
    np.testing.assert_array_equal(net.params, params)
    np.testing.assert_array_equal(net.optimizer.state, state)
    assert net.optimizer.iterations == 0


def test_trainable_in_the_layer_constructor_and_refused_values():
    layer = pynn.Dense(3, trainable=False)
    assert layer.trainable is False and layer.get_config()["trainable"] is False
    with pytest.raises(TypeError, match="trainable must be True or False, got 0"):
        pynn.Dense(3, trainable=0)
    net = make()
    with pytest.raises(TypeError, match="trainable"):
        net.trainable = None
    assert net.trainable is True


def test_the_networks_variables_are_checked_before_use():
    net = make()
    n = net.params.shape[0]
    engine = net.engine
    for rows in ([[5, 2, 0]], [[0, 10, 1], [5, 20, 0]], [[0, n + 1, 0]], [[0, 4, 2]]):
        with pytest.raises(ValueError, match="variables must be disjoint increasing ranges"):
            engine.set_variables(rows)
    with pytest.raises(ValueError, match="regularizers must hold finite"):
        engine.set_variables([[0, 4, 1]], [[-1.0, 0.0]])
    with pytest.raises(ValueError, match="one row per variable"):
        engine.set_variables([[0, 4, 1]], [[0.1, 0.0], [0.0, 0.1]])
    # what the model handed over is still there: its trainable layers' rows
    rows, _ = net.variables()
    np.testing.assert_array_equal(engine.variables, rows)
