"""``keras.layers``: Dense in Keras's layout, Input, Dropout and the normalisations.

In this namespace a Dense layer's ``kernel`` has Keras's shape (inputs,
units): it is a view of pynn's ``W.T`` (pynn stores W as (units, inputs)),
so writing into it writes the model's weights.  ``get_weights`` and
``set_weights`` speak Keras's layout too, and check shapes, so a kernel in
the other orientation is refused (a square one cannot be told apart: in
this namespace, Keras's layout is the layout).

Attributes pynn does not know are refused when set, never ignored.
"""
from __future__ import annotations

import numpy as np

from .. import layers as _layers
from .._validation import as_float_array, check_finite, check_positive_int
from . import activations as _activations
from . import regularizers as _regularizers
from ._missing import Missing, module_getattr, refuse

class Input:
    """``keras.Input(shape=(n_features,))``: the input of a Sequential model.

    Only flat inputs: pynn's networks are chains of Dense layers.
    """

    def __init__(self, shape=None, batch_size=None, dtype=None, sparse=None,
                 batch_shape=None, name=None, tensor=None, optional=False):
        if batch_shape is not None and shape is None:
            shape = tuple(batch_shape)[1:]
        if sparse or tensor is not None or optional:
            refuse("Input(sparse=..., tensor=..., optional=...)",
                   "pynn.keras's Input is the feature count of a Sequential model")
        if dtype is not None and np.dtype(dtype) not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
        if isinstance(shape, (int, np.integer)):
            shape = (shape,)
        if not isinstance(shape, (tuple, list)) or len(shape) != 1 or shape[0] is None:
            raise NotImplementedError(
                f"Input(shape={shape!r}): pynn's Dense networks take flat inputs, "
                f"shape=(n_features,); flatten images and sequences first (x.reshape(n, -1))")
        self.shape = (None, check_positive_int(shape[0], "shape[0]"))
        self.dtype = None if dtype is None else np.dtype(dtype).name
        self.name = name

    @property
    def n_features(self):
        return self.shape[1]

    def __repr__(self):
        return f"<Input shape={self.shape}>"


InputLayer = Input


class Dense(_layers.Dense):
    """``keras.layers.Dense``: ``activation(x @ kernel + bias)``, kernel
    (inputs, units) as Keras.

    Parameters as Keras's; those pynn cannot honour yet (``use_bias=False``,
    ``activity_regularizer``, constraints, ``lora_rank``) raise
    NotImplementedError.  ``trainable=False`` (or setting ``trainable``
    later) freezes the layer, taking effect at the next step.
    ``input_shape=(n,)`` (Keras 2's way) and ``input_dim`` give the input size.
    """

    _SETTABLE = frozenset({"W", "b", "dW", "db", "input_dim", "name"})

    def __init__(self, units, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, lora_rank=None,
                 input_shape=None, input_dim=None, name=None, trainable=True, **kwargs):
        if kwargs:
            raise TypeError(f"Dense() got unexpected arguments {sorted(kwargs)}")
        if not use_bias:
            refuse("Dense(use_bias=False)", "every pynn Dense layer has a bias")
        if activity_regularizer is not None:
            refuse("Dense(activity_regularizer=...)",
                   "the compiled step has no penalty on a layer's outputs")
        for what, value in (("kernel_constraint", kernel_constraint),
                            ("bias_constraint", bias_constraint), ("lora_rank", lora_rank)):
            if value is not None:
                refuse(f"Dense({what}=...)", "the compiled update has no such step")
        if input_shape is not None:
            if input_dim is not None:
                raise ValueError("give input_shape or input_dim, not both")
            input_dim = Input(shape=input_shape).n_features
        super().__init__(units, activation=_activations.get(activation),
                         input_dim=input_dim, kernel_initializer=kernel_initializer,
                         bias_initializer=bias_initializer, name=name, trainable=trainable,
                         kernel_regularizer=_regularizers.get(kernel_regularizer),
                         bias_regularizer=_regularizers.get(bias_regularizer))
        object.__setattr__(self, "_locked", True)

    @classmethod
    def adopt(cls, layer):
        # A pynn Dense (of a loaded model) seen through this namespace: the
        # same object, holding no state of its own beyond pynn's.
        object.__setattr__(layer, "__class__", cls)
        object.__setattr__(layer, "_locked", True)
        return layer

    def __setattr__(self, name, value):
        if getattr(self, "_locked", False) and name not in self._SETTABLE \
                and not isinstance(getattr(type(self), name, None), property):
            known = name in self.__dict__
            raise AttributeError(
                f"cannot set {name!r} on a pynn.keras Dense layer: "
                + ("it is fixed when the layer is made (the compiled network is laid "
                   "out from it)" if known else "pynn has no such setting, and setting it "
                   "would change nothing"))
        object.__setattr__(self, name, value)

    # ---- Keras's view of the weights

    def _check_built(self):
        if not self.built:
            raise RuntimeError(f"layer {self.name or 'dense'!r} has no weights yet: add it "
                               f"to a model with a known input size (keras.Input(shape=(n,)))")

    @property
    def kernel(self):
        """The kernel, (inputs, units): a view of ``W.T``."""
        self._check_built()
        return self.W.T

    @property
    def bias(self):
        """The bias, (units,): a view into the model's parameters."""
        self._check_built()
        return self.b

    @property
    def weights(self):
        return [self.kernel, self.bias]

    @property
    def trainable_weights(self):
        return self.weights if self.trainable else []

    @property
    def non_trainable_weights(self):
        return [] if self.trainable else self.weights

    @property
    def use_bias(self):
        return True

    def get_weights(self):
        """``[kernel (inputs, units), bias (units,)]``, copies."""
        self._check_built()
        return [self.W.T.copy(), self.b.copy()]

    def set_weights(self, weights):
        """Copy ``[kernel (inputs, units), bias (units,)]`` into the layer;
        both are checked before either is copied."""
        self._check_built()
        kernel, bias = check_keras_weights(weights, [self], self.W.dtype)
        self.W[...] = kernel[0].T
        self.b[...] = bias[0]


