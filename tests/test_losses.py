"""Loss kernels against pynn/reference.py and finite differences, and the
losses in a model."""
import contextlib

import numpy as np
import pytest

import pynn
from pynn import _losses, losses, reference
from pynn.training.runners import run_batches
from conftest import assert_close, central_differences, make_model


@pytest.mark.parametrize("m", [1, 3, 7, 8, 9, 16, 17, 30])
def test_mse_value_and_gradient_match_reference(dtype, rng, m):
    # widths below, at and past the kernel's 8 partial sums of a row, and tails
    p = rng.standard_normal((17, m)).astype(dtype)
    y = rng.standard_normal((17, m)).astype(dtype)
    g = np.empty_like(p)
    value = _losses.loss_value_grad(losses.MSE, p, y, g)
    ref_value, ref_grad = reference.mse(p, y)
    assert value == pytest.approx(ref_value, rel=1e-6 if dtype == np.float32 else 1e-13)
    assert_close(g, ref_grad, dtype)
    w = rng.uniform(0, 2, size=17).astype(dtype)
    value = _losses.loss_value_grad(losses.MSE, p, y, g, w)
    rows = [reference.mse(p[i:i + 1], y[i:i + 1]) for i in range(17)]
    assert value == pytest.approx(sum(float(w[i]) * rows[i][0] for i in range(17)) / 17,
                                  rel=1e-6 if dtype == np.float32 else 1e-12)
    assert_close(g, np.concatenate([float(w[i]) * rows[i][1] for i in range(17)]) / 17, dtype)


def test_mse_is_mean_over_every_element():
    p = np.array([[1.0, 2.0], [3.0, 4.0]])
    y = np.zeros((2, 2))
    assert pynn.MeanSquaredError()(y, p) == pytest.approx((1 + 4 + 9 + 16) / 4)


def test_mse_gradient_matches_central_differences(rng):
    p = rng.standard_normal((5, 2))
    y = rng.standard_normal((5, 2))
    g = np.empty_like(p)
    _losses.loss_value_grad(losses.MSE, p, y, g)
    numeric = central_differences(lambda: reference.mse(p, y)[0], p, 1e-6)
    for idx in np.ndindex(p.shape):
        assert g[idx] == pytest.approx(numeric[idx], rel=1e-6, abs=1e-9)


def test_get_by_name_and_object():
    assert isinstance(losses.get("mse"), pynn.MeanSquaredError)
    assert isinstance(losses.get("mean_squared_error"), pynn.MeanSquaredError)
    obj = pynn.MeanSquaredError()
    assert losses.get(obj) is obj
    with pytest.raises(ValueError, match="'nope'.*valid names"):
        losses.get("nope")
    with pytest.raises(TypeError, match="42"):
        losses.get(42)


# ------------------------------------------------------------ cross-entropies
#
# Each kernel (by code) with the NumPy twin it must match, and how to draw
# its targets and its input (logits, or probabilities strictly inside (0, 1)).

KERNELS = {
    "bce": (losses.BCE, reference.binary_crossentropy, "binary", "prob_sigmoid"),
    "bce_logits": (losses.BCE_LOGITS, reference.binary_crossentropy_from_logits,
                   "binary", "logits"),
    "cce": (losses.CCE, reference.categorical_crossentropy, "onehot", "prob_softmax"),
    "cce_logits": (losses.CCE_LOGITS, reference.categorical_crossentropy_from_logits,
                   "onehot", "logits"),
    "cce_soft": (losses.CCE, reference.categorical_crossentropy, "soft", "prob_softmax"),
    "cce_soft_logits": (losses.CCE_LOGITS, reference.categorical_crossentropy_from_logits,
                        "soft", "logits"),
    "sparse": (losses.SPARSE_CCE, reference.sparse_categorical_crossentropy,
               "labels", "prob_softmax"),
    "sparse_logits": (losses.SPARSE_CCE_LOGITS,
                      reference.sparse_categorical_crossentropy_from_logits,
                      "labels", "logits"),
}


