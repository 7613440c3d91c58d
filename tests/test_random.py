"""Tests of pynn._random.Generator: PCG64 stream, seeding, state, distributions.

Statistical tests use fixed seeds, so they are deterministic; their bounds
(about 5 standard errors, or p > 1e-4) leave a correct generator far inside
and catch a wrong scale, shift or shape (see the *_has_power tests).
"""
import copy
import math
import pickle

import numpy as np
import pytest
from scipy import stats

from pynn._random import Generator, _ziggurat_r

M64 = (1 << 64) - 1
MULT = 0x2360ED051FC65DA44385DF649FCCF645
N_MOMENTS = 10**6
N_KS = 200_000
TRUNC_STD = 0.87962566103423978  # std of a standard normal truncated to +-2


def numpy_pcg64(state):
    bg = np.random.PCG64()
    bg.state = {"bit_generator": "PCG64", "state": dict(state),
                "has_uint32": 0, "uinteger": 0}
    return bg


# --------------------------------------------------------------------------
# The bit stream
# --------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1, 2**64 - 1, 987654321])
def test_raw_stream_matches_numpy_pcg64(seed):
    g = Generator(seed)
    bg = numpy_pcg64(g.get_state())
    a = g.random_raw(5000)
    b = bg.random_raw(5000)
    assert a.dtype == np.uint64
    np.testing.assert_array_equal(a, b)
    # Both end in the same state, and keep agreeing in further chunks.
    assert g.get_state() == bg.state["state"]
    for n in (1, 7, 1000):
        np.testing.assert_array_equal(g.random_raw(n), bg.random_raw(n))


def test_raw_stream_from_numpy_state():
    bg = np.random.PCG64(2024)
    bg.random_raw(3)
    g = Generator(0)
    g.set_state(bg.state["state"])
    np.testing.assert_array_equal(g.random_raw(4000), bg.random_raw(4000))
    # NumPy's full state dict is accepted too.
    g2 = Generator(0)
    g2.set_state(bg.state)
    np.testing.assert_array_equal(g2.random_raw(4000), bg.random_raw(4000))


def test_raw_stream_first_value_by_hand():
    # One PCG64 step written out in Python: the first output from a state.
    state, inc = 0x0123456789ABCDEF0123456789ABCDEF, 0xFEDCBA9876543211
    g = Generator(0)
    g.set_state({"state": state, "inc": inc})
    s = (state * MULT + inc) & ((1 << 128) - 1)
    x = ((s >> 64) ^ s) & M64
    rot = s >> 122
    expected = ((x >> rot) | (x << ((64 - rot) & 63))) & M64
    assert int(g.random_raw(1)[0]) == expected
    assert g.get_state() == {"state": s, "inc": inc}


# --------------------------------------------------------------------------
# Seeding and state
# --------------------------------------------------------------------------

def _splitmix_reference(seed):
    # The documented seeding, in Python.
    x, z = seed, []
    for _ in range(4):
        x = (x + 0x9E3779B97F4A7C15) & M64
        v = x
        v = ((v ^ (v >> 30)) * 0xBF58476D1CE4E5B9) & M64
        v = ((v ^ (v >> 27)) * 0x94D049BB133111EB) & M64
        z.append(v ^ (v >> 31))
    initstate = (z[0] << 64) | z[1]
    initseq = (z[2] << 64) | z[3]
    m128 = (1 << 128) - 1
    inc = ((initseq << 1) | 1) & m128
    state = (0 * MULT + inc) & m128
    state = (state + initstate) & m128
    state = (state * MULT + inc) & m128
    return {"state": state, "inc": inc}


@pytest.mark.parametrize("seed", [0, 1, 42, 2**63, 2**64 - 1])
def test_seed_to_state_is_the_documented_splitmix64(seed):
    assert Generator(seed).get_state() == _splitmix_reference(seed)


def test_same_seed_same_stream_different_seeds_differ():
    a = Generator(7).random_raw(1000)
    b = Generator(7).random_raw(1000)
    c = Generator(8).random_raw(1000)
    np.testing.assert_array_equal(a, b)
    assert np.count_nonzero(a == c) < 5
    x, y = np.empty(1000), np.empty(1000)
    Generator(7).standard_normal(x)
    Generator(7).standard_normal(y)
    np.testing.assert_array_equal(x, y)
    Generator(8).standard_normal(y)
    assert not np.any(x == y)


