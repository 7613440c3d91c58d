"""The NumPy twins of the activations, losses, regularizers, clipping,
optimizers, dropout and normalisation layers that follow Keras 3: each
against central differences, an independent per-element formula or the
optimizer's formula written as a scalar loop."""
import math

import numpy as np
import pytest

from pynn import reference as ref

# ------------------------------------------------------------ helpers


def central_difference(f, x, h=1e-6):
    """d f(x) / dx element by element, f a scalar function of an array."""
    grad = np.zeros_like(x, dtype=np.float64)
    flat = x.reshape(-1)
    for i in range(flat.size):
        saved = flat[i]
        flat[i] = saved + h
        up = f(x)
        flat[i] = saved - h
        down = f(x)
        flat[i] = saved
        grad.reshape(-1)[i] = (up - down) / (2 * h)
    return grad


def away_from(points, x, margin=1e-3):
    """x with every element within margin of one of points moved off it."""
    x = x.copy()
    for p in points:
        near = np.abs(x - p) < margin
        x[near] = p + 2 * margin * np.where(x[near] >= p, 1, -1)
    return x


def strict():
    """Overflow, invalid operations and division by zero raise."""
    return np.errstate(over="raise", invalid="raise", divide="raise")

# -------------------------------------------------------- activations

# name, settings, the points where the derivative jumps
ACTIVATION_CASES = [
    ("leaky_relu", {}, [0.0]),
    ("leaky_relu", {"negative_slope": 0.01}, [0.0]),
    ("elu", {}, []),
    ("elu", {"alpha": 0.5}, [0.0]),
    ("selu", {}, [0.0]),
    ("gelu", {}, []),
    ("gelu_tanh", {}, []),
    ("swish", {}, []),
    ("softplus", {}, []),
]
CASE_IDS = [f"{name}{'-' + str(s) if s else ''}" for name, s, _ in ACTIVATION_CASES]


@pytest.mark.parametrize("name,settings,kinks", ACTIVATION_CASES, ids=CASE_IDS)
def test_activation_derivative_matches_central_differences(name, settings, kinks, rng):
    f, df, _ = ref.PREACTIVATION_ACTIVATIONS[name]
    z = away_from(kinks, rng.uniform(-6, 6, 200))
    numeric = np.array([(f(np.array([v + 1e-6]), **settings)[0]
                         - f(np.array([v - 1e-6]), **settings)[0]) / 2e-6 for v in z])
    np.testing.assert_allclose(df(z, **settings), numeric, rtol=1e-7, atol=1e-9)


# gelu and swish are not monotonic: their derivative needs the pre-activation
FROM_OUTPUT_CASES = [case for case in ACTIVATION_CASES
                     if ref.PREACTIVATION_ACTIVATIONS[case[0]][2] is not None]


@pytest.mark.parametrize("name,settings,kinks", FROM_OUTPUT_CASES,
                         ids=[i for i, c in zip(CASE_IDS, ACTIVATION_CASES)
                              if c in FROM_OUTPUT_CASES])
def test_derivative_from_output_equals_derivative_from_input(name, settings, kinks,
                                                             dtype, rng):
    f, df, df_out = ref.PREACTIVATION_ACTIVATIONS[name]
    z = np.concatenate([rng.uniform(-30, 30, 300), [0.0, -1e-30, 1e-30]]).astype(dtype)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    # elu and selu give a + alpha (times scale) for z < 0: as a nears -alpha the
    # difference keeps only the absolute accuracy of the output, eps * alpha
    atol = 4 * np.finfo(dtype).eps * (2 if name in ("elu", "selu") else 1e-3)
    np.testing.assert_allclose(df_out(f(z, **settings), **settings), df(z, **settings),
                               rtol=rtol, atol=atol)


def test_which_activations_allow_the_derivative_from_the_output():
    allow = {name for name, (_, _, d) in ref.PREACTIVATION_ACTIVATIONS.items() if d}
    assert allow == {"leaky_relu", "elu", "selu", "softplus"}


