"""Metrics: the functions, what evaluate and fit report, and resolution by loss."""
import numpy as np
import pytest

import pynn
from conftest import make_model as build_model
from pynn import metrics


def test_functions_against_numpy(rng):
    p = rng.uniform(size=(50, 3))
    z = (rng.uniform(size=(50, 3)) > 0.5).astype(float)
    labels = rng.integers(0, 3, size=50)
    assert metrics.binary_accuracy(z, p) == np.count_nonzero((p > 0.5) == z) / 150
    assert metrics.binary_accuracy(z, p, threshold=0.8) == \
        np.count_nonzero((p > 0.8) == z) / 150
    hits = sum(int(np.argmax(p[i]) == labels[i]) for i in range(50))
    assert metrics.sparse_categorical_accuracy(labels, p) == hits / 50
    assert metrics.sparse_categorical_accuracy(labels.reshape(-1, 1).astype(float), p) == hits / 50
    assert metrics.categorical_accuracy(np.eye(3)[labels], p) == hits / 50
    assert metrics.mean_squared_error(z, p) == pytest.approx(np.mean((p - z) ** 2))
    assert metrics.mean_absolute_error(z, p) == pytest.approx(np.mean(np.abs(p - z)))


@pytest.mark.parametrize("loss, expected", [
    ("binary_crossentropy", metrics.binary_accuracy),
    ("categorical_crossentropy", metrics.categorical_accuracy),
    ("sparse_categorical_crossentropy", metrics.sparse_categorical_accuracy),
])
def test_accuracy_resolved_from_the_loss(loss, expected):
    for name in ("accuracy", "acc", "Accuracy"):
        m = metrics.get(name, pynn.losses.get(loss))
        assert m.fn is expected and m.name == name


def test_accuracy_with_mse_follows_the_output_width():
    mse = pynn.MeanSquaredError()
    assert metrics.get("accuracy", mse, 1).fn is metrics.binary_accuracy
    assert metrics.get("accuracy", mse, 4).fn is metrics.categorical_accuracy


def test_bad_metrics_refused():
    net = pynn.Sequential([pynn.Dense(3, activation="softmax", input_dim=2)])
    with pytest.raises(ValueError, match="unknown metric 'f1'"):
        net.compile(loss="categorical_crossentropy", metrics=["f1"])
    with pytest.raises(TypeError, match=r"metrics=\['accuracy'\]"):
        net.compile(loss="categorical_crossentropy", metrics="accuracy")
    with pytest.raises(TypeError, match="42"):
        net.compile(loss="categorical_crossentropy", metrics=[42])
    with pytest.raises(ValueError, match="'mse'.*sparse_categorical_crossentropy.*integer"):
        net.compile(loss="sparse_categorical_crossentropy", metrics=["mse"])
    with pytest.raises(ValueError, match="'sparse_categorical_accuracy'"):
        net.compile(loss="categorical_crossentropy", metrics=["sparse_categorical_accuracy"])
    with pytest.raises(ValueError, match="twice"):
        net.compile(loss="categorical_crossentropy", metrics=["acc", "acc"])


def make_model(loss, activation, units, dtype="float64", metric_names=()):
    return build_model((8, "tanh"), (units, activation), input_dim=4, dtype=dtype, seed=7,
                       loss=loss, optimizer=pynn.SGD(learning_rate=0.1), metrics=metric_names)


# (loss, last activation, outputs, metric names, targets from (labels, z))
CASES = [
    (pynn.BinaryCrossentropy(), "sigmoid", 1, ["accuracy", "mse", "mae"], "binary"),
    (pynn.BinaryCrossentropy(from_logits=True), "linear", 1, ["accuracy", "mse"], "binary"),
    (pynn.BinaryCrossentropy(), "sigmoid", 3, ["binary_accuracy", "mae"], "multilabel"),
    (pynn.CategoricalCrossentropy(), "softmax", 3, ["acc", "mse"], "onehot"),
    (pynn.CategoricalCrossentropy(from_logits=True), "linear", 3, ["accuracy", "mae"], "onehot"),
    (pynn.SparseCategoricalCrossentropy(), "softmax", 3, ["accuracy"], "labels"),
    (pynn.MeanSquaredError(), "linear", 1, ["accuracy", "mae"], "binary"),
    # softmax logits: binary accuracy must not threshold them at 0
    (pynn.CategoricalCrossentropy(), "softmax", 3, ["binary_accuracy"], "onehot"),
]


def targets(kind, rng, n=60):
    labels = rng.integers(0, 3, size=n)
    if kind == "binary":
        return (labels > 0).astype(float).reshape(-1, 1)
    if kind == "multilabel":
        return (rng.uniform(size=(n, 3)) > 0.5).astype(float)
    if kind == "onehot":
        return np.eye(3)[labels]
    return labels


