"""``keras.Sequential`` and ``keras.models.load_model`` over pynn.Sequential.

A ``keras.Sequential`` holds a ``pynn.Sequential`` (``model.pynn_model``)
and speaks Keras 3's signatures and return values: ``compile(optimizer,
loss, metrics)``; ``evaluate`` returning the loss alone, ``[loss, *metrics]``,
or a dict with ``return_dict=True``; ``verbose`` on predict and evaluate;
``fit(batch_size=None, verbose="auto")``; kernels in Keras's (inputs, units)
layout.  Training, weights and files are pynn's: ``model.save("m.keras")``
writes pynn's own format (an .npz archive) under that name, which
``load_model`` (or ``pynn.load``) reads back; Keras cannot read it.
"""
from __future__ import annotations

import numpy as np

from .. import callbacks as _callbacks
from .. import io as _io
from .._validation import check_bool
from ..core import shape_scores
from ..model import Sequential as _PynnSequential
from . import layers as _layers
from . import losses as _losses
from . import metrics as _keras_metrics
from . import optimizers as _optimizers
from . import utils as _utils
from ._missing import Missing, refuse

_LATER = ("pynn weighs the training loss by sample (sample_weight, class_weight), "
          "not by output or metric")


def _verbosity(verbose, argname="verbose"):
    if verbose == "auto":
        return 1
    if isinstance(verbose, bool) or verbose not in (0, 1, 2):
        raise ValueError(f"{argname} must be 'auto', 0, 1 or 2, got {verbose!r}")
    return int(verbose)


