"""BatchNormalization and LayerNormalization in the compiled step, against
reference.py's twins: forward and backward in training and inference, the
moving statistics, gradient checks, the compiled epoch, saving."""
import numpy as np
import pytest

import pynn
from pynn import reference as ref
from pynn.training import runners
from conftest import assert_close


def data(dtype, n=40, n_in=5, n_out=3, seed=0):
    g = np.random.default_rng(seed)
    return ((g.normal(size=(n, n_in)) * 3 + 1).astype(dtype),
            g.normal(size=(n, n_out)).astype(dtype))


def make(dtype, norm, seed=1, optimizer="sgd", dropout=None, **settings):
    layers = [pynn.Dense(8, activation="tanh", input_dim=5), norm(**settings)]
    if dropout is not None:
        layers.append(pynn.Dropout(dropout))
    layers.append(pynn.Dense(3))
    model = pynn.Sequential(layers, dtype=dtype, seed=seed)
    model.compile(optimizer=optimizer, loss="mse")
    # gamma and beta away from 1 and 0, moving statistics away from 0 and 1,
    # so that a kernel that ignored one of them would show
    g = np.random.default_rng(7)
    layer = model.layers[1]
    for part in layer.buffers():
        part[...] = g.uniform(0.5, 1.5, size=part.shape)
    return model


def _gamma_beta(layer, dtype, n):
    gamma = layer.gamma if layer.gamma is not None else np.ones(n, dtype)
    beta = layer.beta if layer.beta is not None else np.zeros(n, dtype)
    return gamma, beta


def reference_pass(model, x, y, training):
    """The loss, the trainable values' gradients (get_weights order) and the
    moving statistics after the pass, computed by reference.py's twins."""
    dtype = model.dtype
    a, steps, moving = x, [], []
    for layer in model.layers:
        if isinstance(layer, pynn.Dense):
            out = ref.dense_forward(a, layer.W, layer.b, layer.activation)
            steps.append((layer, a, out))
        elif isinstance(layer, pynn.BatchNormalization):
            gamma, beta = _gamma_beta(layer, dtype, a.shape[1])
            out, cache, mm, mv = ref.batchnorm_forward(
                a, gamma, beta, layer.moving_mean, layer.moving_variance, training,
                momentum=layer.momentum, epsilon=layer.epsilon)
            moving += [mm, mv]
            steps.append((layer, cache, gamma))
        else:
            gamma, beta = _gamma_beta(layer, dtype, a.shape[1])
            out, cache = ref.layernorm_forward(a, gamma, beta, epsilon=layer.epsilon)
            steps.append((layer, cache, gamma))
        a = out
    loss, grad = ref.mse(a, y)
    grads = []
    for i in range(len(steps) - 1, -1, -1):
        layer = steps[i][0]
        if isinstance(layer, pynn.Dense):
            _, inp, out = steps[i]
            gW, gb, grad = ref.dense_backward(inp, layer.W, out, grad, layer.activation,
                                              need_grad_x=i > 0)
            grads = [gW, gb] + grads
        else:
            _, cache, gamma = steps[i]
            backward = (ref.batchnorm_backward if isinstance(layer, pynn.BatchNormalization)
                        else ref.layernorm_backward)
            grad, g_gamma, g_beta = backward(grad, cache, gamma)
            grads = [g for g, on in ((g_gamma, layer.scale), (g_beta, layer.center))
                     if on] + grads
    return loss, grads, moving


NORMS = [pynn.BatchNormalization, pynn.LayerNormalization]
VARIANTS = [dict(), dict(center=False), dict(scale=False), dict(center=False, scale=False)]


@pytest.mark.parametrize("norm", NORMS, ids=["batch", "layer"])
@pytest.mark.parametrize("settings", VARIANTS, ids=["both", "no-beta", "no-gamma", "neither"])
def test_training_pass_matches_the_twins(dtype, norm, settings):
    x, y = data(dtype)
    model = make(dtype, norm, epsilon=0.01, **settings)
    loss, grads = model.gradients(x, y)
    want_loss, want_grads, _ = reference_pass(model, x, y, training=True)
    assert_close(loss, want_loss, dtype)
    assert len(grads) == len(want_grads)
    for got, want in zip(grads, want_grads):
        assert_close(got, want, dtype, scale=50)


