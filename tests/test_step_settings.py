"""The settings a step uses are those of the optimizer at that step.

The model hands the network a cached copy of the optimizer's settings
(``Optimizer.kernel_settings``) and checks only what may have changed
since the last step: these tests change each kind of setting between two
calls of train_on_batch (and of fit) and check the next update against the
update formula, on gradients taken just before it.
"""
import numpy as np
import pytest

import pynn
from conftest import make_model
from pynn import activations


class HandTanh(activations.Activation):
    def __call__(self, z):
        return np.tanh(z)

    def derivative(self, z):
        return 1 - np.tanh(z) ** 2

rng = np.random.default_rng(11)
X = rng.standard_normal((16, 6))
Y = rng.standard_normal((16, 3))


def model_with(opt):
    return make_model((5, "tanh"), (3, None), input_dim=6, dtype="float64", seed=3,
                      optimizer=opt)


def step_delta(model):
    """(gradients before the step, weight change of one train_on_batch)."""
    _, grads = model.gradients(X, Y)
    before = [w.copy() for w in model.get_weights()]
    model.train_on_batch(X, Y)
    return grads, [a - b for a, b in zip(model.get_weights(), before)]


def assert_sgd_step(model, lr):
    grads, deltas = step_delta(model)
    for g, d in zip(grads, deltas):
        np.testing.assert_allclose(d, -lr * g, rtol=1e-12, atol=1e-15)


def test_a_learning_rate_assigned_between_calls_is_the_next_steps_rate():
    model = model_with(pynn.SGD(0.1))
    assert_sgd_step(model, 0.1)
    model.optimizer.learning_rate = 0.025
    assert_sgd_step(model, 0.025)
    assert_sgd_step(model, 0.025)
    model.optimizer.learning_rate = 0.4
    assert_sgd_step(model, 0.4)


def test_a_schedule_moves_at_every_train_on_batch():
    schedule = pynn.ExponentialDecay(0.2, decay_steps=1, decay_rate=0.5)
    model = model_with(pynn.SGD(schedule))
    for t in range(4):
        assert_sgd_step(model, 0.2 * 0.5 ** t)
    # a constant again, then the schedule again from the count reached
    model.optimizer.learning_rate = 0.05
    assert_sgd_step(model, 0.05)
    model.optimizer.learning_rate = schedule
    assert_sgd_step(model, 0.2 * 0.5 ** 5)


def test_a_schedule_changed_in_place_takes_effect_at_the_next_step():
    schedule = pynn.ExponentialDecay(0.2, decay_steps=1000, decay_rate=1.0)
    model = model_with(pynn.SGD(schedule))
    assert_sgd_step(model, 0.2)
    schedule.initial_learning_rate = 0.03
    assert_sgd_step(model, 0.03)


def buffer_order(arrays):
    # get_weights() order (W1, b1, W2, b2) -> the flat buffer's (W1, W2, b1, b2)
    return np.concatenate([a.ravel() for a in arrays[0::2]] + [a.ravel() for a in arrays[1::2]])


def flat_step(model):
    """(flat gradient before the step, flat change of params by one train_on_batch)."""
    _, grads = model.gradients(X, Y)
    before = model.params.copy()
    model.train_on_batch(X, Y)
    return buffer_order(grads), model.params - before


def test_momentum_turned_on_between_calls_resizes_the_state_and_follows_the_formula():
    model = model_with(pynn.SGD(0.1))
    assert_sgd_step(model, 0.1)
    model.optimizer.momentum = 0.5
    assert model.optimizer.state.shape == (0,)      # resized at the next step
    g, d = flat_step(model)
    v = -0.1 * g                                     # from a zero velocity
    np.testing.assert_allclose(d, v, rtol=1e-10, atol=1e-14)
    assert model.optimizer.state.shape == model.params.shape
    g, d = flat_step(model)
    v = 0.5 * v - 0.1 * g                            # classic momentum
    np.testing.assert_allclose(d, v, rtol=1e-10, atol=1e-14)
    model.optimizer.nesterov = True
    g, d = flat_step(model)
    v = 0.5 * v - 0.1 * g                            # the Keras form of Nesterov
    np.testing.assert_allclose(d, 0.5 * v - 0.1 * g, rtol=1e-10, atol=1e-14)
    model.optimizer.momentum = 0.0                   # plain SGD again
    assert_sgd_step(model, 0.1)