class Sequential:
    """``keras.Sequential([keras.Input(shape=(n,)), layers.Dense(...), ...])``.

    Parameters
    ----------
    layers : list of keras.Input, keras.layers.Dense, keras.layers.Activation
    name : str, optional
    dtype : "float32" (as Keras) or "float64"
        pynn's own setting; the seed comes from ``keras.utils.set_random_seed``.
    """

    _SETTABLE = frozenset({"stop_training", "optimizer", "name"})

    def __init__(self, layers=None, trainable=True, name=None, dtype="float32"):
        object.__setattr__(self, "_model", _PynnSequential(dtype=dtype,
                                                           seed=_utils.next_model_seed()))
        object.__setattr__(self, "_input_dim", None)
        object.__setattr__(self, "name", name or "sequential")
        for layer in layers or []:
            self.add(layer)
        if trainable is not True:
            self._model.trainable = trainable

    @classmethod
    def _wrap(cls, model):
        self = cls.__new__(cls)
        object.__setattr__(self, "_model", model)
        object.__setattr__(self, "_input_dim", model.input_dim)
        object.__setattr__(self, "name", "sequential")
        for layer in model.layers:
            for pynn_class, view in _layers.VIEWS.items():
                if isinstance(layer, pynn_class):
                    view.adopt(layer)
        return self

    def __setattr__(self, name, value):
        if name == "trainable":
            self._model.trainable = value       # every layer's too, as Keras
            return
        if name not in self._SETTABLE:
            raise AttributeError(f"cannot set {name!r} on a pynn.keras Sequential: pynn "
                                 f"has no such setting, and setting it would change nothing")
        if name == "name":
            object.__setattr__(self, name, value)
        else:
            setattr(self._model, name, value)

    @property
    def pynn_model(self):
        """The pynn.Sequential this model drives (pynn's layout and API)."""
        return self._model

    # ---------------------------------------------------------------- build

    def add(self, layer):
        """Append ``keras.Input``, a ``keras.layers.Dense``, or an Activation
        (fused into the linear Dense before it)."""
        model = self._model
        if isinstance(layer, _layers.Input):
            if model.layers or self._input_dim is not None:
                raise ValueError("keras.Input must come first, and once")
            object.__setattr__(self, "_input_dim", layer.n_features)
            if layer.dtype is not None and np.dtype(layer.dtype) != model.dtype:
                refuse(f"Input(dtype={layer.dtype!r}) on a {np.dtype(model.dtype).name} "
                       f"model", "give Sequential(dtype=...) instead")
            return
        if isinstance(layer, _layers.Activation):
            self._fuse_activation(layer)
            return
        if isinstance(layer, Missing):
            layer()                       # its NotImplementedError
        if not isinstance(layer, tuple(_layers.VIEWS.values())):
            raise TypeError(f"pynn.keras.Sequential takes keras.Input, and the layers "
                            f"Dense, Activation, Dropout, BatchNormalization and "
                            f"LayerNormalization of pynn.keras.layers, got {layer!r}")
        if not model.layers and self._input_dim is not None:
            if layer.input_dim not in (None, self._input_dim):
                raise ValueError(f"the Input has {self._input_dim} features, the first "
                                 f"layer says input_dim={layer.input_dim}")
            layer.input_dim = self._input_dim
        model.add(layer)

    def _fuse_activation(self, act):
        model = self._model
        last = model.layers[-1] if model.layers else None
        if last is None or not isinstance(last, _layers.Dense) or last.activation != "linear":
            refuse(f"Activation({act.activation!r}) "
                   + ("as the first layer" if last is None
                      else f"after a {last.type_name}" if not isinstance(last, _layers.Dense)
                      else f"after a Dense with activation {last.activation!r}"),
                   "an Activation is fused into the linear Dense before it")
        if model.trained:
            raise RuntimeError("cannot add a layer to a model that has been trained")
        object.__setattr__(last, "activation", act.activation)
        if model.built:
            model.build(model.input_dim)      # lay the network out again

    def build(self, input_shape=None):
        if input_shape is not None:
            n = input_shape[-1] if isinstance(input_shape, (tuple, list)) else input_shape
            self._model.build(n)

    @property
    def layers(self):
        return list(self._model.layers)

    def get_layer(self, name=None, index=None):
        if (name is None) == (index is None):
            raise ValueError("give the layer's name or its index")
        if index is not None:
            return self._model.layers[index]
        for layer in self._model.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"no layer named {name!r}; layers: "
                         f"{[layer.name for layer in self._model.layers]}")

    @property
    def built(self):
        return self._model.built

    @property
    def input_shape(self):
        return (None, self._model.input_dim)

    @property
    def output_shape(self):
        return (None, self._model.output_dim)

    def count_params(self):
        return self._model.count_params()

    def summary(self, print_fn=None, **kwargs):
        return self._model.summary(print_fn=print if print_fn is None else print_fn)

    # ---------------------------------------------------------------- compile

    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, metrics=None,
                weighted_metrics=None, run_eagerly=False, steps_per_execution=1,
                jit_compile="auto", auto_scale_loss=True):
        """Keras's order: optimizer, loss, metrics.  ``run_eagerly``,
        ``steps_per_execution``, ``jit_compile`` and ``auto_scale_loss`` are
        execution choices of Keras's backends that change no result: pynn
        always runs its compiled kernels."""
        if loss is None:
            raise ValueError("compile needs a loss (pynn has no add_loss)")
        if loss_weights is not None or weighted_metrics is not None:
            refuse("compile(loss_weights=..., weighted_metrics=...)", _LATER)
        if isinstance(metrics, (list, tuple)):
            metrics = [_keras_metrics.get(m) for m in metrics]
        self._model.compile(loss=_losses.get(loss), optimizer=_optimizers.get(optimizer),
                            metrics=metrics)

    @property
    def optimizer(self):
        return self._model.optimizer

    @property
    def loss(self):
        return self._model.loss

    @property
    def metrics_names(self):
        return self._model.metrics_names

    @property
    def stop_training(self):
        return self._model.stop_training

    @property
    def history(self):
        return self._model.history

    # ---------------------------------------------------------------- training

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
            sample_weight=None, initial_epoch=0, steps_per_epoch=None, validation_steps=None,
            validation_batch_size=None, validation_freq=1):
        """Keras's fit.  A step whose loss or gradient is not finite is never
        applied: fit raises DivergenceError there, or, with TerminateOnNaN
        among the callbacks, stops and returns the history (Keras goes on
        training with NaN weights)."""
        if validation_freq != 1:
            refuse(f"fit(validation_freq={validation_freq!r})", "pynn validates every epoch")
        if validation_steps is not None:
            refuse("fit(validation_steps=...)", "pynn validates on the whole validation data")
        if isinstance(validation_data, (tuple, list)) and len(validation_data) == 3:
            refuse("validation_data=(x, y, sample_weight)",
                   "pynn weighs the training loss only; validation is unweighted")
        callbacks = list(callbacks or [])
        stop = any(isinstance(cb, _callbacks.TerminateOnNaN) for cb in callbacks)
        callbacks = [_SeenFrom(self, cb) if isinstance(cb, _callbacks.Callback) else cb
                     for cb in callbacks]
        # validation_batch_size only splits the evaluation: the result is the same
        return self._model.fit(x, y, epochs=epochs, batch_size=32 if batch_size is None
                               else batch_size, shuffle=shuffle,
                               validation_data=validation_data,
                               validation_split=validation_split, callbacks=callbacks,
                               verbose=_verbosity(verbose), initial_epoch=initial_epoch,
                               steps_per_epoch=steps_per_epoch,
                               on_divergence="stop" if stop else "raise",
                               sample_weight=sample_weight, class_weight=class_weight)

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None,
                       return_dict=False):
        """One update; returns the batch's loss (and metrics, on the outputs
        before the update, as Keras), shaped as ``evaluate`` returns them."""
        return self._model.train_on_batch(x, y, sample_weight=sample_weight,
                                          class_weight=class_weight, return_dict=return_dict)

    # ---------------------------------------------------------------- inference

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """Outputs for ``x`` (probabilities after sigmoid / softmax).  Prints
        nothing whatever ``verbose`` (Keras draws a progress bar)."""
        _verbosity(verbose)
        if steps is not None or callbacks:
            refuse("predict(steps=..., callbacks=...)", "pynn predicts in one compiled pass")
        return self._model.predict(x, batch_size=batch_size)

    def predict_on_batch(self, x):
        return self._model.predict(x)

    def __call__(self, x, training=False):
        if training:
            refuse("model(x, training=True)", "pynn has no layer that trains differently")
        return self._model.predict(x)

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None,
                 steps=None, callbacks=None, return_dict=False):
        """The loss alone without metrics, ``[loss, *metrics]`` with them (in
        compile's order), a dict with ``return_dict=True``.  ``verbose`` > 0
        prints one line of the values."""
        verbose = _verbosity(verbose)
        if steps is not None or callbacks:
            refuse("evaluate(steps=..., callbacks=...)", "pynn evaluates in compiled passes")
        return_dict = check_bool(return_dict, "return_dict")
        scores = self._model.evaluate(x, y, batch_size=batch_size, sample_weight=sample_weight,
                                      return_dict=True)
        if verbose:
            print(" - ".join(f"{k}: {v:.4f}" for k, v in scores.items()))
        return shape_scores(scores, return_dict)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        return self._model.test_on_batch(x, y, sample_weight=sample_weight,
                                         return_dict=return_dict)

    # ---------------------------------------------------------------- weights

    def get_weights(self):
        """``[kernel1 (inputs, units), bias1, kernel2, ...]``, copies, Keras's layout."""
        out = []
        for w in self._model.get_weights():
            out.append(w.T.copy() if w.ndim == 2 else w)
        return out

    def set_weights(self, weights):
        """Copy ``[kernel1 (inputs, units), bias1, ...]`` (Keras's layout) into
        the model; every array is checked before any is copied."""
        if not self._model.built:
            raise RuntimeError("the model is not built: give it a keras.Input first")
        layers = self._model.layers
        if all(isinstance(layer, _layers.Dense) for layer in layers):
            kernels, biases = _layers.check_keras_weights(weights, layers, self._model.dtype)
            pynn_weights = []
            for kernel, bias in zip(kernels, biases):
                pynn_weights += [kernel.T, bias]
            self._model.set_weights(pynn_weights)
            return
        if isinstance(weights, np.ndarray):
            raise TypeError(f"weights must be a list of arrays, got one array of shape "
                            f"{weights.shape}")
        weights = list(weights)
        counts = [len(layer.buffers()) for layer in layers]
        if len(weights) != sum(counts):
            raise ValueError(f"weights must hold {sum(counts)} arrays (as get_weights gives "
                             f"them), got {len(weights)}")
        pynn_weights, start = [], 0
        for layer, count in zip(layers, counts):
            chunk = weights[start:start + count]
            if isinstance(layer, _layers.Dense):
                # the kernel in Keras's layout, checked as check_keras_weights does
                kernel, bias = _layers.check_keras_weights(chunk, [layer], self._model.dtype)
                chunk = [kernel[0].T, bias[0]]
            pynn_weights += chunk
            start += count
        self._model.set_weights(pynn_weights)

    @property
    def weights(self):
        return [w for layer in self._model.layers for w in layer.weights]

    @property
    def trainable_weights(self):
        return [w for layer in self._model.layers if self._model.trainable
                for w in layer.trainable_weights]

    @property
    def non_trainable_weights(self):
        return [w for layer in self._model.layers
                for w in (layer.weights if not self._model.trainable
                          else layer.non_trainable_weights)]

    @property
    def trainable(self):
        return self._model.trainable

    def save(self, filepath, overwrite=True, include_optimizer=True):
        """Write the model in pynn's format to ``filepath`` (any name, ".keras"
        included); ``keras.models.load_model`` reads it back."""
        import os
        if not overwrite and os.path.exists(filepath):
            raise FileExistsError(f"{filepath!r} exists and overwrite=False")
        return self._model.save(filepath, include_optimizer=include_optimizer)

    def __repr__(self):
        return f"<pynn.keras.Sequential {self._model!r}>"


