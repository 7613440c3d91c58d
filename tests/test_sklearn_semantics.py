"""pynn.sklearn against scikit-learn's own MLPs, behaviour by behaviour:
n_iter_ and t_, warm starts, partial_fit, early stopping, divergence, one
class, multilabel, error texts, assignable weights."""
import re
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn", minversion="1.6")

from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.neural_network import MLPClassifier as SkClassifier  # noqa: E402
from sklearn.neural_network import MLPRegressor as SkRegressor  # noqa: E402

import pynn  # noqa: E402
from pynn.errors import SolverDivergenceError  # noqa: E402
from pynn.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

pytestmark = [pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
              # the full batch below is larger than the sample: both sides say so
              pytest.mark.filterwarnings("ignore:Got `batch_size`:UserWarning")]


@pytest.fixture
def data():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(90, 4))
    labels = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0.3)
    target = np.sin(x[:, 0]) + 0.5 * x[:, 1] * x[:, 2]
    return x, labels, target


def _both(cls_ours, cls_theirs, **params):
    return cls_ours(**params), cls_theirs(**params)


def _fit_both(pair, x, y, method="fit", **kw):
    return [getattr(est, method)(x, y, **kw) for est in pair]


def _raises_both(pair, call, exc=ValueError):
    """The same exception type and message from both estimators."""
    messages = []
    for est in pair:
        with pytest.raises(exc) as info:
            call(est)
        messages.append(str(info.value))
    return messages


# a full batch without shuffling: both sides take exactly the same steps
# from the same initial weights (drawn from random_state as scikit-learn draws
# them), so their attributes can be compared number for number
_DETERMINISTIC = dict(solver="sgd", learning_rate_init=0.05, momentum=0.0, batch_size=1000,
                      shuffle=False, hidden_layer_sizes=(6,), activation="tanh",
                      random_state=0, alpha=1e-3)


@pytest.mark.parametrize("cls_ours, cls_theirs", [(MLPClassifier, SkClassifier),
                                                  (MLPRegressor, SkRegressor)])
def test_same_random_state_same_initial_weights_and_steps(data, cls_ours, cls_theirs):
    x, labels, target = data
    y = labels if cls_ours is MLPClassifier else target
    ours, theirs = _fit_both(_both(cls_ours, cls_theirs, max_iter=4, **_DETERMINISTIC), x, y)
    for mine, other in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(mine, other, rtol=1e-9, atol=1e-12)


def test_warm_start_restarts_n_iter_and_keeps_t(data):
    x, labels, _ = data
    pair = _both(MLPClassifier, SkClassifier, max_iter=3, warm_start=True, tol=0.0,
                 **{k: v for k, v in _DETERMINISTIC.items()})
    for _ in range(2):
        _fit_both(pair, x, labels)
    ours, theirs = pair
    assert ours.n_iter_ == theirs.n_iter_ == 3
    assert ours.t_ == theirs.t_ == 6 * len(x)
    assert len(ours.loss_curve_) == len(theirs.loss_curve_) == 6
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-3)


def test_partial_fit_counts_as_sklearn(data):
    x, labels, _ = data
    pair = _both(MLPClassifier, SkClassifier, **_DETERMINISTIC)
    for _ in range(3):
        _fit_both(pair, x, labels, method="partial_fit", classes=[0, 1, 2])
    ours, theirs = pair
    assert ours.n_iter_ == theirs.n_iter_ == 1
    assert ours.t_ == theirs.t_ == 3 * len(x)
    assert len(ours.loss_curve_) == len(theirs.loss_curve_) == 3


def test_partial_fit_refuses_early_stopping(data):
    x, labels, target = data
    for ours_cls, theirs_cls, y, kw in [(MLPClassifier, SkClassifier, labels, {"classes": [0, 1, 2]}),
                                        (MLPRegressor, SkRegressor, target, {})]:
        pair = _both(ours_cls, theirs_cls, early_stopping=True)
        mine, other = _raises_both(pair, lambda est: est.partial_fit(x, y, **kw))
        assert mine == other == "partial_fit does not support early_stopping=True"
        assert not hasattr(pair[0], "model_")  # refused before anything was built


