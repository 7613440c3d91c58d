"""Sequential: the public API contract, real learning, and bad input."""
import numpy as np
import pytest

import pynn
from conftest import make_model


def make_net(dtype="float32", seed=0, optimizer=None):
    return make_model((32, "relu"), (3, None), input_dim=8, dtype=dtype, seed=seed,
                      optimizer=optimizer or pynn.SGD(learning_rate=0.01, momentum=0.9))


@pytest.fixture
def data(rng):
    x = rng.standard_normal((100, 8))
    y = rng.standard_normal((100, 3))
    return x, y


def test_parameters_are_views_of_one_flat_buffer():
    net = make_net()
    assert net.params.shape == (8 * 32 + 32 * 3 + 32 + 3,)
    for layer in net.layers:
        assert np.shares_memory(layer.W, net.params)
        assert np.shares_memory(layer.b, net.params)
        assert np.shares_memory(layer.dW, net.grads)
    assert net.layers[0].W.shape == (32, 8)
    assert net.layers[1].b.shape == (3,)
    net.layers[0].W[0, 0] = 42.0
    assert 42.0 in net.params


def test_api_contract(data):
    x, y = data
    net = make_net()
    history = net.fit(x, y, epochs=3, batch_size=32, verbose=0)
    assert len(history.history["loss"]) == 3
    loss = net.train_on_batch(x[:32], y[:32])
    assert isinstance(loss, float) and np.isfinite(loss)
    loss, grads = net.gradients(x[:32], y[:32])
    assert [g.shape for g in grads] == [w.shape for w in net.get_weights()]
    y_pred = net.predict(x)
    assert y_pred.shape == (100, 3) and y_pred.dtype == np.float32
    loss = net.evaluate(x, y)
    assert isinstance(loss, float) and np.isfinite(loss)
    ws = net.get_weights()
    assert len(ws) == 4
    ws[0][...] = 0                    # copies: the model is not touched
    assert not np.all(net.layers[0].W == 0)
    net.set_weights(ws)
    assert np.all(net.layers[0].W == 0)


def test_gradients_do_not_update(data):
    x, y = data
    net = make_net()
    before = net.params.copy()
    net.gradients(x, y)
    np.testing.assert_array_equal(net.params, before)


def test_train_on_batch_reduces_the_loss(data):
    x, y = data
    net = make_net(optimizer=pynn.SGD(learning_rate=0.05))
    first = net.train_on_batch(x, y)
    for _ in range(20):
        last = net.train_on_batch(x, y)
    assert last < first


def test_evaluate_matches_the_mean_of_predict(data):
    x, y = data
    net = make_net(dtype="float64")
    expected = np.mean((net.predict(x) - y) ** 2)
    assert net.evaluate(x, y) == pytest.approx(expected, rel=1e-12)    # no metrics: a float
    assert net.evaluate(x, y, batch_size=7) == pytest.approx(expected, rel=1e-12)


def test_predict_in_chunks_equals_predict_at_once(data):
    x, _ = data
    net = make_net(dtype="float64")
    # products of other shapes may run on other kernels (README, Reproducibility):
    # equal to rounding, not bit for bit
    np.testing.assert_allclose(net.predict(x, batch_size=9), net.predict(x), rtol=1e-13,
                               atol=1e-15)


def test_learns_sine():
    x = np.linspace(-np.pi, np.pi, 256).reshape(-1, 1)
    y = np.sin(x)
    net = pynn.Sequential([pynn.Dense(32, activation="tanh", input_dim=1),
                           pynn.Dense(32, activation="tanh"),
                           pynn.Dense(1)], seed=0)
    net.compile(loss="mse", optimizer=pynn.SGD(learning_rate=0.05, momentum=0.9, nesterov=True))
    first = net.evaluate(x, y, return_dict=True)["loss"]
    net.fit(x, y, epochs=300, batch_size=32, verbose=0)
    final = net.evaluate(x, y, return_dict=True)["loss"]
    assert first > 0.1
    assert final < 2e-3, final


def test_same_seed_same_weights_and_training(data):
    x, y = data
    a, b = make_net(seed=5), make_net(seed=5)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    a.fit(x, y, epochs=2, verbose=0)
    b.fit(x, y, epochs=2, verbose=0)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    c = make_net(seed=6)
    assert not np.array_equal(a.layers[0].W, c.layers[0].W)


