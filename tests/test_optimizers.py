"""SGD updates against the formulas, worked out by hand, exactly."""
import numpy as np
import pytest

import pynn
from pynn import reference


def _run(opt, w0, grads, dtype, decay_end=None):
    w = np.array(w0, dtype=dtype)
    opt.build(w.shape[0], dtype)
    for g in grads:
        opt.apply(w, np.array(g, dtype=dtype), w.shape[0] if decay_end is None else decay_end)
    return w


# Values chosen to be exact in binary so the hand-worked results are exact.
W0 = [1.0, -2.0]
G = [[0.5, 1.0], [0.25, -1.0], [1.0, 0.0]]


def test_plain_sgd(dtype):
    # w1 = w0 - 0.5 g0 = [0.75, -2.5]; w2 = [0.625, -2.0]; w3 = [0.125, -2.0]
    w = _run(pynn.SGD(learning_rate=0.5), W0, G, dtype)
    np.testing.assert_array_equal(w, np.array([0.125, -2.0], dtype=dtype))


def test_classic_momentum(dtype):
    # lr 0.5, mu 0.5:  v1 = -0.5 g0 = [-0.25, -0.5]        w1 = [0.75, -2.5]
    #                  v2 = 0.5 v1 - 0.5 g1 = [-0.25, 0.25]  w2 = [0.5, -2.25]
    #                  v3 = 0.5 v2 - 0.5 g2 = [-0.625, 0.125] w3 = [-0.125, -2.125]
    opt = pynn.SGD(learning_rate=0.5, momentum=0.5)
    w = _run(opt, W0, G, dtype)
    np.testing.assert_array_equal(w, np.array([-0.125, -2.125], dtype=dtype))
    np.testing.assert_array_equal(opt.state, np.array([-0.625, 0.125], dtype=dtype))


def test_nesterov_in_the_keras_form(dtype):
    # the Keras form of Nesterov momentum (keras.optimizers.SGD):
    # v = mu v - lr g;  w += mu v - lr g   (lr 0.5, mu 0.5)
    # step 1: v = [-0.25, -0.5];   w += [-0.125-0.25, -0.25-0.5]  -> [0.625, -2.75]
    # step 2: v = [-0.25, 0.25];   w += [-0.125-0.125, 0.125+0.5] -> [0.375, -2.125]
    # step 3: v = [-0.625, 0.125]; w += [-0.3125-0.5, 0.0625-0]   -> [-0.4375, -2.0625]
    opt = pynn.SGD(learning_rate=0.5, momentum=0.5, nesterov=True)
    w = _run(opt, W0, G, dtype)
    np.testing.assert_array_equal(w, np.array([-0.4375, -2.0625], dtype=dtype))


def test_weight_decay_applies_before_momentum_and_only_to_kernels(dtype):
    # wd 0.5 on the first entry only (decay_end=1), lr 0.5, no momentum:
    # g' = g + 0.5 w:  step 1: [0.5+0.5, 1.0] -> w = [0.5, -2.5]
    opt = pynn.SGD(learning_rate=0.5, weight_decay=0.5)
    w = _run(opt, W0, G[:1], dtype, decay_end=1)
    np.testing.assert_array_equal(w, np.array([0.5, -2.5], dtype=dtype))


@pytest.mark.parametrize("momentum,nesterov", [(0.0, False), (0.9, False), (0.9, True)])
def test_matches_reference_on_random_values(dtype, rng, momentum, nesterov):
    w = rng.standard_normal(1000).astype(dtype)
    w_ref = w.copy()
    v_ref = np.zeros_like(w)
    opt = pynn.SGD(learning_rate=0.01, momentum=momentum, nesterov=nesterov, weight_decay=1e-3)
    opt.build(w.shape[0], dtype)
    for _ in range(5):
        g = rng.standard_normal(1000).astype(dtype)
        opt.apply(w, g, w.shape[0])
        reference.sgd_update(w_ref, g, v_ref, 0.01, momentum, nesterov, 1e-3)
    # same operations in the same order and type: bit for bit
    np.testing.assert_array_equal(w, w_ref)


def test_model_step_equals_reference_step(dtype, rng):
    """A whole train_on_batch equals forward/backward/update in NumPy."""
    net = pynn.Sequential([pynn.Dense(16, activation="relu", input_dim=6),
                           pynn.Dense(3)], dtype=dtype, seed=7)
    net.compile(loss="mse", optimizer=pynn.SGD(learning_rate=0.05, momentum=0.9, nesterov=True))
    ref = reference.ReferenceNetwork(net.get_weights(), ["relu", "linear"],
                                     learning_rate=0.05, momentum=0.9, nesterov=True)
    x = rng.standard_normal((20, 6)).astype(dtype)
    y = rng.standard_normal((20, 3)).astype(dtype)
    for _ in range(4):
        loss = net.train_on_batch(x, y)
        ref_loss = ref.train_step(x, y)
        assert loss == pytest.approx(ref_loss, rel=1e-4 if dtype == np.float32 else 1e-11)
    tol = 1e-4 if dtype == np.float32 else 1e-11
    for a, b in zip(net.get_weights(), ref.get_weights()):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


