"""The finiteness test of the kernels (optim_kernels.pxd's all_finite, a
test of each value's exponent bits) and Network.all_finite, the check of
the x that fit, evaluate and predict are given: against NumPy's isfinite on
every kind of value, a bad value found wherever it is (either thread's
share, the cut between them), the helper thread taken only where the
thread policy allows, and fit refusing before any step."""
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import pynn
from pynn import _optim
from pynn._dense import MODULE as _dense     # the build that runs
from test_workers import helper_tasks

BITS = {np.float32: np.uint32, np.float64: np.uint64}


def special_values(dtype):
    """Every boundary of the exponent: zeros, subnormals, the largest
    finite values, infinities and NaNs of several payloads and signs."""
    info = np.finfo(dtype)
    uint = BITS[dtype]
    n_bits = 8 * np.dtype(dtype).itemsize
    n_mant = info.nmant
    exp_all = ((1 << (n_bits - 1 - n_mant)) - 1) << n_mant     # exponent bits all ones
    sign = 1 << (n_bits - 1)
    patterns = [0, sign, 1, (1 << n_mant) - 1, 1 << n_mant,       # 0, -0, subnormals, tiny
                exp_all - 1, exp_all - (1 << n_mant),                # the largest finite values
                exp_all, exp_all | sign,                            # +inf, -inf
                exp_all | 1, exp_all | (1 << (n_mant - 1)),          # signalling and quiet NaN
                exp_all | ((1 << n_mant) - 1) | sign]                # NaN, every bit set
    values = np.array(patterns, dtype=uint).view(dtype)
    rng = np.random.default_rng(7)
    randoms = rng.integers(0, np.iinfo(uint).max, 4000, dtype=uint, endpoint=True)
    randoms[::3] |= uint(exp_all)       # a third of them infinite or NaN
    return np.concatenate([values, randoms.view(dtype)])


def network(dtype, n_threads=None, width=3):
    model = pynn.Sequential([pynn.Dense(2, input_dim=width)], dtype=dtype, seed=0,
                            n_threads=n_threads)
    model.compile("sgd", "mse")
    return model


def test_each_value_is_judged_as_numpy_does(dtype):
    values = special_values(dtype)
    net = network(dtype)._net
    for v in values:
        one = np.array([v])
        expected = bool(np.isfinite(v))
        assert _optim.is_finite(one) is expected, v
        assert net.all_finite(one) is expected, v
    finite = values[np.isfinite(values)]
    assert net.all_finite(finite) and _optim.is_finite(finite)
    assert not net.all_finite(values) and not _optim.is_finite(values)


def big_enough(dtype):
    """Values from which all_finite may take two threads, plus an odd tail."""
    return _dense.FINITE_PARALLEL_MIN_BYTES // np.dtype(dtype).itemsize + 37


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_one_bad_value_is_found_in_either_share_and_at_the_cut(dtype, bad):
    n = big_enough(dtype)
    cut = (n // 2) & ~15
    x = np.random.default_rng(0).standard_normal(n).astype(dtype)
    two, one = network(dtype, n_threads=2)._net, network(dtype, n_threads=1)._net
    assert two.all_finite(x) and one.all_finite(x)
    for where in (0, cut - 1, cut, cut + 1, n - 1):
        x[where] = bad
        before = helper_tasks(_dense)
        assert not two.all_finite(x), where
        assert helper_tasks(_dense) == before + 1
        assert not one.all_finite(x), where
        assert helper_tasks(_dense) == before + 1
        x[where] = 0


def test_any_shape_is_read_whole(dtype):
    net = network(dtype)._net
    for shape in [(5,), (3, 4), (2, 3, 5), (1, 1)]:
        x = np.ones(shape, dtype)
        assert net.all_finite(x)
        x.reshape(-1)[-1] = np.nan
        assert not net.all_finite(x)
    assert net.all_finite(np.ones((0, 3), dtype))


def test_small_arrays_and_one_thread_limits_stay_on_the_caller(dtype):
    before = helper_tasks(_dense)
    network(dtype, n_threads=2)._net.all_finite(np.ones(big_enough(dtype) // 2, dtype))
    network(dtype, n_threads=1)._net.all_finite(np.ones(big_enough(dtype), dtype))
    with threadpool_limits(limits=1, user_api="blas"):
        network(dtype)._net.all_finite(np.ones(big_enough(dtype), dtype))
    assert helper_tasks(_dense) == before


def test_arrays_it_cannot_read_are_refused(dtype):
    net = network(dtype)._net
    other = np.float64 if dtype == np.float32 else np.float32
    with pytest.raises(TypeError, match="aligned C-contiguous"):
        net.all_finite(np.ones(4, other))
    with pytest.raises(TypeError, match="aligned C-contiguous"):
        net.all_finite(np.ones((4, 4), dtype)[:, ::2])
    with pytest.raises(TypeError, match="aligned C-contiguous"):
        net.all_finite(np.ones(4, np.dtype(dtype).newbyteorder()))
    with pytest.raises(TypeError):
        net.all_finite(None)


@pytest.mark.parametrize("method", ["fit", "evaluate", "predict"])
def test_a_bad_value_deep_in_a_big_x_is_refused_before_any_step(dtype, method):
    width = 64
    n = big_enough(dtype) // width + 1
    x = np.random.default_rng(1).standard_normal((n, width)).astype(dtype)
    x[n - 3, 5] = np.nan
    x[n - 1, 0] = np.inf
    y = np.zeros((n, 2), dtype)
    model = network(dtype, n_threads=2, width=width)
    weights = [w.copy() for w in model.get_weights()]
    kept = x.copy()
    call = {"fit": lambda: model.fit(x, y, epochs=1, batch_size=256, verbose=0),
            "evaluate": lambda: model.evaluate(x, y, verbose=0),
            "predict": lambda: model.predict(x, verbose=0)}[method]
    with pytest.raises(ValueError, match=r"^x contains 2 NaN or infinite value\(s\)$"):
        call()
    assert model.optimizer.iterations == 0
    for before, after in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(before, after)
    np.testing.assert_array_equal(x, kept)


@pytest.mark.parametrize("name", ["sgd", "sgd-nesterov-decay", "adam", "rmsprop-centered",
                                  "adagrad"])
@pytest.mark.parametrize("n", [511, 512, 513, 1025, 2410])
def test_the_check_on_one_thread_reads_every_block(dtype, name, n):
    # the one-thread check runs in blocks from the end of the buffer to its
    # start: an update that would overflow anywhere is refused, unchanged
    from test_workers import OPTIMIZERS
    big = np.finfo(dtype).max
    for where in sorted({0, 1, 511, 512, 513, 1023, 1024, n // 2, n - 1} & set(range(n))):
        w = np.full(n, 0.5, dtype)
        g = np.full(n, 0.25, dtype)
        w[where], g[where] = big, -big
        opt = OPTIMIZERS[name]()
        opt.build(n, w.dtype)
        kept_w, kept_state = w.copy(), opt.state.copy()
        with pytest.raises(FloatingPointError):
            _optim.step(opt.code, w, g, opt.state, opt.hyper(), n // 3, n_threads=1)
        np.testing.assert_array_equal(w, kept_w)
        np.testing.assert_array_equal(opt.state, kept_state)
