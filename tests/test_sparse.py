"""Sparse x (pynn._sparse, the CSR gather of csrc/dense.pyx): every result is
that of the same x densified, bit for bit where the same steps run; the
matrix is never densified whole, its values are checked, never modified."""
import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp

import pynn
from pynn import _sparse
from pynn._dense import CSRRows

from conftest import make_model


def _sparse_data(rng, n=90, d=7, density=0.3, n_out=2):
    x = rng.normal(size=(n, d))
    x[rng.random(x.shape) > density] = 0.0
    x[3] = 0.0                                  # a row with nothing stored
    y = np.tanh(x @ rng.normal(size=(d, n_out))) + 0.1 * rng.normal(size=(n, n_out))
    return x, y


def _with_index_dtype(m, index_dtype):
    # assigned: scipy's constructors choose int32 where the values fit
    m = sp.csr_matrix(m)
    m.indices, m.indptr = m.indices.astype(index_dtype), m.indptr.astype(index_dtype)
    return m


def _fitted(x, y, dtype, optimizer, shuffle, **fit):
    model = make_model((5, "tanh"), (2, "linear"), input_dim=x.shape[1], dtype=dtype,
                       seed=3, optimizer=optimizer, metrics=["mae"])
    history = model.fit(x, y, epochs=3, batch_size=16, shuffle=shuffle, verbose=0, **fit)
    return model, history.history


def _snapshot(m):
    return [a.copy() for a in (m.data, m.indices, m.indptr)]


# ----------------------------------------------------------------- the gather

@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
def test_gathered_rows_are_the_dense_rows(rng, dtype, index_dtype):
    # predict's chunks densify rows through the gather; a linear one-layer
    # network with W = I returns them as they were gathered
    x, _ = _sparse_data(rng)
    model = make_model((7, "linear"), input_dim=7, dtype=dtype)
    model.set_weights([np.eye(7), np.zeros(7)])
    m = _with_index_dtype(x, index_dtype)
    rows = _sparse.as_rows(m, dtype)
    assert rows.indices.dtype == index_dtype
    dense = x.astype(dtype)
    for chunk in (1, 4, 90):
        np.testing.assert_array_equal(model.predict(rows, batch_size=chunk), dense)
    picked = np.array([5, 0, 89, 5, 3, -1])
    np.testing.assert_array_equal(model.predict(rows[picked]), dense[picked])
    np.testing.assert_array_equal(model.predict(rows[10:20]), dense[10:20])
    assert rows[10:20].nnz == np.count_nonzero(dense[10:20])


def test_duplicates_and_unsorted_indices_sum_as_scipy_does_in_a_copy(rng, dtype):
    # row 0 stores column 2 twice and its columns out of order
    indptr = np.array([0, 3, 4])
    indices = np.array([2, 0, 2])
    data = np.array([0.5, 1.0, 0.25, 2.0])
    m = sp.csr_matrix((data, np.append(indices, 1), indptr), shape=(2, 3))
    assert not m.has_canonical_format
    before = _snapshot(m)
    model = make_model((3, "linear"), input_dim=3, dtype=dtype)
    model.set_weights([np.eye(3), np.zeros(3)])
    np.testing.assert_array_equal(model.predict(m), m.toarray().astype(dtype))
    assert model.predict(m)[0, 2] == 0.75
    for a, b in zip(_snapshot(m), before):
        np.testing.assert_array_equal(a, b)
    # the compiled gather itself adds a column stored twice, as toarray does
    raw = CSRRows(np.array([0, 3]), indices.astype(np.int64), data[:3].astype(dtype), 3)
    np.testing.assert_array_equal(model.predict(raw), [[1.0, 0.0, 0.75]])


@pytest.mark.parametrize("indptr, indices, message", [
    ([0, 2, 1], [0, 1], "indptr"),           # going back
    ([0, 1, 3], [0, 1], "indptr"),           # past the stored values
    ([-1, 1, 2], [0, 1], "indptr"),
    ([0, 1, 2], [0, 3], "indices"),          # a column past the width
    ([0, 1, 2], [-1, 0], "indices"),
])
def test_csr_rows_refuse_what_would_read_out_of_bounds(indptr, indices, message):
    with pytest.raises(ValueError, match=message):
        CSRRows(np.array(indptr, dtype=np.int64), np.array(indices, dtype=np.int64),
                np.ones(len(indices)), 3)


