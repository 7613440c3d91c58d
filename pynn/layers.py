"""Dense layers.

A layer owns no memory of its own once built: its kernel ``W`` (units,
inputs) and bias ``b`` (units,) are views into the model's flat parameter
buffer, and ``dW``/``db`` views into the gradient buffer of the same layout.
"""
from __future__ import annotations

import os

import numpy as np
import numpy.typing as npt

from . import _dense, activations, initializers
from ._validation import (as_float_array, check_bool, check_finite, check_name,
                          check_positive_int)


def _physical_memory():
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def _format_bytes(n):
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024


def check_memory(layers, sizes, dtype, buffers=2):
    """Refuse a model whose flat buffers could not fit in this machine's memory.

    ``sizes`` are the input size then each layer's units; the model holds
    ``buffers`` arrays of its parameters (the parameters, their gradients).
    Checked against the physical memory before anything is allocated, so
    that the error says which layer asks for how much, where NumPy would
    say only that an allocation failed (or the system would end the
    process on first touching lazily allocated pages).
    """
    physical = _physical_memory()
    if physical is None:
        return
    itemsize = np.dtype(dtype).itemsize
    per_layer = [(n_in * n_out + n_out) * itemsize * buffers
                 for n_in, n_out in zip(sizes[:-1], sizes[1:])]
    total = sum(per_layer)
    if total > physical:
        i = int(np.argmax(per_layer))
        name = layers[i].name or f"number {i}"
        raise MemoryError(
            f"layer {name} (Dense({sizes[i + 1]}) on {sizes[i]} inputs, "
            f"{sizes[i] * sizes[i + 1] + sizes[i + 1]} parameters) needs "
            f"{_format_bytes(per_layer[i])} for its {np.dtype(dtype).name} weights and "
            f"their gradients; the model needs {_format_bytes(total)} in all, more than "
            f"this machine's {_format_bytes(physical)} of memory")


