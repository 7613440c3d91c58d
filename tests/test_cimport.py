"""Other Cython code can cimport pynn's kernels by their package path.

A module outside the package cimports pynn.kernels.activation_kernels,
loss_kernels, optim_kernels and codes, is compiled against
pynn.get_include(), and its results are checked against pynn/reference.py
and against pynn's own Python-side codes.
"""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import pynn
from pynn import activations, losses, reference

pytest.importorskip("Cython")
pytest.importorskip("setuptools")

MODULE = textwrap.dedent("""
    # cython: language_level=3, boundscheck=False, wraparound=False
    import numpy as np
    from pynn.kernels.activation_kernels cimport activate
    from pynn.kernels.codes cimport (ACT_GELU, ACT_RELU, ACT_SIGMOID, ACT_SOFTPLUS,
                                     ACT_TANH, LOSS_MSE)
    from pynn.kernels.loss_kernels cimport loss_and_grad
    from pynn.kernels.optim_kernels cimport all_finite

    CODES = {"relu": ACT_RELU, "tanh": ACT_TANH, "sigmoid": ACT_SIGMOID,
             "gelu": ACT_GELU, "softplus": ACT_SOFTPLUS, "mse": LOSS_MSE}

    def apply(double[::1] z, int act):
        out = np.empty(z.shape[0])
        cdef double[::1] o = out
        cdef Py_ssize_t i
        for i in range(z.shape[0]):
            o[i] = activate(z[i], act)
        return out

    def mse(double[:, ::1] out, double[:, ::1] y):
        grad = np.empty_like(np.asarray(out))
        cdef double[:, ::1] g = grad
        loss = loss_and_grad(LOSS_MSE, &out[0, 0], &y[0, 0], NULL, out.shape[0],
                             out.shape[1], &g[0, 0], 0.0)
        return loss, grad

    def finite(double[::1] x):
        return bool(all_finite(&x[0], x.shape[0]))
""")

SETUP = textwrap.dedent("""
    import sys
    from pathlib import Path
    import numpy
    import pynn
    from Cython.Build import cythonize
    from setuptools import Extension, setup
    headers = pynn.get_include()
    setup(ext_modules=cythonize(
        [Extension("outside", ["outside.pyx"],
                   include_dirs=[numpy.get_include(), headers])],
        include_path=[str(Path(headers).parents[1])], quiet=True),
        script_args=["build_ext", "--inplace"])
""")


@pytest.fixture(scope="module")
def outside(tmp_path_factory):
    where = tmp_path_factory.mktemp("outside")
    (where / "outside.pyx").write_text(MODULE)
    (where / "setup.py").write_text(SETUP)
    done = subprocess.run([sys.executable, "setup.py"], cwd=where, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    sys.path.insert(0, str(where))
    try:
        import outside
        yield outside
    finally:
        sys.path.remove(str(where))


def test_the_headers_folder_holds_the_declarations():
    folder = Path(pynn.get_include())
    for name in ("__init__.pxd", "activation_kernels.pxd", "codes.pxd", "optim_kernels.pxd",
                 "vmath.h", "blas_backend.h"):
        assert (folder / name).is_file(), name


@pytest.mark.slow
def test_an_outside_module_sees_pynn_s_codes(outside):
    for name in ("relu", "tanh", "sigmoid", "gelu", "softplus"):
        assert outside.CODES[name] == activations.code(name)
    assert outside.CODES["mse"] == losses.get("mse").code


@pytest.mark.slow
@pytest.mark.parametrize("name", ["relu", "tanh", "sigmoid", "gelu", "softplus"])
def test_an_outside_module_runs_pynn_s_activations(outside, name):
    z = np.linspace(-8, 8, 101)
    expected = {"gelu": reference.gelu, "softplus": reference.softplus}.get(
        name, lambda v: reference.activate(v, name))(z)
    np.testing.assert_allclose(outside.apply(z, outside.CODES[name]), expected,
                               rtol=1e-13, atol=1e-15)


@pytest.mark.slow
def test_an_outside_module_runs_pynn_s_loss_and_check(outside):
    rng = np.random.default_rng(0)
    out, y = rng.standard_normal((7, 3)), rng.standard_normal((7, 3))
    loss, grad = outside.mse(out, y)
    ref_loss, ref_grad = reference.mse(out, y)
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-14)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-14)
    x = np.ones(33)
    assert outside.finite(x)
    x[17] = np.nan
    assert not outside.finite(x)