def draw(kind_y, kind_p, n, m, dtype, rng):
    x = (2 * rng.standard_normal((n, m))).astype(dtype)
    if kind_p == "prob_sigmoid":
        p = reference.sigmoid(x)
    elif kind_p == "prob_softmax":
        p = reference.softmax(x)
    else:
        p = x
    labels = rng.integers(0, m, size=n)
    if kind_y == "binary":
        y = rng.uniform(0, 1, size=(n, m))
        y[: n // 2] = np.round(y[: n // 2])     # hard and soft targets
    elif kind_y == "onehot":
        y = np.eye(m)[labels]
    elif kind_y == "soft":
        # probability rows, plus one row not summing to 1
        y = rng.dirichlet(np.ones(m), size=n)
        y[0] *= 0.7
    else:
        y = labels.reshape(-1, 1)
    return np.ascontiguousarray(p, dtype=dtype), np.ascontiguousarray(y, dtype=dtype)


def kernel(code, p, y):
    g = np.empty_like(p)
    return _losses.loss_value_grad(code, p, y, g), g


@pytest.mark.parametrize("name", KERNELS)
def test_cross_entropy_kernels_match_reference(name, dtype, rng):
    code, twin, kind_y, kind_p = KERNELS[name]
    p, y = draw(kind_y, kind_p, 23, 4, dtype, rng)
    value, grad = kernel(code, p, y)
    ref_value, ref_grad = twin(p, y)
    assert value == pytest.approx(ref_value, rel=1e-6 if dtype == np.float32 else 1e-13)
    assert_close(grad, ref_grad, dtype)


@pytest.mark.parametrize("name", KERNELS)
def test_cross_entropy_gradients_match_central_differences(name, rng):
    code, _, kind_y, kind_p = KERNELS[name]
    p, y = draw(kind_y, kind_p, 6, 3, np.float64, rng)
    _, grad = kernel(code, p, y)
    # a step relative to p: small probabilities have large curvature
    numeric = central_differences(lambda: kernel(code, p, y)[0], p,
                                  epsilon=lambda value: 1e-5 * max(abs(value), 1e-3))
    for idx in np.ndindex(p.shape):
        assert grad[idx] == pytest.approx(numeric[idx], rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("plain, fused, activation, kind_y", [
    ("bce", "bce_logits", "sigmoid", "binary"),
    ("cce", "cce_logits", "softmax", "onehot"),
    ("cce_soft", "cce_soft_logits", "softmax", "soft"),
    ("sparse", "sparse_logits", "softmax", "labels"),
])
def test_fused_and_unfused_agree_on_moderate_logits(plain, fused, activation, kind_y, rng):
    """loss(act(x)) = fused_loss(x), and the chain rule through act links
    the two gradients."""
    x, y = draw(kind_y, "logits", 9, 3, np.float64, rng)
    a = reference.activate(x, activation)
    value, grad_a = kernel(KERNELS[plain][0], a, y)
    fused_value, grad_x = kernel(KERNELS[fused][0], x, y)
    assert fused_value == pytest.approx(value, rel=1e-12)
    np.testing.assert_allclose(grad_x, reference.activation_backward(grad_a, a, activation),
                               rtol=1e-10, atol=1e-13)


def test_binary_from_logits_is_exact_at_extreme_logits(dtype):
    x = np.array([[1e4, -1e4], [-1e4, 1e4], [1e4, -1e4]], dtype=dtype)
    z = np.array([[1, 0], [1, 0], [0.5, 0.5]], dtype=dtype)
    value, grad = kernel(losses.BCE_LOGITS, x, z)
    # per element: 0, 0 | 1e4, 1e4 | 5e3, 5e3 ; the mean over 6
    assert value == pytest.approx(3e4 / 6, rel=1e-12)
    np.testing.assert_allclose(grad, np.array([[0, 0], [-1, 1], [0.5, -0.5]]) / 6,
                               rtol=1e-6)
    # what sigmoid-then-log gives: inf
    with np.errstate(all="ignore"):
        p = 1 / (1 + np.exp(-x.astype(np.float64)))
        naive = -(z * np.log(p) + (1 - z) * np.log(1 - p))
    assert not np.isfinite(naive).all()


@pytest.mark.parametrize("code, y", [
    (losses.CCE_LOGITS, [[0, 1, 0], [1, 0, 0]]),
    (losses.SPARSE_CCE_LOGITS, [[1], [0]]),
])
def test_categorical_from_logits_is_exact_at_extreme_logits(code, y, dtype):
    x = np.array([[1e4, -1e4, 0], [1e4, 1e4, -1e4]], dtype=dtype)
    value, grad = kernel(code, x, np.array(y, dtype=dtype))
    # row 0: lse = 1e4, label logit -1e4 -> 2e4; row 1: lse = 1e4 + log 2, label 1e4
    assert value == pytest.approx((2e4 + np.log(2)) / 2, rel=1e-12)
    expected = np.array([[1, -1, 0], [-0.5, 0.5, 0]]) / 2
    np.testing.assert_allclose(grad, expected, rtol=1e-6, atol=1e-30)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        e = np.exp(x.astype(np.float64))
        naive = -np.log(e / e.sum(axis=1, keepdims=True))
    assert not np.isfinite(naive).all()


def test_probability_kernels_clip_only_at_machine_epsilon(dtype):
    eps = np.finfo(dtype).eps
    # inside [eps, 1 - eps]: no clip, the exact log
    p = np.array([[2 * eps, 1 - 2 * eps]], dtype=dtype)
    value, _ = kernel(losses.BCE, p, np.array([[1, 0]], dtype=dtype))
    assert value == pytest.approx(-np.log(2 * eps), rel=1e-4)
    # at 0 and 1: clipped, finite, and the gradient still points back
    p = np.array([[0.0, 1.0]], dtype=dtype)
    value, grad = kernel(losses.BCE, p, np.array([[1, 0]], dtype=dtype))
    assert np.isfinite(value) and np.isfinite(grad).all()
    assert grad[0, 0] < 0 < grad[0, 1]
    value, grad = kernel(losses.SPARSE_CCE, np.array([[0.0, 1.0]], dtype=dtype),
                         np.array([[0]], dtype=dtype))
    assert value == pytest.approx(-np.log(eps), rel=1e-6)
    assert grad[0, 0] < 0 and grad[0, 1] == 0


def test_out_of_range_label_gives_nan_not_a_stray_read():
    value, _ = kernel(losses.SPARSE_CCE_LOGITS, np.zeros((2, 3)), np.array([[0.0], [3.0]]))
    assert np.isnan(value)


# --------------------------------------------------------- the Loss objects

CE_CLASSES = [pynn.BinaryCrossentropy, pynn.CategoricalCrossentropy,
              pynn.SparseCategoricalCrossentropy]


def test_cross_entropies_by_name():
    for cls in CE_CLASSES:
        loss = losses.get(cls.name)
        assert isinstance(loss, cls) and loss.from_logits is False
    assert losses.get(pynn.BinaryCrossentropy(from_logits=True)).from_logits
    with pytest.raises(TypeError, match="from_logits.*'yes'"):
        pynn.CategoricalCrossentropy(from_logits="yes")


@pytest.mark.parametrize("cls", CE_CLASSES)
def test_fusing_rule_and_kernel_codes(cls):
    act = cls.activation
    plain, fused = cls(), cls(from_logits=True)
    assert plain.fuses_with(act) and not plain.fuses_with("linear")
    assert fused.fuses_with("linear") and not fused.fuses_with(act)
    assert plain.kernel_code(act) == fused.kernel_code("linear") == cls.logits_code
    assert plain.kernel_code("linear") == plain.kernel_code("relu") == cls.probabilities_code
    # from_logits with another activation: its output is read as logits (Keras)
    assert fused.kernel_code(act) == fused.kernel_code("tanh") == cls.logits_code
    assert not pynn.MeanSquaredError().fuses_with("linear")


def test_call_takes_probabilities_or_logits():
    x = np.array([[0.3, -1.2, 2.0], [1.0, 0.5, -0.5]])
    labels = np.array([2, 0])
    onehot = np.eye(3)[labels]
    p = reference.softmax(x)
    expected = reference.categorical_crossentropy_from_logits(x, onehot)[0]
    assert pynn.CategoricalCrossentropy()(onehot, p) == pytest.approx(expected)
    assert pynn.CategoricalCrossentropy(from_logits=True)(onehot, x) == pytest.approx(expected)
    assert pynn.SparseCategoricalCrossentropy()(labels, p) == pytest.approx(expected)
    assert pynn.SparseCategoricalCrossentropy(from_logits=True)(labels.reshape(-1, 1), x) \
        == pytest.approx(expected)
    z = np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    expected = reference.binary_crossentropy_from_logits(x, z)[0]
    assert pynn.BinaryCrossentropy()(z, reference.sigmoid(x)) == pytest.approx(expected)
    assert pynn.BinaryCrossentropy(from_logits=True)(z, x) == pytest.approx(expected)


# (loss, last activation, from_logits): fused and unfused networks
NETWORK_CASES = [
    ("binary_crossentropy", "sigmoid", False),      # fused
    ("binary_crossentropy", "linear", True),        # fused
    ("binary_crossentropy", "softmax", False),      # probabilities
    ("binary_crossentropy", "sigmoid", True),       # sigmoid output read as logits
    ("categorical_crossentropy", "softmax", False),
    ("categorical_crossentropy", "linear", True),
    ("categorical_crossentropy", "sigmoid", False),
    ("sparse_categorical_crossentropy", "softmax", False),
    ("sparse_categorical_crossentropy", "linear", True),
    ("sparse_categorical_crossentropy", "sigmoid", False),
]


@pytest.mark.parametrize("loss, activation, from_logits", NETWORK_CASES)
def test_network_gradients_with_each_loss_match_reference(loss, activation, from_logits,
                                                          dtype, rng):
    net = pynn.Sequential([pynn.Dense(10, activation="tanh", input_dim=5),
                           pynn.Dense(3, activation=activation)], dtype=dtype, seed=2)
    # a sigmoid output read as logits is the from_logits mistake compile warns of
    warns = from_logits and activation in ("sigmoid", "softmax")
    with pytest.warns(UserWarning, match="from_logits=True") if warns \
            else contextlib.nullcontext():
        net.compile(loss=losses.get(loss).__class__(from_logits=from_logits))
    x = rng.standard_normal((11, 5)).astype(dtype)
    kind_y = {"binary_crossentropy": "binary", "categorical_crossentropy": "soft",
              "sparse_categorical_crossentropy": "labels"}[loss]
    _, y = draw(kind_y, "logits", 11, 3, dtype, rng)
    value, grads = net.gradients(x, y)
    ref = reference.ReferenceNetwork(net.get_weights(), ["tanh", activation], loss=loss,
                                     from_logits=from_logits)
    assert ref.fused == net.fused
    ref_value, ref_grads = ref.gradients(x, y)
    assert value == pytest.approx(ref_value, rel=1e-5 if dtype == np.float32 else 1e-12)
    for g, r in zip(grads, ref_grads):
        assert_close(g, r, dtype, scale=10)


def test_network_gradient_matches_central_differences_fused(rng):
    """The whole fused path (softmax left to the loss) is the true gradient."""
    net = pynn.Sequential([pynn.Dense(4, activation="tanh", input_dim=3),
                           pynn.Dense(3, activation="softmax")], dtype="float64", seed=5)
    net.compile(loss="sparse_categorical_crossentropy")
    x = rng.standard_normal((7, 3))
    y = rng.integers(0, 3, size=7)
    _, grads = net.gradients(x, y)
    for layer, (gW, gb) in zip(net.layers, zip(grads[0::2], grads[1::2])):
        for param, grad in ((layer.W, gW), (layer.b, gb)):
            numeric = central_differences(lambda: net.evaluate(x, y), param, 1e-6)
            for idx in np.ndindex(param.shape):
                assert grad[idx] == pytest.approx(numeric[idx], rel=1e-6, abs=1e-9)


def test_fused_training_stays_finite_at_extreme_logits():
    net = pynn.Sequential([pynn.Dense(2, activation="sigmoid", input_dim=1)],
                          dtype="float32", seed=0)
    net.compile(loss="binary_crossentropy", optimizer=pynn.SGD(learning_rate=1e-6))
    net.set_weights([np.array([[1e4], [-1e4]]), np.zeros(2)])
    loss, grads = net.gradients(np.ones((2, 1)), np.array([[0.0, 1.0], [1.0, 0.0]]))
    # per element: 1e4, 1e4 | 0, 0 ; the mean over 4
    assert loss == pytest.approx(5e3, rel=1e-6)
    np.testing.assert_allclose(grads[1], [0.25, -0.25], rtol=1e-6)
    assert np.isfinite(net.train_on_batch(np.ones((2, 1)), np.array([[0, 1], [1, 0]])))


# -------------------------------------------------------------- bad targets

@pytest.mark.parametrize("loss, y, match", [
    ("sparse_categorical_crossentropy", [0, 1, 3], r"label 3 at index 2.*\[0, 3\)"),
    ("sparse_categorical_crossentropy", [0, -1, 2], r"label -1 at index 1"),
    ("sparse_categorical_crossentropy", [0, 1.5, 2], r"1\.5 at index 1.*integers"),
    ("sparse_categorical_crossentropy", [0, np.nan, 2], r"nan at index 1.*integers"),
    ("sparse_categorical_crossentropy", np.zeros((3, 3)), r"1-D.*\(3, 3\)"),
    ("categorical_crossentropy", np.eye(4)[:3], r"\(n_samples, 3\).*\(3, 4\)"),
    ("categorical_crossentropy", [0, 1, 2], r"one-hot.*sparse_categorical"),
    ("categorical_crossentropy", [[1, 0, 0], [0, 1, 0], [0, 2, -1]], r"-1\.0 at index \(2, 2\)"),
    ("binary_crossentropy", [[1, 0, 0], [0, 1.5, 0], [0, 0, 1]], r"1\.5 at index \(1, 1\).*\[0, 1\]"),
    ("binary_crossentropy", [[1, 0, 0], [0, 1, 0], [0, 0, -0.5]], r"-0\.5 at index \(2, 2\)"),
])
def test_bad_targets_are_refused_by_name(loss, y, match):
    net = pynn.Sequential([pynn.Dense(3, activation="softmax", input_dim=2)], seed=0)
    net.compile(loss=loss)
    x = np.zeros((3, 2))
    before = net.get_weights()
    for call in (lambda: net.fit(x, y, verbose=0), lambda: net.evaluate(x, y),
                 lambda: net.gradients(x, y)):
        with pytest.raises(ValueError, match=match):
            call()
    for w, b in zip(net.get_weights(), before):
        np.testing.assert_array_equal(w, b)


def test_sparse_labels_stored_as_a_float_column():
    labels = np.array([2, 0, 1], dtype=np.int64)
    y = pynn.SparseCategoricalCrossentropy().prepare_targets(labels, 3, np.float32)
    assert y.dtype == np.float32 and y.shape == (3, 1) and y.flags.c_contiguous
    np.testing.assert_array_equal(y[:, 0], labels)
    np.testing.assert_array_equal(labels, [2, 0, 1])      # not modified


# ------------------------------------------------------- regression losses
#
# mae, huber, poisson and the half Poisson deviance: kernels against their
# twins (both dtypes, with and without row weights) and central differences,
# at extreme inputs, in the compiled step and epoch, and saved with a model.

# name: (kernel code, Loss object, twin (p, y) -> (loss, grad))
REGRESSION = {
    "mae": (losses.MAE, losses.MeanAbsoluteError(), reference.mae),
    "huber": (losses.HUBER, losses.Huber(), reference.huber),
    "huber_2.5": (losses.HUBER, losses.Huber(delta=2.5),
                  lambda p, y: reference.huber(p, y, delta=2.5)),
    "huber_0.3": (losses.HUBER, losses.Huber(delta=0.3),
                  lambda p, y: reference.huber(p, y, delta=0.3)),
    "poisson": (losses.POISSON, losses.Poisson(), reference.poisson),
    "poisson_log": (losses.POISSON_LOG, losses.HalfPoissonDeviance(),
                    reference.half_poisson_from_raw),
}


def draw_regression(name, n, m, dtype, rng):
    """(p, y) for a loss: real values either side of the targets for mae and
    huber (both of huber's branches), non-negative predictions and counts
    (zeros among them) for poisson, raw outputs and counts for its log form."""
    if name.startswith("poisson"):
        y = rng.poisson(2.0, size=(n, m)).astype(float)
        y[0, 0] = 0.0
        p = rng.uniform(0, 4, size=(n, m)) if name == "poisson" \
            else rng.normal(0.3, 1.0, size=(n, m))
    else:
        y = 2 * rng.standard_normal((n, m))
        p = y + 3 * rng.standard_normal((n, m))
    return np.ascontiguousarray(p, dtype=dtype), np.ascontiguousarray(y, dtype=dtype)


def regression_kernel(name, p, y, w=None):
    code, loss, _ = REGRESSION[name]
    g = np.empty_like(p)
    return _losses.loss_value_grad(code, p, y, g, w, loss.kernel_param), g


def value_tol(dtype):
    return 1e-6 if dtype == np.float32 else 1e-13


@pytest.mark.parametrize("name", REGRESSION)
def test_kernel_matches_reference(name, dtype, rng):
    p, y = draw_regression(name, 23, 4, dtype, rng)
    value, grad = regression_kernel(name, p, y)
    ref_value, ref_grad = REGRESSION[name][2](p, y)
    assert value == pytest.approx(ref_value, rel=value_tol(dtype))
    assert_close(grad, ref_grad, dtype)


@pytest.mark.parametrize("name", REGRESSION)
def test_row_weights_match_reference_row_by_row(name, dtype, rng):
    """sum_i w_i l_i / n and w_i dl_i / n, l_i the twin on row i alone."""
    n, m = 13, 3
    p, y = draw_regression(name, n, m, dtype, rng)
    w = rng.uniform(0, 3, size=n).astype(dtype)
    w[2] = 0
    value, grad = regression_kernel(name, p, y, w)
    rows = [REGRESSION[name][2](p[i:i + 1], y[i:i + 1]) for i in range(n)]
    ref_value = sum(float(w[i]) * rows[i][0] for i in range(n)) / n
    ref_grad = np.concatenate([float(w[i]) * rows[i][1] for i in range(n)]) / n
    assert value == pytest.approx(ref_value, rel=1e-5 if dtype == np.float32 else 1e-12)
    assert_close(grad, ref_grad, dtype)
    # weights of 1 are no weights, bit for bit
    v1, g1 = regression_kernel(name, p, y, np.ones(n, dtype=dtype))
    v0, g0 = regression_kernel(name, p, y)
    assert v0 == v1
    np.testing.assert_array_equal(g0, g1)


@pytest.mark.parametrize("name", REGRESSION)
def test_gradient_matches_central_differences(name, rng):
    p, y = draw_regression(name, 6, 3, np.float64, rng)
    if not name.startswith("poisson"):
        # away from the kinks of |d| (and huber's |d| = delta, where the
        # second derivative jumps but the first is continuous)
        p[np.abs(p - y) < 1e-3] += 0.1
    _, grad = regression_kernel(name, p, y)
    numeric = central_differences(lambda: regression_kernel(name, p, y)[0], p, 1e-6)
    for idx in np.ndindex(p.shape):
        assert grad[idx] == pytest.approx(numeric[idx], rel=1e-6, abs=1e-9)


def test_huber_is_quadratic_inside_delta_and_linear_beyond():
    y = np.zeros((1, 4))
    p = np.array([[0.5, -2.0, 3.0, -2.5]])
    value, grad = regression_kernel("huber_2.5", p, y)
    per_element = [0.125, 2.0, 2.5 * 3.0 - 0.5 * 2.5 ** 2, 0.5 * 2.5 ** 2]
    assert value == pytest.approx(np.mean(per_element), rel=1e-15)
    np.testing.assert_array_equal(grad, [[0.5 / 4, -2.0 / 4, 2.5 / 4, -2.5 / 4]])


def test_mae_gradient_is_the_sign_and_zero_where_equal(dtype):
    p = np.array([[1.0, -1.0, 0.25]], dtype=dtype)
    y = np.array([[0.0, 0.0, 0.25]], dtype=dtype)
    value, grad = regression_kernel("mae", p, y)
    assert value == pytest.approx(2 / 3, rel=1e-7)
    np.testing.assert_array_equal(grad, np.array([[1, -1, 0]], dtype=dtype) / 3)


# ------------------------------------------------------------ extreme inputs

@pytest.mark.parametrize("name", ["mae", "huber", "huber_2.5"])
def test_absolute_losses_are_exact_at_extreme_inputs(name, dtype):
    big = 1e30 if dtype == np.float32 else 1e300
    p = np.array([[1e4, -1e4, big, -big]], dtype=dtype)
    y = np.array([[-1e4, 1e4, -big, big]], dtype=dtype)
    value, grad = regression_kernel(name, p, y)
    with np.errstate(over="ignore"):      # the twin's np.where computes both branches
        ref_value, ref_grad = REGRESSION[name][2](p, y)
    assert np.isfinite(value) and np.isfinite(grad).all()
    assert value == pytest.approx(ref_value, rel=1e-15)
    np.testing.assert_array_equal(grad, ref_grad.astype(dtype))


def test_poisson_is_finite_at_zero_and_large_predictions(dtype):
    # the epsilon guards the log at p = 0, as in Keras
    p = np.array([[0.0, 0.0, 1e4, 1e-12]], dtype=dtype)
    y = np.array([[3.0, 0.0, 1e4, 1.0]], dtype=dtype)
    value, grad = regression_kernel("poisson", p, y)
    ref_value, ref_grad = reference.poisson(p, y)
    assert np.isfinite(value) and np.isfinite(grad).all()
    assert value == pytest.approx(ref_value, rel=value_tol(dtype))
    assert_close(grad, ref_grad, dtype)
    assert grad[0, 0] < 0 < grad[0, 1]    # pushed up where y > 0, down where y = 0


def test_poisson_log_never_takes_the_log_of_exp(dtype):
    # raw outputs whose exp over/underflows the storage type: the loss is the
    # twin's, finite (exp taken in double), and exact for y raw of either sign
    top = 80.0 if dtype == np.float32 else 700.0
    raw = np.array([[-1e4, -1e4, top, 3.0]], dtype=dtype)
    y = np.array([[0.0, 2.0, 5.0, 0.0]], dtype=dtype)
    value, grad = regression_kernel("poisson_log", raw, y)
    ref_value, ref_grad = reference.half_poisson_from_raw(raw, y)
    assert np.isfinite(value) and np.isfinite(grad).all()
    assert value == pytest.approx(ref_value, rel=1e-12)
    assert_close(grad, ref_grad, dtype)
    # the naive mu = exp(raw) in the storage type, then y log(y / mu): inf or NaN
    with np.errstate(all="ignore"):
        mu = np.exp(raw)
        naive = y * np.log(y / mu) - y + mu
    assert not np.isfinite(naive).all()


def test_poisson_log_beyond_the_double_range_is_inf_not_nan(dtype):
    raw = np.array([[1e4, 0.0]], dtype=dtype)
    value, grad = regression_kernel("poisson_log", raw, np.array([[2.0, 1.0]], dtype=dtype))
    assert value == np.inf
    assert grad[0, 0] == np.inf and np.isfinite(grad[0, 1])
    if dtype == np.float32:
        # a finite loss in double whose gradient exceeds float32's range
        raw = np.array([[100.0]], dtype=dtype)
        value, grad = regression_kernel("poisson_log", raw, np.array([[1.0]], dtype=dtype))
        assert np.isfinite(value) and grad[0, 0] == np.inf


def test_a_step_whose_poisson_gradient_overflows_changes_nothing(rng):
    net = make_model((4, "tanh"), (1, None), input_dim=3, dtype="float32",
                     loss=losses.HalfPoissonDeviance())
    net.layers[-1].b[...] = 200.0      # exp(200) is beyond float32
    before = net.params.copy()
    x = rng.standard_normal((8, 3)).astype(np.float32)
    loss, applied = net.step(x, np.ones((8, 1), np.float32), True)
    assert not applied and np.isfinite(loss)
    np.testing.assert_array_equal(net.params, before)


# ------------------------------------------------------------- Loss objects

def test_names_and_aliases():
    assert isinstance(losses.get("mae"), losses.MeanAbsoluteError)
    assert isinstance(losses.get("mean_absolute_error"), losses.MeanAbsoluteError)
    assert isinstance(losses.get("MAE"), losses.MeanAbsoluteError)
    huber = losses.get("huber")
    assert isinstance(huber, losses.Huber) and huber.delta == 1.0
    assert isinstance(losses.get("poisson"), losses.Poisson)
    assert isinstance(losses.get("half_poisson_deviance"), losses.HalfPoissonDeviance)
    assert {"mae", "mean_absolute_error", "huber", "poisson"} <= set(losses.names())


def test_huber_config_round_trips():
    loss = losses.Huber(delta=2.5)
    assert repr(loss) == "Huber(delta=2.5)"
    back = losses.deserialize(losses.serialize(loss))
    assert isinstance(back, losses.Huber) and back.delta == 2.5
    # fixed once made: a compiled model's kernels hold it
    with pytest.raises(AttributeError):
        loss.delta = 3.0


@pytest.mark.parametrize("delta, error", [(0.0, ValueError), (-1.0, ValueError),
                                          (np.inf, ValueError), (np.nan, ValueError),
                                          ("1", TypeError), (True, TypeError)])
def test_bad_delta_is_refused_by_name(delta, error):
    with pytest.raises(error, match="delta"):
        losses.Huber(delta=delta)


@pytest.mark.parametrize("name", ["poisson", "half_poisson_deviance"])
def test_negative_poisson_targets_are_refused_before_training(name, rng):
    net = make_model((1, "sigmoid"), input_dim=2, loss=name)
    before = net.params.copy()
    y = np.array([[1.0], [-0.5], [2.0]])
    with pytest.raises(ValueError, match=r"-0\.5 at index \(1, 0\).*non-negative"):
        net.train_on_batch(rng.standard_normal((3, 2)), y)
    np.testing.assert_array_equal(net.params, before)


@pytest.mark.parametrize("name", REGRESSION)
def test_loss_object_call_is_the_kernel(name, dtype, rng):
    p, y = draw_regression(name, 7, 2, dtype, rng)
    loss = REGRESSION[name][1]
    assert loss(y, p) == regression_kernel(name, p, y)[0]


# ------------------------------------------------------------- in a model

def _model(name, dtype, seed=0):
    out = "sigmoid" if name == "poisson" else None    # Keras's wants p >= 0
    return make_model((8, "tanh"), (2, out), input_dim=5, dtype=dtype, seed=seed,
                      loss=REGRESSION[name][1],
                      optimizer=pynn.SGD(learning_rate=0.05, momentum=0.9))


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("name", REGRESSION)
def test_compiled_epoch_equals_train_on_batch_bit_for_bit(name, weighted, dtype, rng):
    p, y = draw_regression(name, 53, 2, dtype, rng)
    x = rng.standard_normal((53, 5)).astype(dtype)
    w = rng.uniform(0.2, 3, size=53).astype(dtype) if weighted else None
    order = rng.permutation(53).astype(np.intp)
    a, b = _model(name, dtype), _model(name, dtype)
    epoch_losses = np.empty(6)
    assert run_batches(a, x, y, order, 10, 0, 6, epoch_losses, sample_weight=w) == 6
    expected = [b.train_on_batch(x[order[k:k + 10]], y[order[k:k + 10]],
                                 sample_weight=None if w is None else w[order[k:k + 10]])
                for k in range(0, 53, 10)]
    np.testing.assert_array_equal(epoch_losses, expected)
    np.testing.assert_array_equal(a.params, b.params)


@pytest.mark.parametrize("name", REGRESSION)
def test_model_loss_and_gradient_are_the_twins(name, dtype, rng):
    """evaluate (the chunked loss) and train_on_batch's loss are the twin's
    value on predict's outputs; so is a weighted evaluate."""
    _, y = draw_regression(name, 31, 2, dtype, rng)
    x = rng.standard_normal((31, 5)).astype(dtype)
    net = _model(name, dtype)
    twin = REGRESSION[name][2]
    out = net.predict(x)
    ref_value, _ = twin(out, y)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert net.evaluate(x, y, batch_size=8, verbose=0) == pytest.approx(ref_value, rel=tol)
    w = rng.uniform(0.5, 2, size=31)
    rows = [twin(out[i:i + 1], y[i:i + 1])[0] for i in range(31)]
    weighted = net.evaluate(x, y, batch_size=8, verbose=0, sample_weight=w)
    assert weighted == pytest.approx(float(np.dot(w, rows)) / 31, rel=tol)
    assert net.train_on_batch(x, y) == pytest.approx(ref_value, rel=tol)


def test_model_gradients_match_central_differences(rng):
    net = _model("huber_2.5", np.float64)
    x = rng.standard_normal((9, 5))
    y = 3 * rng.standard_normal((9, 2))
    _, grads = net.gradients(x, y)
    W = net.layers[0].W
    numeric = central_differences(lambda: net.evaluate(x, y, verbose=0), W, 1e-6)
    np.testing.assert_allclose(grads[0], numeric, rtol=1e-6, atol=1e-9)


def test_save_and_load_keep_huber_delta(tmp_path, rng):
    net = _model("huber_2.5", np.float64)
    x = rng.standard_normal((40, 5))
    y = 4 * rng.standard_normal((40, 2))
    net.fit(x, y, epochs=2, batch_size=8, verbose=0, shuffle=False)
    net.save(tmp_path / "huber.npz")
    back = pynn.load(tmp_path / "huber.npz")
    assert isinstance(back.loss, losses.Huber) and back.loss.delta == 2.5
    # the loaded model's kernels run with delta 2.5: same losses, same updates
    assert back.evaluate(x, y, verbose=0) == net.evaluate(x, y, verbose=0)
    for model in (net, back):
        model.fit(x, y, epochs=1, batch_size=8, verbose=0, shuffle=False)
    np.testing.assert_array_equal(back.params, net.params)
    # and that is not delta 1's result
    assert back.evaluate(x, y, verbose=0) != pytest.approx(
        reference.huber(back.predict(x), y, delta=1.0)[0], rel=1e-6)
