"""Dropout in the compiled step: inverted dropout against reference.py's
twin, masks drawn from the model's generator (bit-reproducible, the same in
train_on_batch and the compiled epoch), off in predict and evaluate."""
import tracemalloc

import numpy as np
import pytest

import pynn
from pynn import reference as ref
from pynn.training import runners
from conftest import assert_close

RATE = 0.4


def data(dtype, n=48, n_in=6, n_out=3, seed=0):
    g = np.random.default_rng(seed)
    return (g.normal(size=(n, n_in)).astype(dtype),
            g.normal(size=(n, n_out)).astype(dtype))


def make(dtype, rate=RATE, seed=1, dropout_seed=None, optimizer="sgd", loss="mse"):
    model = pynn.Sequential([pynn.Dense(16, activation="tanh", input_dim=6),
                             pynn.Dropout(rate, seed=dropout_seed),
                             pynn.Dense(3)], dtype=dtype, seed=seed)
    model.compile(optimizer=optimizer, loss=loss)
    return model


def keep_of(u, rate):
    return u >= rate


def uniforms(generator, count):
    # the uniform each mask value is drawn from: the top 53 bits of one output
    return (generator.random_raw(count) >> np.uint64(11)).astype(np.float64) * 2.0 ** -53


def test_forward_and_backward_match_the_twin(dtype):
    x, y = data(dtype)
    model = make(dtype)
    W1, b1, W2, b2 = model.get_weights()
    state = model.generator.get_state()
    loss, grads = model.gradients(x, y)
    mask = model.engine.layer_workspace(1, x.shape[0]).copy()
    keep = mask != 0
    # gradients() changes nothing: the next step draws the same masks
    assert model.generator.get_state() == state
    model.train_on_batch(x, y)
    np.testing.assert_array_equal(model.engine.layer_workspace(1, x.shape[0]), mask)
    scale = dtype(1.0 / (1.0 - RATE))
    assert set(np.unique(mask)) <= {dtype(0), scale}
    a1 = ref.dense_forward(x, W1, b1, "tanh")
    d = ref.dropout_forward(a1, keep, RATE)
    out = ref.dense_forward(d, W2, b2, "linear")
    want_loss, grad_out = ref.mse(out, y)
    gW2, gb2, grad_d = ref.dense_backward(d, W2, out, grad_out, "linear")
    grad_a1 = ref.dropout_backward(grad_d, keep, RATE)
    gW1, gb1, _ = ref.dense_backward(x, W1, a1, grad_a1, "tanh", need_grad_x=False)
    assert_close(loss, want_loss, dtype)
    for got, want in zip(grads, (gW1, gb1, gW2, gb2)):
        assert_close(got, want, dtype, scale=10)


def test_masks_are_the_model_generators_stream_in_row_major_order(dtype):
    x, y = data(dtype)
    model = make(dtype)
    twin = model.generator.copy()
    model.train_on_batch(x, y)
    mask = model.engine.layer_workspace(1, x.shape[0])
    u = uniforms(twin, mask.size).reshape(mask.shape)
    np.testing.assert_array_equal(mask != 0, keep_of(u, RATE))
    # and the model's generator moved on by exactly those draws
    assert model.generator.get_state() == twin.get_state()
    # about 1 - rate of the values kept (48 x 16 draws: 3 sigma is 0.053)
    assert abs((mask != 0).mean() - (1 - RATE)) < 0.06


@pytest.mark.parametrize("n, width", [(1, 1), (1, 3), (1, 4), (1, 5), (3, 7), (2, 8), (5, 13)])
@pytest.mark.parametrize("rate", [1e-17, 0.25, 0.5, 0.9, 1 - 2.0 ** -53])
def test_every_count_and_rate_draws_the_stream(n, width, rate):
    # the masks are drawn four chains at a time and the last ones singly:
    # every count (tails of 0 to 3) and rates at the ends of [0, 1) give
    # the generator's stream itself, and leave the generator just past it
    model = pynn.Sequential([pynn.Dense(width, activation="tanh", input_dim=2),
                             pynn.Dropout(rate), pynn.Dense(1)], seed=4)
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.ones((n, 2)), np.zeros((n, 1))
    for _ in range(3):          # from states at every offset of the stream
        twin = model.generator.copy()
        model.gradients(x, y)
        mask = model.engine.layer_workspace(1, n)
        u = uniforms(twin, mask.size).reshape(mask.shape)
        np.testing.assert_array_equal(mask != 0, keep_of(u, rate))
        model.train_on_batch(x, y)
        assert model.generator.get_state() == twin.get_state()


