"""Property-based tests: whatever the shapes, dtypes, strides and values,
the public API returns the right result or raises a clear ValueError/TypeError.

Each test states, independently of pynn's own checks, whether an input is
valid; a valid one must give pynn.reference's answer, an invalid one must be
refused (never a crash, a wrong shape, or a result computed on misread
memory), and the caller's arrays are never modified.

Run with ``pytest tests/test_properties.py --hypothesis-show-statistics``
to see how many examples each test ran.  The number of examples is bounded
(the "pynn" profile below) so that the file stays well under a minute.
"""
import os
from datetime import timedelta

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

import pynn  # noqa: E402
from pynn import reference  # noqa: E402

settings.register_profile(
    "pynn", max_examples=int(os.environ.get("PYNN_HYPOTHESIS_EXAMPLES", "100")),
    deadline=timedelta(seconds=5), database=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile("pynn")

ACTIVATIONS = ["linear", "relu", "tanh", "sigmoid", "softmax"]
INPUT_DTYPES = [np.float64, np.float32, np.float16, np.int8, np.int64, np.uint8, np.bool_]
BAD_DTYPES = [np.complex128, object, "U3", "datetime64[s]"]
LAYOUTS = ["C", "F", "transposed", "reversed", "strided", "read-only", "list"]


def relayout(a, layout):
    """The values of ``a`` in another memory layout (or as nested lists)."""
    if layout == "C" or a.ndim == 0 or (layout == "list" and a.size == 0):
        return a                 # ([] cannot say it was (0, 3) rather than (0,))
    if layout == "F":
        return np.asfortranarray(a)
    if layout == "transposed":
        return np.ascontiguousarray(a.T).T
    if layout == "reversed":
        return np.ascontiguousarray(a[::-1])[::-1]
    if layout == "strided":
        big = np.zeros((a.shape[0] * 3,) + a.shape[1:], dtype=a.dtype)
        big[1::3] = a
        return big[1::3]
    if layout == "read-only":
        b = a.copy()
        b.flags.writeable = False
        return b
    return a.tolist()


@st.composite
def models(draw, dtype=None, max_layers=3):
    dtype = dtype or draw(st.sampled_from(["float32", "float64"]))
    n_in = draw(st.integers(1, 5))
    units = draw(st.lists(st.integers(1, 5), min_size=1, max_size=max_layers))
    acts = [draw(st.sampled_from(ACTIVATIONS)) for _ in units]
    seed = draw(st.integers(0, 2**32 - 1))
    layers = [pynn.Dense(u, activation=a, input_dim=n_in if i == 0 else None)
              for i, (u, a) in enumerate(zip(units, acts))]
    return pynn.Sequential(layers, dtype=dtype, seed=seed)


def values(dtype, finite=True, bound=10.0):
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        width = 32 if dtype.itemsize >= 4 else 16
        return st.floats(-bound, bound, width=width) if finite else \
            st.floats(width=width, allow_nan=True, allow_infinity=True)
    return None                   # the strategy's default for ints and bools


@st.composite
def inputs(draw, n_features, allow_bad=True):
    """(array in some layout and dtype, its values as float64 or None if it
    holds no real numbers)."""
    dtype = draw(st.sampled_from(INPUT_DTYPES + (BAD_DTYPES if allow_bad else [])))
    n = draw(st.integers(0 if allow_bad else 1, 9))
    width = n_features
    if allow_bad:
        width = draw(st.sampled_from([n_features] * 4 + [n_features + 1, max(n_features - 1, 0)]))
    shape = (n, width)
    if allow_bad:
        shape = draw(st.sampled_from([shape] * 6 + [(n,), (n, width, 1), ()]))
    finite = not allow_bad or draw(st.integers(0, 4)) > 0
    if np.dtype(dtype).kind in "fiub":
        base = draw(hnp.arrays(dtype, shape, elements=values(dtype, finite)))
    else:
        base = np.zeros(shape, dtype=dtype)
    # (as nested lists, an object or string array would be numbers again)
    layouts = LAYOUTS if base.dtype.kind in "fiub" else LAYOUTS[:-1]
    x = relayout(base, draw(st.sampled_from(layouts)))
    return x, base


def expected_error(base, n_features, model_dtype):
    """The exception type pynn must raise for ``base``, or None if valid."""
    if base.dtype.kind not in "biuf":
        return TypeError
    vals = base
    if vals.ndim == 1 and n_features == 1:
        vals = vals.reshape(-1, 1)
    if vals.ndim != 2 or vals.shape[0] == 0 or vals.shape[1] != n_features:
        return ValueError
    with np.errstate(over="ignore"):
        if not np.isfinite(vals.astype(model_dtype)).all():
            return ValueError
    return None


def ref_outputs(net, x):
    weights = [w.astype(np.float64) for w in net.get_weights()]
    ref = reference.ReferenceNetwork(weights, [layer.activation for layer in net.layers])
    return ref.predict(np.asarray(x, dtype=net.dtype).reshape(-1, net.input_dim)
                       .astype(np.float64))


def assert_matches(got, want, dtype):
    tight = np.dtype(dtype) == np.float64
    scale = max(1.0, float(np.abs(want).max(initial=0)))
    np.testing.assert_allclose(got, want, rtol=1e-9 if tight else 2e-4,
                               atol=(1e-10 if tight else 2e-4) * scale)


def snapshot(x):
    return None if isinstance(x, list) else np.array(x, copy=True)


def unchanged(x, before):
    if before is not None:
        np.testing.assert_array_equal(np.asarray(x), before)


@given(net=models(), data=st.data())
def test_predict_is_right_or_refused(net, data):
    x, base = data.draw(inputs(net.input_dim))
    before, weights = snapshot(x), net.params.copy()
    error = expected_error(base, net.input_dim, net.dtype)
    if error is not None:
        with pytest.raises(error):
            net.predict(x)
    else:
        batch_size = data.draw(st.sampled_from([None, 1, 2, 7, 10**9]))
        out = net.predict(x, batch_size=batch_size)
        assert out.shape == (base.reshape(base.shape[0], -1).shape[0], net.output_dim)
        assert out.dtype == net.dtype and out.flags.c_contiguous
        assert_matches(out, ref_outputs(net, base), net.dtype)
    unchanged(x, before)
    np.testing.assert_array_equal(net.params, weights)


@given(net=models(max_layers=1), data=st.data())
def test_dense_forward_matches_reference(net, data):
    layer = net.layers[0]
    x, base = data.draw(inputs(net.input_dim))
    error = expected_error(base, net.input_dim, net.dtype)
    if base.ndim == 1:
        error = error or ValueError          # a layer takes 2-D input only
    if error is not None and error is not TypeError and base.ndim == 2 \
            and base.shape[1] == net.input_dim:
        error = None                         # a layer checks no emptiness or finiteness
    if error is not None:
        with pytest.raises(error):
            layer.forward(x)
        return
    out = layer.forward(x)
    assert out.shape == (base.shape[0], layer.units)
    if np.isfinite(base.astype(net.dtype)).all() and base.shape[0]:
        want = reference.dense_forward(base.astype(net.dtype).astype(np.float64),
                                       layer.W.astype(np.float64),
                                       layer.b.astype(np.float64), layer.activation)
        assert_matches(out, want, net.dtype)


LOSSES = {"mse": ("mse", None), "bce": ("binary_crossentropy", "sigmoid"),
          "cce": ("categorical_crossentropy", "softmax")}


@st.composite
def targets(draw, loss, n, width):
    """Valid targets for ``loss``, as float64 (n, width)."""
    if loss == "mse":
        return draw(hnp.arrays(np.float64, (n, width), elements=st.floats(-5, 5)))
    if loss == "bce":
        return draw(hnp.arrays(np.float64, (n, width), elements=st.floats(0, 1)))
    labels = draw(hnp.arrays(np.int64, n, elements=st.integers(0, width - 1)))
    return np.eye(width)[labels]


@given(data=st.data(), loss=st.sampled_from(sorted(LOSSES)),
       lr=st.floats(1e-4, 0.5), momentum=st.sampled_from([0.0, 0.5, 0.9]),
       nesterov=st.booleans())
def test_train_on_batch_matches_reference(data, loss, lr, momentum, nesterov):
    name, last = LOSSES[loss]
    n_in, n_out = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    hidden = data.draw(st.sampled_from(["relu", "tanh", "sigmoid"]))
    net = pynn.Sequential([pynn.Dense(data.draw(st.integers(1, 5)), activation=hidden,
                                      input_dim=n_in),
                           pynn.Dense(n_out, activation=last)], dtype="float64",
                          seed=data.draw(st.integers(0, 1000)))
    net.compile(loss=name, optimizer=pynn.SGD(lr, momentum=momentum, nesterov=nesterov))
    ref = reference.ReferenceNetwork(net.get_weights(), [hidden, last or "linear"], loss=name,
                                     learning_rate=lr, momentum=momentum, nesterov=nesterov)
    for _ in range(data.draw(st.integers(1, 3))):
        x, base = data.draw(inputs(n_in, allow_bad=False))
        y = data.draw(targets(loss, base.shape[0], n_out))
        y_in = relayout(y, data.draw(st.sampled_from(LAYOUTS)))
        before = snapshot(x), snapshot(y_in)
        got = net.train_on_batch(x, y_in)
        want = ref.train_step(base.astype(np.float64), y)
        assert np.isclose(got, want, rtol=1e-9, atol=1e-12)
        for a, b in zip(net.get_weights(), ref.get_weights()):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
        unchanged(x, before[0])
        unchanged(y_in, before[1])


@given(data=st.data(), dtype=st.sampled_from(["float32", "float64"]),
       epochs=st.integers(0, 3), shuffle=st.booleans())
def test_fit_matches_reference_batches_or_is_refused(data, dtype, epochs, shuffle):
    n_in = data.draw(st.integers(1, 3))
    net = pynn.Sequential([pynn.Dense(3, activation="tanh", input_dim=n_in),
                           pynn.Dense(2)], dtype=dtype, seed=data.draw(st.integers(0, 99)))
    net.compile(loss="mse", optimizer=pynn.SGD(0.05))
    x, base = data.draw(inputs(n_in))
    y = np.ones((base.shape[0] if base.ndim else 0, 2))
    batch_size = data.draw(st.sampled_from([1, 2, 3, 5, 8, 1000, 2**40, 0, -1]))
    error = expected_error(base, n_in, np.dtype(dtype).type)
    if batch_size <= 0:
        # with two faults, either may be reported first
        error = ValueError if error is None else (ValueError, error)
    start = net.get_weights()
    before = snapshot(x)
    if error is not None:
        with pytest.raises(error):
            net.fit(x, y, epochs=epochs, batch_size=batch_size, shuffle=shuffle, verbose=0)
        np.testing.assert_array_equal(net.get_weights()[0], start[0])
        unchanged(x, before)
        return
    history = net.fit(x, y, epochs=epochs, batch_size=batch_size, shuffle=shuffle,
                      verbose=0)
    assert len(history.history.get("loss", [])) == epochs
    assert np.isfinite(net.params).all()
    unchanged(x, before)
    if shuffle:
        return
    # the same batches in order through the NumPy twin
    vals = base.reshape(base.shape[0], -1).astype(dtype)
    ref = reference.ReferenceNetwork(start, ["tanh", "linear"], learning_rate=0.05)
    for _ in range(epochs):
        for s in range(0, vals.shape[0], min(batch_size, vals.shape[0])):
            ref.train_step(vals[s:s + batch_size], y[s:s + batch_size].astype(dtype))
    for a, b in zip(net.get_weights(), ref.get_weights()):
        assert_matches(a, b, dtype)


@st.composite
def weight_lists(draw, net):
    """A list for set_weights, possibly of wrong length, shape or dtype, and
    whether it is valid."""
    shapes = [w.shape for w in net.get_weights()]
    valid = True
    out = []
    for shape in shapes:
        kind = draw(st.sampled_from(["ok"] * 6 + ["shape", "dtype", "nan"]))
        dtype = draw(st.sampled_from([np.float64, np.float32, np.int32, np.float16]))
        if kind == "shape":
            shape = shape[::-1] if len(shape) == 2 and shape[0] != shape[1] else shape + (1,)
            valid = False
        if kind == "dtype":
            dtype = draw(st.sampled_from([np.complex64, object]))
            valid = False
        a = draw(hnp.arrays(dtype, shape, elements=st.integers(-3, 3)) if dtype is not object
                 else st.just(np.zeros(shape, dtype=object)))
        if kind == "nan":
            a = a.astype(np.float64)
            a.flat[0] = np.nan
            valid = False
        layouts = LAYOUTS if a.dtype != object else LAYOUTS[:-1]   # [[0]] is valid again
        out.append(relayout(a, draw(st.sampled_from(layouts))))
    if draw(st.integers(0, 9)) == 0:
        out = out[:-1]
        valid = False
    return out, valid


@given(net=models(), data=st.data())
def test_set_weights_round_trips_or_refuses_untouched(net, data):
    weights, valid = data.draw(weight_lists(net))
    before = net.params.copy()
    if not valid:
        with pytest.raises((ValueError, TypeError)):
            net.set_weights(weights)
        np.testing.assert_array_equal(net.params, before)
        return
    net.set_weights(weights)
    for got, want in zip(net.get_weights(), weights):
        np.testing.assert_array_equal(got, np.asarray(want).astype(net.dtype))


@given(data=st.data(), dtype=st.sampled_from([np.float32, np.float64]),
       loss=st.sampled_from(sorted(LOSSES) + ["sparse"]))
def test_losses_called_directly_match_reference(data, dtype, loss):
    n, m = data.draw(st.integers(1, 6)), data.draw(st.integers(1, 4))
    if loss in ("mse", "cce"):
        y_pred = data.draw(hnp.arrays(dtype, (n, m), elements=st.floats(0.015625, 1, width=32)))
    else:
        y_pred = data.draw(hnp.arrays(dtype, (n, m), elements=st.floats(0.015625, 0.984375, width=32)))
    if loss == "sparse":
        labels = data.draw(hnp.arrays(np.int64, n, elements=st.integers(-1, m)))
        fn, want_fn = pynn.SparseCategoricalCrossentropy(), reference.sparse_categorical_crossentropy
        y_true = labels
        bad = bool(((labels < 0) | (labels >= m)).any())
    else:
        y_true = data.draw(targets(loss, n, m))
        fn = pynn.losses.get(LOSSES[loss][0])
        want_fn = {"mse": reference.mse, "bce": reference.binary_crossentropy,
                   "cce": reference.categorical_crossentropy}[loss]
        bad = False
    x_pred = relayout(y_pred, data.draw(st.sampled_from(LAYOUTS)))
    before = snapshot(x_pred)
    if bad:
        with pytest.raises(ValueError, match="y_true holds label"):
            fn(y_true, x_pred)
        return
    got = fn(y_true, x_pred)
    want, _ = want_fn(y_pred.astype(np.float64), y_true)
    np.testing.assert_allclose(got, want, rtol=1e-9 if dtype == np.float64 else 1e-4,
                               atol=1e-12 if dtype == np.float64 else 1e-6)
    unchanged(x_pred, before)


@pytest.mark.filterwarnings("ignore:training stopped:RuntimeWarning")  # on_divergence="stop"
@given(net=models(), optimizer=st.sampled_from(["sgd", "adam"]),
       lr=st.sampled_from([1e3, 1e8, 1e30]), scale=st.sampled_from([1.0, 1e15, 1e30]),
       data=st.data())
def test_divergence_never_leaves_non_finite_weights(net, optimizer, lr, scale, data):
    net.compile(loss="mse", optimizer=pynn.SGD(lr, momentum=0.9) if optimizer == "sgd"
                else pynn.Adam(lr))
    x = scale * data.draw(hnp.arrays(np.float64, (8, net.input_dim),
                                     elements=st.floats(-1, 1)))
    y = data.draw(hnp.arrays(np.float64, (8, net.output_dim), elements=st.floats(-1, 1)))
    try:
        net.fit(x, y, epochs=3, batch_size=4, verbose=0, on_divergence="stop")
    except ValueError as exc:        # x itself overflows a float32 model
        assert "NaN or infinite" in str(exc)
    assert np.isfinite(net.params).all()
    assert np.isfinite(net.optimizer.state).all()
