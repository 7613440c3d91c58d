"""Optimizers over the model's flat parameter buffer.

An optimizer keeps its state (SGD's velocity) in one buffer laid out like the
parameters, so the whole update is a single compiled pass
(csrc/pynn/kernels/optim_kernels.pxd).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import _codes, _optim, schedules
from ._registry import from_config, from_name
from ._validation import check_bool, check_real

# the kernels' codes (csrc/pynn/kernels/codes.pxd)
SGD_CODE, ADAM_CODE = int(_codes.Optimizer.SGD), int(_codes.Optimizer.ADAM)
RMSPROP_CODE, ADAMW_CODE = int(_codes.Optimizer.RMSPROP), int(_codes.Optimizer.ADAMW)
NADAM_CODE, ADAGRAD_CODE = int(_codes.Optimizer.NADAM), int(_codes.Optimizer.ADAGRAD)


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


def _clip_threshold(value, argname):
    # None (off), or a threshold >= 0; 0 is off too, as in Keras
    return None if value is None else check_real(value, argname, low=0)


# the kernels' slots of the clipping settings (HYPER_CLIPNORM.. and
# HYPER_STEP in optim_kernels.pxd)
_CLIP_SLOTS = {"clipnorm": 12, "clipvalue": 13, "global_clipnorm": 14}
_STEP_SLOT = 15


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
        # the settings the network holds are rebuilt at the next step
        obj.revision = getattr(obj, "revision", 0) + 1
        obj._kernel_cache = None


class _ClipSetting(_Setting):
    """A clipping threshold: at most one of the three is set (not None), as
    Keras 3 and pynn/reference.py's clip_gradients require."""

    def __set__(self, obj, value):
        if value is not None and value != 0:
            # 0 means off, as None does (Keras 3's reading of clipnorm=0)
            others = [name for name in _CLIP_SLOTS
                      if name != self.name and getattr(obj, "_" + name, None) not in (None, 0)]
            if others:
                raise ValueError(f"only one of clipnorm, clipvalue and global_clipnorm "
                                 f"can be set: {others[0]} is already {getattr(obj, others[0])!r}, "
                                 f"got {self.name}={value!r} (set it to None first)")
        super().__set__(obj, value)


