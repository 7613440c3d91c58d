"""pynn.keras: Keras's signatures, return values and kernel layout over pynn,
and a clear error for everything pynn cannot do yet."""
import warnings

import numpy as np
import pytest

import pynn
from pynn import keras, reference
from pynn.keras import layers


def data(n=120, d=5, seed=0):
    r = np.random.default_rng(seed)
    x = r.standard_normal((n, d))
    return x, (x[:, 0] - x[:, 1] > 0).astype(float)


def make(units=(6,), d=5, out=1, activation="sigmoid", dtype="float64"):
    model = keras.Sequential([keras.Input(shape=(d,))]
                             + [layers.Dense(u, activation="tanh") for u in units]
                             + [layers.Dense(out, activation=activation)], dtype=dtype)
    return model


# ------------------------------------------------------------ kernel layout


def test_kernel_is_a_view_of_w_transposed():
    model = make()
    layer = model.layers[0]
    assert layer.kernel.shape == (5, 6) and layer.bias.shape == (6,)
    assert np.shares_memory(layer.kernel, model.pynn_model.params)
    np.testing.assert_array_equal(layer.kernel, layer.W.T)
    x, _ = data()
    layer.kernel[...] = 0.0                     # writing the view writes the model
    assert np.all(model.pynn_model.layers[0].W == 0)
    np.testing.assert_allclose(model.layers[1].forward(np.tanh(x @ layer.kernel + layer.bias)),
                               model.predict(x, verbose=0), rtol=1e-12)


def test_weights_in_keras_layout_define_the_model():
    # a square layer: Keras's layout is the layout (x @ kernel + bias)
    r = np.random.default_rng(3)
    model = keras.Sequential([keras.Input(shape=(4,)), layers.Dense(4),
                              layers.Dense(2, activation="softmax")], dtype="float64")
    weights = [r.standard_normal((4, 4)), r.standard_normal(4),
               r.standard_normal((4, 2)), r.standard_normal(2)]
    model.set_weights(weights)
    x = r.standard_normal((7, 4))
    logits = (x @ weights[0] + weights[1]) @ weights[2] + weights[3]
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-12)
    for got, given in zip(model.get_weights(), weights):
        np.testing.assert_array_equal(got, given)
    np.testing.assert_array_equal(model.layers[0].get_weights()[0], weights[0])
    # the pynn model underneath holds W = kernel.T
    np.testing.assert_array_equal(model.pynn_model.get_weights()[2], weights[2].T)


def test_wrong_orientation_and_shapes_refused_before_any_copy():
    model = make()
    before = model.get_weights()
    wrong = [w.T.copy() if w.ndim == 2 else w for w in before]      # pynn's layout
    with pytest.raises(ValueError, match=r"\(inputs, units\) = \(5, 6\).*transpose"):
        model.set_weights(wrong)
    with pytest.raises(ValueError, match="4 arrays"):
        model.set_weights(before[:2])
    bad = [w.copy() for w in before]
    bad[3] = np.full_like(bad[3], np.nan)
    with pytest.raises(ValueError, match="weights\\[3\\]"):
        model.set_weights(bad)
    with pytest.raises(ValueError, match="transpose"):
        model.layers[0].set_weights([before[0].T, before[1]])
    for a, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------- attributes never ignored


def test_unknown_attributes_are_refused():
    model = make()
    layer = model.layers[0]
    with pytest.raises(AttributeError, match="kernel_constraint"):
        layer.kernel_constraint = "non_neg"
    with pytest.raises(AttributeError, match="fixed when the layer is made"):
        layer.activation = "relu"
    with pytest.raises(AttributeError, match="run_eagerly"):
        model.run_eagerly = True
    layer.trainable = True          # what it already is
    layer.name = "first"
    assert model.get_layer("first") is layer


# ------------------------------------------------------- Keras's signatures