def test_numpy_integer_seed_equals_python_int():
    assert Generator(np.uint32(5)).get_state() == Generator(5).get_state()


def test_seed_none_draws_fresh_entropy():
    a, b = Generator(), Generator(None)
    assert a.get_state() != b.get_state()
    assert a.get_state()["inc"] % 2 == 1


@pytest.mark.parametrize("bad", [1.0, 1.5, "3", True, False, np.bool_(True), [1], b"1"])
def test_non_integer_seed_raises_type_error(bad):
    with pytest.raises(TypeError, match="seed"):
        Generator(bad)


@pytest.mark.parametrize("bad", [-1, 2**64])
def test_out_of_range_seed_raises_value_error(bad):
    with pytest.raises(ValueError, match=str(bad)):
        Generator(bad)


def test_get_set_state_resumes_exactly():
    g = Generator(3)
    g.random_raw(17)
    x = np.empty(1001)
    g.standard_normal(x)          # leave the state somewhere mid-stream
    saved = g.get_state()
    first = np.empty((50, 20)), np.empty(333, np.float32), g.permutation(0)
    g.normal(first[0], 1.0, 2.0)
    g.truncated_normal(first[1])
    p1 = g.permutation(100)
    r1 = g.random_raw(10)

    h = Generator(99)
    h.set_state(saved)
    second = np.empty((50, 20)), np.empty(333, np.float32)
    h.normal(second[0], 1.0, 2.0)
    h.truncated_normal(second[1])
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    np.testing.assert_array_equal(p1, h.permutation(100))
    np.testing.assert_array_equal(r1, h.random_raw(10))
    assert g.get_state() == h.get_state()


def test_get_state_returns_a_copy():
    g = Generator(3)
    st = g.get_state()
    st["state"] = 5
    assert g.get_state() != st


def test_copy_and_pickle_are_independent_and_equal():
    g = Generator(11)
    g.random_raw(5)
    for h in (g.copy(), copy.copy(g), copy.deepcopy(g), pickle.loads(pickle.dumps(g))):
        assert isinstance(h, Generator)
        assert h.get_state() == g.get_state()
        a = h.random_raw(100)
        assert h.get_state() != g.get_state()
        np.testing.assert_array_equal(a, g.copy().random_raw(100))


@pytest.mark.parametrize("bad, exc", [
    ([1, 2], TypeError),
    ({"state": 1}, ValueError),
    ({"state": 1, "inc": 3, "extra": 0}, ValueError),
    ({"state": 1, "inc": 2}, ValueError),                 # even increment
    ({"state": -1, "inc": 3}, ValueError),
    ({"state": 1 << 128, "inc": 3}, ValueError),
    ({"state": 1, "inc": 1 << 128 | 1}, ValueError),
    ({"state": 1.0, "inc": 3}, TypeError),
    ({"state": 1, "inc": "3"}, TypeError),
    ({"state": True, "inc": 3}, TypeError),
    ({"bit_generator": "MT19937", "state": {"state": 1, "inc": 3}}, ValueError),
])
def test_set_state_validates(bad, exc):
    g = Generator(1)
    before = g.get_state()
    with pytest.raises(exc):
        g.set_state(bad)
    assert g.get_state() == before


# --------------------------------------------------------------------------
# Filling arrays: shapes, dtypes, views
# --------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["uniform", "standard_normal", "normal", "truncated_normal"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fills_nd_arrays_and_views_in_place(method, dtype):
    g = Generator(5)
    buf = np.zeros(1000, dtype=dtype)
    view = buf[100:700].reshape(20, 30)        # C-contiguous view into a buffer
    ret = getattr(g, method)(view)
    assert ret is view
    assert np.all(buf[:100] == 0) and np.all(buf[700:] == 0)
    assert np.count_nonzero(view) == view.size
    # Same values as filling a flat array of the same length.
    flat = np.empty(600, dtype=dtype)
    getattr(Generator(5), method)(flat)
    np.testing.assert_array_equal(view.reshape(-1), flat)


