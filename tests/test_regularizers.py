"""Regularizers: L1, L2, L1L2 on kernels and biases, against pynn/reference.py's
twins and central differences, in the compiled step, epoch and loss."""
import json

import numpy as np
import pytest

import pynn
from conftest import assert_fit_equals_steps, central_differences
from pynn import reference
from pynn.regularizers import L1, L1L2, L2

TIGHT = {np.float32: dict(rtol=1e-6, atol=1e-7), np.float64: dict(rtol=1e-13, atol=1e-15)}
TWINS = {"L1": reference.l1_regularizer, "L2": reference.l2_regularizer,
         "L1L2": reference.l1_l2_regularizer}


def make(dtype="float64", optimizer=None, regs=None, frozen=(), seed=4):
    """Three layers; regs[i] = (kernel_regularizer, bias_regularizer) of layer i."""
    regs = regs or [(L2(0.05), L1(0.02)), (L1L2(0.01, 0.03), None), (L1(0.04), L2(0.1))]
    layers = [pynn.Dense(6, "tanh", input_dim=4, kernel_regularizer=regs[0][0],
                         bias_regularizer=regs[0][1], bias_initializer="random_normal"),
              pynn.Dense(5, "tanh", kernel_regularizer=regs[1][0], bias_regularizer=regs[1][1],
                         bias_initializer="random_normal"),
              pynn.Dense(2, kernel_regularizer=regs[2][0], bias_regularizer=regs[2][1],
                         bias_initializer="random_normal")]
    for i in frozen:
        layers[i].trainable = False
    net = pynn.Sequential(layers, dtype=dtype, seed=seed)
    net.compile(optimizer=optimizer or pynn.SGD(0.1), loss="mse")
    return net


def plain_twin(net, optimizer=None):
    """The same weights without regularizers."""
    twin = pynn.Sequential([pynn.Dense(la.units, la.activation) for la in net.layers],
                           dtype=net.dtype)
    twin.build(net.input_dim)
    twin.set_weights(net.get_weights())
    twin.compile(optimizer=optimizer or pynn.SGD(0.1), loss="mse")
    return twin


def twin_terms(net, frozen=()):
    """(penalty, [gradient term per get_weights() array]) from the twins."""
    total, terms = 0.0, []
    for i, layer in enumerate(net.layers):
        for w, reg in ((layer.W, layer.kernel_regularizer), (layer.b, layer.bias_regularizer)):
            if reg is None or i in frozen:
                terms.append(np.zeros_like(w))
                continue
            p, g = TWINS[type(reg).__name__](w, **reg.get_config())
            total += p
            terms.append(g)
    return total, terms


def data(n=24, seed=2):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4))
    return x, np.stack([np.sin(x[:, 0]), x[:, 1] * x[:, 2]], axis=1)


# ------------------------------------------------------------ the classes


def test_keras_names_defaults_and_string_forms():
    assert pynn.regularizers.get("l1") == L1(0.01)
    assert pynn.regularizers.get("l2") == L2(0.01)
    assert pynn.regularizers.get("l1_l2") == L1L2(0.0, 0.0)
    assert pynn.regularizers.get(None) is None
    assert pynn.regularizers.l1 is L1 and pynn.regularizers.l1_l2 is L1L2
    for reg in (L1(0.3), L2(0.2), L1L2(0.1, 0.4)):
        assert pynn.regularizers.deserialize(pynn.regularizers.serialize(reg)) == reg


@pytest.mark.parametrize("reg", [L1(0.3), L2(0.2), L1L2(0.1, 0.4)], ids=repr)
def test_penalty_and_gradient_are_the_twins(reg, dtype, rng):
    w = rng.standard_normal((7, 3)).astype(dtype)
    w[0, 0] = 0                                   # sign(0) = 0
    p, g = TWINS[type(reg).__name__](w, **reg.get_config())
    assert reg(w) == pytest.approx(p, rel=1e-14)
    np.testing.assert_array_equal(reg.gradient(w), g)
    w64 = w.astype(np.float64)                    # the loss reads it, perturbed in place
    numeric = central_differences(lambda: reg(w64), w64, 1e-6)
    mask = np.abs(w) > 1e-3                        # away from |w|'s kink
    np.testing.assert_allclose(g[mask], numeric[mask], rtol=1e-5 if dtype is np.float32 else 1e-7,
                               atol=1e-6)