def test_a_layer_seed_draws_from_its_own_generator(dtype):
    x, y = data(dtype)
    model = make(dtype, dropout_seed=7)
    before = model.generator.get_state()
    model.train_on_batch(x, y)
    mask = model.engine.layer_workspace(1, x.shape[0])
    u = uniforms(pynn.initializers.make_generator(7), mask.size).reshape(mask.shape)
    np.testing.assert_array_equal(mask != 0, keep_of(u, RATE))
    assert model.generator.get_state() == before


def test_training_is_bit_reproducible_by_seed(dtype):
    x, y = data(dtype)
    runs = []
    for seed in (3, 3, 4):
        model = make(dtype, seed=seed)
        model.fit(x, y, epochs=2, batch_size=16, verbose=0)
        runs.append(model.params.copy())
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


@pytest.mark.parametrize("dropout_seed", [None, 5])
def test_compiled_epoch_equals_train_on_batch_bit_for_bit(dtype, dropout_seed):
    x, y = data(dtype)
    fitted = make(dtype, dropout_seed=dropout_seed, optimizer="adam")
    stepped = make(dtype, dropout_seed=dropout_seed, optimizer="adam")
    assert isinstance(runners.choose(fitted, x), runners.CompiledEpoch)
    fitted.fit(x, y, epochs=3, batch_size=10, shuffle=False, verbose=0)
    for _ in range(3):
        for start in range(0, x.shape[0], 10):
            stepped.train_on_batch(x[start:start + 10], y[start:start + 10])
    np.testing.assert_array_equal(fitted.params, stepped.params)
    assert fitted.generator.get_state() == stepped.generator.get_state()


def test_off_in_predict_and_evaluate(dtype):
    x, y = data(dtype)
    model = make(dtype)
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    plain = pynn.Sequential([pynn.Dense(16, activation="tanh", input_dim=6), pynn.Dense(3)],
                            dtype=dtype)
    plain.compile(optimizer="sgd", loss="mse")
    plain.set_weights(model.get_weights())
    state = model.generator.get_state()
    out = model.predict(x)
    np.testing.assert_array_equal(out, plain.predict(x))
    np.testing.assert_array_equal(out, model.predict(x))          # deterministic
    assert model.evaluate(x, y) == plain.evaluate(x, y)
    assert model.generator.get_state() == state                  # nothing drawn


def test_rate_zero_is_the_identity_and_draws_nothing(dtype):
    x, y = data(dtype)
    model = make(dtype, rate=0.0)
    plain = pynn.Sequential([pynn.Dense(16, activation="tanh", input_dim=6), pynn.Dense(3)],
                            dtype=dtype, seed=1)
    plain.compile(optimizer="sgd", loss="mse")
    np.testing.assert_array_equal(model.params, plain.params)
    state = model.generator.get_state()
    for _ in range(3):
        assert model.train_on_batch(x, y) == plain.train_on_batch(x, y)
    np.testing.assert_array_equal(model.params, plain.params)
    assert model.generator.get_state() == state


def test_a_refused_step_changes_nothing_not_even_the_generator():
    x, y = data(np.float32)
    model = make(np.float32)
    weights = model.get_weights()
    weights[2][...] = 1e30                       # the output overflows: loss inf
    model.set_weights(weights)
    params, state = model.params.copy(), model.generator.get_state()
    with pytest.raises(pynn.DivergenceError):
        model.train_on_batch(x, y)
    with pytest.raises(pynn.DivergenceError):
        model.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    np.testing.assert_array_equal(model.params, params)
    assert model.generator.get_state() == state


@pytest.mark.parametrize("dropout_seed", [None, 9])
def test_save_and_load_continue_exactly(tmp_path, dtype, dropout_seed):
    x, y = data(dtype)
    model = make(dtype, dropout_seed=dropout_seed, optimizer="adam")
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    model.save(tmp_path / "m.npz")
    loaded = pynn.load(tmp_path / "m.npz")
    assert isinstance(loaded.layers[1], pynn.Dropout)
    assert (loaded.layers[1].rate, loaded.layers[1].seed) == (RATE, dropout_seed)
    for m in (model, loaded):
        m.fit(x, y, epochs=2, batch_size=16, verbose=0)
    np.testing.assert_array_equal(model.params, loaded.params)


