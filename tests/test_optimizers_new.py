"""RMSprop, AdamW, Nadam and Adagrad: step for step against their twins in
pynn/reference.py, through train_on_batch and the compiled epoch, saved
and loaded with their state, refused steps and bad settings."""
import numpy as np
import pytest

import pynn
from pynn import reference
from conftest import make_model

rng = np.random.default_rng(3)
X64 = rng.standard_normal((48, 6))
Y64 = rng.standard_normal((48, 2))

# (class, settings given to both, reference name)
CASES = [
    (pynn.RMSprop, {}, "rmsprop"),
    (pynn.RMSprop, {"momentum": 0.5}, "rmsprop"),
    (pynn.RMSprop, {"centered": True}, "rmsprop"),
    (pynn.RMSprop, {"momentum": 0.9, "centered": True, "rho": 0.8}, "rmsprop"),
    (pynn.AdamW, {}, "adamw"),
    (pynn.AdamW, {"weight_decay": 0.1, "beta_1": 0.5}, "adamw"),
    (pynn.Nadam, {}, "nadam"),
    (pynn.Nadam, {"beta_1": 0.5, "epsilon": 1e-3}, "nadam"),
    (pynn.Adagrad, {}, "adagrad"),
    (pynn.Adagrad, {"initial_accumulator_value": 0.0, "epsilon": 1e-4}, "adagrad"),
]
IDS = [f"{name}-{'-'.join(map(str, s.items())) or 'defaults'}" for _, s, name in CASES]
N_STEPS = 8
BATCH = 6


def make(cls, settings, dtype, lr=0.05):
    return make_model((5, "tanh"), (2, "linear"), input_dim=6, dtype=dtype, seed=1,
                      loss="mse", optimizer=cls(learning_rate=lr, **settings))