def test_batch_norm_moving_statistics_follow_keras(dtype):
    x, y = data(dtype)
    model = make(dtype, pynn.BatchNormalization, momentum=0.9)
    _, _, (mm, mv) = reference_pass(model, x, y, training=True)
    before = model.layer_state.copy()
    model.gradients(x, y)                         # not a step: nothing moves
    model.predict(x)
    model.evaluate(x, y)
    np.testing.assert_array_equal(model.layer_state, before)
    model.train_on_batch(x, y)
    assert_close(model.layers[1].moving_mean, mm, dtype, scale=10)
    assert_close(model.layers[1].moving_variance, mv, dtype, scale=10)


@pytest.mark.parametrize("norm", NORMS, ids=["batch", "layer"])
def test_inference_matches_the_twins(dtype, norm):
    x, y = data(dtype)
    model = make(dtype, norm)
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    a = x
    for layer in model.layers:
        if isinstance(layer, pynn.Dense):
            a = ref.dense_forward(a, layer.W, layer.b, layer.activation)
        elif isinstance(layer, pynn.BatchNormalization):
            a = ref.batchnorm_forward(a, layer.gamma, layer.beta, layer.moving_mean,
                                      layer.moving_variance, False,
                                      epsilon=layer.epsilon)[0]
        else:
            a = ref.layernorm_forward(a, layer.gamma, layer.beta, epsilon=layer.epsilon)[0]
    out = model.predict(x)
    assert_close(out, a, dtype, scale=10)
    np.testing.assert_array_equal(out, model.predict(x))           # deterministic
    # per sample: a row's output does not depend on the other rows (to
    # rounding: MKL's GEMM may block a 7-row product differently)
    assert_close(out[:7], model.predict(x[:7]), dtype)
    assert_close(model.evaluate(x, y), ref.mse(a, y)[0], dtype, scale=10)


@pytest.mark.parametrize("dropout", [None, 0.3])
@pytest.mark.parametrize("acts", [("tanh", "sigmoid"), ("gelu", "swish")])
def test_central_differences_of_a_network_with_both(dropout, acts):
    # training-mode losses (batch statistics; the next step's dropout masks);
    # gelu and swish keep their pre-activations beside the layers' workspaces
    x, y = data(np.float64, n=16)
    layers = [pynn.Dense(8, activation=acts[0], input_dim=5), pynn.BatchNormalization(),
              pynn.Dense(6, activation=acts[1]), pynn.LayerNormalization()]
    if dropout:
        layers.append(pynn.Dropout(dropout))
    layers.append(pynn.Dense(3))
    model = pynn.Sequential(layers, dtype="float64", seed=2)
    model.compile(optimizer="sgd", loss="mse")
    errors = pynn.check_gradients(model, x, y)
    assert "batch_normalization/gamma" in errors and "layer_normalization/beta" in errors
    assert max(errors.values()) < 1e-6, errors


def test_a_normalisation_first_takes_the_inputs():
    x, y = data(np.float64, n=16)
    model = pynn.Sequential([pynn.BatchNormalization(input_dim=5), pynn.Dense(3)],
                            dtype="float64", seed=0)
    model.compile(optimizer="sgd", loss="mse")
    assert max(pynn.check_gradients(model, x, y).values()) < 1e-6


def test_compiled_epoch_equals_train_on_batch_bit_for_bit(dtype):
    x, y = data(dtype)
    models = [make(dtype, pynn.BatchNormalization, optimizer="adam", dropout=0.2)
              for _ in range(2)]
    fitted, stepped = models
    assert isinstance(runners.choose(fitted, x), runners.CompiledEpoch)
    fitted.fit(x, y, epochs=2, batch_size=12, shuffle=False, verbose=0)
    for _ in range(2):
        for start in range(0, x.shape[0], 12):
            stepped.train_on_batch(x[start:start + 12], y[start:start + 12])
    np.testing.assert_array_equal(fitted.params, stepped.params)
    np.testing.assert_array_equal(fitted.layer_state, stepped.layer_state)


