"""The per-batch path of models with a custom loss or activation.

pynn has no automatic differentiation: a custom loss brings its gradient
(``pynn.losses.Loss`` with ``call`` and ``gradient``), a custom activation
its derivative (``__call__`` and ``derivative``, see
``pynn.activations.Activation``).  The compiled network cannot call back
into Python in the middle of a step, so a model with either trains here,
one batch at a time:

- forward, layer by layer: the affine map ``X @ W.T + b`` by the compiled
  per-layer kernel (``pynn._dense.dense_forward``), with the layer's
  compiled activation fused in, or followed by the custom one in NumPy;
- the loss and its gradient: the compiled loss kernel for a pynn loss
  (``pynn._losses.loss_value_grad``, row weights included), or the custom
  loss's ``call`` and ``gradient`` combined into Keras's
  ``sum_over_batch_size``: ``L = sum_i w_i l_i / n``, ``dL/dy_i = w_i g_i / n``;
- backward, layer by layer (``pynn._dense.dense_backward``), a custom
  activation's ``derivative(z)`` multiplied in first;
- the model's optimizer update over the trainable variables of the flat
  buffers (``Network.apply_gradients``: regularizers and clipping as a
  compiled step's), the kernel every update goes through, which
  refuses an update that would make a parameter or the optimizer state
  non-finite and then changes nothing.

Sparse x (``CSRRows``) is densified one batch or chunk at a time.  A step
refuses non-finite x or y (ValueError), and reports a loss or a
gradient that is not finite as not applied, changing no weight.  It costs
a few Python calls per layer and batch where the compiled step makes one:
slower, most for small layers and batches.
"""
from __future__ import annotations

import numpy as np

from . import _dense, _losses, _optim, _sparse, activations, losses
from .layers import Dense
from ._validation import check_finite, readonly_view


def uses_numpy_path(model) -> bool:
    """True when the model's loss or a layer's activation is a custom callable.

    Raises NotImplementedError when it is, and a layer is not a Dense: this
    path runs Dense layers alone."""
    custom = (model.loss is not None and losses.is_custom(model.loss)) or any(
        isinstance(layer, Dense) and activations.is_custom(layer.activation)
        for layer in model.layers)
    if custom:
        for layer in model.layers:
            if not isinstance(layer, Dense):
                raise NotImplementedError(
                    f"a model with a custom loss or activation trains through NumPy, "
                    f"which runs Dense layers alone; {layer!r} is not one")
    return custom


def dense_rows(x, dtype):
    """``x`` as a dense C-contiguous array: itself, or the rows of sparse
    ``CSRRows`` (one batch or chunk; their values were checked finite)."""
    if not _sparse.is_rows(x):
        return x
    indptr = np.asarray(x.indptr, dtype=np.int64)
    n_rows = indptr.shape[0] - 1
    stored = slice(int(indptr[0]), int(indptr[-1]))
    out = np.zeros((n_rows, x.n_cols), dtype=dtype)
    # canonical CSR: no column twice in a row, so assignment is the sum
    out[np.repeat(np.arange(n_rows), np.diff(indptr)), x.indices[stored]] = x.data[stored]
    return out


def _as_like(value, like, what):
    # a user's result as a C-contiguous array of like's shape and dtype
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError):
        raise TypeError(f"{what} must return an array, got {value!r:.80}") from None
    if arr.shape != like.shape:
        raise ValueError(f"{what} returned an array of shape {arr.shape}, expected "
                         f"{like.shape}")
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise TypeError(f"{what} must return real numbers, got dtype {arr.dtype}")
    # always a copy of pynn's own: the result may be an input given back (a
    # read-only view) or an array the user's function keeps, and it is
    # scaled in place next
    return np.array(arr, dtype=like.dtype, order="C", copy=True)


def forward(model, x, fused):
    """Every layer's ``(input, z, output)``: ``z`` the pre-activation of a
    layer whose derivative needs it (a custom activation, gelu, swish),
    None for the others, whose derivative comes from their output.  With
    ``fused`` the last layer yields logits, which the loss kernel activates."""
    cache = []
    inp = x
    last = len(model.layers) - 1
    for i, layer in enumerate(model.layers):
        act = layer.activation
        custom = activations.is_custom(act)
        linear = custom or (fused and i == last)
        code = activations.LINEAR if linear else activations.code(act)
        out = np.empty((inp.shape[0], layer.units), dtype=model.dtype)
        z = None
        if not linear and activations.needs_preactivation(code):
            # the per-layer kernel returns one of z and act(z): both, by two calls
            z = np.empty_like(out)
            _dense.dense_forward(inp, layer.W, layer.b, activations.LINEAR, z)
        _dense.dense_forward(inp, layer.W, layer.b, code, out)
        if custom:
            z = out
            out = _as_like(act(readonly_view(z)), z,
                           f"the activation {activations.name_of(act)!r}")
        cache.append((inp, z, out))
        inp = out
    return cache


