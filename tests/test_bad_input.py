"""Every public entry point: accepted layouts read right, bad arguments refused by name.

Complements tests/test_validation.py (the basic refusals of fit/predict).
Each refusal is a ValueError or TypeError whose message names the argument
and quotes the value received; accepted inputs of any layout give exactly
the result of the same values as a plain C-contiguous array.
"""
import numpy as np
import pytest

import pynn
from conftest import make_model
from pynn import reference

X = np.linspace(-1, 1, 36).reshape(12, 3)
Y = np.cos(X[:, :2] * 3)


def make(dtype="float32", loss="mse", out=2, act=None, opt=None):
    return make_model((5, "tanh"), (out, act), input_dim=3, dtype=dtype, seed=3, loss=loss,
                      optimizer=opt or pynn.SGD(0.1, momentum=0.5))


def ref_predict(net, x):
    out = np.asarray(x, dtype=np.float64)
    for layer in net.layers:
        out = reference.dense_forward(out, layer.W.astype(np.float64),
                                      layer.b.astype(np.float64), layer.activation)
    return out


def layouts(a):
    """The same values as arrays of many memory layouts, with their names."""
    f = np.asfortranarray(a)
    rev = np.ascontiguousarray(a[::-1])[::-1]             # negative row stride
    wide = np.zeros((a.shape[0] * 2, a.shape[1] * 3), a.dtype)
    wide[::2, ::3] = a
    ro = a.copy()
    ro.flags.writeable = False
    return {"C": a, "fortran": f, "transposed": np.ascontiguousarray(a.T).T,
            "negative stride": rev, "strided": wide[::2, ::3], "read-only": ro,
            "float32": a.astype(np.float32), "list": a.tolist()}


@pytest.mark.parametrize("name", list(layouts(X)))
def test_every_layout_is_read_right_and_left_alone(dtype, name):
    net = make(dtype)
    x, y = layouts(X)[name], layouts(Y)[name]
    before = (np.array(x, copy=True), np.array(y, copy=True))
    # the values x holds (rounded, for the float32 copy), as a plain array
    X0, Y0 = np.array(x, dtype=np.float64), np.array(y, dtype=np.float64)
    expected = net.predict(X0)
    np.testing.assert_array_equal(net.predict(x), expected)
    np.testing.assert_allclose(net.predict(x), ref_predict(net, X0),
                               rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-6)
    assert net.evaluate(x, y) == net.evaluate(X0, Y0)
    twin = make(dtype)
    assert twin.train_on_batch(x, y) == net.train_on_batch(X0, Y0)
    np.testing.assert_array_equal(twin.params, net.params)
    loss_a, grads_a = twin.gradients(x, y)
    loss_b, grads_b = net.gradients(X0, Y0)
    assert loss_a == loss_b
    for a, b in zip(grads_a, grads_b):
        np.testing.assert_array_equal(a, b)
    twin.fit(x, y, epochs=2, batch_size=5, verbose=0, validation_data=(x, y))
    net.fit(X0, Y0, epochs=2, batch_size=5, verbose=0, validation_data=(X0, Y0))
    np.testing.assert_array_equal(twin.params, net.params)
    np.testing.assert_array_equal(np.asarray(x), before[0])
    np.testing.assert_array_equal(np.asarray(y), before[1])


def test_memory_mapped_inputs(tmp_path, dtype):
    np.save(tmp_path / "x.npy", X.astype(dtype))
    np.save(tmp_path / "y.npy", Y.astype(dtype))
    xm = np.load(tmp_path / "x.npy", mmap_mode="r")
    ym = np.load(tmp_path / "y.npy", mmap_mode="r")
    net, twin = make(dtype), make(dtype)
    np.testing.assert_array_equal(net.predict(xm), net.predict(X.astype(dtype)))
    net.fit(xm, ym, epochs=2, batch_size=4, verbose=0, validation_data=(xm, ym))
    twin.fit(X.astype(dtype), Y.astype(dtype), epochs=2, batch_size=4, verbose=0)
    np.testing.assert_array_equal(net.params, twin.params)
    pynn.check_gradients(make("float64"), xm[:3], ym[:3])   # read-only, mapped
    np.testing.assert_array_equal(np.load(tmp_path / "x.npy"), X.astype(dtype))


@pytest.mark.parametrize("kind", [np.int8, np.int64, np.uint16, np.bool_, np.float16])
def test_integer_bool_and_half_inputs_are_converted(kind):
    net = make("float64")
    x = (X * 3).astype(kind)
    np.testing.assert_array_equal(net.predict(x), net.predict(x.astype(np.float64)))
    net.fit(x, Y, epochs=1, verbose=0)
    assert np.isfinite(net.params).all()


