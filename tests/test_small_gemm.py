"""The GEMM of the kernels (csrc/_blas.pxd): products of at most
SMALL_GEMM_MAX multiply-adds go to the small-matrix path (MKL's JIT
kernels, one generated per shape, when MKL is the backend; SciPy's
OpenBLAS otherwise), the others to the backend's GEMM (MKL's when it is
installed).

Every shape up to the threshold, from a grid of odd and even sizes, with
every transpose, alpha and beta in {0, 1}: against the NumPy expression in
float64 (pynn/reference.py's form, op(A) @ op(B)) with a bound from the
length of the sums, against every other library on the same operands, and
routed as the rule says (bit for bit the library it names).
"""
import ctypes
import itertools
import os
import subprocess
import sys

import numpy as np
import pytest

import pynn
from pynn import _gemm, _threads, reference

SIZES = [1, 2, 3, 5, 8, 13, 16, 17, 31, 32, 33, 64, 65, 128, 129]
THRESHOLD = _gemm.SMALL_GEMM_MAX
SHAPES = [(m, n, k) for m, n, k in itertools.product(SIZES, repeat=3)
          if m * n * k <= THRESHOLD]
TRANSPOSES = list(itertools.product([False, True], repeat=2))
# (alpha, beta): the four the network uses or could (beta 0 and 1), and a scaled one
SCALES = [(1.0, 0.0), (1.0, 1.0), (-0.5, 0.0), (0.75, 1.0)]


def operands(rng, trans_a, trans_b, m, n, k, dtype):
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    c = rng.standard_normal((m, n)).astype(dtype)
    return a, b, c


def expected(a, b, c, trans_a, trans_b, alpha, beta):
    """The product in float64, and a bound on a correctly summed result's
    error in the operands' dtype: sums of k terms, each rounded."""
    a64, b64, c64 = (v.astype(np.float64) for v in (a, b, c))
    op_a, op_b = (a64.T if trans_a else a64), (b64.T if trans_b else b64)
    value = alpha * (op_a @ op_b) + beta * c64
    k = op_a.shape[1]
    scale = abs(alpha) * (np.abs(op_a) @ np.abs(op_b)) + abs(beta) * np.abs(c64)
    eps = np.finfo(a.dtype).eps
    return value, 2 * (k + 2) * eps * scale + np.finfo(a.dtype).tiny


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("trans_a, trans_b", TRANSPOSES)
def test_every_small_shape_against_numpy_and_the_backend(dtype, trans_a, trans_b):
    rng = np.random.default_rng(hash((dtype, trans_a, trans_b)) % 2**32)
    for i, (m, n, k) in enumerate(SHAPES):
        assert _gemm.goes_to_small(m, n, k)
        alpha, beta = SCALES[i % len(SCALES)]
        a, b, c0 = operands(rng, trans_a, trans_b, m, n, k, dtype)
        want, bound = expected(a, b, c0, trans_a, trans_b, alpha, beta)
        results = {}
        for library in _gemm.LIBRARIES:
            c = c0.copy()
            _gemm.matmul(trans_a, trans_b, alpha, a, b, beta, c, library)
            assert np.all(np.abs(c - want) <= bound), (library, m, n, k, alpha, beta)
            results[library] = c
        # below the threshold the kernels' GEMM is the small-matrix path, bit for bit
        np.testing.assert_array_equal(results["auto"], results["small"])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_scale_on_the_network_shapes(dtype):
    # a 64-32-10 network at batch 16: the forward, weight-gradient and
    # input-gradient products of each layer, every alpha and beta
    rng = np.random.default_rng(7)
    shapes = [(False, True, 16, 32, 64), (False, True, 16, 10, 32),
              (True, False, 10, 32, 16), (True, False, 32, 64, 16),
              (False, False, 16, 32, 10), (False, False, 16, 64, 32)]
    for (trans_a, trans_b, m, n, k), (alpha, beta) in itertools.product(shapes, SCALES):
        a, b, c0 = operands(rng, trans_a, trans_b, m, n, k, dtype)
        want, bound = expected(a, b, c0, trans_a, trans_b, alpha, beta)
        c = c0.copy()
        _gemm.matmul(trans_a, trans_b, alpha, a, b, beta, c)
        assert np.all(np.abs(c - want) <= bound)