def test_last_batch_may_be_smaller(data):
    x, y = data
    net = make_net()
    # 100 samples at batch 64: one batch of 64 and one of 36
    history = net.fit(x, y, epochs=1, batch_size=64, shuffle=False, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_fit_is_the_sequence_of_train_on_batch(data):
    x, y = data
    a, b = make_net(dtype="float64"), make_net(dtype="float64")
    a.fit(x, y, epochs=1, batch_size=30, shuffle=False, verbose=0)
    for start in range(0, 100, 30):
        b.train_on_batch(x[start:start + 30], y[start:start + 30])
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)


def test_integer_and_float64_input_to_float32_model():
    net = make_net()
    x_int = np.arange(16).reshape(2, 8)
    np.testing.assert_allclose(net.predict(x_int), net.predict(x_int.astype(np.float32)),
                               rtol=1e-6)
    x64 = np.random.default_rng(0).standard_normal((4, 8))
    np.testing.assert_allclose(net.predict(x64), net.predict(x64.astype(np.float32)),
                               rtol=1e-6)


def test_user_arrays_never_modified(data):
    x, y = data
    x32 = x.astype(np.float32)
    y32 = y.astype(np.float32)
    copies = [a.copy() for a in (x, y, x32, y32)]
    net = make_net()
    net.fit(x32, y32, epochs=1, verbose=0)
    net.fit(x, y, epochs=1, verbose=0)
    net.train_on_batch(x32, y32)
    net.gradients(x, y)
    net.evaluate(x32, y32)
    net.predict(x)
    for a, c in zip((x, y, x32, y32), copies):
        np.testing.assert_array_equal(a, c)


def test_divergence_keeps_finite_weights(data):
    x, y = data
    net = make_net(optimizer=pynn.SGD(learning_rate=1e6))
    with pytest.raises(pynn.DivergenceError, match="epoch .*batch"):
        net.fit(x * 1e3, y, epochs=50, verbose=0)
    assert np.all(np.isfinite(net.params))


def test_builds_from_data_when_no_input_dim(data):
    x, y = data
    net = pynn.Sequential([pynn.Dense(4, activation="relu"), pynn.Dense(3)], seed=0)
    net.compile(loss="mse")
    net.fit(x, y, epochs=1, verbose=0)
    assert net.layers[0].W.shape == (4, 8)


def test_add_then_build_equals_list():
    a = pynn.Sequential(seed=3)
    a.add(pynn.Dense(5, activation="relu", input_dim=2))
    a.add(pynn.Dense(1))
    b = pynn.Sequential([pynn.Dense(5, activation="relu", input_dim=2), pynn.Dense(1)], seed=3)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)


def test_strings_and_objects_accepted():
    for loss in ("mse", pynn.MeanSquaredError()):
        for opt in ("sgd", pynn.SGD()):
            net = make_net()
            net.compile(loss=loss, optimizer=opt)
            assert isinstance(net.loss, pynn.MeanSquaredError)
            assert isinstance(net.optimizer, pynn.SGD)


def count_binds(monkeypatch):
    """A list that grows by one each time a layer is bound to a model's buffers."""
    calls = []
    original = pynn.Dense.bind

    def counting(self, *args):
        calls.append(self)
        return original(self, *args)

    monkeypatch.setattr(pynn.Dense, "bind", counting)
    return calls


def deep(n_layers):
    return [pynn.Dense(1, input_dim=1)] + [pynn.Dense(1) for _ in range(n_layers - 1)]


def test_a_deep_model_is_built_once_from_its_layers_and_from_a_file(monkeypatch):
    n = 200
    binds = count_binds(monkeypatch)
    net = pynn.Sequential(deep(n), seed=3)
    net.compile(loss="mse", optimizer="adam")
    assert len(binds) == n                 # each layer bound once, not once per add
    binds.clear()
    back = pynn.io.from_arrays(pynn.io.to_arrays(net))
    assert len(binds) == n
    np.testing.assert_array_equal(back.params, net.params)