def backward(model, cache, grad, fused):
    """Write every layer's dW and db into ``model.grads`` from ``grad``,
    dL/d(the last output as ``forward`` returned it); ``grad`` is consumed."""
    last = len(model.layers) - 1
    for i in range(last, -1, -1):
        layer = model.layers[i]
        inp, z, out = cache[i]
        act = layer.activation
        if activations.is_custom(act):
            derivative = _as_like(act.derivative(readonly_view(z)), z,
                                  f"the derivative of {activations.name_of(act)!r}")
            grad = np.multiply(grad, derivative, out=grad)
            code, out, z = activations.LINEAR, z, None
        else:
            code = activations.LINEAR if fused and i == last else activations.code(act)
        grad_x = np.empty_like(inp) if i > 0 else None
        _dense.dense_backward(inp, layer.W, out, grad, code, layer.dW, layer.db, grad_x, z)
        grad = grad_x


def loss_and_gradient(model, y, out, sample_weight=None, need_gradient=True):
    """(the batch loss, dL/d``out``) for ``out`` the last output ``forward``
    gave (logits when the loss is fused); the gradient is None without
    ``need_gradient`` for a custom loss."""
    loss = model.loss
    n = out.shape[0]
    if not losses.is_custom(loss):
        grad = np.empty_like(out)
        value = _losses.loss_value_grad(loss.kernel_code(model.layers[-1].activation),
                                        out, y, grad, sample_weight, loss.kernel_param)
        return value, grad
    y_true, y_pred = readonly_view(y), readonly_view(out)
    per_sample = loss.call(y_true, y_pred)
    try:
        per_sample = np.asarray(per_sample, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"the loss {loss.name!r}: call must return numbers, one per "
                        f"sample") from None
    if per_sample.shape not in ((n,), (n, 1)):
        raise ValueError(f"the loss {loss.name!r}: call returned shape "
                         f"{per_sample.shape}, expected one loss per sample ({n},)")
    per_sample = per_sample.reshape(n)
    weights = None if sample_weight is None else sample_weight.astype(np.float64)
    value = float(per_sample.sum() if weights is None else weights @ per_sample) / n
    if not need_gradient:
        return value, None
    grad = _as_like(loss.gradient(y_true, y_pred), out,
                    f"the gradient of the loss {loss.name!r}")
    scale = (np.full(n, 1.0 / n) if weights is None else weights / n).astype(grad.dtype)
    grad *= scale[:, None]
    return value, grad


def apply_update(model, update=True) -> bool:
    """The regularizers' terms added to ``model.grads``, then (``update``)
    the compiled clipping, check and optimizer update over the trainable
    variables, as a compiled step's; False (nothing changed but the
    gradient) when a value would not be finite."""
    with model.counting() as net:
        net.set_hyper(model.optimizer.hyper())
        return net.apply_gradients(update, True)


def step(model, x, y, update=True, sample_weight=None):
    """One batch: forward, loss, backward and (``update``) the optimizer's
    update, as ``Model.step``.  Returns (loss, applied, last output)."""
    x = dense_rows(x, model.dtype)
    check_finite(x, "x")
    check_finite(y, "y")
    fused = model.fused
    cache = forward(model, x, fused)
    out = cache[-1][2]
    value, grad = loss_and_gradient(model, y, out, sample_weight)
    if not np.isfinite(value) or not _optim.is_finite(grad.reshape(-1)):
        return value, False, out
    backward(model, cache, grad, fused)
    if not _optim.is_finite(model.grads):
        return value, False, out
    # the regularizers' penalty on the weights the step started from
    value += model.engine.penalty()
    return value, apply_update(model, update), out


def predict(model, x, chunk):
    """The outputs for ``x``, ``chunk`` rows per forward pass."""
    out = np.empty((x.shape[0], model.output_dim), dtype=model.dtype)
    for start in range(0, x.shape[0], chunk):
        rows = dense_rows(x[start:start + chunk], model.dtype)
        out[start:start + chunk] = forward(model, rows, False)[-1][2]
    return out


def mean_loss(model, x, y, chunk, sample_weight=None):
    """(the loss over (x, y), the last chunk's last output), ``chunk`` rows
    at a time; the mean's denominator is the number of rows."""
    fused = model.fused
    total = 0.0
    out = None
    for start in range(0, x.shape[0], chunk):
        rows = slice(start, start + chunk)
        out = forward(model, dense_rows(x[rows], model.dtype), fused)[-1][2]
        w = None if sample_weight is None else sample_weight[rows]
        value, _ = loss_and_gradient(model, y[rows], out, w, need_gradient=False)
        total += value * out.shape[0]
    return total / x.shape[0] + model.engine.penalty(), out
