"""Custom losses, metrics and activations (pynn.custom): the NumPy path
against the compiled network, gradients against central differences,
metrics against NumPy, and what is refused."""
import numpy as np
import pytest

import pynn
from pynn import activations, losses
from pynn.errors import DivergenceError


class HandMSE(losses.Loss):
    """MSE written by hand: the mean over each sample's outputs."""

    def call(self, y_true, y_pred):
        return np.mean((y_pred - y_true) ** 2, axis=1)

    def gradient(self, y_true, y_pred):
        return 2 * (y_pred - y_true) / y_pred.shape[1]


class LogCosh(losses.Loss):
    def call(self, y_true, y_pred):
        return np.sum(np.log(np.cosh(y_pred - y_true)), axis=1)

    def gradient(self, y_true, y_pred):
        return np.tanh(y_pred - y_true)


class HandTanh(activations.Activation):
    def __call__(self, z):
        return np.tanh(z)

    def derivative(self, z):
        return 1 - np.tanh(z) ** 2


class Softsign(activations.Activation):
    def __call__(self, z):
        return z / (1 + np.abs(z))

    def derivative(self, z):
        return 1 / (1 + np.abs(z)) ** 2


def model(hidden="tanh", loss="mse", optimizer="adam", dtype="float64", metrics=None,
          out="linear", n_out=2, seed=3):
    net = pynn.Sequential([pynn.Dense(6, activation=hidden, input_dim=4),
                           pynn.Dense(5, activation=hidden),
                           pynn.Dense(n_out, activation=out)], dtype=dtype, seed=seed)
    net.compile(optimizer, loss, metrics)
    return net


@pytest.fixture
def data(rng):
    x = rng.normal(size=(50, 4))
    y = rng.normal(size=(50, 2))
    return x, y


def assert_same_weights(a, b, rtol, atol):
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=rtol, atol=atol)


TOLS = {"float64": (1e-10, 1e-12), "float32": (2e-4, 2e-5)}


# --------------------------------------------- the NumPy path against the compiled one


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("optimizer", [
    "sgd", lambda: pynn.SGD(0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "adam", "rmsprop", "adamw", "nadam", "adagrad"])
def test_a_hand_written_mse_trains_as_the_compiled_mse(data, dtype, optimizer):
    x, y = data
    opt = optimizer if isinstance(optimizer, str) else optimizer()
    opt2 = optimizer if isinstance(optimizer, str) else optimizer()
    compiled, custom = model(loss="mse", optimizer=opt, dtype=dtype), \
        model(loss=HandMSE(), optimizer=opt2, dtype=dtype)
    assert custom.numpy_path and not compiled.numpy_path
    ha = compiled.fit(x, y, epochs=3, batch_size=16, verbose=0)
    hb = custom.fit(x, y, epochs=3, batch_size=16, verbose=0)
    rtol, atol = TOLS[dtype]
    assert_same_weights(compiled, custom, rtol, atol)
    np.testing.assert_allclose(hb.history["loss"], ha.history["loss"], rtol=rtol * 10)
    assert custom.optimizer.iterations == compiled.optimizer.iterations == 12
    np.testing.assert_allclose(custom.predict(x), compiled.predict(x), rtol=rtol, atol=atol)
    np.testing.assert_allclose(custom.evaluate(x, y), compiled.evaluate(x, y),
                               rtol=rtol * 10)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_hand_written_tanh_trains_as_the_compiled_tanh(data, dtype):
    x, y = data
    compiled, custom = model("tanh", dtype=dtype), model(HandTanh(), dtype=dtype)
    assert custom.numpy_path
    compiled.fit(x, y, epochs=3, batch_size=16, verbose=0)
    custom.fit(x, y, epochs=3, batch_size=16, verbose=0)
    rtol, atol = TOLS[dtype]
    assert_same_weights(compiled, custom, 10 * rtol, 10 * atol)
    np.testing.assert_allclose(custom.predict(x), compiled.predict(x), rtol=10 * rtol,
                               atol=10 * atol)


def test_a_custom_activation_under_a_fused_softmax_cross_entropy(rng):
    x = rng.normal(size=(40, 4))
    labels = rng.integers(0, 3, size=40)
    kw = dict(loss="sparse_categorical_crossentropy", out="softmax", n_out=3,
              metrics=["accuracy"])
    compiled, custom = model("tanh", **kw), model(HandTanh(), **kw)
    ha = compiled.fit(x, labels, epochs=2, batch_size=8, verbose=0)
    hb = custom.fit(x, labels, epochs=2, batch_size=8, verbose=0)
    assert_same_weights(compiled, custom, 1e-9, 1e-11)
    assert hb.history["accuracy"] == ha.history["accuracy"]
    np.testing.assert_allclose(custom.predict(x).sum(axis=1), 1.0)


def test_sample_weight_schedules_and_callbacks_on_the_numpy_path(data, rng):
    x, y = data
    w = rng.uniform(0, 2, size=x.shape[0])
    seen = []
    results = []
    for loss in ("mse", HandMSE()):
        net = model(loss=loss, optimizer=pynn.SGD(pynn.schedules.ExponentialDecay(
            0.05, decay_steps=2, decay_rate=0.5)))
        cb = pynn.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(epoch))
        net.fit(x, y, epochs=2, batch_size=10, sample_weight=w, callbacks=[cb], verbose=0,
                validation_data=(x[:10], y[:10]))
        results.append(net)
        results.append(net.evaluate(x, y, sample_weight=w))
    assert_same_weights(results[0], results[2], 1e-10, 1e-12)
    np.testing.assert_allclose(results[3], results[1], rtol=1e-10)
    assert seen == [0, 1, 0, 1]


