"""The model core: a stack of Dense layers over one flat parameter buffer.

Every parameter of the model lives in ``params`` (kernels first, then
biases), every gradient in ``grads`` with the same layout, and the
optimizer's state in a third buffer of that layout: a training step is one
compiled call (forward, loss, backward, update), and an all-reduce of the
gradients would be one call over one buffer.

``Model`` holds the layers, the buffers, the compile state, predict and
evaluate, the weights and the config.  It does not train: ``pynn.training``
does, through the step interface documented here (``engine``, ``step``,
``check_xy``, ``batch_metrics``, ``lock``), and ``pynn.model.Sequential``
joins the two with saving (``pynn.io``).
"""
from __future__ import annotations

import contextlib
import inspect
import threading
import warnings
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from . import (_codes, _dense, _sparse, _threads, activations, custom, initializers,
               losses, optimizers, regularizers)
from . import metrics as metrics_module
from ._validation import (as_dtype, as_float_array, check_bool, check_finite,
                          check_n_threads, check_positive_int, check_verbose)
from .errors import DivergenceError
from .layers import (KIND_BATCH_NORM, KIND_DROPOUT, LAYER_TYPES, Dense, check_memory, layer_from_config,
                     note_settings_change, settings_counter, settings_revision, widths)
from .summary import summary_table

_PREDICT_CHUNK = 4096

# What the compiled network's step reports (declared once, in csrc/pynn/kernels/codes.pxd):
# OK; NONFINITE, the loss, a gradient or an updated value not finite (nothing
# applied); X_NONFINITE / Y_NONFINITE, the batch holds NaN or inf (nothing ran).
STATUS_OK = int(_codes.Status.OK)
STATUS_NONFINITE = int(_codes.Status.NONFINITE)
STATUS_X_NONFINITE = int(_codes.Status.X_NONFINITE)
STATUS_Y_NONFINITE = int(_codes.Status.Y_NONFINITE)


def raise_for_inputs(status: int, x: np.ndarray, y: np.ndarray) -> None:
    """Turn a step's report of non-finite inputs into the ValueError naming them."""
    if status == STATUS_X_NONFINITE:
        check_finite(x, "x")
    if status == STATUS_Y_NONFINITE:
        check_finite(y, "y")


def shape_scores(scores: dict[str, float], return_dict: bool
                 ) -> float | list[float] | dict[str, float]:
    """``evaluate``'s return, as Keras 3's, from the scores ``{"loss": ..., metric
    name: ...}`` in ``metrics_names`` order: the dict itself with ``return_dict``,
    else the loss alone when it is the only value, else the list of values."""
    if return_dict:
        return scores
    values = list(scores.values())
    return values[0] if len(values) == 1 else values


def _check_compile_order(optimizer, loss):
    # compile's order was (loss, optimizer) before it became Keras's
    # (optimizer, loss): a call written in the old order is refused by name
    # rather than read as something else
    swapped = (isinstance(optimizer, losses.Loss)
               or (isinstance(optimizer, str) and optimizer.lower() in losses.names())
               or isinstance(loss, optimizers.Optimizer)
               or (isinstance(loss, str) and loss.lower() in optimizers.names()))
    if swapped:
        raise TypeError(f"compile takes (optimizer, loss, metrics), in Keras's order; "
                        f"got optimizer={optimizer!r} and loss={loss!r}, which look "
                        f"swapped: write compile(optimizer=..., loss=...)")


def _preactivation_offsets(widths, layers):
    """Column 5 of the compiled network's layout: for each layer, where (per
    sample, in the network's work buffer, past the outputs and the two delta
    buffers) it keeps its pre-activation Z, or -1 when its activation's
    derivative comes from its output (csrc/dense.pyx)."""
    offset = sum(widths) + 2 * max(widths)
    column = []
    for width, layer in zip(widths, layers):
        if activations.needs_preactivation(layer.activation):
            column.append(offset)
            offset += width
        else:
            column.append(-1)
    return column


# outputs in [0, 1]: what a cross-entropy from probabilities reads
_PROBABILITY_ACTIVATIONS = frozenset({"sigmoid", "softmax"})
# outputs that leave [0, 1]: read as probabilities, they make the loss
# negative (linear, tanh) or its log clipped, and training stalls
_UNBOUNDED_ACTIVATIONS = frozenset({"linear", "relu", "tanh", "leaky_relu", "elu", "selu",
                                    "gelu", "swish", "softplus"})


def _outside_pynn():
    # the stacklevel of the first caller outside pynn, so that a warning
    # points at the user's line whether compile was called directly, through
    # pynn.keras or through from_config
    frame, level = inspect.currentframe().f_back, 1
    while frame.f_back is not None \
            and frame.f_globals.get("__name__", "").split(".")[0] == "pynn":
        frame, level = frame.f_back, level + 1
    return level


def warn_from_logits_mistakes(layers: Sequence[Dense], loss: losses.Loss) -> None:
    """UserWarning on the two common mismatches of a cross-entropy's
    ``from_logits`` and the last layer's activation.

    - ``from_logits=True`` after a sigmoid or softmax layer: the loss takes
      the probabilities for logits and squashes them a second time; the
      loss no longer reaches 0 and its gradient is weak.
    - ``from_logits=False`` after a linear (or another unbounded) layer:
      the outputs are read as probabilities, which they are not; the loss
      can come out negative or clipped at machine epsilon.

    Both are well defined, so they are warned about, not refused.
    """
    if not layers or not isinstance(loss, (losses.BinaryCrossentropy,
                                           losses.CategoricalCrossentropy,
                                           losses.SparseCategoricalCrossentropy)):
        return
    layer = layers[-1]
    act = layer.activation
    which = (f"the last layer {layer.name!r}" if layer.name
             else f"the last layer (index {len(layers) - 1})")
    kind = type(loss).__name__
    if loss.from_logits and act in _PROBABILITY_ACTIVATIONS:
        message = (f"{which} has activation {act!r} and the loss {loss.name!r} has "
                   f"from_logits=True: the layer's outputs are probabilities, which the "
                   f"loss takes for logits and passes through a second {loss.activation}. "
                   f"Fix: give the layer activation='linear' (outputs are then logits), "
                   f"or compile with {kind}(from_logits=False), with which the loss "
                   f"applies the {act} to the layer's logits itself, the stable way")
    elif not loss.from_logits and act in _UNBOUNDED_ACTIVATIONS:
        message = (f"{which} has activation {act!r} and the loss {loss.name!r} has "
                   f"from_logits=False: the layer's outputs are read as probabilities, "
                   f"which they are not (the loss can be negative, or clipped at machine "
                   f"epsilon, and stop learning). Fix: give the layer "
                   f"activation={loss.activation!r}, or compile with "
                   f"{kind}(from_logits=True) to read the outputs as logits")
    else:
        return
    warnings.warn(message, UserWarning, stacklevel=_outside_pynn())


