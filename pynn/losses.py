"""Losses: a name, a kernel code, and how targets are checked.

The value and gradient are computed in one compiled pass
(csrc/loss_kernels.pxd); pynn/reference.py has the same maths in NumPy.
"""
import numpy as np

from . import _losses
from ._validation import as_float_array, check_finite

MSE = 0


class Loss:
    """Base class.  Subclasses set ``name`` and ``code``.

    A loss may *fuse* with the output layer's activation (softmax with a
    categorical cross-entropy, say): the network then hands it logits and the
    loss applies the activation itself, the numerically stable way.
    """

    name = None
    code = None

    def fuses_with(self, activation):
        """True when this loss computes ``activation`` itself from logits."""
        return False

    def prepare_targets(self, y, n_outputs, dtype, argname="y"):
        """Check targets and return them as a C-contiguous (n, n_outputs) array."""
        y = as_float_array(y, dtype, argname)
        if y.ndim == 1 and n_outputs == 1:
            y = y.reshape(-1, 1)
        if y.ndim != 2 or y.shape[1] != n_outputs:
            raise ValueError(
                f"{argname} must have shape (n_samples, {n_outputs}) to match the "
                f"model's {n_outputs} outputs, got shape {y.shape}")
        check_finite(y, argname)
        return y

    def __call__(self, y_true, y_pred):
        """Mean loss of predictions ``y_pred`` (n, m) against ``y_true``."""
        y_pred = as_float_array(y_pred, None, "y_pred")
        if y_pred.ndim == 1:
            y_pred = y_pred.reshape(-1, 1)
        if y_pred.ndim != 2:
            raise ValueError(f"y_pred must be 1-D or 2-D, got shape {y_pred.shape}")
        check_finite(y_pred, "y_pred")
        y_true = self.prepare_targets(y_true, y_pred.shape[1], y_pred.dtype, "y_true")
        if y_true.shape[0] != y_pred.shape[0]:
            raise ValueError(
                f"y_true and y_pred have different numbers of samples: "
                f"{y_true.shape[0]} and {y_pred.shape[0]}")
        grad = np.empty_like(y_pred)
        return _losses.loss_value_grad(self.code, y_pred, y_true, grad)

    def get_config(self):
        return {}

    def __repr__(self):
        return f"{type(self).__name__}()"


class MeanSquaredError(Loss):
    """Mean of (y_pred - y_true)**2 over every element, as Keras and PyTorch."""

    name = "mse"
    code = MSE


_CLASSES = {"mse": MeanSquaredError, "mean_squared_error": MeanSquaredError}


def names():
    """The valid loss names."""
    return sorted(_CLASSES)


def get(identifier):
    """Return a Loss from a name or a Loss instance."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    if isinstance(identifier, str):
        key = identifier.lower()
        if key in _CLASSES:
            return _CLASSES[key]()
        raise ValueError(f"unknown loss {identifier!r}; valid names: {names()}")
    raise TypeError(f"loss must be a name or a pynn Loss, got {identifier!r} "
                    f"(type {type(identifier).__name__})")


def serialize(loss):
    """``{"class_name": ..., "config": ...}`` for a Loss."""
    return {"class_name": type(loss).__name__, "config": loss.get_config()}


def deserialize(config):
    """The Loss described by ``serialize``'s output (pynn classes only)."""
    from ._registry import from_config
    classes = {cls.__name__: cls for cls in set(_CLASSES.values())}
    return from_config(config, classes, "loss")
