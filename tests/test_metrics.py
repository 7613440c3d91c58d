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
    scores = net.evaluate(x, y, batch_size=25, return_dict=True)          # chunks of 25, 25, 10
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
    assert set(net.evaluate(x, y, return_dict=True)) == {"loss"}


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


# ------------------------------------------------ AUC, precision, recall

sklearn_metrics = pytest.importorskip("sklearn.metrics")


def scores_and_labels(rng, n=300, ties=False):
    y = (rng.uniform(size=n) > 0.6).astype(float)
    p = np.clip(0.35 * y + rng.uniform(size=n) * 0.65, 0, 1)
    if ties:
        p = np.round(p, 1)          # many equal scores across both classes
    return y, p


@pytest.mark.parametrize("ties", [False, True])
def test_exact_auc_is_sklearns(rng, ties):
    y, p = scores_and_labels(rng, ties=ties)
    expected = sklearn_metrics.roc_auc_score(y, p)
    assert metrics.roc_auc(y, p) == pytest.approx(expected, abs=1e-12)
    auc = metrics.AUC()
    for start in range(0, y.size, 37):          # batches of uneven sizes
        auc.update_state(y[start:start + 37], p[start:start + 37])
    assert auc.result() == pytest.approx(expected, abs=1e-12)
    # (n, m) targets: every element counts, as Keras without multi_label
    y2, p2 = y.reshape(-1, 3), p.reshape(-1, 3)
    assert metrics.roc_auc(y2, p2) == pytest.approx(expected, abs=1e-12)


def keras_auc_by_loops(y, p, num_thresholds):
    # Keras's ROC AUC written out threshold by threshold
    thresholds = [-1e-7] + [(i + 1) / (num_thresholds - 1)
                            for i in range(num_thresholds - 2)] + [1 + 1e-7]
    tpr, fpr = [], []
    for t in thresholds:
        tp = np.sum((p > t) & (y == 1))
        fp = np.sum((p > t) & (y == 0))
        tpr.append(tp / max(np.sum(y == 1), 1))
        fpr.append(fp / max(np.sum(y == 0), 1))
    return sum((fpr[i] - fpr[i + 1]) * (tpr[i] + tpr[i + 1]) / 2
               for i in range(num_thresholds - 1))


@pytest.mark.parametrize("num_thresholds", [3, 10, 200])
def test_keras_auc_follows_its_formula(rng, num_thresholds):
    y, p = scores_and_labels(rng)
    auc = metrics.AUC(num_thresholds=num_thresholds)
    for start in range(0, y.size, 64):
        auc.update_state(y[start:start + 64], p[start:start + 64])
    expected = keras_auc_by_loops(y, p, num_thresholds)
    assert auc.result() == pytest.approx(expected, abs=1e-12)
    assert metrics.keras_roc_auc(y, p, num_thresholds) == pytest.approx(expected, abs=1e-12)
    if num_thresholds == 200:       # close to the exact value, not equal
        exact = sklearn_metrics.roc_auc_score(y, p)
        assert auc.result() == pytest.approx(exact, abs=5e-3)
        assert auc.result() != exact


@pytest.mark.parametrize("threshold", [0.5, 0.3])
def test_precision_and_recall_are_sklearns(rng, threshold):
    y, p = scores_and_labels(rng)
    predicted = (p > threshold).astype(int)
    prec, rec = metrics.Precision(thresholds=threshold), metrics.Recall(thresholds=threshold)
    for start in range(0, y.size, 50):
        prec.update_state(y[start:start + 50], p[start:start + 50])
        rec.update_state(y[start:start + 50], p[start:start + 50])
    assert prec.result() == pytest.approx(sklearn_metrics.precision_score(y, predicted))
    assert rec.result() == pytest.approx(sklearn_metrics.recall_score(y, predicted))
    assert metrics.precision(y, p, threshold) == prec.result()
    assert metrics.recall(y, p, threshold) == rec.result()
    # the mean of per-batch precisions is not the precision: why state is kept
    per_batch = [metrics.precision(y[s:s + 7], p[s:s + 7], threshold) for s in range(0, 300, 7)]
    assert np.mean(per_batch) != pytest.approx(prec.result(), abs=1e-6)


def test_stateful_metrics_reset_and_degenerate_cases():
    prec, rec, auc = metrics.Precision(), metrics.Recall(), metrics.AUC()
    prec.update_state([1, 0], [0.9, 0.8])
    assert prec.result() == 0.5
    prec.reset_state()
    assert prec.result() == 0.0                      # nothing predicted positive
    prec.update_state([1, 1], [0.1, 0.2])
    assert prec.result() == 0.0 and metrics.precision([1, 1], [0.1, 0.2]) == 0.0
    rec.update_state([0, 0], [0.9, 0.1])
    assert rec.result() == 0.0                       # no positives
    auc.update_state([1, 1, 1], [0.2, 0.5, 0.9])
    assert np.isnan(auc.result())                    # one class only: undefined
    auc.update_state([0], [0.4])
    assert auc.result() == pytest.approx(2 / 3)
    auc.reset_state()
    assert np.isnan(auc.result())
    # calling on arrays leaves the state alone
    auc.update_state([0, 1], [0.1, 0.9])
    assert auc([0, 1], [0.9, 0.1]) == 0.0 and auc.result() == 1.0


