"""Learning-rate schedules against their formulas, and their use in training."""
import math

import numpy as np
import pytest

import pynn
from pynn import _optim

STEPS = [0, 1, 2, 5, 9, 10, 11, 99, 1000]


def test_exponential_decay():
    s = pynn.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    for t in STEPS:
        assert s(t) == pytest.approx(0.1 * 0.5 ** (t / 10), rel=1e-15)
    stair = pynn.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5, staircase=True)
    assert [stair(t) for t in (0, 9, 10, 19, 20)] == [0.1, 0.1, 0.05, 0.05, 0.025]


def test_step_decay():
    s = pynn.StepDecay(0.2, step_size=3, drop=0.1)
    for t in STEPS:
        assert s(t) == pytest.approx(0.2 * 0.1 ** math.floor(t / 3), rel=1e-15)
    assert s(2) == 0.2 and s(3) == pytest.approx(0.02)


def test_inverse_scaling_as_scikit_learn():
    # lr = lr0 / t ** power_t with t the 1-based update number
    s = pynn.InverseScaling(0.5, power_t=0.25)
    for t in STEPS:
        assert s(t) == pytest.approx(0.5 / (t + 1) ** 0.25, rel=1e-15)
    assert pynn.InverseScaling(0.5)(3) == pytest.approx(0.25)   # 0.5 / sqrt(4)


@pytest.mark.parametrize("make", [
    lambda: pynn.ExponentialDecay(0.1, 0, 0.5), lambda: pynn.ExponentialDecay(-1, 2, 0.5),
    lambda: pynn.StepDecay(0.1, 2, drop=1.5), lambda: pynn.InverseScaling(0.1, power_t=-1)])
def test_bad_settings(make):
    with pytest.raises(ValueError):
        make()


@pytest.mark.parametrize("opt_cls", [pynn.SGD, pynn.Adam])
def test_optimizer_uses_the_schedule_at_each_step(opt_cls):
    # With plain SGD and g = 1, w drops by exactly lr(t) at step t.
    sched = pynn.StepDecay(0.5, step_size=2, drop=0.5)
    opt = opt_cls(learning_rate=sched)
    opt.build(1, np.float64)
    lrs = []
    for _ in range(5):
        lrs.append(opt.hyper()[0])
        _optim.step(opt.code, np.zeros(1), np.ones(1), opt.state, opt.hyper(), 1)
        opt.iterations += 1
    assert lrs == [0.5, 0.5, 0.25, 0.25, 0.125]


def test_sgd_step_sizes_follow_the_schedule():
    sched = pynn.InverseScaling(0.5, power_t=0.5)
    opt = pynn.SGD(learning_rate=sched)
    w = np.zeros(1)
    opt.build(1, np.float64)
    for t in range(4):
        before = w[0]
        opt.apply(w, np.ones(1), 1)
        assert before - w[0] == pytest.approx(0.5 / math.sqrt(t + 1), rel=1e-15)


def test_fit_logs_the_learning_rate_in_force():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((40, 3)), rng.standard_normal((40, 1))
    net = pynn.Sequential([pynn.Dense(1, input_dim=3)], dtype="float64", seed=0)
    sched = pynn.ExponentialDecay(0.05, decay_steps=4, decay_rate=0.5)
    net.compile(loss="mse", optimizer=pynn.SGD(learning_rate=sched))
    hist = net.fit(x, y, epochs=3, batch_size=10, verbose=0)
    # 4 steps per epoch: the last step of epoch e is step 4e + 3
    expected = [sched(4 * e + 3) for e in range(3)]
    np.testing.assert_allclose(hist.history["learning_rate"], expected, rtol=1e-15)
    const = pynn.Sequential([pynn.Dense(1, input_dim=3)], seed=0)
    const.compile(loss="mse", optimizer=pynn.SGD(learning_rate=0.01))
    assert const.fit(x, y, epochs=2, verbose=0).history["learning_rate"] == [0.01, 0.01]


def test_a_schedule_returning_nonsense_is_refused():
    net = pynn.Sequential([pynn.Dense(1, input_dim=3)], seed=0)
    net.compile(loss="mse", optimizer=pynn.SGD(learning_rate=lambda step: -1.0))
    with pytest.raises(ValueError, match="returned -1.0 at step 0"):
        net.fit(np.ones((4, 3)), np.ones(4), verbose=0)
    assert np.all(np.isfinite(net.params))


# --------------------------------------------------- cosine decay, warmup


def keras_cosine(step, initial, decay_steps, alpha=0.0, warmup_target=None, warmup_steps=0):
    # Keras 3's CosineDecay.__call__, written out
    if warmup_target is None:
        s = min(step, decay_steps)
        return initial * ((1 - alpha) * 0.5 * (1 + math.cos(math.pi * s / decay_steps)) + alpha)
    s = min(step, decay_steps + warmup_steps)
    if s < warmup_steps:
        return (warmup_target - initial) * (s / warmup_steps) + initial
    s -= warmup_steps
    return warmup_target * ((1 - alpha) * 0.5 * (1 + math.cos(math.pi * s / decay_steps))
                            + alpha)