def test_compile_in_kerass_order_and_evaluates_return():
    x, y = data()
    model = make()
    model.compile("adam", "binary_crossentropy")            # positional, Keras's order
    loss = model.evaluate(x, y, verbose=0)
    assert isinstance(loss, float)
    assert loss == model.pynn_model.evaluate(x, y, return_dict=True)["loss"]
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="binary_crossentropy",
                  metrics=["accuracy", "mse"])
    loss, acc, mse = model.evaluate(x, y, verbose=0)
    p = model.predict(x, verbose=0).ravel()
    assert acc == np.mean((p > 0.5) == y)
    assert mse == pytest.approx(np.mean((p - y) ** 2), rel=1e-12)
    assert model.evaluate(x, y, verbose=0, return_dict=True) == \
        {"loss": loss, "accuracy": acc, "mse": mse}
    assert model.metrics_names == ["loss", "accuracy", "mse"]
    model.compile(loss="mse")                                # Keras's default optimizer
    assert type(model.optimizer).__name__ == "RMSprop"
    with pytest.raises(ValueError, match="needs a loss"):
        model.compile("adam")


def test_verbose_and_batch_size_as_keras(capsys):
    x, y = data()
    model = make()
    model.compile(optimizer="sgd", loss="binary_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=2, verbose="auto", batch_size=None)
    assert history.params["batch_size"] == 32 and history.params["verbose"] == 1
    assert "Epoch 2/2" in capsys.readouterr().out
    model.predict(x, verbose=0)
    model.evaluate(x, y)                                    # verbose="auto" prints
    assert "accuracy:" in capsys.readouterr().out
    model.evaluate(x, y, verbose=0)
    assert capsys.readouterr().out == ""
    with pytest.raises(ValueError, match="verbose"):
        model.predict(x, verbose=3)
    with pytest.raises(ValueError, match="verbose"):
        model.fit(x, y, verbose="loud")


def test_train_test_predict_on_batch_and_call():
    x, y = data()
    keras.utils.set_random_seed(0)
    model = make()
    keras.utils.set_random_seed(0)
    twin = make()
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="binary_crossentropy",
                  metrics=["accuracy"])
    twin.compile(optimizer=keras.optimizers.SGD(0.1), loss="binary_crossentropy",
                 metrics=["accuracy"])
    before = model.evaluate(x[:32], y[:32], verbose=0)
    loss, acc = model.train_on_batch(x[:32], y[:32])      # on the outputs before the update
    assert [loss, acc] == pytest.approx(before, rel=1e-12)
    assert model.test_on_batch(x[:32], y[:32]) != before
    assert twin.train_on_batch(x[:32], y[:32], return_dict=True) == \
        {"loss": loss, "accuracy": acc}
    np.testing.assert_array_equal(model(x), model.predict_on_batch(x))
    assert model.count_params() == 5 * 6 + 6 + 6 + 1
    assert model.get_layer(index=1) is model.layers[1]


def test_set_random_seed_makes_runs_repeat():
    keras.utils.set_random_seed(5)
    first, second = make(), make()
    keras.utils.set_random_seed(5)
    again = make()
    for a, b in zip(first.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first.get_weights()[0], second.get_weights()[0])
    with pytest.raises(ValueError, match="seed"):
        keras.utils.set_random_seed(-1)


def test_activation_layer_fuses_into_the_linear_dense():
    keras.utils.set_random_seed(1)
    fused = keras.Sequential([keras.Input(shape=(5,)), layers.Dense(6),
                              layers.Activation("relu"), layers.Dense(1),
                              layers.Activation(keras.activations.sigmoid)])
    keras.utils.set_random_seed(1)
    plain = keras.Sequential([keras.Input(shape=(5,)), layers.Dense(6, activation="relu"),
                              layers.Dense(1, activation="sigmoid")])
    x, _ = data()
    np.testing.assert_array_equal(fused.predict(x, verbose=0), plain.predict(x, verbose=0))
    assert [layer.activation for layer in fused.layers] == ["relu", "sigmoid"]
    with pytest.raises(NotImplementedError, match="after a Dense with activation 'sigmoid'"):
        plain.add(layers.Activation("tanh"))


def test_fit_stops_on_divergence_with_terminate_on_nan():
    x, y = data()
    x = x * 1e200                    # the squared error overflows
    def make_linear():
        return keras.Sequential([keras.Input(shape=(5,)), layers.Dense(1)], dtype="float64")
    model = make_linear()
    model.compile(optimizer=keras.optimizers.SGD(1.0), loss="mse")
    with pytest.raises(pynn.DivergenceError):
        model.fit(x, y, epochs=3, verbose=0)
    model = make_linear()
    model.compile(optimizer=keras.optimizers.SGD(1.0), loss="mse")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(x, y, epochs=3, verbose=0,
                            callbacks=[keras.callbacks.TerminateOnNaN()])
    assert history.epoch == [] and any("training stopped" in str(w.message) for w in caught)
    assert all(np.isfinite(w).all() for w in model.get_weights())


