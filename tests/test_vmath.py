"""The vectorised exp, tanh and sigmoid of csrc/pynn/kernels/vmath.h against libm's in
long double, on every instruction-set path this CPU runs: within the
documented bound in ulps on a dense grid and at the extremes, and the same
bits on every path."""
import numpy as np
import pytest

from pynn import _elementwise as vm
from conftest import assert_shuffled_epoch_equals_steps

DTYPES = [np.float32, np.float64]
PATHS = vm.supported_isas()


def _exact(name, x):
    """name(x) in long double (64-bit significand on x86-64): far finer than a ulp."""
    ld = x.astype(np.longdouble)
    with np.errstate(over="ignore"):
        if name == "exp":
            return np.exp(ld)
        if name == "tanh":
            return np.tanh(ld)
        return 1 / (1 + np.exp(-ld))


def _ulps(name, x, y):
    """|y - exact| in units in the last place of the exact value rounded to y's dtype."""
    exact = _exact(name, x)
    with np.errstate(over="ignore"):
        rounded = exact.astype(x.dtype)
    finite = np.isfinite(rounded)
    err = np.zeros(x.shape)
    spacing = np.spacing(np.abs(rounded[finite])).astype(np.longdouble)
    err[finite] = np.abs(y[finite].astype(np.longdouble) - exact[finite]) / spacing
    # where the exact value rounds to inf, so must the result
    assert np.all(y[~finite] == rounded[~finite]), name
    return err


def _grid(name, dtype):
    """Every range where the function's shape changes, densely, and the powers of ten."""
    if name == "tanh":
        lo, hi = -25.0, 25.0
    elif dtype == np.float32:
        lo, hi = (-105.0, 90.0) if name == "exp" else (-105.0, 20.0)
    else:
        lo, hi = (-746.0, 710.0) if name == "exp" else (-746.0, 40.0)
    tiny = np.geomspace(np.finfo(dtype).tiny, 2.0, 200_000)
    parts = [np.linspace(lo, hi, 1_500_001), np.linspace(-2, 2, 400_001), tiny, -tiny]
    return np.concatenate(parts).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", vm.FUNCTIONS)
def test_within_the_documented_ulp_bound_on_a_dense_grid(name, dtype):
    x = _grid(name, dtype)
    err = _ulps(name, x, vm.apply(name, x))
    worst = err.max()
    assert worst <= vm.MAX_ULP[name], (name, dtype, worst, x[err.argmax()])
    # the bound is a measured one, not a loose guess
    assert worst > 0.5 * vm.MAX_ULP[name]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", vm.FUNCTIONS)
def test_every_path_gives_the_same_bits(name, dtype):
    rng = np.random.default_rng(3)
    # lengths around the vector widths, so that loop tails are covered too
    for n in (1, 3, 7, 8, 15, 16, 17, 31, 33, 1000):
        x = (rng.standard_normal(n) * 30).astype(dtype)
        results = [vm.apply(name, x, isa) for isa in PATHS]
        for isa, y in zip(PATHS, results):
            np.testing.assert_array_equal(y.view(np.uint8), results[0].view(np.uint8),
                                          err_msg=f"{name} {isa}")
    x = _grid(name, dtype)
    results = [vm.apply(name, x, isa) for isa in PATHS]
    for isa, y in zip(PATHS, results):
        assert np.array_equal(y, results[0], equal_nan=True), (name, isa)