@pytest.mark.parametrize("method", ["uniform", "standard_normal", "normal", "truncated_normal"])
def test_rejects_bad_out(method):
    g = Generator(5)
    fill = getattr(g, method)
    with pytest.raises(ValueError, match="contiguous"):
        fill(np.zeros((10, 10))[:, ::2])
    with pytest.raises(ValueError, match="contiguous"):
        fill(np.zeros((10, 10)).T)
    ro = np.zeros(10)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        fill(ro)
    with pytest.raises(TypeError, match="dtype"):
        fill(np.zeros(10, dtype=np.int64))
    with pytest.raises(TypeError, match="ndarray"):
        fill([0.0, 0.0])


def test_empty_and_scalar_arrays():
    g = Generator(5)
    before = g.get_state()
    g.standard_normal(np.empty(0))
    g.uniform(np.empty((0, 3), np.float32))
    assert g.get_state() == before
    x = np.zeros(())
    g.uniform(x, 2.0, 3.0)
    assert 2.0 <= x < 3.0


# --------------------------------------------------------------------------
# Distributions: moments, KS tests, bounds
# --------------------------------------------------------------------------

def _check_moments(x, mean, var, skew=0.0, kurt_excess=0.0):
    # Sample moments within about 5 standard errors of the targets.
    x = x.astype(np.float64)
    n = x.size
    std = math.sqrt(var)
    m = x.mean()
    v = x.var()
    assert abs(m - mean) < 5 * std / math.sqrt(n) + 1e-12, (m, mean)
    mu4 = (kurt_excess + 3) * var * var
    assert abs(v - var) < 5 * math.sqrt((mu4 - var * var) / n) + 1e-12, (v, var)
    if std > 0:
        z = (x - mean) / std
        assert abs(np.mean(z**3) - skew) < 5 * math.sqrt(15 / n), np.mean(z**3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("low, high", [(0.0, 1.0), (-3.0, 5.0), (10.0, 10.5)])
def test_uniform_moments_and_range(dtype, low, high):
    x = np.empty(N_MOMENTS, dtype=dtype)
    Generator(21).uniform(x, low, high)
    assert x.min() >= low and x.max() < high
    _check_moments(x, (low + high) / 2, (high - low) ** 2 / 12, 0.0, -1.2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mean, std", [(0.0, 1.0), (3.0, 0.5), (-1.0, 4.0)])
def test_normal_moments(dtype, mean, std):
    x = np.empty(N_MOMENTS, dtype=dtype)
    Generator(22).normal(x, mean, std)
    _check_moments(x, mean, std**2, 0.0, 0.0)
    kurt = stats.kurtosis(x.astype(np.float64))
    assert abs(kurt) < 5 * math.sqrt(24 / x.size)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mean, std", [(0.0, 1.0), (2.0, 0.05)])
def test_truncated_normal_moments_and_bounds(dtype, mean, std):
    x = np.empty(N_MOMENTS, dtype=dtype)
    Generator(23).truncated_normal(x, mean, std)
    lo = np.asarray(mean - 2 * std, dtype=dtype)
    hi = np.asarray(mean + 2 * std, dtype=dtype)
    assert x.min() >= lo and x.max() <= hi
    d = stats.truncnorm(-2, 2)
    _check_moments(x, mean, (std * TRUNC_STD) ** 2, 0.0, float(d.stats(moments="k")))
    assert math.isclose(d.std(), TRUNC_STD, rel_tol=1e-12)


def test_standard_normal_is_normal_zero_one():
    x = np.empty(N_MOMENTS)
    Generator(24).standard_normal(x)
    _check_moments(x, 0.0, 1.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ks_uniform(dtype):
    x = np.empty(N_KS, dtype=dtype)
    Generator(31).uniform(x, -2.0, 3.0)
    assert stats.kstest(x, stats.uniform(-2.0, 5.0).cdf).pvalue > 1e-4


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ks_normal(dtype):
    x = np.empty(N_KS, dtype=dtype)
    Generator(32).normal(x, 1.5, 2.0)
    assert stats.kstest(x, stats.norm(1.5, 2.0).cdf).pvalue > 1e-4


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ks_truncated_normal(dtype):
    x = np.empty(N_KS, dtype=dtype)
    Generator(33).truncated_normal(x, -1.0, 0.5)
    assert stats.kstest(x, stats.truncnorm(-2, 2, loc=-1.0, scale=0.5).cdf).pvalue > 1e-4


def test_normal_tails_frequency():
    # The ziggurat's tail (|z| > R) and wedges: compare tail counts with the
    # exact probabilities, where a wrong tail or wedge would show first.
    n = 4 * 10**6
    x = np.empty(n)
    Generator(34).standard_normal(x)
    for t in (1.0, 2.0, 3.0, _ziggurat_r(), 4.5):
        p = 2 * stats.norm.sf(t)
        k = np.count_nonzero(np.abs(x) > t)
        assert abs(k - n * p) < 5 * math.sqrt(n * p * (1 - p)) + 1, (t, k, n * p)
    assert np.count_nonzero(x > 0) == pytest.approx(n / 2, abs=5 * math.sqrt(n / 4))
    # The shape of the tail itself (about 1000 values beyond R).
    r = _ziggurat_r()
    tail = np.abs(x[np.abs(x) > r])
    assert tail.size > 500
    assert stats.kstest(tail, stats.truncnorm(r, np.inf).cdf).pvalue > 1e-4


def test_ziggurat_base_matches_published_value():
    # Marsaglia & Tsang (2000), 256 layers.
    assert _ziggurat_r() == pytest.approx(3.6541528853610088, rel=1e-13)


def test_ks_tests_have_power():
    # The same checks reject slightly wrong distributions.
    x = np.empty(N_KS)
    Generator(35).standard_normal(x)
    assert stats.kstest(x, stats.norm(0.0, 1.02).cdf).pvalue < 1e-4
    assert stats.kstest(x, stats.norm(0.02, 1.0).cdf).pvalue < 1e-4
    Generator(35).truncated_normal(x)
    assert stats.kstest(x, stats.truncnorm(-2.1, 2.1).cdf).pvalue < 1e-4
    with pytest.raises(AssertionError):
        _check_moments(x, 0.0, 1.03 * TRUNC_STD**2)


def test_uniform_never_returns_high_even_when_rounding_up():
    # A span so narrow that low + span * u rounds up to high for many u.
    for dtype in (np.float32, np.float64):
        high = np.asarray(1.0, dtype)
        low = np.nextafter(np.nextafter(high, dtype(0)), dtype(0))
        x = np.empty(10000, dtype)
        Generator(36).uniform(x, float(low), float(high))
        assert x.min() >= low and x.max() < high


# --------------------------------------------------------------------------
# Permutations, shuffle, integers
# --------------------------------------------------------------------------

def test_permutation_is_a_permutation():
    g = Generator(41)
    for n in (0, 1, 2, 10, 1000, 12345):
        p = g.permutation(n)
        assert p.dtype == np.int64 and p.shape == (n,)
        np.testing.assert_array_equal(np.sort(p), np.arange(n))


def test_permutation_positions_uniform():
    # Where each element lands: chi-square per element over positions.
    n, trials = 6, 30000
    g = Generator(42)
    counts = np.zeros((n, n), dtype=np.int64)   # counts[value, position]
    for _ in range(trials):
        counts[g.permutation(n), np.arange(n)] += 1
    for v in range(n):
        assert stats.chisquare(counts[v]).pvalue > 1e-4 / n


def test_permutations_of_four_all_equally_likely():
    import itertools
    index = {p: i for i, p in enumerate(itertools.permutations(range(4)))}
    g = Generator(43)
    counts = np.zeros(24, dtype=np.int64)
    a = np.arange(4, dtype=np.int64)
    for _ in range(24000):
        g.shuffle(a)
        counts[index[tuple(a.tolist())]] += 1
    assert stats.chisquare(counts).pvalue > 1e-4


def test_chi_square_has_power():
    # A biased shuffle (the classic "swap with any position") fails it.
    rng = Generator(44)
    counts = np.zeros(24, dtype=np.int64)
    import itertools
    index = {p: i for i, p in enumerate(itertools.permutations(range(4)))}
    for _ in range(24000):
        a = [0, 1, 2, 3]
        js = rng.integers(4, 4)
        for i in range(4):
            j = int(js[i])
            a[i], a[j] = a[j], a[i]
        counts[index[tuple(a)]] += 1
    assert stats.chisquare(counts).pvalue < 1e-4


def test_shuffle_in_place_keeps_values():
    g = Generator(45)
    a = np.array([5, -3, 7, 7, 100, 0], dtype=np.int64)
    b = a.copy()
    g.shuffle(a)
    np.testing.assert_array_equal(np.sort(a), np.sort(b))
    g.shuffle(np.empty(0, np.int64))
    one = np.array([9], np.int64)
    g.shuffle(one)
    assert one[0] == 9


def test_shuffle_rejects_bad_arrays():
    g = Generator(46)
    with pytest.raises(TypeError, match="int64"):
        g.shuffle(np.arange(5, dtype=np.int32))
    with pytest.raises(ValueError, match="1-D"):
        g.shuffle(np.zeros((2, 2), np.int64))
    with pytest.raises(ValueError, match="contiguous"):
        g.shuffle(np.arange(10, dtype=np.int64)[::2])
    with pytest.raises(TypeError, match="ndarray"):
        g.shuffle([1, 2, 3])


def test_integers_unbiased_with_awkward_bound():
    # bound = 3 * 2**61 (so 2**64 mod bound = 2**62): modulo reduction
    # would make [0, 2**62) twice as likely as the rest; Lemire's method not.
    bound = 3 * 2**61
    x = Generator(47).integers(bound, 60000)
    assert x.min() >= 0 and x.max() < bound
    low_third = np.count_nonzero(x < bound // 3)
    assert abs(low_third - 20000) < 5 * math.sqrt(60000 * (1 / 3) * (2 / 3))
    small = Generator(48).integers(7, 70000)
    assert stats.chisquare(np.bincount(small, minlength=7)).pvalue > 1e-4
    assert np.all(Generator(49).integers(1, 100) == 0)


@pytest.mark.parametrize("call, exc, word", [
    (lambda g: g.integers(0, 5), ValueError, "bound"),
    (lambda g: g.integers(2**63 + 1, 5), ValueError, "bound"),
    (lambda g: g.integers(5, -1), ValueError, "size"),
    (lambda g: g.integers(5.0, 2), TypeError, "bound"),
    (lambda g: g.permutation(-1), ValueError, "n"),
    (lambda g: g.permutation(2.5), TypeError, "n"),
    (lambda g: g.random_raw(-2), ValueError, "n"),
])
def test_integer_argument_errors(call, exc, word):
    with pytest.raises(exc, match=word):
        call(Generator(1))


# --------------------------------------------------------------------------
# Argument validation
# --------------------------------------------------------------------------

@pytest.mark.parametrize("call, exc, pattern", [
    (lambda g, x: g.uniform(x, 1.0, 1.0), ValueError, "low=1.0, high=1.0"),
    (lambda g, x: g.uniform(x, 2.0, 1.0), ValueError, "low=2.0"),
    (lambda g, x: g.uniform(x, float("nan"), 1.0), ValueError, "low.*nan"),
    (lambda g, x: g.uniform(x, 0.0, float("inf")), ValueError, "high.*inf"),
    (lambda g, x: g.uniform(x, -1e308, 1e308), ValueError, "finite"),
    (lambda g, x: g.uniform(x, "0", 1.0), TypeError, "low.*'0'"),
    (lambda g, x: g.normal(x, 0.0, -1.0), ValueError, "std.*-1.0"),
    (lambda g, x: g.normal(x, float("nan"), 1.0), ValueError, "mean.*nan"),
    (lambda g, x: g.normal(x, 0.0, float("nan")), ValueError, "std.*nan"),
    (lambda g, x: g.normal(x, None, 1.0), TypeError, "mean.*None"),
    (lambda g, x: g.normal(x, 0.0, True), TypeError, "std.*True"),
    (lambda g, x: g.truncated_normal(x, 0.0, -0.5), ValueError, "std.*-0.5"),
    (lambda g, x: g.truncated_normal(x, float("inf"), 1.0), ValueError, "mean.*inf"),
])
def test_distribution_argument_errors(call, exc, pattern):
    g = Generator(1)
    before = g.get_state()
    x = np.zeros(10)
    with pytest.raises(exc, match=pattern):
        call(g, x)
    assert np.all(x == 0) and g.get_state() == before


def test_uniform_float32_bounds_that_collapse():
    with pytest.raises(ValueError, match="float32"):
        Generator(1).uniform(np.zeros(3, np.float32), 1.0, 1.0 + 1e-12)
    with pytest.raises(ValueError, match="float32"):
        Generator(1).uniform(np.zeros(3, np.float32), 0.0, 1e300)


def test_zero_std_gives_the_mean():
    x = np.empty(100)
    Generator(1).normal(x, 3.5, 0.0)
    assert np.all(x == 3.5)
    Generator(1).truncated_normal(x, -2.0, 0.0)
    assert np.all(x == -2.0)
