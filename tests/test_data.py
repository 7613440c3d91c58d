"""fit on data that need not fit in memory: memmaps and streams of batches."""
import tracemalloc

import numpy as np
import pytest

import pynn
from pynn import _validation


def _model(n_in, seed=3, dtype="float32", metrics=None):
    net = pynn.Sequential([pynn.Dense(8, activation="tanh", input_dim=n_in), pynn.Dense(2)],
                          dtype=dtype, seed=seed)
    net.compile(loss="mse", optimizer=pynn.SGD(0.05, momentum=0.9), metrics=metrics)
    return net


def _data(n, n_in, rng, dtype=np.float32):
    x = rng.normal(size=(n, n_in)).astype(dtype)
    return x, np.stack([x[:, 0] * x[:, 1], np.sin(x[:, 2])], axis=1).astype(dtype)


def _memmap(path, a):
    m = np.memmap(path, dtype=a.dtype, mode="w+", shape=a.shape)
    m[:] = a
    m.flush()
    return np.memmap(path, dtype=a.dtype, mode="r", shape=a.shape)


# ------------------------------------------------------------------ memmaps


@pytest.mark.parametrize("file_dtype", [np.float32, np.uint8])
def test_memmap_trains_like_the_array_in_memory(tmp_path, rng, file_dtype):
    x, y = _data(300, 5, rng)
    if file_dtype == np.uint8:
        x = rng.integers(0, 256, size=x.shape).astype(np.uint8)
    xm = _memmap(tmp_path / "x.bin", x)
    nets = [_model(5, metrics=["mae"]) for _ in range(2)]
    hists = [net.fit(a, y, epochs=2, batch_size=32, validation_split=0.2, verbose=0)
             for net, a in zip(nets, (x, xm))]
    np.testing.assert_array_equal(nets[1].params, nets[0].params)
    assert hists[1].history == hists[0].history
    assert np.array_equal(np.asarray(xm), x)                # read-only, untouched


def test_memmap_of_another_dtype_is_checked_before_training(tmp_path, rng):
    xm = _memmap(tmp_path / "x.bin", rng.integers(0, 9, size=(40, 5)).astype(np.int16))
    net = _model(5)
    with pytest.raises(ValueError, match="x has 5 features, the model expects 4"):
        _model(4).fit(xm, np.zeros((40, 2)), verbose=0)
    with pytest.raises(ValueError, match="different numbers of samples: 40 and 39"):
        net.fit(xm, np.zeros((39, 2)), verbose=0)
    y = np.zeros((40, 2))
    y[7, 1] = np.nan
    with pytest.raises(ValueError, match="y contains 1 NaN"):
        net.fit(xm, y, verbose=0)
    assert not net.trained


def _peak_bytes_of(fn):
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _rss_anon_bytes():
    # anonymous memory: the file's pages (page cache) are not counted
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