def test_bad_regularizers_are_refused_by_name():
    with pytest.raises(ValueError, match="l1 must be >= 0, got -1.0"):
        L1(-1.0)
    with pytest.raises(TypeError, match="l2 must be a real number"):
        L2("big")
    with pytest.raises(ValueError, match="unknown kernel_regularizer 'l3'"):
        pynn.Dense(3, kernel_regularizer="l3")
    with pytest.raises(TypeError, match="bias_regularizer must be None"):
        pynn.Dense(3, bias_regularizer=0.1)
    net = pynn.Sequential([pynn.Dense(2, input_dim=2, kernel_regularizer=L2(1e39))],
                          dtype="float32")
    with pytest.raises(ValueError, match="kernel_regularizer=L2.*overflow or vanish in float32"):
        net.compile("sgd", "mse")


# ------------------------------------------------------- the compiled step


def test_gradients_are_the_data_gradient_plus_the_twins_terms(dtype):
    x, y = data()
    net = make(dtype)
    loss, grads = net.gradients(x, y)
    plain_loss, plain_grads = plain_twin(net).gradients(x, y)
    penalty, terms = twin_terms(net)
    assert loss == pytest.approx(plain_loss + penalty, rel=1e-6 if dtype is np.float32 else 1e-13)
    for g, g0, t in zip(grads, plain_grads, terms):
        np.testing.assert_array_equal(g, g0 + t)


def test_gradients_match_central_differences_of_the_reported_loss():
    x, y = data()
    net = make("float64")
    _, grads = net.gradients(x, y)
    xs, ys = net.check_xy(x, y)

    def loss():
        return net.engine.loss(xs, ys, xs.shape[0])

    numeric = central_differences(loss, net.params, 1e-6)
    flat = np.concatenate([g.ravel() for g in grads[0::2]] + [g.ravel() for g in grads[1::2]])
    # the L1 terms have a kink at 0: no weight sits within the step of it
    assert np.min(np.abs(net.params)) > 1e-5
    np.testing.assert_allclose(flat, numeric, rtol=1e-6, atol=1e-8)
    errors = pynn.check_gradients(net, x, y)
    assert max(errors.values()) < 1e-6


def test_an_sgd_step_is_the_formula_on_the_regularized_gradient(dtype):
    x, y = data()
    net = make(dtype, pynn.SGD(0.1, momentum=0.9))
    w0 = net.get_weights()
    _, plain_grads = plain_twin(net).gradients(x, y)
    _, terms = twin_terms(net)
    loss = net.train_on_batch(x, y)
    for w, w_before, g0, t in zip(net.get_weights(), w0, plain_grads, terms):
        v = np.zeros_like(w_before)
        reference.sgd_update(w_before, g0 + t, v, 0.1, 0.9)
        np.testing.assert_array_equal(w, w_before)
    assert np.isfinite(loss)


def test_reported_losses_include_the_penalty(dtype):
    x, y = data(32)
    net = make(dtype, pynn.Adam(0.01))
    penalty, _ = twin_terms(net)
    plain = plain_twin(net)
    rel = 1e-6 if dtype is np.float32 else 1e-13
    assert net.evaluate(x, y) == pytest.approx(plain.evaluate(x, y) + penalty,
                                                       rel=rel)
    assert net.evaluate(x, y, batch_size=5) == pytest.approx(
        net.evaluate(x, y), rel=rel)
    # fit's loss: the mean over batches of (batch loss + the penalty before that step)
    stepped = make(dtype, pynn.Adam(0.01))
    expected = []
    for k in range(0, 32, 8):
        p, _ = twin_terms(stepped)
        base = plain_twin(stepped).evaluate(x[k:k + 8], y[k:k + 8])
        assert stepped.train_on_batch(x[k:k + 8], y[k:k + 8]) == pytest.approx(base + p, rel=rel)
        expected.append(base + p)
    history = net.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    assert history.history["loss"][0] == pytest.approx(np.mean(expected), rel=rel)
    np.testing.assert_array_equal(net.params, stepped.params)