def _corrupt(fmt, rng):
    a = sp.random(6, 7, density=0.4, format="csr", random_state=0)
    if fmt == "csr":
        a.indices = a.indices.copy()
        a.indices[0] = 70                    # a column past the 7
    elif fmt == "csr-indptr":
        a.indptr = a.indptr.copy()
        a.indptr[1] = 10 ** 6                # offsets that run past the values
    elif fmt == "csc":
        a = a.tocsc()
        a.indices = a.indices.copy()
        a.indices[0] = -3                    # a negative row
    else:
        a = a.tocoo()
        a.row = a.row.copy()
        a.row[0] = 60
    return a


@pytest.mark.parametrize("fmt", ["csr", "csr-indptr", "csc", "coo"])
def test_malformed_sparse_matrices_are_refused_before_scipy_or_pynn_reads_them(rng, fmt):
    # SciPy's conversions and sum_duplicates do not bound-check corrupt index
    # arrays: pynn checks them first, without touching the user's matrix
    x = _corrupt(fmt, rng)
    kept = [a.copy() for a in (getattr(x, "indices", None), getattr(x, "indptr", None),
                               getattr(x, "row", None), x.data) if a is not None]
    m = make_model((2, "linear"), input_dim=7)
    before = m.params.copy()
    with pytest.raises(ValueError, match=f"x is a malformed sparse {fmt.split('-')[0]}"):
        m.fit(x, np.zeros((6, 2)), epochs=1, verbose=0)
    np.testing.assert_array_equal(m.params, before)
    now = [a for a in (getattr(x, "indices", None), getattr(x, "indptr", None),
                       getattr(x, "row", None), x.data) if a is not None]
    for a, b in zip(now, kept):
        np.testing.assert_array_equal(a, b)


def test_csr_rows_refuse_mixed_or_other_dtypes():
    with pytest.raises(TypeError, match="int32 or both int64"):
        CSRRows(np.array([0, 1], dtype=np.int32), np.array([0], dtype=np.int64),
                np.ones(1), 2)
    with pytest.raises(TypeError, match="float32 or float64"):
        CSRRows(np.array([0, 1]), np.array([0]), np.ones(1, dtype=np.int64), 2)


# -------------------------------------------------------------- Sequential

@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("fmt", ["csr", "csc", "coo", "lil", "csr_array", "int32"])
def test_fit_sparse_equals_fit_dense(rng, dtype, optimizer, shuffle, fmt):
    x, y = _sparse_data(rng)
    m = {"csr": sp.csr_matrix, "csc": sp.csc_matrix, "coo": sp.coo_matrix,
         "lil": sp.lil_matrix, "csr_array": sp.csr_array,
         "int32": lambda a: _with_index_dtype(a, np.int32)}[fmt](x)
    before = _snapshot(m.tocsr()) if fmt in ("csr", "csr_array", "int32") else None
    dense, dense_logs = _fitted(x, y, dtype, optimizer, shuffle)
    model, logs = _fitted(m, y, dtype, optimizer, shuffle)
    np.testing.assert_array_equal(model.params, dense.params)
    assert logs == dense_logs
    np.testing.assert_array_equal(model.predict(m), dense.predict(x))
    assert model.evaluate(m, y) == dense.evaluate(x, y)
    if before is not None:
        for a, b in zip(_snapshot(m), before):
            np.testing.assert_array_equal(a, b)


def test_fit_sparse_with_validation_and_weights_equals_dense(rng, dtype):
    x, y = _sparse_data(rng)
    w = rng.uniform(0.5, 2.0, size=x.shape[0])
    dense, dense_logs = _fitted(x, y, dtype, "adam", True, validation_split=0.2,
                                sample_weight=w)
    model, logs = _fitted(sp.csr_matrix(x), y, dtype, "adam", True, validation_split=0.2,
                          sample_weight=w)
    np.testing.assert_array_equal(model.params, dense.params)
    assert logs == dense_logs
    dense, dense_logs = _fitted(x, y, dtype, "sgd", False,
                                validation_data=(x[:20], y[:20]))
    model, logs = _fitted(sp.csr_matrix(x), y, dtype, "sgd", False,
                          validation_data=(sp.csr_matrix(x[:20]), y[:20]))
    assert logs == dense_logs


