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
from ._validation import check_bool, check_real

# the kernels' codes (csrc/codes.pxd)
SGD_CODE, ADAM_CODE = int(_codes.Optimizer.SGD), int(_codes.Optimizer.ADAM)


def _check_learning_rate(value, argname="learning_rate"):
    # A number, or a schedule called with the step count (Keras style).
    if callable(value) and not isinstance(value, (int, float, np.number)):
        return value
    return check_real(value, argname, low=0, low_open=True)


def _check_bool(value, argname):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{argname} must be True or False, got {value!r}")
    return bool(value)


def _unit_interval(value, argname):
    return check_real(value, argname, low=0, high=1, high_open=True)


def _positive(value, argname):
    return check_real(value, argname, low=0, low_open=True)


def _nonnegative(value, argname):
    return check_real(value, argname, low=0)


class _Setting:
    """An optimizer setting checked on every assignment, as in the constructor.

    ``below_one`` marks a factor that must stay under 1 (a momentum, a
    decay rate): in the model's dtype it must not round up to 1.  Once the
    optimizer trains a model, a new value is also checked against the
    model's dtype (``Optimizer.check_dtype``); a refused value changes nothing.
    """

    def __init__(self, check, below_one=False):
        self.check, self.below_one = check, below_one

    def __set_name__(self, owner, name):
        self.name, self.slot = name, "_" + name

    def __get__(self, obj, objtype=None):
        return self if obj is None else getattr(obj, self.slot)

    def __set__(self, obj, value):
        value = self.check(value, self.name)
        model = obj._owner() if obj._owner is not None else None
        if model is not None:
            obj._check_value(self, value, model.dtype)
        setattr(obj, self.slot, value)


class Optimizer:
    """Base class: ``code`` names the kernel, ``hyper()`` its settings."""

    code = None
    learning_rate = _Setting(_check_learning_rate)
    weight_decay = _Setting(_nonnegative)

    def __init__(self):
        self.state = None
        self.iterations = 0
        self._owner_ref = None

    @property
    def _owner(self):
        """A weak reference to the model this optimizer trains, or None.

        Its state (velocities, moments, step count) belongs to that one
        model: assigning another live model is refused, whether by compile
        or by ``model.optimizer = ...`` followed by training, before the
        state is resized for the other model.
        """
        return getattr(self, "_owner_ref", None)

    @_owner.setter
    def _owner(self, ref):
        current = self._owner() if self._owner is not None else None
        new = ref() if ref is not None else None
        if current is not None and new is not current:
            raise ValueError(f"this optimizer ({self!r}) already trains another model; "
                             f"give each model an optimizer of its own")
        if new is not None:
            self.check_dtype(new.dtype)
        self._owner_ref = ref

    @property
    def owner(self):
        """The public face of ``_owner``: the model sets it when it takes
        this optimizer (a weak reference), with the same refusal."""
        return self._owner

    @owner.setter
    def owner(self, ref):
        self._owner = ref

    def check_dtype(self, dtype) -> None:
        """Refuse settings that ``dtype`` cannot hold as given.

        The kernels compute in the model's dtype: a setting that rounds to
        0 there (``Adam(epsilon=1e-50)`` in float32), overflows it
        (``SGD(1e39)``) or, for a factor below 1, rounds to 1
        (``momentum=1 - 1e-9`` in float32) would silently change the
        update rule.  A schedule's rates are checked as they are computed.
        """
        for setting in type(self)._all_settings():
            self._check_value(setting, getattr(self, setting.name), dtype)

    @classmethod
    def _all_settings(cls):
        return [v for klass in reversed(cls.__mro__) for v in vars(klass).values()
                if isinstance(v, _Setting)]

    def _check_value(self, setting, value, dtype):
        if isinstance(value, bool) or not isinstance(value, float):
            return                        # a flag, or a schedule
        dtype = np.dtype(dtype)
        with np.errstate(over="ignore"):
            held = float(dtype.type(value))
        reason = None
        if not np.isfinite(held):
            reason = f"overflows {dtype.name} (largest {np.finfo(dtype).max:.4g})"
        elif value != 0 and held == 0:
            reason = f"rounds to 0 in {dtype.name} (smallest {np.finfo(dtype).smallest_subnormal:.4g})"
        elif setting.below_one and held == 1:
            reason = f"rounds to 1 in {dtype.name} (its spacing below 1 is {np.finfo(dtype).epsneg:.4g})"
        if reason:
            raise ValueError(f"{setting.name}={value!r} {reason}: give a value "
                             f"{dtype.name} holds, or a float64 model")

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
        anything but a finite number > 0, or one the trained model's dtype
        rounds to 0 or overflows, raises ValueError.
        """
        lr = self.learning_rate
        if not callable(lr):
            return lr
        value = lr(step)
        model = self._owner() if self._owner is not None else None
        try:
            value = check_real(value, "learning_rate", low=0, low_open=True)
            if model is not None:
                self._check_value(Optimizer.learning_rate, value, model.dtype)
            return value
        except (TypeError, ValueError) as exc:
            raise ValueError(f"the learning-rate schedule {lr!r} returned {value!r} at "
                             f"step {step}; it must return a finite number > 0 that "
                             f"the model's dtype holds ({exc})") from None

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
            if nesterov:                  # the Keras form
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
    momentum = _Setting(_unit_interval, below_one=True)
    nesterov = _Setting(_check_bool)

    def __init__(self, learning_rate: float | Callable[[int], float] = 0.01,
                 momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0) -> None:
        super().__init__()
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.nesterov = nesterov
        self.weight_decay = weight_decay

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
    beta_1 = _Setting(_unit_interval, below_one=True)
    beta_2 = _Setting(_unit_interval, below_one=True)
    epsilon = _Setting(_positive)

    def __init__(self, learning_rate: float | Callable[[int], float] = 0.001,
                 beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-7,
                 weight_decay: float = 0.0) -> None:
        super().__init__()
        self.learning_rate = learning_rate
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.weight_decay = weight_decay

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