def _python_activation(name, v, settings):
    """Each activation written per element with the math module."""
    if name == "leaky_relu":
        return v if v > 0 else settings.get("negative_slope", 0.2) * v
    if name == "elu":
        return v if v > 0 else settings.get("alpha", 1.0) * (math.exp(v) - 1)
    if name == "selu":
        return 1.0507009873554805 * (v if v > 0 else 1.6732632423543772 * (math.exp(v) - 1))
    if name == "gelu":
        return 0.5 * v * (1 + math.erf(v / math.sqrt(2)))
    if name == "gelu_tanh":
        return 0.5 * v * (1 + math.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v ** 3)))
    if name == "swish":
        return v / (1 + math.exp(-v))
    if name == "softplus":
        return math.log(1 + math.exp(v))
    raise AssertionError(name)


@pytest.mark.parametrize("name,settings,kinks", ACTIVATION_CASES, ids=CASE_IDS)
def test_activation_value_matches_the_formula(name, settings, kinks, dtype, rng):
    f = ref.PREACTIVATION_ACTIVATIONS[name][0]
    z = rng.uniform(-8, 8, 200)
    expected = [_python_activation(name, v, settings) for v in z]
    got = f(z.astype(dtype), **settings)
    assert got.dtype == dtype
    rtol = 2e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol * 1e-2)


@pytest.mark.parametrize("name,settings,kinks", ACTIVATION_CASES, ids=CASE_IDS)
def test_activation_stable_at_extremes(name, settings, kinks, dtype):
    f, df, df_out = ref.PREACTIVATION_ACTIVATIONS[name]
    z = np.array([-1e4, -1e3, -100, -20, -1, 0, 1, 20, 100, 1e3, 1e4], dtype=dtype)
    with strict():
        values, slopes = f(z, **settings), df(z, **settings)
        from_output = df_out(values, **settings) if df_out else slopes
    for arr in (values, slopes, from_output):
        assert arr.dtype == dtype and np.all(np.isfinite(arr))
    # every one of these is asymptotically linear with a known slope
    slope_right = {"selu": ref.SELU_SCALE}.get(name, 1.0)
    slope_left = {"leaky_relu": settings.get("negative_slope", 0.2)}.get(name, 0.0)
    np.testing.assert_allclose(values[-1], slope_right * 1e4, rtol=1e-6)
    np.testing.assert_allclose(slopes[[0, -1]], [slope_left, slope_right], rtol=1e-6)
    np.testing.assert_allclose(from_output[[0, -1]], [slope_left, slope_right], rtol=1e-6)


def test_selu_constants_self_normalise():
    # Klambauer et al.: for z ~ N(0, 1), selu(z) has mean 0 and variance 1
    z = np.linspace(-12, 12, 200001)
    density = np.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    a = ref.selu(z)
    step = z[1] - z[0]
    assert abs(np.sum(a * density) * step) < 1e-9
    assert abs(np.sum(a * a * density) * step - 1) < 1e-9


def test_gelu_tanh_is_close_to_gelu():
    z = np.linspace(-10, 10, 2001)
    assert np.max(np.abs(ref.gelu_tanh(z) - ref.gelu(z))) < 5e-4
    assert np.max(np.abs(ref.gelu_tanh_derivative(z) - ref.gelu_derivative(z))) < 2e-2


def test_silu_is_swish():
    assert ref.PREACTIVATION_ACTIVATIONS["silu"] == ref.PREACTIVATION_ACTIVATIONS["swish"]


def test_derivative_from_output_refuses_a_slope_that_hides_the_sign():
    with pytest.raises(ValueError, match="negative_slope"):
        ref.leaky_relu_derivative_from_output(np.zeros(2), negative_slope=0.0)
    with pytest.raises(ValueError, match="alpha"):
        ref.elu_derivative_from_output(np.zeros(2), alpha=-1.0)


# -------------------------------------------------------------- losses

def _loss_gradient_check(loss, y_pred, y_true, **settings):
    value, grad = loss(y_pred, y_true, **settings)
    numeric = central_difference(lambda p: loss(p, y_true, **settings)[0], y_pred.copy())
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-10)
    return value, grad


def test_mae(rng):
    y_true = rng.standard_normal((6, 3))
    y_pred = y_true + away_from([0.0], rng.standard_normal((6, 3)))
    value, _ = _loss_gradient_check(ref.mae, y_pred, y_true)
    assert value == pytest.approx(np.mean(np.abs(y_pred - y_true)), rel=1e-15)


