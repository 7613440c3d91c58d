"""Data safety: divergence, exceptions and interrupts never leave a broken model,
and the caller's arrays are never written to."""
import os
import signal
import threading

import numpy as np
import pytest

import pynn
from conftest import make_model

# on_divergence="stop" warns by design; the tests check the weights instead
pytestmark = pytest.mark.filterwarnings("ignore:training stopped:RuntimeWarning")

rng = np.random.default_rng(11)
X = rng.standard_normal((40, 4))
Y = np.stack([np.sin(X[:, 0]), X[:, 1] * X[:, 2]], axis=1)


def make(opt, dtype="float64", out_act=None, seed=2):
    return make_model((8, "relu"), (2, out_act), input_dim=4, dtype=dtype, seed=seed,
                      optimizer=opt)


def assert_same_model(a, b):
    np.testing.assert_array_equal(a.params, b.params)
    if a.optimizer.state is not None and a.optimizer.state.size:
        np.testing.assert_array_equal(a.optimizer.state, b.optimizer.state)
    assert a.optimizer.iterations == b.optimizer.iterations


# ------------------------------------------------------------------ divergence

@pytest.mark.parametrize("make_opt", [lambda big: pynn.SGD(1e6, momentum=0.9),
                                      lambda big: pynn.Adam(big),
                                      # a growing rate (pynn's schedules only decay)
                                      lambda big: pynn.SGD(lambda t: 1e8 * 10.0 ** min(t, 30))])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_divergence_keeps_the_last_finite_step(make_opt, dtype):
    # Adam's steps are about learning_rate long whatever the gradient: it
    # takes a rate near the type's range to diverge within the test
    big = 1e12 if dtype == "float32" else 1e100
    net = make(make_opt(big), dtype)
    with pytest.raises(pynn.DivergenceError):
        net.fit(X, Y, epochs=500, batch_size=4, shuffle=False, verbose=0)
    assert np.isfinite(net.params).all() and np.isfinite(net.optimizer.state).all()
    # the weights are exactly those after the last applied step: replay it
    twin = make(make_opt(big), dtype)
    for _ in range(net.optimizer.iterations):
        k = twin.optimizer.iterations % 10
        twin.train_on_batch(X[4 * k:4 * k + 4], Y[4 * k:4 * k + 4])
    assert_same_model(net, twin)
    # and the model still works (its weights may be too large for any further
    # step to stay finite: then each is refused again, never applied)
    assert net.predict(X).shape == (40, 2)
    net.compile(loss="mse", optimizer=pynn.SGD(1e-6))
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning) \
            if not np.isfinite(net.evaluate(X, Y, return_dict=True)["loss"]) else _nothing():
        net.fit(X, Y, epochs=1, verbose=0, on_divergence="stop")
    assert np.isfinite(net.params).all()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("out_act", [None, "tanh", "sigmoid", "softmax"])
def test_huge_inputs_overflowing_the_activations(dtype, out_act):
    # finite inputs and weights whose products overflow the storage type:
    # the step is refused, nothing goes NaN, predict says what it computed
    big = np.finfo(dtype).max / 4
    x = np.full((4, 4), big)
    for opt in (pynn.SGD(0.1, momentum=0.9), pynn.Adam(0.1)):
        net = make(opt, dtype, out_act)
        before = net.params.copy()
        try:
            net.train_on_batch(x, Y[:4])
        except pynn.DivergenceError:
            np.testing.assert_array_equal(net.params, before)
        # saturated squashing outputs can give finite (zero) gradients: a
        # step that is applied must leave everything finite
        with np.errstate(all="ignore"):
            try:
                net.fit(x, Y[:4], epochs=3, verbose=0, on_divergence="stop")
            except pynn.DivergenceError:
                pass
        assert np.isfinite(net.params).all() and np.isfinite(net.optimizer.state).all()
        out = net.predict(x)
        assert out.shape == (4, 2)
        if out_act in ("tanh", "sigmoid"):
            # squashing activations take overflowed logits to their limits
            assert np.isfinite(out).all()


