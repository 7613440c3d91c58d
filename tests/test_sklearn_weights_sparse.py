"""scikit-learn's behaviour for sample_weight (weighting the loss) and sparse
X (densified batch by batch in the compiled gather), checked against
scikit-learn's own estimators (MLPRegressor's Poisson loss:
tests/test_sklearn_poisson.py)."""
import numpy as np
import pytest

pytest.importorskip("sklearn", minversion="1.6")
scipy_sparse = pytest.importorskip("scipy.sparse")

from sklearn.neural_network import MLPClassifier as SkClassifier  # noqa: E402

from pynn.sklearn import MLPClassifier  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

# full batch, no shuffling: both sides take the same steps from the same
# initial weights (drawn from random_state as scikit-learn draws them)
_PARAMS = dict(solver="sgd", learning_rate_init=0.05, momentum=0.0, batch_size=60,
               shuffle=False, hidden_layer_sizes=(6,), activation="tanh", random_state=0,
               alpha=1e-3, max_iter=5)


@pytest.fixture
def data():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(60, 5))
    x[rng.random(x.shape) < 0.6] = 0.0
    labels = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0)
    target = np.exp(0.3 * x[:, 0] + 0.2 * x[:, 1])
    weights = rng.uniform(0.2, 3.0, size=60)
    return x, labels, target, weights


def _compare(ours, theirs, x):
    for mine, other in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(mine, other, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-6)


@pytest.mark.parametrize("solver", ["sgd", "lbfgs"])
def test_sample_weight_as_sklearn(data, solver):
    x, labels, _, weights = data
    params = dict(_PARAMS, solver=solver)
    ours, theirs = MLPClassifier(**params), SkClassifier(**params)
    ours.fit(x, labels, sample_weight=weights)
    theirs.fit(x, labels, sample_weight=weights)
    np.testing.assert_allclose(ours.predict_proba(x), theirs.predict_proba(x), rtol=1e-6)
    # and in early stopping's validation score
    es = dict(params, solver="sgd", early_stopping=True)
    ours, theirs = MLPClassifier(**es), SkClassifier(**es)
    ours.fit(x, labels, sample_weight=weights)
    theirs.fit(x, labels, sample_weight=weights)
    np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_, rtol=1e-9)


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_sparse_input_as_sklearn(data, fmt):
    x, labels, _, _ = data
    sparse = scipy_sparse.csr_matrix(x) if fmt == "csr" else scipy_sparse.csc_matrix(x)
    ours, theirs = MLPClassifier(**_PARAMS), SkClassifier(**_PARAMS)
    ours.fit(sparse, labels)
    theirs.fit(sparse, labels)
    _compare(ours, theirs, x)
    np.testing.assert_allclose(ours.predict_proba(sparse), theirs.predict_proba(sparse),
                               rtol=1e-8)