@pytest.mark.parametrize("bad, error, match", [
    (np.ones((2, 3), dtype=object), TypeError, "x must hold real numbers.*object"),
    (np.ones((2, 3), dtype=np.complex128), TypeError, "x must hold real.*complex128"),
    (np.array([["1", "2", "3"]]), TypeError, "x must hold real.*<U1"),
    (np.zeros((2, 3), dtype="datetime64[s]"), TypeError, "x must hold real.*datetime64"),
    (np.zeros((2, 3), dtype=[("a", "f8")]), TypeError, "x must hold real.*dtype"),
    (b"abc", TypeError, "x must be an array of numbers, got a string"),
    (None, TypeError, "x must hold real numbers.*object"),
    ({"a": 1}, TypeError, "x must hold real numbers"),
    ([[1, 2, 3], [4]], ValueError, "x could not be read as an array"),
    (np.ma.masked_array(X, mask=X > 0), TypeError, "x is a masked array"),
    (np.float64(2.0), ValueError, r"x must be 2-D.*shape \(\)"),
    (np.ones(3), ValueError, r"x must be 2-D.*shape \(3,\)"),
    (np.ones((2, 3, 1)), ValueError, r"x must be 2-D.*\(2, 3, 1\)"),
    (np.ones((0, 3)), ValueError, r"x is empty \(shape \(0, 3\)\)"),
    (np.ones((2, 4)), ValueError, "x has 4 features, the model expects 3"),
    (np.full((2, 3), np.inf), ValueError, "x contains 6 NaN or infinite"),
])
def test_bad_x_everywhere(bad, error, match):
    net = make()
    weights = net.params.copy()
    calls = {"predict": lambda: net.predict(bad),
             "evaluate": lambda: net.evaluate(bad, Y[:2]),
             "fit": lambda: net.fit(bad, Y[:2], verbose=0),
             "train_on_batch": lambda: net.train_on_batch(bad, Y[:2]),
             "gradients": lambda: net.gradients(bad, Y[:2]),
             "check_gradients": lambda: pynn.check_gradients(net, bad, Y[:2]),
             "validation_data": lambda: net.fit(X, Y, verbose=0, validation_data=(bad, Y[:2]))}
    for name, call in calls.items():
        with pytest.raises(error, match=match.replace("x ", "(x|validation_data\\[0\\]) ")
                           if name == "validation_data" else match):
            call()
    np.testing.assert_array_equal(net.params, weights)


@pytest.mark.parametrize("bad, error, match", [
    (np.ones((12, 2), dtype=complex), TypeError, "y must hold real"),
    (np.ones((12, 3)), ValueError, r"y must have shape \(n_samples, 2\).*\(12, 3\)"),
    (np.ones((11, 2)), ValueError, "x and y have different numbers of samples: 12 and 11"),
    (np.full((12, 2), np.nan), ValueError, "y contains 24 NaN"),
    ("yy", TypeError, "y must be an array of numbers, got a string"),
])
def test_bad_y_everywhere(bad, error, match):
    net = make()
    weights = net.params.copy()
    for call in (lambda: net.fit(X, bad, verbose=0), lambda: net.train_on_batch(X, bad),
                 lambda: net.evaluate(X, bad), lambda: net.gradients(X, bad)):
        with pytest.raises(error, match=match):
            call()
    np.testing.assert_array_equal(net.params, weights)


