"""pynn.sklearn: scikit-learn's estimator checks, and pynn's steps against
scikit-learn's own MLPs from the same weights."""
import os
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn", minversion="1.6")

from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.neural_network import MLPClassifier as SkClassifier  # noqa: E402
from sklearn.neural_network import MLPRegressor as SkRegressor  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import pynn  # noqa: E402
from pynn.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

# Every check passes with scikit-learn 1.9; a check that cannot pass would be
# listed here with the reason, as {check name: reason}.
EXPECTED_FAILED_CHECKS = {}


@parametrize_with_checks([MLPClassifier(), MLPRegressor()],
                         expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS)
def test_sklearn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


def test_import_pynn_does_not_import_sklearn():
    code = "import sys, pynn; sys.exit('sklearn' in sys.modules)"
    root = str(Path(pynn.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    assert subprocess.run([sys.executable, "-c", code], env=env).returncode == 0


@pytest.fixture
def blobs():
    rng = np.random.default_rng(0)
    centers = rng.normal(0, 3, size=(3, 4))
    y = rng.integers(0, 3, size=120)
    x = centers[y] + rng.normal(size=(120, 4))
    return x, y


def _sgd_params(**kw):
    params = dict(solver="sgd", learning_rate_init=0.05, momentum=0.0, batch_size=20,
                  shuffle=False, alpha=0.01, hidden_layer_sizes=(5, 4), activation="tanh",
                  random_state=0)
    params.update(kw)
    return params


def _same_start(ours, theirs, x, y, **fit_kw):
    # both initialised by one partial_fit, then theirs given our weights
    ours.partial_fit(x, y, **fit_kw)
    theirs.partial_fit(x, y, **fit_kw)
    for mine, other in zip(ours.coefs_ + ours.intercepts_,
                           theirs.coefs_ + theirs.intercepts_):
        other[...] = mine


@pytest.mark.parametrize("alpha", [0.0, 0.01])
@pytest.mark.parametrize("case", ["multiclass", "binary", "multilabel", "regression",
                                  "regression2d"])
def test_sgd_steps_match_sklearn(blobs, case, alpha):
    """Plain SGD with L2, several batches and epochs: the same weights and
    loss curve as scikit-learn's MLP from the same start, which pins the
    objective's scaling (0.5 MSE, summed multilabel BCE, alpha / batch)."""
    x, labels = blobs
    kw = {}
    if case in ("regression", "regression2d"):
        y = np.sin(x[:, 0]) + 0.1 * x[:, 1]
        if case == "regression2d":
            y = np.column_stack([y, np.cos(x[:, 2])])
        ours, theirs = MLPRegressor(**_sgd_params(alpha=alpha)), SkRegressor(**_sgd_params(alpha=alpha))
    else:
        y = {"multiclass": labels, "binary": labels == 1,
             "multilabel": np.column_stack([labels == 0, labels == 2, x[:, 0] > 0])}[case]
        y = y.astype(int)
        kw["classes"] = np.arange(3) if case == "multilabel" else np.unique(y)
        ours, theirs = MLPClassifier(**_sgd_params(alpha=alpha)), SkClassifier(**_sgd_params(alpha=alpha))
    _same_start(ours, theirs, x, y, **kw)
    for _ in range(3):
        ours.partial_fit(x, y)
        theirs.partial_fit(x, y)
    for mine, other in zip(ours.coefs_ + ours.intercepts_,
                           theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(mine, other, rtol=1e-10, atol=1e-12)
    # the L2 term in loss_curve_ is taken with the epoch's final weights,
    # scikit-learn's with each batch's: close, not equal, when alpha > 0
    np.testing.assert_allclose(ours.loss_curve_[-3:], theirs.loss_curve_[-3:],
                               rtol=1e-3 if alpha else 1e-10)
    if case.startswith("regression"):
        np.testing.assert_allclose(ours.predict(x), theirs.predict(x), rtol=1e-10)
    else:
        np.testing.assert_allclose(ours.predict_proba(x), theirs.predict_proba(x),
                                   rtol=1e-9, atol=1e-12)
        np.testing.assert_array_equal(ours.predict(x), theirs.predict(x))


def test_nesterov_momentum_first_steps_match_sklearn(blobs):
    # a fresh optimizer on both sides (fit, not partial_fit, after copying
    # the weights in with warm_start): momentum state starts at zero in both
    x, y = blobs
    params = _sgd_params(momentum=0.9, nesterovs_momentum=True, max_iter=3,
                         warm_start=True, tol=0.0, n_iter_no_change=50)
    ours, theirs = MLPClassifier(**params), SkClassifier(**params)
    _same_start(ours, theirs, x, y, classes=np.unique(y))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours.fit(x, y)
        theirs.fit(x, y)
    for mine, other in zip(ours.coefs_, theirs.coefs_):
        np.testing.assert_allclose(mine, other, rtol=1e-10, atol=1e-12)


def test_coefs_are_transposed_views(blobs):
    x, y = blobs
    clf = MLPClassifier(hidden_layer_sizes=(7,), max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(x, y)
    assert [c.shape for c in clf.coefs_] == [(4, 7), (7, 3)]
    assert [b.shape for b in clf.intercepts_] == [(7,), (3,)]
    layer = clf.model_.layers[0]
    assert np.shares_memory(clf.coefs_[0], clf.model_.params)
    clf.coefs_[0][1, 2] = 0.25
    assert layer.W[2, 1] == 0.25
    assert clf.n_features_in_ == 4 and clf.n_iter_ == 5 and len(clf.loss_curve_) == 5
    np.testing.assert_array_equal(clf.classes_, [0, 1, 2])


def test_string_labels_pipeline_grid_search_cross_val(blobs):
    x, y = blobs
    names = np.array(["ant", "bee", "cat"])[y]
    pipe = make_pipeline(StandardScaler(),
                         MLPClassifier(hidden_layer_sizes=(8,), max_iter=100,
                                       learning_rate_init=0.01, random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        scores = cross_val_score(pipe, x, names, cv=3)
        search = GridSearchCV(pipe, {"mlpclassifier__alpha": [1e-4, 1e-2]}, cv=2).fit(x, names)
    assert scores.mean() > 0.9
    assert search.best_estimator_.predict(x[:3]).dtype == names.dtype
    assert set(search.predict(x)) <= {"ant", "bee", "cat"}


def test_clone_and_pickle_travel_as_weights(blobs):
    x, y = blobs
    clf = MLPClassifier(hidden_layer_sizes=(6,), max_iter=20, random_state=1, solver="sgd")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(x, y)
    blob = pickle.dumps(clf)
    # no compiled object (pynn._dense.Network) and no lock inside the pickle
    assert b"_dense" not in blob and b"RLock" not in blob
    back = pickle.loads(blob)
    np.testing.assert_array_equal(back.predict_proba(x), clf.predict_proba(x))
    # training goes on exactly as the original's (optimizer state travels)
    clf.partial_fit(x, y)
    back.partial_fit(x, y)
    np.testing.assert_array_equal(back.model_.params, clf.model_.params)
    fresh = clone(clf)
    assert not hasattr(fresh, "model_") and fresh.get_params() == clf.get_params()


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # max_iter is small on purpose
def test_same_random_state_same_model_and_user_arrays_untouched(blobs):
    x, y = blobs
    x0, y0 = x.copy(), y.copy()
    a = MLPRegressor(max_iter=10, random_state=3, shuffle=True).fit(x, y.astype(float))
    b = MLPRegressor(max_iter=10, random_state=3, shuffle=True).fit(x, y.astype(float))
    np.testing.assert_array_equal(a.model_.params, b.model_.params)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(y, y0)


def test_early_stopping_keeps_best_weights(blobs):
    x, y = blobs
    clf = MLPClassifier(early_stopping=True, n_iter_no_change=3, max_iter=100,
                        random_state=0, hidden_layer_sizes=(8,))
    clf.fit(x, y)
    assert clf.best_loss_ is None
    assert len(clf.validation_scores_) == clf.n_iter_
    assert clf.best_validation_score_ == max(clf.validation_scores_)


def test_adaptive_divides_learning_rate_on_plateau(blobs):
    x, y = blobs
    reg = MLPRegressor(solver="sgd", learning_rate="adaptive", tol=10.0, n_iter_no_change=1,
                       max_iter=6, learning_rate_init=0.01, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.fit(x, y.astype(float))
    # no epoch improves by tol: the count passes n_iter_no_change at epochs
    # 3 and 5 (as scikit-learn counts), and the rate is divided by 5 each time
    assert reg._current_lr == pytest.approx(0.01 / 25)


@pytest.mark.parametrize("param, value, exc", [
    ("solver", "newton", ValueError), ("activation", "softmax", ValueError),
    ("hidden_layer_sizes", (10, 0), ValueError), ("hidden_layer_sizes", "big", TypeError),
    ("batch_size", 0, ValueError), ("alpha", -1.0, ValueError),
    ("learning_rate", "cosine", ValueError), ("momentum", 1.0, ValueError),
    ("validation_fraction", 1.0, ValueError), ("max_iter", 0, ValueError),
    ("dtype", "float16", ValueError), ("shuffle", "yes", TypeError),
])
def test_bad_parameters_are_named(blobs, param, value, exc):
    x, y = blobs
    with pytest.raises(exc, match=param.split("_sizes")[0]):
        MLPClassifier(**{param: value}).fit(x, y)


def test_partial_fit_needs_classes_first(blobs):
    x, y = blobs
    with pytest.raises(ValueError, match="classes"):
        MLPClassifier().partial_fit(x, y)
    clf = MLPClassifier(random_state=0).partial_fit(x[:10], y[:10], classes=[0, 1, 2, 5])
    assert clf.predict_proba(x).shape == (120, 4)
    with pytest.raises(ValueError, match="classes"):
        clf.partial_fit(x, np.full(120, 7))
    # labels outside the classes given on the first call are refused, not
    # mapped onto neighbouring classes
    with pytest.raises(ValueError, match=r"not in `self.classes_`.*'y' has \[0 1 2\]"):
        MLPClassifier(random_state=0).partial_fit(x, y, classes=[0, 2, 5])
