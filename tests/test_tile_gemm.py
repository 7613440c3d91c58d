"""The tile GEMM (csrc/pynn/kernels/tile_gemm.h): the products of a split
layer's halves on AVX-512 register tiles, where pynn._threads turned it on.

Every edge of its tiles (rows and columns past a multiple of 4, 16 and 64,
sums past a multiple of 16), each of its three forms, alpha and beta: against
the product in float64 with a bound from the length of the sums, in both
dtypes; each
element's bits independent of the rest of the product; the routing of a
half's products; and the switch (PYNN_TILE_GEMM).
"""
import itertools
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pynn import _gemm, _threads

HERE = Path(__file__).parent
runs_here = pytest.mark.skipif(not _gemm.tile_gemm_cpu(),
                               reason="the CPU lacks AVX-512F or FMA")

FORMS = [(False, True), (True, False), (False, False)]      # NT, TN, NN
SCALES = [(1.0, 0.0), (1.0, 1.0), (-0.5, 0.0), (0.75, 1.0)]


def operands(rng, trans_a, trans_b, m, n, k, dtype="float32"):
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    c = rng.standard_normal((m, n)).astype(dtype)
    return a, b, c


def expected(a, b, c, trans_a, trans_b, alpha, beta):
    """The product in float64, and a bound on a result in the operands'
    dtype summed in any order: k terms, each rounded."""
    a64, b64, c64 = (v.astype(np.float64) for v in (a, b, c))
    op_a, op_b = (a64.T if trans_a else a64), (b64.T if trans_b else b64)
    k = op_a.shape[1]
    scale = abs(alpha) * (np.abs(op_a) @ np.abs(op_b)) + abs(beta) * np.abs(c64)
    info = np.finfo(a.dtype)
    bound = 2 * (k + 2) * info.eps * scale + info.tiny
    return alpha * (op_a @ op_b) + beta * c64, bound


def tile(trans_a, trans_b, alpha, a, b, beta, c):
    out = c.copy()
    _gemm.tile_matmul(trans_a, trans_b, alpha, a, b, beta, out)
    return out


@runs_here
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("trans_a, trans_b", FORMS)
def test_every_tile_edge_against_float64(dtype, trans_a, trans_b):
    rng = np.random.default_rng(hash((dtype, trans_a, trans_b)) % 2**32)
    sizes_m = [1, 3, 4, 5, 8, 13, 33]
    sizes_n = [1, 3, 4, 5, 15, 16, 17, 63, 64, 65, 100]
    sizes_k = [1, 2, 15, 16, 17, 33, 100]
    for i, (m, n, k) in enumerate(itertools.product(sizes_m, sizes_n, sizes_k)):
        alpha, beta = SCALES[i % len(SCALES)]
        a, b, c = operands(rng, trans_a, trans_b, m, n, k, dtype)
        want, bound = expected(a, b, c, trans_a, trans_b, alpha, beta)
        got = tile(trans_a, trans_b, alpha, a, b, beta, c)
        assert np.all(np.abs(got - want) <= bound), (m, n, k, alpha, beta)


@runs_here
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("trans_a, trans_b", FORMS)
def test_the_network_shapes_against_float64(dtype, trans_a, trans_b):
    # the halves of 784-128-10 at batch 32 and of 784-512-512-10 at batch 128
    rng = np.random.default_rng(4)
    shapes = {(False, True): [(32, 64, 784), (128, 256, 784), (128, 256, 512)],
              (True, False): [(64, 784, 32), (256, 784, 128), (256, 512, 128)],
              (False, False): [(128, 784, 256), (128, 512, 256)]}[(trans_a, trans_b)]
    for m, n, k in shapes:
        a, b, c = operands(rng, trans_a, trans_b, m, n, k, dtype)
        want, bound = expected(a, b, c, trans_a, trans_b, 1.0, 0.0)
        got = tile(trans_a, trans_b, 1.0, a, b, 0.0, c)
        assert np.all(np.abs(got - want) <= bound), (m, n, k)


