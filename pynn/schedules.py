"""Learning-rate schedules: the learning rate as a function of the step count.

A schedule is passed as an optimizer's ``learning_rate`` (as in Keras) and is
called with ``optimizer.iterations``, the number of updates applied so far:
the first update uses ``schedule(0)``.  Steps are batches, not epochs: for a
rate that changes once per epoch, take ``decay_steps`` = batches per epoch.

Each schedule is a small object with ``get_config()``, so a model using it
can be saved and loaded (pynn.io); any other callable taking the step count
works for training but cannot be saved.

Settings are bounded so that no step count overflows a float: the rate of a
pynn schedule never grows (``decay_rate`` and ``drop`` at most 1), and
``power_t`` is at most ``MAX_POWER_T``, under which ``t ** power_t`` stays
finite for every 64-bit step count.  A rate that decays below the smallest
float is reported as a ValueError by the optimizer at the step it reaches 0.
"""
from __future__ import annotations

import math

from ._validation import check_bool, check_nonneg_int, check_positive_int, check_real

# (2**63) ** 16 = 2**1008 < 2**1024, the largest float64
MAX_POWER_T = 16.0


class LearningRateSchedule:
    """Base class: ``schedule(step) -> float``, ``get_config() -> dict``."""

    def __call__(self, step: int) -> float:
        raise NotImplementedError

    def get_config(self):
        raise NotImplementedError

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class ExponentialDecay(LearningRateSchedule):
    """``lr = initial_learning_rate * decay_rate ** (step / decay_steps)``.

    With ``staircase=True`` the exponent is ``floor(step / decay_steps)``.

    Parameters
    ----------
    initial_learning_rate : float > 0
    decay_steps : int > 0
    decay_rate : float in (0, 1]
        A rate above 1 would grow without bound and overflow a float after
        enough steps; it is refused.
    staircase : bool
    """

    def __init__(self, initial_learning_rate: float, decay_steps: int, decay_rate: float,
                 staircase: bool = False) -> None:
        self.initial_learning_rate = check_real(
            initial_learning_rate, "initial_learning_rate", low=0, low_open=True)
        self.decay_steps = check_positive_int(decay_steps, "decay_steps")
        self.decay_rate = check_real(decay_rate, "decay_rate", low=0, high=1, low_open=True)
        self.staircase = check_bool(staircase, "staircase")

    def __call__(self, step):
        exponent = step / self.decay_steps
        if self.staircase:
            exponent = math.floor(exponent)
        return self.initial_learning_rate * self.decay_rate ** exponent

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "decay_rate": self.decay_rate,
                "staircase": self.staircase}


class StepDecay(LearningRateSchedule):
    """Drop the rate by a factor every ``step_size`` steps:
    ``lr = initial_learning_rate * drop ** floor(step / step_size)``.

    Parameters
    ----------
    initial_learning_rate : float > 0
    step_size : int > 0
    drop : float in (0, 1]
    """

    def __init__(self, initial_learning_rate: float, step_size: int,
                 drop: float = 0.5) -> None:
        self.initial_learning_rate = check_real(
            initial_learning_rate, "initial_learning_rate", low=0, low_open=True)
        self.step_size = check_positive_int(step_size, "step_size")
        self.drop = check_real(drop, "drop", low=0, high=1, low_open=True)

    def __call__(self, step):
        return self.initial_learning_rate * self.drop ** (step // self.step_size)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "step_size": self.step_size, "drop": self.drop}


class InverseScaling(LearningRateSchedule):
    """scikit-learn's ``invscaling``: ``lr = initial_learning_rate / t ** power_t``
    with ``t = step + 1`` the 1-based number of the update.

    Parameters
    ----------
    initial_learning_rate : float > 0
    power_t : float in [0, MAX_POWER_T]
    """

    def __init__(self, initial_learning_rate: float, power_t: float = 0.5) -> None:
        self.initial_learning_rate = check_real(
            initial_learning_rate, "initial_learning_rate", low=0, low_open=True)
        self.power_t = check_real(power_t, "power_t", low=0, high=MAX_POWER_T)

    def __call__(self, step):
        return self.initial_learning_rate / (step + 1) ** self.power_t

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "power_t": self.power_t}


