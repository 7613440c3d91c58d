"""Gradient clipping (clipnorm, clipvalue, global_clipnorm) on every optimizer,
against pynn/reference.py's clip_gradients and the optimizers' formulas."""
import numpy as np
import pytest

import pynn
from conftest import assert_fit_equals_steps
from pynn import reference

# each optimizer without clipping, by name: the clipped one adds its setting
OPTIMIZERS = {
    "sgd": lambda **c: pynn.SGD(0.1, **c),
    "momentum": lambda **c: pynn.SGD(0.05, momentum=0.9, nesterov=True, **c),
    "adam": lambda **c: pynn.Adam(0.01, **c),
    "rmsprop": lambda **c: pynn.RMSprop(0.01, momentum=0.5, centered=True, **c),
    "adamw": lambda **c: pynn.AdamW(0.01, **c),
    "nadam": lambda **c: pynn.Nadam(0.01, **c),
    "adagrad": lambda **c: pynn.Adagrad(0.05, **c),
}
# thresholds that clip these gradients (each checked to bite below)
CLIPS = {"clipnorm": 0.05, "clipvalue": 0.01, "global_clipnorm": 0.1}
TIGHT = {np.float32: dict(rtol=1e-6, atol=1e-7), np.float64: dict(rtol=1e-13, atol=1e-15)}


def make(dtype, optimizer, frozen=()):
    layers = [pynn.Dense(6, "tanh", input_dim=4), pynn.Dense(5, "tanh"), pynn.Dense(2)]
    for i in frozen:
        layers[i].trainable = False
    net = pynn.Sequential(layers, dtype=dtype, seed=3)
    net.compile(optimizer=optimizer, loss="mse")
    return net


def data(n=24, seed=5):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4))
    return x, np.stack([np.sin(3 * x[:, 0]), x[:, 1] * x[:, 2]], axis=1) * 3


