"""``keras.callbacks``: pynn's callbacks under Keras's names."""
from ..callbacks import (CSVLogger, Callback, EarlyStopping, History, LambdaCallback,
                         LearningRateScheduler, ModelCheckpoint, ReduceLROnPlateau,
                         TerminateOnNaN)
from ._missing import module_getattr

__all__ = ["CSVLogger", "Callback", "EarlyStopping", "History", "LambdaCallback",
           "LearningRateScheduler", "ModelCheckpoint", "ReduceLROnPlateau", "TerminateOnNaN"]

__getattr__ = module_getattr(__name__, ("TensorBoard", "BackupAndRestore", "ProgbarLogger",
                                        "RemoteMonitor", "SwapEMAWeights"),
                             "pynn has no such callback")