@pytest.mark.parametrize("how", ["constructor", "add", "mixed", "build"])
def test_the_weights_do_not_depend_on_how_the_layers_were_added(how):
    def layers():
        return [pynn.Dense(4, activation="relu", input_dim=3), pynn.Dense(5, activation="tanh"),
                pynn.Dense(2)]

    expected = pynn.Sequential(layers(), seed=7).get_weights()
    if how == "constructor":
        net = pynn.Sequential(layers(), seed=7)
    elif how == "add":
        net = pynn.Sequential(seed=7)
        for layer in layers():
            net.add(layer)
    elif how == "mixed":
        first, *rest = layers()
        net = pynn.Sequential([first], seed=7)
        for layer in rest:
            net.add(layer)
    else:
        specs = layers()
        specs[0] = pynn.Dense(4, activation="relu")
        net = pynn.Sequential(specs, seed=7)
        assert not net.built
        net.build(3)
    for a, b in zip(net.get_weights(), expected):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("args", [("mse", "sgd"), ("binary_crossentropy", pynn.Adam()),
                                  (pynn.MeanSquaredError(), "adam")])
def test_compile_in_the_old_order_is_refused_by_name(args):
    net = pynn.Sequential([pynn.Dense(1, activation="sigmoid", input_dim=2)])
    with pytest.raises(TypeError, match=r"compile takes \(optimizer, loss, metrics\)"):
        net.compile(*args)
    assert net.loss is None and net.optimizer is None      # nothing was compiled


def test_compile_takes_keras_order_positionally():
    net = pynn.Sequential([pynn.Dense(1, activation="sigmoid", input_dim=2)])
    net.compile("adam", "binary_crossentropy", ["accuracy"])
    assert isinstance(net.optimizer, pynn.Adam) and net.loss.name == "binary_crossentropy"
    assert [m.name for m in net.metrics] == ["accuracy"]


def test_data_parallel_fit_refuses_stateful_metrics():
    net = pynn.Sequential([pynn.Dense(1, activation="sigmoid", input_dim=2)])
    net.compile(loss="binary_crossentropy", metrics=["accuracy", "auc"])
    with pytest.raises(ValueError, match=r"data-parallel.*\['auc'\]"):
        net.fit(np.zeros((4, 2)), np.zeros(4), comm=object(), verbose=0)


def test_verbose_and_batch_size_as_keras():
    x = np.random.default_rng(0).normal(size=(70, 2))
    y = x.sum(axis=1)
    nets = []
    for kwargs in ({"batch_size": None, "verbose": "auto"}, {"batch_size": 32, "verbose": 1}):
        net = pynn.Sequential([pynn.Dense(1, input_dim=2)], dtype="float64", seed=5)
        net.compile(loss="mse")
        net.fit(x, y, epochs=2, **kwargs)
        nets.append(net)
    for a, b in zip(*(n.get_weights() for n in nets)):
        np.testing.assert_array_equal(a, b)     # None is 32, "auto" is 1
    net = nets[0]
    for verbose in ("auto", 0, 1, 2):
        np.testing.assert_array_equal(net.predict(x, verbose=verbose), net.predict(x))
        assert net.evaluate(x, y, verbose=verbose) == net.evaluate(x, y)
    for bad in (3, -1, True, "loud", 1.0):
        for call in (lambda: net.predict(x, verbose=bad),
                     lambda: net.evaluate(x, y, verbose=bad),
                     lambda: net.fit(x, y, verbose=bad)):
            with pytest.raises(ValueError, match=r"verbose must be 'auto', 0, 1 or 2"):
                call()


def test_unknown_attributes_refused_on_layers_and_models():
    layer = pynn.Dense(2, input_dim=3)
    net = pynn.Sequential([layer, pynn.Dense(1)])
    for obj, name in ((layer, "activity_regularizer"), (net, "run_eagerly"), (net, "stop_traning")):
        with pytest.raises(AttributeError, match=rf"cannot set '{name}'.*attributes that can be set"):
            setattr(obj, name, 1)
        assert not hasattr(obj, name)
    net.stop_training = True                    # known ones still set
    layer.name = "first"
    assert net.stop_training and layer.name == "first"


def test_trainable_takes_booleans_only():
    net = pynn.Sequential([pynn.Dense(2, input_dim=3), pynn.Dense(1)])
    for obj in (net.layers[0], net):
        assert obj.trainable is True
        with pytest.raises(TypeError, match="trainable"):
            obj.trainable = "no"
        assert obj.trainable is True


