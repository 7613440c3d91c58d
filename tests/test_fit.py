"""fit's options: validation, stopping rules, divergence, resuming, output."""
import io
import re
import sys

import numpy as np
import pytest

import pynn
from conftest import make_model
from pynn.callbacks import ProgressLogger
from pynn.training import runners


def make_net(seed=0, dtype="float64", optimizer=None):
    return make_model((16, "tanh"), (2, None), input_dim=4, dtype=dtype, seed=seed,
                      optimizer=optimizer or pynn.SGD(0.05, momentum=0.9))


@pytest.fixture
def data():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((120, 4))
    y = np.stack([np.sin(x[:, 0]), x[:, 1] * x[:, 2]], axis=1)
    return x, y


def assert_same_weights(a, b):
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)


def test_continuing_fit_equals_one_long_fit(data):
    x, y = data
    one, two = make_net(), make_net()
    h = one.fit(x, y, epochs=5, batch_size=16, verbose=0)
    two.fit(x, y, epochs=2, batch_size=16, verbose=0)
    h2 = two.fit(x, y, epochs=5, batch_size=16, verbose=0, initial_epoch=2)
    assert h2.epoch == [2, 3, 4]
    assert_same_weights(one, two)
    assert h.history["loss"][2:] == h2.history["loss"]
    assert one.optimizer.iterations == two.optimizer.iterations == 5 * 8


def test_continuing_fit_with_adam(data):
    x, y = data
    one, two = make_net(optimizer=pynn.Adam(0.01)), make_net(optimizer=pynn.Adam(0.01))
    one.fit(x, y, epochs=3, verbose=0)
    two.fit(x, y, epochs=1, verbose=0)
    two.fit(x, y, epochs=3, verbose=0, initial_epoch=1)
    assert_same_weights(one, two)


def test_target_loss_stops_at_the_first_epoch_below(data):
    x, y = data
    net = make_net()
    target = 0.05
    losses = net.fit(x, y, epochs=500, verbose=0, target_loss=target).history["loss"]
    assert losses[-1] < target
    assert all(v >= target for v in losses[:-1])
    assert len(losses) < 500
    # the same number of epochs without the rule: the same weights
    ref = make_net()
    ref.fit(x, y, epochs=len(losses), verbose=0)
    assert_same_weights(net, ref)


def test_validation_split_takes_the_last_fraction_before_shuffling(data):
    x, y = data
    net, ref = make_net(), make_net()
    h = net.fit(x, y, epochs=3, validation_split=0.25, verbose=0)
    ref.fit(x[:90], y[:90], epochs=3, verbose=0)
    assert_same_weights(net, ref)
    assert h.history["val_loss"][-1] == net.evaluate(x[90:], y[90:], return_dict=True)["loss"]
    assert len(h.history["val_loss"]) == 3


def test_validation_data_gives_val_loss(data):
    x, y = data
    net = make_net()
    h = net.fit(x[:100], y[:100], epochs=2, validation_data=(x[100:], y[100:]), verbose=0)
    assert set(h.history) == {"loss", "val_loss", "learning_rate"}
    assert h.history["val_loss"][-1] == net.evaluate(x[100:], y[100:], return_dict=True)["loss"]
    assert net.history is h


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(validation_split=1.0), ValueError, "validation_split"),
    (dict(validation_split=0.999), ValueError, "leaves 0 for training and 120"),
    (dict(validation_data=(np.ones((3, 4)),)), ValueError, "pair"),
    (dict(validation_data=(np.ones((3, 4)), np.ones((2, 2)))), ValueError, "3 and 2"),
    (dict(validation_data=(np.ones((3, 5)), np.ones((3, 2)))), ValueError,
     "validation_data\\[0\\] has 5 features"),
    (dict(validation_data=(np.ones((3, 4)), np.ones((3, 2))), validation_split=0.1),
     ValueError, "not both"),
    (dict(on_divergence="ignore"), ValueError, "on_divergence"),
    (dict(verbose=3), ValueError, "verbose"),
    (dict(target_loss="low"), TypeError, "target_loss"),
    (dict(initial_epoch=3, epochs=2), ValueError, "initial_epoch"),
    (dict(callbacks=[print]), TypeError, "callbacks"),
    (dict(shuffle="yes"), TypeError, "shuffle"),
])
def test_bad_options(data, kwargs, exc, match):
    x, y = data
    net = make_net()
    before = net.params.copy()
    with pytest.raises(exc, match=match):
        net.fit(x, y, **{"verbose": 0, **kwargs})
    np.testing.assert_array_equal(net.params, before)


