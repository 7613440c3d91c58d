"""Tests of pynn.initializers: formulas, lookup, serialization, errors."""
import json
import math

import numpy as np
import pytest
from scipy import stats

from pynn import initializers as I
from pynn._random import Generator

TRUNC = 0.87962566103423978

# (name, expected variance as a function of (fan_in, fan_out), distribution)
VARIANCE_SCALING = [
    ("glorot_normal", lambda fi, fo: 2.0 / (fi + fo), "truncated_normal"),
    ("glorot_uniform", lambda fi, fo: 2.0 / (fi + fo), "uniform"),
    ("he_normal", lambda fi, fo: 2.0 / fi, "truncated_normal"),
    ("he_uniform", lambda fi, fo: 2.0 / fi, "uniform"),
    ("lecun_normal", lambda fi, fo: 1.0 / fi, "truncated_normal"),
    ("lecun_uniform", lambda fi, fo: 1.0 / fi, "uniform"),
]
SHAPES = [(300, 700), (1000, 200), (50, 4000), (200_000,)]


def _fans(shape):
    return (shape[0], shape[0]) if len(shape) == 1 else (shape[1], shape[0])


@pytest.mark.parametrize("name, variance, dist", VARIANCE_SCALING)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_variance_scaling_matches_formula(name, variance, dist, shape, dtype):
    fan_in, fan_out = _fans(shape)
    var = variance(fan_in, fan_out)
    out = np.empty(shape, dtype=dtype)
    I.get(name)(out, Generator(1))
    x = out.reshape(-1).astype(np.float64)
    n = x.size
    std = math.sqrt(var)
    # Mean and variance within 5 standard errors (fourth moment of the
    # distribution: uniform 9/5 var^2, normal truncated at 2: about 2.36 var^2).
    assert abs(x.mean()) < 5 * std / math.sqrt(n)
    mu4 = (1.8 if dist == "uniform" else 2.37) * var * var
    assert abs(x.var() - var) < 5 * math.sqrt((mu4 - var * var) / n), (x.var(), var)
    if dist == "uniform":
        limit = math.sqrt(3 * var)
        assert x.min() >= -limit and x.max() < limit
        assert x.max() > 0.999 * limit and x.min() < -0.999 * limit
        target = stats.uniform(-limit, 2 * limit)
    else:
        s = std / TRUNC
        bound = float(np.asarray(2 * s, dtype=dtype))
        assert np.abs(x).max() <= bound
        target = stats.truncnorm(-2, 2, scale=s)
    assert stats.kstest(x[:100_000], target.cdf).pvalue > 1e-4


def test_variance_check_has_power():
    # He normal is not LeCun normal: the same check would catch a wrong scale.
    out = np.empty((300, 700))
    I.get("he_normal")(out, Generator(1))
    var = 1.0 / 700
    mu4 = 2.37 * var * var
    assert abs(out.var() - var) > 5 * math.sqrt((mu4 - var * var) / out.size)


@pytest.mark.parametrize("mode, expected", [("fan_in", 40), ("fan_out", 10), ("fan_avg", 25)])
def test_variance_scaling_modes_and_scale(mode, expected):
    init = I.VarianceScaling(scale=3.0, mode=mode, distribution="uniform")
    out = np.empty((10, 40))
    init(out, Generator(2))
    limit = math.sqrt(3 * 3.0 / expected)
    assert out.max() < limit and out.max() > 0.98 * limit
    assert init._variance(out.shape) == pytest.approx(3.0 / expected)


def test_compute_fans():
    assert I.compute_fans((5, 7)) == (7, 5)
    assert I.compute_fans((9,)) == (9, 9)
    assert I.compute_fans(()) == (1, 1)
    assert I.compute_fans((4, 3, 2, 2)) == (12, 16)


@pytest.mark.parametrize("name, mean, std, dist", [
    ("random_normal", 0.0, 0.05, "normal"),
    ("truncated_normal", 0.0, 0.05 * TRUNC, "truncated"),
    ("random_uniform", 0.0, 0.1 / math.sqrt(12), "uniform"),
])
def test_default_random_initializers(name, mean, std, dist):
    out = np.empty(400_000)
    I.get(name)(out, Generator(3))
    assert abs(out.mean() - mean) < 5 * std / math.sqrt(out.size)
    assert out.std() == pytest.approx(std, rel=0.01)
    if dist == "truncated":
        assert np.abs(out).max() <= 0.1
    if dist == "uniform":
        assert out.min() >= -0.05 and out.max() < 0.05


