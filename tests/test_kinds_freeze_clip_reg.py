"""Freezing, clipping and regularizers on the layer kinds beyond Dense:
gamma and beta as variables of their own, a frozen normalisation, and a
model with all of them trained by fit, train_on_batch and a data-parallel
step alike."""
import numpy as np
import pytest

import pynn
from pynn.regularizers import L2
from pynn.training import runners


def data(dtype, n=36, seed=0):
    g = np.random.default_rng(seed)
    x = (g.normal(size=(n, 5)) * 2 + 0.5).astype(dtype)
    return x, np.stack([np.sin(x[:, 0]), x[:, 1] * x[:, 2]], axis=1).astype(dtype)


def mixed(dtype, optimizer=None, frozen_bn=False, seed=3):
    """Dense + Dropout + BatchNormalization + a frozen Dense + LayerNormalization
    + Dense, L2 on two kernels, clipnorm on every variable."""
    layers = [pynn.Dense(8, "tanh", input_dim=5, kernel_regularizer=L2(0.01)),
              pynn.Dropout(0.25),
              pynn.BatchNormalization(momentum=0.8, trainable=not frozen_bn),
              pynn.Dense(6, "relu", trainable=False, bias_initializer="random_normal"),
              pynn.LayerNormalization(),
              pynn.Dense(2, kernel_regularizer=L2(0.02))]
    model = pynn.Sequential(layers, dtype=dtype, seed=seed)
    model.compile(optimizer=optimizer or pynn.Adam(0.01, clipnorm=0.05), loss="mse")
    # gamma and beta away from 1 and 0, so that an update of them shows
    g = np.random.default_rng(11)
    for i in (2, 4):
        for part in model.layers[i].buffers()[:2]:
            part[...] = g.uniform(0.5, 1.5, size=part.shape)
    return model


def offset(model, view):
    return (view.__array_interface__["data"][0]
            - model.params.__array_interface__["data"][0]) // model.params.itemsize


