# The kernel codes of codes.pxd, as Python enums (each member an int): the
# values come from the C declarations, so they cannot drift apart.
from enum import IntEnum

from pynn.kernels cimport codes as c

Activation = IntEnum("Activation", {
    "LINEAR": c.ACT_LINEAR, "RELU": c.ACT_RELU, "TANH": c.ACT_TANH,
    "SIGMOID": c.ACT_SIGMOID, "SOFTMAX": c.ACT_SOFTMAX, "LEAKY_RELU": c.ACT_LEAKY_RELU,
    "ELU": c.ACT_ELU, "SELU": c.ACT_SELU, "GELU": c.ACT_GELU, "SWISH": c.ACT_SWISH,
    "SOFTPLUS": c.ACT_SOFTPLUS})
Loss = IntEnum("Loss", {
    "MSE": c.LOSS_MSE, "BCE": c.LOSS_BCE, "BCE_LOGITS": c.LOSS_BCE_LOGITS,
    "CCE": c.LOSS_CCE, "CCE_LOGITS": c.LOSS_CCE_LOGITS,
    "SPARSE_CCE": c.LOSS_SPARSE_CCE, "SPARSE_CCE_LOGITS": c.LOSS_SPARSE_CCE_LOGITS,
    "MAE": c.LOSS_MAE, "HUBER": c.LOSS_HUBER, "POISSON": c.LOSS_POISSON,
    "POISSON_LOG": c.LOSS_POISSON_LOG})
Optimizer = IntEnum("Optimizer", {"SGD": c.OPT_SGD, "ADAM": c.OPT_ADAM, "RMSPROP": c.OPT_RMSPROP,
                                  "ADAMW": c.OPT_ADAMW, "NADAM": c.OPT_NADAM,
                                  "ADAGRAD": c.OPT_ADAGRAD})
Metric = IntEnum("Metric", {
    "BINARY_ACCURACY": c.METRIC_BINARY_ACCURACY,
    "CATEGORICAL_ACCURACY": c.METRIC_CATEGORICAL_ACCURACY,
    "SPARSE_ACCURACY": c.METRIC_SPARSE_ACCURACY})
LayerKind = IntEnum("LayerKind", {
    "DENSE": c.KIND_DENSE, "DROPOUT": c.KIND_DROPOUT, "BATCH_NORM": c.KIND_BATCH_NORM,
    "LAYER_NORM": c.KIND_LAYER_NORM})
Status = IntEnum("Status", {
    "OK": c.STATUS_OK, "NONFINITE": c.STATUS_NONFINITE,
    "X_NONFINITE": c.STATUS_X_NONFINITE, "Y_NONFINITE": c.STATUS_Y_NONFINITE})