@pytest.mark.parametrize("mode, value", [("clipvalue", 1e-3), ("clipnorm", 1e-3),
                                         ("global_clipnorm", 1e-3)])
def test_clipping_set_between_calls_clips_the_next_step(mode, value):
    model = model_with(pynn.SGD(0.1))
    assert_sgd_step(model, 0.1)
    setattr(model.optimizer, mode, value)
    grads, deltas = step_delta(model)
    if mode == "clipvalue":
        clipped = [np.clip(g, -value, value) for g in grads]
    elif mode == "clipnorm":
        clipped = [g * value / max(np.linalg.norm(g), value) for g in grads]
    else:
        norm = np.sqrt(sum(np.sum(g * g) for g in grads))
        clipped = [g * value / max(norm, value) for g in grads]
    for c, d in zip(clipped, deltas):
        np.testing.assert_allclose(d, -0.1 * c, rtol=1e-10, atol=1e-16)
    setattr(model.optimizer, mode, None)
    assert_sgd_step(model, 0.1)


def test_an_optimizer_assigned_between_calls_trains_the_next_step():
    model = model_with(pynn.SGD(0.1))
    assert_sgd_step(model, 0.1)
    model.optimizer = pynn.SGD(0.02)
    assert_sgd_step(model, 0.02)


def test_a_rate_assigned_between_fits_reaches_the_compiled_epoch():
    # fit's runners hand over the settings through the same cache
    a, b = model_with(pynn.SGD(0.1)), model_with(pynn.SGD(0.1))
    a.fit(X, Y, epochs=1, batch_size=4, shuffle=False, verbose=0)
    a.optimizer.learning_rate = 0.01
    a.fit(X, Y, epochs=1, batch_size=4, shuffle=False, verbose=0)
    for k in range(4):
        b.train_on_batch(X[4 * k:4 * k + 4], Y[4 * k:4 * k + 4])
    b.optimizer.learning_rate = 0.01
    for k in range(4):
        b.train_on_batch(X[4 * k:4 * k + 4], Y[4 * k:4 * k + 4])
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)