class Dense:
    """A fully connected layer: ``A = activation(X @ W.T + b)``.

    Parameters
    ----------
    units : int
        Number of outputs.
    activation : str or None
        One of ``pynn.activations.names()``; None means linear.
    input_dim : int, optional
        Number of inputs; needed on the first layer unless the model is
        built from data.
    kernel_initializer, bias_initializer : str or Initializer
        How W and b are drawn (defaults glorot_uniform and zeros, as Keras;
        he_* suits relu layers better).
    name : str, optional
        Up to 256 printable characters; None gives the layer a numbered
        name in the model (``dense``, ``dense_1``, ...).
    """

    def __init__(self, units: int, activation: str | None = None, input_dim: int | None = None,
                 kernel_initializer: str | dict | initializers.Initializer = "glorot_uniform",
                 bias_initializer: str | dict | initializers.Initializer = "zeros",
                 name: str | None = None) -> None:
        self.units = check_positive_int(units, "units")
        self.activation = activations.get(activation)
        self.input_dim = check_positive_int(input_dim, "input_dim", allow_none=True)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.name = check_name(name)
        self._W = self._b = self.dW = self.db = None

    @property
    def W(self) -> np.ndarray | None:
        """The kernel (units, input_dim): a view into the model's parameters.

        Assigning copies the values into that view (the model trains and
        predicts with them); an array of another shape, or holding NaN or
        infinite values, is refused and changes nothing.
        """
        return self._W

    @W.setter
    def W(self, value):
        self._assign(self._W, value, "W")

    @property
    def b(self) -> np.ndarray | None:
        """The bias (units,): a view into the model's parameters; assigned as W."""
        return self._b

    @b.setter
    def b(self, value):
        self._assign(self._b, value, "b")

    def _assign(self, live, value, part):
        if live is None:
            raise RuntimeError(f"layer is not built: cannot assign {part} before it "
                               f"is added to a built model (use set_weights after)")
        arr = as_float_array(value, live.dtype.type, part)
        if arr.shape != live.shape:
            raise ValueError(f"{part} must have shape {live.shape}, got {arr.shape}")
        check_finite(arr, part)
        live[...] = arr

    @property
    def trainable(self) -> bool:
        """Whether fit and train_on_batch update this layer's W and b.

        Only True for now: setting False raises NotImplementedError rather
        than being ignored (the update would still change the weights).
        """
        return True

    @trainable.setter
    def trainable(self, value):
        value = check_bool(value, "trainable")
        if not value:
            raise NotImplementedError(
                "layer.trainable = False is not supported yet: the compiled update "
                "would still change this layer's weights")

    # What may be set on a layer; anything else is refused, never stored
    # unread (a setting pynn does not know would change nothing).
    _SETTABLE = frozenset({"units", "activation", "input_dim", "kernel_initializer",
                           "bias_initializer", "name", "W", "b", "dW", "db", "_W", "_b",
                           "trainable"})

    def __setattr__(self, name, value):
        if name not in self._SETTABLE:
            raise AttributeError(
                f"cannot set {name!r} on a {type(self).__name__} layer: pynn has no such "
                f"setting; the attributes that can be set are {sorted(self._SETTABLE)}")
        object.__setattr__(self, name, value)

    @property
    def activation_code(self):
        return activations.code(self.activation)

    @property
    def built(self):
        return self.W is not None

    def count_params(self, input_dim: int | None = None) -> int:
        n_in = self.input_dim if input_dim is None else input_dim
        return self.units * n_in + self.units

    def bind(self, input_dim: int, params: np.ndarray, grads: np.ndarray,
             w_offset: int, b_offset: int) -> None:
        """Make W, b, dW, db views of the model's flat buffers (the model
        calls it when it builds): W at ``params[w_offset:]``, b at
        ``params[b_offset:]``, the gradients at the same places of ``grads``."""
        self.input_dim = input_dim
        w_end = w_offset + self.units * input_dim
        # written to __dict__ directly: W and b are properties whose setters
        # copy into these views, and a subclass may guard its attributes
        vars(self).update(_W=params[w_offset:w_end].reshape(self.units, input_dim),
                          _b=params[b_offset:b_offset + self.units])
        self.dW = grads[w_offset:w_end].reshape(self.units, input_dim)
        self.db = grads[b_offset:b_offset + self.units]

    def initialize(self, generator: initializers.Generator) -> None:
        """Draw W and b in place from ``generator``."""
        self.kernel_initializer(self.W, generator)
        self.bias_initializer(self.b, generator)

    # The Python-level path: one compiled call per layer.  Sequential trains
    # through a single whole-network call instead; tests compare the two.

    def forward(self, x: npt.ArrayLike) -> np.ndarray:
        """Output of the layer for a batch ``x`` (n, input_dim)."""
        if not self.built:
            raise RuntimeError("layer is not built: add it to a model first")
        x = as_float_array(x, self.W.dtype, "x")
        if x.ndim != 2 or x.shape[1] != self.input_dim:
            raise ValueError(f"x must have shape (n_samples, {self.input_dim}), "
                             f"got {x.shape}")
        out = np.empty((x.shape[0], self.units), dtype=self.W.dtype)
        _dense.dense_forward(x, self.W, self.b, self.activation_code, out)
        if activations.is_custom(self.activation):
            # the compiled part of a custom activation's layer is its affine map
            out = np.asarray(self.activation(out), dtype=self.W.dtype)
        return out

    def backward(self, x: np.ndarray, a: np.ndarray, grad_a: npt.ArrayLike,
                 need_grad_x: bool = True,
                 activation_code: int | None = None) -> np.ndarray | None:
        """Backpropagate through the layer.

        Parameters
        ----------
        x : (n, input_dim) the layer's input
        a : (n, units) the layer's output for x
        grad_a : (n, units) dL/da; not modified
        need_grad_x : bool
            False for a first layer, whose input needs no gradient.

        Returns
        -------
        grad_x : (n, input_dim) array or None.  dL/dW and dL/db are written
        into ``self.dW`` and ``self.db``.
        """
        if not self.built:
            raise RuntimeError("layer is not built: add it to a model first")
        if activation_code is None and activations.is_custom(self.activation):
            raise TypeError(f"backward through a custom activation "
                            f"({activations.name_of(self.activation)!r}) needs its "
                            f"pre-activation, not its output: a model trains such "
                            f"layers through pynn.custom")
        code = self.activation_code if activation_code is None else activation_code
        dtype = self.W.dtype.type
        x = as_float_array(x, dtype, "x")
        a = as_float_array(a, dtype, "a")
        if x.ndim != 2 or x.shape[1] != self.input_dim:
            raise ValueError(f"x must have shape (n_samples, {self.input_dim}), got {x.shape}")
        n = x.shape[0]
        for name, arr in (("a", a), ("grad_a", np.shape(grad_a))):
            shape = arr if isinstance(arr, tuple) else arr.shape
            if shape != (n, self.units):
                # the kernel trusts these shapes: a shorter array would be
                # read (and grad_z written) past its end
                raise ValueError(f"{name} must have shape ({n}, {self.units}) for x of "
                                 f"shape {x.shape}, got {shape}")
        # a fresh copy: the kernel overwrites it with dL/dz, the caller's stays
        grad_z = np.array(as_float_array(grad_a, dtype, "grad_a"), dtype=dtype,
                          order="C", copy=True)
        grad_x = (np.empty((x.shape[0], self.input_dim), dtype=self.W.dtype)
                  if need_grad_x else None)
        z = None
        if activations.needs_preactivation(code):
            # the pre-activation, by the forward pass's own product and sum
            z = np.empty((n, self.units), dtype=self.W.dtype)
            _dense.dense_forward(x, self.W, self.b, activations.LINEAR, z)
        _dense.dense_backward(x, self.W, a, grad_z, code, self.dW, self.db, grad_x, z)
        return grad_x

    def get_config(self) -> dict:
        return {"units": self.units, "activation": self.activation,
                "input_dim": self.input_dim,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "name": self.name}

    def __repr__(self):
        return (f"Dense({self.units}, activation={self.activation!r}"
                + (f", input_dim={self.input_dim}" if self.input_dim else "") + ")")