def clipped_flat(net, x, y, frozen=(), **clip):
    """The model's raw flat gradient, clipped by the twin over its trainable
    variables (each layer's kernel and bias)."""
    net.gradients(x, y)
    g = net.grads.copy()
    views = []
    for i, layer in enumerate(net.layers):
        if i not in frozen:
            views += [layer.dW, layer.db]
    offsets = [(v.__array_interface__["data"][0]
                - net.grads.__array_interface__["data"][0]) // g.itemsize for v in views]
    raw = [g[o:o + v.size].reshape(v.shape) for o, v in zip(offsets, views)]
    for o, v, c in zip(offsets, views, reference.clip_gradients(raw, **clip)):
        g[o:o + v.size] = c.ravel()
    return g


@pytest.mark.parametrize("mode", sorted(CLIPS))
def test_clipping_bites_on_these_gradients(mode):
    x, y = data()
    net = make(np.float64, pynn.SGD(0.1))
    _, grads = net.gradients(x, y)
    flat = np.concatenate([g.ravel() for g in grads])
    if mode == "clipnorm":
        assert all(np.linalg.norm(g) > CLIPS[mode] for g in grads)
    elif mode == "clipvalue":
        assert np.mean(np.abs(flat) > CLIPS[mode]) > 0.3
    else:
        assert np.linalg.norm(flat) > 3 * CLIPS[mode]


@pytest.mark.parametrize("mode", sorted(CLIPS))
def test_sgd_and_adam_steps_are_the_formula_on_the_clipped_gradient(mode, dtype):
    x, y = data()
    clip = {mode: CLIPS[mode]}
    for make_opt, twin in ((lambda: pynn.SGD(0.1, **clip), "sgd"),
                           (lambda: pynn.Adam(0.01, **clip), "adam")):
        net = make(dtype, make_opt())
        w = net.params.copy()
        g = clipped_flat(net, x, y, **clip)
        net.train_on_batch(x, y)
        if twin == "sgd":
            reference.sgd_update(w, g, None, 0.1)
        else:
            m, v = np.zeros_like(w), np.zeros_like(w)
            reference.adam_update(w, g, m, v, 1, 0.01)
        np.testing.assert_allclose(net.params, w, **TIGHT[dtype])


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("mode", sorted(CLIPS))
def test_every_optimizer_steps_as_on_the_twins_clipped_gradient(name, mode, dtype):
    # three steps of the clipped model against the same optimizer, unclipped,
    # fed the gradient reference.clip_gradients clipped
    x, y = data()
    clip = {mode: CLIPS[mode]}
    net = make(dtype, OPTIMIZERS[name](**clip))
    plain = OPTIMIZERS[name]()
    plain.build(net.params.shape[0], dtype)
    w = net.params.copy()
    unclipped = make(dtype, OPTIMIZERS[name]())
    for step in range(3):
        g = clipped_flat(net, x[step:], y[step:], **clip)
        net.train_on_batch(x[step:], y[step:])
        plain.apply(w, g, net.n_kernel_params)
        unclipped.train_on_batch(x[step:], y[step:])
        np.testing.assert_allclose(net.params, w, **TIGHT[dtype])
        np.testing.assert_allclose(net.optimizer.state, plain.state, **TIGHT[dtype])
    assert not np.allclose(net.params, unclipped.params)   # the clipping did something


@pytest.mark.parametrize("mode", sorted(CLIPS))
def test_clipping_covers_the_trainable_variables_only(mode):
    # the global norm is the trainable variables' norm; a frozen layer is skipped
    x, y = data()
    clip = {mode: CLIPS[mode]}
    net = make(np.float64, pynn.SGD(0.1, **clip), frozen=[1])
    w = net.params.copy()
    g = clipped_flat(net, x, y, frozen=[1], **clip)
    net.train_on_batch(x, y)
    frozen = net.layers[1]
    reference.sgd_update(w, g, None, 0.1)
    for view in (frozen.W, frozen.b):           # the twin moved it; the model did not
        start = (view.__array_interface__["data"][0]
                 - net.params.__array_interface__["data"][0]) // 8
        w[start:start + view.size] = net.params[start:start + view.size]
    np.testing.assert_allclose(net.params, w, **TIGHT[np.float64])


@pytest.mark.parametrize("mode", sorted(CLIPS))
def test_compiled_epoch_equals_train_on_batch_with_clipping(mode, dtype):
    x, y = data(40)
    assert_fit_equals_steps(lambda: make(dtype, pynn.Adam(0.01, **{mode: CLIPS[mode]})), x, y)


def test_a_nonfinite_gradient_is_refused_even_when_clipvalue_would_bound_it(dtype):
    for clip in ({"clipvalue": 1.0}, {"clipnorm": 1.0}, {"global_clipnorm": 1.0}):
        opt = pynn.SGD(0.1, momentum=0.5, **clip)
        opt.build(3, dtype)
        w = np.ones(3, dtype)
        g = np.array([np.inf, 0.5, 0.5], dtype)
        with pytest.raises(FloatingPointError):
            opt.apply(w, g, 2)
        np.testing.assert_array_equal(w, np.ones(3))
        assert not opt.state.any() and opt.iterations == 0


def test_optimizer_apply_clips_the_kernels_and_the_biases_as_two_variables():
    w = np.array([1.0, 2.0, 3.0, 4.0])
    g = np.array([3.0, 4.0, 0.3, 0.4])
    pynn.SGD(1.0, clipnorm=1.0).apply(w, g.copy(), 2)
    np.testing.assert_allclose(w, [1 - 0.6, 2 - 0.8, 3 - 0.3, 4 - 0.4], rtol=1e-15)


def test_clipping_is_saved_with_the_optimizer(tmp_path):
    x, y = data()
    for name, mode in (("adam", "clipnorm"), ("sgd", "clipvalue"), ("nadam", "global_clipnorm")):
        opt = OPTIMIZERS[name](**{mode: CLIPS[mode]})
        config = pynn.optimizers.serialize(opt)
        assert config["config"][mode] == CLIPS[mode]
        back = pynn.optimizers.deserialize(config)
        assert getattr(back, mode) == CLIPS[mode] and back.hyper() == opt.hyper()
        net = make(np.float64, opt)
        net.train_on_batch(x, y)
        net.save(tmp_path / f"{name}.pynn")
        loaded = pynn.load(tmp_path / f"{name}.pynn")
        assert getattr(loaded.optimizer, mode) == CLIPS[mode]
        net.train_on_batch(x, y)
        loaded.train_on_batch(x, y)
        np.testing.assert_array_equal(loaded.params, net.params)
    assert "clipnorm" not in pynn.SGD().get_config()       # unset: configs as before


def test_clipping_can_change_between_steps():
    x, y = data()
    net = make(np.float64, pynn.SGD(0.1))
    net.optimizer.clipvalue = 0.01
    w = net.params.copy()
    g = clipped_flat(net, x, y, clipvalue=0.01)
    net.train_on_batch(x, y)
    reference.sgd_update(w, g, None, 0.1)
    np.testing.assert_allclose(net.params, w, **TIGHT[np.float64])


def test_bad_clipping_settings_are_refused_by_name():
    with pytest.raises(ValueError, match="only one of clipnorm, clipvalue and global_clipnorm"):
        pynn.Adam(clipnorm=1.0, global_clipnorm=1.0)
    with pytest.raises(ValueError, match="clipvalue"):
        pynn.SGD(clipvalue=-1.0)
    with pytest.raises(TypeError, match="clipnorm"):
        pynn.RMSprop(clipnorm="1")
    with pytest.raises(ValueError, match="global_clipnorm"):
        pynn.Adagrad(global_clipnorm=float("nan"))
    opt = pynn.Adam(clipvalue=0.5)
    with pytest.raises(ValueError, match="clipvalue is already 0.5"):
        opt.clipnorm = 1.0
    assert opt.clipnorm is None and opt.clipvalue == 0.5
    opt.clipvalue = None
    opt.clipnorm = 1.0                       # one at a time is fine
    net = make(np.float32, pynn.SGD(0.1))
    with pytest.raises(ValueError, match="clipvalue=1e\\+39 overflows float32"):
        net.optimizer.clipvalue = 1e39
    # zero is off, as in Keras
    assert pynn.SGD(clipnorm=0.0).hyper()[12] == 0.0


def test_a_clipping_threshold_of_zero_is_off_and_does_not_block_another():
    for make in (lambda: pynn.optimizers.SGD(clipnorm=0, clipvalue=1.0),
                 lambda: pynn.optimizers.Adam(global_clipnorm=0.0, clipnorm=2.0)):
        make()
    with pytest.raises(ValueError, match="only one of"):
        pynn.optimizers.SGD(clipnorm=1.0, clipvalue=1.0)