class Optimizer:
    """Base class: ``code`` names the kernel, ``hyper()`` its settings.

    Every optimizer takes Keras 3's gradient clipping, applied to the
    gradients of the trainable variables (each layer's kernel and bias is
    one variable) before the update, in the compiled gradient pass; at most
    one of the three may be set (pynn/reference.py ``clip_gradients`` is the
    twin)::

        clipnorm:         g = g * clipnorm / max(norm(g), clipnorm)   # per variable
        clipvalue:        g = clip(g, -clipvalue, clipvalue)
        global_clipnorm:  g = g * global_clipnorm / max(n, global_clipnorm)
                          # n the 2-norm of all the variables' gradients together

    A step whose gradient holds NaN or inf is refused before clipping (so
    clipvalue never turns an inf into a finite step).  Regularizers' terms
    are part of the gradient that is clipped, SGD's and Adam's L2
    ``weight_decay`` is added after it, as Keras's decay is.
    """

    code = None
    learning_rate = _Setting(_check_learning_rate)
    clipnorm = _ClipSetting(_clip_threshold)
    clipvalue = _ClipSetting(_clip_threshold)
    global_clipnorm = _ClipSetting(_clip_threshold)

    def __init__(self, clipnorm=None, clipvalue=None, global_clipnorm=None):
        self.state = None
        self.iterations = 0
        # moves at every assignment of a setting (the learning rate, momentum,
        # clipping, ...): what a model compares, once a step, to know whether
        # the network's copy of the settings or the state's size may be stale
        self.revision = 0
        self._kernel_cache = None
        self._owner_ref = None
        self._clipnorm = self._clipvalue = self._global_clipnorm = None
        self.clipnorm = clipnorm
        self.clipvalue = clipvalue
        self.global_clipnorm = global_clipnorm

    def _clipping(self):
        return (self._clipnorm, self._clipvalue, self._global_clipnorm) != (None,) * 3

    def _kernel_slots(self, values):
        """The kernel's settings but the step count: ``values`` first, then
        (the slots between left 0) the clipping thresholds.  Without
        clipping the list stops after the values: no longer a list than the
        step needs."""
        if not self._clipping():
            return values
        slots = values + [0.0] * (_STEP_SLOT - len(values))
        for name, slot in _CLIP_SLOTS.items():
            slots[slot] = getattr(self, name) or 0.0
        return slots

    def _clip_settings(self):
        # only those set: configs of optimizers without clipping read as before
        return {name: getattr(self, name) for name in _CLIP_SLOTS
                if getattr(self, name) is not None}

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

    # Each optimizer names its settings once: in its config's order
    # (learning_rate first), and in the order of its kernel's slots after the
    # learning rate (csrc/pynn/kernels/optim_kernels.pxd); whether the kernel reads the
    # step count.
    _CONFIG: tuple[str, ...] = ("learning_rate",)
    _KERNEL: tuple[str, ...] = ()
    _KERNEL_STEP = True

    def hyper(self) -> list[float]:
        """The kernel's settings, as a list of floats (see optim_kernels.pxd):
        ``kernel_settings()``, then (when the kernel reads it, or with
        clipping) the count of updates so far in the last slot."""
        slots = list(self.kernel_settings())
        if self._KERNEL_STEP or self._clipping():
            slots += [0.0] * (_STEP_SLOT - len(slots)) + [float(self.iterations)]
        return slots

    def kernel_settings(self) -> tuple[float, ...]:
        """The settings the compiled network takes before an update: ``hyper()``
        without the step count (the network counts the updates itself).

        Built once per ``revision`` (the count of assignments of a
        setting); a schedule's rate is computed at
        ``iterations`` on every call (and checked, as ``learning_rate_at``
        checks it), so a schedule still moves at every step and a setting
        assigned between two steps takes effect at the next one.
        """
        cached = self._kernel_cache
        if cached is None:
            scheduled = self.scheduled
            values = self._kernel_slots([0.0 if scheduled else self.learning_rate]
                                        + [float(getattr(self, name)) for name in self._KERNEL])
            cached = self._kernel_cache = (scheduled, tuple(values))
        if cached[0]:
            return (self.learning_rate_at(self.iterations),) + cached[1][1:]
        return cached[1]

    def _settings(self):
        return {**{name: getattr(self, name) for name in self._CONFIG},
                **self._clip_settings()}

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
    _CONFIG = ("learning_rate", "momentum", "nesterov", "weight_decay")
    _KERNEL = ("momentum", "nesterov", "weight_decay")
    _KERNEL_STEP = False                # SGD's kernel reads no step count
    weight_decay = _Setting(_nonnegative)
    momentum = _Setting(_unit_interval, below_one=True)
    nesterov = _Setting(_check_bool)

    def __init__(self, learning_rate: float | Callable[[int], float] = 0.01,
                 momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0,
                 clipnorm: float | None = None, clipvalue: float | None = None,
                 global_clipnorm: float | None = None) -> None:
        super().__init__(clipnorm, clipvalue, global_clipnorm)
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.nesterov = nesterov
        self.weight_decay = weight_decay

    def state_size(self, n_params):
        return n_params if self.momentum != 0 else 0



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

    ``weight_decay`` is an L2 penalty added to the kernels' gradient (as
    in SGD and PyTorch's Adam), not the decoupled decay of ``AdamW``; Keras
    3's ``Adam(weight_decay=...)`` means the decoupled one: use ``AdamW``
    for that.

    Parameters
    ----------
    learning_rate : float > 0 or schedule
    beta_1, beta_2 : float in [0, 1)
    epsilon : float > 0
    weight_decay : float >= 0
    """

    code = ADAM_CODE
    _CONFIG = ("learning_rate", "beta_1", "beta_2", "epsilon", "weight_decay")
    _KERNEL = ("beta_1", "beta_2", "epsilon", "weight_decay")
    weight_decay = _Setting(_nonnegative)
    beta_1 = _Setting(_unit_interval, below_one=True)
    beta_2 = _Setting(_unit_interval, below_one=True)
    epsilon = _Setting(_positive)

    def __init__(self, learning_rate: float | Callable[[int], float] = 0.001,
                 beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-7,
                 weight_decay: float = 0.0,
                 clipnorm: float | None = None, clipvalue: float | None = None,
                 global_clipnorm: float | None = None) -> None:
        super().__init__(clipnorm, clipvalue, global_clipnorm)
        self.learning_rate = learning_rate
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.weight_decay = weight_decay

    def state_size(self, n_params):
        return 2 * n_params              # m, then v



class RMSprop(Optimizer):
    """RMSprop in Keras 3's form (keras/src/optimizers/rmsprop.py; Hinton's
    lecture 6e), ``pynn.reference.rmsprop_step`` its twin::

        velocity = rho * velocity + (1 - rho) * g * g
        if centered:
            average_gradient = rho * average_gradient + (1 - rho) * g
            denominator = velocity - average_gradient ** 2 + epsilon
        else:
            denominator = velocity + epsilon
        increment = learning_rate * g / sqrt(denominator)
        if momentum > 0:
            buffer = momentum * buffer + increment
            w = w - buffer
        else:
            w = w - increment

    epsilon is inside the root and the learning rate inside the momentum
    buffer, as Keras (PyTorch puts both outside).  Every parameter is
    updated alike; there is no weight decay.

    Parameters
    ----------
    learning_rate : float > 0 or schedule
    rho : float in [0, 1)
    momentum : float in [0, 1)
    epsilon : float > 0
    centered : bool
    """

    code = RMSPROP_CODE
    _CONFIG = ("learning_rate", "rho", "momentum", "epsilon", "centered")
    _KERNEL = ("rho", "momentum", "epsilon", "centered")
    rho = _Setting(_unit_interval, below_one=True)
    momentum = _Setting(_unit_interval, below_one=True)
    epsilon = _Setting(_positive)
    centered = _Setting(_check_bool)

    def __init__(self, learning_rate: float | Callable[[int], float] = 0.001,
                 rho: float = 0.9, momentum: float = 0.0, epsilon: float = 1e-7,
                 centered: bool = False,
                 clipnorm: float | None = None, clipvalue: float | None = None,
                 global_clipnorm: float | None = None) -> None:
        super().__init__(clipnorm, clipvalue, global_clipnorm)
        self.learning_rate = learning_rate
        self.rho = rho
        self.momentum = momentum
        self.epsilon = epsilon
        self.centered = centered

    def state_size(self, n_params):
        # velocity, then the momentum buffer and the average gradient when on
        return n_params * (1 + (self.momentum > 0) + self.centered)



class AdamW(Optimizer):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019), as
    Keras 3 and PyTorch's AdamW apply it; ``pynn.reference.adamw_step``
    (``decay_mask=None``) its twin::

        w = w - learning_rate * weight_decay * w      # every parameter
        m = beta_1 * m + (1 - beta_1) * g
        v = beta_2 * v + (1 - beta_2) * g * g
        m_hat = m / (1 - beta_1 ** t)
        v_hat = v / (1 - beta_2 ** t)
        w = w - learning_rate * m_hat / (sqrt(v_hat) + epsilon)

    The decay covers biases too, as Keras (nothing is excluded unless
    ``exclude_from_weight_decay`` is called) and PyTorch (every parameter
    given) do; SGD's and Adam's L2 ``weight_decay`` covers kernels only.
    Defaults are Keras's (weight_decay 0.004, epsilon 1e-7).

    Parameters
    ----------
    learning_rate : float > 0 or schedule
    weight_decay : float >= 0
    beta_1, beta_2 : float in [0, 1)
    epsilon : float > 0
    """

    code = ADAMW_CODE
    _CONFIG = ("learning_rate", "weight_decay", "beta_1", "beta_2", "epsilon")
    _KERNEL = ("beta_1", "beta_2", "epsilon", "weight_decay")
    weight_decay = _Setting(_nonnegative)
    beta_1 = _Setting(_unit_interval, below_one=True)
    beta_2 = _Setting(_unit_interval, below_one=True)
    epsilon = _Setting(_positive)

    def __init__(self, learning_rate: float | Callable[[int], float] = 0.001,
                 weight_decay: float = 0.004, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-7,
                 clipnorm: float | None = None, clipvalue: float | None = None,
                 global_clipnorm: float | None = None) -> None:
        super().__init__(clipnorm, clipvalue, global_clipnorm)
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon

    def state_size(self, n_params):
        return 2 * n_params              # m, then v



