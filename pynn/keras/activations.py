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


def leaky_relu(x, negative_slope=0.2):
    return _reference.leaky_relu(np.asarray(x, dtype=float), negative_slope)


def elu(x, alpha=1.0):
    return _reference.elu(np.asarray(x, dtype=float), alpha)


def selu(x):
    return _reference.selu(np.asarray(x, dtype=float))


def gelu(x, approximate=False):
    # as an activation of Dense, the exact form: pynn's compiled gelu
    x = np.asarray(x, dtype=float)
    return _reference.gelu_tanh(x) if approximate else _reference.gelu(x)


def silu(x):
    return _reference.swish(np.asarray(x, dtype=float))


swish = silu


def softplus(x):
    return _reference.softplus(np.asarray(x, dtype=float))


# as Dense(activation=f), each with its default settings, the ones the
# compiled kernels have
_BY_FUNCTION = {relu: "relu", tanh: "tanh", sigmoid: "sigmoid", softmax: "softmax",
                linear: "linear", leaky_relu: "leaky_relu", elu: "elu", selu: "selu",
                gelu: "gelu", silu: "swish", softplus: "softplus"}


def get(identifier):
    """pynn's activation for a Keras identifier: a name, None, one of this
    module's functions, or a custom activation with a ``derivative`` method
    (pynn has no automatic differentiation; see pynn.activations.Activation)."""
    if callable(identifier):
        if identifier in _BY_FUNCTION:
            return _BY_FUNCTION[identifier]
        # a custom activation: pynn's own protocol (__call__ and derivative),
        # refused with a TypeError saying what to add when the derivative is missing
        return _activations.get(identifier)
    key = identifier.lower() if isinstance(identifier, str) else identifier
    if key in _MISSING:
        raise NotImplementedError(f"activation {identifier!r} is not in pynn's compiled "
                                  f"core yet; available: {_activations.names()}")
    return _activations.get(identifier)


def serialize(activation):
    return get(activation)


_MISSING = ("softsign", "relu6", "mish", "exponential", "hard_sigmoid", "hard_silu", "hard_swish",
            "log_softmax", "celu", "glu", "sparse_plus", "squareplus", "tanh_shrink")
__getattr__ = module_getattr(__name__, _MISSING)