def test_save_and_load_model(tmp_path):
    x, y = data()
    model = make()
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=2, verbose=0)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.layers[0], layers.Dense)
    np.testing.assert_array_equal(loaded.layers[0].kernel, model.layers[0].kernel)
    assert loaded.evaluate(x, y, verbose=0) == model.evaluate(x, y, verbose=0)
    loaded.fit(x, y, epochs=1, verbose=0)                  # trains on, as Keras
    with pytest.raises(AttributeError):
        loaded.layers[0].units = 3
    with pytest.raises(FileExistsError):
        model.save(path, overwrite=False)
    bare = keras.models.load_model(path, compile=False)
    with pytest.raises(RuntimeError, match="compile"):
        bare.evaluate(x, y, verbose=0)
    np.testing.assert_array_equal(bare.predict(x, verbose=0),
                                  keras.models.load_model(path).predict(x, verbose=0))


# -------------------------------------- what pynn lacks: a clear error each


@pytest.mark.parametrize("make_missing, match", [
    (lambda: layers.Dropout(0.5, noise_shape=(1, 4)), "noise_shape"),
    (lambda: layers.BatchNormalization(synchronized=True), "synchronized"),
    (lambda: layers.LayerNormalization(rms_scaling=True), "rms_scaling"),
    (lambda: layers.Conv2D(8, 3), "Conv2D"),
    (lambda: keras.regularizers.OrthogonalRegularizer(), "OrthogonalRegularizer"),
    (lambda: layers.Dense(4, activity_regularizer="l2"), "activity_regularizer"),
    (lambda: layers.Dense(4, use_bias=False), "use_bias"),
    (lambda: keras.optimizers.Adam(weight_decay=0.004), "decoupled"),
    (lambda: keras.optimizers.Adam(amsgrad=True), "AMSGrad"),
    (lambda: keras.losses.LogCosh(), "LogCosh"),
    (lambda: keras.losses.BinaryCrossentropy(label_smoothing=0.1), "label_smoothing"),
    (lambda: keras.activations.mish(np.zeros(2)), "mish"),
    (lambda: layers.Dense(4, activation="softsign"), "softsign"),
    (lambda: keras.initializers.HeNormal(seed=3), "seed"),
    (lambda: keras.Model(), "Sequential models"),
    (lambda: keras.Input(shape=(8, 8)), "flat inputs"),
    (lambda: keras.metrics.AUC(curve="PR"), "curve"),
])
def test_missing_pieces_raise_a_clear_error(make_missing, match):
    with pytest.raises(NotImplementedError, match=match):
        make_missing()


def test_missing_training_options_raise_a_clear_error():
    x, y = data()
    model = make()
    with pytest.raises(NotImplementedError, match="adadelta"):
        model.compile(optimizer="adadelta", loss="mse")
    with pytest.raises(NotImplementedError, match="log_cosh"):
        model.compile(optimizer="adam", loss="log_cosh")
    model.compile(optimizer="adam", loss="binary_crossentropy")
    weights = np.ones(len(y))
    with pytest.raises(NotImplementedError, match="validation is unweighted"):
        model.fit(x, y, validation_data=(x, y, weights), verbose=0)
    assert not model.pynn_model.trained          # nothing ran


def test_keras_names_that_do_not_exist_are_attribute_errors():
    with pytest.raises(AttributeError):
        layers.NoSuchLayer
    assert not hasattr(keras.optimizers, "Sgdx")


# ------------------------------------------------------ metrics, utilities


def test_keras_auc_defaults_to_kerass_thresholds():
    r = np.random.default_rng(2)
    y = (r.uniform(size=500) > 0.5).astype(float)
    p = np.clip(0.3 * y + 0.7 * r.uniform(size=500), 0, 1)
    auc = keras.metrics.AUC()
    auc.update_state(y, p)
    assert auc.num_thresholds == 200
    assert auc.result() == pytest.approx(pynn.metrics.keras_roc_auc(y, p, 200), abs=1e-15)
    prec = keras.metrics.Precision()
    prec.update_state(y, p)
    assert prec.result() == pynn.metrics.precision(y, p, 0.5)


