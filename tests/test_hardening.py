"""Settings and inputs that used to slip past validation, or to be misreported.

Each is refused where it is given (a constructor, an assignment, compile,
fit), as a ValueError or TypeError naming the argument and the value; the
same settings read from a file are refused by pynn.load.
"""
import json

import numpy as np
import pytest

import pynn


def saved_with_config(tmp_path, edit):
    """A small trained model saved, its config changed by ``edit``, written again."""
    net = pynn.Sequential([pynn.Dense(3, activation="tanh", input_dim=2), pynn.Dense(1)],
                          seed=0)
    net.compile(loss="mse", optimizer=pynn.SGD(pynn.ExponentialDecay(0.1, 5, 0.5)))
    net.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz") as f:
        arrays = dict(f)
    config = json.loads(arrays["config"].tobytes())
    edit(config)
    arrays["config"] = np.frombuffer(json.dumps(config).encode(), np.uint8)
    with open(tmp_path / "edited.npz", "wb") as f:
        np.savez(f, **arrays)
    return tmp_path / "edited.npz"


# ---------------------------------------------------------------- layer names

@pytest.mark.parametrize("name, error", [
    ({"a": 1}, TypeError), (3, TypeError), (b"dense", TypeError), (["x"], TypeError),
    ("", ValueError), ("a\nb", ValueError), ("\x00", ValueError), ("x" * 257, ValueError)])
def test_layer_names_are_printable_strings_of_bounded_length(name, error):
    with pytest.raises(error, match="name must be"):
        pynn.Dense(2, input_dim=3, name=name)


def test_accepted_names_reach_the_summary_and_the_gradient_check():
    name = "couche-é/1 [x]" + "y" * 200
    net = pynn.Sequential([pynn.Dense(2, input_dim=3, name=name)], dtype="float64")
    net.compile(loss="mse")
    assert name in net.summary(print_fn=None)
    assert f"{name}/W" in pynn.check_gradients(net, np.ones((2, 3)), np.ones((2, 2)))


@pytest.mark.parametrize("name", [{"a": 1}, 7, "a\tb", "x" * 1000])
def test_layer_names_from_a_file_are_checked(tmp_path, name):
    path = saved_with_config(tmp_path, lambda c: c["layers"][0].update(name=name))
    with pytest.raises(ValueError, match="name must be"):
        pynn.load(path)


# ------------------------------------------------------------------ schedules

@pytest.mark.parametrize("make_bad, match", [
    (lambda: pynn.InverseScaling(1.0, power_t=1e300), "power_t"),
    (lambda: pynn.InverseScaling(1.0, power_t=17), "power_t"),
    (lambda: pynn.ExponentialDecay(1e-300, 1, 1e300), "decay_rate"),
    (lambda: pynn.ExponentialDecay(0.1, 1, 1.5), "decay_rate")])
def test_schedules_refuse_settings_that_overflow_later(make_bad, match):
    with pytest.raises(ValueError, match=match):
        make_bad()


def test_schedules_at_their_bounds_stay_finite_for_any_step_count():
    for schedule in [pynn.InverseScaling(1.0, power_t=pynn.schedules.MAX_POWER_T),
                     pynn.ExponentialDecay(0.1, 1, 1.0), pynn.ExponentialDecay(0.1, 1, 1e-300)]:
        for step in [0, 1, 10**6, 2**62, 2**63 - 1]:
            assert 0 <= schedule(step) <= 1.0


def test_a_schedule_decayed_to_zero_is_a_value_error_naming_the_step():
    net = pynn.Sequential([pynn.Dense(1, input_dim=1)])
    opt = pynn.SGD(pynn.InverseScaling(1e-30, power_t=16))
    net.compile(loss="mse", optimizer=opt)
    opt.iterations = 2**62
    before = net.get_weights()
    with pytest.raises(ValueError, match="returned 0.0 at step"):
        net.train_on_batch(np.ones((2, 1)), np.ones((2, 1)))
    assert all(np.array_equal(a, b) for a, b in zip(before, net.get_weights()))


@pytest.mark.parametrize("settings", [
    {"class_name": "InverseScaling", "config": {"initial_learning_rate": 1.0,
                                                "power_t": 1e300}},
    {"class_name": "ExponentialDecay", "config": {"initial_learning_rate": 1e-300,
                                                  "decay_steps": 1, "decay_rate": 1e300}}])
def test_schedules_from_a_file_are_checked(tmp_path, settings):
    path = saved_with_config(
        tmp_path, lambda c: c["optimizer"]["config"].update(learning_rate=settings))
    with pytest.raises(ValueError, match="power_t|decay_rate"):
        pynn.load(path)