def test_train_on_batch_and_gradients_on_the_numpy_path(data):
    x, y = data
    compiled, custom = model(), model(Softsign(), loss=LogCosh())
    loss, grads = custom.gradients(x, y)
    expected = np.mean(np.sum(np.log(np.cosh(custom.predict(x) - y)), axis=1))
    np.testing.assert_allclose(loss, expected, rtol=1e-12)
    before = custom.get_weights()
    custom.train_on_batch(x, y)
    # Adam's first step moves every weight whose gradient is not zero by about lr
    moved = [np.abs(a - b).max() for a, b in zip(custom.get_weights(), before)]
    assert all(0 < m <= 1.01e-3 for m in moved)
    assert custom.optimizer.iterations == 1 and len(grads) == 6


# ------------------------------------------------------------- gradients


def test_custom_gradients_agree_with_central_differences(data):
    x, y = data
    net = model(Softsign(), loss=LogCosh())
    errors = pynn.check_gradients(net, x[:8], y[:8])
    assert max(errors.values()) < 1e-7, errors


def test_a_wrong_custom_derivative_is_caught_by_central_differences(data):
    x, y = data

    class WrongSoftsign(Softsign):
        def derivative(self, z):
            return 1 / (1 + np.abs(z))          # not squared

    errors = pynn.check_gradients(model(WrongSoftsign(), loss=LogCosh()), x[:8], y[:8])
    assert max(errors.values()) > 1e-2, errors


# ---------------------------------------------------------------- metrics


def mean_abs_log_ratio(y_true, y_pred):
    return np.abs(np.log1p(np.abs(y_pred)) - np.log1p(np.abs(y_true))).mean(axis=1)


def max_error(y_true, y_pred):
    return np.max(np.abs(y_pred - y_true))      # a scalar for the batch


