"""pynn: dense neural networks on the CPU, compiled kernels under a Keras-like API."""
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
