"""Sample and class weights: the loss kernels' row weights against
pynn/reference.py, and Sequential's sample_weight / class_weight with
Keras's "sum_over_batch_size" reduction (sum_i w_i l_i / batch size)."""
import numpy as np
import pytest

import pynn
from pynn import _losses, losses, reference
from conftest import assert_close, make_model
from test_losses import KERNELS, draw

ALL_KERNELS = dict(KERNELS, mse=(losses.MSE, lambda p, y: reference.mse(p, y),
                                 "real", "logits"))


def _draw(name, n, m, dtype, rng):
    code, twin, kind_y, kind_p = ALL_KERNELS[name]
    if kind_y == "real":
        return code, twin, (rng.standard_normal((n, m)).astype(dtype),
                            rng.standard_normal((n, m)).astype(dtype))
    return code, twin, draw(kind_y, kind_p, n, m, dtype, rng)


def _weighted(code, p, y, w):
    g = np.empty_like(p)
    return _losses.loss_value_grad(code, p, y, g, w), g


@pytest.mark.parametrize("name", sorted(ALL_KERNELS))
def test_row_weights_match_reference_row_by_row(name, dtype, rng):
    """sum_i w_i l_i / n and w_i dl_i / n, with l_i the twin on row i alone
    (every loss is a mean over the rows of the per-row loss)."""
    n, m = 13, 4
    code, twin, (p, y) = _draw(name, n, m, dtype, rng)
    w = rng.uniform(0, 3, size=n).astype(dtype)
    w[2] = 0
    value, grad = _weighted(code, p, y, w)
    rows = [twin(p[i:i + 1], y[i:i + 1]) for i in range(n)]
    ref_value = sum(float(w[i]) * rows[i][0] for i in range(n)) / n
    ref_grad = np.concatenate([float(w[i]) * rows[i][1] for i in range(n)]) / n
    assert value == pytest.approx(ref_value, rel=1e-5 if dtype == np.float32 else 1e-12)
    assert_close(grad, ref_grad, dtype)


@pytest.mark.parametrize("name", sorted(ALL_KERNELS))
def test_unit_weights_are_no_weights_bit_for_bit(name, dtype, rng):
    code, _, (p, y) = _draw(name, 9, 3, dtype, rng)
    g0 = np.empty_like(p)
    v0 = _losses.loss_value_grad(code, p, y, g0)
    v1, g1 = _weighted(code, p, y, np.ones(9, dtype=dtype))
    assert v0 == v1
    np.testing.assert_array_equal(g0, g1)


def test_row_weights_of_the_wrong_length_are_refused(rng):
    p = rng.standard_normal((4, 2))
    with pytest.raises(ValueError, match="row_weight must have 4"):
        _weighted(losses.MSE, p, p, np.ones(3))


# ---------------------------------------------------------------- Sequential

def _model(loss="mse", units=2, act="linear"):
    return make_model((5, "tanh"), (units, act), input_dim=3, loss=loss)


def _xy(rng, n=12):
    return rng.standard_normal((n, 3)), rng.standard_normal((n, 2))