def test_gamma_and_beta_are_trained_but_not_decayed():
    x, y = data(np.float64)
    model = make(np.float64, pynn.BatchNormalization,
                 optimizer=pynn.SGD(learning_rate=0.1, weight_decay=0.5))
    layer = model.layers[1]
    assert model.n_kernel_params == 5 * 8 + 8 * 3          # the kernels only
    gamma, beta = layer.gamma.copy(), layer.beta.copy()
    _, grads = model.gradients(x, y)
    model.train_on_batch(x, y)
    # plain SGD on gamma and beta: no weight_decay * gamma term
    np.testing.assert_allclose(layer.gamma, gamma - 0.1 * grads[2], rtol=1e-14)
    np.testing.assert_allclose(layer.beta, beta - 0.1 * grads[3], rtol=1e-14)


def test_a_refused_step_leaves_the_moving_statistics():
    x, y = data(np.float32)
    model = make(np.float32, pynn.BatchNormalization)
    weights = model.get_weights()
    weights[6][...] = 1e30                            # the last kernel: loss inf
    model.set_weights(weights)
    params, state = model.params.copy(), model.layer_state.copy()
    with pytest.raises(pynn.DivergenceError):
        model.train_on_batch(x, y)
    with pytest.raises(pynn.DivergenceError):
        model.fit(x, y, epochs=1, batch_size=10, verbose=0)
    np.testing.assert_array_equal(model.params, params)
    np.testing.assert_array_equal(model.layer_state, state)


def test_a_step_whose_batch_variance_overflows_is_refused():
    # float32, BatchNormalization first: finite inputs of 2e19 overflow the
    # batch variance to inf while x_hat, the loss and the gradients stay
    # finite; the step would leave an inf moving variance, so it is refused
    x = np.zeros((8, 5), np.float32)
    x[0] = 2e19
    y = np.zeros((8, 3), np.float32)
    model = pynn.Sequential([pynn.BatchNormalization(input_dim=5), pynn.Dense(3)],
                            dtype="float32", seed=1)
    model.compile(optimizer=pynn.optimizers.SGD(0.01, momentum=0.9), loss="mse")
    params, stats = model.params.copy(), model.layer_state.copy()
    state = model.optimizer.state.copy()
    with pytest.raises(pynn.DivergenceError):
        model.train_on_batch(x, y)
    with pytest.raises(pynn.DivergenceError):
        model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    np.testing.assert_array_equal(model.params, params)
    np.testing.assert_array_equal(model.layer_state, stats)
    np.testing.assert_array_equal(model.optimizer.state, state)
    assert model.optimizer.iterations == 0
    model.fit(x[1:], y[1:], epochs=1, batch_size=7, verbose=0)   # then trains on
    assert np.isfinite(model.layer_state).all() and model.optimizer.iterations == 1


@pytest.mark.parametrize("norm", NORMS, ids=["batch", "layer"])
def test_save_and_load_exactly(tmp_path, dtype, norm):
    x, y = data(dtype)
    model = make(dtype, norm, optimizer="adam", momentum=0.8) if norm is \
        pynn.BatchNormalization else make(dtype, norm, optimizer="adam", epsilon=0.01)
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    model.save(tmp_path / "m.npz")
    loaded = pynn.load(tmp_path / "m.npz")
    assert loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(loaded.layer_state, model.layer_state)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    for m in (model, loaded):
        m.fit(x, y, epochs=1, batch_size=8, verbose=0)
    np.testing.assert_array_equal(loaded.params, model.params)
    np.testing.assert_array_equal(loaded.layer_state, model.layer_state)


def test_a_file_with_a_negative_moving_variance_is_refused(tmp_path):
    model = make(np.float64, pynn.BatchNormalization)
    arrays = dict(pynn.io.to_arrays(model))
    arrays["layer_state"] = arrays["layer_state"].copy()
    arrays["layer_state"][-1] = -1.0
    with pytest.raises(ValueError, match="moving variance"):
        pynn.io.from_arrays(arrays)
    del arrays["layer_state"]
    with pytest.raises(ValueError, match="layer_state"):
        pynn.io.from_arrays(arrays)


