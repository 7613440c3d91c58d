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

from ._validation import check_positive_int, check_real

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
        if not isinstance(staircase, bool):
            raise TypeError(f"staircase must be True or False, got {staircase!r}")
        self.staircase = staircase

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


_CLASSES = {cls.__name__: cls for cls in (ExponentialDecay, StepDecay, InverseScaling)}


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
