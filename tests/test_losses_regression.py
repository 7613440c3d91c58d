"""The regression losses mae, huber, poisson and the half Poisson deviance:
their kernels against pynn/reference.py (both dtypes, with and without row
weights) and central differences, at extreme inputs, inside the compiled
step and epoch, and saved and loaded with a model."""
import numpy as np
import pytest

import pynn
from pynn import _losses, losses, reference
from pynn.training.runners import run_batches
from conftest import assert_close, central_differences, make_model

# name: (kernel code, Loss object, twin (p, y) -> (loss, grad))
LOSSES = {
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


def draw(name, n, m, dtype, rng):
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


def kernel(name, p, y, w=None):
    code, loss, _ = LOSSES[name]
    g = np.empty_like(p)
    return _losses.loss_value_grad(code, p, y, g, w, loss.kernel_param), g


def value_tol(dtype):
    return 1e-6 if dtype == np.float32 else 1e-13


@pytest.mark.parametrize("name", LOSSES)
def test_kernel_matches_reference(name, dtype, rng):
    p, y = draw(name, 23, 4, dtype, rng)
    value, grad = kernel(name, p, y)
    ref_value, ref_grad = LOSSES[name][2](p, y)
    assert value == pytest.approx(ref_value, rel=value_tol(dtype))
    assert_close(grad, ref_grad, dtype)


@pytest.mark.parametrize("name", LOSSES)
def test_row_weights_match_reference_row_by_row(name, dtype, rng):
    """sum_i w_i l_i / n and w_i dl_i / n, l_i the twin on row i alone."""
    n, m = 13, 3
    p, y = draw(name, n, m, dtype, rng)
    w = rng.uniform(0, 3, size=n).astype(dtype)
    w[2] = 0
    value, grad = kernel(name, p, y, w)
    rows = [LOSSES[name][2](p[i:i + 1], y[i:i + 1]) for i in range(n)]
    ref_value = sum(float(w[i]) * rows[i][0] for i in range(n)) / n
    ref_grad = np.concatenate([float(w[i]) * rows[i][1] for i in range(n)]) / n
    assert value == pytest.approx(ref_value, rel=1e-5 if dtype == np.float32 else 1e-12)
    assert_close(grad, ref_grad, dtype)
    # weights of 1 are no weights, bit for bit
    v1, g1 = kernel(name, p, y, np.ones(n, dtype=dtype))
    v0, g0 = kernel(name, p, y)
    assert v0 == v1
    np.testing.assert_array_equal(g0, g1)


@pytest.mark.parametrize("name", LOSSES)
def test_gradient_matches_central_differences(name, rng):
    p, y = draw(name, 6, 3, np.float64, rng)
    if not name.startswith("poisson"):
        # away from the kinks of |d| (and huber's |d| = delta, where the
        # second derivative jumps but the first is continuous)
        p[np.abs(p - y) < 1e-3] += 0.1
    _, grad = kernel(name, p, y)
    numeric = central_differences(lambda: kernel(name, p, y)[0], p, 1e-6)
    for idx in np.ndindex(p.shape):
        assert grad[idx] == pytest.approx(numeric[idx], rel=1e-6, abs=1e-9)


def test_huber_is_quadratic_inside_delta_and_linear_beyond():
    y = np.zeros((1, 4))
    p = np.array([[0.5, -2.0, 3.0, -2.5]])
    value, grad = kernel("huber_2.5", p, y)
    per_element = [0.125, 2.0, 2.5 * 3.0 - 0.5 * 2.5 ** 2, 0.5 * 2.5 ** 2]
    assert value == pytest.approx(np.mean(per_element), rel=1e-15)
    np.testing.assert_array_equal(grad, [[0.5 / 4, -2.0 / 4, 2.5 / 4, -2.5 / 4]])


def test_mae_gradient_is_the_sign_and_zero_where_equal(dtype):
    p = np.array([[1.0, -1.0, 0.25]], dtype=dtype)
    y = np.array([[0.0, 0.0, 0.25]], dtype=dtype)
    value, grad = kernel("mae", p, y)
    assert value == pytest.approx(2 / 3, rel=1e-7)
    np.testing.assert_array_equal(grad, np.array([[1, -1, 0]], dtype=dtype) / 3)


# ------------------------------------------------------------ extreme inputs

@pytest.mark.parametrize("name", ["mae", "huber", "huber_2.5"])
def test_absolute_losses_are_exact_at_extreme_inputs(name, dtype):
    big = 1e30 if dtype == np.float32 else 1e300
    p = np.array([[1e4, -1e4, big, -big]], dtype=dtype)
    y = np.array([[-1e4, 1e4, -big, big]], dtype=dtype)
    value, grad = kernel(name, p, y)
    with np.errstate(over="ignore"):      # the twin's np.where computes both branches
        ref_value, ref_grad = LOSSES[name][2](p, y)
    assert np.isfinite(value) and np.isfinite(grad).all()
    assert value == pytest.approx(ref_value, rel=1e-15)
    np.testing.assert_array_equal(grad, ref_grad.astype(dtype))


def test_poisson_is_finite_at_zero_and_large_predictions(dtype):
    # the epsilon guards the log at p = 0, as in Keras
    p = np.array([[0.0, 0.0, 1e4, 1e-12]], dtype=dtype)
    y = np.array([[3.0, 0.0, 1e4, 1.0]], dtype=dtype)
    value, grad = kernel("poisson", p, y)
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
    value, grad = kernel("poisson_log", raw, y)
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
    value, grad = kernel("poisson_log", raw, np.array([[2.0, 1.0]], dtype=dtype))
    assert value == np.inf
    assert grad[0, 0] == np.inf and np.isfinite(grad[0, 1])
    if dtype == np.float32:
        # a finite loss in double whose gradient exceeds float32's range
        raw = np.array([[100.0]], dtype=dtype)
        value, grad = kernel("poisson_log", raw, np.array([[1.0]], dtype=dtype))
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


@pytest.mark.parametrize("name", LOSSES)
def test_loss_object_call_is_the_kernel(name, dtype, rng):
    p, y = draw(name, 7, 2, dtype, rng)
    loss = LOSSES[name][1]
    assert loss(y, p) == kernel(name, p, y)[0]


# ------------------------------------------------------------- in a model

def _model(name, dtype, seed=0):
    out = "sigmoid" if name == "poisson" else None    # Keras's wants p >= 0
    return make_model((8, "tanh"), (2, out), input_dim=5, dtype=dtype, seed=seed,
                      loss=LOSSES[name][1],
                      optimizer=pynn.SGD(learning_rate=0.05, momentum=0.9))


@pytest.mark.parametrize("name", LOSSES)
def test_compiled_epoch_equals_train_on_batch_bit_for_bit(name, dtype, rng):
    p, y = draw(name, 53, 2, dtype, rng)
    x = rng.standard_normal((53, 5)).astype(dtype)
    order = rng.permutation(53).astype(np.intp)
    a, b = _model(name, dtype), _model(name, dtype)
    epoch_losses = np.empty(6)
    assert run_batches(a, x, y, order, 10, 0, 6, epoch_losses) == 6
    expected = [b.train_on_batch(x[order[k:k + 10]], y[order[k:k + 10]])
                for k in range(0, 53, 10)]
    np.testing.assert_array_equal(epoch_losses, expected)
    np.testing.assert_array_equal(a.params, b.params)


@pytest.mark.parametrize("name", LOSSES)
def test_model_loss_and_gradient_are_the_twins(name, dtype, rng):
    """evaluate (the chunked loss) and train_on_batch's loss are the twin's
    value on predict's outputs; so is a weighted evaluate."""
    _, y = draw(name, 31, 2, dtype, rng)
    x = rng.standard_normal((31, 5)).astype(dtype)
    net = _model(name, dtype)
    twin = LOSSES[name][2]
    out = net.predict(x)
    ref_value, _ = twin(out, y)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert net.evaluate(x, y, batch_size=8, verbose=0)["loss"] == pytest.approx(ref_value, rel=tol)
    w = rng.uniform(0.5, 2, size=31)
    rows = [twin(out[i:i + 1], y[i:i + 1])[0] for i in range(31)]
    weighted = net.evaluate(x, y, batch_size=8, verbose=0, sample_weight=w)["loss"]
    assert weighted == pytest.approx(float(np.dot(w, rows)) / 31, rel=tol)
    assert net.train_on_batch(x, y) == pytest.approx(ref_value, rel=tol)


def test_model_gradients_match_central_differences(rng):
    net = _model("huber_2.5", np.float64)
    x = rng.standard_normal((9, 5))
    y = 3 * rng.standard_normal((9, 2))
    _, grads = net.gradients(x, y)
    W = net.layers[0].W
    numeric = central_differences(lambda: net.evaluate(x, y, verbose=0)["loss"], W, 1e-6)
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
    assert back.evaluate(x, y, verbose=0)["loss"] != pytest.approx(
        reference.huber(back.predict(x), y, delta=1.0)[0], rel=1e-6)