@pytest.mark.parametrize("isa", PATHS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_extremes_infinities_and_nan(dtype, isa):
    big = dtype(1e4)
    x = np.array([big, -big, np.inf, -np.inf, np.nan, 0.0, -0.0], dtype)
    e, t, s = (vm.apply(name, x, isa) for name in vm.FUNCTIONS)
    np.testing.assert_array_equal(e[:4], [np.inf, 0, np.inf, 0])
    np.testing.assert_array_equal(t[:4], [1, -1, 1, -1])
    np.testing.assert_array_equal(s[:4], [1, 0, 1, 0])
    assert np.isnan(e[4]) and np.isnan(t[4]) and np.isnan(s[4])
    np.testing.assert_array_equal(e[5:], [1, 1])
    np.testing.assert_array_equal(s[5:], [0.5, 0.5])
    # tanh is odd down to the sign of zero
    assert t[5] == 0 and not np.signbit(t[5]) and np.signbit(t[6])
    for y in (e, t, s):
        assert y.dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
def test_subnormal_outputs_are_gradual_not_flushed(dtype):
    info = np.finfo(dtype)
    # exp(x) and sigmoid(x) ~ exp(x) fall through the subnormal range here
    lo = np.log(float(info.smallest_subnormal))
    x = np.linspace(np.log(float(info.tiny)), lo, 20_001).astype(dtype)
    for name in ("exp", "sigmoid"):
        y = vm.apply(name, x)
        sub = (y > 0) & (y < info.tiny)
        assert sub.sum() > 0.9 * x.size, name
        exact = _exact(name, x).astype(dtype)
        # a subnormal result is off by at most one step of the smallest subnormal
        steps = np.abs(y.astype(np.float64) - exact) / float(info.smallest_subnormal)
        assert steps.max() <= 1, name
    assert vm.apply("exp", np.array([lo - 1], dtype))[0] == 0


def test_paths_listed_and_refused_by_name():
    assert PATHS[0] == "default" and vm.isa() in PATHS
    assert set(PATHS) <= set(vm.ISAS)
    with pytest.raises(ValueError, match="isa must be one of"):
        vm.apply("exp", np.zeros(3), "sse9")
    with pytest.raises(ValueError, match="name must be one of"):
        vm.apply("erf", np.zeros(3))
    with pytest.raises(TypeError, match="float32 or float64"):
        vm.apply("exp", np.zeros(3, np.int64))
    x = np.linspace(-3, 3, 11)
    before = x.copy()
    vm.apply("tanh", x)
    np.testing.assert_array_equal(x, before)  # the caller's array is left alone


# ---------------------------------------------------- in the network kernels

def _net(dtype, seed=0):
    import pynn
    from conftest import make_model
    # softmax under MSE is not fused into the loss: the forward pass applies it
    return make_model((16, "tanh"), (12, "sigmoid"), (5, "softmax"), input_dim=7,
                      dtype=dtype, seed=seed,
                      optimizer=pynn.SGD(learning_rate=0.05, momentum=0.9, nesterov=True))


@pytest.mark.parametrize("dtype", DTYPES)
def test_tanh_sigmoid_softmax_layers_match_the_reference(dtype):
    from conftest import TOL
    from pynn import reference
    rng = np.random.default_rng(8)
    x = (rng.standard_normal((37, 7)) * 3).astype(dtype)
    y = rng.random((37, 5)).astype(dtype)
    net = _net(dtype)
    ref = reference.ReferenceNetwork(net.get_weights(), ["tanh", "sigmoid", "softmax"],
                                     learning_rate=0.05, momentum=0.9, nesterov=True)
    tol = TOL[dtype]
    np.testing.assert_allclose(net.predict(x), ref.predict(x), **tol)
    for _ in range(3):
        np.testing.assert_allclose(net.train_on_batch(x, y), ref.train_step(x, y),
                                   rtol=tol["rtol"])
    for a, b in zip(net.get_weights(), ref.get_weights()):
        np.testing.assert_allclose(a, b, rtol=10 * tol["rtol"], atol=10 * tol["atol"])


@pytest.mark.parametrize("dtype", DTYPES)
def test_compiled_epoch_equals_train_on_batch_through_these_layers(dtype):
    rng = np.random.default_rng(9)
    x = (rng.standard_normal((53, 7)) * 3).astype(dtype)
    y = rng.random((53, 5)).astype(dtype)
    order = rng.permutation(53).astype(np.intp)
    assert_shuffled_epoch_equals_steps(lambda: _net(dtype), x, y, order, 10)


def _info(**env):
    import os
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-m", "pynn", "info"], capture_output=True,
                         text=True, check=True, env=dict(os.environ, **env))
    return [line for line in out.stdout.splitlines() if line.startswith("exp/tanh")][0]


def test_info_names_the_path_and_pynn_vmath_picks_a_narrower_one():
    assert f"the {vm.isa()} path" in _info()
    assert "the default path" in _info(PYNN_VMATH="default")
    line = _info(PYNN_VMATH="sse9")
    assert f"the {vm.isa()} path" in line and "not understood" in line


def test_out_in_place_and_refused_outs():
    x = np.linspace(-5, 5, 33)
    expected = vm.apply("sigmoid", x)
    z = x.copy()
    assert vm.apply("sigmoid", z, out=z) is z
    np.testing.assert_array_equal(z, expected)
    out = np.empty_like(x)
    assert vm.apply("sigmoid", x, out=out) is out
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(x, np.linspace(-5, 5, 33))
    for bad in (np.empty(33, np.float32), np.empty(32), np.empty(66)[::2], [0.0] * 33):
        with pytest.raises(ValueError, match="out must be"):
            vm.apply("sigmoid", x, out=bad)