def test_partial_fit_absent_for_lbfgs():
    for ours, theirs in [(MLPClassifier(solver="lbfgs"), SkClassifier(solver="lbfgs"))]:
        assert not hasattr(ours, "partial_fit") and not hasattr(theirs, "partial_fit")
    with pytest.raises(AttributeError, match="partial_fit"):
        MLPRegressor(solver="lbfgs").partial_fit


def test_n_iter_no_change_inf_never_stops(data):
    x, _, target = data
    pair = _both(MLPRegressor, SkRegressor, n_iter_no_change=np.inf, tol=1e6, max_iter=15,
                 **{k: v for k, v in _DETERMINISTIC.items() if k != "batch_size"})
    with pytest.warns(ConvergenceWarning, match="Maximum iterations"):
        pair[0].fit(x, target)
    pair[1].fit(x, target)
    assert pair[0].n_iter_ == pair[1].n_iter_ == 15
    # a finite n_iter_no_change stops such a run early, on both sides
    short = _fit_both(_both(MLPRegressor, SkRegressor, n_iter_no_change=2, tol=1e6, max_iter=15,
                            **_DETERMINISTIC), x, target)
    assert short[0].n_iter_ == short[1].n_iter_ == 4


def test_one_class_is_fitted_and_predicted(data):
    x, _, _ = data
    y = np.array(["only"] * len(x))
    ours, theirs = _fit_both(_both(MLPClassifier, SkClassifier, max_iter=5, **{
        k: v for k, v in _DETERMINISTIC.items() if k != "max_iter"}), x, y)
    np.testing.assert_array_equal(ours.classes_, theirs.classes_)
    np.testing.assert_array_equal(ours.predict(x), theirs.predict(x))
    assert ours.n_outputs_ == theirs.n_outputs_ == 1
    assert ours.out_activation_ == theirs.out_activation_ == "logistic"
    np.testing.assert_allclose(ours.predict_proba(x), theirs.predict_proba(x), rtol=1e-9)


def test_multilabel_partial_fit_with_classes(data):
    x, labels, _ = data
    y = np.column_stack([labels == 0, labels == 2, x[:, 3] > 0]).astype(int)
    pair = _both(MLPClassifier, SkClassifier, **_DETERMINISTIC)
    for _ in range(3):
        _fit_both(pair, x, y, method="partial_fit", classes=[0, 1, 2])
    ours, theirs = pair
    np.testing.assert_array_equal(ours.classes_, theirs.classes_)
    np.testing.assert_allclose(ours.predict_proba(x), theirs.predict_proba(x), rtol=1e-9)
    np.testing.assert_array_equal(ours.predict(x), theirs.predict(x))
    # and, as scikit-learn, the first call without classes is refused
    mine, other = _raises_both(_both(MLPClassifier, SkClassifier),
                               lambda est: est.partial_fit(x, y))
    assert mine == other


def test_warm_start_on_changed_classes_is_refused(data):
    x, labels, _ = data
    pair = _both(MLPClassifier, SkClassifier, warm_start=True, max_iter=2)
    _fit_both(pair, x, labels)
    before = pair[0].model_.params.copy()
    subset = labels == 0
    # a subset of the classes, and a new class: refused in the same words
    for y, rows in [(labels[~subset], ~subset), (np.where(subset, 7, labels), slice(None))]:
        mine, other = _raises_both(pair, lambda est: est.fit(x[rows], y))
        assert mine == other and "warm_start can only be used" in mine
    np.testing.assert_array_equal(pair[0].model_.params, before)
    # partial_fit (no warm start) accepts a subset and refuses unknown labels
    pf = _both(MLPClassifier, SkClassifier)
    _fit_both(pf, x, labels, method="partial_fit", classes=[0, 1, 2])
    _fit_both(pf, x[~subset], labels[~subset], method="partial_fit")
    mine, other = _raises_both(pf, lambda est: est.partial_fit(x, np.where(subset, 7, labels)))
    assert mine == other


def _diverging(cls, early_stopping):
    return cls(solver="sgd", learning_rate_init=10.0, max_iter=20, random_state=0,
               hidden_layer_sizes=(5,), early_stopping=early_stopping, batch_size=1000,
               shuffle=False)


