"""MLPRegressor(loss="poisson") against scikit-learn's own: the exp output,
the half Poisson deviance as loss_ and loss_curve_, every solver, sample
weights, early stopping, float32, and the targets it refuses."""
import pickle
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn", minversion="1.7")   # loss="poisson" came in 1.7

from sklearn.metrics import mean_poisson_deviance  # noqa: E402
from sklearn.neural_network import MLPRegressor as SkRegressor  # noqa: E402

from pynn import losses  # noqa: E402
from pynn.sklearn import MLPRegressor  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

# no shuffling: both sides take the same steps from the same initial weights
_PARAMS = dict(solver="sgd", learning_rate_init=0.05, momentum=0.0, batch_size=60,
               shuffle=False, hidden_layer_sizes=(6,), activation="tanh", random_state=0,
               alpha=0.0, max_iter=5, loss="poisson")


@pytest.fixture
def data():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(60, 5))
    rate = np.exp(0.4 * x[:, 0] - 0.3 * x[:, 1])
    counts = rng.poisson(np.stack([rate, 2 * rate], axis=1)).astype(float)
    weights = rng.uniform(0.2, 3.0, size=60)
    return x, counts, weights


def _fit_both(x, y, sample_weight=None, **params):
    params = dict(_PARAMS, **params)
    ours, theirs = MLPRegressor(**params), SkRegressor(**params)
    ours.fit(x, y, sample_weight=sample_weight)
    theirs.fit(x, y, sample_weight=sample_weight)
    return ours, theirs


def _assert_same(ours, theirs, x, rtol=1e-8, curve_rtol=1e-12):
    assert ours.out_activation_ == theirs.out_activation_ == "exp"
    for mine, other in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(mine, other, rtol=rtol, atol=1e-12)
    if hasattr(theirs, "loss_curve_"):
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=curve_rtol)
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=max(curve_rtol, 1e-12))
    np.testing.assert_allclose(ours.predict(x), theirs.predict(x), rtol=rtol)


@pytest.mark.parametrize("outputs", [1, 2])
@pytest.mark.parametrize("params", [
    dict(),                                               # one batch an epoch
    dict(batch_size=16, momentum=0.9),                    # several, Nesterov momentum
])
def test_stochastic_solvers_as_sklearn(data, outputs, params):
    x, counts, _ = data
    y = counts[:, 0] if outputs == 1 else counts
    ours, theirs = _fit_both(x, y, **params)
    _assert_same(ours, theirs, x)
    assert ours.predict(x).shape == theirs.predict(x).shape


def test_adam_as_sklearn(data):
    # pynn's Adam adds epsilon to the bias-corrected sqrt(v_hat), scikit-learn's
    # to sqrt(v) with the correction in the step size: the same steps but for
    # epsilon's share, 1e-8 here
    x, counts, _ = data
    ours, theirs = _fit_both(x, counts, solver="adam", batch_size=16, learning_rate_init=0.01)
    _assert_same(ours, theirs, x, rtol=1e-4, curve_rtol=1e-5)


def test_l2_term_as_sklearn(data):
    # scikit-learn adds each batch's L2 term with the kernels before its
    # update, pynn's epoch record with the kernels after the epoch: the
    # curves agree to the size of one epoch's change of 0.5 alpha |W|^2 / n
    x, counts, _ = data
    ours, theirs = _fit_both(x, counts[:, 0], alpha=1e-3)
    _assert_same(ours, theirs, x, curve_rtol=1e-5)


def test_lbfgs_as_sklearn_and_loss_is_the_half_deviance(data):
    x, counts, _ = data
    ours, theirs = _fit_both(x, counts, solver="lbfgs", alpha=1e-3, max_iter=15)
    assert ours.n_iter_ == theirs.n_iter_
    _assert_same(ours, theirs, x, rtol=1e-6, curve_rtol=1e-9)
    # loss_ is the objective at the final weights: per output, half the mean
    # Poisson deviance of the predictions, summed over the outputs, plus L2
    pred = ours.predict(x)
    data_loss = sum(0.5 * mean_poisson_deviance(counts[:, k], pred[:, k]) for k in range(2))
    l2 = 0.5 * 1e-3 * sum(float((w ** 2).sum()) for w in ours.coefs_) / x.shape[0]
    assert ours.loss_ == pytest.approx(data_loss + l2, rel=1e-10)


@pytest.mark.parametrize("solver", ["sgd", "lbfgs"])
def test_sample_weight_as_sklearn(data, solver):
    x, counts, weights = data
    ours, theirs = _fit_both(x, counts[:, 0], weights, solver=solver, batch_size=20)
    _assert_same(ours, theirs, x, rtol=1e-7, curve_rtol=1e-9)


