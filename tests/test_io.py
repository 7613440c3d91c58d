"""Saving and loading: exact round trips, and refusal of bad files."""
import json

import numpy as np
import pytest

import pynn
from pynn import io as pio


@pytest.fixture
def data():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((64, 5))
    return x, np.tanh(x[:, :2] * x[:, 2:4])


def trained(opt, dtype="float32"):
    net = pynn.Sequential([pynn.Dense(12, activation="relu", input_dim=5),
                           pynn.Dense(2, activation="tanh", name="out")], dtype=dtype, seed=4)
    net.compile(loss="mse", optimizer=opt)
    return net


OPTIMIZERS = [lambda: pynn.SGD(0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
              lambda: pynn.Adam(0.01),
              lambda: pynn.SGD(pynn.ExponentialDecay(0.1, 5, 0.9))]


@pytest.mark.parametrize("make_opt", OPTIMIZERS)
def test_round_trip_is_exact(data, tmp_path, dtype, make_opt):
    x, y = data
    net = trained(make_opt(), dtype)
    net.fit(x, y, epochs=2, batch_size=16, verbose=0)
    path = tmp_path / "model.pynn"
    net.save(path)
    assert path.exists() and not (tmp_path / "model.pynn.npz").exists()
    back = pynn.load(path)
    assert back.dtype == net.dtype and back.layers[1].name == "out"
    assert type(back.optimizer) is type(net.optimizer)
    assert back.optimizer.get_config() == net.optimizer.get_config()
    assert back.optimizer.iterations == net.optimizer.iterations
    np.testing.assert_array_equal(back.predict(x), net.predict(x))
    # a further fit (shuffled: the generator state travels too) stays identical
    net.fit(x, y, epochs=1, batch_size=16, verbose=0)
    back.fit(x, y, epochs=1, batch_size=16, verbose=0)
    np.testing.assert_array_equal(back.params, net.params)
    np.testing.assert_array_equal(back.optimizer.state, net.optimizer.state)


def test_without_optimizer_state(data, tmp_path):
    x, y = data
    net = trained(pynn.SGD(0.05, momentum=0.9))
    net.fit(x, y, epochs=2, verbose=0)
    net.save(tmp_path / "m.npz", include_optimizer=False)
    back = pynn.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(back.params, net.params)
    assert back.optimizer.iterations == 0 and not back.optimizer.state.any()
    assert back.optimizer.get_config() == net.optimizer.get_config()
    # equals a fresh optimizer on the same weights
    fresh = trained(pynn.SGD(0.05, momentum=0.9))
    fresh.set_weights(net.get_weights())
    back.train_on_batch(x, y)
    fresh.train_on_batch(x, y)
    np.testing.assert_array_equal(back.params, fresh.params)


def test_uncompiled_model_round_trip(tmp_path):
    net = pynn.Sequential([pynn.Dense(3, input_dim=2)], seed=1)
    net.save(tmp_path / "u.npz")
    back = pynn.load(tmp_path / "u.npz")
    assert back.loss is None and back.seed == 1
    np.testing.assert_array_equal(back.params, net.params)


def test_file_contents_need_no_pickle(tmp_path):
    net = trained(pynn.Adam())
    net.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as f:
        assert all(f[k].dtype != object for k in f.files)
        config = json.loads(f["config"].tobytes())
    assert config["format_version"] == pio.FORMAT_VERSION
    assert config["optimizer"]["class_name"] == "Adam"
    assert config["loss"] == {"class_name": "MeanSquaredError", "config": {}}


def test_unsaveable_schedule_is_refused_before_writing(tmp_path):
    net = trained(pynn.SGD(lambda step: 0.1))
    with pytest.raises(ValueError, match="schedules can be saved"):
        net.save(tmp_path / "m.npz")
    assert not list(tmp_path.iterdir())


def _rewrite(src, dst, **changes):
    with np.load(src) as f:
        arrays = {k: f[k] for k in f.files}
    for key, value in changes.items():
        if value is None:
            del arrays[key]
        else:
            arrays[key] = value
    with open(dst, "wb") as f:
        np.savez(f, **arrays)


def _config_bytes(src, **changes):
    with np.load(src) as f:
        config = json.loads(f["config"].tobytes())
    config.update(changes)
    return np.frombuffer(json.dumps(config).encode(), dtype=np.uint8)


@pytest.fixture
def saved(tmp_path):
    net = trained(pynn.SGD(0.05, momentum=0.9))
    net.save(tmp_path / "good.npz")
    return tmp_path / "good.npz"


def test_bad_files_raise_value_error(saved, tmp_path):
    raw = saved.read_bytes()
    bad = tmp_path / "bad.npz"
    cases = {
        "truncated": lambda: bad.write_bytes(raw[:len(raw) // 2]),
        "corrupted": lambda: bad.write_bytes(raw[:300] + bytes(b ^ 0xFF for b in raw[300:600])
                                             + raw[600:]),
        "text": lambda: bad.write_text("hello"),
        "empty": lambda: bad.write_bytes(b""),
        "npy": lambda: np.save(open(bad, "wb"), np.ones(3)),
        "pickle": lambda: np.save(open(bad, "wb"), np.array([{"a": 1}], dtype=object),
                                  allow_pickle=True),
        "foreign npz": lambda: np.savez(open(bad, "wb"), a=np.ones(3)),
        "version": lambda: _rewrite(saved, bad, config=_config_bytes(saved, format_version=99)),
        "foreign format": lambda: _rewrite(saved, bad,
                                           config=_config_bytes(saved, format="keras")),
        "not json": lambda: _rewrite(saved, bad, config=np.frombuffer(b"{oops", np.uint8)),
        "params size": lambda: _rewrite(saved, bad, params=np.zeros(5, np.float32)),
        "params dtype": lambda: _rewrite(saved, bad, params=np.zeros(98, np.float64)),
        "params nan": lambda: _rewrite(saved, bad, params=np.full(98, np.nan, np.float32)),
        "no params": lambda: _rewrite(saved, bad, params=None),
        "state size": lambda: _rewrite(saved, bad, optimizer_state=np.zeros(3, np.float32)),
        "unknown loss": lambda: _rewrite(saved, bad, config=_config_bytes(
            saved, loss={"class_name": "os.system", "config": {}})),
        "no input_dim": lambda: _rewrite(saved, bad, config=_config_bytes(saved, input_dim=None)),
        "bad layer": lambda: _rewrite(saved, bad, config=_config_bytes(
            saved, layers=[{"units": -1, "activation": "relu", "name": None}])),
    }
    for name, make in cases.items():
        make()
        with pytest.raises(ValueError, match="cannot load a pynn model"):
            pynn.load(bad)
    with pytest.raises(FileNotFoundError):
        pynn.load(tmp_path / "missing.npz")


def test_unknown_version_message(saved, tmp_path):
    _rewrite(saved, tmp_path / "v.npz", config=_config_bytes(saved, format_version=2))
    with pytest.raises(ValueError, match="format version 2 is not supported.*reads version 1"):
        pynn.load(tmp_path / "v.npz")


def test_metrics_survive_save_and_load(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 3))
    y = (x[:, :1] > 0).astype(float)
    net = pynn.Sequential([pynn.Dense(8, activation="relu", input_dim=3),
                           pynn.Dense(1, activation="sigmoid")], dtype="float64", seed=1)
    net.compile(loss="binary_crossentropy", optimizer="sgd", metrics=["accuracy", "mse"])
    net.fit(x, y, epochs=2, verbose=0)
    net.save(tmp_path / "m.npz")
    back = pynn.load(tmp_path / "m.npz")
    assert [m.name for m in back.metrics] == ["accuracy", "mse"]
    assert back.evaluate(x, y) == net.evaluate(x, y)
    assert set(back.fit(x, y, epochs=1, verbose=0).history) >= {"accuracy", "mse"}
