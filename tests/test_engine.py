"""The compiled training path: same results as the Python-level path, no allocation."""
import tracemalloc

import numpy as np
import pytest

import pynn
from conftest import assert_shuffled_epoch_equals_steps, make_model
from pynn import reference
from pynn.training.runners import run_batches


def make_net(dtype, seed=0):
    return make_model((24, "relu"), (16, "tanh"), (3, None), input_dim=10, dtype=dtype,
                      seed=seed,
                      optimizer=pynn.SGD(learning_rate=0.01, momentum=0.9, nesterov=True))


def test_compiled_epoch_equals_train_on_batch_sequence(dtype, rng):
    """train_batches (gather + steps in C) == gathering in NumPy + train_on_batch."""
    x = rng.standard_normal((103, 10)).astype(dtype)
    y = rng.standard_normal((103, 3)).astype(dtype)
    order = rng.permutation(103).astype(np.intp)
    a, b = assert_shuffled_epoch_equals_steps(lambda: make_net(dtype), x, y, order, 10)
    assert a.optimizer.iterations == b.optimizer.iterations == 11


def test_compiled_epoch_matches_reference(dtype, rng):
    x = rng.standard_normal((64, 10)).astype(dtype)
    y = rng.standard_normal((64, 3)).astype(dtype)
    net = make_net(dtype)
    ref = reference.ReferenceNetwork(net.get_weights(), ["relu", "tanh", "linear"],
                                     learning_rate=0.01, momentum=0.9, nesterov=True)
    net.fit(x, y, epochs=3, batch_size=16, shuffle=False, verbose=0)
    for _ in range(3):
        for k in range(0, 64, 16):
            ref.train_step(x[k:k + 16], y[k:k + 16])
    tol = 2e-5 if dtype == np.float32 else 1e-12
    for a, b in zip(net.get_weights(), ref.get_weights()):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def test_divergence_inside_compiled_epoch_stops_at_that_batch(rng):
    x = rng.standard_normal((40, 10)) * 1e20
    y = rng.standard_normal((40, 3))
    net = make_net(np.float32)
    net.compile(loss="mse", optimizer=pynn.SGD(learning_rate=1e10))
    losses = np.empty(4)
    done = run_batches(net, x.astype(np.float32), y.astype(np.float32), None, 10, 0, 4,
                       losses)
    assert done < 4
    assert np.all(np.isfinite(net.params))


def test_nan_in_batch_is_refused_before_any_update(rng):
    net = make_net(np.float64)
    x = rng.standard_normal((8, 10))
    y = rng.standard_normal((8, 3))
    x[2, 3] = np.nan
    before = net.params.copy()
    with pytest.raises(ValueError, match="x contains 1 NaN"):
        net.train_on_batch(x, y)
    x[2, 3] = 0
    y[0, 0] = np.inf
    with pytest.raises(ValueError, match="y contains 1 NaN"):
        net.train_on_batch(x, y)
    np.testing.assert_array_equal(net.params, before)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_steady_state_training_allocates_nothing(dtype, rng):
    """1000 train steps (and a fit) after warm-up: no NumPy or Python memory held or churned."""
    net = make_net(dtype)
    x = rng.standard_normal((64, 10)).astype(dtype)   # 2.5-5 KiB: any copy would show
    y = rng.standard_normal((64, 3)).astype(dtype)
    xs = rng.standard_normal((640, 10)).astype(dtype)
    ys = rng.standard_normal((640, 3)).astype(dtype)
    net.train_on_batch(x, y)
    net.fit(xs, ys, epochs=1, batch_size=64, verbose=0)
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for _ in range(1000):
            net.train_on_batch(x, y)
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert current - base < 512, current - base     # nothing kept
    assert peak - base < 1024, peak - base          # no batch-sized temporary


@pytest.mark.parametrize("make_opt", [lambda: pynn.Adam(0.01),
                                      lambda: pynn.SGD(pynn.InverseScaling(0.05, power_t=0.5),
                                                       momentum=0.9)])
