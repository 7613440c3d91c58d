"""Losses: a name, a kernel code, and how targets are checked.

The value and gradient are computed in one compiled pass
(csrc/pynn/kernels/loss_kernels.pxd); pynn/reference.py has the same maths in NumPy.

A custom loss subclasses :class:`Loss` with ``call`` (the loss of each
sample) and ``gradient`` (its derivative), since pynn has no automatic
differentiation; a model compiled with one trains through NumPy, one batch
at a time (``pynn.custom``), slower than the compiled network.
"""
from __future__ import annotations

import numpy as np
import numpy.typing as npt

from . import _codes, _losses
from ._registry import from_config, from_name
from ._validation import as_float_array, check_bool, check_finite, check_real

# the kernels' codes (csrc/pynn/kernels/codes.pxd)
(MSE, BCE, BCE_LOGITS, CCE, CCE_LOGITS, SPARSE_CCE, SPARSE_CCE_LOGITS,
 MAE, HUBER, POISSON, POISSON_LOG) = (
    int(_codes.Loss[k]) for k in ("MSE", "BCE", "BCE_LOGITS", "CCE", "CCE_LOGITS",
                                  "SPARSE_CCE", "SPARSE_CCE_LOGITS", "MAE", "HUBER",
                                  "POISSON", "POISSON_LOG"))


