"""pynn: dense neural networks on the CPU, compiled kernels under a Keras-like API."""
from . import activations, initializers, losses, optimizers
from .callbacks import History
from .errors import DivergenceError
from .layers import Dense
from .losses import MeanSquaredError
from .model import Sequential
from .optimizers import SGD

__version__ = "0.1.0"

__all__ = [
    "Dense", "DivergenceError", "History", "MeanSquaredError", "SGD",
    "Sequential", "activations", "initializers", "losses", "optimizers",
]