def check_keras_weights(weights, layers, dtype):
    """(kernels, biases): ``weights`` ``[kernel, bias, ...]`` in Keras's
    layout for ``layers``, checked (count, shapes, finiteness) and converted."""
    if isinstance(weights, np.ndarray):
        raise TypeError(f"weights must be a list of arrays, got one array of shape "
                        f"{weights.shape}")
    weights = list(weights)
    if len(weights) != 2 * len(layers):
        raise ValueError(f"weights must hold {2 * len(layers)} arrays (kernel and bias of "
                         f"each of {len(layers)} Dense layers), got {len(weights)}")
    kernels, biases = [], []
    for i, layer in enumerate(layers):
        n_in, n_out = layer.input_dim, layer.units
        kernel = as_float_array(weights[2 * i], dtype, f"weights[{2 * i}]")
        bias = as_float_array(weights[2 * i + 1], dtype, f"weights[{2 * i + 1}]")
        if kernel.shape != (n_in, n_out):
            hint = (" (that is pynn's own (units, inputs) layout: pynn.keras takes "
                    "Keras's (inputs, units); transpose it)"
                    if kernel.shape == (n_out, n_in) else "")
            raise ValueError(f"weights[{2 * i}], the kernel of layer {i}, must have "
                             f"Keras's shape (inputs, units) = ({n_in}, {n_out}), got "
                             f"{kernel.shape}{hint}")
        if bias.shape != (n_out,):
            raise ValueError(f"weights[{2 * i + 1}], the bias of layer {i}, must have shape "
                             f"({n_out},), got {bias.shape}")
        check_finite(kernel, f"weights[{2 * i}]")
        check_finite(bias, f"weights[{2 * i + 1}]")
        kernels.append(kernel)
        biases.append(bias)
    return kernels, biases


class Activation:
    """``keras.layers.Activation``: fused into the Dense layer before it,
    which must be linear (pynn's Dense applies its activation in the same
    compiled pass).  Added anywhere else, it raises NotImplementedError."""

    def __init__(self, activation, name=None):
        self.activation = _activations.get(activation)
        self.name = name

    def __repr__(self):
        return f"Activation({self.activation!r})"


_WHY_LAYERS = ("pynn's compiled network is a chain of Dense, Dropout, BatchNormalization "
               "and LayerNormalization layers; other layer kinds are not in its step yet")


class _KerasView:
    """Keras's names for the values of a pynn layer that keeps its width."""

    @classmethod
    def adopt(cls, layer):
        # a pynn layer (of a loaded model) seen through this namespace
        object.__setattr__(layer, "__class__", cls)
        return layer

    @property
    def weights(self):
        return self.buffers()

    # trainable_weights / non_trainable_weights: pynn's, which honour trainable

    def get_weights(self):
        return [a.copy() for a in self.buffers()]

    def set_weights(self, weights):
        """Copy the layer's values in (all checked before any is copied)."""
        targets = self.buffers()
        weights = list(weights)
        if len(weights) != len(targets):
            raise ValueError(f"weights must hold {len(targets)} arrays for this "
                             f"{self.type_name} layer, got {len(weights)}")
        checked = []
        for i, (w, t) in enumerate(zip(weights, targets)):
            w = as_float_array(w, t.dtype.type, f"weights[{i}]")
            if w.shape != t.shape:
                raise ValueError(f"weights[{i}] must have shape {t.shape}, got {w.shape}")
            check_finite(w, f"weights[{i}]")
            checked.append(w)
        self.check_values(checked)
        for w, t in zip(checked, targets):
            t[...] = w