def test_train_on_batch_and_gradients_sparse_equal_dense(rng, dtype):
    x, y = _sparse_data(rng)
    dense = make_model((5, "relu"), (2, "linear"), input_dim=7, dtype=dtype, seed=1,
                       optimizer="adam")
    model = make_model((5, "relu"), (2, "linear"), input_dim=7, dtype=dtype, seed=1,
                       optimizer="adam")
    for start in range(0, 90, 30):
        rows = slice(start, start + 30)
        assert model.train_on_batch(sp.csr_matrix(x[rows]), y[rows]) == \
            dense.train_on_batch(x[rows], y[rows])
    np.testing.assert_array_equal(model.params, dense.params)
    loss, grads = model.gradients(sp.csc_matrix(x), y)
    dense_loss, dense_grads = dense.gradients(x, y)
    assert loss == dense_loss
    for g, h in zip(grads, dense_grads):
        np.testing.assert_array_equal(g, h)


def test_a_stream_of_sparse_batches_trains_as_the_dense_stream(rng, dtype):
    x, y = _sparse_data(rng)
    models = []
    for make_x in (np.asarray, sp.csr_matrix):
        model = make_model((5, "tanh"), (2, "linear"), input_dim=7, dtype=dtype, seed=3)
        model.fit(lambda: ((make_x(x[i:i + 10]), y[i:i + 10]) for i in range(0, 90, 10)),
                  epochs=2, steps_per_epoch=9, verbose=0)
        models.append(model)
    np.testing.assert_array_equal(models[0].params, models[1].params)