class _SeenFrom(_callbacks.Callback):
    """A callback whose ``self.model`` is the keras.Sequential (Keras's
    layout and signatures), not the pynn model that fit runs."""

    def __init__(self, keras_model, callback):
        super().__init__()
        self.keras_model, self.callback = keras_model, callback
        for hook in _UNCALLED:
            if callable(getattr(callback, hook, None)):
                refuse(f"{type(callback).__name__}.{hook}",
                       "pynn's fit calls on_train_begin/end, on_epoch_begin/end and "
                       "on_batch_end (also as on_train_batch_end), and no other hook")
        self._train_batch_end = getattr(callback, "on_train_batch_end", None)

    def set_model(self, model):
        self.callback.set_model(self.keras_model)

    def set_params(self, params):
        self.callback.set_params(params)

    @property
    def wants_batches(self):
        return self.callback.wants_batches or callable(self._train_batch_end)

    def on_train_begin(self, logs=None):
        self.callback.on_train_begin(logs)

    def on_train_end(self, logs=None):
        self.callback.on_train_end(logs)

    def on_epoch_begin(self, epoch, logs=None):
        self.callback.on_epoch_begin(epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self.callback.on_epoch_end(epoch, logs)

    def on_batch_end(self, batch, logs=None):
        self.callback.on_batch_end(batch, logs)
        if callable(self._train_batch_end):      # Keras 3's name of the same hook
            self._train_batch_end(batch, logs)


# Keras hooks that pynn's fit has no moment for: a callback defining one is
# refused rather than left uncalled
_UNCALLED = ("on_batch_begin", "on_train_batch_begin", "on_test_begin", "on_test_end",
             "on_test_batch_begin", "on_test_batch_end", "on_predict_begin",
             "on_predict_end", "on_predict_batch_begin", "on_predict_batch_end")


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):
    """A model saved by ``model.save`` (pynn's format), as a keras.Sequential.

    pynn's files hold no code: ``safe_mode`` is always on.  With
    ``compile=False`` the model comes back without loss, optimizer and metrics.
    """
    if custom_objects:
        refuse("load_model(custom_objects=...)", "pynn's files hold pynn's classes only")
    model = _io.load(filepath)
    if not compile:
        model.loss = model.optimizer = None
        model.metrics = []
    return Sequential._wrap(model)


def save_model(model, filepath, overwrite=True, include_optimizer=True):
    return model.save(filepath, overwrite=overwrite, include_optimizer=include_optimizer)


Model = Missing("keras.Model", "pynn.keras has Sequential models (a chain of Dense "
                "layers) only; the functional API and subclassed models are not in pynn")
__all__ = ["Model", "Sequential", "load_model", "save_model"]