@pytest.mark.parametrize("settings", [
    dict(initial_learning_rate=0.1, decay_steps=10),
    dict(initial_learning_rate=0.1, decay_steps=10, alpha=0.05),
    dict(initial_learning_rate=0.001, decay_steps=7, alpha=0.1, warmup_target=0.1,
         warmup_steps=5),
    dict(initial_learning_rate=0.0, decay_steps=50, warmup_target=0.02, warmup_steps=10),
])
def test_cosine_decay_is_keras(settings):
    sched = pynn.schedules.CosineDecay(**settings)
    for step in STEPS + [3, 4, 6, 12, 15, 16, 17, 60]:
        assert sched(step) == pytest.approx(keras_cosine(
            step, settings["initial_learning_rate"], settings["decay_steps"],
            settings.get("alpha", 0.0), settings.get("warmup_target"),
            settings.get("warmup_steps", 0)), rel=1e-14, abs=1e-300)


def test_cosine_decay_landmarks():
    sched = pynn.schedules.CosineDecay(0.1, decay_steps=10, alpha=0.2)
    assert sched(0) == 0.1
    assert sched(5) == pytest.approx(0.1 * (0.8 * 0.5 + 0.2))
    assert sched(10) == sched(1000) == pytest.approx(0.02)
    warm = pynn.schedules.CosineDecay(0.0, 10, warmup_target=0.5, warmup_steps=4)
    assert [warm(s) for s in range(5)] == pytest.approx([0, 0.125, 0.25, 0.375, 0.5])


def test_linear_warmup_before_cosine_is_kerass_warmup():
    cosine = pynn.schedules.CosineDecay(0.001, 20, alpha=0.1, warmup_target=0.1,
                                        warmup_steps=6)
    warm = pynn.schedules.LinearWarmup(pynn.schedules.CosineDecay(0.1, 20, alpha=0.1),
                                       warmup_steps=6, initial_learning_rate=0.001)
    for step in range(40):
        assert warm(step) == pytest.approx(cosine(step), rel=1e-14)


def test_linear_warmup_to_a_constant_and_another_schedule():
    warm = pynn.schedules.LinearWarmup(0.1, warmup_steps=4, initial_learning_rate=0.02)
    assert [warm(s) for s in range(6)] == pytest.approx([0.02, 0.04, 0.06, 0.08, 0.1, 0.1])
    decay = pynn.ExponentialDecay(0.1, decay_steps=2, decay_rate=0.5)
    warm = pynn.schedules.LinearWarmup(decay, warmup_steps=3, initial_learning_rate=0.01)
    assert warm(1) == pytest.approx(0.01 + 0.09 / 3)
    assert [warm(3 + s) for s in range(5)] == [decay(s) for s in range(5)]


@pytest.mark.parametrize("make", [
    lambda: pynn.schedules.CosineDecay(-0.1, 10),
    lambda: pynn.schedules.CosineDecay(0.1, 0),
    lambda: pynn.schedules.CosineDecay(0.1, 10, alpha=1.5),
    lambda: pynn.schedules.CosineDecay(0.1, 10, warmup_target=0.0, warmup_steps=3),
    lambda: pynn.schedules.CosineDecay(0.1, 10, warmup_target=0.2, warmup_steps=-1),
    lambda: pynn.schedules.LinearWarmup(0.1, 0, 0.01),
    lambda: pynn.schedules.LinearWarmup(0.1, 3, 0.0),
    lambda: pynn.schedules.LinearWarmup("fast", 3, 0.01),
])
def test_bad_cosine_and_warmup_settings(make):
    with pytest.raises((TypeError, ValueError)):
        make()


@pytest.mark.parametrize("sched", [
    pynn.schedules.CosineDecay(0.05, 8, alpha=0.1, warmup_target=0.2, warmup_steps=3),
    pynn.schedules.LinearWarmup(pynn.schedules.CosineDecay(0.1, 8, alpha=0.1), 3, 0.01),
])
def test_cosine_and_warmup_train_save_and_load(tmp_path, sched):
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((40, 3)), rng.standard_normal((40, 1))
    net = pynn.Sequential([pynn.Dense(1, input_dim=3)], dtype="float64", seed=0)
    net.compile(loss="mse", optimizer=pynn.SGD(learning_rate=sched))
    hist = net.fit(x, y, epochs=3, batch_size=10, verbose=0)
    np.testing.assert_allclose(hist.history["learning_rate"],
                               [sched(4 * e + 3) for e in range(3)], rtol=1e-15)
    path = net.save(tmp_path / "m.npz")
    loaded = pynn.load(path).optimizer.learning_rate
    assert type(loaded) is type(sched) and loaded.get_config() == sched.get_config()
    assert [loaded(s) for s in range(30)] == [sched(s) for s in range(30)]