@pytest.mark.parametrize("loss", ["mse", HandMSE()], ids=["compiled", "numpy"])
def test_a_custom_metric_is_the_numpy_mean_over_samples(data, loss):
    x, y = data
    net = model(loss=loss, metrics=[mean_abs_log_ratio, "mae"])
    assert net.metrics_names == ["loss", "mean_abs_log_ratio", "mae"]
    before = net.predict(x)
    # one batch: the logged value is the metric on the outputs before the update
    history = net.fit(x, y, epochs=1, batch_size=x.shape[0], shuffle=False, verbose=0,
                      validation_data=(x[:20], y[:20]))
    np.testing.assert_allclose(history.history["mean_abs_log_ratio"][0],
                               np.mean(mean_abs_log_ratio(y, before)), rtol=1e-12)
    after = net.predict(x)
    scores = net.evaluate(x, y, batch_size=16, return_dict=True)
    np.testing.assert_allclose(scores["mean_abs_log_ratio"],
                               np.mean(mean_abs_log_ratio(y, after)), rtol=1e-12)
    np.testing.assert_allclose(history.history["val_mean_abs_log_ratio"][0],
                               np.mean(mean_abs_log_ratio(y[:20], after[:20])), rtol=1e-12)


def test_a_scalar_metric_is_averaged_over_batches_by_their_sizes(data):
    x, y = data
    net = model(metrics=[max_error])
    out = net.predict(x)
    per_chunk = [max_error(y[s:s + 16], out[s:s + 16]) for s in range(0, 50, 16)]
    expected = np.average(per_chunk, weights=[16, 16, 16, 2])
    scores = net.evaluate(x, y, batch_size=16, return_dict=True)
    np.testing.assert_allclose(scores["max_error"], expected, rtol=1e-12)


def test_a_custom_metric_reads_probabilities_of_a_fused_output(rng):
    x = rng.normal(size=(30, 4))
    labels = rng.integers(0, 2, size=(30, 1)).astype(float)

    def mean_probability(y_true, y_pred):
        return y_pred[:, 0]

    for hidden in ("tanh", HandTanh()):
        net = model(hidden, loss="binary_crossentropy", out="sigmoid", n_out=1,
                    metrics=[mean_probability])
        scores = net.evaluate(x, labels, return_dict=True)
        np.testing.assert_allclose(scores["mean_probability"], net.predict(x).mean(),
                                   rtol=1e-12)


# --------------------------------------------------------------- refusals


def test_a_plain_function_loss_is_refused_with_what_to_give():
    def my_loss(y_true, y_pred):
        return np.mean((y_true - y_pred) ** 2, axis=1)

    with pytest.raises(TypeError, match="my_loss.*gradient"):
        model(loss=my_loss)
    my_loss.gradient = lambda y_true, y_pred: 2 * (y_pred - y_true) / y_pred.shape[1]
    assert model(loss=my_loss).loss.name == "my_loss"


def test_a_loss_subclass_without_gradient_is_refused():
    class Half(losses.Loss):
        def call(self, y_true, y_pred):
            return np.mean(y_pred - y_true, axis=1)

    with pytest.raises(TypeError, match="gradient"):
        model(loss=Half())


def test_a_plain_function_activation_is_refused_with_what_to_give():
    with pytest.raises(TypeError, match="derivative"):
        pynn.Dense(3, activation=np.tanh)

    def cube(z):
        return z ** 3

    cube.derivative = lambda z: 3 * z ** 2
    assert pynn.Dense(3, activation=cube).activation is cube


def test_wrong_shapes_from_custom_callables_are_refused(data):
    x, y = data

    class Summed(HandMSE):
        def call(self, y_true, y_pred):
            return np.sum((y_pred - y_true) ** 2)      # a scalar, not per sample

    net = model(loss=Summed())
    before = net.get_weights()
    with pytest.raises(ValueError, match="one loss per sample"):
        net.train_on_batch(x, y)

    class Flat(HandTanh):
        def derivative(self, z):
            return np.ones(z.shape[1])

    with pytest.raises(ValueError, match="derivative of 'Flat'.*shape"):
        model(Flat()).train_on_batch(x, y)
    for a, b in zip(net.get_weights(), before):
        np.testing.assert_array_equal(a, b)