class Model:
    """A feed-forward network of Dense layers: the model without its trainer.

    Parameters
    ----------
    layers : list of Dense, optional
        The model is built once, after all of them are added, when the first
        one has an ``input_dim``.
    dtype : "float32" or "float64"
        Storage and arithmetic type of parameters and data; inputs of other
        types are converted (copied), never misread.
    seed : int or None
        Seeds the model's own generator, which draws the initial weights and
        the shuffling order: the same seed gives the same weights.
    n_threads : int or None
        BLAS threads for this model's products.  None: the BLAS's own count
        (threadpoolctl's limit, if one is set), but one thread for steps too
        small to gain from more.  Only SciPy builds on OpenBLAS >= 0.3.27 let
        pynn set this per call; elsewhere the BLAS decides.

    Every method that reads or writes the buffers holds the model's lock
    (``lock``), so one model can be shared between threads: a call that
    frees, replaces or resizes a buffer (compile, optimizer assignment,
    set_weights, add, build) waits until a running fit or step is over.
    """

    def __init__(self, layers: Sequence[Dense] | None = None, dtype: npt.DTypeLike = "float32",
                 seed: int | None = None, n_threads: int | None = None) -> None:
        self.dtype = as_dtype(dtype)
        self.n_threads = check_n_threads(n_threads)
        self.seed = seed
        self._lock = threading.RLock()
        self._hot = None                    # train_on_batch's HotStep (step_as_given)
        self._generator = initializers.make_generator(seed)
        self.layers = []
        self.loss = None
        self._optimizer = None
        self.metrics = []
        self.params = self.grads = None
        self.layer_state = None             # non-trainable values (BN's moving statistics)
        self._net = None
        self._n_kernel_params = 0
        self._offsets = []                  # per layer: (w_offset, b_offset, n_in)
        self._trainable = True
        self._variables_revision = None     # settings_revision() the network's variables follow
        self._prepared = None               # (optimizer, its state) the network holds
        self._synced_revision = None        # the optimizer's revision the network follows
        self._metrics_compiled = False      # every metric has a compiled twin
        self._custom = False                # a custom loss or activation: pynn.custom
        self._custom_output = None          # the last output pynn.custom computed
        self._trained = False
        self.stop_training = False          # a callback may set it to end fit
        self.history = None                 # the History of the last fit
        for layer in layers or []:
            self._append(layer)
        # built once, however many layers: not once per layer
        if self.layers and self.layers[0].input_dim is not None:
            self.build(self.layers[0].input_dim)
        self._ready = True                  # from now on, unknown names are refused

    def __setattr__(self, name, value):
        # An attribute pynn does not know is refused, never stored unread.
        # Known: those __init__ made (in the instance's dict) and the
        # class's (properties with a setter run it; a property without one
        # raises as usual).  One dict lookup on the step's path.
        if name not in self.__dict__ and not hasattr(type(self), name) \
                and "_ready" in self.__dict__:
            known = sorted(k for k in self.__dict__ if not k.startswith("_"))
            raise AttributeError(
                f"cannot set {name!r} on a {type(self).__name__}: pynn has no such "
                f"setting, and storing it would change nothing; the attributes that "
                f"can be set are {known} and the properties 'optimizer', 'trainable'")
        object.__setattr__(self, name, value)
        if name != "_hot":
            # whatever changed, train_on_batch's hot path is made anew after
            # the next checked step (HotStep compares nothing a set can move)
            self.__dict__["_hot"] = None

    @property
    def trainable(self) -> bool:
        """Whether fit updates the model's weights at all.

        Setting it sets every layer's ``trainable`` too, as Keras's
        ``model.trainable``; while it is False no layer is updated, whatever
        its own flag (Keras's rule).  Takes effect at the next step.
        """
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        value = check_bool(value, "trainable")
        for layer in self.layers:
            layer.trainable = value
        self._trainable = value
        note_settings_change()

    def _layer_trainable(self, layer):
        return self._trainable and layer.trainable

    @property
    def trainable_weights(self) -> list[np.ndarray]:
        """The weights fit updates (views: the trainable layers' ``[W, b]``,
        gamma and beta), in layer order."""
        if not (self.built and self._trainable):
            return []
        return [w for layer in self.layers for w in layer.trainable_weights]

    @property
    def non_trainable_weights(self) -> list[np.ndarray]:
        """The values fit leaves as they are or moves without a gradient
        (views: the frozen layers' weights, the moving statistics)."""
        if not self.built:
            return []
        return [w for layer in self.layers
                for w in (layer.non_trainable_weights if self._trainable
                          else layer.buffers())]

    def count_trainable_params(self) -> int:
        """How many parameters fit updates (``count_params()`` counts them all)."""
        if not (self.built and self._trainable):
            return 0
        return sum(layer.count_trainable(n_in)
                   for layer, (_, _, n_in) in zip(self.layers, self._offsets))

    # ------------------------------------------------------------------ build

    def add(self, layer: Dense) -> None:
        """Append a layer: Dense, Dropout, BatchNormalization or
        LayerNormalization (before training starts).

        When the first layer has an ``input_dim`` the model is rebuilt at
        once, so that the new layer's weights are there to read; to build a
        deep model in one go, pass the layers to the constructor.
        """
        with self._lock:
            self._append(layer)
            if self.layers[0].input_dim is not None:
                self.build(self.layers[0].input_dim)

    def _append(self, layer):
        if not isinstance(layer, LAYER_TYPES):
            raise TypeError(f"layer must be a pynn.Dense, Dropout, BatchNormalization or "
                            f"LayerNormalization, got {layer!r}")
        if self._trained:
            raise RuntimeError("cannot add a layer to a model that has been trained")
        self.layers.append(layer)

    @property
    def generator(self):
        """The model's random generator (pynn's PCG64): it drew the initial
        weights and draws the shuffling order.  ``generator.get_state()`` and
        ``set_state()`` save and restore it, to resume a run exactly."""
        return self._generator

    @property
    def generators(self) -> list:
        """Every generator the model draws from: its own (``generator``), then
        those of the Dropout layers seeded with a seed of their own, in layer
        order (each Dropout's masks come from one of them)."""
        return [self._generator] + [layer.generator for layer in self.layers
                                    if getattr(layer, "generator", None) is not None]

    @property
    def lock(self) -> threading.RLock:
        """The model's re-entrant lock: held by every call that reads or
        writes its buffers, and by a trainer for the whole of a fit."""
        return self._lock

    @property
    def built(self):
        return self.params is not None

    @property
    def trained(self) -> bool:
        """True once an update was applied or weights were loaded: from then
        on the layer stack is fixed (adding a layer would redraw them)."""
        return self._trained

    def mark_trained(self) -> None:
        """Record that the weights are no longer the initial draw."""
        self._trained = True

    @property
    def optimizer(self) -> optimizers.Optimizer | None:
        """The optimizer fit and train_on_batch update with.

        Assigning one waits until a running fit or step is over; the next
        step (or save) takes it over, refusing one that trains another model.
        """
        return self._optimizer

    @optimizer.setter
    def optimizer(self, optimizer: optimizers.Optimizer | None) -> None:
        if optimizer is not None and not isinstance(optimizer, optimizers.Optimizer):
            raise TypeError(f"optimizer must be a pynn Optimizer, got {optimizer!r}")
        # taken over (and refused if another model owns it) at the next step
        # or save, under the lock as now
        with self._lock:
            self._optimizer = optimizer

    @property
    def n_kernel_params(self) -> int:
        """How many leading entries of ``params`` are kernels (W) rather than
        biases: weight decay applies to those only."""
        return self._n_kernel_params

    @property
    def metrics_compiled(self) -> bool:
        """True when every metric runs inside the compiled epoch."""
        return self._metrics_compiled

    @property
    def engine(self) -> _dense.Network:
        """The compiled network (``pynn._dense.Network``) behind the model.

        Its methods ``step``, ``train_batches``, ``predict``, ``loss``,
        ``last_output``, ``set_hyper``, ``profile_step`` and
        ``set_thread_policy`` are the step interface of trainers, gradient
        checks and benchmarks.  Call ``refresh_optimizer()`` before a call
        that updates (the optimizer may have changed since the network got
        it), and call its methods with ``lock`` held.  A model with a custom
        loss or activation (``numpy_path``) does not compute through it: its
        ``step``, ``mean_loss`` and ``predict`` go through ``pynn.custom``.
        """
        net = self._net
        if net is None:
            raise RuntimeError("the model is not built: give the first layer an "
                               "input_dim or call fit/predict first")
        return net

    def refresh_optimizer(self) -> None:
        """Hand a changed optimizer to the compiled network: one assigned,
        its state array swapped, or momentum turned on or off (which resizes
        its state).  Trainers, ``step`` and ``save`` call it; a no-op when
        nothing changed or the model is not built and compiled."""
        with self._lock:
            if self._net is not None and self._optimizer is not None \
                    and self.loss is not None:
                self._sync_optimizer()

    @property
    def input_dim(self):
        return self.layers[0].input_dim if self.layers else None

    @property
    def output_dim(self):
        for layer in reversed(self.layers):
            if isinstance(layer, Dense):
                return layer.units
        return self.input_dim           # only width-keeping layers

    def build(self, input_dim: int) -> None:
        """Allocate the flat buffers for ``input_dim`` inputs and draw the weights.

        Rebuilding (after ``add``) redraws every weight from a generator
        reset to the model's seed, so the result does not depend on how the
        layers were added.
        """
        input_dim = check_positive_int(input_dim, "input_dim")
        if not self.layers:
            raise ValueError("the model has no layers")
        with self._lock:
            self._build(input_dim)

    def _build(self, input_dim):
        # params: every kernel, then every bias, gamma and beta (decayed
        # neither); layer_state: BatchNormalization's moving statistics
        sizes = widths(self.layers, input_dim)
        parts = [layer.sizes(n_in) for layer, n_in in zip(self.layers, sizes)]
        n_weights = sum(p[0] for p in parts)
        n_params = n_weights + sum(p[1] for p in parts)
        check_memory(self.layers, sizes, self.dtype)
        self.params = np.zeros(n_params, dtype=self.dtype)
        self.grads = np.zeros(n_params, dtype=self.dtype)
        self.layer_state = np.zeros(sum(p[2] for p in parts), dtype=self.dtype)
        self._n_kernel_params = n_weights
        layout = np.full((len(self.layers), _dense.LAYOUT_WIDTH), -1, dtype=np.intp)
        settings = np.zeros((len(self.layers), _dense.SETTINGS_WIDTH))
        w_off, b_off, s_off = 0, n_weights, 0
        z_offsets = _preactivation_offsets(sizes[1:], self.layers)
        self._generator = initializers.make_generator(self.seed)
        generators = [self._generator]      # index 0: the model's own
        self._offsets = []
        for i, layer in enumerate(self.layers):
            n_in = sizes[i]
            layer.attach(n_in, self.params, self.grads, w_off, b_off, self.layer_state, s_off)
            self._offsets.append((w_off, b_off, n_in))
            rng = -1
            if layer.kind == KIND_DROPOUT:
                rng = 0 if layer.generator is None else len(generators)
                if layer.generator is not None:
                    generators.append(layer.generator)
            layout[i] = layer.layout_row(n_in, w_off, b_off, s_off, rng)
            settings[i] = layer.settings()
            layout[i, 5] = z_offsets[i]
            layer.initialize(self._generator)
            w_off += parts[i][0]
            b_off += parts[i][1]
            s_off += parts[i][2]
        self._net = _dense.Network(self.params, self.grads, layout, settings,
                                   self.layer_state)
        self._net.set_generators(generators)
        self._net.set_thread_policy(_threads.local_thread_setter(), self.n_threads or 0,
                                    _threads.MIN_PARALLEL_FLOPS,
                                    _threads.thread_count_getter())
        self._custom = custom.uses_numpy_path(self)
        if self._optimizer is not None:
            self._hand_over_optimizer()

    def _hand_over_optimizer(self):
        # its state sized for the buffers, and given to the network once
        # there is a loss to go with it
        if self.loss is not None:
            self._prepare_training()
        else:
            self._optimizer.build(self.params.shape[0], self.dtype)

    def count_params(self) -> int:
        return 0 if self.params is None else self.params.shape[0]

    # ---------------------------------------------------------------- compile

    def compile(self, optimizer: str | optimizers.Optimizer | dict = "sgd",
                loss: str | losses.Loss | dict = "mse",
                metrics: Sequence[str | metrics_module.Metric] | None = None) -> None:
        """Choose the optimizer, the loss and the metrics fit and evaluate report.

        The parameters come in Keras's order: ``compile(optimizer, loss, metrics)``.

        Parameters
        ----------
        optimizer : str, Optimizer or dict
            "sgd", "adam", an Optimizer, or a serialized one.
        loss : str, Loss or dict
            A name (``pynn.losses.names()``), a Loss, or a serialized Loss.
        metrics : list of str or Metric, optional
            Names from ``pynn.metrics.names()`` ("accuracy" is resolved from
            the loss); AUC, precision and recall accumulate over each epoch
            (fit) or over the whole data (evaluate).

        Warns
        -----
        UserWarning
            When a cross-entropy's ``from_logits`` does not match the last
            layer's activation (``warn_from_logits_mistakes``).
        """
        _check_compile_order(optimizer, loss)
        loss = losses.get(loss)
        opt = optimizers.get(optimizer)
        self._check_owner(opt)
        metrics = metrics_module.get_list(metrics, loss,
                                          self.output_dim if self.layers else None,
                                          accumulates=True)
        opt.check_dtype(self.dtype)
        warn_from_logits_mistakes(self.layers, loss)
        # nothing changes until every argument has been accepted, nor while
        # a compiled call uses the buffers this may free
        with self._lock:
            self.loss, self._optimizer, self.metrics = loss, opt, metrics
            opt.owner = weakref.ref(self)
            if self.built:
                self._prepare_training()

    def _check_owner(self, opt):
        # an optimizer's state (velocities, moments, step count) belongs to
        # the one model it trains: sharing one would mix two models' state
        owner = opt.owner
        if owner is not None and owner() not in (None, self):
            raise ValueError(f"this optimizer ({opt!r}) already trains another model; "
                             f"give each model an optimizer of its own")

    def _prepare_training(self):
        # Hand the loss and the optimizer (state buffer, settings) to the
        # compiled network; called when either changes and before training.
        opt = self._optimizer
        opt.owner = weakref.ref(self)
        opt.build(self.params.shape[0], self.dtype)
        self._prepared = (opt, opt.state)
        self._custom = custom.uses_numpy_path(self)
        self._net.set_optimizer(opt.code, opt.state, self._n_kernel_params)
        self._sync_variables()
        if losses.is_custom(self.loss):
            # no compiled loss: every step, loss and metric runs through
            # pynn.custom, which reads the targets and outputs itself
            self._metrics_compiled = False
            return
        self._net.set_loss(self._loss_code, self.fused,
                           self.loss.target_width(self.output_dim), self.loss.kernel_param)
        # accuracies run inside the compiled epoch when all metrics can
        act = self.loss.output_activation(self.layers[-1].activation)
        kernels = [m.kernel(act) for m in self.metrics]
        self._metrics_compiled = all(k is not None for k in kernels)
        if self._metrics_compiled:
            self._net.set_metrics([k[0] for k in kernels], [k[1] for k in kernels])
        else:
            self._net.set_metrics([], [])

    def variables(self) -> tuple[np.ndarray, np.ndarray]:
        """What the update covers: (rows, regularizers), rows (n_vars, 3)
        [start, stop, decayed] of the flat buffer, the trainable layers'
        kernels in layer order then their biases (the buffer's order), and
        each row's [l1, l2] (see ``Network.set_variables``)."""
        rows = []
        for layer, (w_off, b_off, n_in) in zip(self.layers, self._offsets):
            if self._layer_trainable(layer):
                rows += [((start, stop, decayed), self._penalty_factors(layer, part))
                         for start, stop, decayed, part in layer.variables(n_in, w_off, b_off)]
        rows.sort()             # the buffer's order: kernels, then biases, gammas, betas
        return (np.array([r for r, _ in rows], dtype=np.intp).reshape(-1, 3),
                np.array([p for _, p in rows], dtype=np.float64).reshape(-1, 2))

    def _penalty_factors(self, layer, part):
        # (l1, l2) of the layer's kernel or bias regularizer; a factor the
        # model's dtype cannot hold as the kernel uses it is refused
        reg = getattr(layer, part + "_regularizer", None)
        if reg is None:
            return (0.0, 0.0)
        l1, l2 = reg.factors()
        with np.errstate(over="ignore"):
            held = np.array([l1, 2 * l2]).astype(self.dtype)
        if not np.all(np.isfinite(held)) or (l1 and not held[0]) or (l2 and not held[1]):
            raise ValueError(f"{part}_regularizer={reg!r} of layer {layer.name or layer!r}: "
                             f"its factors overflow or vanish in "
                             f"{np.dtype(self.dtype).name}")
        return (l1, l2)

    def _sync_variables(self):
        # the trainable layers' ranges (and regularizers) to the network:
        # at compile, and at the first step after a layer's flag changed
        rows, reg = self.variables()
        self._net.set_variables(rows, reg)
        # a frozen BatchNormalization runs in inference mode, as Keras's
        self._net.set_inference_layers([layer.kind == KIND_BATCH_NORM
                                        and not self._layer_trainable(layer)
                                        for layer in self.layers])
        self._variables_revision = settings_revision()

    @property
    def _loss_code(self):
        return self.loss.kernel_code(self.layers[-1].activation)

    def batch_metrics(self, y: np.ndarray, values: np.ndarray) -> None:
        """``values[j]`` <- metric j on the batch (targets ``y``) whose
        outputs the last compiled pass left in the network's work buffer."""
        # logits when the loss reads logits, which the metrics allow for
        out = self._custom_output if self._custom else self._net.last_output(y.shape[0])
        act = self.loss.output_activation(self.layers[-1].activation)
        for j, metric in enumerate(self.metrics):
            if metric.stateful:
                # accumulated across batches: ``metric_result`` reads it
                metric.update_from_outputs(y, out, act)
                values[j] = np.nan
            else:
                values[j] = metric.from_outputs(y, out, act)

    def reset_metrics(self) -> None:
        """Start the stateful metrics (AUC, precision, recall) afresh: fit
        calls it before each epoch, evaluate before its first chunk."""
        for metric in self.metrics:
            if metric.stateful:
                metric.reset_state()

    @staticmethod
    def metric_result(metric, values: np.ndarray, sizes: np.ndarray) -> float:
        """A metric over batches: a stateful metric's ``result()``, or the
        mean of the per-batch ``values`` weighted by the batches' ``sizes``."""
        if metric.stateful:
            return float(metric.result())
        return float(values @ sizes) / float(sizes.sum())

    def check_compiled(self, what: str) -> None:
        """RuntimeError unless compile() was called (``what``: the caller's name)."""
        if self.loss is None:
            raise RuntimeError(f"call compile() before {what}()")

    @property
    def numpy_path(self) -> bool:
        """True when a custom loss or activation makes the model train, predict
        and evaluate through ``pynn.custom`` (NumPy, one batch at a time)
        rather than the compiled network."""
        return self._custom

    @property
    def fused(self) -> bool:
        """True when the loss reads the last layer's logits (one fused kernel)."""
        return self.loss.fuses_with(self.layers[-1].activation)

    # ------------------------------------------------------------- validation

    def check_x(self, x: npt.ArrayLike, argname: str = "x", finite: bool = True) -> np.ndarray:
        """``x`` as a C-contiguous (n_samples, input_dim) array of the model's
        dtype, checked (and NaN/inf refused when ``finite``); builds an
        unbuilt model for its width.  A scipy.sparse ``x`` becomes
        ``pynn._sparse.CSRRows`` (never dense whole), its values always
        checked finite."""
        if not self.layers:
            raise ValueError("the model has no layers")
        sparse = _sparse.is_rows(x)     # scipy.sparse: CSRRows, checked finite
        if sparse:
            x = _sparse.as_rows(x, self.dtype, argname)
        else:
            x = as_float_array(x, self.dtype, argname)
        if x.ndim == 1 and self.input_dim == 1:
            x = x.reshape(-1, 1)
        if x.ndim != 2:
            raise ValueError(f"{argname} must be 2-D (n_samples, n_features), "
                             f"got an array of shape {x.shape}")
        if x.shape[0] == 0:
            raise ValueError(f"{argname} is empty (shape {x.shape})")
        if not self.built:
            self.build(x.shape[1])
        if x.shape[1] != self.input_dim:
            raise ValueError(f"{argname} has {x.shape[1]} features, the model "
                             f"expects {self.input_dim}")
        if finite and not sparse and not self._net.all_finite(x):
            check_finite(x, argname)    # counts them, and raises
        return x

    def accepts(self, x: object, y: object) -> bool:
        """True when ``x`` and ``y`` can go to ``step`` as they are, with no
        check in Python: the model is compiled and built, its loss reads any
        real targets, and the compiled network's fused test
        (``Network.accepts``: exact NumPy arrays of the model's dtype,
        C-contiguous, of its widths, one non-zero number of rows) passes.
        Otherwise ``check_xy`` converts or refuses them."""
        loss, net = self.loss, self._net
        return (loss is not None and net is not None and loss.accepts_any_real_targets
                and net.accepts(x, y))

    def check_xy(self, x: npt.ArrayLike, y: npt.ArrayLike,
                 finite: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """``check_x(x)`` and ``y`` as the loss's targets for it, same number of rows."""
        x = self.check_x(x, finite=finite)
        y = self.loss.prepare_targets(y, self.output_dim, self.dtype, "y", finite=finite)
        if y.shape[0] != x.shape[0]:
            raise ValueError(f"x and y have different numbers of samples: "
                             f"{x.shape[0]} and {y.shape[0]}")
        return x, y

    def check_weights(self, sample_weight: npt.ArrayLike | None, class_weight: dict | None,
                      y: np.ndarray) -> np.ndarray | None:
        """Per-sample weights for the prepared targets ``y``, or None.

        ``sample_weight``: (n_samples,) finite values >= 0.  ``class_weight``:
        a dict class index -> weight, read from the labels (the integer
        label, the 0/1 target of a one-output binary model, or the argmax of
        a one-hot row), for the cross-entropy losses only; with both, the
        two multiply (as Keras).  Returns a C-contiguous array of the
        model's dtype, never one of the user's arrays.
        """
        if sample_weight is None and class_weight is None:
            return None
        n = y.shape[0]
        weights = np.ones(n, dtype=np.float64)
        if class_weight is not None:
            if not isinstance(class_weight, dict):
                raise TypeError(f"class_weight must be a dict class -> weight, got "
                                f"{type(class_weight).__name__}")
            if not isinstance(self.loss, (losses.BinaryCrossentropy,
                                          losses.CategoricalCrossentropy,
                                          losses.SparseCategoricalCrossentropy)):
                raise ValueError(f"class_weight applies to classification losses, "
                                 f"not to {self.loss.name!r}")
            classes = (y[:, 0] if y.shape[1] == 1 else np.argmax(y, axis=1)).astype(np.intp)
            n_classes = max(self.output_dim, 2)
            table = np.ones(n_classes)
            for label, value in class_weight.items():
                if isinstance(label, bool) or not isinstance(label, (int, np.integer)) \
                        or not 0 <= label < n_classes:
                    raise ValueError(f"class_weight's keys must be class indices in "
                                     f"[0, {n_classes}), got {label!r}")
                w = float(value)
                if not (np.isfinite(w) and w >= 0):
                    raise ValueError(f"class_weight[{label!r}] must be finite and >= 0, "
                                     f"got {value!r}")
                table[label] = w
            weights *= table[classes]
        if sample_weight is not None:
            sw = as_float_array(sample_weight, np.float64, "sample_weight")
            if sw.ndim != 1 or sw.shape[0] != n:
                raise ValueError(f"sample_weight must be a 1-D array of {n} values (one "
                                 f"per sample), got shape {sw.shape}")
            if not np.all(np.isfinite(sw)) or np.any(sw < 0):
                raise ValueError("sample_weight must hold finite values >= 0, got "
                                 f"{sw[~(np.isfinite(sw) & (sw >= 0))][0]!r}")
            weights *= sw
        return np.ascontiguousarray(weights, dtype=self.dtype)

    # ---------------------------------------------------------- step interface

    def _sync_optimizer(self):
        # The optimizer may have changed since it was handed to the compiled
        # network: replaced (model.optimizer = ...), its state array swapped,
        # or momentum turned on (SGD then needs a state it did not have).
        opt = self._optimizer
        held_opt, held_state = self._prepared or (None, None)
        if held_opt is not opt or held_state is not opt.state or \
                opt.state.shape[0] != opt.state_size(self.params.shape[0]):
            self._prepare_training()
        elif self._variables_revision != settings_revision():
            self._sync_variables()
        self._synced_revision = opt.revision

    def push_settings(self) -> None:
        """Hand the optimizer's settings for the next update to the compiled
        network (``Optimizer.kernel_settings``), after ``refresh_optimizer``'s
        checks when a setting, the optimizer, its state or a layer's flag
        changed since the last call.  Hold the model's lock around it."""
        opt = self._optimizer
        prepared = self._prepared
        if prepared is None or prepared[0] is not opt or prepared[1] is not opt.state \
                or opt.revision != self._synced_revision \
                or self._variables_revision != settings_revision():
            self._sync_optimizer()
        self._net.set_hyper(opt.kernel_settings())

    def step(self, x: np.ndarray, y: np.ndarray, update: bool = True,
             sample_weight: np.ndarray | None = None) -> tuple[float, bool]:
        """One compiled forward and backward pass on a batch, and the update.

        ``sample_weight``: None, or the (n,) array ``check_weights`` returns.

        ``x`` and ``y`` are C-contiguous arrays of the model's dtype, as
        ``check_xy`` returns them; the compiled step checks their values for
        NaN and inf before it computes anything (a ValueError names them).

        Returns
        -------
        loss : float
            The batch loss, before the update.
        applied : bool
            False when the loss, a gradient or an updated value would not be
            finite: nothing was changed.  An applied update advances
            ``optimizer.iterations`` (see ``counting``).
        """
        if update is True and sample_weight is None:
            loss = self._hot_step(x, y)
            if loss is not None:
                return loss, True
        with self._lock:
            if self._custom:
                self._sync_optimizer()
                loss, applied, self._custom_output = custom.step(self, x, y, update,
                                                                 sample_weight)
                return loss, applied
            done = self._compiled_step(x, y, update, sample_weight)
            if done[1] and update and sample_weight is None and self._can_step_hot(x, y):
                self._keep_hot_step()
            return done

    def _hot_step(self, x: object, y: object) -> float | None:
        """The loss of ``step(x, y)`` run by the ``pynn._dense.HotStep`` the
        last applied step left, or None, with nothing changed, when there
        is none or it refuses (anything it cannot vouch for: see
        ``step_as_given``); a HotStep that refuses or raises is dropped, and
        the caller's checked path decides."""
        hot = self._hot
        if hot is None:
            return None
        loss = None
        try:
            loss = hot(x, y)
        finally:
            if loss is None:        # refused or raised: dropped either way
                self._hot = None
        return loss

    def step_as_given(self, x: object, y: object) -> tuple[float, bool] | None:
        """``step(x, y)`` on the arrays as they are, when ``accepts(x, y)`` and
        the step needs nothing more (no metric to compute from its outputs,
        no custom loss or activation); None, with nothing run, otherwise.

        train_on_batch's fast path: one lock, one fused check, one compiled
        call.  An applied step leaves a ``pynn._dense.HotStep`` in
        ``_hot``, which train_on_batch and ``step`` call first
        (``_hot_step``): it makes the same checks against what this call
        saw, in C, and steps.
        """
        with self._lock:
            if not self._can_step_hot(x, y):
                return None
            done = self._compiled_step(x, y, True, None)
            if done[1]:
                self._keep_hot_step()
            return done

    def _can_step_hot(self, x: object, y: object) -> bool:
        # True when a step on x and y needs nothing the compiled step does
        # not do: a loss and a network, no metric, no custom part, targets
        # of any real value, arrays the network takes as they are
        loss, net = self.loss, self._net
        return not (loss is None or net is None or self._custom or self.metrics
                    or not loss.accepts_any_real_targets or not net.accepts(x, y))

    def _keep_hot_step(self):
        # After an applied step that _can_step_hot allowed, with no sample
        # weights, the lock held: the HotStep that repeats its checks, once
        # the model is trained.  It compares what the network was handed,
        # not what the optimizer and the layers hold now: a change made by
        # another thread during the step then sends the next one the
        # checked way.
        if self._trained:
            opt = self._optimizer
            self._hot = _dense.HotStep(self._net, self, opt, self._lock, settings_counter(),
                                       self._variables_revision, self._prepared[1],
                                       self._synced_revision, opt.scheduled)

    def _compiled_step(self, x, y, update, sample_weight):
        # counting() and push_settings() written out: the hot path of
        # train_on_batch (the lock held)
        net, opt = self._net, self._optimizer
        prepared = self._prepared
        if prepared is None or prepared[0] is not opt or prepared[1] is not opt.state \
                or opt.revision != self._synced_revision \
                or self._variables_revision != settings_revision():
            self._sync_optimizer()
        net.iterations = start = opt.iterations
        try:
            net.set_hyper(opt.kernel_settings())
            loss, status = net.step(x, y, update, sample_weight)
        finally:
            opt.iterations = net.iterations
        if not self._trained and opt.iterations > start:
            self._trained = True        # set once: no __setattr__ per step
        if status != STATUS_OK:
            raise_for_inputs(status, x, y)
        return loss, status == STATUS_OK

    @contextlib.contextmanager
    def counting(self):
        """Yield the compiled network with the optimizer's step count handed
        to it, and take the count back however the block ends.

        The one place the count of applied updates moves: the compiled
        loops advance ``engine.iterations`` right after each update they
        apply (inside the call, so that an interrupt seen as a call returns
        never leaves ``optimizer.iterations`` short of the updates applied).
        Hold the model's lock around it.
        """
        net, opt = self._net, self._optimizer
        net.iterations = start = opt.iterations
        try:
            yield net
        finally:
            opt.iterations = net.iterations
            if opt.iterations > start and not self._trained:
                self._trained = True        # set once: no __setattr__ per step

    def gradients(self, x: npt.ArrayLike, y: npt.ArrayLike,
                  sample_weight: npt.ArrayLike | None = None
                  ) -> tuple[float, list[np.ndarray]]:
        """Loss and gradients on a batch, without updating anything
        (``sample_weight`` as in ``check_weights``).

        As a training step computes them: BatchNormalization with the
        batch's statistics (a frozen one with its moving statistics), Dropout with the masks the next step will draw
        (the generators are set back afterwards, so two calls give the same
        gradients and the next step draws those masks again).

        Returns
        -------
        loss : float
        grads : list of arrays, in ``get_weights()`` order (dW1, db1, ...),
            the trainable values' only (not BatchNormalization's moving statistics)
        """
        self.check_compiled("gradients")
        with self._lock:
            x, y = self.check_xy(x, y, finite=False)
            w = self.check_weights(sample_weight, None, y)
            generators = self.generators
            states = [g.get_state() for g in generators]
            try:
                loss, finite = self.step(x, y, update=False, sample_weight=w)
            finally:
                for g, state in zip(generators, states):
                    g.set_state(state)
            if not finite:
                raise DivergenceError(f"the loss or a gradient is not finite (loss={loss!r})")
            grads = [g.copy() for layer in self.layers for g in layer.grad_buffers()]
        return float(loss), grads

    # ------------------------------------------------------------- inference

    def predict(self, x: npt.ArrayLike, batch_size: int | None = None,
                verbose: int | str = "auto") -> np.ndarray:
        """Outputs of the network for ``x``.

        Parameters
        ----------
        x : (n_samples, n_features) array
        batch_size : int, optional
            Rows per compiled call (4096 by default); does not change the result.
        verbose : "auto", 0, 1 or 2
            Accepted as Keras's; predict prints nothing whatever its value.

        Returns
        -------
        (n_samples, n_outputs) array of the model's dtype
            Probabilities when the last layer is sigmoid / softmax.
        """
        # "is None", not "or": batch_size=0 is an error, not the default
        chunk = check_positive_int(_PREDICT_CHUNK if batch_size is None else batch_size,
                                   "batch_size")
        check_verbose(verbose)
        with self._lock:
            x = self.check_x(x)
            n = x.shape[0]
            if self._custom:
                return custom.predict(self, x, min(_sparse.chunk_rows(x, chunk), n))
            out = np.empty((n, self.output_dim), dtype=self.dtype)
            self._net.predict(x, out, min(_sparse.chunk_rows(x, chunk), n))
        return out

    def evaluate(self, x: npt.ArrayLike, y: npt.ArrayLike, batch_size: int | None = None,
                 verbose: int | str = "auto", sample_weight: npt.ArrayLike | None = None,
                 return_dict: bool = False) -> float | list[float] | dict[str, float]:
        """Loss and metrics on (x, y), returned as Keras 3 returns them.

        Parameters
        ----------
        x : (n_samples, n_features) array
        y : (n_samples, n_outputs) array, or (n_samples,) labels / one output
        batch_size : int, optional
            Rows per compiled call; does not change the result.
        verbose : "auto", 0, 1 or 2
            Accepted as Keras's; evaluate prints nothing whatever its value.
        sample_weight : (n_samples,) array, optional
            Weights of the loss: ``sum_i w_i l_i / n_samples`` (Keras's
            "sum_over_batch_size"); metrics stay unweighted, as Keras's
            ``metrics`` (not ``weighted_metrics``).
        return_dict : bool
            Return ``{"loss": ..., metric name: ...}`` instead of the values.

        Returns
        -------
        float, list of float, or dict
            Means over the samples: the loss alone (a float) when no metrics
            were compiled, ``[loss, *metrics]`` in ``metrics_names`` order
            when some were, the dict with ``return_dict=True``.
        """
        self.check_compiled("evaluate")
        return_dict = check_bool(return_dict, "return_dict")
        # "is None", not "or": batch_size=0 is an error, not the default
        chunk = check_positive_int(_PREDICT_CHUNK if batch_size is None else batch_size,
                                   "batch_size")
        check_verbose(verbose)
        with self._lock:
            x, y = self.check_xy(x, y)
            w = self.check_weights(sample_weight, None, y)
            self.refresh_optimizer()        # the regularizers the loss adds, as they are now
            # the kernel takes a C integer; sparse x densifies chunk by chunk
            chunk = min(_sparse.chunk_rows(x, chunk), x.shape[0])
            if not self.metrics:
                return shape_scores({"loss": self.mean_loss(x, y, chunk, w)}, return_dict)
            n = x.shape[0]
            starts = range(0, n, chunk)
            sizes = np.array([min(chunk, n - start) for start in starts], dtype=np.float64)
            chunk_losses = np.empty(len(starts))
            values = np.empty((len(self.metrics), len(starts)))
            self.reset_metrics()
            for k, start in enumerate(starts):
                xs, ys = x[start:start + chunk], y[start:start + chunk]
                ws = None if w is None else w[start:start + chunk]
                chunk_losses[k] = self.mean_loss(xs, ys, chunk, ws)
                self.batch_metrics(ys, values[:, k])
            scores = {"loss": float(chunk_losses @ sizes) / n}
            scores.update((m.name, self.metric_result(m, values[j], sizes))
                          for j, m in enumerate(self.metrics))
        return shape_scores(scores, return_dict)

    def mean_loss(self, x: np.ndarray, y: np.ndarray, chunk: int | None = None,
                  sample_weight: np.ndarray | None = None) -> float:
        """The loss over (x, y) as ``check_xy`` returns them, ``chunk`` rows
        per pass (all by default), without gradients; the last pass's
        outputs are left for ``batch_metrics``."""
        chunk = x.shape[0] if chunk is None else chunk
        with self._lock:
            if self._custom:
                loss, self._custom_output = custom.mean_loss(self, x, y, chunk,
                                                             sample_weight)
                return loss
            return self._net.loss(x, y, chunk, sample_weight)

    def predict_on_batch(self, x: npt.ArrayLike) -> np.ndarray:
        """``predict`` on one batch, as Keras's: the outputs for ``x``."""
        return self.predict(x)

    def __call__(self, x: npt.ArrayLike) -> np.ndarray:
        """``model(x)``: the outputs for one batch (``predict_on_batch``)."""
        return self.predict(x)

    def test_on_batch(self, x: npt.ArrayLike, y: npt.ArrayLike,
                      sample_weight: npt.ArrayLike | None = None,
                      return_dict: bool = False) -> float | list[float] | dict[str, float]:
        """Loss and metrics on one batch (``sample_weight`` as in ``evaluate``),
        returned as ``evaluate`` returns them: a float, a list, or a dict with
        ``return_dict=True``."""
        return self.evaluate(x, y, sample_weight=sample_weight, return_dict=return_dict)

    @property
    def metrics_names(self) -> list[str]:
        """``["loss", *metric names]``: the order of evaluate's values."""
        return ["loss"] + [m.name for m in self.metrics]

    def get_layer(self, name: str | None = None, index: int | None = None) -> Dense:
        """The layer called ``name``, or at position ``index`` (one of the two)."""
        if (name is None) == (index is None):
            raise ValueError(f"give the layer's name or its index, not both nor neither "
                             f"(got name={name!r}, index={index!r})")
        if index is not None:
            if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
                raise TypeError(f"index must be an int, got {index!r}")
            if not -len(self.layers) <= index < len(self.layers):
                raise ValueError(f"index {index} is out of range for "
                                 f"{len(self.layers)} layers")
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"no layer named {name!r}; the layers' names: "
                         f"{[layer.name for layer in self.layers]}")

    # ---------------------------------------------------------------- weights

    def get_weights(self) -> list[np.ndarray]:
        """Copies of the parameters.

        Returns
        -------
        list of arrays
            ``[W1, b1, W2, b2, ...]``, each ``W`` of shape (units, inputs)
            and each ``b`` of shape (units,); a normalisation layer gives its
            ``gamma`` and ``beta`` (units,) (those it has), BatchNormalization
            then its ``moving_mean`` and ``moving_variance``, as Keras; Dropout
            gives nothing.
        """
        if not self.built:
            raise RuntimeError("the model is not built: give the first layer an "
                               "input_dim or call fit/predict first")
        out = []
        with self._lock:                # never a half-updated set from a fit in progress
            for layer in self.layers:
                out += [a.copy() for a in layer.buffers()]
        return out

    def set_weights(self, weights: Iterable[npt.ArrayLike]) -> None:
        """Copy parameters into the model.

        Parameters
        ----------
        weights : sequence of arrays
            ``[W1, b1, W2, b2, ...]`` with the shapes ``get_weights`` returns;
            all are checked (shape, finiteness) before any is copied.
        """
        if not self.built:
            raise RuntimeError("the model is not built")
        if isinstance(weights, np.ndarray):
            raise TypeError(f"weights must be a list of arrays (as get_weights returns), "
                            f"got one array of shape {weights.shape}")
        try:
            weights = list(weights)
        except TypeError:
            raise TypeError(f"weights must be a list of arrays (as get_weights returns), "
                            f"got {weights!r:.80}") from None
        # the buffers may not be replaced between the checks and the copy
        with self._lock:
            if not self.built:
                raise RuntimeError("the model is not built")
            targets = [a for layer in self.layers for a in layer.buffers()]
            if len(weights) != len(targets):
                raise ValueError(f"weights must hold {len(targets)} arrays, "
                                 f"got {len(weights)}")
            checked = []
            for i, (w, t) in enumerate(zip(weights, targets)):
                w = as_float_array(w, self.dtype, f"weights[{i}]")
                if w.shape != t.shape:
                    raise ValueError(f"weights[{i}] must have shape {t.shape}, "
                                     f"got {w.shape}")
                check_finite(w, f"weights[{i}]")
                checked.append(w)
            start = 0
            for layer in self.layers:
                count = len(layer.buffers())
                layer.check_values(checked[start:start + count])
                start += count
            for w, t in zip(checked, targets):
                t[...] = w

    # ----------------------------------------------------------------- config

    def get_config(self) -> dict[str, Any]:
        """The architecture, dtype, seed, loss, optimizer settings and metrics,
        JSON-ready; ``from_config`` makes the model again (with fresh weights).

        Raises
        ------
        TypeError
            When the loss, an activation or a metric is a custom callable:
            pynn saves settings by name, never code (``get_weights`` keeps
            the weights).
        """
        custom_parts = [f"layer {i}'s activation {activations.name_of(layer.activation)!r}"
                        for i, layer in enumerate(self.layers)
                        if activations.is_custom(layer.activation)]
        if self.loss is not None and losses.is_custom(self.loss):
            custom_parts.append(f"the loss {self.loss.name!r}")
        custom_parts += [f"the metric {m.name!r}" for m in self.metrics if m.custom]
        if custom_parts:
            raise TypeError(f"cannot describe or save a model with custom callables "
                            f"({', '.join(custom_parts)}): pynn saves settings by name, "
                            f"never code; keep the weights with get_weights(), and "
                            f"rebuild the model with the callables to set_weights() them")
        return {
            "dtype": np.dtype(self.dtype).name,
            "seed": self.seed,
            "input_dim": None if self.input_dim is None else int(self.input_dim),
            "layers": [self._layer_config(layer) for layer in self.layers],
            "loss": losses.serialize(self.loss) if self.loss is not None else None,
            "optimizer": (optimizers.serialize(self._optimizer)
                          if self._optimizer is not None else None),
            "metrics": [metric.name for metric in self.metrics],
            # written only when False: older files and readers see no change
            **({} if self._trainable else {"trainable": False}),
        }

    @staticmethod
    def _layer_config(layer):
        if not isinstance(layer, Dense):
            config = layer.get_config()
            del config["input_dim"]            # the model's, given once
            return config
        # the settings pynn added later written only when not the default,
        # so that older files and readers see no change
        spec = {"units": layer.units, "activation": layer.activation, "name": layer.name}
        if not layer.trainable:
            spec["trainable"] = False
        for part in ("kernel_regularizer", "bias_regularizer"):
            if getattr(layer, part) is not None:
                spec[part] = regularizers.serialize(getattr(layer, part))
        return spec

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Model:
        """The model ``get_config`` describes, built once and compiled if it was.

        Raises
        ------
        TypeError, ValueError
            When a setting is refused (the message names it).
        """
        specs = config.get("layers")
        if not isinstance(specs, list) or not all(isinstance(s, dict) for s in specs):
            raise ValueError(f"layers must be a list of dicts, got {specs!r:.80}")
        layers = [layer_from_config(spec, config.get("input_dim") if i == 0 else None)
                  for i, spec in enumerate(specs)]
        model = cls(layers, dtype=config.get("dtype"), seed=config.get("seed"))
        # the model's own flag, the layers' kept as saved (setting
        # model.trainable would overwrite theirs)
        model._trainable = check_bool(config.get("trainable", True), "trainable")
        if config.get("loss") is not None:
            model.compile(loss=losses.get(config["loss"]),
                          optimizer=optimizers.get(config["optimizer"]),
                          metrics=config.get("metrics", []))    # absent from older files
        return model

    # ---------------------------------------------------------------- summary

    def summary(self, print_fn: Callable[[str], object] | None = print) -> str | None:
        """The layers, their output shapes and parameter counts, as Keras
        prints them.

        Parameters
        ----------
        print_fn : callable or None
            Called with the table; None returns it instead of printing.
        """
        text = summary_table(self)
        if print_fn is None:
            return text
        print_fn(text)
        return None

    def __repr__(self):
        return f"{type(self).__name__}({self.layers!r}, dtype={np.dtype(self.dtype).name!r})"