def test_gradients_refuse_non_finite_and_touch_nothing():
    net = make(pynn.Adam(0.1))
    before = net.params.copy()
    with pytest.raises(pynn.DivergenceError):
        net.gradients(np.full((2, 4), 1e300), Y[:2])
    np.testing.assert_array_equal(net.params, before)
    assert net.optimizer.iterations == 0


# ------------------------------------------------- exceptions inside callbacks

class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class Boom(Exception):
    pass


@pytest.mark.parametrize("exc", [Boom, KeyboardInterrupt])
@pytest.mark.parametrize("hook", ["on_batch_end", "on_epoch_end", "on_epoch_begin"])
@pytest.mark.parametrize("make_opt", [lambda: pynn.SGD(0.05, momentum=0.9),
                                      lambda: pynn.Adam(0.01)])
def test_exception_in_a_callback_leaves_a_consistent_usable_model(exc, hook, make_opt):
    calls = []

    def raiser(*args):
        calls.append(args[0])
        if len(calls) == 3:
            raise exc("from a callback")

    net = make(make_opt())
    with pytest.raises(exc):
        net.fit(X, Y, epochs=5, batch_size=8, shuffle=False, verbose=0,
                callbacks=[pynn.LambdaCallback(**{hook: raiser})])
    # the steps completed are exactly those a twin makes one at a time
    steps = {"on_batch_end": 3, "on_epoch_end": 15, "on_epoch_begin": 10}[hook]
    assert net.optimizer.iterations == steps
    twin = make(make_opt())
    for k in range(steps):
        twin.train_on_batch(X[8 * (k % 5):8 * (k % 5) + 8], Y[8 * (k % 5):8 * (k % 5) + 8])
    assert_same_model(net, twin)
    assert np.isfinite(net.params).all()
    # the lock was released: another thread can use the model at once
    done = []
    worker = threading.Thread(target=lambda: done.append(net.predict(X).shape))
    worker.start()
    worker.join(timeout=30)
    assert done == [(40, 2)]
    # and training carries on exactly as the twin's does
    net.fit(X, Y, epochs=2, batch_size=8, shuffle=False, verbose=0)
    twin.fit(X, Y, epochs=2, batch_size=8, shuffle=False, verbose=0)
    assert_same_model(net, twin)


def test_exception_in_a_callback_with_a_progress_bar(capsys):
    net = make(pynn.SGD(0.05))

    def raiser(epoch, logs):
        raise Boom

    with pytest.raises(Boom):
        net.fit(X, Y, epochs=3, verbose=1, callbacks=[pynn.LambdaCallback(on_epoch_end=raiser)])
    net.fit(X, Y, epochs=2, verbose=1)
    assert len(net.history.history["loss"]) == 2