def test_mae_subgradient_is_zero_where_prediction_equals_target(dtype):
    y = np.array([[1.0, 2.0], [3.0, 4.0]], dtype=dtype)
    p = y.copy()
    p[0, 0] += 1
    p[1, 1] -= 1
    _, grad = ref.mae(p, y)
    np.testing.assert_array_equal(grad, [[0.25, 0.0], [0.0, -0.25]])


@pytest.mark.parametrize("delta", [1.0, 0.3, 2.5])
def test_huber(delta, rng):
    y_true = rng.standard_normal((8, 2))
    d = away_from([-delta, delta], 2 * rng.standard_normal((8, 2)))
    value, grad = _loss_gradient_check(ref.huber, y_true + d, y_true, delta=delta)
    per_element = [0.5 * e * e if abs(e) <= delta else delta * (abs(e) - 0.5 * delta)
                   for e in d.reshape(-1)]
    assert value == pytest.approx(np.mean(per_element), rel=1e-12)
    assert np.max(np.abs(grad)) <= delta / d.size


def test_huber_is_continuous_at_delta():
    y = np.zeros((1, 2))
    below, _ = ref.huber(np.array([[1 - 1e-9, -(1 - 1e-9)]]), y)
    above, _ = ref.huber(np.array([[1 + 1e-9, -(1 + 1e-9)]]), y)
    assert above - below == pytest.approx(2e-9, rel=1e-3)     # slope 1 on both sides
    with pytest.raises(ValueError, match="delta"):
        ref.huber(y, y, delta=0.0)


def test_keras_poisson(rng):
    y_true = rng.poisson(3.0, (5, 3)).astype(np.float64)
    y_pred = rng.uniform(0.1, 6, (5, 3))
    value, _ = _loss_gradient_check(ref.poisson, y_pred, y_true)
    expected = np.mean(y_pred - y_true * np.log(y_pred + 1e-7))
    assert value == pytest.approx(expected, rel=1e-13)


def test_keras_poisson_is_finite_at_zero_prediction(dtype):
    y = np.array([[0.0, 2.0]], dtype=dtype)
    value, grad = ref.poisson(np.zeros((1, 2), dtype=dtype), y)
    assert np.isfinite(value) and np.all(np.isfinite(grad))


def test_half_poisson_from_raw(rng):
    y_true = rng.poisson(2.0, (6, 2)).astype(np.float64)
    raw = rng.uniform(-3, 3, (6, 2))
    value, grad = _loss_gradient_check(ref.half_poisson_from_raw, raw, y_true)
    mu = np.exp(raw)
    deviance = [(yv * math.log(yv / m) if yv > 0 else 0.0) - yv + m
                for yv, m in zip(y_true.reshape(-1), mu.reshape(-1))]
    assert value == pytest.approx(np.mean(deviance), rel=1e-12)
    # the same gradient as Keras's poisson (without epsilon) through mu = exp(raw)
    _, grad_mu = ref.poisson(mu, y_true, epsilon=0.0)
    np.testing.assert_allclose(grad, grad_mu * mu, rtol=1e-12)


def test_half_poisson_from_raw_at_extreme_raw_outputs(dtype):
    y = np.array([[0.0, 3.0, 0.0, 3.0]], dtype=dtype)
    raw = np.array([[1e4, 1e4, -1e4, -1e4]], dtype=dtype)
    with strict():
        value, grad = ref.half_poisson_from_raw(raw, y)
    assert value == np.inf and not np.any(np.isnan(grad))
    assert grad[0, 0] == grad[0, 1] == np.inf
    np.testing.assert_allclose(grad[0, 2:], [0.0, -3 / 4])
    # large but representable: exact, and no loss of log(exp(raw))
    value, grad = ref.half_poisson_from_raw(np.array([[700.0]]), np.array([[2.0]]))
    assert value == pytest.approx(math.exp(700) - 1400 + 2 * math.log(2) - 2, rel=1e-14)


# -------------------------------------------------------- regularizers

@pytest.mark.parametrize("reg,settings", [
    (ref.l1_regularizer, {"l1": 0.03}),
    (ref.l2_regularizer, {"l2": 0.05}),
    (ref.l1_l2_regularizer, {"l1": 0.02, "l2": 0.07}),
])
def test_regularizer_gradient(reg, settings, rng):
    w = away_from([0.0], rng.standard_normal((4, 3)))
    penalty, grad = reg(w, **settings)
    numeric = central_difference(lambda v: reg(v, **settings)[0], w.copy())
    np.testing.assert_allclose(grad, numeric, rtol=1e-7, atol=1e-10)
    expected = (settings.get("l1", 0) * sum(abs(v) for v in w.reshape(-1))
                + settings.get("l2", 0) * sum(v * v for v in w.reshape(-1)))
    assert penalty == pytest.approx(expected, rel=1e-13)