def test_compiled_epoch_equals_train_on_batch_with_regularizers(dtype):
    x, y = data(40)
    assert_fit_equals_steps(lambda: make(dtype, pynn.Nadam(0.01)), x, y)


def test_the_penalty_is_clipped_with_the_gradient():
    # Keras's order: the regularizers' gradient is part of what clipnorm clips
    x, y = data()
    net = make("float64", pynn.SGD(0.1, clipnorm=0.05))
    w0 = net.get_weights()
    _, plain_grads = plain_twin(net).gradients(x, y)
    _, terms = twin_terms(net)
    clipped = reference.clip_gradients([g + t for g, t in zip(plain_grads, terms)],
                                       clipnorm=0.05)
    net.train_on_batch(x, y)
    for w, w_before, g in zip(net.get_weights(), w0, clipped):
        reference.sgd_update(w_before, g, None, 0.1)
        np.testing.assert_allclose(w, w_before, **TIGHT[np.float64])


def test_a_frozen_layers_regularizers_add_nothing():
    x, y = data()
    net = make("float64", frozen=[0])
    loss, grads = net.gradients(x, y)
    plain_loss, plain_grads = plain_twin(net).gradients(x, y)
    penalty, terms = twin_terms(net, frozen=[0])
    assert loss == pytest.approx(plain_loss + penalty, rel=1e-13)
    np.testing.assert_array_equal(grads[0], plain_grads[0])
    np.testing.assert_array_equal(grads[2], plain_grads[2] + terms[2])


def test_regularizers_set_after_compile_take_effect_at_the_next_step():
    x, y = data()
    net = make("float64", regs=[(None, None)] * 3)
    loss = net.evaluate(x, y)
    net.layers[1].kernel_regularizer = "l2"
    assert net.evaluate(x, y) == pytest.approx(
        loss + reference.l2_regularizer(net.layers[1].W)[0], rel=1e-13)


def test_regularizers_are_saved_and_loaded(tmp_path):
    x, y = data()
    net = make("float32", pynn.Adam(0.01))
    net.train_on_batch(x, y)
    net.save(tmp_path / "m.pynn")
    back = pynn.load(tmp_path / "m.pynn")
    assert [(la.kernel_regularizer, la.bias_regularizer) for la in back.layers] == \
        [(la.kernel_regularizer, la.bias_regularizer) for la in net.layers]
    assert back.evaluate(x, y) == net.evaluate(x, y)
    assert net.train_on_batch(x, y) == back.train_on_batch(x, y)
    np.testing.assert_array_equal(back.params, net.params)
    config = pynn.Dense(3, kernel_regularizer="l1").get_config()
    assert config["kernel_regularizer"] == {"class_name": "L1", "config": {"l1": 0.01}}
    assert "kernel_regularizer" not in make(regs=[(None, None)] * 3).get_config()["layers"][0]


@pytest.mark.parametrize("spec, match", [
    ({"kernel_regularizer": {"class_name": "L3", "config": {}}}, "unknown regularizer 'L3'"),
    ({"kernel_regularizer": {"class_name": "L2", "config": {"l2": -1}}}, "l2 must be >= 0"),
    ({"bias_regularizer": 5}, "bias_regularizer must be None"),
    ({"trainable": "no"}, "trainable must be True or False"),
])
def test_a_config_with_bad_regularizers_or_flags_is_refused(spec, match, tmp_path):
    net = make(regs=[(None, None)] * 3)
    config = net.get_config()
    config["layers"][1].update(spec)
    with pytest.raises((TypeError, ValueError), match=match):
        pynn.Sequential.from_config(config)
    # and in a saved file: the loader's own error, naming the cause
    net.save(tmp_path / "m.pynn")
    with np.load(tmp_path / "m.pynn") as saved:
        arrays = dict(saved)
    config = json.loads(arrays["config"].tobytes())
    config["layers"][1].update(spec)
    arrays["config"] = np.frombuffer(json.dumps(config).encode(), dtype=np.uint8)
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match=match):
        pynn.load(tmp_path / "bad.npz")