def test_stateful_metrics_from_logits(rng):
    y, p = scores_and_labels(rng)
    p = np.clip(p, 1e-6, 1 - 1e-6)
    logits = np.log(p / (1 - p)).reshape(-1, 1)
    for metric in (metrics.AUC(), metrics.AUC(num_thresholds=50), metrics.Precision(),
                   metrics.Recall()):
        metric.update_from_outputs(y.reshape(-1, 1), logits, "sigmoid")
        assert metric.result() == pytest.approx(metric(y, p), abs=1e-9)


def test_stateful_metrics_refuse_bad_input():
    with pytest.raises(ValueError, match="num_thresholds.*got 2"):
        metrics.AUC(num_thresholds=2)
    with pytest.raises(ValueError, match="num_thresholds.*got 1.5"):
        metrics.AUC(num_thresholds=1.5)
    with pytest.raises(ValueError, match="threshold"):
        metrics.Precision(thresholds=1.5)
    with pytest.raises(ValueError, match="as many elements"):
        metrics.AUC().update_state([0, 1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="y_pred holds NaN"):
        metrics.Recall().update_state([0, 1], [0.1, np.nan])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        metrics.AUC(num_thresholds=10).update_state([0, 1], [-2.0, 3.0])


@pytest.mark.parametrize("name, cls", [("auc", metrics.AUC), ("AUC", metrics.AUC),
                                       ("precision", metrics.Precision),
                                       ("recall", metrics.Recall)])
def test_stateful_metrics_by_name(name, cls):
    m = metrics.get(name, pynn.BinaryCrossentropy())
    assert isinstance(m, cls) and m.name == name and m.stateful
    assert name.lower() in metrics.names()
    with pytest.raises(ValueError, match="integer labels"):
        metrics.get(name, pynn.SparseCategoricalCrossentropy())


def test_stateful_metrics_only_for_callers_that_accumulate_them():
    # a mean of per-batch AUCs is not the AUC: get_list refuses a stateful
    # metric unless its caller feeds reset_state / update_from_outputs / result
    loss = pynn.BinaryCrossentropy()
    for m in ("auc", metrics.Precision()):
        with pytest.raises(NotImplementedError, match="not a mean of per-batch values"):
            metrics.get_list([m], loss, 1)
    got = metrics.get_list(["accuracy", "auc"], loss, 1, accumulates=True)
    assert [m.stateful for m in got] == [False, True]
    with pytest.raises(NotImplementedError, match="accumulate"):
        metrics.AUC().from_outputs(np.zeros((2, 1)), np.zeros((2, 1)), None)


def binary_problem(seed=0, n=400):
    r = np.random.default_rng(seed)
    x = r.normal(size=(n, 4))
    y = (x[:, 0] + 0.5 * x[:, 1] + r.normal(scale=0.7, size=n) > 0).astype(float)
    return x, y


def test_evaluate_reports_exact_auc_precision_recall():
    x, y = binary_problem()
    net = pynn.Sequential([pynn.Dense(1, activation="sigmoid", input_dim=4)],
                          dtype="float64", seed=3)
    net.compile(loss="binary_crossentropy", metrics=["auc", "precision", "recall"])
    scores = net.evaluate(x, y, batch_size=64, return_dict=True)       # several chunks
    p = net.predict(x).ravel()
    assert scores["auc"] == pytest.approx(sklearn_metrics.roc_auc_score(y, p), abs=1e-12)
    assert scores["precision"] == pytest.approx(sklearn_metrics.precision_score(y, p > 0.5))
    assert scores["recall"] == pytest.approx(sklearn_metrics.recall_score(y, p > 0.5))


def test_fit_reports_auc_over_the_epoch():
    x, y = binary_problem()
    net = pynn.Sequential([pynn.Dense(1, activation="sigmoid", input_dim=4)],
                          dtype="float64", seed=3)
    net.compile(loss="binary_crossentropy", optimizer=pynn.SGD(learning_rate=1e-12),
                metrics=["auc"])
    # a learning rate this small leaves the weights as they were (to 1e-10),
    # so the epoch's AUC is the AUC of the initial model on the whole data
    p = net.predict(x).ravel()
    history = net.fit(x, y, epochs=1, batch_size=32, verbose=0,
                      validation_data=(x, y))
    expected = sklearn_metrics.roc_auc_score(y, p)
    assert history.history["auc"][0] == pytest.approx(expected, abs=1e-6)
    assert history.history["val_auc"][0] == pytest.approx(expected, abs=1e-6)
