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


# ------------------------------------------------ optimizer settings, assigned

def small(dtype="float32", opt=None):
    net = pynn.Sequential([pynn.Dense(3, activation="tanh", input_dim=2), pynn.Dense(1)],
                          dtype=dtype, seed=0)
    net.compile(loss="mse", optimizer=opt if opt is not None else pynn.SGD(0.1))
    return net


XS = np.linspace(-1, 1, 8).reshape(4, 2)
YS = XS[:, :1] ** 2


@pytest.mark.parametrize("make, name, value, error", [
    (pynn.SGD, "learning_rate", -1, ValueError), (pynn.SGD, "learning_rate", "x", TypeError),
    (pynn.SGD, "momentum", 1.5, ValueError), (pynn.SGD, "momentum", 1.0, ValueError),
    (pynn.SGD, "nesterov", "yes", TypeError), (pynn.SGD, "weight_decay", -0.1, ValueError),
    (pynn.SGD, "weight_decay", float("nan"), ValueError),
    (pynn.Adam, "beta_1", 1.0, ValueError), (pynn.Adam, "beta_2", -0.5, ValueError),
    (pynn.Adam, "epsilon", 0.0, ValueError), (pynn.Adam, "learning_rate", float("inf"),
                                              ValueError)])
def test_optimizer_settings_are_checked_on_assignment(make, name, value, error):
    opt = make()
    net = small(opt=opt)
    before = getattr(opt, name)
    with pytest.raises(error, match=name):
        setattr(opt, name, value)
    assert getattr(opt, name) == before
    net.train_on_batch(XS, YS)         # still trains, with the old setting


def test_an_assigned_setting_is_the_one_training_uses():
    a, b = small(opt=pynn.SGD(0.1)), small(opt=pynn.SGD(0.05, momentum=0.5))
    a.optimizer.learning_rate = 0.05
    a.optimizer.momentum = 0.5
    a.fit(XS, YS, epochs=3, batch_size=2, shuffle=False, verbose=0)
    b.fit(XS, YS, epochs=3, batch_size=2, shuffle=False, verbose=0)
    assert all(np.array_equal(u, v) for u, v in zip(a.get_weights(), b.get_weights()))


def test_an_optimizer_of_another_model_is_refused_when_assigned_and_trained():
    a = small(opt=pynn.Adam(0.01))
    a.fit(XS, YS, epochs=2, batch_size=2, verbose=0)
    state, iterations = a.optimizer.state.copy(), a.optimizer.iterations
    b = pynn.Sequential([pynn.Dense(5, input_dim=2), pynn.Dense(1)], seed=1)
    b.compile(loss="mse", optimizer="sgd")
    b.optimizer = a.optimizer
    weights = b.get_weights()
    for train in [lambda: b.train_on_batch(XS, YS),
                  lambda: b.fit(XS, YS, epochs=1, verbose=0)]:
        with pytest.raises(ValueError, match="already trains another model"):
            train()
    assert a.optimizer.iterations == iterations
    assert np.array_equal(a.optimizer.state, state)
    assert all(np.array_equal(u, v) for u, v in zip(weights, b.get_weights()))
    a.train_on_batch(XS, YS)              # a goes on with its own state
    assert a.optimizer.iterations == iterations + 1


@pytest.mark.parametrize("opt, match", [
    (lambda: pynn.Adam(epsilon=1e-50), "epsilon=1e-50 rounds to 0 in float32"),
    (lambda: pynn.SGD(1e39), "learning_rate=1e[+]?39 overflows float32"),
    (lambda: pynn.SGD(0.1, momentum=1 - 1e-9), "momentum=.* rounds to 1 in float32"),
    (lambda: pynn.Adam(beta_2=1 - 1e-9), "beta_2=.* rounds to 1 in float32"),
    (lambda: pynn.SGD(0.1, weight_decay=1e-50), "weight_decay=1e-50 rounds to 0"),
    (lambda: pynn.SGD(0.1, weight_decay=1e39), "weight_decay=.* overflows float32")])
def test_settings_float32_cannot_hold_are_refused_at_compile(opt, match):
    net = pynn.Sequential([pynn.Dense(1, input_dim=2)], dtype="float32")
    with pytest.raises(ValueError, match=match):
        net.compile(loss="mse", optimizer=opt())
    assert net.optimizer is None and net.loss is None
    float64 = pynn.Sequential([pynn.Dense(1, input_dim=2)], dtype="float64")
    float64.compile(loss="mse", optimizer=opt())       # float64 holds them all
    float64.train_on_batch(XS, YS)


def test_settings_float32_cannot_hold_are_refused_when_assigned_after_compile():
    opt = pynn.Adam()
    net = small(opt=opt)
    with pytest.raises(ValueError, match="rounds to 0 in float32"):
        opt.epsilon = 1e-50
    assert opt.epsilon == 1e-7
    net.train_on_batch(XS, YS)


