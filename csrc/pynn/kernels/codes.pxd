# The codes by which the Python layer names kernels to the compiled ones,
# declared once: cimported by the kernels, and seen from Python as the
# IntEnums of pynn._codes (codes.pyx), which pynn/activations.py, losses.py,
# optimizers.py, metrics.py and model.py import theirs from.  (A cpdef enum
# here would make its Python class live in a compiled module of this path,
# pynn.kernels.codes, beside these declarations; plain enums keep the
# declarations a header any Cython module can cimport, and codes.pyx builds
# the Python enums from their values, so that the two cannot drift apart.)

cdef enum Activation:
    ACT_LINEAR = 0
    ACT_RELU = 1
    ACT_TANH = 2
    ACT_SIGMOID = 3
    ACT_SOFTMAX = 4
    ACT_LEAKY_RELU = 5            # Keras's default negative_slope, 0.2
    ACT_ELU = 6                   # alpha = 1
    ACT_SELU = 7
    ACT_GELU = 8                  # the exact (erf) form; derivative from Z
    ACT_SWISH = 9                 # z sigmoid(z), also named silu; derivative from Z
    ACT_SOFTPLUS = 10

cdef enum Loss:
    LOSS_MSE = 0
    LOSS_BCE = 1                  # binary cross-entropy, from probabilities
    LOSS_BCE_LOGITS = 2           # ... from logits (sigmoid fused in)
    LOSS_CCE = 3                  # categorical cross-entropy, from probabilities
    LOSS_CCE_LOGITS = 4           # ... from logits (softmax fused in)
    LOSS_SPARSE_CCE = 5           # sparse categorical, from probabilities
    LOSS_SPARSE_CCE_LOGITS = 6    # ... from logits (softmax fused in)
    LOSS_MAE = 7                  # mean absolute error
    LOSS_HUBER = 8                # Huber, its delta passed as the loss's param
    LOSS_POISSON = 9              # Keras's Poisson, from predictions
    LOSS_POISSON_LOG = 10         # half Poisson deviance, from the raw output (exp fused in)

cdef enum Optimizer:
    OPT_SGD = 0
    OPT_ADAM = 1
    OPT_RMSPROP = 2
    OPT_ADAMW = 3
    OPT_NADAM = 4
    OPT_ADAGRAD = 5

cdef enum Metric:
    METRIC_BINARY_ACCURACY = 1       # mean over elements of (out > t) == (y > 0.5)
    METRIC_CATEGORICAL_ACCURACY = 2  # argmax(out) == argmax(y), per row
    METRIC_SPARSE_ACCURACY = 3       # argmax(out) == label, per row

cdef enum LayerKind:              # layout column 6 (dense.pyx)
    KIND_DENSE = 0                # X @ W.T + b and the fused activation
    KIND_DROPOUT = 1              # inverted dropout, masks from the model's generator
    KIND_BATCH_NORM = 2           # batch statistics in training, moving ones in inference
    KIND_LAYER_NORM = 3           # per-sample statistics over the features

cdef enum Status:
    STATUS_OK = 0
    STATUS_NONFINITE = 1        # loss, gradient or updated values not finite: step not applied
    STATUS_X_NONFINITE = 2      # the input batch holds NaN or inf: nothing ran
    STATUS_Y_NONFINITE = 3      # the targets hold NaN or inf: nothing ran