class CosineDecay(LearningRateSchedule):
    """Keras 3's cosine decay (Loshchilov & Hutter, SGDR), with its optional
    linear warmup.

    Without warmup (``warmup_target`` None)::

        s = min(step, decay_steps)
        lr = initial_learning_rate * ((1 - alpha) * 0.5 * (1 + cos(pi * s / decay_steps)) + alpha)

    With warmup, the rate first rises linearly from ``initial_learning_rate``
    to ``warmup_target`` over ``warmup_steps``, then decays from
    ``warmup_target`` as above::

        s = min(step, warmup_steps + decay_steps)
        if s < warmup_steps:
            lr = initial_learning_rate + (warmup_target - initial_learning_rate) * s / warmup_steps
        else:
            lr = warmup_target * ((1 - alpha) * 0.5 * (1 + cos(pi * (s - warmup_steps) / decay_steps)) + alpha)

    Parameters
    ----------
    initial_learning_rate : float >= 0
    decay_steps : int > 0
    alpha : float in [0, 1]
        The final rate as a fraction of the rate decayed from.
    warmup_target : float > 0 or None
    warmup_steps : int >= 0

    The optimizers refuse a rate of 0 (``alpha=0`` after ``decay_steps``
    steps, or ``initial_learning_rate=0`` at step 0 of a warmup): give
    ``alpha`` > 0, and start a warmup above 0.
    """

    def __init__(self, initial_learning_rate: float, decay_steps: int, alpha: float = 0.0,
                 warmup_target: float | None = None, warmup_steps: int = 0) -> None:
        self.initial_learning_rate = check_real(initial_learning_rate,
                                                "initial_learning_rate", low=0)
        self.decay_steps = check_positive_int(decay_steps, "decay_steps")
        self.alpha = check_real(alpha, "alpha", low=0, high=1)
        if warmup_target is not None:
            warmup_target = check_real(warmup_target, "warmup_target", low=0, low_open=True)
        self.warmup_target = warmup_target
        self.warmup_steps = check_nonneg_int(warmup_steps, "warmup_steps")

    def _decayed(self, step, decay_from):
        cosine = 0.5 * (1.0 + math.cos(math.pi * step / self.decay_steps))
        return decay_from * ((1.0 - self.alpha) * cosine + self.alpha)

    def __call__(self, step):
        if self.warmup_target is None:
            return self._decayed(min(step, self.decay_steps), self.initial_learning_rate)
        step = min(step, self.warmup_steps + self.decay_steps)
        if step < self.warmup_steps:
            return _linear(self.initial_learning_rate, self.warmup_target,
                           step / self.warmup_steps)
        return self._decayed(step - self.warmup_steps, self.warmup_target)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "alpha": self.alpha,
                "warmup_target": self.warmup_target, "warmup_steps": self.warmup_steps}


def _linear(start, end, fraction):
    # Keras's form of the warmup: start + (end - start) * fraction
    return start + (end - start) * fraction


class LinearWarmup(LearningRateSchedule):
    """A linear warmup before another rate: from ``initial_learning_rate``
    up to where ``after`` starts, over ``warmup_steps`` steps, then
    ``after`` shifted by them::

        if step < warmup_steps:
            lr = initial_learning_rate + (after(0) - initial_learning_rate) * step / warmup_steps
        else:
            lr = after(step - warmup_steps)

    Keras has warmup only inside ``CosineDecay``; ``LinearWarmup(CosineDecay(
    target, n), w, initial)`` is ``CosineDecay(initial, n, warmup_target=target,
    warmup_steps=w)``, and this puts a warmup before any other schedule or
    constant rate.

    Parameters
    ----------
    after : float > 0 or LearningRateSchedule
    warmup_steps : int > 0
    initial_learning_rate : float > 0
        The rate of the first step (the optimizers refuse 0).
    """

    def __init__(self, after: float | LearningRateSchedule, warmup_steps: int,
                 initial_learning_rate: float) -> None:
        if isinstance(after, dict):          # as get_config wrote it
            after = deserialize(after)
        if not isinstance(after, LearningRateSchedule):
            after = check_real(after, "after", low=0, low_open=True)
        self.after = after
        self.warmup_steps = check_positive_int(warmup_steps, "warmup_steps")
        self.initial_learning_rate = check_real(
            initial_learning_rate, "initial_learning_rate", low=0, low_open=True)

    def _after(self, step):
        return self.after(step) if callable(self.after) else self.after

    def __call__(self, step):
        if step < self.warmup_steps:
            return _linear(self.initial_learning_rate, self._after(0),
                           step / self.warmup_steps)
        return self._after(step - self.warmup_steps)

    def get_config(self):
        after = serialize(self.after) if callable(self.after) else self.after
        return {"after": after, "warmup_steps": self.warmup_steps,
                "initial_learning_rate": self.initial_learning_rate}


_CLASSES = {cls.__name__: cls for cls in (ExponentialDecay, StepDecay, InverseScaling,
                                          CosineDecay, LinearWarmup)}


def serialize(schedule: LearningRateSchedule) -> dict:
    """``{"class_name": ..., "config": ...}`` for a pynn schedule."""
    if not isinstance(schedule, LearningRateSchedule):
        raise ValueError(
            f"only pynn learning-rate schedules can be saved, got {schedule!r}; "
            f"use a constant or one of {sorted(_CLASSES)}")
    return {"class_name": type(schedule).__name__, "config": schedule.get_config()}


def deserialize(config: dict) -> LearningRateSchedule:
    """The schedule described by ``serialize``'s output."""
    from ._registry import from_config
    return from_config(config, _CLASSES, "learning-rate schedule")