def test_regularizer_defaults_and_zero(dtype):
    w = np.array([0.0, 2.0, -1.0], dtype=dtype)
    assert ref.l1_regularizer(w)[0] == pytest.approx(0.03)
    assert ref.l2_regularizer(w)[0] == pytest.approx(0.05)
    assert ref.l1_l2_regularizer(w)[0] == 0          # Keras 3's L1L2: 0 and 0
    assert ref.l1_l2_regularizer(w, l1=0.01, l2=0.01)[0] == pytest.approx(0.08)
    grad = ref.l1_l2_regularizer(w, l1=0.01, l2=0.01)[1]
    assert grad.dtype == dtype and grad[0] == 0


# ------------------------------------------------------------ clipping

def test_clipnorm_is_per_variable(dtype, rng):
    big = (10 * rng.standard_normal((3, 4))).astype(dtype)
    small = (0.01 * rng.standard_normal(4)).astype(dtype)
    clipped_big, clipped_small = ref.clip_gradients([big, small], clipnorm=1.0)
    assert np.linalg.norm(clipped_big) == pytest.approx(1.0, rel=1e-6)
    np.testing.assert_allclose(clipped_big * np.linalg.norm(big), big, rtol=1e-5)
    np.testing.assert_array_equal(clipped_small, small)      # within the bound: untouched
    np.testing.assert_array_equal(ref.clip_by_norm(np.zeros(3, dtype), 1.0), 0)


def test_global_clipnorm(dtype, rng):
    grads = [(3 * rng.standard_normal((3, 4))).astype(dtype),
             (3 * rng.standard_normal(4)).astype(dtype)]
    total = math.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in grads))
    clipped = ref.clip_gradients(grads, global_clipnorm=1.0)
    new_total = math.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in clipped))
    assert new_total == pytest.approx(1.0, rel=1e-6)
    for g, c in zip(grads, clipped):                     # one scale for all
        np.testing.assert_allclose(c * total, g, rtol=1e-5)
    unclipped = ref.clip_gradients(grads, global_clipnorm=2 * total)
    for g, c in zip(grads, unclipped):
        np.testing.assert_allclose(c, g, rtol=1e-6)
    with_inf = ref.clip_by_global_norm([np.array([np.inf, 1.0]), np.ones(2)], 1.0)
    assert all(np.all(np.isnan(c)) for c in with_inf)     # as Keras: NaN, then refused


def test_clipvalue(dtype):
    g = np.array([-3.0, -0.5, 0.0, 0.25, 7.0], dtype=dtype)
    (clipped,) = ref.clip_gradients([g], clipvalue=0.5)
    np.testing.assert_array_equal(clipped, [-0.5, -0.5, 0.0, 0.25, 0.5])


def test_only_one_clipping_at_a_time():
    with pytest.raises(ValueError, match="clipnorm, clipvalue"):
        ref.clip_gradients([np.ones(2)], clipnorm=1.0, clipvalue=1.0)
    g = np.array([3.0, 4.0])
    np.testing.assert_array_equal(ref.clip_gradients([g])[0], g)


# ---------------------------------------------------------- optimizers
#
# Each step against a loop over the elements written from the reference's
# formula, in the array type's scalars (np.float32 arithmetic for float32).

N_STEPS = 6


def _sequence(dtype, rng, n=101):     # odd: vector loops and their tails
    w = rng.standard_normal(n).astype(dtype)
    grads = [rng.standard_normal(n).astype(dtype) for _ in range(N_STEPS)]
    return w, grads


def _run_twin(name, w, grads, settings):
    state_fn, step, _ = ref.OPTIMIZER_STEPS[name]
    state = state_fn(w, settings)
    for t, g in enumerate(grads, start=1):
        w_before, g_before = w.copy(), g.copy()
        old_state = state
        state_before = {k: np.copy(v) for k, v in state.items()}
        w_new, state = step(w, g, state, settings, t)
        for a, b in [(w, w_before), (g, g_before)] + [(old_state[k], state_before[k])
                                                      for k in state_before]:
            np.testing.assert_array_equal(a, b)          # nothing passed in is modified
        w = w_new
        assert w.dtype == w_before.dtype
    return w, state


