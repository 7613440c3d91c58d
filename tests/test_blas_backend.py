"""The GEMM backend (pynn._threads): choice, forcing, and the kernels on each.

The kernel tests run once more in a fresh process per installed backend
(PYNN_BLAS=...), since the backend is chosen once, at import of pynn.
"""
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pynn import _threads

HERE = Path(__file__).parent
INSTALLED = ["openblas"] + (["mkl"] if _threads.mkl_library_path() else [])


def _run(code, backend):
    env = dict(os.environ, PYNN_BLAS=backend)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, cwd=HERE.parent)


@pytest.mark.parametrize("backend", INSTALLED)
def test_forced_backend_is_the_one_that_runs(backend):
    out = _run("import pynn; from pynn import _threads; "
               "print(_threads.backend(), _threads.local_thread_setter() != 0)", backend)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [backend, "True"]


@pytest.mark.parametrize("backend", INSTALLED)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_step_matches_reference_on_each_backend(backend, dtype):
    # a shape large enough for both threads and for the blocked GEMM paths
    code = f"""
import numpy as np, pynn
from pynn import reference
rng = np.random.default_rng(3)
x = rng.standard_normal((96, 70)).astype("{dtype}")
W = rng.standard_normal((130, 70)).astype("{dtype}")
b = rng.standard_normal(130).astype("{dtype}")
out = np.empty((96, 130), "{dtype}")
from pynn import _dense
_dense.dense_forward(x, W, b, 0, out)
ref = reference.dense_forward(x.astype(float), W.astype(float), b.astype(float), "linear")
tol = 2e-5 if "{dtype}" == "float32" else 1e-12
np.testing.assert_allclose(out, ref, rtol=tol, atol=tol * 10)
print("ok")
"""
    out = _run(code, backend)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


@pytest.mark.slow
@pytest.mark.parametrize("backend", INSTALLED)
def test_kernel_suites_pass_on_each_backend(backend):
    files = ["tests/test_dense.py", "tests/test_engine.py", "tests/test_threads.py"]
    env = dict(os.environ, PYNN_BLAS=backend)
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                          *files], env=env, capture_output=True, text=True, cwd=HERE.parent)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="PYNN_BLAS must be one of openblas, mkl; got 'atlas'"):
        _threads.install_backend("atlas")
    assert _threads.backend() in INSTALLED


def test_forced_mkl_without_the_wheel_is_a_clear_error(monkeypatch):
    before = _threads.backend()
    monkeypatch.setattr(_threads, "mkl_library_path", lambda: None)
    with pytest.raises(ImportError, match="PYNN_BLAS=mkl but the mkl wheel is not installed"):
        _threads.install_backend("mkl")
    assert _threads.backend() == before    # a refused choice changes nothing


def _mkl_is_optimised_here():
    import ctypes
    lib = ctypes.CDLL(_threads.mkl_library_path())
    branch = lib.mkl_cbwr_get_auto_branch
    branch.restype = ctypes.c_int
    return branch() >= 4        # an instruction-set branch, not AUTO 2 or COMPATIBLE 3


def test_default_is_mkl_when_installed_and_optimised_for_this_cpu():
    out = _run("import pynn; from pynn import _threads; print(_threads.backend())", "")
    assert out.returncode == 0, out.stderr
    mkl = "mkl" in INSTALLED and _mkl_is_optimised_here()
    assert out.stdout.strip() == ("mkl" if mkl else "openblas")


class _Branch:
    """A libmkl_rt stand-in whose mkl_cbwr_get_auto_branch answers `code`."""

    def __init__(self, code):
        import ctypes
        self.mkl_cbwr_get_auto_branch = ctypes.CFUNCTYPE(ctypes.c_int)(lambda: code)


@pytest.mark.parametrize("code, optimised", [(2, False), (3, False), (4, True), (10, True),
                                             (14, True)])
def test_mkl_is_judged_by_the_code_path_it_takes(code, optimised):
    # mkl_cbwr.h: 2 MKL_CBWR_AUTO, 3 COMPATIBLE, 4 SSE2, 10 AVX2, 14 AVX512_E1
    assert _threads.mkl_optimises_this_cpu(_Branch(code)) is optimised
    assert _threads.mkl_optimises_this_cpu(object()) is True     # no such function


# install_backend in a fresh process, MKL's answer replaced by `optimised`
_CHOICE = """
import sys
from pynn import _threads
_threads.mkl_optimises_this_cpu = lambda lib: {optimised}
print(_threads.install_backend({requested!r}), "|", _threads.backend_description())
"""


@pytest.mark.skipif("mkl" not in INSTALLED, reason="the mkl wheel is not installed")
@pytest.mark.parametrize("optimised", [True, False])
@pytest.mark.parametrize("requested", [None, "mkl"])
def test_mkl_without_a_path_for_the_cpu_is_taken_only_when_forced(optimised, requested):
    out = _run(_CHOICE.format(optimised=optimised, requested=requested), "")
    assert out.returncode == 0, out.stderr
    name, description = out.stdout.strip().split(" | ")
    assert name == ("mkl" if optimised or requested == "mkl" else "openblas")
    assert ("none of its CPU-specific code paths" in description) == (not optimised)


@pytest.mark.skipif("mkl" not in INSTALLED, reason="the mkl wheel is not installed")
def test_mkl_honours_threadpoolctl_and_n_threads():
    # the per-thread override is dropped after each call: threadpoolctl's
    # process-wide limit rules again, and the user's own calls are unaffected
    code = """
import numpy as np, pynn
from threadpoolctl import threadpool_limits, threadpool_info
def mkl_threads():
    return [l["num_threads"] for l in threadpool_info() if l["internal_api"] == "mkl"][0]
rng = np.random.default_rng(0)
x = rng.standard_normal((256, 300)).astype("float32")
y = rng.standard_normal((256, 10)).astype("float32")
print(mkl_threads())
with threadpool_limits(1, user_api="blas"):
    m = pynn.Sequential([pynn.Dense(400, activation="relu", input_dim=300), pynn.Dense(10)],
                        dtype="float32", seed=0, n_threads=2)
    m.compile(loss="mse", optimizer="sgd")
    m.train_on_batch(x, y)
    print(mkl_threads())
print(mkl_threads())
"""
    out = _run(code, "mkl")
    assert out.returncode == 0, out.stderr
    before, inside, after = map(int, out.stdout.split())
    assert inside == 1 and after == before


def test_backends_agree_within_tolerance():
    if len(INSTALLED) < 2:
        pytest.skip("one backend installed")
    code = """
import numpy as np, pynn
rng = np.random.default_rng(5)
x = rng.standard_normal((64, 50)); y = rng.standard_normal((64, 4))
m = pynn.Sequential([pynn.Dense(40, activation="tanh", input_dim=50), pynn.Dense(4)],
                    dtype="float64", seed=1)
m.compile(loss="mse", optimizer="sgd")
for _ in range(5):
    m.train_on_batch(x, y)
import sys
np.save(sys.stdout.buffer, m.layers[0].W)
"""
    ws = []
    for backend in INSTALLED:
        env = dict(os.environ, PYNN_BLAS=backend)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             cwd=HERE.parent)
        assert out.returncode == 0, out.stderr
        ws.append(np.load(io.BytesIO(out.stdout)))
    np.testing.assert_allclose(ws[0], ws[1], rtol=1e-12, atol=1e-13)