def test_sparse_values_of_another_dtype_are_converted_once(rng):
    x, y = _sparse_data(rng)
    m32 = sp.csr_matrix(x.astype(np.float32))
    dense, _ = _fitted(x.astype(np.float32).astype(np.float64), y, np.float64, "sgd", False)
    model, _ = _fitted(m32, y, np.float64, "sgd", False)
    np.testing.assert_array_equal(model.params, dense.params)
    assert m32.dtype == np.float32
    ints = sp.csr_matrix((x * 3).astype(np.int64))
    model = make_model((2, "linear"), input_dim=7, dtype=np.float32)
    np.testing.assert_array_equal(model.predict(ints),
                                  model.predict(ints.toarray().astype(np.float32)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_sparse_values_are_refused_before_any_step(rng, bad):
    x, y = _sparse_data(rng)
    m = sp.csr_matrix(x)
    m.data[5] = bad
    model = make_model((4, "tanh"), (2, "linear"), input_dim=7, seed=2)
    start = model.params.copy()
    for call in (lambda: model.fit(m, y, epochs=1, verbose=0),
                 lambda: model.train_on_batch(m, y), lambda: model.predict(m),
                 lambda: model.evaluate(m, y), lambda: model.gradients(m, y)):
        with pytest.raises(ValueError, match="x contains 1 NaN or infinite"):
            call()
    np.testing.assert_array_equal(model.params, start)
    assert model.optimizer.iterations == 0


def test_sparse_values_that_overflow_the_models_dtype_are_refused(rng):
    x, y = _sparse_data(rng)
    m = sp.csr_matrix(x)
    m.data[0] = 1e39                                # beyond float32
    model = make_model((2, "linear"), input_dim=7, dtype=np.float32)
    with pytest.raises(ValueError, match="x"):
        model.fit(m, y, verbose=0)
    # two stored values of one column that sum past float64's range
    dup = sp.csr_matrix((np.array([1e308, 1e308]), np.array([1, 1]), np.array([0, 2])),
                        shape=(1, 7))
    model = make_model((2, "linear"), input_dim=7)
    with pytest.raises(ValueError, match="NaN or infinite"):
        model.predict(dup)


def test_sparse_shapes_and_kinds_are_refused_by_name(rng):
    model = make_model((2, "linear"), input_dim=7)
    with pytest.raises(ValueError, match="x has 5 features"):
        model.predict(sp.csr_matrix(np.ones((3, 5))))
    with pytest.raises(ValueError, match="empty"):
        model.predict(sp.csr_matrix((0, 7)))
    with pytest.raises(TypeError, match="real numbers"):
        model.predict(sp.csr_matrix(np.ones((3, 7), dtype=complex)))
    if hasattr(sp, "coo_array"):
        one_d = sp.coo_array(np.ones(7))
        if one_d.ndim == 1:
            with pytest.raises(ValueError, match="2-D"):
                model.predict(one_d)
    with pytest.raises(ValueError, match="y is missing"):
        model.fit(sp.csr_matrix(np.ones((3, 7))), verbose=0)


def test_pynn_keras_takes_sparse_x_as_keras_3_does(rng):
    from pynn import keras
    from pynn.keras import layers
    x, y = _sparse_data(rng)
    runs = []
    for data in (x, sp.csr_array(x)):
        keras.utils.set_random_seed(4)
        model = keras.Sequential([keras.Input(shape=(7,)), layers.Dense(4, activation="relu"),
                                  layers.Dense(2)], dtype="float64")
        model.compile(optimizer="adam", loss="mse")
        history = model.fit(data, y, epochs=2, batch_size=10, validation_split=0.2, verbose=0)
        runs.append((history.history, model.predict(data), model.evaluate(data, y, verbose=0)))
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    assert runs[0][2] == runs[1][2]


# ------------------------------------------------- never densified whole

class _NoWholeDensify(sp.csr_matrix):
    """A CSR matrix that refuses to be made dense."""

    def toarray(self, *args, **kwargs):
        raise AssertionError("toarray called")

    def todense(self, *args, **kwargs):
        raise AssertionError("todense called")

    def __array__(self, *args, **kwargs):
        raise AssertionError("made an array")


def test_no_code_path_densifies_the_matrix(rng):
    x, y = _sparse_data(rng)
    m = _NoWholeDensify(x)
    model = make_model((4, "tanh"), (2, "linear"), input_dim=7, metrics=["mae"])
    model.fit(m, y, epochs=2, batch_size=8, validation_split=0.1, verbose=0)
    model.train_on_batch(m, y)
    model.predict(m)
    model.evaluate(m, y)


def test_a_large_very_sparse_matrix_is_never_dense_in_memory():
    # 4000 x 50000 float32 would take 800 MB dense; 2000 values are stored
    rng = np.random.default_rng(0)
    n, d = 4000, 50_000
    m = sp.random(n, d, density=1e-5, format="csr", dtype=np.float32, random_state=rng)
    y = rng.normal(size=(n, 1))
    model = make_model((2, "tanh"), (1, "linear"), input_dim=d, dtype=np.float32)
    tracemalloc.start()
    try:
        model.fit(m, y, epochs=1, batch_size=100, verbose=0)
        model.predict(m)
        model.evaluate(m, y)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # the batch buffer (100 rows) and predict's chunks (CHUNK_ELEMENTS values)
    budget = 4 * (100 * d + _sparse.CHUNK_ELEMENTS + 2 * d * 2)
    assert peak < 2 * budget < n * d * 4 / 10


# ----------------------------------------------------------- pynn.sklearn

sklearn = pytest.importorskip("sklearn", minversion="1.6")


def _estimators():
    from pynn.sklearn import MLPClassifier, MLPRegressor
    return MLPClassifier, MLPRegressor


def _targets(rng, x, kind):
    if kind == "classifier":
        return np.array(["a", "b", "c"])[(x[:, 0] > 0).astype(int) + (x[:, 1] > 0)]
    return x[:, :2] @ np.array([[1.0, -0.5], [0.3, 2.0]]) + 0.1 * rng.normal(size=(len(x), 2))


_STOCHASTIC = dict(hidden_layer_sizes=(6,), activation="tanh", random_state=0, max_iter=4,
                   batch_size=16, alpha=1e-3, learning_rate_init=0.01)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("kind", ["classifier", "regressor"])
@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("fmt", [sp.csr_matrix, sp.csc_array])
@pytest.mark.parametrize("x_dtype", [np.float32, np.float64])
def test_estimators_fit_sparse_as_dense_bit_for_bit(rng, kind, solver, fmt, x_dtype):
    x, _ = _sparse_data(rng)
    x = x.astype(x_dtype)
    y = _targets(rng, x, kind)
    estimator = _estimators()[kind == "regressor"]
    m = fmt(x)
    before = _snapshot(m)
    for extra in ({}, {"early_stopping": True, "validation_fraction": 0.2}):
        params = dict(_STOCHASTIC, solver=solver, **extra)
        dense = estimator(**params).fit(x, y)
        ours = estimator(**params).fit(m, y)
        for a, b in zip(ours.coefs_ + ours.intercepts_, dense.coefs_ + dense.intercepts_):
            assert a.dtype == x_dtype
            np.testing.assert_array_equal(a, b)
        assert ours.loss_curve_ == dense.loss_curve_
        assert ours.validation_scores_ == dense.validation_scores_
        np.testing.assert_array_equal(ours.predict(m), dense.predict(x))
        assert ours.score(m, y) == dense.score(x, y)
        if kind == "classifier":
            np.testing.assert_array_equal(ours.predict_proba(m), dense.predict_proba(x))
    # partial_fit and sample weights (one compiled step per batch)
    w = rng.uniform(0.5, 2.0, size=len(x))
    dense, ours = estimator(**dict(_STOCHASTIC, solver=solver)), \
        estimator(**dict(_STOCHASTIC, solver=solver))
    extra = {"classes": np.unique(y)} if kind == "classifier" else {}
    for _ in range(2):
        dense.partial_fit(x, y, sample_weight=w, **extra)
        ours.partial_fit(m, y, sample_weight=w, **extra)
    np.testing.assert_array_equal(ours.model_.params, dense.model_.params)
    for a, b in zip(_snapshot(m), before):
        np.testing.assert_array_equal(a, b)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_lbfgs_on_sparse_x_as_on_dense(rng, kind, monkeypatch):
    x, _ = _sparse_data(rng)
    y = _targets(rng, x, kind)
    estimator = _estimators()[kind == "regressor"]
    params = dict(hidden_layer_sizes=(5,), activation="tanh", solver="lbfgs", random_state=0,
                  max_iter=30, alpha=1e-3)
    dense = estimator(**params).fit(x, y)
    # one chunk: the full batch in one step, as for the dense x
    ours = estimator(**params).fit(sp.csr_matrix(x), y)
    np.testing.assert_array_equal(ours.model_.params, dense.model_.params)
    # chunks of 8 rows: the gradient summed chunk by chunk, rounded otherwise
    monkeypatch.setattr(_sparse, "CHUNK_ELEMENTS", 8 * x.shape[1])
    ours = estimator(**params).fit(sp.csr_matrix(x), y)
    np.testing.assert_allclose(ours.loss_, dense.loss_, rtol=1e-6)
    np.testing.assert_allclose(ours.predict(sp.csr_matrix(x)) if kind == "regressor"
                               else ours.predict_proba(sp.csr_matrix(x)),
                               dense.predict(x) if kind == "regressor"
                               else dense.predict_proba(x), rtol=1e-5, atol=1e-7)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_estimators_refuse_non_finite_sparse_values(rng):
    MLPClassifier, MLPRegressor = _estimators()
    x, _ = _sparse_data(rng)
    y = _targets(rng, x, "regressor")
    m = sp.csr_matrix(x)
    m.data[2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        MLPRegressor(max_iter=2).fit(m, y)
    fitted = MLPRegressor(max_iter=2, random_state=0).fit(x, y)
    start = fitted.model_.params.copy()
    with pytest.raises(ValueError, match="NaN"):
        fitted.predict(m)
    with pytest.raises(ValueError, match="NaN"):
        fitted.partial_fit(m, y)
    np.testing.assert_array_equal(fitted.model_.params, start)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_estimators_convert_other_formats_as_sklearn_does(rng):
    MLPClassifier, _ = _estimators()
    x, _ = _sparse_data(rng)
    y = _targets(rng, x, "classifier")
    dense = MLPClassifier(**_STOCHASTIC).fit(x, y)
    for fmt in (sp.coo_matrix, sp.lil_array, sp.dok_matrix, sp.bsr_matrix):
        ours = MLPClassifier(**_STOCHASTIC).fit(fmt(x), y)
        np.testing.assert_array_equal(ours.model_.params, dense.model_.params)