def test_explicit_random_initializers():
    out = np.empty(400_000, np.float32)
    I.RandomNormal(mean=1.0, stddev=2.0)(out, Generator(4))
    assert out.mean() == pytest.approx(1.0, abs=0.02) and out.std() == pytest.approx(2.0, rel=0.01)
    I.TruncatedNormal(mean=-1.0, stddev=0.5)(out, Generator(4))
    assert out.min() >= -2.0 and out.max() <= 0.0
    assert out.std() == pytest.approx(0.5 * TRUNC, rel=0.01)
    I.RandomUniform(minval=2.0, maxval=3.0)(out, Generator(4))
    assert out.min() >= 2.0 and out.max() < 3.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_constants_exact(dtype):
    out = np.full((3, 4), 7.0, dtype=dtype)
    assert I.get("zeros")(out, Generator(0)) is out
    assert np.all(out == 0)
    I.get("ones")(out)            # no generator needed
    assert np.all(out == 1)
    I.Constant(2.5)(out, None)
    assert np.all(out == 2.5) and out.dtype == dtype
    I.get({"class_name": "Constant", "config": {"value": -3}})(out)
    assert np.all(out == -3)


def test_fills_views_into_a_flat_buffer_in_place():
    # As the model does: W and b are views of one parameter buffer.
    params = np.full(5 * 3 + 5 + 2, np.nan)
    W = params[:15].reshape(5, 3)
    b = params[15:20]
    g = Generator(5)
    I.get("glorot_uniform")(W, g)
    I.get("zeros")(b, g)
    assert np.all(np.isfinite(params[:20])) and np.all(np.isnan(params[20:]))
    assert np.all(b == 0)
    limit = math.sqrt(6 / 8)
    assert np.abs(W).max() < limit


def test_same_seed_same_weights():
    a, b = np.empty((20, 30)), np.empty((20, 30))
    I.get("he_normal")(a, I.make_generator(9))
    I.get("he_normal")(b, I.make_generator(9))
    np.testing.assert_array_equal(a, b)
    I.get("he_normal")(b, I.make_generator(10))
    assert not np.any(a == b)


def test_make_generator():
    g = I.make_generator(3)
    assert isinstance(g, Generator)
    assert g.get_state() == Generator(3).get_state()
    assert isinstance(I.make_generator(None), Generator)
    with pytest.raises(TypeError):
        I.make_generator(1.5)


def test_empty_arrays_are_fine():
    g = Generator(0)
    before = g.get_state()
    I.get("glorot_normal")(np.empty((0, 5)), g)
    assert g.get_state() == before


# --------------------------------------------------------------------------
# get / serialize
# --------------------------------------------------------------------------

NAMES = ["zeros", "ones", "constant", "random_normal", "random_uniform",
         "truncated_normal", "variance_scaling", "glorot_normal", "glorot_uniform",
         "he_normal", "he_uniform", "lecun_normal", "lecun_uniform"]


@pytest.mark.parametrize("name", NAMES)
def test_get_by_name_and_class_name(name):
    init = I.get(name)
    assert isinstance(init, I.Initializer)
    by_class = I.get(type(init).__name__)
    assert type(by_class) is type(init)
    assert I.get(init) is init


def test_named_variance_scaling_are_variance_scaling():
    for name, settings in [("glorot_normal", (1.0, "fan_avg", "truncated_normal")),
                           ("glorot_uniform", (1.0, "fan_avg", "uniform")),
                           ("he_normal", (2.0, "fan_in", "truncated_normal")),
                           ("he_uniform", (2.0, "fan_in", "uniform")),
                           ("lecun_normal", (1.0, "fan_in", "truncated_normal")),
                           ("lecun_uniform", (1.0, "fan_in", "uniform"))]:
        init = I.get(name)
        assert isinstance(init, I.VarianceScaling)
        assert (init.scale, init.mode, init.distribution) == settings
        # Same numbers as the equivalent VarianceScaling.
        a, b = np.empty((30, 20)), np.empty((30, 20))
        init(a, Generator(6))
        I.VarianceScaling(*settings)(b, Generator(6))
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("init", [
    I.Zeros(), I.Ones(), I.Constant(0.25), I.RandomNormal(1.0, 0.5),
    I.RandomUniform(-2.0, 3.0), I.TruncatedNormal(0.5, 0.1),
    I.VarianceScaling(0.5, "fan_out", "uniform"), I.GlorotNormal(), I.GlorotUniform(),
    I.HeNormal(), I.HeUniform(), I.LecunNormal(), I.LecunUniform(),
])
def test_serialize_round_trip(init):
    config = I.serialize(init)
    assert set(config) == {"class_name", "config"}
    text = json.dumps(config)                 # JSON-able
    back = I.get(json.loads(text))
    assert type(back) is type(init) and back == init
    assert I.deserialize(config) == init
    assert I.serialize(back) == config
    a, b = np.empty((7, 9)), np.empty((7, 9))
    init(a, Generator(8))
    back(b, Generator(8))
    np.testing.assert_array_equal(a, b)


def test_get_config_values():
    assert I.RandomUniform(-1, 2).get_config() == {"minval": -1.0, "maxval": 2.0}
    assert I.VarianceScaling().get_config() == {
        "scale": 1.0, "mode": "fan_in", "distribution": "truncated_normal"}
    assert I.serialize(I.HeUniform()) == {"class_name": "HeUniform", "config": {}}
    assert I.get({"class_name": "he_uniform"}) == I.HeUniform()
    assert I.get({"class_name": "RandomNormal", "config": {"stddev": 2}}).stddev == 2.0


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------

