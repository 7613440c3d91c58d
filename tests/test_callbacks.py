"""EarlyStopping, ReduceLROnPlateau, ModelCheckpoint, LambdaCallback, History."""
import sys

import os

import numpy as np
import pytest

import pynn
from conftest import make_model


def make_net(seed=0):
    return make_model((8, "tanh"), (1, None), input_dim=3, seed=seed, optimizer=pynn.SGD(0.1))


@pytest.fixture
def data():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((80, 3))
    return x, np.sin(x[:, :1]) + 0.1 * rng.standard_normal((80, 1))


class Script(pynn.Callback):
    """Replaces logs[key] by scripted values (placed before the callback tested),
    and records the weights each epoch ends with."""

    def __init__(self, values, key="val_loss"):
        super().__init__()
        self.values, self.key, self.weights = values, key, []

    def on_epoch_end(self, epoch, logs=None):
        logs[self.key] = self.values[epoch]
        self.weights.append(self.model.get_weights())


def test_early_stopping_patience_and_restore(data):
    x, y = data
    net = make_net()
    script = Script([3.0, 1.0, 2.0, 2.5, 0.5, 0.4])
    stop = pynn.EarlyStopping(patience=2, restore_best_weights=True)
    h = net.fit(x, y, epochs=6, validation_split=0.25, callbacks=[script, stop], verbose=0)
    # best at epoch 1, two epochs without improvement -> stop after epoch 3
    assert h.epoch == [0, 1, 2, 3] and stop.stopped_epoch == 3 and stop.best_epoch == 1
    for a, b in zip(net.get_weights(), script.weights[1]):
        np.testing.assert_array_equal(a, b)


def test_early_stopping_min_delta_and_mode(data):
    x, y = data
    script = Script([1.0, 0.95, 0.9], key="loss")
    stop = pynn.EarlyStopping(monitor="loss", min_delta=0.1)
    make_net().fit(x, y, epochs=3, callbacks=[script, stop], verbose=0)
    assert stop.stopped_epoch == 1
    script = Script([0.1, 0.2, 0.1], key="val_acc")
    stop = pynn.EarlyStopping(monitor="val_acc")            # "auto" -> higher is better
    h = make_net().fit(x, y, epochs=3, validation_split=0.25, callbacks=[script, stop],
                       verbose=0)
    assert stop.mode == "max" and h.epoch == [0, 1, 2]


def test_early_stopping_restores_the_best_real_weights(data):
    x, y = data
    net = make_net()
    net.compile(loss="mse", optimizer=pynn.SGD(0.3, momentum=0.9))
    stop = pynn.EarlyStopping(patience=3, restore_best_weights=True)
    h = net.fit(x[:20], y[:20], epochs=60, batch_size=4, validation_data=(x[20:], y[20:]),
                callbacks=[stop], verbose=0)
    best = min(h.history["val_loss"])
    assert net.evaluate(x[20:], y[20:], return_dict=True)["loss"] == best
    assert h.history["val_loss"][stop.best_epoch] == best


def test_monitoring_an_unavailable_value_fails_before_training(data):
    x, y = data
    net = make_net()
    before = net.params.copy()
    with pytest.raises(ValueError, match="no validation data"):
        net.fit(x, y, epochs=2, callbacks=[pynn.EarlyStopping()], verbose=0)
    np.testing.assert_array_equal(net.params, before)
    with pytest.raises(ValueError, match="'mae', which is not logged"):
        net.fit(x, y, epochs=2, callbacks=[pynn.EarlyStopping(monitor="mae")], verbose=0)


def test_reduce_lr_on_plateau(data):
    x, y = data
    net = make_net()
    script = Script([1.0, 2.0, 3.0, 0.5, 0.6, 0.7, 0.8])
    reduce = pynn.ReduceLROnPlateau(factor=0.5, patience=1, min_lr=0.02)
    h = net.fit(x, y, epochs=7, validation_split=0.25, callbacks=[script, reduce], verbose=0)
    # the rate logged is the one each epoch trained with
    assert h.history["learning_rate"] == [0.1, 0.1, 0.05, 0.025, 0.025, 0.02, 0.02]
    assert net.optimizer.learning_rate == 0.02


def test_reduce_lr_on_plateau_refuses_a_schedule(data):
    x, y = data
    net = make_net()
    net.compile(loss="mse", optimizer=pynn.SGD(pynn.StepDecay(0.1, 10)))
    with pytest.raises(TypeError, match="constant learning rate"):
        net.fit(x, y, callbacks=[pynn.ReduceLROnPlateau(monitor="loss")], verbose=0)