def test_divergence_raises_sklearns_value_error(data):
    x, _, target = data
    messages = []
    for est in (_diverging(MLPRegressor, False), _diverging(SkRegressor, False)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            with pytest.raises(ValueError) as info:
                est.fit(x, target)
        messages.append(str(info.value))
        assert est.n_iter_ == 20 and len(est.loss_curve_) == 20
    assert messages[0].startswith(messages[1])
    # pynn's error is also its own DivergenceError, and the weights stay finite
    ours = _diverging(MLPRegressor, False)
    with pytest.raises(pynn.DivergenceError):
        ours.fit(x, target)
    assert isinstance(SolverDivergenceError("x"), ValueError)
    assert np.isfinite(ours.model_.params).all()


def test_divergence_with_early_stopping_restores_best_weights(data):
    x, _, target = data
    ours, theirs = _diverging(MLPRegressor, True), _diverging(SkRegressor, True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for est in (ours, theirs):
            est.fit(x, target)
    assert ours.n_iter_ == theirs.n_iter_ == 20
    assert len(ours.validation_scores_) == len(theirs.validation_scores_) == 20
    # the same split and the same steps: the same scores while they are
    # finite, NaN after (scikit-learn's weights are NaN from then on)
    mine, other = np.array(ours.validation_scores_), np.array(theirs.validation_scores_)
    np.testing.assert_array_equal(np.isnan(mine), np.isnan(other))
    finite = ~np.isnan(other)
    np.testing.assert_allclose(mine[finite], other[finite], rtol=1e-6)
    assert ours.best_validation_score_ == pytest.approx(theirs.best_validation_score_)
    np.testing.assert_allclose(ours.predict(x), theirs.predict(x), rtol=1e-9)


def test_early_stopping_matches_sklearn(data):
    x, labels, target = data
    for cls_ours, cls_theirs, y in [(MLPClassifier, SkClassifier, labels > 0),
                                    (MLPRegressor, SkRegressor, target)]:
        ours, theirs = _fit_both(_both(cls_ours, cls_theirs, early_stopping=True,
                                       n_iter_no_change=3, max_iter=60, **_DETERMINISTIC),
                                 x, y)
        assert ours.n_iter_ == theirs.n_iter_
        assert ours.best_loss_ is None and theirs.best_loss_ is None
        np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_,
                                   rtol=1e-9)
        np.testing.assert_allclose(ours.coefs_[0], theirs.coefs_[0], rtol=1e-8, atol=1e-12)


def test_sklearns_error_texts(data):
    x, labels, target = data
    # validation set too small
    pair = _both(MLPRegressor, SkRegressor, early_stopping=True, validation_fraction=0.1)
    mine, other = _raises_both(pair, lambda est: est.fit(x[:10], target[:10]))
    assert mine == other and mine.startswith("The validation set is too small")
    # the stratified split's own message, on the same binarized labels
    y = np.array(["cat"] * (len(x) - 1) + ["dog"])
    pair = _both(MLPClassifier, SkClassifier, early_stopping=True)
    mine, other = _raises_both(pair, lambda est: est.fit(x, y))
    assert mine == other and "least populated" in mine
    # partial_fit with classes different from the first call's
    pair = _both(MLPClassifier, SkClassifier)
    _fit_both(pair, x, labels, method="partial_fit", classes=[0, 1, 2])
    mine, other = _raises_both(pair, lambda est: est.partial_fit(x, labels, classes=[0, 1]))
    assert mine == other


def test_coefs_and_intercepts_can_be_assigned(data):
    x, labels, _ = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0).fit(x, labels)
        theirs = SkClassifier(hidden_layer_sizes=(5,), max_iter=30, random_state=4).fit(x, labels)
    ours.coefs_ = theirs.coefs_
    ours.intercepts_ = [b.tolist() for b in theirs.intercepts_]
    np.testing.assert_allclose(ours.predict_proba(x), theirs.predict_proba(x), rtol=1e-12)
    assert all(c.base is not None for c in ours.coefs_)  # still views of the network
    before = ours.model_.params.copy()
    bad = [
        ([theirs.coefs_[0]], ValueError, "2 arrays"),
        ([theirs.coefs_[0].T, theirs.coefs_[1]], ValueError, re.escape("shape (4, 5)")),
        ([np.full((4, 5), np.nan), theirs.coefs_[1]], ValueError, "NaN"),
        ([theirs.coefs_[0] + 1j, theirs.coefs_[1]], TypeError, "real"),
        (theirs.coefs_[0], TypeError, "list"),
    ]
    for value, exc, match in bad:
        with pytest.raises(exc, match=match):
            ours.coefs_ = value
    np.testing.assert_array_equal(ours.model_.params, before)
    with pytest.raises(ValueError, match="intercepts_"):
        ours.intercepts_ = [np.zeros(6), np.zeros(3)]


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_follows_x(data, dtype, solver):
    x, labels, target = data
    x = x.astype(dtype)
    params = dict(solver=solver, hidden_layer_sizes=(6,), max_iter=5, random_state=0)
    for cls_ours, cls_theirs, y in [(MLPClassifier, SkClassifier, labels),
                                    (MLPRegressor, SkRegressor, target)]:
        ours, theirs = _fit_both(_both(cls_ours, cls_theirs, **params), x, y)
        assert ours.model_.dtype == dtype
        # scikit-learn's lbfgs hands back SciPy's float64 weights; pynn's
        # stay in X's dtype with every solver
        theirs_dtype = np.float64 if solver == "lbfgs" else dtype
        for mine, other in zip(ours.coefs_ + ours.intercepts_,
                               theirs.coefs_ + theirs.intercepts_):
            assert mine.dtype == dtype and other.dtype == theirs_dtype
        out_ours = ours.predict(x) if cls_ours is MLPRegressor else ours.predict_proba(x)
        out_theirs = theirs.predict(x) if cls_ours is MLPRegressor else theirs.predict_proba(x)
        assert out_ours.dtype == dtype and out_theirs.dtype == theirs_dtype
        # the same initial weights in either dtype: the same model to its precision
        np.testing.assert_allclose(out_ours, out_theirs,
                                   rtol=2e-3 if dtype == np.float32 else 1e-6,
                                   atol=2e-3 if dtype == np.float32 else 1e-6)
    # other inputs become float64, as in scikit-learn
    ours = MLPRegressor(**params).fit((x * 10).astype(np.int64), target)
    assert ours.coefs_[0].dtype == np.float64


