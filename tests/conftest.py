import numpy as np
import pytest

# Tolerances per dtype for comparisons of compiled kernels with the NumPy
# reference: both are correct, but sum in different orders.
TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-12, atol=1e-13)}

ACTIVATIONS = ["linear", "relu", "tanh", "sigmoid", "softmax"]


@pytest.fixture(params=[np.float32, np.float64], ids=["float32", "float64"])
def dtype(request):
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def assert_close(actual, desired, dtype, scale=1.0):
    tol = TOL[dtype]
    np.testing.assert_allclose(actual, desired, rtol=tol["rtol"] * scale,
                               atol=tol["atol"] * scale)