def test_check_gradients_with_the_next_steps_masks():
    x, y = data(np.float64, n=12)
    model = make(np.float64)
    errors = pynn.check_gradients(model, x, y)
    assert list(errors) == ["dense/W", "dense/b", "dense_1/W", "dense_1/b"]
    assert max(errors.values()) < 1e-6
    # those were the masks of the next step: the check drew nothing itself
    twin = model.generator.copy()
    model.train_on_batch(x, y)
    mask = model.engine.layer_workspace(1, x.shape[0])
    np.testing.assert_array_equal(mask != 0, keep_of(uniforms(twin, mask.size), RATE)
                                  .reshape(mask.shape))


def test_a_step_allocates_nothing():
    # the masks live in the workspace allocated with the network: a step
    # allocates only its Python return value, whatever the batch's size
    x, y = data(np.float64, n=256)
    model = make(np.float64, optimizer="adam")
    for _ in range(3):
        model.train_on_batch(x, y)
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        for _ in range(20):
            model.step(x, y)
        peak = tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()
    assert peak < 2048          # one (256 x 16) float64 mask would be 32 KiB


@pytest.mark.parametrize("make_bad, error, match", [
    (lambda: pynn.Dropout(1.0), ValueError, r"rate must be < 1.0, got 1.0"),
    (lambda: pynn.Dropout(-0.1), ValueError, r"rate must be >= 0.0, got -0.1"),
    (lambda: pynn.Dropout(float("nan")), ValueError, "rate must be finite"),
    (lambda: pynn.Dropout("0.5"), TypeError, "rate must be a real number, got '0.5'"),
    (lambda: pynn.Dropout(True), TypeError, "rate must be a real number"),
    (lambda: pynn.Dropout(0.5, seed=-1), ValueError, "seed"),
    (lambda: pynn.Dropout(0.5, seed=1.5), TypeError, "seed"),
    (lambda: pynn.Dropout(0.5, name=3), TypeError, "name"),
])
def test_bad_settings_are_refused(make_bad, error, match):
    with pytest.raises(error, match=match):
        make_bad()


def test_settings_are_fixed_once_made():
    layer = pynn.Dropout(0.5)
    with pytest.raises(AttributeError, match="rate"):
        layer.rate = 0.2
    with pytest.raises(AttributeError, match="no such setting"):
        layer.noise = 1


def test_config_summary_and_counts():
    model = make(np.float32, dropout_seed=4)
    config = model.get_config()
    assert config["layers"][1] == {"class_name": "Dropout", "rate": RATE, "seed": 4,
                                   "name": None}
    again = pynn.Sequential.from_config(config)
    assert repr(again.layers[1]) == "Dropout(0.4)"
    np.testing.assert_array_equal(again.params, model.params)
    assert model.layers[1].count_params() == 0
    assert model.count_params() == 6 * 16 + 16 + 16 * 3 + 3
    table = model.summary(print_fn=None)
    assert "dropout (Dropout)" in table and "(None, 16)" in table


def test_the_keras_namespace():
    from pynn import keras
    x, y = data(np.float32)
    model = keras.Sequential([keras.Input(shape=(6,)),
                              keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dropout(0.25, seed=2),
                              keras.layers.Dense(3)])
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    assert model.layers[1].get_weights() == []
    np.testing.assert_array_equal(model.predict(x, verbose=0), model.predict(x, verbose=0))
    with pytest.raises(NotImplementedError, match="noise_shape"):
        keras.layers.Dropout(0.5, noise_shape=(None, 1))


def test_a_custom_loss_is_refused_beside_a_dropout_layer():
    # a custom loss trains through NumPy, which runs Dense layers alone
    class HalfSquares(pynn.losses.Loss):
        def call(self, y_true, y_pred):
            return 0.5 * np.mean((y_pred - y_true) ** 2, axis=-1)

        def gradient(self, y_true, y_pred):
            return (y_pred - y_true) / y_true.size

    model = pynn.Sequential([pynn.Dense(4, input_dim=6), pynn.Dropout(0.5), pynn.Dense(3)])
    with pytest.raises(NotImplementedError, match="Dropout"):
        model.compile(optimizer="sgd", loss=HalfSquares())