def _rmsprop_loop(w, grads, lr=0.001, rho=0.9, momentum=0.0, epsilon=1e-7,
                  centered=False):
    F = type(w[0])
    out = []
    for i in range(len(w)):
        wi, vel, mom, avg = w[i], F(0), F(0), F(0)
        for grad in grads:
            g = grad[i]
            vel = F(rho) * vel + F(1 - rho) * g * g
            if centered:
                avg = F(rho) * avg + F(1 - rho) * g
                den = vel - avg * avg + F(epsilon)
            else:
                den = vel + F(epsilon)
            inc = F(lr) * g / np.sqrt(den)
            if momentum > 0:
                mom = F(momentum) * mom + inc
                wi = wi - mom
            else:
                wi = wi - inc
        out.append(wi)
    return np.array(out, dtype=w.dtype)


def _adamw_loop(w, grads, mask, lr=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                weight_decay=0.004):
    F = type(w[0])
    out = []
    for i in range(len(w)):
        wi, m, v = w[i], F(0), F(0)
        for t, grad in enumerate(grads, start=1):
            g = grad[i]
            if mask is None or mask[i]:
                wi = wi - F(lr * weight_decay) * wi
            m = F(beta_1) * m + F(1 - beta_1) * g
            v = F(beta_2) * v + F(1 - beta_2) * g * g
            m_hat = m / F(1 - beta_1 ** t)
            v_hat = v / F(1 - beta_2 ** t)
            wi = wi - F(lr) * m_hat / (np.sqrt(v_hat) + F(epsilon))
        out.append(wi)
    return np.array(out, dtype=w.dtype)