class Nadam(Optimizer):
    """Nadam in Keras 3's form (keras/src/optimizers/nadam.py; Dozat 2016),
    ``pynn.reference.nadam_step`` its twin, with ``t`` the 1-based step::

        u_t = beta_1 * (1 - 0.5 * 0.96 ** t)           # momentum cache
        u_next = beta_1 * (1 - 0.5 * 0.96 ** (t + 1))
        u_product = u_product * u_t                    # u_1 ... u_t
        m = beta_1 * m + (1 - beta_1) * g
        v = beta_2 * v + (1 - beta_2) * g * g
        m_hat = u_next * m / (1 - u_product * u_next) + (1 - u_t) * g / (1 - u_product)
        v_hat = v / (1 - beta_2 ** t)
        w = w - learning_rate * m_hat / (sqrt(v_hat) + epsilon)

    ``u_product`` (a double) is a function of the step count, which the
    model saves with the moments: the kernel recomputes it in the twin's
    order (see ``u_product``), so saving the count saves it exactly.

    Parameters
    ----------
    learning_rate : float > 0 or schedule
    beta_1, beta_2 : float in [0, 1)
    epsilon : float > 0
    """

    code = NADAM_CODE
    _CONFIG = ("learning_rate", "beta_1", "beta_2", "epsilon")
    _KERNEL = ("beta_1", "beta_2", "epsilon")
    beta_1 = _Setting(_unit_interval, below_one=True)
    beta_2 = _Setting(_unit_interval, below_one=True)
    epsilon = _Setting(_positive)

    def __init__(self, learning_rate: float | Callable[[int], float] = 0.001,
                 beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7,
                 clipnorm: float | None = None, clipvalue: float | None = None,
                 global_clipnorm: float | None = None) -> None:
        super().__init__(clipnorm, clipvalue, global_clipnorm)
        self.learning_rate = learning_rate
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon

    @property
    def u_product(self) -> float:
        """u_1 u_2 ... u_t after ``iterations`` = t updates (1 before any).
        Below 2**-60 the kernel stops multiplying: 1 - u_product and
        1 - u_product * u_next are then exactly 1 in double either way."""
        return _optim.nadam_u_product(self.beta_1, self.iterations)

    def state_size(self, n_params):
        return 2 * n_params              # m, then v



