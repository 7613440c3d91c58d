"""``check_gradients``: backpropagation against central finite differences."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from ._validation import check_real
from .core import Model
from .layers import unbuilt_copy
from .summary import layer_names


def central_differences(loss: Callable[[], float], array: np.ndarray,
                        epsilon: float | Callable[[float], float] = 1e-5) -> np.ndarray:
    """The derivatives of ``loss()`` with respect to each entry of ``array``.

    Each entry ``w`` is moved in place to ``w + epsilon`` and ``w - epsilon``
    (then put back), and its derivative taken as
    ``(loss(w + epsilon) - loss(w - epsilon)) / (2 * epsilon)``.

    Parameters
    ----------
    loss : callable with no arguments, returning a float
        Reads ``array`` (a view into the buffers it computes from).
    array : writeable array of any shape
    epsilon : float, or callable of the entry's value giving its step

    Returns
    -------
    float64 array of ``array``'s shape
    """
    numeric = np.empty(array.shape)
    for idx in np.ndindex(array.shape):
        saved = array[idx]
        step = epsilon(saved) if callable(epsilon) else epsilon
        array[idx] = saved + step
        up = loss()
        array[idx] = saved - step
        down = loss()
        array[idx] = saved
        numeric[idx] = (up - down) / (2 * step)
    return numeric


def check_gradients(model: Model, x: npt.ArrayLike, y: npt.ArrayLike,
                    epsilon: float = 1e-5, atol: float = 1e-6) -> dict[str, float]:
    """Compare the model's backpropagated gradients with finite differences.

    Works on a float64 copy of the model (the model itself is untouched):
    for every parameter ``w``, the numerical derivative
    ``(L(w + epsilon) - L(w - epsilon)) / (2 * epsilon)`` of the loss on
    (x, y) is compared with the gradient backpropagation gives.  That costs
    two forward passes per parameter: use a small batch and model.

    Parameters
    ----------
    model : Sequential
        Compiled (its loss is the one checked).
    x : (n_samples, n_features) array
    y : (n_samples, n_outputs) array
    epsilon : float > 0
        The finite-difference step.
    atol : float >= 0
        The floor of the scale: an array whose gradient has a norm below
        ``atol`` is compared absolutely, so that the rounding noise of the
        difference quotient (about 1e-16 * loss / epsilon per entry) does
        not pass for a relative error where the true gradient is 0.

    Returns
    -------
    dict
        ``"<layer name>/W"`` and ``"<layer name>/b"`` (``/gamma`` and
        ``/beta`` for a normalisation) -> the norm-wise relative error of
        that array, in ``get_weights()`` order::

            ||backprop - numeric|| / max(||backprop||, ||numeric||, atol)

        (Euclidean norms over the whole array).  An entry-wise maximum
        would be ruled by the entries whose gradient is tiny, where the
        difference quotient is mostly noise; the norm weighs each entry by
        its size.  Correct backprop gives values below 1e-6 with smooth
        activations (typically 1e-10 to 1e-8); a wrong gradient, 1e-3 and
        above (an error of 1% in one array gives about 1e-2).  Treat a
        value above 1e-5 as a failure.  relu's kink can give a correct
        gradient a large error when an input lies within ``epsilon`` of 0.
    """
    if not isinstance(model, Model):
        raise TypeError(f"model must be a pynn.Sequential, got {model!r}")
    model.check_compiled("check_gradients")
    epsilon = check_real(epsilon, "epsilon", low=0, low_open=True)
    atol = check_real(atol, "atol", low=0)
    x = model.check_x(x)                        # builds the model if needed
    twin = type(model)([unbuilt_copy(layer) for layer in model.layers], dtype="float64")
    twin.build(model.input_dim)
    twin.params[...] = model.params
    twin.layer_state[...] = model.layer_state
    # the masks of the model's next step (a layer seed's own stream is
    # checked from its start)
    twin.generator.set_state(model.generator.get_state())
    twin.compile(loss=model.loss, optimizer="sgd")
    x, y = twin.check_xy(x, y)
    net = twin.engine

    def loss():
        # as a training step computes it (batch statistics, the next step's
        # dropout masks), leaving the generators as they were; a model with
        # a custom loss or activation through pynn.custom
        if twin.numpy_path:
            return twin.mean_loss(x, y)
        return net.loss(x, y, x.shape[0], training=True)

    arrays = [a for layer in twin.layers for a in layer.buffers()[:len(layer.part_names())]]
    keys = [f"{name}/{part}" for name, layer in zip(layer_names(model), twin.layers)
            for part in layer.part_names()]
    numerics = [central_differences(loss, values.reshape(-1), epsilon)  # views into params
                for values in arrays]
    _, grads = twin.gradients(x, y)             # draws those masks, last
    errors = {}
    for key, numeric, backprop in zip(keys, numerics, grads):
        backprop = backprop.reshape(-1)
        scale = max(np.linalg.norm(backprop), np.linalg.norm(numeric), atol)
        errors[key] = float(np.linalg.norm(backprop - numeric) / scale) if scale else 0.0
    return errors