def test_keras_inference_methods():
    x = np.random.default_rng(1).normal(size=(9, 3))
    y = x[:, 0]
    net = pynn.Sequential([pynn.Dense(4, "tanh", input_dim=3, name="hidden"),
                           pynn.Dense(1, name="out")], dtype="float64", seed=2)
    net.compile(loss="mse", metrics=["mae"])
    np.testing.assert_array_equal(net(x), net.predict(x))
    np.testing.assert_array_equal(net.predict_on_batch(x), net.predict(x))
    assert net.test_on_batch(x, y) == net.evaluate(x, y)
    assert net.test_on_batch(x, y, return_dict=True) == net.evaluate(x, y, return_dict=True)
    assert net.metrics_names == ["loss", "mae"]
    assert net.get_layer("out") is net.layers[1] and net.get_layer(index=0) is net.layers[0]
    assert net.get_layer(index=-1) is net.layers[1]
    with pytest.raises(ValueError, match="no layer named 'x'.*hidden"):
        net.get_layer("x")
    with pytest.raises(ValueError, match="name or its index"):
        net.get_layer()
    with pytest.raises(ValueError, match="index 2 is out of range"):
        net.get_layer(index=2)
    assert net.count_params() == 3 * 4 + 4 + 4 + 1


def test_evaluate_returns_as_keras_3(data):
    x, y = data
    plain = make_net(dtype="float64")
    loss = plain.evaluate(x, y)
    assert type(loss) is float
    assert plain.evaluate(x, y, return_dict=True) == {"loss": loss}
    net = make_model((8, "tanh"), (3, None), input_dim=8, metrics=["mae", "mse"])
    scores = net.evaluate(x, y, return_dict=True)
    out = net.predict(x)
    assert scores["loss"] == pytest.approx(np.mean((out - y) ** 2), rel=1e-12)
    assert scores["mae"] == pytest.approx(np.mean(np.abs(out - y)), rel=1e-12)
    values = net.evaluate(x, y)
    assert isinstance(values, list) and all(type(v) is float for v in values)
    assert values == [scores[name] for name in net.metrics_names]
    assert net.metrics_names == ["loss", "mae", "mse"]
    assert net.test_on_batch(x, y) == values
    for bad in (1, "yes", None):
        with pytest.raises(TypeError, match="return_dict must be True or False"):
            net.evaluate(x, y, return_dict=bad)


def test_test_on_batch_takes_sample_weight(data):
    x, y = data
    net = make_net(dtype="float64")
    w = np.linspace(0.0, 2.0, x.shape[0])
    expected = np.sum(w[:, None] * (net.predict(x) - y) ** 2) / y.size
    assert net.test_on_batch(x, y, sample_weight=w) == pytest.approx(expected, rel=1e-12)
    assert net.test_on_batch(x, y, sample_weight=w, return_dict=True) == \
        {"loss": net.evaluate(x, y, sample_weight=w)}


def test_train_on_batch_returns_as_keras_3(data):
    x, y = data
    plain = make_net(dtype="float64")
    assert type(plain.train_on_batch(x, y)) is float
    assert set(plain.train_on_batch(x, y, return_dict=True)) == {"loss"}
    net = make_model((8, "tanh"), (3, None), input_dim=8, metrics=["mae", "mse"],
                     optimizer=pynn.SGD(learning_rate=0.1))
    before = net.evaluate(x, y, return_dict=True)        # the outputs before the update
    values = net.train_on_batch(x, y)
    assert isinstance(values, list) and len(values) == len(net.metrics_names)
    for value, name in zip(values, net.metrics_names):
        assert value == pytest.approx(before[name], rel=1e-12)
    after = net.evaluate(x, y, return_dict=True)
    scores = net.train_on_batch(x, y, return_dict=True)
    assert list(scores) == net.metrics_names
    assert scores == pytest.approx(after, rel=1e-12)
    assert after["loss"] != before["loss"]               # the update was applied
    with pytest.raises(TypeError, match="return_dict must be True or False"):
        net.train_on_batch(x, y, return_dict="no")


def test_train_on_batch_reports_a_stateful_metric_of_that_batch_alone(rng):
    x = rng.standard_normal((40, 4))
    labels = (x[:, 0] + 0.3 * rng.standard_normal(40) > 0).astype(float)
    net = make_model((1, "sigmoid"), input_dim=4, loss="binary_crossentropy",
                     metrics=["auc"], optimizer=pynn.SGD(learning_rate=1e-3))
    for half in (slice(0, 20), slice(20, 40)):
        expected = net.evaluate(x[half], labels[half], return_dict=True)["auc"]
        _, auc = net.train_on_batch(x[half], labels[half])
        assert auc == pytest.approx(expected, abs=1e-12)
