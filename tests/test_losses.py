"""Loss kernels against pynn/reference.py and finite differences."""
import numpy as np
import pytest

import pynn
from pynn import _losses, losses, reference
from conftest import assert_close


def test_mse_value_and_gradient_match_reference(dtype, rng):
    p = rng.standard_normal((17, 3)).astype(dtype)
    y = rng.standard_normal((17, 3)).astype(dtype)
    g = np.empty_like(p)
    value = _losses.loss_value_grad(losses.MSE, p, y, g)
    ref_value, ref_grad = reference.mse(p, y)
    assert value == pytest.approx(ref_value, rel=1e-6)
    assert_close(g, ref_grad, dtype)


def test_mse_is_mean_over_every_element():
    p = np.array([[1.0, 2.0], [3.0, 4.0]])
    y = np.zeros((2, 2))
    assert pynn.MeanSquaredError()(y, p) == pytest.approx((1 + 4 + 9 + 16) / 4)


def test_mse_gradient_matches_central_differences(rng):
    p = rng.standard_normal((5, 2))
    y = rng.standard_normal((5, 2))
    g = np.empty_like(p)
    _losses.loss_value_grad(losses.MSE, p, y, g)
    eps = 1e-6
    for idx in np.ndindex(p.shape):
        pp, pm = p.copy(), p.copy()
        pp[idx] += eps
        pm[idx] -= eps
        numeric = (reference.mse(pp, y)[0] - reference.mse(pm, y)[0]) / (2 * eps)
        assert g[idx] == pytest.approx(numeric, rel=1e-6, abs=1e-9)


def test_get_by_name_and_object():
    assert isinstance(losses.get("mse"), pynn.MeanSquaredError)
    assert isinstance(losses.get("mean_squared_error"), pynn.MeanSquaredError)
    obj = pynn.MeanSquaredError()
    assert losses.get(obj) is obj
    with pytest.raises(ValueError, match="'nope'.*valid names"):
        losses.get("nope")
    with pytest.raises(TypeError, match="42"):
        losses.get(42)