def test_step_dependent_optimizers_in_the_compiled_epoch(dtype, rng, make_opt):
    """Adam's bias correction and a schedule advance inside one compiled epoch
    exactly as they do across train_on_batch calls."""
    x = rng.standard_normal((50, 10)).astype(dtype)
    y = rng.standard_normal((50, 3)).astype(dtype)
    a, b = make_net(dtype), make_net(dtype)
    a.compile(loss="mse", optimizer=make_opt())
    b.compile(loss="mse", optimizer=make_opt())
    a.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0)
    for _ in range(2):
        for k in range(0, 50, 8):
            b.train_on_batch(x[k:k + 8], y[k:k + 8])
    np.testing.assert_array_equal(a.params, b.params)
    assert a.optimizer.iterations == b.optimizer.iterations == 14


@pytest.mark.parametrize("loss, activation, units, kind", [
    ("binary_crossentropy", "sigmoid", 1, "binary"),
    (pynn.BinaryCrossentropy(from_logits=True), "linear", 3, "binary"),
    ("categorical_crossentropy", "softmax", 4, "onehot"),
    ("sparse_categorical_crossentropy", "softmax", 4, "labels"),
    ("mse", "linear", 1, "binary"),
])
def test_compiled_accuracy_equals_the_numpy_metric(loss, activation, units, kind, rng):
    """Accuracies computed inside the compiled epoch == pynn.metrics on each batch."""
    x = rng.standard_normal((90, 10))
    if kind == "labels":
        y = rng.integers(0, units, 90)
    elif kind == "onehot":
        y = np.eye(units)[rng.integers(0, units, 90)]
    else:
        y = (rng.random((90, units)) > 0.5).astype(float)
    runs = []
    for compiled in (True, False):
        net = pynn.Sequential([pynn.Dense(8, activation="tanh", input_dim=10),
                               pynn.Dense(units, activation=activation)], dtype="float64",
                              seed=3)
        net.compile(loss=loss, optimizer=pynn.SGD(0.1, momentum=0.5), metrics=["accuracy"])
        assert net._metrics_compiled
        if not compiled:
            net._metrics_compiled = False     # the per-batch NumPy path
        runs.append(net.fit(x, y, epochs=3, batch_size=16, verbose=0).history)
    np.testing.assert_array_equal(runs[0]["accuracy"], runs[1]["accuracy"])
    np.testing.assert_array_equal(runs[0]["loss"], runs[1]["loss"])
    assert 0 < runs[0]["accuracy"][-1] <= 1


def test_bounds_fall_back_to_the_exact_check_near_the_top_of_the_range(rng):
    """Inside a compiled epoch, steps are vouched for by carried bounds; with a
    parameter near float32's largest values the bounds give up on every step
    and the exact check decides: here every update is finite, so all apply,
    exactly as through train_on_batch (which always checks exactly)."""
    x = rng.standard_normal((64, 10)).astype(np.float32)
    y = rng.standard_normal((64, 3)).astype(np.float32)
    a, b = make_net(np.float32), make_net(np.float32)
    for net in (a, b):
        net.layers[0].b[0] = -2e38      # a dead relu unit: output 0, gradient 0
    losses = np.empty(8)
    assert run_batches(a, x, y, None, 8, 0, 8, losses) == 8
    for k in range(8):
        b.train_on_batch(x[8 * k:8 * k + 8], y[8 * k:8 * k + 8])
    np.testing.assert_array_equal(a.params, b.params)
    assert a.layers[0].b[0] == np.float32(-2e38)
    assert np.all(np.isfinite(a.params))


def test_optimizer_changed_after_compile_gets_a_state_of_its_own(rng):
    """Momentum turned on, or a new optimizer assigned, after compile: the
    compiled network is handed a state buffer of the right size first (it
    used to run past a 1-element placeholder)."""
    x = rng.standard_normal((64, 10))
    y = rng.standard_normal((64, 3))
    net = make_net(np.float64)
    opt = pynn.SGD(0.01)
    net.compile(loss="mse", optimizer=opt)
    opt.momentum = 0.9
    net.fit(x, y, epochs=2, batch_size=8, verbose=0)
    assert opt.state.shape == net.params.shape and np.any(opt.state != 0)
    net.optimizer = pynn.Adam(0.01)
    net.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert net.optimizer.state.shape == (2 * net.params.shape[0],)
    assert np.all(np.isfinite(net.params))