def test_beta_zero_never_reads_c():
    # as BLAS: with beta 0, whatever C held (NaN included) is not read
    rng = np.random.default_rng(3)
    for dtype, library in itertools.product(["float32", "float64"], _gemm.LIBRARIES):
        a, b, _ = operands(rng, False, True, 5, 7, 3, dtype)
        c = np.full((5, 7), np.nan, dtype=dtype)
        _gemm.matmul(False, True, 1.0, a, b, 0.0, c, library)
        np.testing.assert_allclose(c, a.astype(np.float64) @ b.T.astype(np.float64),
                                   rtol=1e-5)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_threshold_is_where_the_backend_takes_over(dtype):
    rng = np.random.default_rng(5)
    below, above = (32, 32, THRESHOLD // (32 * 32)), (32, 32, THRESHOLD // (32 * 32) + 1)
    assert _gemm.goes_to_small(*below) and not _gemm.goes_to_small(*above)
    for (m, n, k), library in [(below, "small"), (above, "backend")]:
        for trans_a, trans_b in TRANSPOSES:
            a, b, c0 = operands(rng, trans_a, trans_b, m, n, k, dtype)
            auto, named = c0.copy(), c0.copy()
            _gemm.matmul(trans_a, trans_b, 1.0, a, b, 1.0, auto)
            _gemm.matmul(trans_a, trans_b, 1.0, a, b, 1.0, named, library)
            np.testing.assert_array_equal(auto, named)


def test_matmul_refuses_what_does_not_multiply():
    a = np.zeros((3, 4))
    with pytest.raises(ValueError, match="shapes do not multiply"):
        _gemm.matmul(False, False, 1.0, a, np.zeros((5, 2)), 0.0, np.zeros((3, 2)))
    with pytest.raises(ValueError, match="library must be one of"):
        _gemm.matmul(False, False, 1.0, a, np.zeros((4, 2)), 0.0, np.zeros((3, 2)), "atlas")


def test_layer_products_match_the_reference_on_the_backend_in_use():
    # the layer kernels (forward and backward of one Dense) through gemm(),
    # against pynn/reference.py, at a tiny network's shapes
    rng = np.random.default_rng(11)
    for dtype in ("float32", "float64"):
        x = rng.standard_normal((16, 64)).astype(dtype)
        model = pynn.Sequential([pynn.Dense(32, activation="relu", input_dim=64)],
                                dtype=dtype, seed=1)
        W, b = model.get_weights()
        want = reference.dense_forward(x.astype(np.float64), W.astype(np.float64),
                                       b.astype(np.float64), "relu")
        np.testing.assert_allclose(model.predict(x), want,
                                   rtol=1e-5 if dtype == "float32" else 1e-12,
                                   atol=1e-5 if dtype == "float32" else 1e-12)
    assert _threads.backend() in ("openblas", "mkl")


def _mkl_generates_a_kernel():
    """Asked of MKL itself, apart from pynn's probe at import: does it
    generate a kernel for a 16 x 32 x 64 float64 product (x @ W.T) here?"""
    path = _threads.mkl_library_path()
    if path is None:
        return False
    lib = ctypes.CDLL(path)
    create = lib.mkl_cblas_jit_create_dgemm
    create.restype = ctypes.c_int
    create.argtypes = ([ctypes.POINTER(ctypes.c_void_p)] + [ctypes.c_int] * 6
                       + [ctypes.c_double, ctypes.c_int, ctypes.c_int, ctypes.c_double,
                          ctypes.c_int])
    lib.mkl_jit_destroy.argtypes = [ctypes.c_void_p]
    jitter = ctypes.c_void_p()
    status = create(ctypes.byref(jitter), 101, 111, 112, 16, 32, 64, 1.0, 64, 64, 0.0, 32)
    if jitter.value:
        lib.mkl_jit_destroy(jitter)
    return status == 0 and bool(jitter.value)


def test_the_small_path_is_the_jit_only_where_mkl_generates_kernels():
    # MKL answers MKL_NO_JIT for every shape on CPUs it has no generator
    # for: there the small products must stay on OpenBLAS, and say so
    expected = "mkl-jit" if _threads.backend() == "mkl" and _mkl_generates_a_kernel() \
        else "openblas"
    assert _gemm.small_path() == expected
    assert ("JIT" in _threads.backend_description()) == (expected == "mkl-jit")


class _FakeJit:
    """MKL's five JIT functions as ctypes callbacks, create answering
    `status` (and a jitter when it is not MKL_JIT_ERROR)."""

    def __init__(self, status):
        self.destroyed = []
        create = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_void_p),
                                  *[ctypes.c_int] * 6, ctypes.c_float, ctypes.c_int,
                                  ctypes.c_int, ctypes.c_float, ctypes.c_int)

        def make(jitter, *args):
            if status != 2:
                jitter[0] = 0x1000
            return status

        def destroy(jitter):
            self.destroyed.append(jitter)
            return 0

        self.mkl_cblas_jit_create_sgemm = self.mkl_cblas_jit_create_dgemm = create(make)
        getter = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p)(lambda j: 0x2000)
        self.mkl_jit_get_sgemm_ptr = self.mkl_jit_get_dgemm_ptr = getter
        self.mkl_jit_destroy = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p)(destroy)


