"""Weight regularizers: Keras 3's L1, L2 and L1L2 penalties on a layer's
kernel or bias (``Dense(kernel_regularizer=..., bias_regularizer=...)``).

A regularizer adds ``l1 * sum(|w|) + l2 * sum(w ** 2)`` of its array to the
loss that fit, train_on_batch and evaluate report (after the mean over the
batch, as Keras adds a layer's regularization losses), and its gradient
``l1 * sign(w) + 2 * l2 * w`` to the array's gradient, inside the compiled
step: the gradient pass that follows the backward pass reads each
regularized array once for both (csrc/pynn/kernels/optim_kernels.pxd ``grad_pass``).
The twins are pynn/reference.py's ``l1_regularizer``, ``l2_regularizer``
and ``l1_l2_regularizer``.

A frozen layer's arrays add nothing (Keras 3 sums the regularization of
trainable weights only).
"""
from __future__ import annotations

import numpy as np

from ._registry import from_config, from_name
from ._validation import check_real


def _factor(value, argname):
    return check_real(value, argname, low=0)


class Regularizer:
    """Base class: a penalty ``l1 * sum |w| + l2 * sum w^2`` (``factors()``)."""

    def factors(self) -> tuple[float, float]:
        """``(l1, l2)``: the kernels' coefficients."""
        raise NotImplementedError

    def __call__(self, w) -> float:
        """The penalty on array ``w`` (in double)."""
        l1, l2 = self.factors()
        w = np.asarray(w, dtype=np.float64)
        return float(l1 * np.sum(np.abs(w)) + l2 * np.sum(w * w))

    def gradient(self, w) -> np.ndarray:
        """The penalty's gradient ``l1 * sign(w) + 2 * l2 * w``, in w's dtype."""
        l1, l2 = self.factors()
        w = np.asarray(w)
        dt = w.dtype.type
        return dt(l1) * np.sign(w) + dt(2 * l2) * w

    def get_config(self) -> dict:
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: dict) -> Regularizer:
        return cls(**config)

    def __eq__(self, other):
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self):
        return hash((type(self), tuple(sorted(self.get_config().items()))))

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class L1(Regularizer):
    """``l1 * sum(|w|)``; Keras 3's default ``l1=0.01``."""

    def __init__(self, l1: float = 0.01) -> None:
        self.l1 = _factor(l1, "l1")

    def factors(self):
        return self.l1, 0.0

    def get_config(self):
        return {"l1": self.l1}


class L2(Regularizer):
    """``l2 * sum(w ** 2)`` (no 1/2: the gradient is ``2 * l2 * w``), as
    Keras; Keras 3's default ``l2=0.01``."""

    def __init__(self, l2: float = 0.01) -> None:
        self.l2 = _factor(l2, "l2")

    def factors(self):
        return 0.0, self.l2

    def get_config(self):
        return {"l2": self.l2}


class L1L2(Regularizer):
    """``l1 * sum(|w|) + l2 * sum(w ** 2)``; Keras 3's defaults ``l1=0.0,
    l2=0.0`` (the name "l1_l2" gives it with those defaults, as Keras 3's
    ``regularizers.get("l1_l2")``)."""

    def __init__(self, l1: float = 0.0, l2: float = 0.0) -> None:
        self.l1 = _factor(l1, "l1")
        self.l2 = _factor(l2, "l2")

    def factors(self):
        return self.l1, self.l2

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


# Keras's lower-case names for the classes
l1, l2, l1_l2 = L1, L2, L1L2

_CLASSES = {"l1": L1, "l2": L2, "l1_l2": L1L2, "l1l2": L1L2}
_BY_CLASS_NAME = {cls.__name__: cls for cls in (L1, L2, L1L2)}


def names() -> list[str]:
    return ["l1", "l1_l2", "l2"]


def serialize(regularizer: Regularizer | None) -> dict | None:
    """``{"class_name": ..., "config": ...}``, or None for None."""
    if regularizer is None:
        return None
    return {"class_name": type(regularizer).__name__, "config": regularizer.get_config()}


def deserialize(config: dict) -> Regularizer:
    return from_config(config, _BY_CLASS_NAME, "regularizer")


def get(identifier, argname: str = "regularizer") -> Regularizer | None:
    """None, a name ("l1", "l2", "l1_l2": Keras's defaults), a
    ``serialize`` dict, or a Regularizer (returned as is)."""
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        return from_name(identifier, _CLASSES, argname)
    raise TypeError(f"{argname} must be None, a name ({', '.join(names())}), a dict or "
                    f"a pynn regularizer, got {identifier!r} "
                    f"(type {type(identifier).__name__})")