def test_metric_objects_must_fit_the_targets():
    from pynn.metrics import Metric, binary_accuracy
    net = pynn.Sequential([pynn.Dense(4, input_dim=3, activation="softmax")], seed=0)
    with pytest.raises(ValueError, match="does not fit"):
        net.compile(loss="sparse_categorical_crossentropy",
                    metrics=[Metric("bin", binary_accuracy)])


@pytest.mark.parametrize("make_opt, x, y", [
    # g + wd w overflows float32 although lr (g + wd w) would not
    (lambda: pynn.SGD(learning_rate=2e-30, weight_decay=1e30), 1e19, -1e19),
    # Adam's intermediate lr * m / bc1 overflows although the bound does not
    (lambda: pynn.Adam(learning_rate=1e20, epsilon=1e30), 1e10, -1e9),
])
def test_overflow_inside_an_update_is_refused_on_every_path(make_opt, x, y):
    xs = np.array([[x], [1.0]], np.float32)
    ys = np.array([[y], [0.0]], np.float32)
    for path in ("train_on_batch", "fit"):
        net = pynn.Sequential([pynn.Dense(1, input_dim=1)], dtype="float32", seed=0)
        net.compile(loss="mse", optimizer=make_opt())
        net.set_weights([np.zeros((1, 1)), np.zeros(1)])
        try:
            if path == "fit":
                net.fit(xs, ys, epochs=2, batch_size=1, shuffle=False, verbose=0)
            else:
                for k in range(2):
                    net.train_on_batch(xs[k:k + 1], ys[k:k + 1])
        except pynn.DivergenceError:
            pass
        assert np.all(np.isfinite(net.params)), path
        assert np.all(np.isfinite(net.optimizer.state)), path


def test_byte_swapped_and_unaligned_input_is_converted(rng):
    net = pynn.Sequential([pynn.Dense(2, input_dim=3)], dtype="float64", seed=0)
    net.compile(loss="mse", optimizer="sgd")
    x = rng.standard_normal((4, 3))
    y = rng.standard_normal((4, 2))
    expected = net.gradients(x, y)[0]
    assert net.gradients(x.astype(">f8"), y.astype(">f8"))[0] == expected
    raw = np.zeros(4 * 3 * 8 + 1, np.uint8)[1:].view(np.float64).reshape(4, 3)  # unaligned
    raw[...] = x
    assert not raw.flags.aligned
    assert net.gradients(raw, y)[0] == expected
    net.train_on_batch(x.astype(">f8"), y.astype(">f8"))
    net.fit(raw, y, epochs=1, verbose=0)


@pytest.mark.parametrize("n", [1, 3, 15, 16, 17, 31, 100, 1023, 100_003])
def test_the_epochs_gradient_bound_is_at_least_the_exact_sum(dtype, n, rng):
    # the sum of |g| that lets a compiled epoch skip the exact check, in 16
    # partial sums: never below the exact sum, within its rounding margin above
    from fractions import Fraction
    from pynn import _optim
    u = np.finfo(dtype).eps / 2
    for scale in (1.0, 1e-30, 1e30):
        x = (rng.standard_normal(n) * scale).astype(dtype)
        x[::7] = np.finfo(dtype).tiny * 3               # tiny magnitudes among big ones
        exact = sum(Fraction(float(abs(v))) for v in x)
        bound = _optim.sum_abs_bound(x)
        assert Fraction(bound) >= exact
        assert bound <= float(exact) * (1 + 3 * (n / 16 + 32) * u) * (1 + 1e-12)
    x = np.ones(n, dtype)
    for bad in (np.nan, np.inf, -np.inf):
        x[n // 2] = bad
        assert _optim.sum_abs_bound(x) == np.inf
    # past the type's range: inf when a partial sum overflows, a bound all the same
    big = np.full(16 * n + 1, np.finfo(dtype).max / 2, dtype)
    bound = _optim.sum_abs_bound(big)
    assert bound == np.inf or bound >= float(np.finfo(dtype).max / 2) * big.size