def twin_steps(net, cls, settings, name, dtype, lr=0.05):
    """The twin's weights after N_STEPS steps from net's start, the
    gradients taken by net itself (net is then left trained)."""
    init, step, _ = reference.OPTIMIZER_STEPS[name]
    ref_settings = {"learning_rate": lr, **settings}
    w = net.params.copy()
    state = init(w, ref_settings)
    X, Y = X64.astype(dtype), Y64.astype(dtype)
    worst = 0.0
    for t in range(1, N_STEPS + 1):
        xb, yb = X[BATCH * (t - 1):BATCH * t], Y[BATCH * (t - 1):BATCH * t]
        net.gradients(xb, yb)
        w, state = step(w, net.grads.copy(), state, ref_settings, t)
        net.train_on_batch(xb, yb)
        worst = max(worst, float(np.max(np.abs(w - net.params))))
        np.testing.assert_array_equal(net.params, w)
        assert w.dtype == net.params.dtype
    if name == "nadam":
        assert net.optimizer.u_product == state["u_product"]
    return w, worst


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("cls,settings,name", CASES, ids=IDS)
def test_steps_equal_the_twin_and_the_compiled_epoch(cls, settings, name, dtype):
    net = make(cls, settings, dtype)
    w, _ = twin_steps(net, cls, settings, name, dtype)
    # the compiled epoch, from the same start, gives the same weights
    epoch = make(cls, settings, dtype)
    epoch.fit(X64[:BATCH * N_STEPS].astype(dtype), Y64[:BATCH * N_STEPS].astype(dtype),
              batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    np.testing.assert_array_equal(epoch.params, w)
    np.testing.assert_array_equal(epoch.optimizer.state, net.optimizer.state)
    assert epoch.optimizer.iterations == net.optimizer.iterations == N_STEPS


@pytest.mark.parametrize("cls,settings,name", CASES, ids=IDS)
def test_state_is_saved_and_loaded(cls, settings, name, tmp_path):
    net = make(cls, settings, "float64")
    X, Y = X64[:24], Y64[:24]
    net.fit(X, Y, batch_size=6, epochs=1, shuffle=False, verbose=0)
    path = str(tmp_path / "m.npz")
    net.save(path)
    back = pynn.load(path)
    assert type(back.optimizer) is cls and back.optimizer.get_config() == net.optimizer.get_config()
    for model in (net, back):
        model.fit(X, Y, batch_size=6, epochs=2, shuffle=False, verbose=0)
    np.testing.assert_array_equal(back.params, net.params)
    np.testing.assert_array_equal(back.optimizer.state, net.optimizer.state)


def test_adagrad_state_starts_at_the_initial_accumulator():
    net = make(pynn.Adagrad, {"initial_accumulator_value": 0.25}, "float32")
    assert (net.optimizer.state == np.float32(0.25)).all()
    assert net.optimizer.state.shape == net.params.shape


def test_nadam_u_product_is_the_running_product():
    opt = pynn.Nadam(beta_1=0.9)
    product = 1.0
    for t in range(1, 600):
        product *= reference.nadam_momentum_cache(0.9, t)
        opt.iterations = t
        if product >= 2.0 ** -60:
            assert opt.u_product == product
        else:   # the kernel stops multiplying; 1 - p is 1 either way
            assert 1.0 - opt.u_product == 1.0 == 1.0 - product


@pytest.mark.parametrize("cls,settings,name", CASES, ids=IDS)
def test_a_non_finite_step_changes_nothing(cls, settings, name):
    # float32 with a rate so large that the first update overflows
    net = make(cls, settings, "float32", lr=1e38)
    X, Y = (X64 * 1e3).astype(np.float32)[:6], (Y64 * 1e3).astype(np.float32)[:6]
    params, state = net.params.copy(), net.optimizer.state.copy()
    its = net.optimizer.iterations
    for _ in range(4):               # the first steps may fit and leave state
        try:
            net.train_on_batch(X, Y)
        except (FloatingPointError, pynn.DivergenceError):
            np.testing.assert_array_equal(net.params, params)
            np.testing.assert_array_equal(net.optimizer.state, state)
            assert net.optimizer.iterations == its
            return
        params, state = net.params.copy(), net.optimizer.state.copy()
        its = net.optimizer.iterations
    pytest.fail("no step was refused")


@pytest.mark.parametrize("bad", [
    (pynn.RMSprop, {"rho": 1.0}), (pynn.RMSprop, {"momentum": -0.1}),
    (pynn.RMSprop, {"epsilon": 0.0}), (pynn.RMSprop, {"centered": 1}),
    (pynn.AdamW, {"weight_decay": -1.0}), (pynn.AdamW, {"beta_2": 1.0}),
    (pynn.Nadam, {"beta_1": float("nan")}), (pynn.Nadam, {"learning_rate": 0.0}),
    (pynn.Adagrad, {"initial_accumulator_value": -0.1}), (pynn.Adagrad, {"epsilon": "x"}),
])
def test_bad_settings_are_refused(bad):
    cls, settings = bad
    with pytest.raises((TypeError, ValueError)):
        cls(**settings)


@pytest.mark.parametrize("cls,arg", [(pynn.RMSprop, "rho"), (pynn.AdamW, "beta_1"),
                                     (pynn.Nadam, "beta_2")])
def test_settings_are_checked_against_the_dtype(cls, arg):
    net = make(cls, {}, "float32")
    with pytest.raises(ValueError, match="rounds to 1 in float32"):
        setattr(net.optimizer, arg, 1 - 1e-9)
    with pytest.raises(ValueError, match="rounds to 0 in float32"):
        net.optimizer.epsilon = 1e-50


@pytest.mark.parametrize("name", ["rmsprop", "adamw", "nadam", "adagrad"])
def test_by_name_with_keras_defaults(name):
    opt = pynn.optimizers.get(name)
    _, _, defaults = reference.OPTIMIZER_STEPS[name]
    config = opt.get_config()
    for key, value in defaults.items():
        if key in config:
            assert config[key] == value, key


@pytest.mark.parametrize("cls,settings,name", CASES[::2], ids=IDS[::2])
def test_steady_steps_allocate_nothing(cls, settings, name):
    from test_memory import traced_growth
    net = make(cls, settings, "float32", lr=1e-3)
    X, Y = X64[:16].astype(np.float32), Y64[:16].astype(np.float32)

    def work():
        net.train_on_batch(X, Y)

    assert traced_growth(work, 300) < 8