def test_batch_size_larger_than_the_data_is_one_batch():
    # chosen behaviour (documented in fit): clamp silently, as Keras
    net, twin = make(), make()
    for batch_size in (13, 10**6, 10**12, 2**70):
        net.fit(X, Y, batch_size=batch_size, shuffle=False, verbose=0)
        twin.fit(X, Y, batch_size=12, shuffle=False, verbose=0)
        np.testing.assert_array_equal(net.params, twin.params)
        assert net.history.params["batch_size"] == 12
    np.testing.assert_array_equal(net.predict(X, batch_size=2**70), net.predict(X))
    assert net.evaluate(X, Y, batch_size=2**70) == net.evaluate(X, Y)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"epochs": -3}, ValueError, "epochs.*-3"),
    ({"epochs": 2.0}, TypeError, "epochs.*2.0"),
    ({"initial_epoch": -1}, ValueError, "initial_epoch.*-1"),
    ({"initial_epoch": 5, "epochs": 2}, ValueError, r"initial_epoch \(5\).*epochs \(2\)"),
    ({"batch_size": 0}, ValueError, "batch_size.*0"),
    ({"batch_size": "32"}, TypeError, "batch_size.*'32'"),
    ({"verbose": "silent"}, ValueError, "verbose.*'silent'"),
    ({"batch_size": np.float64(4)}, TypeError, "batch_size.*4"),
    ({"shuffle": "yes"}, TypeError, "shuffle.*'yes'"),
    ({"verbose": 3}, ValueError, "verbose.*3"),
    ({"verbose": True}, ValueError, "verbose.*True"),
    ({"target_loss": float("nan")}, ValueError, "target_loss.*nan"),
    ({"on_divergence": "ignore"}, ValueError, "on_divergence.*'ignore'"),
    ({"validation_split": 1.0}, ValueError, "validation_split.*1.0"),
    ({"validation_split": -0.1}, ValueError, "validation_split.*-0.1"),
    ({"validation_split": 0.99}, ValueError, "validation_split=0.99 of 12 samples"),
    ({"validation_split": 0.5, "validation_data": (X, Y)}, ValueError, "not both"),
    ({"validation_data": X}, ValueError, "validation_data must be a pair"),
    ({"validation_data": (X[:3], Y[:4])}, ValueError, "validation_data.*3 and 4"),
    ({"callbacks": pynn.History()}, TypeError, "callbacks.*single callback.*list"),
    ({"callbacks": 3}, TypeError, "callbacks.*3"),
    ({"callbacks": [print]}, TypeError, "callbacks.*print"),
])
def test_bad_fit_arguments(kwargs, error, match):
    net = make()
    weights = net.params.copy()
    with pytest.raises(error, match=match):
        net.fit(X, Y, **{"verbose": 0, **kwargs})
    np.testing.assert_array_equal(net.params, weights)


@pytest.mark.parametrize("batch_size, error", [(0, ValueError), (-1, ValueError),
                                               (1.5, TypeError), ("8", TypeError)])
def test_bad_predict_and_evaluate_batch_size(batch_size, error):
    net = make()
    with pytest.raises(error, match=f"batch_size.*{batch_size}"):
        net.predict(X, batch_size=batch_size)
    with pytest.raises(error, match=f"batch_size.*{batch_size}"):
        net.evaluate(X, Y, batch_size=batch_size)


@pytest.mark.parametrize("make_bad, error, match", [
    (lambda: pynn.SGD(learning_rate=0), ValueError, "learning_rate must be > 0, got 0.0"),
    (lambda: pynn.SGD(learning_rate=float("nan")), ValueError, "learning_rate.*nan"),
    (lambda: pynn.SGD(learning_rate=float("inf")), ValueError, "learning_rate.*inf"),
    (lambda: pynn.SGD(learning_rate="0.1"), TypeError, "learning_rate.*'0.1'"),
    (lambda: pynn.SGD(learning_rate=None), TypeError, "learning_rate.*None"),
    (lambda: pynn.SGD(momentum=1.0), ValueError, "momentum must be < 1, got 1.0"),
    (lambda: pynn.SGD(momentum=-0.01), ValueError, "momentum must be >= 0, got -0.01"),
    (lambda: pynn.SGD(momentum=float("nan")), ValueError, "momentum.*nan"),
    (lambda: pynn.SGD(nesterov=1), TypeError, "nesterov.*1"),
    (lambda: pynn.SGD(weight_decay=-1), ValueError, "weight_decay.*-1"),
    (lambda: pynn.Adam(learning_rate=-1e-3), ValueError, "learning_rate.*-0.001"),
    (lambda: pynn.Adam(beta_1=1.0), ValueError, "beta_1 must be < 1, got 1.0"),
    (lambda: pynn.Adam(beta_2=-0.5), ValueError, "beta_2.*-0.5"),
    (lambda: pynn.Adam(epsilon=0), ValueError, "epsilon must be > 0, got 0.0"),
    (lambda: pynn.Adam(epsilon=True), TypeError, "epsilon.*True"),
])
def test_bad_optimizer_settings(make_bad, error, match):
    with pytest.raises(error, match=match):
        make_bad()


def test_schedule_returning_garbage_stops_before_the_update():
    net = make(opt=pynn.SGD(lambda step: float("nan") if step >= 2 else 0.1))
    net.train_on_batch(X, Y)
    net.train_on_batch(X, Y)
    weights = net.params.copy()
    with pytest.raises(ValueError, match="returned nan at step 2"):
        net.train_on_batch(X, Y)
    np.testing.assert_array_equal(net.params, weights)