def _nadam_loop(w, grads, lr=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    F = type(w[0])
    out = []
    for i in range(len(w)):
        wi, m, v, u_product = w[i], F(0), F(0), 1.0
        for t, grad in enumerate(grads, start=1):
            g = grad[i]
            u_t = beta_1 * (1 - 0.5 * 0.96 ** t)
            u_next = beta_1 * (1 - 0.5 * 0.96 ** (t + 1))
            u_product = u_product * u_t
            m = F(beta_1) * m + F(1 - beta_1) * g
            v = F(beta_2) * v + F(1 - beta_2) * g * g
            m_hat = (F(u_next / (1 - u_product * u_next)) * m
                     + F((1 - u_t) / (1 - u_product)) * g)
            v_hat = v / F(1 - beta_2 ** t)
            wi = wi - F(lr) * m_hat / (np.sqrt(v_hat) + F(epsilon))
        out.append(wi)
    return np.array(out, dtype=w.dtype)


def _adagrad_loop(w, grads, lr=0.001, initial_accumulator_value=0.1, epsilon=1e-7):
    F = type(w[0])
    out = []
    for i in range(len(w)):
        wi, acc = w[i], F(initial_accumulator_value)
        for grad in grads:
            g = grad[i]
            acc = acc + g * g
            wi = wi - F(lr) * g / np.sqrt(acc + F(epsilon))
        out.append(wi)
    return np.array(out, dtype=w.dtype)


def _assert_steps_equal(actual, expected, dtype):
    # the same operations in the same order and type, each correctly
    # rounded (NumPy's vector loops included): equal to the last bit
    np.testing.assert_array_equal(actual, expected)
    assert actual.dtype == dtype


@pytest.mark.parametrize("settings", [
    {}, {"momentum": 0.9}, {"centered": True}, {"momentum": 0.5, "centered": True,
                                                "rho": 0.8, "learning_rate": 0.01}],
    ids=["plain", "momentum", "centered", "both"])
def test_rmsprop_against_its_formula(settings, dtype, rng):
    w, grads = _sequence(dtype, rng)
    got, state = _run_twin("rmsprop", w, grads, settings)
    loop_settings = {("lr" if k == "learning_rate" else k): v for k, v in settings.items()}
    _assert_steps_equal(got, _rmsprop_loop(w, grads, **loop_settings), dtype)
    assert ("momentum" in state) == (settings.get("momentum", 0) > 0)
    assert ("average_gradient" in state) == settings.get("centered", False)


@pytest.mark.parametrize("decay", ["all", "mask", "none"])
def test_adamw_against_its_formula(decay, dtype, rng):
    w, grads = _sequence(dtype, rng)
    mask = np.arange(w.size) < 5 if decay == "mask" else None
    settings = {"learning_rate": 0.01, "weight_decay": 0.0 if decay == "none" else 0.1,
                "decay_mask": mask}
    got, _ = _run_twin("adamw", w, grads, settings)
    expected = _adamw_loop(w, grads, mask, lr=0.01, weight_decay=settings["weight_decay"])
    _assert_steps_equal(got, expected, dtype)


def test_adamw_without_decay_is_pynns_adam(dtype, rng):
    w, grads = _sequence(dtype, rng)
    got, _ = _run_twin("adamw", w, grads, {"weight_decay": 0.0})
    w_adam, m, v = w.copy(), np.zeros_like(w), np.zeros_like(w)
    for t, g in enumerate(grads, start=1):
        ref.adam_update(w_adam, g, m, v, t, 0.001)
    np.testing.assert_array_equal(got, w_adam)


def test_adamw_decay_is_decoupled_from_the_gradient(rng):
    # with a zero gradient the moments stay 0 and only the decay acts
    w = rng.standard_normal(5)
    state = ref.adamw_state(w)
    w1, _ = ref.adamw_step(w, np.zeros(5), state, {"learning_rate": 0.1,
                                                    "weight_decay": 0.5}, 1)
    np.testing.assert_allclose(w1, w * (1 - 0.05), rtol=1e-15)


@pytest.mark.parametrize("settings", [{}, {"learning_rate": 0.02, "beta_1": 0.8}],
                         ids=["defaults", "custom"])
def test_nadam_against_its_formula(settings, dtype, rng):
    w, grads = _sequence(dtype, rng)
    got, state = _run_twin("nadam", w, grads, settings)
    loop_settings = {("lr" if k == "learning_rate" else k): v for k, v in settings.items()}
    _assert_steps_equal(got, _nadam_loop(w, grads, **loop_settings), dtype)
    beta_1 = settings.get("beta_1", 0.9)
    expected_product = math.prod(ref.nadam_momentum_cache(beta_1, t)
                                 for t in range(1, N_STEPS + 1))
    assert state["u_product"] == pytest.approx(expected_product, rel=1e-15)


@pytest.mark.parametrize("settings", [{}, {"initial_accumulator_value": 0.5,
                                           "learning_rate": 0.1}],
                         ids=["defaults", "custom"])
def test_adagrad_against_its_formula(settings, dtype, rng):
    w, grads = _sequence(dtype, rng)
    got, state = _run_twin("adagrad", w, grads, settings)
    loop_settings = {("lr" if k == "learning_rate" else k): v for k, v in settings.items()}
    _assert_steps_equal(got, _adagrad_loop(w, grads, **loop_settings), dtype)
    acc0 = settings.get("initial_accumulator_value", 0.1)
    np.testing.assert_allclose(state["accumulator"], acc0 + sum(g * g for g in grads),
                               rtol=1e-6)


def test_optimizer_defaults_are_keras_3s():
    assert ref.RMSPROP_DEFAULTS == {"learning_rate": 0.001, "rho": 0.9, "momentum": 0.0,
                                    "epsilon": 1e-7, "centered": False}
    assert ref.ADAGRAD_DEFAULTS["initial_accumulator_value"] == 0.1
    assert ref.ADAMW_DEFAULTS["weight_decay"] == 0.004
    with pytest.raises(ValueError, match="unknown settings"):
        ref.rmsprop_step(np.ones(2), np.ones(2), ref.rmsprop_state(np.ones(2)), {"beta": 1})


# ------------------------------------------------------------- dropout

def test_dropout(dtype, rng):
    x = rng.standard_normal((6, 5)).astype(dtype)
    keep = rng.random((6, 5)) >= 0.4
    y = ref.dropout_forward(x, keep, 0.4, training=True)
    expected = np.where(keep, x * dtype(1 / 0.6), 0).astype(dtype)
    np.testing.assert_array_equal(y, expected)
    assert y.dtype == dtype
    assert ref.dropout_forward(x, keep, 0.4, training=False) is x
    assert ref.dropout_forward(x, keep, 0.0, training=True) is x
    r = rng.standard_normal((6, 5))
    x64 = x.astype(np.float64)
    numeric = central_difference(lambda v: np.sum(ref.dropout_forward(v, keep, 0.4) * r),
                                 x64.copy())
    np.testing.assert_allclose(ref.dropout_backward(r, keep, 0.4), numeric, rtol=1e-8,
                               atol=1e-8)
    np.testing.assert_array_equal(ref.dropout_forward(x, keep, 1.0), np.zeros_like(x))
    with pytest.raises(ValueError, match="rate"):
        ref.dropout_forward(x, keep, 1.5)


# -------------------------------------------------------- normalisation

@pytest.mark.parametrize("layer,training", [("batch", True), ("batch", False),
                                            ("layer", True)])
def test_normalisation_backward_matches_central_differences(layer, training, rng):
    x = 2 + 3 * rng.standard_normal((7, 4))
    gamma, beta = rng.uniform(0.5, 2, 4), rng.standard_normal(4)
    r = rng.standard_normal((7, 4))
    kw = {"training": training} if layer == "batch" else {}
    if layer == "batch":
        moving = (rng.standard_normal(4), rng.uniform(0.5, 2, 4))

        def loss(x_, g_, b_):
            return float(np.sum(ref.batchnorm_forward(x_, g_, b_, *moving, **kw)[0] * r))
        _, cache, _, _ = ref.batchnorm_forward(x, gamma, beta, *moving, **kw)
        grads = ref.batchnorm_backward(r, cache, gamma)
    else:
        def loss(x_, g_, b_):
            return float(np.sum(ref.layernorm_forward(x_, g_, b_)[0] * r))
        _, cache = ref.layernorm_forward(x, gamma, beta)
        grads = ref.layernorm_backward(r, cache, gamma)
    numeric = [central_difference(lambda v: loss(v, gamma, beta), x.copy()),
               central_difference(lambda v: loss(x, v, beta), gamma.copy()),
               central_difference(lambda v: loss(x, gamma, v), beta.copy())]
    for got, expected in zip(grads, numeric):
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-8)