@pytest.mark.parametrize("status, kept", [(0, True), (1, False), (2, False)])
def test_the_jit_is_installed_only_when_the_probe_gets_a_kernel(status, kept):
    # 0 MKL_JIT_SUCCESS, 1 MKL_NO_JIT, 2 MKL_JIT_ERROR
    fake = _FakeJit(status)
    found = _threads._jit_functions(fake)
    assert set(found) == set(_threads._JIT_POINTERS.values())
    assert all(found.values()) if kept else not any(found.values())
    # the probe's jitter is destroyed whenever one was made
    assert len(fake.destroyed) == (0 if status == 2 else 1)


needs_jit = pytest.mark.skipif(_gemm.small_path() != "mkl-jit",
                               reason="no JIT kernels: MKL is not the backend or "
                                      "generates none on this CPU")


_ONCE = """
import ctypes, numpy as np
from pynn import _gemm
made = lambda: ctypes.c_longlong.in_dll(ctypes.CDLL(_gemm.__file__), "pynn_jit_created").value
rng = np.random.default_rng(9)
a, b = rng.standard_normal((7, 13)).astype("f4"), rng.standard_normal((11, 13)).astype("f4")
c = np.zeros((7, 11), "f4")
counts = [made()]
_gemm.matmul(False, True, 1.0, a, b, 0.0, c)
counts.append(made())
_gemm.matmul(False, True, 1.0, a, b, 0.0, c, "auto", 50)
_gemm.matmul(False, True, 1.0, a, b, 1.0, c)      # another beta: another kernel
counts += [made()]
print(counts)
"""


@needs_jit
def test_a_shape_gets_its_kernel_once():
    # in a fresh process: one kernel generated on the shape's first call,
    # none on the next 50, one more for another beta
    out = subprocess.run([sys.executable, "-c", _ONCE], check=True, capture_output=True,
                         text=True).stdout
    assert out.strip() == "[0, 1, 2]"


# a product computed in a fresh process, optionally after filling the table
# of generated kernels with other shapes: its bytes in hex
_FRESH = """
import sys, numpy as np
from pynn import _gemm
fill = int(sys.argv[1])
if fill:
    for k in range(1, 3200):     # 3199 shapes: past the table's 3072 entries
        _gemm.matmul(False, False, 1.0, np.ones((2, k), "f8"), np.ones((k, 3), "f8"),
                     0.0, np.zeros((2, 3), "f8"))
rng = np.random.default_rng(1)
a = rng.standard_normal((24, 40)).astype("f4")
b = rng.standard_normal((30, 40)).astype("f4")
c = rng.standard_normal((24, 30)).astype("f4")
_gemm.matmul(False, True, 0.5, a, b, 1.0, c)
print(c.tobytes().hex())
"""


@needs_jit
def test_a_shape_past_the_tables_capacity_runs_the_same_code():
    # beyond the table's capacity a kernel is generated for each call and
    # destroyed after it: the same bits as the kept kernel of that shape
    kept, passing = (subprocess.run([sys.executable, "-c", _FRESH, fill], check=True,
                                    capture_output=True, text=True).stdout
                     for fill in ("0", "1"))
    assert kept == passing and len(kept) > 100


# forks while another thread generates kernel after kernel, each child then
# generating one of its own: "ok" when every child finished
_FORKS = """
import os, sys, threading, time
import numpy as np
from pynn import _gemm
stop = False
def generate():
    k = 1
    while not stop:     # a new shape each call: the table's mutex held in turn
        k += 1
        _gemm.matmul(False, False, 1.0, np.ones((3, k), "f8"), np.ones((k, 2), "f8"),
                     0.0, np.zeros((3, 2), "f8"))
worker = threading.Thread(target=generate)
worker.start()
time.sleep(0.05)
stuck = 0
for i in range(40):
    pid = os.fork()
    if pid == 0:
        _gemm.matmul(False, True, 1.0, np.ones((5, 7 + i), "f4"), np.ones((9, 7 + i), "f4"),
                     0.0, np.zeros((5, 9), "f4"))
        os._exit(0)
    deadline = time.monotonic() + 5
    while os.waitpid(pid, os.WNOHANG) == (0, 0):
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            stuck += 1
            break
        time.sleep(0.001)
stop = True
worker.join()
print("ok" if stuck == 0 else f"{stuck} children stuck")
"""


@needs_jit
@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork")
def test_a_fork_during_a_generation_leaves_the_child_a_usable_table():
    out = subprocess.run([sys.executable, "-c", _FORKS], check=True, capture_output=True,
                         text=True, timeout=600).stdout
    assert out.strip() == "ok"