def test_weights_in_keras_order_and_checked():
    model = make(np.float64, pynn.BatchNormalization)
    layer = model.layers[1]
    weights = model.get_weights()
    assert [w.shape for w in weights] == [(8, 5), (8,), (8,), (8,), (8,), (8,), (3, 8), (3,)]
    np.testing.assert_array_equal(weights[4], layer.moving_mean)
    np.testing.assert_array_equal(weights[5], layer.moving_variance)
    weights[5] = -weights[5]
    before = model.params.copy()
    with pytest.raises(ValueError, match="moving variance.*>= 0"):
        model.set_weights(weights)
    np.testing.assert_array_equal(model.params, before)
    assert layer.count_params() == 4 * 8 and layer.count_trainable() == 2 * 8
    table = model.summary(print_fn=None)
    assert "batch_normalization (BatchNormalization)" in table
    assert "Non-trainable params: 16 " in table


@pytest.mark.parametrize("make_bad, error, match", [
    (lambda: pynn.BatchNormalization(epsilon=0), ValueError, "epsilon must be > 0.0, got 0"),
    (lambda: pynn.BatchNormalization(epsilon=-1e-3), ValueError, "epsilon must be > 0.0"),
    (lambda: pynn.LayerNormalization(epsilon=0.0), ValueError, "epsilon must be > 0.0"),
    (lambda: pynn.LayerNormalization(epsilon=float("inf")), ValueError, "epsilon must be finite"),
    (lambda: pynn.BatchNormalization(momentum=1.0), ValueError, "momentum must be < 1.0"),
    (lambda: pynn.BatchNormalization(momentum=-0.5), ValueError, "momentum must be >= 0.0"),
    (lambda: pynn.BatchNormalization(momentum="0.9"), TypeError, "momentum must be a real"),
    (lambda: pynn.BatchNormalization(center="no"), TypeError, "center must be True or False"),
    (lambda: pynn.LayerNormalization(scale=1), TypeError, "scale must be True or False"),
    (lambda: pynn.LayerNormalization(gamma_initializer="nope"), ValueError, "nope"),
])
def test_bad_settings_are_refused(make_bad, error, match):
    with pytest.raises(error, match=match):
        make_bad()


def test_the_keras_namespace():
    from pynn import keras
    x, y = data(np.float32)
    model = keras.Sequential([keras.Input(shape=(5,)), keras.layers.Dense(8),
                              keras.layers.BatchNormalization(momentum=0.9),
                              keras.layers.LayerNormalization(),
                              keras.layers.Dense(3)])
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, y, epochs=1, batch_size=10, verbose=0)
    bn = model.layers[1]
    assert [w.shape for w in bn.trainable_weights] == [(8,), (8,)]
    np.testing.assert_array_equal(bn.non_trainable_weights[0], bn.moving_mean)
    weights = model.get_weights()
    assert [w.shape for w in weights] == [(5, 8), (8,), (8,), (8,), (8,), (8,), (8,), (8,),
                                          (8, 3), (3,)]
    model.set_weights(weights)
    np.testing.assert_array_equal(model.predict(x, verbose=0), model.predict(x, verbose=0))
    for make_bad, match in ((lambda: keras.layers.BatchNormalization(axis=0), "axis"),
                            (lambda: keras.layers.BatchNormalization(synchronized=True),
                             "synchronized"),
                            (lambda: keras.layers.LayerNormalization(rms_scaling=True),
                             "rms_scaling")):
        with pytest.raises(NotImplementedError, match=match):
            make_bad()


def test_the_data_parallel_step_updates_the_moving_statistics():
    # COMM_SELF: the collective path (gradient, then the update applied
    # apart) with one rank trains as a plain fit, moving statistics included
    pytest.importorskip("mpi4py")
    from mpi4py import MPI

    from pynn import distributed
    x, y = data(np.float64)
    models = [make(np.float64, pynn.BatchNormalization, optimizer="adam") for _ in range(2)]
    models[0].fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0)
    distributed.fit(models[1], x, y, comm=MPI.COMM_SELF, epochs=2, batch_size=8,
                    shuffle=False, verbose=0)
    assert not np.array_equal(models[0].layers[1].moving_mean, make(
        np.float64, pynn.BatchNormalization).layers[1].moving_mean)
    np.testing.assert_allclose(models[1].layer_state, models[0].layer_state, rtol=1e-12)
    np.testing.assert_allclose(models[1].params, models[0].params, rtol=1e-12, atol=1e-14)
