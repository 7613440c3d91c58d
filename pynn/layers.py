"""The layers: Dense, Dropout, BatchNormalization, LayerNormalization.

A layer owns no memory of its own once built: its kernel ``W`` (units,
inputs) and bias ``b`` (units,) are views into the model's flat parameter
buffer, and ``dW``/``db`` views into the gradient buffer of the same layout.
The normalisations' ``gamma`` and ``beta`` live among the biases (trained
by the optimizer, never decayed), BatchNormalization's moving statistics in
the model's buffer of non-trainable state.

Each layer tells the model how it is laid out (``output_width``,
``sizes``, ``layout_row``, ``settings``) and binds its views (``attach``);
the compiled network (csrc/dense.pyx) runs the chain of their kinds.
"""
from __future__ import annotations

import os

import numpy as np
import numpy.typing as npt

from . import _codes, _dense, activations, initializers, regularizers
from ._validation import (as_float_array, check_bool, check_finite, check_name,
                          check_positive_int, check_real)

KIND_DENSE = int(_codes.LayerKind.DENSE)
KIND_DROPOUT = int(_codes.LayerKind.DROPOUT)
KIND_BATCH_NORM = int(_codes.LayerKind.BATCH_NORM)
KIND_LAYER_NORM = int(_codes.LayerKind.LAYER_NORM)


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

    ``sizes`` are the input size then each layer's output width; the model
    holds ``buffers`` arrays of its parameters (the parameters, their gradients).
    Checked against the physical memory before anything is allocated, so
    that the error says which layer asks for how much, where NumPy would
    say only that an allocation failed (or the system would end the
    process on first touching lazily allocated pages).
    """
    physical = _physical_memory()
    if physical is None:
        return
    itemsize = np.dtype(dtype).itemsize
    per_layer = [layer.count_params(n_in) * itemsize * buffers
                 for layer, n_in in zip(layers, sizes[:-1])]
    total = sum(per_layer)
    if total > physical:
        i = int(np.argmax(per_layer))
        name = layers[i].name or f"number {i}"
        raise MemoryError(
            f"layer {name} ({layers[i].type_name}({sizes[i + 1]}) on {sizes[i]} inputs, "
            f"{layers[i].count_params(sizes[i])} parameters) needs "
            f"{_format_bytes(per_layer[i])} for its {np.dtype(dtype).name} weights and "
            f"their gradients; the model needs {_format_bytes(total)} in all, more than "
            f"this machine's {_format_bytes(physical)} of memory")


# the count, in a list that compiled code reads without a call (settings_counter)
_revision = [0]


def settings_revision() -> int:
    """A count bumped whenever a layer's trainable flag or regularizers
    change (any layer's): a model compares it at each step, to hand the
    variables its update covers to the compiled network again."""
    return _revision[0]


def settings_counter() -> list[int]:
    """The one-element list holding ``settings_revision()``: read in place,
    never written, by train_on_batch's hot path (``pynn._dense.HotStep``)."""
    return _revision


def note_settings_change() -> None:
    """Bump ``settings_revision()`` (a layer's or model's trainable flag, or
    a regularizer, was set)."""
    _revision[0] += 1


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
    trainable : bool
        False freezes the layer (see ``trainable``).
    kernel_regularizer, bias_regularizer : None, str, dict or Regularizer
        A penalty on W or b added to the loss (``pynn.regularizers``:
        ``"l1"``, ``"l2"``, ``"l1_l2"`` or ``L1(l1)``, ``L2(l2)``,
        ``L1L2(l1, l2)``, Keras's names and defaults).
    """

    def __init__(self, units: int, activation: str | None = None, input_dim: int | None = None,
                 kernel_initializer: str | dict | initializers.Initializer = "glorot_uniform",
                 bias_initializer: str | dict | initializers.Initializer = "zeros",
                 name: str | None = None, trainable: bool = True,
                 kernel_regularizer: str | dict | regularizers.Regularizer | None = None,
                 bias_regularizer: str | dict | regularizers.Regularizer | None = None
                 ) -> None:
        self.units = check_positive_int(units, "units")
        self.activation = activations.get(activation)
        self.input_dim = check_positive_int(input_dim, "input_dim", allow_none=True)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.name = check_name(name)
        self._W = self._b = self.dW = self.db = None
        self.trainable = trainable
        self.kernel_regularizer = kernel_regularizer
        self.bias_regularizer = bias_regularizer

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

        False freezes the layer, as Keras's ``layer.trainable = False``: the
        update skips its range of the flat buffers, so its weights and their
        optimizer state stay as they are, bit for bit, while its gradient
        still flows to the layers before it.  Unlike Keras, no new compile
        is needed: a change takes effect at the model's next step.
        """
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        value = check_bool(value, "trainable")
        if value != vars(self).get("_trainable"):
            object.__setattr__(self, "_trainable", value)
            note_settings_change()

    kernel_regularizer = property(
        lambda self: self._kernel_regularizer,
        lambda self, value: self._set_regularizer("kernel_regularizer", value),
        doc="The penalty on W (None: none); assigning one takes effect at the "
            "model's next step.")
    bias_regularizer = property(
        lambda self: self._bias_regularizer,
        lambda self, value: self._set_regularizer("bias_regularizer", value),
        doc="The penalty on b (None: none), as ``kernel_regularizer``.")

    def _set_regularizer(self, part, value):
        object.__setattr__(self, "_" + part, regularizers.get(value, part))
        note_settings_change()

    @property
    def trainable_weights(self) -> list[np.ndarray]:
        """``[W, b]`` when the layer is trainable (views), else ``[]``, as Keras."""
        return [self.W, self.b] if self._trainable and self.built else []

    @property
    def non_trainable_weights(self) -> list[np.ndarray]:
        """``[W, b]`` when the layer is frozen (views), else ``[]``, as Keras."""
        return [self.W, self.b] if not self._trainable and self.built else []

    # What may be set on a layer; anything else is refused, never stored
    # unread (a setting pynn does not know would change nothing).
    _SETTABLE = frozenset({"units", "activation", "input_dim", "kernel_initializer",
                           "bias_initializer", "name", "W", "b", "dW", "db", "_W", "_b",
                           "trainable", "kernel_regularizer", "bias_regularizer"})

    def __setattr__(self, name, value):
        if name not in self._SETTABLE:
            raise AttributeError(
                f"cannot set {name!r} on a {type(self).__name__} layer: pynn has no such "
                f"setting; the attributes that can be set are {sorted(self._SETTABLE)}")
        object.__setattr__(self, name, value)

    @property
    def activation_code(self):
        return activations.code(self.activation)

    # ---- how the model lays the layer out (shared with the other kinds)

    kind = KIND_DENSE
    type_name = "Dense"

    def output_width(self, n_in: int) -> int:
        return self.units

    def sizes(self, n_in: int) -> tuple[int, int, int]:
        """(kernel entries, bias entries, non-trainable state entries) on
        n_in inputs: where the layer's values go in the model's buffers."""
        return n_in * self.units, self.units, 0

    def layout_row(self, n_in, w_offset, b_offset, s_offset, rng):
        """The compiled network's layout row (csrc/dense.pyx)."""
        return (n_in, self.units, w_offset, b_offset, self.activation_code, -1,
                KIND_DENSE, -1, -1, -1, -1)

    def settings(self) -> tuple[float, float]:
        """The compiled layer's real settings (csrc/pynn/kernels/layer_kernels.pxd)."""
        return 0.0, 0.0

    def attach(self, n_in, params, grads, w_offset, b_offset, stats, s_offset):
        """Bind the views into the model's buffers (see ``sizes``)."""
        self.bind(n_in, params, grads, w_offset, b_offset)

    def buffers(self) -> list[np.ndarray]:
        """The live views of the layer's values, in ``get_weights`` order."""
        return [self.W, self.b]

    def grad_buffers(self) -> list[np.ndarray]:
        """The live views of the trainable values' gradients."""
        return [self.dW, self.db]

    def part_names(self) -> list[str]:
        """The names of the trainable values, in ``buffers`` order (first)."""
        return ["W", "b"]

    def check_values(self, arrays) -> None:
        """Refuse values that the layer cannot hold (finite values already checked)."""

    @property
    def built(self):
        return self.W is not None

    def count_params(self, input_dim: int | None = None) -> int:
        n_in = self.input_dim if input_dim is None else input_dim
        return self.units * n_in + self.units

    def count_trainable(self, input_dim: int | None = None) -> int:
        """The values fit updates: all of them, none when the layer is frozen."""
        return self.count_params(input_dim) if self._trainable else 0

    def variables(self, n_in, w_offset, b_offset) -> list[tuple[int, int, int, str]]:
        """The layer's trainable variables as ranges of the model's flat
        buffer: (start, stop, decayed, part), part naming the regularizer
        attribute ``part + "_regularizer"`` (see Network.set_variables)."""
        return [(w_offset, w_offset + n_in * self.units, 1, "kernel"),
                (b_offset, b_offset + self.units, 0, "bias")]

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
                "name": self.name, "trainable": self.trainable,
                "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
                "bias_regularizer": regularizers.serialize(self.bias_regularizer)}

    def __repr__(self):
        return (f"Dense({self.units}, activation={self.activation!r}"
                + (f", input_dim={self.input_dim}" if self.input_dim else "") + ")")


# --------------------------------------------------------------------------
# The layers that keep their input's width
# --------------------------------------------------------------------------

class _WidthKeeping:
    """What Dropout and the normalisations share: their output is as wide as
    their input (``units`` is that width once the model is built), they
    have no activation, and their settings are fixed when they are made."""

    kind = -1
    type_name = ""
    activation = "linear"
    _SETTABLE = frozenset({"name", "input_dim", "units", "trainable"})

    def __init__(self, name=None, input_dim=None, trainable=True):
        vars(self).update(name=check_name(name), units=None,
                          input_dim=check_positive_int(input_dim, "input_dim",
                                                       allow_none=True),
                          _trainable=check_bool(trainable, "trainable"))

    def __setattr__(self, name, value):
        if name not in self._SETTABLE:
            raise AttributeError(
                f"cannot set {name!r} on a {type(self).__name__} layer: "
                + ("it is fixed when the layer is made (the compiled network is laid out "
                   "from it)" if name in self.__dict__ else
                   "pynn has no such setting, and setting it would change nothing"))
        object.__setattr__(self, name, value)

    @property
    def trainable(self) -> bool:
        """Whether fit updates the layer's gamma and beta, as
        ``Dense.trainable``.  A frozen BatchNormalization also runs in
        inference mode in training, as Keras's: its moving statistics
        normalise and stay as they are (their gradient flows through them as
        constants)."""
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        value = check_bool(value, "trainable")
        if value != self._trainable:
            vars(self)["_trainable"] = value
            note_settings_change()

    @property
    def trainable_weights(self) -> list[np.ndarray]:
        """gamma and beta (those the layer has) when trainable, else ``[]``."""
        return self.buffers()[:len(self.part_names())] if self._trainable else []

    @property
    def non_trainable_weights(self) -> list[np.ndarray]:
        """The moving statistics, and gamma and beta when frozen."""
        return self.buffers()[0 if not self._trainable else len(self.part_names()):]

    def variables(self, n_in, w_offset, b_offset) -> list[tuple[int, int, int, str]]:
        return []

    @property
    def built(self) -> bool:
        return self.units is not None

    def output_width(self, n_in: int) -> int:
        return n_in

    def sizes(self, n_in: int) -> tuple[int, int, int]:
        return 0, 0, 0

    def settings(self) -> tuple[float, float]:
        return 0.0, 0.0

    def count_params(self, input_dim: int | None = None) -> int:
        """Trainable and non-trainable values, as Keras counts them."""
        n_in = self.units if input_dim is None else input_dim
        return 0 if n_in is None else sum(self.sizes(n_in))

    def count_trainable(self, input_dim: int | None = None) -> int:
        n_in = self.units if input_dim is None else input_dim
        return 0 if n_in is None or not self._trainable else sum(self.sizes(n_in)[:2])

    def attach(self, n_in, params, grads, w_offset, b_offset, stats, s_offset):
        vars(self).update(units=n_in, input_dim=n_in)

    def initialize(self, generator) -> None:
        pass

    def buffers(self) -> list[np.ndarray]:
        return []

    def grad_buffers(self) -> list[np.ndarray]:
        return []

    def part_names(self) -> list[str]:
        return []

    def check_values(self, arrays) -> None:
        pass

    def _config(self):
        # trainable written only when False, as Dense's in a model's config
        return {"name": self.name, "input_dim": self.input_dim,
                **({} if self._trainable else {"trainable": False})}

    @classmethod
    def from_config(cls, config: dict):
        """The layer ``get_config`` describes."""
        config = dict(config)
        config.pop("class_name", None)
        return cls(**config)


class Dropout(_WidthKeeping):
    """Inverted dropout: in training each value is kept with probability
    ``1 - rate`` and scaled by ``1 / (1 - rate)``, or set to 0; in predict
    and evaluate the layer passes its input through.

    Parameters
    ----------
    rate : float in [0, 1)
        The fraction of the values dropped.
    seed : int or None
        None: the masks are drawn from the model's own generator (the one
        seeded by the model's ``seed``, which also draws the weights and the
        shuffling order), so a seeded model's training is reproducible bit
        for bit.  An int: from a generator of the layer's own, seeded with it
        whenever the model is built.
    name, input_dim, trainable : as Dense's.

    Notes
    -----
    The masks are drawn inside the compiled step, one 64-bit draw per value
    in row-major order (a value is kept when the top 53 bits, read as a
    uniform u in [0, 1), give u >= rate): ``fit`` and a loop of
    ``train_on_batch`` over the same batches draw the same masks.  A step
    refused for a non-finite loss or gradient leaves the generator as it was.
    """

    kind = KIND_DROPOUT
    type_name = "Dropout"

    def __init__(self, rate: float, seed: int | None = None, name: str | None = None,
                 input_dim: int | None = None, trainable: bool = True) -> None:
        super().__init__(name, input_dim, trainable)
        rate = check_real(rate, "rate", low=0.0, high=1.0, high_open=True)
        if seed is not None:
            initializers.make_generator(seed)   # refuses a bad seed now, by name
        vars(self).update(rate=rate, seed=seed, generator=None)

    def attach(self, n_in, params, grads, w_offset, b_offset, stats, s_offset):
        super().attach(n_in, params, grads, w_offset, b_offset, stats, s_offset)
        # a layer seed's own stream starts afresh at each build, as the model's
        vars(self)["generator"] = (None if self.seed is None
                                   else initializers.make_generator(self.seed))

    def layout_row(self, n_in, w_offset, b_offset, s_offset, rng):
        return (n_in, n_in, -1, -1, activations.code("linear"), -1, KIND_DROPOUT,
                -1, -1, -1, rng)

    def settings(self):
        return self.rate, 0.0

    def get_config(self) -> dict:
        return {"class_name": "Dropout", "rate": self.rate, "seed": self.seed,
                **self._config()}

    def __repr__(self):
        return f"Dropout({self.rate!r})"


class _Normalization(_WidthKeeping):
    """gamma * x_hat + beta, x_hat = (x - mean) / sqrt(var + epsilon) with the
    biased variance; gamma and beta (units,) are trained as biases are."""

    def __init__(self, epsilon, center, scale, beta_initializer, gamma_initializer,
                 name, input_dim, trainable):
        super().__init__(name, input_dim, trainable)
        vars(self).update(
            epsilon=check_real(epsilon, "epsilon", low=0.0, low_open=True),
            center=check_bool(center, "center"), scale=check_bool(scale, "scale"),
            beta_initializer=initializers.get(beta_initializer),
            gamma_initializer=initializers.get(gamma_initializer),
            gamma=None, beta=None, d_gamma=None, d_beta=None)

    def sizes(self, n_in):
        return 0, n_in * (int(self.scale) + int(self.center)), 0

    def _offsets(self, n_in, b_offset):
        gamma = b_offset if self.scale else -1
        beta = b_offset + n_in * int(self.scale) if self.center else -1
        return gamma, beta

    def variables(self, n_in, w_offset, b_offset):
        # gamma and beta, each a variable of its own, not decayed (as biases)
        return [(off, off + n_in, 0, part)
                for part, off in zip(("gamma", "beta"), self._offsets(n_in, b_offset))
                if off >= 0]

    def attach(self, n_in, params, grads, w_offset, b_offset, stats, s_offset):
        super().attach(n_in, params, grads, w_offset, b_offset, stats, s_offset)
        views = {}
        for part, off in zip(("gamma", "beta"), self._offsets(n_in, b_offset)):
            live = off >= 0
            views[part] = params[off:off + n_in] if live else None
            views["d_" + part] = grads[off:off + n_in] if live else None
        vars(self).update(views)

    def initialize(self, generator):
        if self.gamma is not None:
            self.gamma_initializer(self.gamma, generator)
        if self.beta is not None:
            self.beta_initializer(self.beta, generator)

    def buffers(self):
        return [a for a in (self.gamma, self.beta) if a is not None]

    def grad_buffers(self):
        return [a for a in (self.d_gamma, self.d_beta) if a is not None]

    def part_names(self):
        return [part for part, on in (("gamma", self.scale), ("beta", self.center)) if on]

    def _norm_config(self):
        return {"epsilon": self.epsilon, "center": self.center, "scale": self.scale,
                "beta_initializer": initializers.serialize(self.beta_initializer),
                "gamma_initializer": initializers.serialize(self.gamma_initializer),
                **self._config()}


class BatchNormalization(_Normalization):
    """Keras's BatchNormalization over the features of a batch (n, units).

    In training (fit, train_on_batch) each feature is normalised by the
    batch's mean and biased variance, and once the step is applied the
    moving statistics become ``moving * momentum + batch * (1 - momentum)``;
    in predict and evaluate the moving statistics normalise.

    Parameters
    ----------
    momentum : float in [0, 1)
    epsilon : float > 0
    center, scale : bool
        Whether the layer has beta (a learned shift) and gamma (a learned
        scale); without them, 0 and 1.
    beta_initializer, gamma_initializer, moving_mean_initializer,
    moving_variance_initializer : str or Initializer
        zeros, ones, zeros and ones by default, as Keras.
    name, input_dim, trainable : as Dense's.

    Notes
    -----
    ``get_weights`` gives ``[gamma, beta, moving_mean, moving_variance]``
    (gamma and beta when the layer has them), as Keras; gamma and beta are
    trained, excluded from weight decay as biases are; the moving statistics
    are the model's non-trainable state, saved with it.  In data-parallel
    training (``pynn.distributed``) each rank normalises by its own share of
    the batch, and the moving statistics are averaged over the ranks after
    each step, so that every rank holds the same model.
    """

    kind = KIND_BATCH_NORM
    type_name = "BatchNormalization"

    def __init__(self, momentum: float = 0.99, epsilon: float = 1e-3, center: bool = True,
                 scale: bool = True, beta_initializer="zeros", gamma_initializer="ones",
                 moving_mean_initializer="zeros", moving_variance_initializer="ones",
                 name: str | None = None, input_dim: int | None = None,
                 trainable: bool = True) -> None:
        super().__init__(epsilon, center, scale, beta_initializer, gamma_initializer,
                         name, input_dim, trainable)
        vars(self).update(
            momentum=check_real(momentum, "momentum", low=0.0, high=1.0, high_open=True),
            moving_mean_initializer=initializers.get(moving_mean_initializer),
            moving_variance_initializer=initializers.get(moving_variance_initializer),
            moving_mean=None, moving_variance=None)

    def sizes(self, n_in):
        return 0, n_in * (int(self.scale) + int(self.center)), 2 * n_in

    def layout_row(self, n_in, w_offset, b_offset, s_offset, rng):
        gamma, beta = self._offsets(n_in, b_offset)
        return (n_in, n_in, gamma, beta, activations.code("linear"), -1, KIND_BATCH_NORM,
                -1, -1, s_offset, -1)

    def settings(self):
        return self.momentum, self.epsilon

    def attach(self, n_in, params, grads, w_offset, b_offset, stats, s_offset):
        super().attach(n_in, params, grads, w_offset, b_offset, stats, s_offset)
        vars(self).update(moving_mean=stats[s_offset:s_offset + n_in],
                          moving_variance=stats[s_offset + n_in:s_offset + 2 * n_in])

    def initialize(self, generator):
        super().initialize(generator)
        self.moving_mean_initializer(self.moving_mean, generator)
        self.moving_variance_initializer(self.moving_variance, generator)

    def buffers(self):
        return super().buffers() + [self.moving_mean, self.moving_variance]

    def check_values(self, arrays):
        if np.any(arrays[-1] < 0):
            raise ValueError(f"the moving variance of {self.name or 'a BatchNormalization'} "
                             f"must be >= 0, got {arrays[-1][arrays[-1] < 0][0]!r}")

    def get_config(self) -> dict:
        return {"class_name": "BatchNormalization", "momentum": self.momentum,
                "moving_mean_initializer": initializers.serialize(self.moving_mean_initializer),
                "moving_variance_initializer":
                    initializers.serialize(self.moving_variance_initializer),
                **self._norm_config()}

    def __repr__(self):
        return f"BatchNormalization(momentum={self.momentum!r}, epsilon={self.epsilon!r})"


class LayerNormalization(_Normalization):
    """Keras's LayerNormalization: each sample normalised over its features
    by its own mean and biased variance, the same in training and inference.

    Parameters
    ----------
    epsilon : float > 0
    center, scale, beta_initializer, gamma_initializer, name, input_dim, trainable :
        as BatchNormalization's.
    """

    kind = KIND_LAYER_NORM
    type_name = "LayerNormalization"

    def __init__(self, epsilon: float = 1e-3, center: bool = True, scale: bool = True,
                 beta_initializer="zeros", gamma_initializer="ones",
                 name: str | None = None, input_dim: int | None = None,
                 trainable: bool = True) -> None:
        super().__init__(epsilon, center, scale, beta_initializer, gamma_initializer,
                         name, input_dim, trainable)

    def layout_row(self, n_in, w_offset, b_offset, s_offset, rng):
        gamma, beta = self._offsets(n_in, b_offset)
        return (n_in, n_in, gamma, beta, activations.code("linear"), -1, KIND_LAYER_NORM,
                -1, -1, -1, -1)

    def settings(self):
        return 0.0, self.epsilon

    def get_config(self) -> dict:
        return {"class_name": "LayerNormalization", **self._norm_config()}

    def __repr__(self):
        return f"LayerNormalization(epsilon={self.epsilon!r})"


LAYER_CLASSES = {cls.type_name: cls for cls in (Dense, Dropout, BatchNormalization,
                                                LayerNormalization)}
LAYER_TYPES = tuple(LAYER_CLASSES.values())


def layer_from_config(spec: dict, input_dim: int | None = None):
    """The layer one entry of a model's config describes (Dense when it
    names no class_name, as configs written before the other kinds)."""
    spec = dict(spec)
    name = spec.pop("class_name", "Dense")
    if name not in LAYER_CLASSES:
        raise ValueError(f"unknown layer class_name {name!r}; pynn's layers are "
                         f"{sorted(LAYER_CLASSES)}")
    if name == "Dense":
        return Dense(spec.get("units"), activation=spec.get("activation"),
                     input_dim=input_dim, name=spec.get("name"),
                     trainable=spec.get("trainable", True),
                     kernel_regularizer=spec.get("kernel_regularizer"),
                     bias_regularizer=spec.get("bias_regularizer"))
    spec["input_dim"] = input_dim
    return LAYER_CLASSES[name].from_config(spec)


def unbuilt_copy(layer):
    """A new layer with ``layer``'s settings, not built (no values): Dense
    with its units, activation (a custom one included), name and
    regularizers (trainable left True; the other kinds' flag copied: a
    frozen BatchNormalization computes another function)."""
    if isinstance(layer, Dense):
        return Dense(layer.units, activation=layer.activation, name=layer.name,
                     kernel_regularizer=layer.kernel_regularizer,
                     bias_regularizer=layer.bias_regularizer)
    config = layer.get_config()
    config["input_dim"] = None
    return layer_from_config(config)


def widths(layers, input_dim: int) -> list[int]:
    """The input width, then each layer's output width."""
    sizes = [input_dim]
    for layer in layers:
        sizes.append(layer.output_width(sizes[-1]))
    return sizes
