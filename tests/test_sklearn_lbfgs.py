"""solver="lbfgs": pynn's full-batch loss and gradient under SciPy's
L-BFGS-B against scikit-learn's MLP lbfgs from the same weights."""
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn", minversion="1.6")

from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.neural_network import MLPClassifier as SkClassifier  # noqa: E402
from sklearn.neural_network import MLPRegressor as SkRegressor  # noqa: E402

from pynn.sklearn import MLPClassifier, MLPRegressor  # noqa: E402


@pytest.fixture
def data():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(100, 4))
    labels = (x[:, 0] + x[:, 1] > 0).astype(int) + (x[:, 2] > 0.5)
    target = np.sin(x[:, 0]) + x[:, 1] * x[:, 2]
    cases = {
        "multiclass": labels, "binary": labels > 0,
        "multilabel": np.column_stack([x[:, 0] > 0, x[:, 1] > 0, x[:, 2] > x[:, 3]]).astype(int),
        "regression": target, "regression2d": np.column_stack([target, np.cos(x[:, 3])]),
    }
    return x, cases


def _pair(case, **params):
    if case.startswith("regression"):
        return MLPRegressor(**params), SkRegressor(**params)
    return MLPClassifier(**params), SkClassifier(**params)


def _outputs(est, x):
    return est.predict(x) if isinstance(est, (MLPRegressor, SkRegressor)) else est.predict_proba(x)


@pytest.mark.parametrize("alpha", [0.0, 0.01])
@pytest.mark.parametrize("case", ["multiclass", "binary", "multilabel", "regression",
                                  "regression2d"])
def test_lbfgs_matches_sklearn_from_the_same_weights(data, case, alpha):
    """Started from the same coefs_ / intercepts_ (scikit-learn's, assigned
    to pynn's estimator), L-BFGS-B on the two objectives ends at the same
    loss and predictions: the losses, the L2 term alpha/(2n) * sum of squared
    kernels and the gradients are scikit-learn's."""
    x, cases = data
    y = cases[case]
    params = dict(solver="lbfgs", hidden_layer_sizes=(8,), activation="tanh", alpha=alpha,
                  warm_start=True, random_state=3)
    ours, theirs = _pair(case, max_iter=1, **params)
    ours.random_state = 11  # other initial weights, then overwritten by theirs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours.fit(x, y)
        theirs.fit(x, y)
    ours.coefs_, ours.intercepts_ = theirs.coefs_, theirs.intercepts_
    for est in (ours, theirs):
        est.set_params(max_iter=60)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(x, y)
    assert ours.n_iter_ == theirs.n_iter_
    np.testing.assert_allclose(ours.loss_, theirs.loss_, rtol=1e-6)
    np.testing.assert_allclose(_outputs(ours, x), _outputs(theirs, x), rtol=1e-5, atol=1e-7)


def test_lbfgs_same_random_state_same_result(data):
    x, cases = data
    ours, theirs = _pair("multiclass", solver="lbfgs", hidden_layer_sizes=(5,), random_state=0,
                         max_iter=500)
    ours.fit(x, cases["multiclass"])
    theirs.fit(x, cases["multiclass"])
    assert ours.n_iter_ == theirs.n_iter_ < 500
    np.testing.assert_allclose(ours.loss_, theirs.loss_, rtol=1e-6)
    np.testing.assert_array_equal(ours.predict(x), theirs.predict(x))


@pytest.mark.parametrize("limit", ["max_iter", "max_fun"])
def test_lbfgs_limits_warn_as_sklearn(data, limit):
    x, cases = data
    params = dict(solver="lbfgs", hidden_layer_sizes=(8,), random_state=0, **{limit: 4})
    messages, n_iters = [], []
    for est in _pair("regression", **params):
        with pytest.warns(ConvergenceWarning) as record:
            est.fit(x, cases["regression"])
        messages.append(str(record[0].message))
        n_iters.append(est.n_iter_)
    assert messages[0] == messages[1]
    assert "lbfgs failed to converge" in messages[0]
    assert n_iters[0] == n_iters[1] <= 4


def test_lbfgs_tol_stops_as_sklearn_without_warning(data):
    x, cases = data
    for est in _pair("binary", solver="lbfgs", hidden_layer_sizes=(8,), random_state=0,
                     tol=1e-2):
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            est.fit(x, cases["binary"])
    ours, theirs = _pair("binary", solver="lbfgs", hidden_layer_sizes=(8,), random_state=0,
                         tol=1e-2)
    assert ours.fit(x, cases["binary"]).n_iter_ == theirs.fit(x, cases["binary"]).n_iter_


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_lbfgs_attributes_as_sklearn(data):
    x, cases = data
    ours, theirs = _pair("regression", solver="lbfgs", hidden_layer_sizes=(4,), random_state=0,
                         max_iter=40)
    for est in (ours, theirs):
        est.fit(x, cases["regression"])
    for name in ("loss_curve_", "best_loss_", "validation_scores_", "best_validation_score_"):
        assert hasattr(ours, name) == hasattr(theirs, name) is False
    assert ours.t_ == theirs.t_ == 0
    assert isinstance(ours.loss_, float)
    # early_stopping does not apply to lbfgs, on either side
    es = _pair("regression", solver="lbfgs", hidden_layer_sizes=(4,), random_state=0,
               max_iter=40, early_stopping=True)
    for est in es:
        est.fit(x, cases["regression"])
    np.testing.assert_allclose(es[0].loss_, es[1].loss_, rtol=1e-6)


def test_lbfgs_overflow_at_the_start_stops_as_sklearn(data):
    # every loss overflows: L-BFGS-B stops at the start on both sides, with
    # the initial weights (finite, so no error) and a NaN loss
    x, cases = data
    huge = x * 1e200
    pair = _pair("regression", solver="lbfgs", hidden_layer_sizes=(4,), random_state=0,
                 max_iter=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        for est in pair:
            est.fit(huge, cases["regression"])
    ours, theirs = pair
    assert np.isnan(ours.loss_) and np.isnan(theirs.loss_)
    assert ours.n_iter_ == theirs.n_iter_ == 0
    for mine, other in zip(ours.coefs_, theirs.coefs_):
        np.testing.assert_allclose(mine, other, rtol=1e-12)
