"""pynn: dense neural networks on the CPU, compiled kernels under a Keras-like API."""
from . import activations, initializers, losses, optimizers, schedules
from .callbacks import History
from .errors import DivergenceError
from .layers import Dense
from .losses import MeanSquaredError
from .model import Sequential
from .optimizers import SGD, Adam
from .schedules import ExponentialDecay, InverseScaling, StepDecay

__version__ = "0.1.0"

__all__ = [
    "Adam", "Dense", "DivergenceError", "ExponentialDecay", "History", "InverseScaling",
    "MeanSquaredError", "SGD", "Sequential", "StepDecay", "activations", "initializers",
    "losses", "optimizers", "schedules",
]
