"""Optimizers over the model's flat parameter buffer.

An optimizer keeps its state (SGD's velocity) in one buffer laid out like the
parameters, so the whole update is a single compiled pass
(csrc/optim_kernels.pxd).
"""
import numpy as np

from . import _optim
from ._validation import check_real

SGD_CODE = 0


class Optimizer:
    """Base class: ``code`` names the kernel, ``hyper()`` its settings."""

    code = None

    def __init__(self):
        self.state = None
        self.iterations = 0

    def state_size(self, n_params):
        return 0

    def build(self, n_params, dtype):
        """Allocate the state for ``n_params`` parameters of ``dtype``."""
        size = self.state_size(n_params)
        if self.state is None or self.state.shape[0] != size or self.state.dtype != dtype:
            self.state = np.zeros(size, dtype=dtype)
            self.iterations = 0

    def hyper(self):
        """The kernel's settings, as a list of floats (see optim_kernels.pxd)."""
        raise NotImplementedError

    def apply(self, params, grads, decay_end):
        """Update ``params`` in place from ``grads`` (both flat, same layout)."""
        _optim.step(self.code, params, grads, self.state,
                    np.array(self.hyper(), dtype=np.float64), decay_end)
        self.iterations += 1


class SGD(Optimizer):
    """Mini-batch stochastic gradient descent, with momentum.

    With ``g`` the gradient, ``w`` a parameter and ``v`` its velocity::

        g = g + weight_decay * w          # kernels only, not biases
        if momentum == 0:
            w = w - learning_rate * g
        else:
            v = momentum * v - learning_rate * g
            if nesterov:                  # the mission's form
                w = w + momentum * v - learning_rate * g
            else:                         # classic momentum
                w = w + v

    Parameters
    ----------
    learning_rate : float > 0
    momentum : float in [0, 1)
    nesterov : bool
    weight_decay : float >= 0
        L2 penalty coefficient: adds ``weight_decay * W`` to each kernel's
        gradient (biases are not decayed).
    """

    code = SGD_CODE

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, weight_decay=0.0):
        super().__init__()
        self.learning_rate = check_real(learning_rate, "learning_rate", low=0, low_open=True)
        self.momentum = check_real(momentum, "momentum", low=0, high=1, high_open=True)
        if not isinstance(nesterov, (bool, np.bool_)):
            raise TypeError(f"nesterov must be True or False, got {nesterov!r}")
        self.nesterov = bool(nesterov)
        self.weight_decay = check_real(weight_decay, "weight_decay", low=0)

    def state_size(self, n_params):
        return n_params if self.momentum != 0 else 0

    def hyper(self):
        return [self.learning_rate, self.momentum, float(self.nesterov),
                self.weight_decay]

    def get_config(self):
        return {"learning_rate": self.learning_rate, "momentum": self.momentum,
                "nesterov": self.nesterov, "weight_decay": self.weight_decay}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"SGD({args})"


_CLASSES = {"sgd": SGD}


def names():
    return sorted(_CLASSES)


def get(identifier):
    """Return an Optimizer from a name (default settings) or an instance."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str):
        key = identifier.lower()
        if key in _CLASSES:
            return _CLASSES[key]()
        raise ValueError(f"unknown optimizer {identifier!r}; valid names: {names()}")
    raise TypeError(f"optimizer must be a name or a pynn Optimizer, got {identifier!r} "
                    f"(type {type(identifier).__name__})")