def _replay_until_divergence(x, y, batch_size):
    """The same training as fit(shuffle=False), batch by batch."""
    net = make_net(dtype="float32", optimizer=pynn.SGD(learning_rate=50.0))
    for epoch in range(100):
        for start in range(0, x.shape[0], batch_size):
            try:
                net.train_on_batch(x[start:start + batch_size], y[start:start + batch_size])
            except pynn.DivergenceError:
                return net
    raise AssertionError("expected divergence")


def test_divergence_raises_naming_epoch_and_batch(data):
    x, y = data
    x = x * 100
    net = make_net(dtype="float32", optimizer=pynn.SGD(learning_rate=50.0))
    with pytest.raises(pynn.DivergenceError, match=r"epoch \d+, batch \d+"):
        net.fit(x, y, epochs=100, batch_size=16, shuffle=False, verbose=0)
    assert np.all(np.isfinite(net.params))
    assert_same_weights(net, _replay_until_divergence(x, y, 16))


def test_divergence_stop_mode_warns_and_returns_history(data):
    x, y = data
    x = x * 100
    net = make_net(dtype="float32", optimizer=pynn.SGD(learning_rate=50.0))
    with pytest.warns(RuntimeWarning, match=r"training stopped.*epoch (\d+), batch \d+"):
        h = net.fit(x, y, epochs=100, batch_size=16, shuffle=False, verbose=0,
                    on_divergence="stop")
    assert isinstance(h, pynn.History) and len(h.epoch) < 100
    assert np.all(np.isfinite(h.history["loss"]))
    assert np.all(np.isfinite(net.params))
    assert_same_weights(net, _replay_until_divergence(x, y, 16))


class Recorder(pynn.Callback):
    def __init__(self, per_batch=True):
        super().__init__()
        self.events = []
        self.per_batch = per_batch

    def on_train_begin(self, logs=None):
        self.events.append(("train_begin", dict(logs)))

    def on_epoch_begin(self, epoch, logs=None):
        self.events.append(("epoch_begin", epoch))

    def on_batch_end(self, batch, logs=None):
        self.events.append(("batch_end", batch, dict(logs)))

    def on_epoch_end(self, epoch, logs=None):
        self.events.append(("epoch_end", epoch, dict(logs)))

    def on_train_end(self, logs=None):
        self.events.append(("train_end", dict(logs)))


def test_callbacks_are_called_in_order_with_their_logs(data):
    x, y = data
    net = make_net()
    rec = Recorder()
    h = net.fit(x[:100], y[:100], epochs=2, batch_size=40,
                validation_data=(x[100:], y[100:]), callbacks=[rec], verbose=0)
    kinds = [(e[0], e[1]) if e[0] not in ("train_begin", "train_end") else (e[0],)
             for e in rec.events]
    assert kinds == [("train_begin",),
                     ("epoch_begin", 0), ("batch_end", 0), ("batch_end", 1), ("batch_end", 2),
                     ("epoch_end", 0),
                     ("epoch_begin", 1), ("batch_end", 0), ("batch_end", 1), ("batch_end", 2),
                     ("epoch_end", 1), ("train_end",)]
    batches = [e[2] for e in rec.events if e[0] == "batch_end"]
    assert [b["size"] for b in batches[:3]] == [40, 40, 20]
    epoch_logs = [e[2] for e in rec.events if e[0] == "epoch_end"]
    for epoch, logs in enumerate(epoch_logs):
        mine = batches[3 * epoch:3 * epoch + 3]
        assert logs["loss"] == pytest.approx(sum(b["loss"] * b["size"] for b in mine) / 100,
                                             rel=1e-14)
        assert logs["val_loss"] == h.history["val_loss"][epoch]
        assert logs["learning_rate"] == 0.05
    assert rec.events[-1][1] == epoch_logs[-1]
    assert rec.model is net and rec.params["epochs"] == 2 and rec.params["steps"] == 3