def test_weight_two_is_a_duplicated_row_up_to_the_batch_size(rng):
    """sum_over_batch_size: weighting row 0 by 2 gives the gradient of the
    batch with row 0 twice, times (n + 1) / n; so an SGD step with the
    learning rate scaled by n / (n + 1) is the same step, to rounding."""
    x, y = _xy(rng)
    n = x.shape[0]
    w = np.ones(n)
    w[0] = 2
    weighted, duplicated = _model(), _model()
    weighted.optimizer.learning_rate = 0.1 * n / (n + 1)
    duplicated.optimizer.learning_rate = 0.1
    loss_w = weighted.train_on_batch(x, y, sample_weight=w)
    loss_d = duplicated.train_on_batch(np.vstack([x[:1], x]), np.vstack([y[:1], y]))
    assert loss_w * n == pytest.approx(loss_d * (n + 1), rel=1e-12)
    for a, b in zip(weighted.get_weights(), duplicated.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_zero_weights_drop_rows(rng):
    x, y = _xy(rng)
    n = x.shape[0]
    keep = np.arange(n) % 3 != 0
    weighted, dropped = _model(), _model()
    weighted.optimizer.learning_rate = 0.1 * n / keep.sum()
    dropped.optimizer.learning_rate = 0.1
    loss_w = weighted.train_on_batch(x, y, sample_weight=keep.astype(float))
    loss_d = dropped.train_on_batch(x[keep], y[keep])
    assert loss_w * n == pytest.approx(loss_d * keep.sum(), rel=1e-12)
    for a, b in zip(weighted.get_weights(), dropped.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_weighted_train_on_batch_matches_the_reference_step(rng):
    x, y = _xy(rng)
    w = rng.uniform(0, 2, size=x.shape[0])
    model = _model()
    (W1, b1, W2, b2) = model.get_weights()
    loss = model.train_on_batch(x, y, sample_weight=w)
    # the reference forward and backward pass, row weights applied to dL/dP
    z1 = x @ W1.T + b1
    a1 = np.tanh(z1)
    out = a1 @ W2.T + b2
    diff = out - y
    ref_loss = float(np.sum(w[:, None] * diff ** 2) / diff.size)
    g_out = 2 * w[:, None] * diff / diff.size
    gW2, gb2 = g_out.T @ a1, g_out.sum(0)
    g_a1 = g_out @ W2 * (1 - a1 ** 2)
    gW1, gb1 = g_a1.T @ x, g_a1.sum(0)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    lr = model.optimizer.learning_rate
    for got, before, g in zip(model.get_weights(), (W1, b1, W2, b2), (gW1, gb1, gW2, gb2)):
        np.testing.assert_allclose(got, before - lr * g, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("shuffle", [False, True])
def test_compiled_epoch_equals_train_on_batch_with_weights(rng, shuffle):
    x, y = _xy(rng, n=23)
    w = rng.uniform(0, 2, size=23)
    fitted, stepped = _model(), _model()
    order = None
    if shuffle:
        # the permutation fit draws from the model's generator, drawn alike
        order = make_model((5, "tanh"), (2, "linear"), input_dim=3).generator.permutation(23)
    fitted.fit(x, y, sample_weight=w, batch_size=5, epochs=1, shuffle=shuffle, verbose=0)
    rows = np.arange(23) if order is None else order
    losses_seen = []
    for start in range(0, 23, 5):
        r = rows[start:start + 5]
        losses_seen.append(stepped.train_on_batch(x[r], y[r], sample_weight=w[r]) * len(r))
    for a, b in zip(fitted.get_weights(), stepped.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert fitted.history.history["loss"][0] == pytest.approx(sum(losses_seen) / 23,
                                                              rel=1e-12)


def test_evaluate_with_weights_is_the_weighted_sum_over_the_count(rng):
    x, y = _xy(rng, n=11)
    w = rng.uniform(0, 2, size=11)
    model = _model()
    out = model.predict(x)
    expected = float(np.sum(w[:, None] * (out - y) ** 2) / (out.size))
    assert model.evaluate(x, y, sample_weight=w) == pytest.approx(expected, rel=1e-12)
    # chunked the same
    assert model.evaluate(x, y, batch_size=4, sample_weight=w) == \
        pytest.approx(expected, rel=1e-12)


def test_class_weight_is_sample_weight_from_the_labels(rng):
    x = rng.standard_normal((10, 3))
    labels = rng.integers(0, 3, size=10)
    table = {0: 1.0, 1: 2.5, 2: 0.5}
    for loss, y in (("sparse_categorical_crossentropy", labels),
                    ("categorical_crossentropy", np.eye(3)[labels])):
        by_class, by_sample = _model(loss, 3, "softmax"), _model(loss, 3, "softmax")
        a = by_class.train_on_batch(x, y, class_weight=table)
        b = by_sample.train_on_batch(x, y, sample_weight=np.array([table[k] for k in labels]))
        assert a == b
        for u, v in zip(by_class.get_weights(), by_sample.get_weights()):
            np.testing.assert_array_equal(u, v)


def test_class_weight_times_sample_weight_in_fit(rng):
    x = rng.standard_normal((10, 3))
    y = (rng.random(10) > 0.5).astype(float)
    sw = rng.uniform(0.5, 1.5, size=10)
    both, product = _model("binary_crossentropy", 1, "sigmoid"), \
        _model("binary_crossentropy", 1, "sigmoid")
    both.fit(x, y, sample_weight=sw, class_weight={0: 3.0}, shuffle=False, verbose=0)
    product.fit(x, y, sample_weight=sw * np.where(y == 0, 3.0, 1.0), shuffle=False,
                verbose=0)
    for u, v in zip(both.get_weights(), product.get_weights()):
        np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize("bad, match", [
    (np.ones(9), "1-D array of 10"),
    (np.ones((10, 1)), "1-D array of 10"),
    (np.r_[np.ones(9), np.nan], "finite values >= 0"),
    (np.r_[np.ones(9), -1.0], "finite values >= 0"),
])
def test_bad_sample_weights_are_refused_and_change_nothing(rng, bad, match):
    x, y = _xy(rng, n=10)
    model = _model()
    before = model.get_weights()
    copy = bad.copy()
    for call in (lambda: model.train_on_batch(x, y, sample_weight=bad),
                 lambda: model.fit(x, y, sample_weight=bad, verbose=0),
                 lambda: model.evaluate(x, y, sample_weight=bad)):
        with pytest.raises(ValueError, match=match):
            call()
    np.testing.assert_array_equal(bad, copy)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_class_weight_is_refused_for_regression_and_bad_keys(rng):
    x, y = _xy(rng, n=6)
    with pytest.raises(ValueError, match="classification losses, not to 'mse'"):
        _model().train_on_batch(x, y, class_weight={0: 2.0})
    clf = _model("sparse_categorical_crossentropy", 3, "softmax")
    labels = np.array([0, 1, 2, 0, 1, 2])
    with pytest.raises(ValueError, match="class indices in \\[0, 3\\), got 7"):
        clf.train_on_batch(x, labels, class_weight={7: 1.0})
    with pytest.raises(ValueError, match="finite and >= 0"):
        clf.train_on_batch(x, labels, class_weight={1: -1.0})
    with pytest.raises(TypeError, match="dict"):
        clf.train_on_batch(x, labels, class_weight=[1.0, 2.0])


def test_keras_namespace_passes_weights_through(rng):
    from pynn import keras
    x, y = _xy(rng, n=8)
    w = rng.uniform(0, 2, size=8)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    expected = float(np.sum(w[:, None] * (model.predict(x) - y) ** 2) / y.size)
    assert model.evaluate(x, y, sample_weight=w, verbose=0) == pytest.approx(expected,
                                                                             rel=1e-6)
    before = model.get_weights()
    model.fit(x, y, sample_weight=np.zeros(8), verbose=0)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)     # all weights 0: a zero gradient


# ------------------------------------------------------------ pynn.sklearn

@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_sklearn_weights_over_several_batches_and_partial_fit(rng, kind):
    """scikit-learn's weighted batches: loss, gradient and L2 term over the
    batch's sum of weights, batch by batch (batches of 20 of 50 rows)."""
    sk = pytest.importorskip("sklearn.neural_network")
    from pynn import sklearn as ours
    x = rng.standard_normal((50, 4))
    w = rng.uniform(0, 3, size=50)
    w[:5] = 0
    params = dict(solver="sgd", learning_rate_init=0.05, momentum=0.5, batch_size=20,
                  shuffle=False, hidden_layer_sizes=(5,), activation="tanh",
                  random_state=0, alpha=1e-2, max_iter=4)
    if kind == "classifier":
        y = (x[:, 0] + x[:, 1] > 0).astype(int)
        mine, theirs = ours.MLPClassifier(**params), sk.MLPClassifier(**params)
    else:
        y = x[:, 0] - 0.5 * x[:, 2]
        mine, theirs = ours.MLPRegressor(**params), sk.MLPRegressor(**params)
    with pytest.warns(Warning):     # both stop at max_iter
        mine.fit(x, y, sample_weight=w)
    with pytest.warns(Warning):
        theirs.fit(x, y, sample_weight=w)
    mine.partial_fit(x, y, sample_weight=w)
    theirs.partial_fit(x, y, sample_weight=w)
    for a, b in zip(mine.coefs_ + mine.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(mine.loss_curve_, theirs.loss_curve_, rtol=1e-9)
    with pytest.raises(ValueError, match="sample_weight"):
        mine.fit(x, y, sample_weight=np.ones(3))