def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="glorot_unifrom") as info:
        I.get("glorot_unifrom")
    for name in NAMES:
        assert name in str(info.value)


@pytest.mark.parametrize("bad, exc", [
    (None, TypeError), (3, TypeError), (["zeros"], TypeError),
    ({"class_name": "Nope"}, ValueError),
    ({"config": {}}, ValueError),
    ({"class_name": "Zeros", "extra": 1}, ValueError),
    ({"class_name": 5, "config": {}}, TypeError),
    ({"class_name": "RandomNormal", "config": {"std": 1.0}}, ValueError),
    ({"class_name": "RandomNormal", "config": [1.0]}, TypeError),
    ({"class_name": "GlorotUniform", "config": {"scale": 2.0}}, ValueError),
])
def test_get_errors(bad, exc):
    with pytest.raises(exc):
        I.get(bad)


@pytest.mark.parametrize("make, exc, pattern", [
    (lambda: I.RandomNormal(stddev=-1.0), ValueError, "stddev.*-1.0"),
    (lambda: I.TruncatedNormal(stddev=-0.1), ValueError, "stddev.*-0.1"),
    (lambda: I.RandomNormal(mean=float("nan")), ValueError, "mean.*nan"),
    (lambda: I.RandomNormal(stddev="1"), TypeError, "stddev.*'1'"),
    (lambda: I.RandomUniform(1.0, 1.0), ValueError, "minval=1.0, maxval=1.0"),
    (lambda: I.RandomUniform(2.0, 1.0), ValueError, "minval=2.0"),
    (lambda: I.RandomUniform(None, 1.0), TypeError, "minval.*None"),
    (lambda: I.RandomUniform(0.0, float("inf")), ValueError, "maxval.*inf"),
    (lambda: I.Constant("a"), TypeError, "value.*'a'"),
    (lambda: I.Constant(True), TypeError, "value.*True"),
    (lambda: I.Constant(float("inf")), ValueError, "value.*inf"),
    (lambda: I.VarianceScaling(scale=0), ValueError, "scale.*0"),
    (lambda: I.VarianceScaling(scale=-2.0), ValueError, "scale.*-2.0"),
    (lambda: I.VarianceScaling(scale="x"), TypeError, "scale.*'x'"),
    (lambda: I.VarianceScaling(mode="fan_sum"), ValueError, "mode.*fan_sum"),
    (lambda: I.VarianceScaling(distribution="normal"), ValueError, "distribution.*'normal'"),
])
def test_constructor_errors(make, exc, pattern):
    with pytest.raises(exc, match=pattern):
        make()


def test_call_errors():
    g = Generator(0)
    with pytest.raises(TypeError, match="generator"):
        I.get("glorot_uniform")(np.empty((3, 3)), np.random.default_rng(0))
    with pytest.raises(TypeError, match="generator"):
        I.get("random_normal")(np.empty(3))
    with pytest.raises(ValueError, match="contiguous"):
        I.get("he_normal")(np.empty((4, 6))[:, ::2], g)
    with pytest.raises(ValueError, match="contiguous"):
        I.get("zeros")(np.empty((4, 6)).T, g)
    with pytest.raises(TypeError, match="dtype"):
        I.get("ones")(np.empty(3, np.int32), g)
    with pytest.raises(TypeError, match="ndarray"):
        I.get("ones")([0.0], g)
    ro = np.zeros(3)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        I.get("lecun_uniform")(ro, g)
    with pytest.raises(TypeError):
        I.serialize("zeros")


# --------------------------------------------------------------------------
# No numpy.random involved
# --------------------------------------------------------------------------

def test_no_numpy_random_calls(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("numpy.random was called")

    class ForbiddenGenerator:
        def __init__(self, *args, **kwargs):
            forbidden()

    for name in ("default_rng", "PCG64", "MT19937", "Philox", "SFC64",
                 "SeedSequence", "RandomState", "seed", "random", "rand",
                 "randn", "normal", "uniform", "standard_normal",
                 "permutation", "shuffle", "integers", "randint"):
        if hasattr(np.random, name):
            monkeypatch.setattr(np.random, name, forbidden)
    monkeypatch.setattr(np.random, "Generator", ForbiddenGenerator)
    # (numpy.random.Generator is an extension type whose methods cannot be
    # patched; replacing the class and every constructor is enough.)

    g = I.make_generator(123)
    params = np.empty(10 * 20 + 10, dtype=np.float32)
    for name in NAMES:
        I.get(name)(params[:200].reshape(10, 20), g)
        I.get(name)(params[200:], g)
    g.permutation(50)
    # The monkeypatch is effective: numpy.random really is unusable here.
    with pytest.raises(AssertionError):
        np.random.default_rng(0)