def test_per_batch_callbacks_do_not_change_training(data):
    x, y = data
    a, b = make_net(), make_net()
    a.fit(x, y, epochs=2, verbose=0)
    b.fit(x, y, epochs=2, verbose=0, callbacks=[Recorder()])
    assert_same_weights(a, b)


def test_one_train_batches_call_per_epoch_when_nothing_needs_batches(data, monkeypatch,
                                                                     capsys):
    x, y = data
    net = make_net()
    calls = []
    original = runners.CompiledEpoch.run

    def counting(self, *args):
        calls.append(args[4:6])
        return original(self, *args)

    monkeypatch.setattr(runners.CompiledEpoch, "run", counting)
    net.fit(x, y, epochs=3, batch_size=16, verbose=0,
            callbacks=[pynn.LambdaCallback(on_epoch_end=lambda e, logs: None)])
    net.fit(x, y, epochs=2, batch_size=16, verbose=2)
    net.fit(x, y, epochs=1, batch_size=16, verbose=1)       # not a terminal: no live bar
    assert calls == [(0, 8)] * 6
    calls.clear()
    net.fit(x, y, epochs=1, batch_size=16, verbose=0,
            callbacks=[pynn.LambdaCallback(on_batch_end=lambda b, logs: None)])
    assert calls == [(k, k + 1) for k in range(8)]


def test_stop_training_from_a_batch_callback(data):
    x, y = data
    net = make_net()

    def stop(batch, logs):
        if batch == 2:
            net.stop_training = True

    h = net.fit(x, y, epochs=5, batch_size=16, verbose=0,
                callbacks=[pynn.LambdaCallback(on_batch_end=stop)])
    assert h.epoch == [0] and net.optimizer.iterations == 3


def test_verbose_0_prints_nothing(data, capsys):
    x, y = data
    make_net().fit(x, y, epochs=2, verbose=0, validation_split=0.2)
    assert capsys.readouterr().out == ""


def test_verbose_2_prints_one_line_per_epoch(data, capsys):
    x, y = data
    make_net().fit(x, y, epochs=3, verbose=2, validation_split=0.2)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    for i, line in enumerate(lines, 1):
        assert re.match(rf"Epoch {i}/3 - \S+ - loss: \S+ - val_loss: \S+ - "
                        rf"learning_rate: 0.05$", line), line


def test_verbose_1_without_a_terminal_prints_the_final_bars(data, capsys):
    x, y = data
    make_net().fit(x, y, epochs=2, batch_size=16, verbose=1)
    out = capsys.readouterr().out
    assert "\r" not in out
    lines = out.splitlines()
    assert lines[0] == "Epoch 1/2" and lines[2] == "Epoch 2/2" and len(lines) == 4
    assert re.match(r"8/8 \[=+\] - \S+ [\d,]+ samples/s - loss: \S+ - learning_rate: 0.05$",
                    lines[1]), lines[1]


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_verbose_1_on_a_terminal_draws_a_live_bar(data, monkeypatch):
    x, y = data
    term = FakeTerminal()
    monkeypatch.setattr(sys, "stdout", term)
    monkeypatch.setattr(ProgressLogger, "REFRESH_SECONDS", 0.0)    # draw every chunk
    net = make_net()
    net.fit(x, y, epochs=2, batch_size=16, verbose=1)
    out = term.getvalue()
    assert re.search(r"\r\d/8 \[[=>.]+\] - [\d,]+ samples/s - ETA \S+ - loss: \S+", out)
    assert out.count("\n") == 4 and out.endswith("learning_rate: 0.05\n")
    ref = make_net()
    ref.fit(x, y, epochs=2, batch_size=16, verbose=0)
    assert_same_weights(net, ref)
