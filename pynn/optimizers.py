"""Optimizers over the model's flat parameter buffer.

An optimizer keeps its state (SGD's velocity) in one buffer laid out like the
parameters, so the whole update is a single compiled pass
(csrc/optim_kernels.pxd).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import _codes, _optim, schedules
from ._registry import from_config, from_name
from ._validation import check_real

# the kernels' codes (csrc/codes.pxd)
SGD_CODE, ADAM_CODE = int(_codes.Optimizer.SGD), int(_codes.Optimizer.ADAM)


def _check_learning_rate(value):
    # A number, or a schedule called with the step count (Keras style).
    if callable(value) and not isinstance(value, (int, float, np.number)):
        return value
    return check_real(value, "learning_rate", low=0, low_open=True)


class Optimizer:
    """Base class: ``code`` names the kernel, ``hyper()`` its settings."""

    code = None

    def __init__(self):
        self.state = None
        self.iterations = 0

    def state_size(self, n_params):
        return 0

    def build(self, n_params: int, dtype: type) -> None:
        """Allocate the state for ``n_params`` parameters of ``dtype``."""
        size = self.state_size(n_params)
        if self.state is None or self.state.shape[0] != size or self.state.dtype != dtype:
            self.state = np.zeros(size, dtype=dtype)
            self.iterations = 0

    def hyper(self) -> list[float]:
        """The kernel's settings, as a list of floats (see optim_kernels.pxd)."""
        raise NotImplementedError

    def _settings(self):
        raise NotImplementedError

    @property
    def scheduled(self):
        """True when the learning rate follows a schedule (changes every step)."""
        return callable(self.learning_rate)

    def learning_rate_at(self, step: int) -> float:
        """The learning rate of update number ``step`` (0-based).

        A constant, or the schedule's value at ``step``; a schedule returning
        anything but a finite number > 0 raises ValueError.
        """
        lr = self.learning_rate
        if not callable(lr):
            return lr
        value = lr(step)
        try:
            return check_real(value, "learning_rate", low=0, low_open=True)
        except (TypeError, ValueError):
            raise ValueError(f"the learning-rate schedule {lr!r} returned {value!r} at "
                             f"step {step}; it must return a finite number > 0") from None

    def get_config(self) -> dict:
        """The settings, JSON-ready (a schedule as ``{"class_name", "config"}``)."""
        config = self._settings()
        if callable(config["learning_rate"]):
            config["learning_rate"] = schedules.serialize(config["learning_rate"])
        return config

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self._settings().items())
        return f"{type(self).__name__}({args})"

    def apply(self, params: np.ndarray, grads: np.ndarray, decay_end: int) -> None:
        """Update ``params`` in place from ``grads`` (both flat, same layout)."""
        # counted inside the compiled step, so that an interrupt landing as
        # it returns cannot leave the count short of the update
        count = np.array([self.iterations], dtype=np.int64)
        try:
            _optim.step(self.code, params, grads, self.state, self.hyper(), decay_end, count)
        finally:
            self.iterations = int(count[0])


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
    learning_rate : float > 0 or schedule
        A constant, or a callable of the step count such as
        ``pynn.ExponentialDecay`` (evaluated before every update).
    momentum : float in [0, 1)
    nesterov : bool
    weight_decay : float >= 0
        L2 penalty coefficient: adds ``weight_decay * W`` to each kernel's
        gradient (biases are not decayed).
    """

    code = SGD_CODE

    def __init__(self, learning_rate: float | Callable[[int], float] = 0.01,
                 momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0) -> None:
        super().__init__()
        self.learning_rate = _check_learning_rate(learning_rate)
        self.momentum = check_real(momentum, "momentum", low=0, high=1, high_open=True)
        if not isinstance(nesterov, (bool, np.bool_)):
            raise TypeError(f"nesterov must be True or False, got {nesterov!r}")
        self.nesterov = bool(nesterov)
        self.weight_decay = check_real(weight_decay, "weight_decay", low=0)

    def state_size(self, n_params):
        return n_params if self.momentum != 0 else 0

    def hyper(self):
        return [self.learning_rate_at(self.iterations), self.momentum,
                float(self.nesterov), self.weight_decay]

    def _settings(self):
        return {"learning_rate": self.learning_rate, "momentum": self.momentum,
                "nesterov": self.nesterov, "weight_decay": self.weight_decay}


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015, Algorithm 1), bias-corrected.

    With ``g`` the gradient, ``w`` a parameter, ``m`` and ``v`` its moment
    estimates (both start at 0) and ``t`` the 1-based step number::

        g = g + weight_decay * w          # kernels only, not biases
        m = beta_1 * m + (1 - beta_1) * g
        v = beta_2 * v + (1 - beta_2) * g * g
        m_hat = m / (1 - beta_1 ** t)
        v_hat = v / (1 - beta_2 ** t)
        w = w - learning_rate * m_hat / (sqrt(v_hat) + epsilon)

    ``weight_decay`` is an L2 penalty added to the gradient (as in SGD and
    PyTorch's Adam), not AdamW's decoupled decay.

    Parameters
    ----------
    learning_rate : float > 0 or schedule
    beta_1, beta_2 : float in [0, 1)
    epsilon : float > 0
    weight_decay : float >= 0
    """

    code = ADAM_CODE

    def __init__(self, learning_rate: float | Callable[[int], float] = 0.001,
                 beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-7,
                 weight_decay: float = 0.0) -> None:
        super().__init__()
        self.learning_rate = _check_learning_rate(learning_rate)
        self.beta_1 = check_real(beta_1, "beta_1", low=0, high=1, high_open=True)
        self.beta_2 = check_real(beta_2, "beta_2", low=0, high=1, high_open=True)
        self.epsilon = check_real(epsilon, "epsilon", low=0, low_open=True)
        self.weight_decay = check_real(weight_decay, "weight_decay", low=0)

    def state_size(self, n_params):
        return 2 * n_params              # m, then v

    def hyper(self):
        # slot 15 is the count of updates so far (HYPER_STEP in optim_kernels.pxd)
        return [self.learning_rate_at(self.iterations), self.beta_1, self.beta_2,
                self.epsilon, self.weight_decay] + [0.0] * 10 + [float(self.iterations)]

    def _settings(self):
        return {"learning_rate": self.learning_rate, "beta_1": self.beta_1,
                "beta_2": self.beta_2, "epsilon": self.epsilon,
                "weight_decay": self.weight_decay}


_CLASSES = {"sgd": SGD, "adam": Adam}
_BY_CLASS_NAME = {cls.__name__: cls for cls in _CLASSES.values()}


def serialize(optimizer: Optimizer) -> dict:
    """``{"class_name": ..., "config": ...}`` for an Optimizer."""
    return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}


def deserialize(config: dict) -> Optimizer:
    """The Optimizer (fresh state) described by ``serialize``'s output."""
    if isinstance(config, dict) and isinstance(config.get("config"), dict) \
            and isinstance(config["config"].get("learning_rate"), dict):
        settings = dict(config["config"])
        settings["learning_rate"] = schedules.deserialize(settings["learning_rate"])
        config = {**config, "config": settings}
    return from_config(config, _BY_CLASS_NAME, "optimizer")


def names() -> list[str]:
    return sorted(_CLASSES)


def get(identifier: str | dict | Optimizer) -> Optimizer:
    """Return an Optimizer from a name (default settings), a ``serialize``
    dict or an instance."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        return from_name(identifier, _CLASSES, "optimizer")
    raise TypeError(f"optimizer must be a name or a pynn Optimizer, got {identifier!r} "
                    f"(type {type(identifier).__name__})")