def numpy_metric(name, loss, y, probs):
    """The metric on probabilities, written out in NumPy."""
    if name in ("accuracy", "acc"):
        name = {"BinaryCrossentropy": "binary_accuracy",
                "MeanSquaredError": "binary_accuracy",
                "CategoricalCrossentropy": "categorical_accuracy",
                "SparseCategoricalCrossentropy": "sparse"}[type(loss).__name__]
    if name == "binary_accuracy":
        return np.mean((probs > 0.5) == (y.reshape(probs.shape) > 0.5))
    if name == "categorical_accuracy":
        return np.mean(probs.argmax(axis=1) == y.argmax(axis=1))
    if name == "sparse":
        return np.mean(probs.argmax(axis=1) == y)
    diff = probs - y.reshape(probs.shape)
    return np.mean(diff ** 2) if name == "mse" else np.mean(np.abs(diff))


@pytest.mark.parametrize("loss, activation, units, names, kind", CASES)
def test_evaluate_reports_metrics_on_the_predictions(loss, activation, units, names, kind, rng):
    x = rng.standard_normal((60, 4))
    y = targets(kind, rng)
    net = make_model(loss, activation, units, metric_names=names)
    net.fit(x, y, epochs=3, batch_size=16, verbose=0)
    scores = net.evaluate(x, y, batch_size=25)          # chunks of 25, 25, 10
    assert list(scores) == ["loss"] + names
    probs = net.predict(x)
    if getattr(loss, "from_logits", False):           # predict gives logits then
        probs = pynn.reference.activate(probs, "sigmoid" if units == 1 else "softmax")
    for name in names:
        assert scores[name] == pytest.approx(numpy_metric(name, loss, y, probs), rel=1e-12)


@pytest.mark.parametrize("loss, activation, units, names, kind", CASES)
def test_fit_records_the_running_mean_before_each_update(loss, activation, units, names,
                                                         kind, rng):
    x = rng.standard_normal((50, 4))
    y = targets(kind, rng, n=50)
    net = make_model(loss, activation, units, metric_names=names)
    twin = make_model(loss, activation, units)
    history = net.fit(x, y, epochs=2, batch_size=20, shuffle=False, verbose=0)
    assert set(history.history) == {"loss", "learning_rate", *names}
    assert all(len(v) == 2 for v in history.history.values())
    for epoch in range(2):
        sums = dict.fromkeys(names, 0.0)
        for start in range(0, 50, 20):
            xs, ys = x[start:start + 20], y[start:start + 20]
            for name in names:
                sums[name] += len(xs) * _metric_of(twin, loss, name, xs, ys, units)
            twin.train_on_batch(xs, ys)
        for name in names:
            assert history.history[name][epoch] == pytest.approx(sums[name] / 50, rel=1e-12)


def _metric_of(model, loss, name, x, y, units):
    probs = model.predict(x)
    if getattr(loss, "from_logits", False):
        probs = pynn.reference.activate(probs, "sigmoid" if units == 1 else "softmax")
    return numpy_metric(name, loss, y, probs)


def test_no_metrics_no_keys(rng):
    net = make_model("binary_crossentropy", "sigmoid", 1)
    x = rng.standard_normal((20, 4))
    y = targets("binary", rng, n=20)
    assert set(net.fit(x, y, epochs=1, verbose=0).history) == {"loss", "learning_rate"}
    assert set(net.evaluate(x, y)) == {"loss"}


def test_logit_threshold_matches_probability_threshold():
    """Fused outputs are logits: accuracy reads logit > 0 where p > 0.5."""
    m = metrics.get("accuracy", pynn.BinaryCrossentropy())
    logits = np.array([[-2.0], [-0.1], [0.1], [3.0]])
    y = np.array([[0.0], [1.0], [1.0], [1.0]])
    assert m.from_outputs(y, logits, "sigmoid") == 0.75
    assert m.from_outputs(y, pynn.reference.sigmoid(logits), None) == 0.75


def test_predict_returns_probabilities(rng):
    x = rng.standard_normal((30, 4))
    for activation, units, loss in [("sigmoid", 2, "binary_crossentropy"),
                                    ("softmax", 3, "categorical_crossentropy")]:
        net = make_model(loss, activation, units)
        assert net.fused
        p = net.predict(x)
        ref = pynn.reference.ReferenceNetwork(net.get_weights(), ["tanh", activation])
        np.testing.assert_allclose(p, ref.predict(x), rtol=1e-12)
        assert ((p > 0) & (p < 1)).all()
        if activation == "softmax":
            np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-12)