def test_real_sigint_during_fit():
    """A Ctrl-C lands between compiled calls: the weights are those of
    completed steps, finite, and the model trains on afterwards."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach the main thread only")
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("SIGINT is handled by someone else here")
    net = make(pynn.Adam(0.01))
    x = np.tile(X, (50, 1))
    y = np.tile(Y, (50, 1))
    timer = threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT))

    def arm(epoch, logs):
        if epoch == 2:
            timer.start()

    with pytest.raises(KeyboardInterrupt):
        # runs until interrupted (10**6 epochs would take hours)
        net.fit(x, y, epochs=10**6, batch_size=16, verbose=0,
                callbacks=[pynn.LambdaCallback(on_epoch_begin=arm)])
    timer.join()
    assert np.isfinite(net.params).all() and np.isfinite(net.optimizer.state).all()
    assert net.optimizer.iterations >= 2 * 125
    loss_before = net.evaluate(X, Y, return_dict=True)["loss"]
    net.fit(X, Y, epochs=3, verbose=0)
    assert np.isfinite(net.params).all()
    assert net.evaluate(X, Y, return_dict=True)["loss"] < loss_before * 1.5


# ------------------------------------------------------ user arrays untouched

@pytest.mark.parametrize("loss, out_act, y", [
    ("mse", None, Y),
    ("binary_crossentropy", "sigmoid", (Y > 0).astype(float)),
    ("categorical_crossentropy", "softmax", np.eye(2)[(Y[:, 0] > 0).astype(int)]),
    ("sparse_categorical_crossentropy", "softmax", (Y[:, 0] > 0).astype(np.int64)),
])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_no_entry_point_writes_to_user_arrays(tmp_path, loss, out_act, y, dtype):
    # arrays already of the model's dtype and C-contiguous are passed to
    # the kernels without a copy: the tests that matter most
    x = X.astype(dtype)
    y = y.astype(dtype) if y.dtype.kind == "f" else y
    xv, yv = x[:10].copy(), y[:10].copy()
    originals = [a.copy() for a in (x, y, xv, yv)]
    net = pynn.Sequential([pynn.Dense(6, activation="tanh", input_dim=4),
                           pynn.Dense(2, activation=out_act)], dtype=dtype, seed=0)
    net.compile(loss=loss, optimizer=pynn.Adam(0.01),
                metrics=["accuracy"] if loss != "mse" else None)
    net.fit(x, y, epochs=2, batch_size=7, verbose=0, validation_data=(xv, yv))
    net.fit(x, y, epochs=1, batch_size=7, verbose=0, validation_split=0.25)
    net.fit(x, y, epochs=1, batch_size=7, verbose=0, shuffle=False,
            callbacks=[pynn.LambdaCallback(on_batch_end=lambda b, logs: None)])
    net.train_on_batch(x, y)
    net.gradients(x, y)
    net.predict(x)
    net.evaluate(x, y)
    net.layers[0].forward(x)
    weights = net.get_weights()
    saved_weights = [w.copy() for w in weights]
    net.set_weights(weights)
    net.loss(y if loss != "sparse_categorical_crossentropy" else y,
             net.predict(x).astype(dtype))
    pynn.check_gradients(net, x[:3], y[:3])
    for a, b in zip([x, y, xv, yv], originals):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(weights, saved_weights):
        np.testing.assert_array_equal(a, b)


def test_read_only_arrays_work_everywhere():
    # accepted everywhere (the kernels' memoryviews are const), with the
    # results that writeable copies of the same values give, and left as
    # they were; that nothing is written through raw pointers is checked by
    # the test above
    def run(x, y, frozen):
        def maybe_frozen(arr):
            arr.flags.writeable = not frozen
            return arr

        net = make(pynn.SGD(0.01, momentum=0.9))
        out = {"fit": net.fit(x, y, epochs=2, batch_size=5, verbose=0,
                              validation_data=(x, y)).history,
               "fit_per_batch": net.fit(x, y, epochs=1, verbose=0, shuffle=False, callbacks=[
                   pynn.LambdaCallback(on_batch_end=lambda b, logs: None)]).history,
               "train_on_batch": net.train_on_batch(x, y),
               "gradients": net.gradients(x, y),
               "evaluate": net.evaluate(x, y),
               "predict": net.predict(x)}
        net.set_weights([maybe_frozen(w) for w in net.get_weights()])
        a = maybe_frozen(net.layers[0].forward(x))
        g = maybe_frozen(np.ones_like(a))
        out["backward"] = net.layers[0].backward(x, a, g, need_grad_x=False)
        out["check_gradients"] = pynn.check_gradients(net, x[:2], y[:2])
        out["params"] = net.params.copy()
        return out

    x, y = X.copy(), Y.copy()
    x.flags.writeable = y.flags.writeable = False
    frozen = run(x, y, frozen=True)
    plain = run(X.copy(), Y.copy(), frozen=False)
    assert set(frozen) == set(plain)
    for key in plain:
        np.testing.assert_equal(frozen[key], plain[key], err_msg=key)
    np.testing.assert_array_equal(x, X)
    np.testing.assert_array_equal(y, Y)
    assert not x.flags.writeable and not y.flags.writeable