def test_dtype_parameter_overrides_x(data):
    x, _, target = data
    reg = MLPRegressor(hidden_layer_sizes=(6,), max_iter=3, random_state=0,
                       dtype="float32").fit(x, target)
    assert reg.model_.dtype == np.float32 and reg.coefs_[0].dtype == np.float32
    # outputs in X's dtype with the weights', as scikit-learn's promotion
    assert reg.predict(x).dtype == np.float64
    assert reg.predict(x.astype(np.float32)).dtype == np.float32
    # a warm start keeps the network's dtype whatever the new X
    warm = MLPRegressor(hidden_layer_sizes=(6,), max_iter=3, random_state=0,
                        warm_start=True).fit(x.astype(np.float32), target)
    warm.fit(x, target)
    assert warm.coefs_[0].dtype == np.float32


def test_a_refused_fit_changes_nothing(data):
    x, labels, _ = data
    clf = MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0).fit(x, labels)
    before = clf.predict_proba(x)
    clf.set_params(early_stopping=True)
    with pytest.raises(ValueError, match="number of classes"):
        clf.fit(x[:10], labels[:10] > 0)  # other classes, refused at the split
    np.testing.assert_array_equal(clf.classes_, [0, 1, 2])
    np.testing.assert_array_equal(clf.predict_proba(x), before)
    fresh = MLPClassifier()
    with pytest.raises(ValueError):
        fresh.partial_fit(x[:, :0], labels, classes=[0, 1, 2])
    assert not hasattr(fresh, "classes_")


def test_warm_start_across_solvers_and_early_stopping(data):
    # where scikit-learn fails on records the previous fit did not keep,
    # pynn starts them: lbfgs -> adam, adam -> adam with early stopping -> adam
    x, _, target = data
    reg = MLPRegressor(solver="lbfgs", hidden_layer_sizes=(5,), max_iter=5, random_state=0,
                       warm_start=True).fit(x, target)
    assert not hasattr(reg, "loss_curve_")
    reg.set_params(solver="adam").fit(x, target)
    assert len(reg.loss_curve_) == 5 and reg.best_loss_ == min(reg.loss_curve_)
    reg.set_params(early_stopping=True).fit(x, target)
    assert reg.best_loss_ is None and len(reg.validation_scores_) == 5
    reg.set_params(early_stopping=False).fit(x, target)
    assert len(reg.loss_curve_) == 15 and reg.best_loss_ == min(reg.loss_curve_[-5:])