def _refuse_unsupported(what, **settings):
    for key, value in settings.items():
        if value not in (None, False, -1):
            refuse(f"{what}({key}={value!r})", "the compiled layer has no such setting")


class Dropout(_KerasView, _layers.Dropout):
    """``keras.layers.Dropout(rate, noise_shape=None, seed=None)``: pynn's
    Dropout (inverted dropout, off in predict and evaluate); ``noise_shape``
    is refused."""

    def __init__(self, rate, noise_shape=None, seed=None, name=None, trainable=True,
                 **kwargs):
        if kwargs:
            raise TypeError(f"Dropout() got unexpected arguments {sorted(kwargs)}")
        _refuse_unsupported("Dropout", noise_shape=noise_shape)
        super().__init__(rate, seed=seed, name=name, trainable=trainable)


class BatchNormalization(_KerasView, _layers.BatchNormalization):
    """``keras.layers.BatchNormalization``: pynn's, over the features
    (``axis=-1``); regularizers, constraints and ``synchronized=True`` are
    refused."""

    def __init__(self, axis=-1, momentum=0.99, epsilon=0.001, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones",
                 moving_mean_initializer="zeros", moving_variance_initializer="ones",
                 beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
                 gamma_constraint=None, synchronized=False, name=None, trainable=True,
                 **kwargs):
        if kwargs:
            raise TypeError(f"BatchNormalization() got unexpected arguments {sorted(kwargs)}")
        if axis not in (-1, 1):
            refuse(f"BatchNormalization(axis={axis!r})", "pynn's inputs are flat (n, features)")
        _refuse_unsupported("BatchNormalization", beta_regularizer=beta_regularizer,
                            gamma_regularizer=gamma_regularizer,
                            beta_constraint=beta_constraint, gamma_constraint=gamma_constraint,
                            synchronized=synchronized)
        super().__init__(momentum=momentum, epsilon=epsilon, center=center, scale=scale,
                         beta_initializer=beta_initializer, gamma_initializer=gamma_initializer,
                         moving_mean_initializer=moving_mean_initializer,
                         moving_variance_initializer=moving_variance_initializer, name=name,
                         trainable=trainable)


class LayerNormalization(_KerasView, _layers.LayerNormalization):
    """``keras.layers.LayerNormalization``: pynn's, over the features
    (``axis=-1``); ``rms_scaling``, regularizers and constraints are refused."""

    def __init__(self, axis=-1, epsilon=0.001, center=True, scale=True, rms_scaling=False,
                 beta_initializer="zeros", gamma_initializer="ones", beta_regularizer=None,
                 gamma_regularizer=None, beta_constraint=None, gamma_constraint=None,
                 name=None, trainable=True, **kwargs):
        if kwargs:
            raise TypeError(f"LayerNormalization() got unexpected arguments {sorted(kwargs)}")
        if axis not in (-1, 1):
            refuse(f"LayerNormalization(axis={axis!r})", "pynn's inputs are flat (n, features)")
        _refuse_unsupported("LayerNormalization", rms_scaling=rms_scaling,
                            beta_regularizer=beta_regularizer,
                            gamma_regularizer=gamma_regularizer,
                            beta_constraint=beta_constraint, gamma_constraint=gamma_constraint)
        super().__init__(epsilon=epsilon, center=center, scale=scale,
                         beta_initializer=beta_initializer, gamma_initializer=gamma_initializer,
                         name=name, trainable=trainable)


# the pynn class of each layer of a loaded model -> its view in this namespace
VIEWS = {_layers.Dense: Dense, _layers.Dropout: Dropout,
         _layers.BatchNormalization: BatchNormalization,
         _layers.LayerNormalization: LayerNormalization}

_MISSING = ("AlphaDropout", "GaussianDropout", "GaussianNoise", "SpatialDropout1D",
            "GroupNormalization", "UnitNormalization", "Normalization", "Flatten", "Reshape",
            "Conv1D", "Conv2D", "Conv3D", "MaxPooling1D", "MaxPooling2D", "AveragePooling2D",
            "GlobalAveragePooling2D", "Embedding", "LSTM", "GRU", "SimpleRNN", "Bidirectional",
            "MultiHeadAttention", "Concatenate", "Add", "Lambda", "LeakyReLU", "ReLU", "ELU",
            "PReLU", "Softmax", "Rescaling", "Layer", "EinsumDense", "Identity")
__getattr__ = module_getattr(__name__, _MISSING, _WHY_LAYERS)
