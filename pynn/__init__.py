"""pynn: dense neural networks on the CPU, compiled kernels under a Keras-like API."""
try:
    from . import _dense  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on how pynn was installed
    raise ImportError(
        "pynn's compiled kernels could not be imported. If this is a source "
        "checkout, Python is importing it instead of the installed package: "
        "build it in place (pip install -e .) or run from another directory."
    ) from exc
from . import activations, initializers, losses, metrics, optimizers
from .callbacks import History
from .errors import DivergenceError
from .layers import Dense
from .losses import (BinaryCrossentropy, CategoricalCrossentropy, MeanSquaredError,
                     SparseCategoricalCrossentropy)
from .model import Sequential
from .optimizers import SGD

__version__ = "0.1.0"

__all__ = [
    "BinaryCrossentropy", "CategoricalCrossentropy", "Dense", "DivergenceError",
    "History", "MeanSquaredError", "SGD", "Sequential",
    "SparseCategoricalCrossentropy", "activations", "initializers", "losses",
    "metrics", "optimizers",
]
