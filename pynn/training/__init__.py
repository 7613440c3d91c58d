"""Training apart from the model: fit's argument checks, the CallbackList,
and the batch runners (compiled epoch, per batch, streamed data, MPI
data-parallel) the trainer chooses between.

It trains a model through the model core's step interface (pynn.core):
``engine``, ``step``, ``check_xy``, ``batch_metrics``, ``lock``.
"""
from .trainer import fit, train_on_batch

__all__ = ["fit", "train_on_batch"]
