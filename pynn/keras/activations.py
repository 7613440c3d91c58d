"""``keras.activations``: the activations pynn's Dense layers fuse.

Each function computes the activation in NumPy (pynn.reference, the twin
of the compiled kernels); passed as ``Dense(activation=...)`` it selects the
compiled activation of the same name.
"""
import numpy as np

from .. import activations as _activations
from .. import reference as _reference
from ._missing import module_getattr


def relu(x):
    return np.maximum(np.asarray(x, dtype=float), 0.0)


def tanh(x):
    return np.tanh(np.asarray(x, dtype=float))


def sigmoid(x):
    return _reference.sigmoid(np.asarray(x, dtype=float))


def softmax(x):
    return _reference.softmax(np.asarray(x, dtype=float))


def linear(x):
    return np.asarray(x)


_BY_FUNCTION = {relu: "relu", tanh: "tanh", sigmoid: "sigmoid", softmax: "softmax",
                linear: "linear"}


def get(identifier):
    """pynn's activation name for a Keras identifier: a name, None, or one
    of this module's functions."""
    if callable(identifier):
        if identifier in _BY_FUNCTION:
            return _BY_FUNCTION[identifier]
        raise NotImplementedError(
            f"custom activation callables ({identifier!r}) are not supported by pynn "
            f"yet: the compiled step fuses one of {_activations.names()} into each Dense")
    key = identifier.lower() if isinstance(identifier, str) else identifier
    if key in _MISSING:
        raise NotImplementedError(f"activation {identifier!r} is not in pynn's compiled "
                                  f"core yet; available: {_activations.names()}")
    return _activations.get(identifier)


def serialize(activation):
    return get(activation)


_MISSING = ("leaky_relu", "elu", "selu", "gelu", "silu", "swish", "softplus", "softsign",
            "relu6", "mish", "exponential", "hard_sigmoid", "hard_silu", "hard_swish",
            "log_softmax", "celu", "glu", "sparse_plus", "squareplus", "tanh_shrink")
__getattr__ = module_getattr(__name__, _MISSING)