def test_custom_callables_get_read_only_arrays(data):
    x, y = data
    x_copy, y_copy = x.copy(), y.copy()

    class InPlace(HandMSE):
        def call(self, y_true, y_pred):
            y_pred -= y_true
            return np.mean(y_pred ** 2, axis=1)

    with pytest.raises(ValueError, match="read-only"):
        model(loss=InPlace()).train_on_batch(x, y)
    np.testing.assert_array_equal(x, x_copy)
    np.testing.assert_array_equal(y, y_copy)


def test_a_model_with_custom_callables_is_not_saved(data, tmp_path):
    x, y = data
    net = model(HandTanh(), loss=HandMSE(), metrics=[max_error])
    with pytest.raises(TypeError, match="HandTanh.*HandMSE.*max_error.*get_weights"):
        net.save(tmp_path / "m.pynn")
    assert not list(tmp_path.iterdir())


def test_a_data_parallel_fit_is_refused(data):
    x, y = data
    with pytest.raises(ValueError, match="custom loss or activation"):
        model(loss=HandMSE()).fit(x, y, comm=object(), verbose=0)


def test_metrics_must_be_a_list_even_of_one_callable():
    with pytest.raises(TypeError, match="must be a list"):
        model(metrics=max_error)


# --------------------------------------------------------------- safety


class Exploding(HandMSE):
    """HandMSE whose loss is infinite once any output exceeds ``limit``."""

    limit = np.inf

    def call(self, y_true, y_pred):
        per = super().call(y_true, y_pred)
        return np.where(np.abs(y_pred).max(axis=1) > self.limit, np.inf, per)


def test_a_non_finite_custom_loss_refuses_the_step_bit_for_bit(data):
    x, y = data
    net = model(loss=Exploding())
    net.fit(x, y, epochs=1, batch_size=10, verbose=0)
    weights, state = net.get_weights(), net.optimizer.state.copy()
    iterations = net.optimizer.iterations
    net.loss.limit = -1.0
    with pytest.raises(DivergenceError):
        net.train_on_batch(x, y)
    with pytest.raises(DivergenceError):
        net.fit(x, y, epochs=1, batch_size=10, verbose=0)
    for a, b in zip(net.get_weights(), weights):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(net.optimizer.state, state)
    assert net.optimizer.iterations == iterations


def test_a_non_finite_derivative_refuses_the_step(data):
    x, y = data

    class Infinite(HandTanh):
        def derivative(self, z):
            return np.full_like(z, np.inf)

    net = model(Infinite(), loss=HandMSE())
    weights = net.get_weights()
    with pytest.raises(DivergenceError):
        net.train_on_batch(x, y)
    for a, b in zip(net.get_weights(), weights):
        np.testing.assert_array_equal(a, b)
    assert net.optimizer.iterations == 0


def test_non_finite_inputs_are_refused_by_name_on_the_numpy_path(data):
    x, y = data
    x = x.copy()
    x[3, 1] = np.nan
    net = model(loss=HandMSE())
    with pytest.raises(ValueError, match="x"):
        net.train_on_batch(x, y)
    with pytest.raises(ValueError, match="x"):
        net.fit(x, y, verbose=0)


def test_a_stream_of_batches_trains_as_the_arrays_on_the_numpy_path(data):
    x, y = data
    pairs = [(x[k:k + 16], y[k:k + 16]) for k in range(0, 50, 16)]
    on_arrays, on_stream = (model(HandTanh(), metrics=[max_error]) for _ in range(2))
    ha = on_arrays.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
    hb = on_stream.fit(pairs, epochs=2, verbose=0)
    np.testing.assert_array_equal(on_stream.params, on_arrays.params)
    assert hb.history == ha.history