def test_the_variables_are_every_trainable_part_gamma_and_beta_included():
    model = mixed("float64")
    rows, reg = model.variables()
    expected = []
    for layer in model.layers:
        if not layer.trainable:
            continue
        for view, decayed in zip(layer.buffers()[:len(layer.part_names())],
                                 (1, 0) if isinstance(layer, pynn.Dense) else (0, 0)):
            start = offset(model, view)
            expected.append([start, start + view.size, decayed])
    assert rows.tolist() == sorted(expected)
    # the frozen Dense (layer 3) is absent; gamma and beta are not decayed
    frozen_w = offset(model, model.layers[3].W)
    assert frozen_w not in rows[:, 0]
    l2 = {r[0]: p[1] for r, p in zip(rows.tolist(), reg.tolist())}
    assert l2[offset(model, model.layers[0].W)] == 0.01
    assert l2[offset(model, model.layers[5].W)] == 0.02
    assert l2[offset(model, model.layers[2].gamma)] == 0.0
    model.layers[2].trainable = False
    rows, _ = model.variables()
    assert offset(model, model.layers[2].gamma) not in rows[:, 0]
    assert offset(model, model.layers[2].beta) not in rows[:, 0]
    model.refresh_optimizer()                   # what the next step does first
    np.testing.assert_array_equal(model.engine.variables, model.variables()[0])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_frozen_normalisation_keeps_gamma_and_beta_bit_for_bit(dtype):
    x, y = data(dtype)
    model = mixed(dtype, optimizer=pynn.Adam(0.05), frozen_bn=True)
    model.layers[4].trainable = False
    kept = [a.copy() for i in (2, 4) for a in model.layers[i].buffers()[:2]]
    trained = model.layers[0].W.copy()
    moving = model.layers[2].moving_mean.copy()
    model.fit(x, y, epochs=2, batch_size=9, verbose=0)
    for before, i_part in zip(kept, [(2, 0), (2, 1), (4, 0), (4, 1)]):
        np.testing.assert_array_equal(model.layers[i_part[0]].buffers()[i_part[1]], before)
    assert not np.array_equal(model.layers[0].W, trained)
    # a frozen BatchNormalization runs in inference mode: its moving
    # statistics stay as they are
    np.testing.assert_array_equal(model.layers[2].moving_mean, moving)
    # and the optimizer's state of gamma and beta stays zero
    n = model.params.shape[0]
    for layer in (model.layers[2], model.layers[4]):
        for view in layer.buffers()[:2]:
            start = offset(model, view)
            for copy in range(model.optimizer.state.shape[0] // n):
                assert not np.any(model.optimizer.state[copy * n + start:
                                                        copy * n + start + view.size])


def test_a_frozen_batch_norm_runs_in_inference_mode_as_keras():
    from pynn import reference as ref
    x, y = data(np.float64)
    model = pynn.Sequential([pynn.Dense(6, "tanh", input_dim=5),
                             pynn.BatchNormalization(momentum=0.5, trainable=False),
                             pynn.Dense(2)], dtype="float64", seed=4)
    model.compile(optimizer=pynn.Adam(0.01), loss="mse")
    bn = model.layers[1]
    g = np.random.default_rng(5)
    for part in bn.buffers():
        part[...] = g.uniform(0.5, 1.5, size=part.shape)
    # the training pass normalises by the moving statistics: the loss a
    # step reports is evaluate's, the gradient the inference twin's
    loss, grads = model.gradients(x, y)
    assert loss == pytest.approx(model.evaluate(x, y, verbose=0), rel=1e-12)
    first, last = model.layers[0], model.layers[2]
    h = np.tanh(x @ first.W.T + first.b)
    out, cache, _, _ = ref.batchnorm_forward(h, bn.gamma, bn.beta, bn.moving_mean,
                                             bn.moving_variance, False,
                                             epsilon=bn.epsilon)
    grad_out = 2 * (out @ last.W.T + last.b - y) / y.size
    grad_x, grad_gamma, grad_beta = ref.batchnorm_backward(grad_out @ last.W, cache, bn.gamma)
    np.testing.assert_allclose(grads[2], grad_gamma, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(grads[3], grad_beta, rtol=1e-10, atol=1e-14)
    grad_z = grad_x * (1 - h ** 2)
    np.testing.assert_allclose(grads[0], grad_z.T @ x, rtol=1e-10, atol=1e-14)
    assert max(pynn.check_gradients(model, x, y).values()) < 1e-6
    # fit moves neither gamma and beta nor the moving statistics, and the
    # layer trains in batch mode again once unfrozen
    kept = [a.copy() for a in bn.buffers()]
    model.fit(x, y, epochs=2, batch_size=9, verbose=0)
    for a, b in zip(bn.buffers(), kept):
        np.testing.assert_array_equal(a, b)
    bn.trainable = True
    model.fit(x, y, epochs=1, batch_size=9, verbose=0)
    assert all(not np.array_equal(a, b) for a, b in zip(bn.buffers(), kept))


def test_clipnorm_takes_gamma_and_beta_each_as_a_variable():
    x, y = data(np.float64)
    model = mixed(np.float64, optimizer=pynn.SGD(0.1, clipnorm=0.01))
    layer = model.layers[2]
    gamma, beta = layer.gamma.copy(), layer.beta.copy()
    generator = model.generator.get_state()
    _, grads = model.gradients(x, y)            # sets the generators back
    assert model.generator.get_state() == generator
    g_gamma, g_beta = grads[2], grads[3]        # after the first Dense's W and b
    assert g_gamma.shape == gamma.shape and g_beta.shape == beta.shape
    model.train_on_batch(x, y)
    for before, g, after in ((gamma, g_gamma, layer.gamma), (beta, g_beta, layer.beta)):
        factor = min(1.0, 0.01 / np.sqrt(np.sum(g * g)))
        assert factor < 1.0
        np.testing.assert_allclose(after, before - 0.1 * factor * g, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_compiled_epoch_equals_train_on_batch_bit_for_bit(dtype):
    x, y = data(dtype)
    fitted, stepped = mixed(dtype), mixed(dtype)
    frozen = fitted.layers[3].W.copy()
    assert isinstance(runners.choose(fitted, x), runners.CompiledEpoch)
    hist = fitted.fit(x, y, epochs=2, batch_size=10, shuffle=False, verbose=0)
    losses = []
    for _ in range(2):
        for start in range(0, x.shape[0], 10):
            losses.append(stepped.train_on_batch(x[start:start + 10], y[start:start + 10]))
    np.testing.assert_array_equal(fitted.params, stepped.params)
    np.testing.assert_array_equal(fitted.layer_state, stepped.layer_state)
    np.testing.assert_array_equal(fitted.optimizer.state, stepped.optimizer.state)
    assert fitted.generator.get_state() == stepped.generator.get_state()
    assert fitted.optimizer.iterations == stepped.optimizer.iterations == 8
    np.testing.assert_array_equal(fitted.layers[3].W, frozen)
    # the epoch's loss is the mean of the batch losses, the penalty included
    assert hist.history["loss"][1] == pytest.approx(
        np.average(losses[4:], weights=[10, 10, 10, 6]), rel=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_save_and_load_exactly(tmp_path, dtype):
    x, y = data(dtype)
    model = mixed(dtype, frozen_bn=True)
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    model.save(tmp_path / "m.npz")
    loaded = pynn.load(tmp_path / "m.npz")
    assert loaded.get_config() == model.get_config()
    assert [layer.trainable for layer in loaded.layers] == \
        [True, True, False, False, True, True]
    assert loaded.layers[0].kernel_regularizer.get_config() == {"l2": 0.01}
    assert loaded.optimizer.get_config()["clipnorm"] == 0.05
    np.testing.assert_array_equal(loaded.params, model.params)
    np.testing.assert_array_equal(loaded.layer_state, model.layer_state)
    np.testing.assert_array_equal(loaded.engine.variables, model.engine.variables)
    assert loaded.evaluate(x, y, verbose=0) == model.evaluate(x, y, verbose=0)
    for m in (model, loaded):
        m.fit(x, y, epochs=1, batch_size=8, verbose=0)
    np.testing.assert_array_equal(loaded.params, model.params)
    np.testing.assert_array_equal(loaded.layer_state, model.layer_state)


def test_summary_counts_every_kind_trainable_or_not():
    model = mixed("float32", frozen_bn=True)
    # Dense 5->8, BN 8 (gamma, beta, 2 moving), frozen Dense 8->6, LN 6, Dense 6->2
    trainable = (5 * 8 + 8) + (2 * 6) + (6 * 2 + 2)
    fixed = (2 * 8 + 2 * 8) + (8 * 6 + 6)
    # the flat parameters (the moving statistics are in layer_state); the
    # summary counts both, as Keras
    assert model.count_params() == trainable + fixed - 2 * 8 == model.params.size
    assert f"Total params: {trainable + fixed:,}" in model.summary(print_fn=None)
    assert model.count_trainable_params() == trainable
    text = model.summary(print_fn=None)
    assert f"Trainable params: {trainable:,}" in text
    assert f"Non-trainable params: {fixed:,}" in text
    assert len(model.trainable_weights) == 2 + 2 + 2
    assert [w.shape for w in model.layers[2].non_trainable_weights] == [(8,)] * 4
    model.trainable = False
    assert model.count_trainable_params() == 0
    assert "Trainable params: 0 " in model.summary(print_fn=None)
    assert model.variables()[0].shape == (0, 3)


def test_the_config_round_trip_keeps_every_kinds_flag():
    model = mixed("float64", frozen_bn=True)
    model.layers[1].trainable = False
    model.layers[4].trainable = False
    config = model.get_config()
    assert [spec.get("trainable", True) for spec in config["layers"]] == \
        [True, False, False, False, False, True]
    again = pynn.Sequential.from_config(config)
    assert [layer.trainable for layer in again.layers] == \
        [layer.trainable for layer in model.layers]
    with pytest.raises(TypeError, match="trainable"):
        pynn.BatchNormalization(trainable="no")


def test_the_data_parallel_step_trains_as_fit():
    # COMM_SELF: step without update, all-reduce, apply_gradients (clipping
    # and the update over the variables, the moving statistics committed)
    pytest.importorskip("mpi4py")
    from mpi4py import MPI

    from pynn import distributed
    x, y = data(np.float64)
    plain, parallel = mixed(np.float64), mixed(np.float64)
    plain.fit(x, y, epochs=2, batch_size=9, shuffle=False, verbose=0)
    distributed.fit(parallel, x, y, comm=MPI.COMM_SELF, epochs=2, batch_size=9,
                    shuffle=False, verbose=0)
    np.testing.assert_allclose(parallel.params, plain.params, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(parallel.layer_state, plain.layer_state, rtol=1e-12)
    assert parallel.generator.get_state() == plain.generator.get_state()
    assert parallel.optimizer.iterations == plain.optimizer.iterations


def test_a_step_refused_after_the_all_reduce_puts_the_generators_back():
    x, y = data(np.float64)
    model = mixed(np.float64)
    params, state = model.params.copy(), model.layer_state.copy()
    generator = model.generator.get_state()
    net = model.engine
    loss, status = net.step(x, y, False)
    assert status == 0 and model.generator.get_state() != generator
    model.grads[0] = np.inf                     # as another rank's gradient would
    assert not net.apply_gradients()
    assert model.generator.get_state() == generator
    np.testing.assert_array_equal(model.params, params)
    np.testing.assert_array_equal(model.layer_state, state)


def test_the_numpy_path_freezes_clips_and_regularizes_as_the_compiled_step():
    from pynn import activations

    class HandTanh(activations.Activation):
        def __call__(self, z):
            return np.tanh(z)

        def derivative(self, z):
            return 1 - np.tanh(z) ** 2

    def make(act):
        net = pynn.Sequential([pynn.Dense(6, activation=act, input_dim=5,
                                          kernel_regularizer=L2(0.05)),
                               pynn.Dense(4, activation=act, trainable=False),
                               pynn.Dense(2)], dtype="float64", seed=2)
        net.compile(pynn.SGD(0.1, momentum=0.5, clipnorm=0.02), "mse")
        return net

    x, y = data(np.float64)
    compiled, numpy_path = make("tanh"), make(HandTanh())
    assert numpy_path.numpy_path and not compiled.numpy_path
    frozen = numpy_path.layers[1].W.copy()
    for start in range(0, x.shape[0], 12):
        a = compiled.train_on_batch(x[start:start + 12], y[start:start + 12])
        b = numpy_path.train_on_batch(x[start:start + 12], y[start:start + 12])
        assert b == pytest.approx(a, rel=1e-10)
    np.testing.assert_array_equal(numpy_path.layers[1].W, frozen)
    np.testing.assert_allclose(numpy_path.params, compiled.params, rtol=1e-10, atol=1e-13)
    assert numpy_path.evaluate(x, y, verbose=0) == pytest.approx(
        compiled.evaluate(x, y, verbose=0), rel=1e-10)


def test_the_keras_namespace_takes_trainable_on_every_kind():
    from pynn import keras
    model = keras.Sequential([keras.Input(shape=(5,)), keras.layers.Dense(4),
                              keras.layers.Dropout(0.1, trainable=False),
                              keras.layers.BatchNormalization(trainable=False),
                              keras.layers.LayerNormalization()])
    bn, ln = model.layers[2], model.layers[3]
    assert bn.trainable_weights == [] and len(bn.non_trainable_weights) == 4
    assert len(ln.trainable_weights) == 2 and ln.non_trainable_weights == []
    assert not model.layers[1].trainable
    assert len(model.trainable_weights) == 4


def test_inference_flags_are_refused_on_other_layers_changing_nothing():
    x, y = data(np.float64)
    model = mixed(np.float64, frozen_bn=True)
    net = model.engine
    before = model.gradients(x, y)[0]
    with pytest.raises(ValueError, match="only BatchNormalization"):
        net.set_inference_layers([0, 1, 1, 0, 0, 0])
    with pytest.raises(ValueError, match="one entry per layer"):
        net.set_inference_layers([0, 0, 1])
    assert model.gradients(x, y)[0] == before