def test_auc_precision_recall_in_compile():
    x, y = data()
    model = make()
    model.compile(optimizer="adam", loss="binary_crossentropy",
                  metrics=[keras.metrics.AUC(), keras.metrics.Precision(), "recall",
                           "AUC"])
    scores = model.evaluate(x, y, batch_size=16, verbose=0, return_dict=True)
    p = model.predict(x, verbose=0)
    assert scores["auc"] == pytest.approx(pynn.metrics.keras_roc_auc(y, p, 200), abs=1e-12)
    assert scores["AUC"] == scores["auc"]            # by name: Keras's form too
    assert scores["precision"] == pynn.metrics.precision(y, p)
    assert scores["recall"] == pynn.metrics.recall(y, p)


def test_train_on_batch_metrics_from_logits():
    x, y = data()
    model = make(activation=None)
    model.compile(optimizer="sgd", loss=keras.losses.BinaryCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    logits = model.predict(x[:40], verbose=0).ravel()
    loss, acc = model.train_on_batch(x[:40], y[:40])
    assert acc == np.mean((logits > 0) == y[:40])          # logits read as logits


def test_keras_optimizers_are_pynns():
    sgd = keras.optimizers.SGD(learning_rate=0.05, momentum=0.9, nesterov=True,
                               weight_decay=None)
    assert isinstance(sgd, pynn.SGD) and sgd.get_config() == pynn.SGD(
        0.05, momentum=0.9, nesterov=True).get_config()
    adam = keras.optimizers.Adam(weight_decay=0.0)          # no decay: nothing to refuse
    assert adam.get_config() == pynn.Adam().get_config()
    assert isinstance(keras.optimizers.get("Adam"), pynn.Adam)
    with pytest.raises(TypeError, match="momentun"):
        keras.optimizers.SGD(momentun=0.9)


def test_metric_objects_by_keras_class():
    x, y = data()
    model = make()
    model.compile(optimizer="adam", loss="binary_crossentropy",
                  metrics=[keras.metrics.BinaryAccuracy(), keras.metrics.MeanSquaredError()])
    scores = model.evaluate(x, y, verbose=0, return_dict=True)
    p = model.predict(x, verbose=0).ravel()
    assert scores["binary_accuracy"] == np.mean((p > 0.5) == y)
    assert scores["mean_squared_error"] == pytest.approx(np.mean((p - y) ** 2), rel=1e-12)


def test_to_categorical():
    out = keras.utils.to_categorical([0, 2, 1, 2])
    np.testing.assert_array_equal(out, np.eye(3, dtype=np.float32)[[0, 2, 1, 2]])
    assert keras.utils.to_categorical([1], num_classes=4).shape == (1, 4)
    with pytest.raises(ValueError, match="out of range"):
        keras.utils.to_categorical([3], num_classes=2)
    with pytest.raises(ValueError, match="integer labels"):
        keras.utils.to_categorical([0.5, 1.0])


def test_optimizers_and_schedules_save_as_pynns(tmp_path):
    x, y = data()
    model = make()
    schedule = keras.optimizers.schedules.CosineDecay(0.01, decay_steps=100, alpha=0.1,
                                                      warmup_target=0.05, warmup_steps=5)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=schedule),
                  loss=keras.losses.BinaryCrossentropy(from_logits=False))
    model.fit(x, y, epochs=2, verbose=0)
    path = model.save(str(tmp_path / "m.keras"))
    loaded = pynn.load(path)
    assert type(loaded.optimizer) is pynn.Adam
    assert loaded.optimizer.learning_rate.get_config() == schedule.get_config()
    assert type(loaded.loss) is pynn.BinaryCrossentropy


