"""``keras.regularizers``: not in pynn's compiled core yet.

Penalties on kernels and biases need a term in the loss and the gradient
passes of the compiled step; until it has them, every regularizer raises
NotImplementedError when made, and ``Dense(kernel_regularizer=...)`` too.
"""
from ._missing import Missing

_WHY = ("per-layer penalties need a term in the compiled step's loss and gradient "
        "passes, which it does not have; pynn.SGD and pynn.Adam take weight_decay "
        "(an L2 penalty on every kernel) instead")

Regularizer = Missing("keras.regularizers.Regularizer", _WHY)
L1 = l1 = Missing("keras.regularizers.L1", _WHY)
L2 = l2 = Missing("keras.regularizers.L2", _WHY)
L1L2 = l1_l2 = Missing("keras.regularizers.L1L2", _WHY)
OrthogonalRegularizer = Missing("keras.regularizers.OrthogonalRegularizer", _WHY)


def get(identifier):
    if identifier is None:
        return None
    raise NotImplementedError(f"regularizer {identifier!r} is not supported by pynn yet: "
                              f"{_WHY}")