class Adagrad(Optimizer):
    """Adagrad in Keras 3's form (keras/src/optimizers/adagrad.py; Duchi et
    al. 2011), ``pynn.reference.adagrad_step`` its twin::

        accumulator = accumulator + g * g      # starts at initial_accumulator_value
        w = w - learning_rate * g / sqrt(accumulator + epsilon)

    Parameters
    ----------
    learning_rate : float > 0 or schedule
    initial_accumulator_value : float >= 0
    epsilon : float > 0
    """

    code = ADAGRAD_CODE
    _CONFIG = ("learning_rate", "initial_accumulator_value", "epsilon")
    _KERNEL = ("initial_accumulator_value", "epsilon")
    initial_accumulator_value = _Setting(_nonnegative)
    epsilon = _Setting(_positive)

    def __init__(self, learning_rate: float | Callable[[int], float] = 0.001,
                 initial_accumulator_value: float = 0.1, epsilon: float = 1e-7,
                 clipnorm: float | None = None, clipvalue: float | None = None,
                 global_clipnorm: float | None = None) -> None:
        super().__init__(clipnorm, clipvalue, global_clipnorm)
        self.learning_rate = learning_rate
        self.initial_accumulator_value = initial_accumulator_value
        self.epsilon = epsilon

    def state_size(self, n_params):
        return n_params

    def build(self, n_params: int, dtype: type) -> None:
        size = self.state_size(n_params)
        if self.state is None or self.state.shape[0] != size or self.state.dtype != dtype:
            self.state = np.full(size, self.initial_accumulator_value, dtype=dtype)
            self.iterations = 0



_CLASSES = {"sgd": SGD, "adam": Adam, "rmsprop": RMSprop, "adamw": AdamW,
            "nadam": Nadam, "adagrad": Adagrad}
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