def test_callbacks_see_the_keras_model():
    x, y = data()
    model = make()
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="binary_crossentropy")
    seen = []
    probe = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(1))

    class Probe(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(self.model)
            seen.append(self.model.get_weights()[0].shape)

    stopper = keras.callbacks.EarlyStopping(monitor="loss", patience=0,
                                            restore_best_weights=True)
    model.fit(x, y, epochs=2, verbose=0, callbacks=[probe, Probe(), stopper])
    assert seen[1] is model and seen[2] == (5, 6)        # Keras's layout
    assert stopper.model is model


def test_keras_batch_hooks():
    x, y = data()
    model = make()
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="binary_crossentropy")
    batches = []

    class TrainBatches(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            batches.append((batch, logs["loss"]))

    model.fit(x, y, epochs=1, batch_size=40, verbose=0, callbacks=[TrainBatches()])
    assert [b for b, _ in batches] == [0, 1, 2]

    class BeforeBatches(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            pass

    with pytest.raises(NotImplementedError, match="on_train_batch_begin"):
        model.fit(x, y, verbose=0, callbacks=[BeforeBatches()])


@pytest.mark.parametrize("loss, twin", [
    ("mae", reference.mae),
    ("mean_absolute_error", reference.mae),
    ("huber", reference.huber),
    ("poisson", reference.poisson),
    (lambda: keras.losses.MeanAbsoluteError(), reference.mae),
    (lambda: keras.losses.Huber(delta=2.5), lambda p, y: reference.huber(p, y, delta=2.5)),
    (lambda: keras.losses.Poisson(), reference.poisson),
])
def test_regression_losses_by_keras_names(loss, twin):
    x, y = data()
    y = 3 * y.reshape(-1, 1)
    model = make(activation="sigmoid")
    model.compile(optimizer="sgd", loss=loss() if callable(loss) else loss)
    value = model.evaluate(x, y, verbose=0)      # the loss alone, as Keras without metrics
    assert value == pytest.approx(twin(model.predict(x, verbose=0), y)[0], rel=1e-12)


def test_keras_losses_refuse_other_reductions():
    with pytest.raises(NotImplementedError, match="reduction"):
        keras.losses.Huber(reduction="sum")


def test_freezing_regularizers_and_clipping_through_the_keras_names():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 3)).astype("float32")
    y = (x[:, :1] > 0).astype("float32")
    model = keras.Sequential([keras.Input(shape=(3,)),
                              layers.Dense(4, activation="tanh",
                                           kernel_regularizer=keras.regularizers.L2(0.01)),
                              layers.Dense(1, activation="sigmoid", bias_regularizer="l1")])
    model.compile(optimizer=keras.optimizers.Adam(0.01, clipnorm=1.0),
                  loss="binary_crossentropy")
    assert model.optimizer.clipnorm == 1.0
    first = model.layers[0]
    first.trainable = False
    assert first.trainable_weights == [] and len(model.non_trainable_weights) == 2
    kernel = first.get_weights()[0]
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    np.testing.assert_array_equal(first.get_weights()[0], kernel)
    # the penalty is in the reported loss: the second layer's bias L1
    plain = model.pynn_model.engine.loss(x, y, 32)
    assert plain > model.pynn_model.engine.penalty() > 0
    model.trainable = False
    assert model.trainable_weights == [] and not model.layers[1].trainable


def test_custom_callables_follow_pynn_s_protocol():
    # pynn has no automatic differentiation: a plain function is refused with
    # a TypeError saying what to add; with its derivative or gradient it trains
    # as the built-in piece it restates
    with pytest.raises(TypeError, match="derivative"):
        layers.Dense(4, activation=lambda z: z)
    model = make()
    with pytest.raises(TypeError, match="gradient"):
        model.compile(optimizer="adam", loss=lambda t, p: ((t - p) ** 2).mean())

    class Tanh(pynn.activations.Activation):
        def __call__(self, z):
            return np.tanh(z)

        def derivative(self, z):
            return 1 - np.tanh(z) ** 2

    class SquaredError(keras.losses.Loss):
        def call(self, y_true, y_pred):
            return ((y_pred - y_true) ** 2).mean(axis=1)

        def gradient(self, y_true, y_pred):
            return 2 * (y_pred - y_true) / y_pred.shape[1]

    x, y = data()
    weights = []
    for activation, loss in (("tanh", "mse"), (Tanh(), SquaredError())):
        keras.utils.set_random_seed(3)
        model = keras.Sequential([keras.Input(shape=(x.shape[1],)),
                                  layers.Dense(6, activation=activation),
                                  layers.Dense(1, activation="sigmoid")])
        model.compile(optimizer="sgd", loss=loss)
        model.fit(x, y.reshape(-1, 1).astype(x.dtype), epochs=2, batch_size=16, verbose=0)
        weights.append(model.get_weights())
    for built_in, custom in zip(*weights):
        np.testing.assert_allclose(custom, built_in, rtol=2e-4, atol=1e-6)