def test_model_checkpoint(data, tmp_path):
    x, y = data
    net = make_net()
    script = Script([3.0, 1.0, 2.0])
    every = pynn.ModelCheckpoint(str(tmp_path / "e{epoch}.npz"))
    best = pynn.ModelCheckpoint(tmp_path / "best.npz", save_best_only=True)
    net.fit(x, y, epochs=3, validation_split=0.25, callbacks=[script, every, best], verbose=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.npz", "e1.npz", "e2.npz",
                                                          "e3.npz"]
    saved = pynn.load(tmp_path / "best.npz")
    for a, b in zip(saved.get_weights(), script.weights[1]):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="cannot be filled"):
        net.fit(x, y, callbacks=[pynn.ModelCheckpoint(str(tmp_path / "{nope}"))], verbose=0)
    as_bytes = pynn.ModelCheckpoint(os.fsencode(tmp_path / "b{epoch}.npz"), monitor="loss")
    net.fit(x, y, epochs=1, callbacks=[as_bytes], verbose=0)
    assert (tmp_path / "b1.npz").exists()


def test_lambda_callback(data):
    x, y = data
    seen = []
    cb = pynn.LambdaCallback(on_train_begin=lambda logs: seen.append("begin"),
                             on_epoch_end=lambda epoch, logs: seen.append(epoch),
                             on_train_end=lambda logs: seen.append("end"))
    assert not cb.wants_batches
    make_net().fit(x, y, epochs=2, callbacks=[cb], verbose=0)
    assert seen == ["begin", 0, 1, "end"]
    with pytest.raises(TypeError, match="on_epoch_end"):
        pynn.LambdaCallback(on_epoch_end=3)


@pytest.mark.parametrize("make", [lambda: pynn.EarlyStopping(mode="up"),
                                  lambda: pynn.EarlyStopping(patience=-1),
                                  lambda: pynn.ReduceLROnPlateau(factor=1.0),
                                  lambda: pynn.ReduceLROnPlateau(min_lr=-1)])
def test_bad_settings(make):
    with pytest.raises(ValueError):
        make()