@pytest.mark.parametrize("make_bad, error, match", [
    (lambda: pynn.Dense(-2), ValueError, "units.*-2"),
    (lambda: pynn.Dense(None), TypeError, "units.*None"),
    (lambda: pynn.Dense(True), TypeError, "units.*True"),
    (lambda: pynn.Dense(3, input_dim=0), ValueError, "input_dim.*0"),
    (lambda: pynn.Dense(3, activation=3), TypeError, "activation.*3"),
    (lambda: pynn.Dense(3, activation="mish"), ValueError, "'mish'.*linear.*relu"),
    (lambda: pynn.Dense(3, kernel_initializer="magic"), ValueError, "'magic'.*glorot"),
    (lambda: pynn.Sequential([pynn.Dense(2)], dtype=np.int32), ValueError, "dtype.*int32"),
    (lambda: pynn.Sequential([pynn.Dense(2)], dtype="floaty"), TypeError, "dtype.*'floaty'"),
    (lambda: pynn.Sequential(n_threads=2**40), ValueError, "n_threads.*1099511627776"),
    (lambda: pynn.Sequential(n_threads=-1), ValueError, "n_threads.*-1"),
    (lambda: pynn.Sequential([np.ones(3)]), TypeError, "layer must be a pynn.Dense"),
    (lambda: make().compile(loss="hinge"), ValueError, "'hinge'.*mse"),
    (lambda: make().compile(loss=3), TypeError, "loss.*3"),
    (lambda: make().compile(optimizer="adadelta"), ValueError, "'adadelta'.*adam.*sgd"),
    (lambda: make().compile(optimizer=0.1), TypeError, "optimizer.*0.1"),
    (lambda: make().compile(metrics="accuracy"), TypeError, "metrics must be a list"),
    (lambda: make().compile(metrics=["acuracy"]), ValueError, "'acuracy'"),
    (lambda: pynn.EarlyStopping(patience=-1), ValueError, "patience.*-1"),
    (lambda: pynn.EarlyStopping(mode="up"), ValueError, "mode.*'up'"),
    (lambda: pynn.EarlyStopping(monitor=None), TypeError, "monitor.*None"),
    (lambda: pynn.ReduceLROnPlateau(factor=1.5), ValueError, "factor.*1.5"),
    (lambda: pynn.ModelCheckpoint(7), TypeError, "path.*7"),
    (lambda: pynn.ModelCheckpoint("m.npz", save_best_only="no"), TypeError,
     "save_best_only.*'no'"),
    (lambda: pynn.LambdaCallback(on_epoch_end=3), TypeError, "on_epoch_end.*3"),
    (lambda: pynn.check_gradients(make(), X[:2], Y[:2], epsilon=0), ValueError,
     "epsilon.*0"),
    (lambda: pynn.check_gradients("model", X, Y), TypeError, "model.*'model'"),
    (lambda: make().save(None), TypeError, "path.*None"),
    (lambda: make().save("m.npz", include_optimizer="yes"), TypeError,
     "include_optimizer.*'yes'"),
])
def test_bad_constructor_and_compile_arguments(make_bad, error, match):
    with pytest.raises(error, match=match):
        make_bad()


def test_losses_called_directly():
    mse = pynn.losses.get("mse")
    good = np.ones((3, 2))
    assert mse(good, good) == 0.0
    for y_true, y_pred, error, match in [
            (good, np.ones((3, 2), dtype=object), TypeError, "y_pred.*object"),
            (np.ones((3, 2), dtype=complex), good, TypeError, "y_true.*complex"),
            (good, np.ones((0, 2)), ValueError, r"y_pred.*\(0, 2\)"),
            (good, np.ones((3, 2, 1)), ValueError, r"y_pred.*\(3, 2, 1\)"),
            (np.ones((3, 3)), good, ValueError, r"y_true must have shape.*\(3, 3\)"),
            (np.ones((4, 2)), good, ValueError, "4 and 3"),
            (good, np.full((3, 2), np.nan), ValueError, "y_pred contains 6 NaN"),
            (np.full((3, 2), -np.inf), good, ValueError, "y_true contains 6 NaN")]:
        with pytest.raises(error, match=match):
            mse(y_true, y_pred)
    # layouts: a Fortran-ordered, negatively strided y_pred reads as its values
    rng = np.random.default_rng(0)
    t, p = rng.random((5, 3)), rng.random((5, 3))
    assert mse(t, np.asfortranarray(p)[::-1][::-1]) == mse(t, p)
    bce = pynn.BinaryCrossentropy()
    with pytest.raises(ValueError, match=r"y_true holds 2.0 at index \(0, 0\)"):
        bce(np.full((2, 2), 2.0), np.full((2, 2), 0.5))
    scce = pynn.SparseCategoricalCrossentropy()
    with pytest.raises(ValueError, match="y_true holds label 3"):
        scce(np.array([0, 3]), np.full((2, 3), 1 / 3))
    with pytest.raises(ValueError, match="y_true holds 0.5"):
        scce(np.array([0, 0.5]), np.full((2, 3), 1 / 3))