OPTIMIZERS = [pynn.SGD(0.1), pynn.SGD(0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
              pynn.Adam(0.01), pynn.RMSprop(centered=True, momentum=0.5), pynn.AdamW(),
              pynn.Nadam(), pynn.Adagrad(), pynn.Adam(clipnorm=2.0), pynn.SGD(clipvalue=0.5),
              pynn.SGD(pynn.ExponentialDecay(0.1, 10, 0.5)),
              pynn.Adam(pynn.ExponentialDecay(0.1, 10, 0.5), global_clipnorm=1.0)]


@pytest.mark.parametrize("opt", OPTIMIZERS, ids=repr)
def test_kernel_settings_are_hyper_without_the_step_count(opt):
    for iterations in (0, 7, 25):
        opt.iterations = iterations
        hyper = opt.hyper()
        settings = opt.kernel_settings()
        assert isinstance(settings, tuple)
        n = len(settings)
        assert list(settings) == hyper[:n]
        # what follows in hyper() is zeros, then the count the network keeps
        assert all(v == 0.0 for v in hyper[n:-1])
        if len(hyper) > n:
            assert hyper[-1] == float(iterations) and len(hyper) == 16
        assert settings[0] == opt.learning_rate_at(iterations)


def test_kernel_settings_follow_every_assignment():
    opt = pynn.Adam(0.01)
    first = opt.kernel_settings()
    assert opt.kernel_settings() is first        # cached while nothing changes
    revision = opt.revision
    opt.beta_1 = 0.5
    assert opt.revision > revision
    assert opt.kernel_settings()[1] == 0.5
    with pytest.raises(ValueError):
        opt.beta_2 = 1.5                         # refused: nothing changes
    assert opt.kernel_settings()[2] == 0.999


def test_step_as_given_runs_only_what_it_accepts_and_changes_nothing_otherwise():
    model = model_with(pynn.SGD(0.1, momentum=0.9))
    x, y = X.copy(), Y.copy()
    refused = [(x.astype(np.float32), y),            # another dtype
               (np.asfortranarray(x), y),            # not C-contiguous
               (x[:, :5].copy(), y),                 # another width
               (x[:3], y),                           # different numbers of rows
               (x.tolist(), y)]                      # not an array
    before = model.params.copy(), model.optimizer.state.copy(), model.optimizer.iterations
    for xa, ya in refused:
        assert model.step_as_given(xa, ya) is None
    np.testing.assert_array_equal(model.params, before[0])
    np.testing.assert_array_equal(model.optimizer.state, before[1])
    assert model.optimizer.iterations == before[2]
    # accepted: the same step as step() on the checked arrays, bit for bit
    twin = model_with(pynn.SGD(0.1, momentum=0.9))
    loss, applied = model.step_as_given(x, y)
    twin_loss, twin_applied = twin.step(*twin.check_xy(x, y))
    assert applied and twin_applied and loss == twin_loss
    np.testing.assert_array_equal(model.params, twin.params)
    assert model.optimizer.iterations == twin.optimizer.iterations == 1


def test_step_as_given_leaves_metrics_and_custom_losses_to_the_full_path():
    with_metrics = make_model((5, "tanh"), (3, None), input_dim=6, dtype="float64",
                              metrics=["mae"])
    assert with_metrics.step_as_given(X, Y) is None
    assert isinstance(with_metrics.train_on_batch(X, Y), list)    # [loss, mae]
    # a custom activation under the mse: the loss reads any real targets, but
    # the model computes through pynn.custom
    custom = make_model((5, HandTanh()), (3, None), input_dim=6, dtype="float64")
    assert custom.numpy_path
    assert custom.step_as_given(X, Y) is None
    assert np.isfinite(custom.train_on_batch(X, Y))
    uncompiled = pynn.Sequential([pynn.Dense(3, input_dim=6)], dtype="float64")
    assert uncompiled.step_as_given(X, Y) is None
    with pytest.raises(RuntimeError, match="compile"):
        uncompiled.train_on_batch(X, Y)


def test_train_on_batch_converts_what_the_fast_path_refuses():
    a, b = model_with(pynn.SGD(0.1)), model_with(pynn.SGD(0.1))
    la = a.train_on_batch(X, Y)
    lb = b.train_on_batch(np.asfortranarray(X), Y.tolist())     # the checked path
    assert la == lb
    np.testing.assert_array_equal(a.params, b.params)
    with pytest.raises(TypeError, match="return_dict"):
        a.train_on_batch(X, Y, return_dict="yes")
    np.testing.assert_array_equal(a.params, b.params)          # refused: nothing ran


def test_the_network_rereads_settings_handed_as_anything_but_the_tuple_it_holds():
    # set_hyper skips the tuple it copied last (immutable: the same
    # settings); a new tuple, a list changed in place and a new state are read
    model = model_with(pynn.SGD(0.1))
    net = model.engine
    settings = (0.05,)
    assert_sgd_step_on(net, model, 0.05, [settings])
    assert_sgd_step_on(net, model, 0.05, [settings, settings])   # the same tuple again
    assert_sgd_step_on(net, model, 0.02, [settings, (0.02,)])    # another tuple: read
    as_list = [0.03]

    def change():
        as_list[0] = 0.01
        return as_list
    assert_sgd_step_on(net, model, 0.01, [as_list, change])      # a list is read again
    # a state too small for the settings is refused even for the tuple last
    # copied: set_optimizer forgets the tuple checked against the old state
    momentum = (0.1, 0.9)
    code, n = int(model.optimizer.code), model.params.shape[0]
    net.set_optimizer(code, np.zeros(n), n)
    net.set_hyper(momentum)
    net.set_optimizer(code, np.zeros(0), n)
    with pytest.raises(ValueError, match="state holds 0 values"):
        net.set_hyper(momentum)


def assert_sgd_step_on(net, model, lr, handed):
    """After set_hyper of each of handed (a callable: its value), one step
    of the compiled network alone moves the weights by -lr g."""
    _, grads = model.gradients(X, Y)        # pushes the optimizer's own settings
    for settings in handed:
        net.set_hyper(settings() if callable(settings) else settings)
    before = [w.copy() for w in model.get_weights()]
    loss, status = net.step(X, Y)
    assert status == 0
    for g, w, b in zip(grads, model.get_weights(), before):
        np.testing.assert_allclose(w - b, -lr * g, rtol=1e-12, atol=1e-15)