def test_batchnorm_forward_and_moving_statistics(dtype, rng):
    x = (5 + 2 * rng.standard_normal((16, 3))).astype(dtype)
    gamma = np.array([1.0, 2.0, 0.5], dtype=dtype)
    beta = np.array([0.0, -1.0, 3.0], dtype=dtype)
    moving_mean = np.array([0.5, 0.0, -0.5], dtype=dtype)
    moving_var = np.array([1.0, 2.0, 0.5], dtype=dtype)
    y, _, new_mean, new_var = ref.batchnorm_forward(x, gamma, beta, moving_mean,
                                                    moving_var, training=True)
    x64 = x.astype(np.float64)
    mean, var = x64.mean(axis=0), x64.var(axis=0)                 # biased, as Keras
    tol = dict(rtol=2e-5, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-12)
    np.testing.assert_allclose(y, gamma * (x64 - mean) / np.sqrt(var + 1e-3) + beta, **tol)
    np.testing.assert_allclose(new_mean, moving_mean * 0.99 + mean * 0.01, **tol)
    np.testing.assert_allclose(new_var, moving_var * 0.99 + var * 0.01, **tol)
    y_inf, _, same_mean, same_var = ref.batchnorm_forward(x, gamma, beta, moving_mean,
                                                          moving_var, training=False)
    np.testing.assert_allclose(
        y_inf, gamma * (x64 - moving_mean) / np.sqrt(moving_var + 1e-3) + beta, **tol)
    assert same_mean is moving_mean and same_var is moving_var
    assert y.dtype == y_inf.dtype == new_mean.dtype == dtype


def test_layernorm_forward(dtype, rng):
    x = (rng.standard_normal((5, 6)) * rng.uniform(0.1, 10, (5, 1))).astype(dtype)
    gamma = rng.uniform(0.5, 2, 6).astype(dtype)
    beta = rng.standard_normal(6).astype(dtype)
    y, _ = ref.layernorm_forward(x, gamma, beta)
    x64 = x.astype(np.float64)
    mean, var = x64.mean(axis=1, keepdims=True), x64.var(axis=1, keepdims=True)
    tol = dict(rtol=2e-5, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-12)
    np.testing.assert_allclose(y, gamma * (x64 - mean) / np.sqrt(var + 1e-3) + beta, **tol)
    assert y.dtype == dtype