class Loss:
    """Base class.  pynn's losses set ``name`` and ``code``.

    A custom loss sets neither, and defines two methods::

        class MeanSquaredLog(pynn.losses.Loss):
            def call(self, y_true, y_pred):
                d = np.log1p(y_pred) - np.log1p(y_true)
                return np.mean(d * d, axis=1)
            def gradient(self, y_true, y_pred):
                d = np.log1p(y_pred) - np.log1p(y_true)
                return 2 * d / (1 + y_pred) / y_pred.shape[1]

    ``call(y_true, y_pred)`` returns the loss of each sample, shape (n,);
    ``gradient(y_true, y_pred)`` the derivative of sample i's loss with
    respect to its own row ``y_pred[i]``, shape (n, m).  The batch loss is
    then Keras's ``sum_over_batch_size``, ``sum_i w_i l_i / n`` (``w`` the
    sample weights, 1 without), and pynn derives its gradient from those
    two.  Both get the targets as ``prepare_targets`` returns them (n, m)
    and the output of the last layer (n, m), read-only arrays of the
    model's dtype.  ``name`` defaults to the class name.

    A loss may *fuse* with the output layer's activation (softmax with a
    categorical cross-entropy, say): the network then hands it logits and the
    loss applies the activation itself, the numerically stable way.
    ``code`` is the kernel for outputs taken as they are (what ``__call__``
    uses); a model asks ``kernel_code(activation)`` instead.
    """

    name = None
    code = None
    # True when any finite real target is valid, so that targets already of
    # the right type, shape and layout need no check in Python at all (the
    # compiled step checks them for NaN and inf).
    accepts_any_real_targets = False
    # the loss kernel's one setting (Huber's delta); 0 for the losses without one
    kernel_param = 0.0

    def fuses_with(self, activation):
        """True when this loss computes ``activation`` itself from logits."""
        return False

    def output_activation(self, activation):
        """The activation this loss applies to the network's output, if any.

        None when the loss takes the output as it is (MSE always does); the
        cross-entropies return "sigmoid" or "softmax" when they are handed
        logits.  Metrics read the output the same way.
        """
        return None

    def target_width(self, n_outputs):
        """Columns of the targets array the kernel reads."""
        return n_outputs

    def kernel_code(self, activation):
        """The kernel code for a network whose last activation is ``activation``."""
        return self.code

    def prepare_targets(self, y: npt.ArrayLike, n_outputs: int, dtype: npt.DTypeLike,
                        argname: str = "y", finite: bool = True) -> np.ndarray:
        """Check targets and return them as a C-contiguous (n, n_outputs) array.

        With ``finite=False`` the check for NaN and inf is left to the caller
        (the compiled train step makes it without a temporary array).
        """
        y = as_float_array(y, dtype, argname)
        if y.ndim == 1 and n_outputs == 1:
            y = y.reshape(-1, 1)
        if y.ndim != 2 or y.shape[1] != n_outputs:
            raise ValueError(
                f"{argname} must have shape (n_samples, {n_outputs}) to match the "
                f"model's {n_outputs} outputs, got shape {y.shape}")
        if finite:
            check_finite(y, argname)
        return y

    def call(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        """A custom loss's loss of each sample, shape (n,) (see the class doc)."""
        raise NotImplementedError(f"{type(self).__name__} must define call(y_true, y_pred)")

    def gradient(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        """A custom loss's d(loss of sample i)/d(y_pred[i]), shape (n, m)."""
        raise NotImplementedError(
            f"{type(self).__name__} must define gradient(y_true, y_pred)")

    def __call__(self, y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> float:
        """Mean loss of predictions ``y_pred`` (n, m) against ``y_true``."""
        y_pred = as_float_array(y_pred, None, "y_pred")
        if y_pred.ndim == 1:
            y_pred = y_pred.reshape(-1, 1)
        if y_pred.ndim != 2 or y_pred.size == 0:
            raise ValueError(f"y_pred must be a non-empty 1-D or 2-D array, "
                             f"got shape {y_pred.shape}")
        check_finite(y_pred, "y_pred")
        y_true = self.prepare_targets(y_true, y_pred.shape[1], y_pred.dtype, "y_true")
        if y_true.shape[0] != y_pred.shape[0]:
            raise ValueError(
                f"y_true and y_pred have different numbers of samples: "
                f"{y_true.shape[0]} and {y_pred.shape[0]}")
        if is_custom(self):
            return float(np.mean(self.call(y_true, y_pred)))
        grad = np.empty_like(y_pred)
        return _losses.loss_value_grad(self.code, y_pred, y_true, grad, None,
                                       self.kernel_param)

    def get_config(self):
        return {}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class MeanSquaredError(Loss):
    """Mean of (y_pred - y_true)**2 over every element, as Keras and PyTorch."""

    name = "mse"
    code = MSE
    accepts_any_real_targets = True


class MeanAbsoluteError(Loss):
    """Mean of |y_pred - y_true| over every element, as Keras and PyTorch.

    Its gradient is sign(y_pred - y_true) / size, 0 where they are equal.
    """

    name = "mae"
    code = MAE
    accepts_any_real_targets = True


class Huber(Loss):
    """Keras's Huber loss (PyTorch's HuberLoss), the mean over every element.

    With ``d = y_pred - y_true``: ``0.5 * d**2`` where ``|d| <= delta``, and
    ``delta * |d| - 0.5 * delta**2`` beyond; its gradient is
    ``clip(d, -delta, delta) / size``.

    Parameters
    ----------
    delta : float, default 1.0
        Where the quadratic part turns linear; finite and > 0.
    """

    name = "huber"
    code = HUBER
    accepts_any_real_targets = True

    def __init__(self, delta: float = 1.0) -> None:
        self._delta = check_real(delta, "delta", low=0, low_open=True)

    @property
    def delta(self):
        # read-only: a model hands delta to its compiled kernels at compile
        return self._delta

    @property
    def kernel_param(self):
        return self._delta

    def get_config(self):
        return {"delta": self.delta}


class _NonNegativeTargets(Loss):
    # the Poisson losses: a count or a rate, never negative

    def prepare_targets(self, y: npt.ArrayLike, n_outputs: int, dtype: npt.DTypeLike,
                        argname: str = "y", finite: bool = True) -> np.ndarray:
        y = super().prepare_targets(y, n_outputs, dtype, argname, finite)
        _refuse_first(y, y < 0, lambda value, idx: (
            f"{argname} holds {value!r} at index {idx}: {self.name} targets must be "
            f"non-negative (counts or rates)"))
        return y


class Poisson(_NonNegativeTargets):
    """Keras's Poisson loss, the mean over every element of
    ``y_pred - y_true * log(y_pred + 1e-7)``, from predictions.

    The predictions should be non-negative (the output of softplus, relu or
    exp); the 1e-7 (Keras's epsilon, for every dtype) keeps the log finite at
    0, and is the only guard, as in Keras: a prediction below -1e-7 makes the
    loss NaN, and training refuses that step.  Targets must be >= 0.
    """

    name = "poisson"
    code = POISSON


class HalfPoissonDeviance(_NonNegativeTargets):
    """scikit-learn's half Poisson deviance, from the network's raw output.

    The raw output ``r`` is the log of the predicted mean ``mu = exp(r)``
    (scikit-learn's log link, the exp output of ``MLPRegressor(loss="poisson")``),
    and the loss is the mean over every element of
    ``y log(y / mu) - y + mu = exp(r) - y r + y log y - y`` (``y log y = 0`` at
    ``y = 0``), with gradient ``(exp(r) - y) / size``.  The exp is fused into
    the loss: ``log(mu)`` is never taken, so the loss is finite wherever
    ``exp(r)`` is in double (r below about 709.78, also for float32 models),
    and +inf beyond, never NaN.  The model's ``predict`` returns ``r``; the
    mean is ``exp(r)``.  Targets must be >= 0.
    """

    name = "half_poisson_deviance"
    code = POISSON_LOG


def _refuse_first(y, bad, describe):
    # ValueError naming the first entry flagged by the boolean array ``bad``:
    # ``describe(value, index)`` gives the message
    if bad.any():
        idx = np.unravel_index(int(np.argmax(bad)), y.shape)
        idx = idx[0] if len(idx) == 1 else tuple(int(i) for i in idx)
        raise ValueError(describe(float(y[idx]), idx))


class _CrossEntropy(Loss):
    """Shared by the cross-entropies: ``from_logits`` and the fusing rule.

    The network's output reaches the loss as follows (``activation`` is
    the last layer's):

    - ``activation`` is the one the loss implies (sigmoid / softmax) and
      ``from_logits=False``: *fused*.  The last layer runs linear and the
      loss kernel applies the activation to the logits, in one stable pass;
      ``predict`` still returns probabilities.
    - ``activation`` is linear and ``from_logits=True``: the same fused
      kernel on the same logits.
    - another activation and ``from_logits=True``: as in Keras, the
      activation's output is taken as logits (a sigmoid output, say, goes
      through a second sigmoid inside the loss).  Rarely what is wanted, but
      well defined and differentiable.
    - another activation and ``from_logits=False``: the output is taken as
      probabilities, and the log is clipped at the storage type's machine
      epsilon as a last resort (see csrc/pynn/kernels/loss_kernels.pxd).
    """

    activation = None          # the output activation this loss implies
    probabilities_code = None  # the kernel reading probabilities
    logits_code = None         # the fused kernel, reading logits

    def __init__(self, from_logits: bool = False) -> None:
        self.from_logits = check_bool(from_logits, "from_logits")

    def fuses_with(self, activation):
        if self.from_logits:
            return activation == "linear"
        return activation == self.activation

    def output_activation(self, activation):
        if self.from_logits or self.fuses_with(activation):
            return self.activation
        return None

    def kernel_code(self, activation):
        return self.logits_code if self.output_activation(activation) else self.code

    @property
    def code(self):
        # Loss.__call__ path: y_pred is logits exactly when from_logits.
        return self.logits_code if self.from_logits else self.probabilities_code

    def get_config(self):
        return {"from_logits": self.from_logits}


class BinaryCrossentropy(_CrossEntropy):
    """Binary cross-entropy, the mean over every element (as Keras).

    ``l = -(z log p + (1 - z) log(1 - p))`` with ``p = sigmoid(x)``; from
    logits it is computed as ``max(x, 0) - x z + log1p(exp(-|x|))``, finite
    and exact for any x.  Targets z lie in [0, 1]; the output may have any
    number of columns (independent binary labels).

    Parameters
    ----------
    from_logits : bool
        False: the network's output is a probability (or a sigmoid layer,
        which is then fused).  True: it is a logit.
    """

    name = "binary_crossentropy"
    activation = "sigmoid"
    probabilities_code = BCE
    logits_code = BCE_LOGITS

    def prepare_targets(self, y: npt.ArrayLike, n_outputs: int, dtype: npt.DTypeLike,
                        argname: str = "y", finite: bool = True) -> np.ndarray:
        y = super().prepare_targets(y, n_outputs, dtype, argname, finite)
        _refuse_first(y, (y < 0) | (y > 1), lambda value, idx: (
            f"{argname} holds {value!r} at index {idx}: binary_crossentropy "
            f"targets must lie in [0, 1]"))
        return y


class CategoricalCrossentropy(_CrossEntropy):
    """Categorical cross-entropy: summed over classes, averaged over samples.

    ``l = -sum_k y_k log p_k`` with ``p = softmax(x)``; from logits it is
    ``sum_k y_k (logsumexp(x) - x_k)``, finite and exact for any x.
    Targets are one-hot rows or probability rows (n, n_classes),
    non-negative; rows need not sum to 1 (label smoothing, weights): the
    gradient ``softmax(x) sum_k y_k - y`` is the exact one either way.
    From probabilities, ``p`` is used as given (not renormalised).

    Parameters
    ----------
    from_logits : bool
    """

    name = "categorical_crossentropy"
    activation = "softmax"
    probabilities_code = CCE
    logits_code = CCE_LOGITS

    def prepare_targets(self, y: npt.ArrayLike, n_outputs: int, dtype: npt.DTypeLike,
                        argname: str = "y", finite: bool = True) -> np.ndarray:
        arr = as_float_array(y, dtype, argname)
        if arr.ndim == 1 and n_outputs > 1:
            raise ValueError(
                f"{argname} must be one-hot rows of shape (n_samples, {n_outputs}), "
                f"got a 1-D array of shape {arr.shape}; for integer class labels "
                f"use sparse_categorical_crossentropy")
        y = super().prepare_targets(arr, n_outputs, dtype, argname, finite)
        _refuse_first(y, y < 0, lambda value, idx: (
            f"{argname} holds {value!r} at index {idx}: categorical_crossentropy "
            f"targets must be non-negative (one-hot or probabilities)"))
        return y


class SparseCategoricalCrossentropy(_CrossEntropy):
    """Categorical cross-entropy with integer class labels.

    ``l = -log p_label`` with ``p = softmax(x)``, averaged over samples;
    from logits ``logsumexp(x) - x_label``.  Targets are integer labels in
    [0, n_classes), as a 1-D array or an (n, 1) column, of any numeric type;
    they are stored as an (n, 1) array of the model's float type for the
    kernel.  float32 holds every integer up to 2**24 exactly: a float32
    model of more classes than that refuses a label it would round.

    Parameters
    ----------
    from_logits : bool
    """

    name = "sparse_categorical_crossentropy"
    activation = "softmax"
    probabilities_code = SPARSE_CCE
    logits_code = SPARSE_CCE_LOGITS

    def target_width(self, n_outputs):
        return 1

    def prepare_targets(self, y: npt.ArrayLike, n_outputs: int, dtype: npt.DTypeLike,
                        argname: str = "y", finite: bool = True) -> np.ndarray:
        # labels are always checked finite: a NaN is not an integer
        labels = as_float_array(y, np.float64, argname)
        if labels.ndim == 2 and labels.shape[1] == 1:
            labels = labels[:, 0]
        if labels.ndim != 1:
            raise ValueError(
                f"{argname} must hold integer class labels, as a 1-D array or an "
                f"(n_samples, 1) column, got shape {np.shape(y)}")
        _refuse_first(labels, ~np.isfinite(labels) | (labels != np.floor(labels)),
                      lambda value, idx: (f"{argname} holds {value!r} at index {idx}: "
                                          f"sparse categorical labels must be integers"))
        _refuse_first(labels, (labels < 0) | (labels >= n_outputs), lambda value, idx: (
            f"{argname} holds label {value:g} at index {idx}: labels must lie "
            f"in [0, {n_outputs}) for {n_outputs} classes"))
        out = np.ascontiguousarray(labels.reshape(-1, 1), dtype=dtype)
        # The kernels read labels in the model's dtype: float32 holds every
        # integer up to 2**24 exactly, not beyond (2**24 + 1 would become
        # 2**24, and train the wrong class).  Only a model with more classes
        # than that can meet such a label; it is refused rather than rounded.
        exact = 2.0 ** (np.finfo(dtype).nmant + 1)
        if n_outputs > exact:
            _refuse_first(labels, out[:, 0] != labels, lambda value, idx: (
                f"{argname} holds label {value:.0f} at index {idx}, which "
                f"{np.dtype(dtype).name} cannot hold exactly (integers above "
                f"{exact:.0f} are rounded): use a float64 model for so many classes"))
        return out


_CLASSES = {
    "mse": MeanSquaredError,
    "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError,
    "mean_absolute_error": MeanAbsoluteError,
    "huber": Huber,
    "poisson": Poisson,
    "half_poisson_deviance": HalfPoissonDeviance,
    "binary_crossentropy": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
}


def names() -> list[str]:
    """The valid loss names."""
    return sorted(_CLASSES)


def is_custom(loss: Loss) -> bool:
    """True for a custom loss (no compiled kernel: ``call`` and ``gradient``)."""
    return loss.code is None


class _FunctionLoss(Loss):
    # a function with a ``gradient`` attribute, or an object with call and
    # gradient that is not a Loss: the same protocol
    def __init__(self, call, gradient, name):
        self._call, self._gradient, self.name = call, gradient, name

    def call(self, y_true, y_pred):
        return self._call(y_true, y_pred)

    def gradient(self, y_true, y_pred):
        return self._gradient(y_true, y_pred)

    def __repr__(self):
        return f"custom loss {self.name!r}"


def _custom(identifier):
    # A custom loss from a Loss subclass's instance or any object or
    # function that brings its gradient; a TypeError that says what to
    # give otherwise.
    what = getattr(identifier, "__name__", None) or type(identifier).__name__
    if isinstance(identifier, Loss):
        if type(identifier).call is Loss.call or type(identifier).gradient is Loss.gradient:
            raise TypeError(f"the custom loss {what!r} must define both call(y_true, "
                            f"y_pred) and gradient(y_true, y_pred) (see pynn.losses.Loss)")
        if identifier.name is None:
            identifier.name = what
        return identifier
    gradient = getattr(identifier, "gradient", None)
    call = getattr(identifier, "call", None)
    call = call if callable(call) else identifier
    if callable(gradient) and callable(call):
        return _FunctionLoss(call, gradient, getattr(identifier, "name", None) or what)
    raise TypeError(
        f"loss {what!r} has no gradient: pynn has no automatic differentiation, so a "
        f"custom loss must bring its own.  Subclass pynn.losses.Loss with "
        f"call(y_true, y_pred) -> the loss of each sample (n,) and gradient(y_true, "
        f"y_pred) -> its derivative with respect to y_pred (n, m), or set "
        f"{what}.gradient to such a function; or use one of {names()}")


def get(identifier: str | dict | Loss | type[Loss]) -> Loss:
    """Return a Loss from a name, a Loss instance or a custom loss (a
    callable or object with a ``gradient``, see :class:`Loss`)."""
    if isinstance(identifier, Loss):
        return _custom(identifier) if is_custom(identifier) else identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return get(identifier())
    if isinstance(identifier, str):
        return from_name(identifier, _CLASSES, "loss")
    if callable(identifier) or callable(getattr(identifier, "call", None)):
        return _custom(identifier)
    raise TypeError(f"loss must be a name or a pynn Loss, got {identifier!r} "
                    f"(type {type(identifier).__name__})")


def serialize(loss: Loss) -> dict:
    """``{"class_name": ..., "config": ...}`` for a Loss."""
    return {"class_name": type(loss).__name__, "config": loss.get_config()}


def deserialize(config: dict) -> Loss:
    """The Loss described by ``serialize``'s output (pynn classes only)."""
    classes = {cls.__name__: cls for cls in set(_CLASSES.values())}
    return from_config(config, classes, "loss")