# ----------------------------------------------------------- W and b assigned

def test_assigning_W_and_b_writes_the_live_weights():
    net = small()
    layer = net.layers[0]
    view = layer.W
    layer.W = np.zeros((3, 2))
    layer.b = [1, 2, 3]
    assert layer.W is view and not view.any()
    assert np.array_equal(net.get_weights()[0], np.zeros((3, 2)))
    assert np.array_equal(net.get_weights()[1], [1, 2, 3])
    expected = np.tanh(np.broadcast_to([1.0, 2.0, 3.0], (4, 3))) @ net.layers[1].W.T.astype(
        np.float64) + net.layers[1].b
    np.testing.assert_allclose(net.predict(XS), expected, rtol=1e-6)


@pytest.mark.parametrize("part, value, error", [
    ("W", np.zeros((2, 3)), ValueError), ("W", np.zeros(6), ValueError),
    ("b", np.full(3, np.nan), ValueError), ("b", ["a", "b", "c"], TypeError),
    ("W", np.full((3, 2), 1e39), ValueError)])
def test_assigning_bad_W_or_b_is_refused_and_changes_nothing(part, value, error):
    net = small()
    before = net.get_weights()
    with pytest.raises(error, match=part):
        setattr(net.layers[0], part, value)
    assert all(np.array_equal(u, v) for u, v in zip(before, net.get_weights()))


def test_assigning_W_before_build_is_refused():
    with pytest.raises(RuntimeError, match="not built"):
        pynn.Dense(2).W = np.zeros((2, 2))


# ------------------------------------------- values the model's dtype cannot hold

def test_a_finite_value_too_large_for_float32_is_reported_as_overflowing():
    net = small()
    x = XS.copy()
    x[2, 1] = 1e39
    for call in [lambda: net.predict(x), lambda: net.fit(x, YS, verbose=0),
                 lambda: net.evaluate(x, YS), lambda: net.train_on_batch(x, YS)]:
        with pytest.raises(ValueError, match=r"x holds 1e\+39 at index \(2, 1\), which "
                                             r"overflows float32"):
            call()
    with pytest.raises(ValueError, match="y holds 1e\\+39 at index"):
        net.fit(XS, np.full((4, 1), 1e39), verbose=0)
    x[2, 1] = np.inf                # a true infinity is still called one
    with pytest.raises(ValueError, match="NaN or infinite"):
        net.predict(x)
    small(dtype="float64").predict(np.full((2, 2), 1e300))      # float64 holds it


@pytest.mark.parametrize("bad, match", [(np.nan, "NaN or infinite"),
                                        (1e39, "overflows float32")])
def test_a_memmap_of_another_dtype_is_checked_before_any_update(tmp_path, bad, match):
    n = 4000
    x = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float64,
                                  shape=(n, 2))
    x[:] = np.linspace(-1, 1, 2 * n).reshape(n, 2)
    x[n - 5, 0] = bad                  # in the last batch
    net = small(opt=pynn.Adam(0.01))
    before = net.get_weights()
    with pytest.raises(ValueError, match=match):
        net.fit(x, np.ones((n, 1)), batch_size=32, shuffle=False, verbose=0)
    assert net.optimizer.iterations == 0
    assert all(np.array_equal(u, v) for u, v in zip(before, net.get_weights()))


def test_check_finite_reports_the_overflowing_row_across_chunks(monkeypatch):
    from pynn import _validation
    monkeypatch.setattr(_validation, "FINITE_CHUNK", 64)
    x = np.zeros((1000, 4))
    x[777, 3] = -1e300
    with pytest.raises(ValueError, match=r"-1e\+300 at index \(777, 3\)"):
        _validation.check_finite(x, "x", dtype=np.float32)
    _validation.check_finite(x, "x", dtype=np.float64)


def test_sparse_labels_float32_cannot_hold_exactly_are_refused():
    loss = pynn.losses.get("sparse_categorical_crossentropy")
    n_classes = 2**24 + 2
    held = loss.prepare_targets(np.array([0, 2**24, 5]), n_classes, np.float32)
    assert held[:, 0].tolist() == [0, 2**24, 5]
    for label in [2**24 + 1, np.int64(2**24 + 1), 2**24 + 1.0]:
        with pytest.raises(ValueError, match=r"label 16777217 at index 1, which float32 "
                                             r"cannot hold exactly"):
            loss.prepare_targets(np.array([3, label]), n_classes, np.float32)
    held = loss.prepare_targets(np.array([2**24 + 1]), n_classes, np.float64)
    assert held[0, 0] == 2**24 + 1


# ------------------------------------------------------------ pandas inputs