def test_history_plot(data, tmp_path):
    pytest.importorskip("matplotlib")
    x, y = data
    h = make_net().fit(x, y, epochs=3, validation_split=0.25, verbose=0)
    path = h.plot(tmp_path / "loss.png")
    assert (tmp_path / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path == tmp_path / "loss.png"


def test_history_plot_without_matplotlib(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    h = pynn.History()
    h.record(0, {"loss": 1.0})
    with pytest.raises(ImportError, match=r"pynn\[plot\]"):
        h.plot(tmp_path / "x.png")


# ---------------------------- LearningRateScheduler, CSVLogger, TerminateOnNaN


def test_learning_rate_scheduler_sets_the_rate_of_each_epoch(data):
    x, y = data
    def schedule(epoch, lr):
        return lr if epoch < 2 else lr * 0.5
    net = make_net()
    twin = make_net()
    scheduler = pynn.callbacks.LearningRateScheduler(schedule)
    hist = net.fit(x, y, epochs=5, batch_size=20, shuffle=False, verbose=0,
                   callbacks=[scheduler])
    # the twin replays the same batches with the rate set by hand
    lr = 0.1
    for epoch in range(5):
        lr = schedule(epoch, lr)
        twin.optimizer.learning_rate = lr
        for start in range(0, 80, 20):
            twin.train_on_batch(x[start:start + 20], y[start:start + 20])
    for a, b in zip(net.get_weights(), twin.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert hist.history["learning_rate"] == [0.1, 0.1, 0.05, 0.025, 0.0125]
    assert net.optimizer.learning_rate == 0.0125


def test_learning_rate_scheduler_of_the_epoch_alone(data, capsys):
    x, y = data
    net = make_net()
    hist = net.fit(x, y, epochs=3, verbose=0, callbacks=[
        pynn.callbacks.LearningRateScheduler(lambda epoch: 0.01 * (epoch + 1), verbose=1)])
    assert hist.history["learning_rate"] == pytest.approx([0.01, 0.02, 0.03], rel=1e-15)
    assert "Epoch 3: LearningRateScheduler setting learning rate to 0.03" in capsys.readouterr().out


@pytest.mark.parametrize("returned", [0.0, -1.0, float("nan"), "fast", None])
def test_learning_rate_scheduler_refuses_a_bad_rate(data, returned):
    x, y = data
    net = make_net()
    before = net.get_weights()
    with pytest.raises(ValueError, match="epoch 0"):
        net.fit(x, y, epochs=2, verbose=0, callbacks=[
            pynn.callbacks.LearningRateScheduler(lambda epoch, lr: returned)])
    for a, b in zip(net.get_weights(), before):   # refused before any step
        np.testing.assert_array_equal(a, b)


def test_learning_rate_scheduler_refuses_a_step_schedule(data):
    x, y = data
    net = make_net()
    net.compile(loss="mse", optimizer=pynn.SGD(pynn.ExponentialDecay(0.1, 10, 0.5)))
    with pytest.raises(TypeError, match="constant learning rate"):
        net.fit(x, y, verbose=0, callbacks=[
            pynn.callbacks.LearningRateScheduler(lambda epoch, lr: lr)])
    with pytest.raises(TypeError, match="callable"):
        pynn.callbacks.LearningRateScheduler(0.1)


def read_csv(path, sep=","):
    import csv
    with open(path, newline="") as f:
        return list(csv.reader(f, delimiter=sep))


def test_csv_logger_writes_the_history(data, tmp_path):
    x, y = data
    net = make_net()
    net.compile(loss="mse", optimizer=pynn.SGD(0.1), metrics=["mae"])
    path = tmp_path / "log.csv"
    hist = net.fit(x[:60], y[:60], epochs=3, verbose=0, validation_data=(x[60:], y[60:]),
                   callbacks=[pynn.callbacks.CSVLogger(path)])
    rows = read_csv(path)
    keys = sorted(hist.history)
    assert rows[0] == ["epoch"] + keys
    assert keys == ["learning_rate", "loss", "mae", "val_loss", "val_mae"]
    assert len(rows) == 4
    for epoch, row in enumerate(rows[1:]):
        assert int(row[0]) == epoch
        assert [float(v) for v in row[1:]] == [hist.history[k][epoch] for k in keys]


def test_csv_logger_appends_and_separates(data, tmp_path):
    x, y = data
    net = make_net()
    path = tmp_path / "log.csv"
    net.fit(x, y, epochs=2, verbose=0, callbacks=[pynn.callbacks.CSVLogger(path, ";")])
    hist = net.fit(x, y, epochs=4, initial_epoch=2, verbose=0,
                   callbacks=[pynn.callbacks.CSVLogger(path, separator=";", append=True)])
    rows = read_csv(path, ";")
    assert rows[0] == ["epoch", "learning_rate", "loss"]
    assert [r[0] for r in rows[1:]] == ["0", "1", "2", "3"]     # one header
    assert float(rows[4][2]) == hist.history["loss"][1]
    # without append, a new fit starts the file again
    net.fit(x, y, epochs=1, verbose=0, callbacks=[pynn.callbacks.CSVLogger(path, ";")])
    assert len(read_csv(path, ";")) == 2


def test_csv_logger_refuses_bad_settings(tmp_path):
    with pytest.raises(ValueError, match="separator"):
        pynn.callbacks.CSVLogger(tmp_path / "a.csv", separator=", ")
    with pytest.raises(TypeError, match="append"):
        pynn.callbacks.CSVLogger(tmp_path / "a.csv", append="yes")
    with pytest.raises(TypeError, match="filename"):
        pynn.callbacks.CSVLogger(3)


def test_terminate_on_nan_stops_after_a_non_finite_validation_loss(data, capsys):
    x, y = data
    # finite inputs whose outputs overflow in the squared error
    far = (np.full((4, 3), 1e200), np.zeros((4, 1)))
    def make_linear():
        net = pynn.Sequential([pynn.Dense(1, input_dim=3)], dtype="float64", seed=0)
        net.compile(loss="mse", optimizer=pynn.SGD(0.1))
        return net
    net = make_linear()
    hist = net.fit(x, y, epochs=5, verbose=0, validation_data=far,
                   callbacks=[pynn.callbacks.TerminateOnNaN()])
    assert hist.epoch == [0] and hist.history["val_loss"] == [float("inf")]
    assert "invalid val_loss" in capsys.readouterr().out
    assert all(np.isfinite(w).all() for w in net.get_weights())
    # without it, the five epochs run
    assert make_linear().fit(x, y, epochs=5, verbose=0, validation_data=far).epoch == \
        [0, 1, 2, 3, 4]
