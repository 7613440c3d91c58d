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