def test_early_stopping_scores_exp_predictions_as_sklearn(data):
    x, counts, _ = data
    ours, theirs = _fit_both(x, counts[:, 0], early_stopping=True, validation_fraction=0.2,
                             batch_size=48, max_iter=8)
    np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_, rtol=1e-9)
    _assert_same(ours, theirs, x)


def test_partial_fit_as_sklearn(data):
    x, counts, _ = data
    ours, theirs = MLPRegressor(**_PARAMS), SkRegressor(**_PARAMS)
    for _ in range(3):
        ours.partial_fit(x, counts[:, 0])
        theirs.partial_fit(x, counts[:, 0])
    _assert_same(ours, theirs, x)


def test_float32_stays_float32(data):
    x, counts, _ = data
    x32 = x.astype(np.float32)
    ours, theirs = _fit_both(x32, counts[:, 0].astype(np.float32))
    assert ours.coefs_[0].dtype == ours.predict(x32).dtype == np.float32
    _assert_same(ours, theirs, x32, rtol=2e-5, curve_rtol=2e-6)


def test_predict_is_the_exp_of_the_network_output(data):
    x, counts, _ = data
    ours = MLPRegressor(**_PARAMS).fit(x, counts)
    assert isinstance(ours.model_.loss, losses.HalfPoissonDeviance)
    np.testing.assert_array_equal(ours.predict(x), np.exp(ours.model_.predict(x)))
    assert (ours.predict(x) > 0).all()


def test_targets_poisson_cannot_take_are_refused(data):
    x, counts, _ = data
    y = counts[:, 0].copy()
    y[4] = -1.0
    with pytest.raises(ValueError, match=r"requires non-negative y and sum\(y\) > 0"):
        MLPRegressor(**_PARAMS).fit(x, y)
    with pytest.raises(ValueError, match=r"requires non-negative y and sum\(y\) > 0"):
        MLPRegressor(**_PARAMS).fit(x, np.zeros(60))
    # a partial_fit batch of zeros is a valid batch of counts
    model = MLPRegressor(**_PARAMS).partial_fit(x, counts[:, 0])
    before = [w.copy() for w in model.coefs_]
    model.partial_fit(x, np.zeros(60))
    assert not np.array_equal(before[0], model.coefs_[0])
    with pytest.raises(ValueError, match="non-negative"):
        model.partial_fit(x, y)


def test_a_warm_start_with_another_loss_is_refused(data):
    x, counts, _ = data
    model = MLPRegressor(**dict(_PARAMS, warm_start=True)).fit(x, counts[:, 0])
    coefs = [w.copy() for w in model.coefs_]
    model.set_params(loss="squared_error")
    with pytest.raises(ValueError, match="does not match the fitted network's loss 'poisson'"):
        model.fit(x, counts[:, 0])
    for before, after in zip(coefs, model.coefs_):
        np.testing.assert_array_equal(before, after)
    # without warm start it refits from scratch with the new loss
    model.set_params(warm_start=False).fit(x, counts[:, 0])
    assert model.out_activation_ == "identity"


def test_unknown_loss_is_refused(data):
    x, counts, _ = data
    with pytest.raises(ValueError, match=r"loss must be one of.*'poisson'.*got 'huber'"):
        MLPRegressor(**dict(_PARAMS, loss="huber")).fit(x, counts[:, 0])


def test_squared_error_is_unchanged_by_the_loss_parameter(data):
    x, counts, _ = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours, theirs = _fit_both(x, counts[:, 0], loss="squared_error")
    assert ours.out_activation_ == theirs.out_activation_ == "identity"
    np.testing.assert_allclose(ours.predict(x), theirs.predict(x), rtol=1e-8)


def test_pickle_keeps_the_poisson_network(data):
    x, counts, _ = data
    model = MLPRegressor(**_PARAMS).fit(x, counts)
    back = pickle.loads(pickle.dumps(model))
    assert back.out_activation_ == "exp"
    assert isinstance(back.model_.loss, losses.HalfPoissonDeviance)
    np.testing.assert_array_equal(back.predict(x), model.predict(x))
    # and it trains on as the original does
    for est in (model, back):
        est.partial_fit(x, counts)
    np.testing.assert_array_equal(back.predict(x), model.predict(x))


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_sparse_input_as_sklearn(data, fmt):
    scipy_sparse = pytest.importorskip("scipy.sparse")
    x, counts, _ = data
    x = np.where(np.abs(x) < 0.8, 0.0, x)
    sparse = scipy_sparse.csr_matrix(x) if fmt == "csr" else scipy_sparse.csc_matrix(x)
    ours, theirs = _fit_both(sparse, counts[:, 0], batch_size=16)
    _assert_same(ours, theirs, sparse)