@pytest.mark.parametrize("form", ["float32", "uint8", "stream"])
def test_memmap_larger_than_the_memory_fit_uses(tmp_path, form):
    # 128 MB of float32 on disk (32 MB as uint8); fit must stream it: the
    # NumPy allocations it makes stay under 1/16 of the data as float32 (a
    # whole copy or conversion, or a whole boolean finiteness mask, would not).
    n, n_in = 131072, 256
    dtype = np.uint8 if form == "uint8" else np.float32
    path = tmp_path / "x.bin"
    xm = np.memmap(path, dtype=dtype, mode="w+", shape=(n, n_in))
    chunk_rng = np.random.default_rng(0)
    for start in range(0, n, 8192):
        xm[start:start + 8192] = chunk_rng.integers(0, 4, size=(8192, n_in))
    xm.flush()
    del xm
    xm = np.memmap(path, dtype=dtype, mode="r", shape=(n, n_in))
    y = np.ones((n, 2), dtype=np.float32)
    net = _model(n_in)
    batch = 1024

    def run():
        if form == "stream":
            def batches():
                for k in range(0, n, batch):
                    yield xm[k:k + batch], y[k:k + batch]
            net.fit(batches, steps_per_epoch=n // batch, verbose=0)
        else:
            net.fit(xm, y, batch_size=batch, verbose=0)

    rss_before = _rss_anon_bytes()
    peak = _peak_bytes_of(run)
    rss_after = _rss_anon_bytes()
    full_bytes = n * n_in * 4
    assert net.optimizer.iterations == n // batch
    assert np.isfinite(net.params).all()
    assert peak < full_bytes / 16, f"peak {peak / 2**20:.1f} MB, data {xm.nbytes / 2**20:.0f} MB"
    if rss_before is not None:
        assert rss_after - rss_before < full_bytes / 16


def test_check_finite_in_chunks_counts_every_bad_value(monkeypatch):
    monkeypatch.setattr(_validation, "FINITE_CHUNK", 10)
    a = np.zeros((50, 3))
    a[0, 0] = np.nan
    a[49, 2] = np.inf
    a[20] = -np.inf
    with pytest.raises(ValueError, match="x contains 5 NaN or infinite"):
        _validation.check_finite(a, "x")
    _validation.check_finite(np.zeros((50, 3)), "x")
    _validation.check_finite(np.float64(1.0), "x")


# ------------------------------------------------------------------ streams


def _arrays_fit(x, y, epochs=2, batch=16, metrics=None):
    net = _model(x.shape[1], metrics=metrics)
    hist = net.fit(x, y, epochs=epochs, batch_size=batch, shuffle=False, verbose=0)
    return net, hist


@pytest.mark.parametrize("form", ["callable", "list", "iterator"])
def test_stream_of_batches_trains_like_the_arrays(rng, form):
    x, y = _data(100, 4, rng)                        # last batch: 4 samples
    pairs = [(x[k:k + 16], y[k:k + 16]) for k in range(0, 100, 16)]
    net0, hist0 = _arrays_fit(x, y, metrics=["mae"])
    net = _model(4, metrics=["mae"])
    if form == "callable":
        hist = net.fit(lambda: iter(pairs), epochs=2, steps_per_epoch=len(pairs), verbose=0)
    elif form == "list":
        hist = net.fit(pairs, epochs=2, verbose=0)
    else:
        hist = net.fit(iter(pairs + pairs), epochs=2, steps_per_epoch=len(pairs), verbose=0)
    np.testing.assert_array_equal(net.params, net0.params)
    assert hist.history == hist0.history


def test_stream_converts_each_batch_and_builds_the_model(rng):
    x, y = _data(64, 4, rng, dtype=np.float64)
    net = pynn.Sequential([pynn.Dense(2)], seed=1)
    net.compile(loss="mse", optimizer="sgd")
    net.fit([(x[:32].tolist(), y[:32]), (x[32:], y[32:].astype(np.float16))], verbose=0)
    assert net.input_dim == 4 and net.optimizer.iterations == 2


def test_stream_prints_progress_without_a_sample_count(rng, capsys):
    x, y = _data(64, 4, rng)
    _model(4).fit([(x, y)], epochs=1, verbose=1)
    out = capsys.readouterr().out
    assert "1/1" in out and "loss:" in out and "samples/s" not in out


def test_stream_errors_name_the_problem(rng):
    x, y = _data(64, 4, rng)
    net = _model(4)

    def gen():
        yield x[:32], y[:32]

    with pytest.raises(ValueError, match="unknown length .*give steps_per_epoch"):
        net.fit(gen, verbose=0)
    with pytest.raises(ValueError, match="ran out of batches: epoch 1 got 1 of its 3"):
        net.fit(gen, steps_per_epoch=3, verbose=0)
    with pytest.raises(ValueError, match="ran out of batches: epoch 2 got 0 of its 1"):
        net.fit(gen(), epochs=2, steps_per_epoch=1, verbose=0)
    with pytest.raises(TypeError, match=r"\(x_batch, y_batch\) pairs; batch 0 of epoch 1"):
        net.fit([x], verbose=0)
    with pytest.raises(ValueError, match="empty iterable"):
        net.fit([], verbose=0)
    with pytest.raises(ValueError, match="y is missing"):
        net.fit(x, verbose=0)
    with pytest.raises(ValueError, match="validation_split=0.5 needs arrays"):
        net.fit([(x, y)], validation_split=0.5, verbose=0)
    with pytest.raises(ValueError, match="steps_per_epoch applies to an iterable"):
        net.fit(x, y, steps_per_epoch=2, verbose=0)
    with pytest.raises(ValueError, match="steps_per_epoch must be a positive integer"):
        net.fit(gen, steps_per_epoch=0, verbose=0)
    with pytest.raises(ValueError, match="x has 3 features"):
        net.fit([(x[:, :3], y)], verbose=0)
    net = _model(4)
    before = net.params.copy()
    bad = x.copy()
    bad[5, 1] = np.nan
    with pytest.raises(ValueError, match="x contains 1 NaN"):
        net.fit([(x[:32], y[:32]), (bad, y)], verbose=0)
    assert net.optimizer.iterations == 1            # the first batch only
    assert np.isfinite(net.params).all() and not np.array_equal(net.params, before)


def test_stream_with_validation_data_and_divergence(rng):
    x, y = _data(64, 4, rng)
    net = _model(4)
    hist = net.fit([(x[:32], y[:32]), (x[32:], y[32:])], epochs=2,
                   validation_data=(x, y), verbose=0)
    assert len(hist.history["val_loss"]) == 2
    huge = y * np.float32(1e30)
    with pytest.warns(RuntimeWarning, match="non-finite"):
        net.fit([(x, huge)] * 3, epochs=2, on_divergence="stop", verbose=0)
    assert np.isfinite(net.params).all()