def test_sparse_x_trains_as_dense_x_on_the_numpy_path(data):
    sparse = pytest.importorskip("scipy.sparse")
    x, y = data
    x = np.where(np.abs(x) > 0.8, x, 0.0)
    on_dense, on_sparse = model(loss=HandMSE()), model(loss=HandMSE())
    on_dense.fit(x, y, epochs=2, batch_size=16, verbose=0)
    on_sparse.fit(sparse.csr_matrix(x), y, epochs=2, batch_size=16, verbose=0)
    np.testing.assert_array_equal(on_sparse.params, on_dense.params)
    np.testing.assert_array_equal(on_sparse.predict(sparse.csc_matrix(x)),
                                  on_dense.predict(x))
    assert on_sparse.evaluate(sparse.csr_matrix(x), y) == on_dense.evaluate(x, y)


@pytest.mark.parametrize("loss", [lambda: pynn.losses.Huber(delta=0.3), lambda: "mae"],
                         ids=["huber", "mae"])
def test_a_custom_activation_under_a_compiled_regression_loss(data, loss):
    x, y = data
    compiled, custom = model("tanh", loss=loss()), model(HandTanh(), loss=loss())
    compiled.fit(x, y, epochs=2, batch_size=16, verbose=0)
    custom.fit(x, y, epochs=2, batch_size=16, verbose=0)
    assert_same_weights(compiled, custom, 1e-9, 1e-11)


@pytest.mark.parametrize("hidden", ["gelu", "swish", "elu", "leaky_relu", "softplus"])
def test_a_custom_loss_over_every_compiled_activation(data, hidden):
    x, y = data
    compiled, custom = model(hidden), model(hidden, loss=HandMSE())
    compiled.fit(x, y, epochs=2, batch_size=16, verbose=0)
    custom.fit(x, y, epochs=2, batch_size=16, verbose=0)
    assert_same_weights(compiled, custom, 1e-9, 1e-11)


def test_the_keras_namespace_dense_layers_train_on_the_numpy_path(data):
    from pynn.keras import layers as keras_layers
    x, y = data
    net = pynn.Sequential([keras_layers.Dense(4, activation="tanh", input_dim=4),
                           keras_layers.Dense(2)], dtype="float64", seed=0)
    net.compile("sgd", HandMSE())
    twin = pynn.Sequential([pynn.Dense(4, activation="tanh", input_dim=4), pynn.Dense(2)],
                           dtype="float64", seed=0)
    twin.compile("sgd", "mse")
    net.fit(x, y, epochs=2, verbose=0)
    twin.fit(x, y, epochs=2, verbose=0)
    assert_same_weights(net, twin, 1e-9, 1e-11)


def test_a_custom_metric_cannot_write_into_y_or_the_network_s_output(data):
    x, y = data
    y = np.ascontiguousarray(y)          # handed on as it is, no copy made
    before = y.copy()

    def vandal(y_true, y_pred):
        y_true -= y_pred                 # raises: both are read-only
        return 0.0

    net = model(metrics=[vandal])
    with pytest.raises(ValueError, match="read-only"):
        net.evaluate(x, y)
    np.testing.assert_array_equal(y, before)


def test_an_activation_subclass_without_its_derivative_is_refused_at_dense():
    class NoDerivative(activations.Activation):
        def __call__(self, z):
            return np.tanh(z)

    class NoFunction(activations.Activation):
        def derivative(self, z):
            return np.ones_like(z)

    for bad in (NoDerivative(), NoFunction()):
        with pytest.raises(TypeError, match="derivative"):
            pynn.Dense(3, activation=bad)


def test_a_loss_gradient_may_hand_back_its_input(data):
    # gradient returns y_pred itself (a read-only view): pynn copies before scaling
    class GivesBack(losses.Loss):
        def call(self, y_true, y_pred):
            return 0.5 * np.sum(y_pred ** 2, axis=1)

        def gradient(self, y_true, y_pred):
            return y_pred

    x, y = data
    net = model(loss=GivesBack(), optimizer="sgd")
    before = net.params.copy()
    net.train_on_batch(x, y)
    assert not np.array_equal(net.params, before)
    assert np.all(np.isfinite(net.params))
