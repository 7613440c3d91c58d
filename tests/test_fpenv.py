"""Flush-to-zero inside compiled calls, IEEE gradual underflow outside them."""
import platform

import numpy as np
import pytest

import pynn
from pynn import _build, _dense, _losses, _optim, reference

FLUSHES = platform.machine().lower() in ("x86_64", "amd64", "aarch64", "arm64")


def subnormal_after_numpy(dtype):
    """A subnormal made by NumPy arithmetic now: zero if FTZ were left on."""
    tiny = np.finfo(dtype).tiny
    x = np.array([tiny, -tiny], dtype=dtype)
    return x / dtype(8)


def assert_numpy_keeps_subnormals(dtype):
    got = subnormal_after_numpy(dtype)
    tiny = np.finfo(dtype).tiny
    assert np.all(got != 0) and np.all(np.abs(got) < tiny), got
    # and reads them as they are (DAZ off): a subnormal times 8 is normal again
    assert np.all(got * dtype(8) == np.array([tiny, -tiny], dtype=dtype))


def _model(dtype, optimizer):
    m = pynn.Sequential([pynn.Dense(8, activation="tanh", input_dim=5),
                         pynn.Dense(3)], dtype=dtype, seed=3)
    m.compile(loss="mse", optimizer=optimizer)
    return m


def test_every_entry_point_restores_the_callers_mode(dtype, rng):
    x = rng.normal(size=(20, 5)).astype(dtype)
    y = rng.normal(size=(20, 3)).astype(dtype)
    m = _model(dtype, pynn.SGD(0.01, momentum=0.9))
    calls = [
        lambda: m.train_on_batch(x, y),                       # Network.step
        lambda: m.fit(x, y, epochs=1, batch_size=4, verbose=0),  # Network.train_batches
        lambda: m.predict(x),                                  # Network.predict
        lambda: m.evaluate(x, y),                              # Network.loss
        lambda: m.gradients(x, y),                             # Network.step, no update
        lambda: m.layers[0].forward(x),                        # dense_forward
    ]
    for call in calls:
        call()
        assert_numpy_keeps_subnormals(dtype)
    W = rng.normal(size=(3, 5)).astype(dtype)
    A = np.empty((20, 3), dtype=dtype)
    _dense.dense_forward(x, W, np.zeros(3, dtype), 0, A)
    assert_numpy_keeps_subnormals(dtype)
    dA = np.ones_like(A)
    _dense.dense_backward(x, W, A, dA, 0, np.empty_like(W), np.empty(3, dtype))
    assert_numpy_keeps_subnormals(dtype)
    _losses.loss_value_grad(0, A, A, np.empty_like(A))
    assert_numpy_keeps_subnormals(dtype)
    w = np.ones(4, dtype)
    _optim.step(0, w, w.copy(), np.zeros(4, dtype), [0.1, 0.9, 0.0, 0.0], 4)
    assert_numpy_keeps_subnormals(dtype)


def test_the_mode_is_restored_when_a_step_is_refused(dtype):
    m = _model(dtype, pynn.SGD(0.01))
    x = np.full((4, 5), np.nan, dtype=dtype)
    with pytest.raises(ValueError):
        m.train_on_batch(x, np.zeros((4, 3), dtype))
    assert_numpy_keeps_subnormals(dtype)
    w = np.ones(2, dtype)
    with pytest.raises(FloatingPointError):
        _optim.step(0, w, np.array([np.inf, 0], dtype), np.zeros(0, dtype),
                    [0.1, 0.0, 0.0, 0.0], 2)
    assert_numpy_keeps_subnormals(dtype)


@pytest.mark.skipif(not FLUSHES, reason="no flush-to-zero control on this processor")
def test_the_update_flushes_subnormals(dtype):
    # velocities decaying under momentum: 0.5 * (a value near the smallest
    # normal) is subnormal, and so are the weights read below
    tiny = np.finfo(dtype).tiny
    w = np.array([1.0, tiny / 4, -tiny / 2, 3 * tiny], dtype=dtype)
    v = np.array([tiny * 1.5, tiny, -tiny, 0.0], dtype=dtype)
    g = np.zeros(4, dtype)
    w_ref, v_ref = reference.flush_subnormals(w), reference.flush_subnormals(v)
    reference.sgd_update(w_ref, g, v_ref, dtype(0.1), momentum=dtype(0.5))
    w_ref, v_ref = reference.flush_subnormals(w_ref), reference.flush_subnormals(v_ref)
    _optim.step(0, w, g, v, [0.1, 0.5, 0.0, 0.0], 4)
    np.testing.assert_array_equal(w, w_ref)
    np.testing.assert_array_equal(v, v_ref)
    # without flushing these would be subnormal: the test can tell
    assert np.all(v == 0) and w[1] == 0 and w[2] == 0
    assert_numpy_keeps_subnormals(dtype)


def test_info_names_the_mode(capsys):
    from pynn.__main__ import main
    assert main(["info"]) == 0
    line = [s for s in capsys.readouterr().out.splitlines() if s.startswith("subnormals")]
    assert line and _build.BUILD["subnormals"] in line[0]
    if platform.machine().lower() in ("x86_64", "amd64"):
        assert "flush-to-zero" in line[0]