def test_set_weights_refusals_leave_the_model_untouched():
    net = make()
    ws = net.get_weights()
    before = net.params.copy()
    cases = [(None, TypeError, "weights must be a list.*None"),
             (3, TypeError, "weights must be a list.*3"),
             (np.ones((4, 5)), TypeError, r"weights must be a list.*one array.*\(4, 5\)"),
             (ws + [ws[0]], ValueError, "4 arrays, got 5"),
             ([ws[0].astype(object)] + ws[1:], TypeError, r"weights\[0\].*object"),
             ([ws[0].astype(complex)] + ws[1:], TypeError, r"weights\[0\].*complex"),
             (ws[:3] + [np.ones(3)], ValueError, r"weights\[3\].*\(2,\).*\(3,\)"),
             ([ws[0].T] + ws[1:], ValueError, r"weights\[0\].*\(5, 3\).*\(3, 5\)"),
             (ws[:1] + [np.full(5, np.inf)] + ws[2:], ValueError, r"weights\[1\].*infinite")]
    for weights, error, match in cases:
        with pytest.raises(error, match=match):
            net.set_weights(weights)
        np.testing.assert_array_equal(net.params, before)
    # accepted: other dtypes and layouts, read as their values, not aliased
    new = [np.asfortranarray(w.astype(np.float64) + 1) for w in ws]
    new[2] = new[2][::-1][::-1]
    net.set_weights(new)
    for got, want in zip(net.get_weights(), new):
        np.testing.assert_array_equal(got, want.astype(np.float32))
    new[0][...] = 0
    assert net.layers[0].W.any()                # copied in, not a view of the caller's


def test_dense_forward_and_backward_check_shapes():
    net = make("float64")
    layer = net.layers[0]
    a = layer.forward(X)
    np.testing.assert_allclose(a, reference.dense_forward(X, layer.W, layer.b, "tanh"))
    for args, match in [((X, a[:5], np.ones((5, 5))), r"a must have shape \(12, 5\)"),
                        ((X, a, np.ones((5, 5))), r"grad_a must have shape \(12, 5\)"),
                        ((X[:, :2], a, np.ones((12, 5))), r"x must have shape"),
                        ((X, a[:, :4], np.ones((12, 4))), r"a must have shape")]:
        with pytest.raises(ValueError, match=match):
            layer.backward(*args)
    with pytest.raises(ValueError, match=r"x must have shape \(n_samples, 3\)"):
        layer.forward(np.ones((2, 4)))
    with pytest.raises(RuntimeError, match="not built"):
        pynn.Dense(3).forward(X)
    # the compiled kernels check for themselves too
    from pynn import _dense
    with pytest.raises(ValueError, match="shapes do not match"):
        _dense.dense_forward(X, layer.W, layer.b, 0, np.empty((11, 5)))
    with pytest.raises(ValueError, match="shapes do not match"):
        _dense.dense_backward(X, layer.W, a, np.ones((12, 5)), 0, layer.dW,
                              np.empty(4), None)
    # other layouts and dtypes are accepted and read as values
    grad = np.cos(a)
    expected = layer.backward(X, a, grad)
    dW = layer.dW.copy()
    got = layer.backward(np.asfortranarray(X).astype(np.float32), a.tolist(), grad[::-1][::-1])
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    np.testing.assert_allclose(layer.dW, dW, rtol=1e-6)


def test_predict_before_build_and_on_an_empty_model():
    with pytest.raises(ValueError, match="no layers"):
        pynn.Sequential().predict(X)
    with pytest.raises(RuntimeError, match="not built"):
        pynn.Sequential([pynn.Dense(2)]).get_weights()
    with pytest.raises(RuntimeError, match="compile"):
        pynn.Sequential([pynn.Dense(2, input_dim=3)]).evaluate(X, Y)
