"""The kernel codes: declared once in csrc/pynn/kernels/codes.pxd, read by the Python layer."""
import numpy as np

import pynn
from pynn import _codes, activations, losses, metrics, optimizers, reference


def test_python_codes_are_the_compiled_ones():
    assert [activations._CODES[n] for n in ("linear", "relu", "tanh", "sigmoid", "softmax",
                                            "leaky_relu", "elu", "selu", "gelu", "swish",
                                            "softplus")] \
        == [int(a) for a in _codes.Activation]
    assert activations.code("silu") == _codes.Activation.SWISH
    assert optimizers.SGD().code == _codes.Optimizer.SGD
    assert optimizers.Adam().code == _codes.Optimizer.ADAM
    assert losses.get("mse").code == _codes.Loss.MSE
    assert [cls.kind for cls in (pynn.Dense, pynn.Dropout, pynn.BatchNormalization,
                                 pynn.LayerNormalization)] == [int(k) for k in _codes.LayerKind]
    assert [losses.get(name).code for name in ("mae", "huber", "poisson",
                                                "half_poisson_deviance")] \
        == [_codes.Loss.MAE, _codes.Loss.HUBER, _codes.Loss.POISSON, _codes.Loss.POISSON_LOG]
    assert [int(_codes.Loss[k]) for k in ("MAE", "HUBER", "POISSON", "POISSON_LOG")] \
        == [7, 8, 9, 10]
    for enum in (_codes.Activation, _codes.Loss, _codes.Optimizer, _codes.Metric,
                 _codes.LayerKind, _codes.Status):
        values = [int(m) for m in enum]
        assert len(set(values)) == len(values), enum


def test_each_activation_code_runs_its_activation(dtype, rng):
    # the code the Python layer sends selects the kernel of that name
    x = rng.normal(size=(6, 4)).astype(dtype)
    W = rng.normal(size=(3, 4)).astype(dtype)
    b = rng.normal(size=3).astype(dtype)
    for member in _codes.Activation:
        out = np.empty((6, 3), dtype=dtype)
        pynn._dense.dense_forward(x, W, b, int(member), out)
        name = member.name.lower()
        if name in reference.PREACTIVATION_ACTIVATIONS:
            want = reference.PREACTIVATION_ACTIVATIONS[name][0](x @ W.T + b)
        else:
            want = reference.dense_forward(x, W, b, name)
        np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-6)