@runs_here
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("trans_a, trans_b", FORMS)
def test_beta_zero_never_reads_c(dtype, trans_a, trans_b):
    rng = np.random.default_rng(8)
    a, b, _ = operands(rng, trans_a, trans_b, 7, 70, 19, dtype)
    c = np.full((7, 70), np.nan, dtype)
    got = tile(trans_a, trans_b, 1.0, a, b, 0.0, c)
    want, bound = expected(a, b, np.zeros_like(c), trans_a, trans_b, 1.0, 0.0)
    assert np.all(np.abs(got - want) <= bound)


@runs_here
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("trans_a, trans_b", FORMS)
def test_an_element_s_bits_do_not_depend_on_the_rest_of_the_product(dtype, trans_a, trans_b):
    # each row and each column of C computed alone (another tile, other
    # edges repeated) gives the whole product's bits, and so does a rerun
    rng = np.random.default_rng(9)
    m, n, k = 13, 70, 37
    a, b, c = operands(rng, trans_a, trans_b, m, n, k, dtype)
    whole = tile(trans_a, trans_b, 1.0, a, b, 1.0, c)
    np.testing.assert_array_equal(tile(trans_a, trans_b, 1.0, a, b, 1.0, c), whole)
    for i in (0, 4, 12):
        rows_a = np.ascontiguousarray(a[:, i:i + 1] if trans_a else a[i:i + 1])
        alone = tile(trans_a, trans_b, 1.0, rows_a, b, 1.0, c[i:i + 1].copy())
        np.testing.assert_array_equal(alone, whole[i:i + 1])
    for j in (0, 17, 64, 69):
        cols_b = np.ascontiguousarray(b[j:j + 1] if trans_b else b[:, j:j + 1])
        alone = tile(trans_a, trans_b, 1.0, a, cols_b, 1.0, np.ascontiguousarray(c[:, j:j + 1]))
        np.testing.assert_array_equal(alone, whole[:, j:j + 1])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_shapes_it_takes(dtype):
    big_k = _gemm.TILE_NT_MAX_K[dtype]
    assert _gemm.tile_gemm_fits(dtype, False, True, 32, 64, big_k)
    assert not _gemm.tile_gemm_fits(dtype, False, True, 32, 64, big_k + 1)
    assert _gemm.tile_gemm_fits(dtype, True, False, 64, 512, big_k + 1)  # TN: no bound on k
    assert not _gemm.tile_gemm_fits(dtype, True, True, 4, 4, 4)
    for zero in [(0, 4, 4), (4, 0, 4), (4, 4, 0)]:
        assert not _gemm.tile_gemm_fits(dtype, False, False, *zero)
    top = _gemm.TILE_MAX_MNK
    assert _gemm.tile_gemm_fits(dtype, False, False, 256, top // (256 * 512), 512)
    assert not _gemm.tile_gemm_fits(dtype, False, False, 256, top // (256 * 512) + 1, 512)
    # wide's halves (from 2^27 multiply-adds) stay on the BLAS
    assert not _gemm.tile_gemm_fits(dtype, True, False, 1024, 1024, 256)
    for form, shape in itertools.product(FORMS + [(True, True)], [(32, 64, 784), (5, 5, 5)]):
        assert _gemm.tile_gemm_takes(dtype, *form, *shape) \
            == (_gemm.tile_gemm_on() and _gemm.tile_gemm_fits(dtype, *form, *shape))
    with pytest.raises(ValueError, match="dtype must be 'float32' or 'float64', got 'int8'"):
        _gemm.tile_gemm_fits("int8", False, True, 4, 4, 4)


@pytest.mark.parametrize("trans_a, trans_b, m, n, k",
                         [(False, True, 32, 64, 784), (True, False, 64, 784, 32),
                          (False, False, 32, 784, 64), (False, True, 32, 64, 1000),
                          (True, True, 16, 16, 16)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_half_s_product_goes_where_the_rule_says(dtype, trans_a, trans_b, m, n, k):
    rng = np.random.default_rng(6)
    a, b, c = operands(rng, trans_a, trans_b, m, n, k, dtype)
    half = c.copy()
    _gemm.matmul(trans_a, trans_b, 1.0, a, b, 0.0, half, "one-thread")
    if _gemm.tile_gemm_takes(dtype, trans_a, trans_b, m, n, k):
        np.testing.assert_array_equal(half, tile(trans_a, trans_b, 1.0, a, b, 0.0, c))
    else:
        auto = c.copy()
        _gemm.matmul(trans_a, trans_b, 1.0, a, b, 0.0, auto)
        np.testing.assert_array_equal(half, auto)
    # gemm() itself never takes the tiles: its products may run on the
    # BLAS's threads
    auto, blas = c.copy(), c.copy()
    _gemm.matmul(trans_a, trans_b, 1.0, a, b, 0.0, auto)
    _gemm.matmul(trans_a, trans_b, 1.0, a, b, 0.0, blas,
                 "small" if _gemm.goes_to_small(m, n, k) else "backend")
    np.testing.assert_array_equal(auto, blas)


def test_tile_matmul_refuses_what_it_cannot_take():
    a = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match="shapes do not multiply"):
        _gemm.tile_matmul(False, False, 1.0, a, np.zeros((5, 2), np.float32), 0.0,
                          np.zeros((3, 2), np.float32))
    if _gemm.tile_gemm_cpu():
        with pytest.raises(ValueError, match=r"does not take an \(m, n, k\) = \(3, 3, 4\)"):
            _gemm.tile_matmul(True, True, 1.0, np.zeros((4, 3), np.float32),
                              np.zeros((3, 4), np.float32), 0.0, np.zeros((3, 3), np.float32))
    else:
        with pytest.raises(ValueError, match="AVX-512F and FMA"):
            _gemm.tile_matmul(False, False, 1.0, a, np.zeros((4, 2), np.float32), 0.0,
                              np.zeros((3, 2), np.float32))


@pytest.mark.parametrize("setting, backend, expected", [
    ("", "openblas", True), ("", "mkl", False), ("0", "openblas", False),
    ("0", "mkl", False), ("1", "mkl", True), ("1", "openblas", True)])
def test_the_switch(monkeypatch, setting, backend, expected):
    monkeypatch.setenv("PYNN_TILE_GEMM", setting)
    assert _threads.tile_gemm_wanted(backend) is (expected and _gemm.tile_gemm_cpu())


def test_a_bad_switch_is_refused(monkeypatch):
    monkeypatch.setenv("PYNN_TILE_GEMM", "yes")
    with pytest.raises(ValueError, match="PYNN_TILE_GEMM must be 0 or 1; got 'yes'"):
        _threads.tile_gemm_wanted("openblas")


def test_the_kernels_run_as_installed_and_info_says_so():
    assert _gemm.tile_gemm_on() is _threads.tile_gemm_wanted(_threads.backend())
    assert ("tile GEMM" in _threads.backend_description()) is _gemm.tile_gemm_on()


def _trained_weights(setting, dtype):
    # a 784-128-10 network at batch 32: its first layer's products in halves
    code = """
import numpy as np, pynn
from pynn import _gemm
rng = np.random.default_rng(0)
x = rng.standard_normal((96, 784)).astype("{dtype}")
y = rng.standard_normal((96, 10)).astype("{dtype}")
model = pynn.Sequential([pynn.Dense(128, activation="relu", input_dim=784), pynn.Dense(10)],
                        dtype="{dtype}", seed=3)
model.compile(optimizer=pynn.SGD(0.01, momentum=0.9), loss="mse")
for i in range(3):
    model.train_on_batch(x[32 * i:32 * i + 32], y[32 * i:32 * i + 32])
np.save("{out}", np.concatenate([w.ravel() for w in model.get_weights()]))
print(_gemm.tile_gemm_on())
"""
    out = HERE.parent / "build" / f"tile_weights_{setting}_{dtype}_{os.getpid()}.npy"
    out.parent.mkdir(exist_ok=True)
    env = dict(os.environ, PYNN_TILE_GEMM=setting)
    script = code.replace("{out}", str(out)).replace("{dtype}", dtype)
    run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, cwd=HERE.parent)
    assert run.returncode == 0, run.stderr
    weights = np.load(out)
    out.unlink()
    return run.stdout.strip() == "True", weights


@runs_here
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_training_on_the_tiles_agrees_with_the_blas_within_float_tolerance(dtype):
    on, with_tiles = _trained_weights("1", dtype)
    off, without = _trained_weights("0", dtype)
    assert on and not off
    tol = 1e-4 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(with_tiles, without, rtol=tol, atol=tol / 10)
    assert not np.array_equal(with_tiles, without)      # the two paths did differ