def test_dataframes_of_numeric_bool_and_nullable_columns_are_converted():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"f": [0.5, -1.0, 2.0, 0.0], "i": np.arange(4, dtype=np.int16),
                          "b": [True, False, True, True],
                          "I": pd.array([1, 2, 3, 4], dtype="Int64"),
                          "F": pd.array([0.1, 0.2, 0.3, 0.4], dtype="Float64"),
                          "B": pd.array([True, False, False, True], dtype="boolean")},
                         index=[10, 20, 30, 40])
    plain = np.column_stack([frame[c].to_numpy(dtype=float) for c in frame.columns])
    net = pynn.Sequential([pynn.Dense(3, activation="tanh", input_dim=6), pynn.Dense(1)],
                          dtype="float64", seed=0)
    net.compile(loss="mse", optimizer="sgd")
    assert np.array_equal(net.predict(frame), net.predict(plain))
    twin = pynn.Sequential([pynn.Dense(3, activation="tanh", input_dim=6), pynn.Dense(1)],
                           dtype="float64", seed=0)
    twin.compile(loss="mse", optimizer="sgd")
    target = pd.Series(pd.array([1, 0, 1, 1], dtype="Int64"))
    net.fit(frame, target, epochs=2, batch_size=2, shuffle=False, verbose=0)
    twin.fit(plain, np.array([1.0, 0, 1, 1]), epochs=2, batch_size=2, shuffle=False,
             verbose=0)
    assert all(np.array_equal(u, v) for u, v in zip(net.get_weights(), twin.get_weights()))


def test_dataframes_with_missing_values_or_other_columns_are_refused_by_column():
    pd = pytest.importorskip("pandas")
    net = small(dtype="float64")
    cases = [(pd.DataFrame({"a": [1.0, 2.0], "age": pd.array([3, None], dtype="Int64")}),
              ValueError, r"missing value in column 'age' \(at row 1\)"),
             (pd.DataFrame({"a": [1.0, np.nan], "b": [1.0, 2.0]}), ValueError,
              "missing value in column 'a'"),
             (pd.DataFrame({"a": [1.0, 2.0], "s": ["x", "y"]}), TypeError,
              "column 's' of dtype"),
             (pd.DataFrame({"a": [1.0, 2.0], "c": pd.Categorical(["x", "y"])}), TypeError,
              "column 'c' of dtype category")]
    for frame, error, match in cases:
        with pytest.raises(error, match=match):
            net.predict(frame)
    with pytest.raises(ValueError, match="y has a missing value in column"):
        net.fit(np.ones((2, 2)), pd.Series([1.0, None]), verbose=0)


# ------------------------------------------------- memory and thread counts

def test_a_model_too_big_for_the_machine_names_the_layer_and_the_memory(monkeypatch):
    monkeypatch.setattr(pynn.layers, "_physical_memory", lambda: 16 << 30)
    net = pynn.Sequential([pynn.Dense(4, input_dim=3, name="small")])
    with pytest.raises(MemoryError, match=r"layer big \(Dense\(2147483648\) on 1 inputs, "
                                          r"4294967296 parameters\) needs 32.0 GiB .* "
                                          r"machine's 16.0 GiB"):
        pynn.Sequential([pynn.Dense(1, input_dim=3), pynn.Dense(2**31, name="big")])
    with pytest.raises(MemoryError, match=r"layer number 0 .* more than this machine's"):
        pynn.Sequential([pynn.Dense(2**31, input_dim=1)])
    with pytest.raises(MemoryError, match="needs 64.0 GiB"):
        pynn.Sequential([pynn.Dense(2**31, input_dim=1)], dtype="float64")
    assert net.count_params() == 16


def test_n_threads_above_the_usable_cores_is_clamped_with_a_warning():
    from pynn._validation import usable_cores
    cores = usable_cores()
    with pytest.warns(RuntimeWarning, match=f"n_threads={cores + 1} is more than the "
                                            f"{cores} core"):
        net = pynn.Sequential([pynn.Dense(2, input_dim=2)], n_threads=cores + 1)
    assert net.n_threads == cores
    assert pynn.Sequential(n_threads=cores).n_threads == cores


def test_a_scheduled_rate_float32_rounds_to_zero_is_refused_before_the_step():
    for fit in [lambda net: net.train_on_batch(XS, YS),
                lambda net: net.fit(XS, YS, epochs=1, batch_size=2, verbose=0)]:
        net = small(opt=pynn.SGD(lambda step: 1e-50))
        before = net.get_weights()
        with pytest.raises(ValueError, match=r"returned 1e-50 at step 0.*rounds to 0 in "
                                             r"float32"):
            fit(net)
        assert net.optimizer.iterations == 0
        assert all(np.array_equal(u, v) for u, v in zip(before, net.get_weights()))
    small(dtype="float64", opt=pynn.SGD(lambda step: 1e-50)).train_on_batch(XS, YS)
