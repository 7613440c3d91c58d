"""pynn: dense neural networks on the CPU, compiled kernels under a Keras-like API."""
from . import activations, callbacks, initializers, losses, optimizers, schedules
from .callbacks import (Callback, EarlyStopping, History, LambdaCallback, ModelCheckpoint,
                        ReduceLROnPlateau)
from .errors import DivergenceError
from .gradcheck import check_gradients
from .io import load
from .layers import Dense
from .losses import MeanSquaredError
from .model import Sequential
from .optimizers import SGD, Adam
from .schedules import ExponentialDecay, InverseScaling, StepDecay

__version__ = "0.1.0"

__all__ = [
    "Adam", "Callback", "Dense", "DivergenceError", "EarlyStopping", "ExponentialDecay",
    "History", "InverseScaling", "LambdaCallback", "MeanSquaredError", "ModelCheckpoint",
    "ReduceLROnPlateau", "SGD", "Sequential", "StepDecay", "activations", "callbacks",
    "check_gradients", "initializers", "load", "losses", "optimizers", "schedules",
]