@pytest.mark.parametrize("kwargs", [dict(learning_rate=0), dict(learning_rate=-1),
                                    dict(learning_rate=float("nan")), dict(momentum=1.0),
                                    dict(momentum=-0.1), dict(weight_decay=-1)])
def test_bad_settings_raise_value_error(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        pynn.SGD(**kwargs)


@pytest.mark.parametrize("kwargs", [dict(learning_rate="0.1"), dict(nesterov=1),
                                    dict(momentum=None)])
def test_bad_types_raise_type_error(kwargs):
    with pytest.raises(TypeError, match=next(iter(kwargs))):
        pynn.SGD(**kwargs)


# ------------------------------------------------------------------- Adam


def test_adam_first_steps_by_hand():
    # t=1: m = 0.1 g, v = 0.001 g^2, m_hat = g, v_hat = g^2: w -= lr * g/(|g| + eps)
    opt = pynn.Adam(learning_rate=0.5, epsilon=1e-12)
    w = _run(opt, W0, G[:1], np.float64)
    np.testing.assert_allclose(w, [1.0 - 0.5, -2.0 - 0.5], rtol=1e-11)
    np.testing.assert_allclose(opt.state, [0.05, 0.1, 0.00025, 0.001], rtol=1e-14)


@pytest.mark.parametrize("weight_decay", [0.0, 1e-2])
def test_adam_matches_its_formula_step_for_step(dtype, rng, weight_decay):
    n = 1000
    w = rng.standard_normal(n).astype(dtype)
    w_ref, m_ref, v_ref = w.copy(), np.zeros_like(w), np.zeros_like(w)
    opt = pynn.Adam(learning_rate=0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-6,
                    weight_decay=weight_decay)
    opt.build(n, dtype)
    decay_end = 600                      # the kernels' share of the buffer
    for t in range(1, 8):
        g = rng.standard_normal(n).astype(dtype)
        opt.apply(w, g, decay_end)
        reference.adam_update(w_ref[:decay_end], g[:decay_end], m_ref[:decay_end],
                              v_ref[:decay_end], t, 0.01, 0.8, 0.99, 1e-6, weight_decay)
        reference.adam_update(w_ref[decay_end:], g[decay_end:], m_ref[decay_end:],
                              v_ref[decay_end:], t, 0.01, 0.8, 0.99, 1e-6)
        # same operations in the same order and type: bit for bit
        np.testing.assert_array_equal(w, w_ref)
        np.testing.assert_array_equal(opt.state[:n], m_ref)
        np.testing.assert_array_equal(opt.state[n:], v_ref)
    assert opt.iterations == 7


def test_adam_trains_a_network(rng):
    x = rng.standard_normal((64, 4))
    y = x @ rng.standard_normal((4, 2))
    net = pynn.Sequential([pynn.Dense(2, input_dim=4)], dtype="float64", seed=0)
    net.compile(loss="mse", optimizer=pynn.Adam(learning_rate=0.05))
    first = net.evaluate(x, y, return_dict=True)["loss"]
    net.fit(x, y, epochs=40, batch_size=16, verbose=0)
    assert net.evaluate(x, y, return_dict=True)["loss"] < 1e-2 * first


@pytest.mark.parametrize("kwargs", [dict(learning_rate=0), dict(beta_1=1.0), dict(beta_2=-0.1),
                                    dict(epsilon=0), dict(weight_decay=-1)])
def test_adam_bad_settings(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        pynn.Adam(**kwargs)


def test_optimizer_config_round_trip():
    for opt in (pynn.SGD(0.1, momentum=0.5, nesterov=True, weight_decay=1e-3),
                pynn.Adam(0.002, beta_1=0.8, epsilon=1e-6),
                pynn.SGD(pynn.ExponentialDecay(0.1, 10, 0.9, staircase=True)),
                pynn.Adam(pynn.InverseScaling(0.01, 0.3))):
        again = pynn.optimizers.get(pynn.optimizers.serialize(opt))
        assert type(again) is type(opt)
        assert again.get_config() == opt.get_config()
        assert repr(again) == repr(opt)
    with pytest.raises(ValueError, match="unknown optimizer 'Nope'"):
        pynn.optimizers.get({"class_name": "Nope", "config": {}})
    with pytest.raises(ValueError, match="invalid optimizer config"):
        pynn.optimizers.get({"class_name": "SGD", "config": {"lr": 1}})
    with pytest.raises(ValueError, match="schedules can be saved"):
        pynn.SGD(learning_rate=lambda t: 0.1).get_config()


def test_one_optimizer_cannot_train_two_models():
    opt = pynn.Adam(0.01)
    a = pynn.Sequential([pynn.Dense(2, input_dim=3)], seed=0)
    b = pynn.Sequential([pynn.Dense(2, input_dim=3)], seed=0)
    a.compile(loss="mse", optimizer=opt)
    a.compile(loss="mse", optimizer=opt)          # the same model again: fine
    with pytest.raises(ValueError, match="already trains another model"):
        b.compile(loss="mse", optimizer=opt)
    assert b.optimizer is None and b.loss is None  # nothing half-applied
    b.compile(loss="mse", optimizer=pynn.Adam(0.01))
