"""Metrics: quantities reported beside the loss by ``fit`` and ``evaluate``.

The functions take targets and probabilities (or plain outputs), as Keras's
do, and return the mean over the batch.  ``compile(metrics=[...])`` turns
names into :class:`Metric` objects, which a model feeds the raw output of
its last layer: logits when the loss is fused with the output activation
(or ``from_logits=True``), probabilities otherwise.  Accuracies need no
activation for that (argmax of logits is argmax of softmax; a logit is > 0
exactly when its sigmoid is > 0.5), MSE and MAE apply it in NumPy.

"accuracy" (or "acc") is resolved from the loss, as Keras does: binary
cross-entropy -> binary accuracy, categorical -> categorical accuracy,
sparse categorical -> sparse categorical accuracy; with another loss, a
single output means binary accuracy, several mean categorical accuracy.
"""
import numpy as np

from . import losses as _losses
from .reference import sigmoid, softmax
from ._codes import Metric as _Metric

_ACTIVATE = {"sigmoid": sigmoid, "softmax": softmax}
# the compiled metrics' codes (csrc/codes.pxd)
_BINARY_ACCURACY, _CATEGORICAL_ACCURACY, _SPARSE_ACCURACY = (
    int(_Metric[k]) for k in ("BINARY_ACCURACY", "CATEGORICAL_ACCURACY", "SPARSE_ACCURACY"))


def _labels(y_true):
    return np.asarray(y_true).reshape(-1)


def binary_accuracy(y_true, y_pred, threshold=0.5):
    """Fraction of entries where ``y_pred > threshold`` agrees with
    ``y_true > 0.5``, over every element of (n, m) arrays."""
    y_pred = np.asarray(y_pred)
    y_true = np.asarray(y_true).reshape(y_pred.shape)
    return float(np.mean((y_pred > threshold) == (y_true > 0.5)))


def categorical_accuracy(y_true, y_pred):
    """Fraction of rows whose largest output is the target's largest entry."""
    return float(np.mean(np.argmax(y_pred, axis=1) == np.argmax(y_true, axis=1)))


def sparse_categorical_accuracy(y_true, y_pred):
    """Fraction of rows whose largest output is at the integer label (n,) or (n, 1)."""
    return float(np.mean(np.argmax(y_pred, axis=1) == _labels(y_true)))


def mean_squared_error(y_true, y_pred):
    """Mean over every element of (y_pred - y_true)**2."""
    y_pred = np.asarray(y_pred)
    return float(np.mean((y_pred - np.asarray(y_true).reshape(y_pred.shape)) ** 2))


def mean_absolute_error(y_true, y_pred):
    """Mean over every element of |y_pred - y_true|."""
    y_pred = np.asarray(y_pred)
    return float(np.mean(np.abs(y_pred - np.asarray(y_true).reshape(y_pred.shape))))


class Metric:
    """A named metric.

    Parameters
    ----------
    name : str
        The key under which ``fit`` and ``evaluate`` report it (the name
        given to ``compile``).
    fn : callable ``fn(y_true, y_pred) -> float``
        One of this module's functions.
    """

    def __init__(self, name, fn):
        self.name = name
        self.fn = fn

    def __call__(self, y_true, y_pred):
        return self.fn(y_true, y_pred)

    def from_outputs(self, y, out, activation):
        """The metric on a batch: targets ``y`` as the loss prepared them,
        ``out`` the last layer's output (n, m), which are logits of
        ``activation`` when that is not None."""
        if activation is None:
            return self.fn(y, out)
        if self.fn in (categorical_accuracy, sparse_categorical_accuracy):
            return self.fn(y, out)      # sigmoid and softmax keep the argmax
        if self.fn is binary_accuracy and activation == "sigmoid":
            return binary_accuracy(y, out, threshold=0.0)
        return self.fn(y, _ACTIVATE[activation](out))

    def kernel(self, activation):
        """(code, threshold) of the compiled twin of ``from_outputs`` with this
        ``activation`` (see csrc/dense.pyx), or None when there is none."""
        if self.fn is categorical_accuracy:
            return _CATEGORICAL_ACCURACY, 0.0
        if self.fn is sparse_categorical_accuracy:
            return _SPARSE_ACCURACY, 0.0
        if self.fn is binary_accuracy and activation in (None, "sigmoid"):
            return _BINARY_ACCURACY, 0.0 if activation == "sigmoid" else 0.5
        return None

    def __repr__(self):
        return f"Metric({self.name!r})"


_FUNCTIONS = {
    "binary_accuracy": binary_accuracy,
    "categorical_accuracy": categorical_accuracy,
    "sparse_categorical_accuracy": sparse_categorical_accuracy,
    "mse": mean_squared_error,
    "mean_squared_error": mean_squared_error,
    "mae": mean_absolute_error,
    "mean_absolute_error": mean_absolute_error,
}
_ACCURACY = ("accuracy", "acc")


def names():
    """The valid metric names."""
    return sorted(set(_FUNCTIONS) | set(_ACCURACY))


def _accuracy_for(loss, n_outputs):
    if isinstance(loss, _losses.BinaryCrossentropy):
        return binary_accuracy
    if isinstance(loss, _losses.SparseCategoricalCrossentropy):
        return sparse_categorical_accuracy
    if isinstance(loss, _losses.CategoricalCrossentropy):
        return categorical_accuracy
    return binary_accuracy if n_outputs == 1 else categorical_accuracy


def get(identifier, loss, n_outputs=None):
    """A :class:`Metric` from a name (or a Metric), for a model compiled
    with ``loss`` and ``n_outputs`` outputs."""
    if isinstance(identifier, Metric):
        _check_fits(identifier.name, identifier.fn, loss)
        return identifier
    if not isinstance(identifier, str):
        raise TypeError(f"a metric must be a name or a pynn Metric, got "
                        f"{identifier!r} (type {type(identifier).__name__})")
    key = identifier.lower()
    if key in _ACCURACY:
        fn = _accuracy_for(loss, n_outputs)
    elif key in _FUNCTIONS:
        fn = _FUNCTIONS[key]
    else:
        raise ValueError(f"unknown metric {identifier!r}; valid names: {names()}")
    _check_fits(identifier, fn, loss)
    return Metric(identifier, fn)


def _check_fits(name, fn, loss):
    # a metric reads the targets as the loss prepared them: integer labels
    # for the sparse loss, rows shaped like the output otherwise
    sparse = isinstance(loss, _losses.SparseCategoricalCrossentropy)
    if sparse != (fn is sparse_categorical_accuracy):
        what = "integer labels" if sparse else "targets shaped like the output"
        raise ValueError(f"metric {name!r} does not fit the loss {loss.name!r}, "
                         f"whose targets are {what}")


def get_list(identifiers, loss, n_outputs=None):
    """Metrics from ``compile(metrics=...)``: None or a list of names."""
    if identifiers is None:
        return []
    if isinstance(identifiers, (str, Metric)):
        raise TypeError(f"metrics must be a list, got {identifiers!r}; "
                        f"write metrics=[{identifiers!r}]")
    out = [get(m, loss, n_outputs) for m in identifiers]
    seen = set()
    for m in out:
        if m.name in seen or m.name == "loss":
            raise ValueError(f"metric name {m.name!r} is used twice (or is 'loss')")
        seen.add(m.name)
    return out
