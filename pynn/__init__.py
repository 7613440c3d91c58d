"""pynn: dense neural networks on the CPU, compiled kernels under a Keras-like API."""
try:
    from . import _dense  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on how pynn was installed
    raise ImportError(
        "pynn's compiled kernels could not be imported. If this is a source "
        "checkout, Python is importing it instead of the installed package: "
        "build it in place (pip install -e .) or run from another directory."
    ) from exc
from . import _threads

_threads.install_backend()   # the GEMM the kernels call, chosen once (PYNN_BLAS)
from ._version import __version__
from ._dense import get_include
from . import (activations, callbacks, initializers, losses, metrics, optimizers,
               regularizers, schedules)
from .callbacks import (CSVLogger, Callback, EarlyStopping, History, LambdaCallback,
                        LearningRateScheduler, ModelCheckpoint, ReduceLROnPlateau,
                        TerminateOnNaN)
from .errors import DivergenceError
from .gradcheck import check_gradients
from .io import load
from .layers import BatchNormalization, Dense, Dropout, LayerNormalization
from .losses import (BinaryCrossentropy, CategoricalCrossentropy, MeanSquaredError,
                     SparseCategoricalCrossentropy)
from .model import Sequential
from .optimizers import SGD, Adagrad, Adam, AdamW, Nadam, RMSprop
from .metrics import AUC, Precision, Recall
from .schedules import CosineDecay, ExponentialDecay, InverseScaling, LinearWarmup, StepDecay

__all__ = [
    "AUC", "Adagrad", "Adam", "AdamW", "BatchNormalization", "BinaryCrossentropy", "CSVLogger", "Callback", "CategoricalCrossentropy",
    "CosineDecay", "Dense", "DivergenceError", "Dropout", "EarlyStopping", "ExponentialDecay", "History",
    "InverseScaling", "LambdaCallback", "LayerNormalization", "LearningRateScheduler", "LinearWarmup",
    "MeanSquaredError", "ModelCheckpoint", "Nadam", "Precision", "RMSprop", "Recall", "ReduceLROnPlateau", "SGD",
    "Sequential", "SparseCategoricalCrossentropy", "StepDecay", "TerminateOnNaN",
    "activations", "callbacks", "check_gradients", "get_include", "initializers", "load", "losses",
    "metrics", "optimizers", "regularizers", "schedules",
]
