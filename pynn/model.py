"""Sequential: a stack of Dense layers over one flat parameter buffer.

Every parameter of the model lives in ``params`` (kernels first, then
biases), every gradient in ``grads`` with the same layout, and the
optimizer's state in a third buffer of that layout: a training step is one
compiled call (forward, loss, backward, update), and an all-reduce of the
gradients would be one call over one buffer.
"""
from __future__ import annotations

import os
import threading
import weakref
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from . import _codes, _dense, _threads, data, distributed, initializers, losses, optimizers
from . import metrics as metrics_module
from ._validation import (as_dtype, as_float_array, check_finite,
                          check_nonneg_int, check_positive_int, check_real)
from .callbacks import Callback, History, ProgressLogger
from .errors import DivergenceError
from .layers import Dense

_PREDICT_CHUNK = 4096
# what Network.step reports (csrc/codes.pxd)
_STATUS_OK, _STATUS_NONFINITE, _STATUS_X_NONFINITE, _STATUS_Y_NONFINITE = (
    int(_codes.Status[k]) for k in ("OK", "NONFINITE", "X_NONFINITE", "Y_NONFINITE"))


class Sequential:
    """A feed-forward network of Dense layers.

    Parameters
    ----------
    layers : list of Dense, optional
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
    """

    def __init__(self, layers: Sequence[Dense] | None = None, dtype: npt.DTypeLike = "float32",
                 seed: int | None = None, n_threads: int | None = None) -> None:
        self.dtype = as_dtype(dtype)
        # high: the kernels hand it to the BLAS as a C int
        self.n_threads = check_positive_int(n_threads, "n_threads", allow_none=True,
                                            high=2**31 - 1)
        self.seed = seed
        self._generator = initializers.make_generator(seed)
        self.layers = []
        self.loss = None
        self.optimizer = None
        self.metrics = []
        self.params = self.grads = None
        self._net = None
        self._prepared = None               # (optimizer, its state) the network holds
        self._lock = threading.RLock()
        self._trained = False
        self.stop_training = False          # a callback may set it to end fit
        self.history = None                 # the History of the last fit
        for layer in layers or []:
            self.add(layer)

    _dist = None    # pynn.distributed.Session while fit(comm=...) runs

    # ------------------------------------------------------------------ build

    def add(self, layer: Dense) -> None:
        """Append a Dense layer (before training starts)."""
        if not isinstance(layer, Dense):
            raise TypeError(f"layer must be a pynn.Dense, got {layer!r}")
        if self._trained:
            raise RuntimeError("cannot add a layer to a model that has been trained")
        self.layers.append(layer)
        if self.layers[0].input_dim is not None:
            self.build(self.layers[0].input_dim)

    @property
    def generator(self):
        """The model's random generator (pynn's PCG64): it drew the initial
        weights and draws the shuffling order.  ``generator.get_state()`` and
        ``set_state()`` save and restore it, to resume a run exactly."""
        return self._generator

    @property
    def built(self):
        return self.params is not None

    @property
    def input_dim(self):
        return self.layers[0].input_dim if self.layers else None

    @property
    def output_dim(self):
        return self.layers[-1].units

    def build(self, input_dim: int) -> None:
        """Allocate the flat buffers for ``input_dim`` inputs and draw the weights.

        Rebuilding (after ``add``) redraws every weight from a generator
        reset to the model's seed, so the result does not depend on how the
        layers were added.
        """
        input_dim = check_positive_int(input_dim, "input_dim")
        if not self.layers:
            raise ValueError("the model has no layers")
        sizes = [input_dim] + [layer.units for layer in self.layers]
        n_weights = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
        n_params = n_weights + sum(sizes[1:])
        self.params = np.zeros(n_params, dtype=self.dtype)
        self.grads = np.zeros(n_params, dtype=self.dtype)
        self._n_kernel_params = n_weights
        layout = np.zeros((len(self.layers), 5), dtype=np.intp)
        w_off, b_off = 0, n_weights
        self._generator = initializers.make_generator(self.seed)
        for i, layer in enumerate(self.layers):
            n_in, n_out = sizes[i], sizes[i + 1]
            layout[i] = (n_in, n_out, w_off, b_off, layer.activation_code)
            layer._bind(n_in, self.params, self.grads, w_off, b_off)
            layer.initialize(self._generator)
            w_off += n_in * n_out
            b_off += n_out
        self._net = _dense.Network(self.params, self.grads, layout)
        self._net.set_thread_policy(_threads.local_thread_setter(), self.n_threads or 0,
                                    _threads.MIN_PARALLEL_FLOPS)
        if self.optimizer is not None:
            self._prepare_training()

    def count_params(self) -> int:
        return 0 if self.params is None else self.params.shape[0]

    # ---------------------------------------------------------------- compile

    def compile(self, loss: str | losses.Loss | dict = "mse",
                optimizer: str | optimizers.Optimizer | dict = "sgd",
                metrics: Sequence[str] | None = None) -> None:
        """Choose the loss, the optimizer and the metrics fit and evaluate report.

        Parameters
        ----------
        loss : str, Loss or dict
            A name (``pynn.losses.names()``), a Loss, or a serialized Loss.
        optimizer : str, Optimizer or dict
            "sgd", "adam", an Optimizer, or a serialized one.
        metrics : list of str, optional
            Names from ``pynn.metrics.names()``, or "accuracy".
        """
        loss = losses.get(loss)
        opt = optimizers.get(optimizer)
        # an optimizer's state (velocities, moments, step count) belongs to
        # the one model it trains: sharing one would mix two models' state
        owner = getattr(opt, "_owner", None)
        if owner is not None and owner() not in (None, self):
            raise ValueError(f"this optimizer ({opt!r}) already trains another model; "
                             f"give each model an optimizer of its own")
        metrics = metrics_module.get_list(metrics, loss,
                                          self.output_dim if self.layers else None)
        # nothing changes until every argument has been accepted
        self.loss, self.optimizer, self.metrics = loss, opt, metrics
        opt._owner = weakref.ref(self)
        if self.built:
            self._prepare_training()

    def _prepare_training(self):
        # Hand the loss and the optimizer (state buffer, settings) to the
        # compiled network; called when either changes and before training.
        opt = self.optimizer
        opt.build(self.params.shape[0], self.dtype)
        opt._owner = weakref.ref(self)
        self._prepared = (opt, opt.state)
        self._net.set_loss(self._loss_code, self._fused,
                           self.loss.target_width(self.output_dim))
        self._net.set_optimizer(opt.code, opt.state, self._n_kernel_params)
        # accuracies run inside the compiled epoch when all metrics can
        act = self.loss.output_activation(self.layers[-1].activation)
        kernels = [m.kernel(act) for m in self.metrics]
        self._metrics_compiled = all(k is not None for k in kernels)
        if self._metrics_compiled:
            self._net.set_metrics([k[0] for k in kernels], [k[1] for k in kernels])
        else:
            self._net.set_metrics([], [])

    @property
    def _loss_code(self):
        return self.loss.kernel_code(self.layers[-1].activation)

    def _batch_metrics(self, y, values):
        # values[j] <- metric j on the batch whose output the last compiled
        # pass left in the network's work buffer: logits when the loss reads
        # logits, which the metrics allow for.
        out = self._net.last_output(y.shape[0])
        act = self.loss.output_activation(self.layers[-1].activation)
        for j, metric in enumerate(self.metrics):
            values[j] = metric.from_outputs(y, out, act)

    def _check_compiled(self, what):
        if self.loss is None:
            raise RuntimeError(f"call compile() before {what}()")

    @property
    def _fused(self):
        return self.loss.fuses_with(self.layers[-1].activation)

    # ------------------------------------------------------------- validation

    def _check_x(self, x: npt.ArrayLike, argname: str = "x", finite: bool = True) -> np.ndarray:
        if not self.layers:
            raise ValueError("the model has no layers")
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
        if finite:
            check_finite(x, argname)
        return x

    def _check_xy(self, x: npt.ArrayLike, y: npt.ArrayLike,
                  finite: bool = True) -> tuple[np.ndarray, np.ndarray]:
        x = self._check_x(x, finite=finite)
        y = self.loss.prepare_targets(y, self.output_dim, self.dtype, "y", finite=finite)
        if y.shape[0] != x.shape[0]:
            raise ValueError(f"x and y have different numbers of samples: "
                             f"{x.shape[0]} and {y.shape[0]}")
        return x, y

    # --------------------------------------------------------------- training

    def _sync_optimizer(self):
        # The optimizer may have changed since it was handed to the compiled
        # network: replaced (model.optimizer = ...), its state array swapped,
        # or momentum turned on (SGD then needs a state it did not have).
        opt = self.optimizer
        held_opt, held_state = self._prepared or (None, None)
        if held_opt is not opt or held_state is not opt.state or \
                opt.state.shape[0] != opt.state_size(self.params.shape[0]):
            self._prepare_training()

    def _step(self, x, y, update=True):
        # x and y are C-contiguous arrays of the model's dtype; the compiled
        # step checks them for NaN and inf before it computes anything.
        self._sync_optimizer()
        opt = self.optimizer
        self._net.set_hyper(opt.hyper())
        # the compiled step counts the update it applies; the count is read
        # back even when an interrupt lands as the call returns
        self._net.iterations = opt.iterations
        try:
            loss, status = self._net.step(x, y, update)
        finally:
            opt.iterations = self._net.iterations
        if status == _STATUS_X_NONFINITE:
            check_finite(x, "x")
        if status == _STATUS_Y_NONFINITE:
            check_finite(y, "y")
        if update and status == _STATUS_OK:
            self._trained = True
        return loss, status == _STATUS_OK

    def train_on_batch(self, x: npt.ArrayLike, y: npt.ArrayLike) -> float:
        """One forward pass, backward pass and update on a batch.

        Returns
        -------
        float
            The batch loss, computed before the update.
        """
        self._check_compiled("train_on_batch")
        with self._lock:
            # The hot path: arrays ready as they are skip the Python checks
            # (the compiled step checks their values for NaN and inf itself)
            if not (self.loss.accepts_any_real_targets and self._net is not None
                    and self._net.accepts(x, y)):
                x, y = self._check_xy(x, y, finite=False)
            loss, finite = self._step(x, y)
        if not finite:
            raise DivergenceError(
                f"the loss, a gradient or the updated weights would not be finite "
                f"(loss={loss!r}); the update was not applied, the weights are those "
                f"of the last finite step")
        return float(loss)

    def gradients(self, x: npt.ArrayLike,
                  y: npt.ArrayLike) -> tuple[float, list[np.ndarray]]:
        """Loss and gradients on a batch, without updating anything.

        Returns
        -------
        loss : float
        grads : list of arrays, in ``get_weights()`` order (dW1, db1, ...)
        """
        self._check_compiled("gradients")
        with self._lock:
            x, y = self._check_xy(x, y, finite=False)
            loss, finite = self._step(x, y, update=False)
            if not finite:
                raise DivergenceError(f"the loss or a gradient is not finite (loss={loss!r})")
            grads = []
            for layer in self.layers:
                grads += [layer.dW.copy(), layer.db.copy()]
        return float(loss), grads

    def _train_batches(self, x, y, order, batch_size, first, stop, losses,
                       metric_values=None):
        """Train on batches ``first``..``stop-1`` of an epoch.

        Batch ``k`` holds samples ``order[k*batch_size:(k+1)*batch_size]`` (or
        that slice of x and y itself when ``order`` is None); the last batch may
        be smaller.  Each batch's loss goes to ``losses[k]``, and, when
        ``metric_values`` (n_metrics, n_batches) is given, each metric on the
        batch's outputs before the update to ``metric_values[:, k]``.  Stops at
        the first batch whose loss or gradient is not finite, without applying
        it, and returns the index of that batch (``stop`` when all ran).
        """
        if self._dist is not None or isinstance(x, data.Batches):
            # one compiled step per batch: an all-reduce between the
            # gradient and the update, or batches converted/drawn in Python
            return data.train_batches(self, x, y, order, batch_size, first, stop,
                                      losses, metric_values)
        self._sync_optimizer()
        opt = self.optimizer
        in_c = metric_values is None or self._metrics_compiled
        # the compiled loop counts the updates it applies (Network.iterations);
        # the count is read back even when an interrupt lands as a call returns
        net = self._net
        net.iterations = start = opt.iterations
        try:
            if in_c and not opt.scheduled:
                # the whole range in one compiled call
                net.set_hyper(opt.hyper())
                done = net.train_batches(x, y, order, batch_size, first, stop, losses,
                                         metric_values)
            else:
                # a schedule is evaluated for each step, and metrics without a
                # compiled twin read each batch's outputs: one call per batch
                done = first
                while done < stop:
                    opt.iterations = net.iterations     # the schedule's step
                    net.set_hyper(opt.hyper())
                    if net.train_batches(x, y, order, batch_size, done, done + 1,
                                         losses, metric_values if in_c else None) == done:
                        break
                    if not in_c:
                        rows = slice(done * batch_size, (done + 1) * batch_size)
                        ys = y[rows] if order is None else y[order[rows]]
                        self._batch_metrics(ys, metric_values[:, done])
                    done += 1
        finally:
            opt.iterations = net.iterations
            self._trained = self._trained or net.iterations > start
        return done

    def fit(self, x: npt.ArrayLike, y: npt.ArrayLike | None = None, epochs: int = 1,
            batch_size: int = 32, shuffle: bool = True,
            validation_data: tuple[npt.ArrayLike, npt.ArrayLike] | None = None,
            validation_split: float = 0.0, callbacks: Sequence[Callback] | None = None,
            verbose: int = 1, initial_epoch: int = 0, target_loss: float | None = None,
            on_divergence: str = "raise", steps_per_epoch: int | None = None,
            comm: Any = None) -> History:
        """Train with mini-batch gradient descent.

        Calling fit again continues from where training stopped: weights,
        optimizer state (velocities, moments, step count) and the shuffling
        generator carry over.

        Parameters
        ----------
        x : (n_samples, n_features) array, or iterable of batches
            An ``np.memmap`` is read batch by batch, never copied whole
            (see pynn.data).  Without y: an iterable of ``(x_batch,
            y_batch)`` pairs, or a callable returning one per epoch, read as
            it yields (``shuffle`` does not apply).
        y : (n_samples, n_outputs) array (or 1-D for one output)
        epochs : int >= 0
            Index of the epoch to stop at (as Keras): training runs epochs
            ``initial_epoch`` .. ``epochs - 1``.
        batch_size : int > 0
            The last batch of an epoch may be smaller.  A batch_size larger
            than the number of samples means one batch of all of them (as
            Keras; silently).
        shuffle : bool
            Reshuffle the samples before each epoch (drawn from the model's
            generator, so a seeded model trains reproducibly).
        validation_data : (x_val, y_val), optional
            Evaluated after each epoch; logged as ``val_loss`` (and
            ``val_`` + each metric).
        validation_split : float in [0, 1)
            Hold out this fraction of the samples, taken from the END of x
            and y before any shuffling (as Keras), as validation data.
            Not with ``validation_data``.
        callbacks : list of pynn.callbacks.Callback, optional
        verbose : 0, 1 or 2
            0 silent, 1 a progress bar per epoch, 2 one line per epoch.
        initial_epoch : int >= 0
            Epoch to start counting from, to resume a previous fit.
        target_loss : float, optional
            Stop after the first epoch whose training loss is below it.
        on_divergence : "raise" or "stop"
            When a loss or gradient becomes NaN or infinite (the step is
            then not applied, so the weights stay those of the last finite
            step): raise DivergenceError, or stop with a RuntimeWarning and
            return the history of the complete epochs.
        steps_per_epoch : int, optional
            Batches per epoch when x is an iterable of batches without a
            ``len()``; an epoch that gets fewer raises ValueError.
        comm : mpi4py communicator, optional
            Train data-parallel with every rank of ``comm`` (each passing
            its own shard as x, y); see pynn.distributed.

        Returns
        -------
        History
            ``history.history`` maps "loss" (the mean batch loss of each
            epoch, weighted by batch size and taken before each update),
            each compiled metric (the same running mean, on each batch's
            outputs before its update, as Keras reports them),
            "learning_rate" (the rate of the epoch's last update), and the
            "val_" twins of the loss and metrics to per-epoch lists.  Also
            kept as ``model.history``.
        """
        self._check_compiled("fit")
        epochs = check_nonneg_int(epochs, "epochs")
        initial_epoch = check_nonneg_int(initial_epoch, "initial_epoch")
        if initial_epoch > epochs:
            raise ValueError(f"initial_epoch ({initial_epoch}) must not exceed "
                             f"epochs ({epochs})")
        batch_size = check_positive_int(batch_size, "batch_size")
        if not isinstance(shuffle, (bool, np.bool_)):
            raise TypeError(f"shuffle must be True or False, got {shuffle!r}")
        if isinstance(verbose, (bool, np.bool_)) or verbose not in (0, 1, 2):
            raise ValueError(f"verbose must be 0, 1 or 2, got {verbose!r}")
        if target_loss is not None:
            target_loss = check_real(target_loss, "target_loss")
        if on_divergence not in ("raise", "stop"):
            raise ValueError(f"on_divergence must be 'raise' or 'stop', "
                             f"got {on_divergence!r}")
        validation_split = check_real(validation_split, "validation_split",
                                      low=0, high=1, high_open=True)
        if isinstance(callbacks, Callback):
            raise TypeError(f"callbacks must be a list of Callback instances, got the "
                            f"single callback {callbacks!r}: wrap it in a list")
        try:
            callbacks = list(callbacks or [])
        except TypeError:
            raise TypeError(f"callbacks must be a list of Callback instances, "
                            f"got {callbacks!r}") from None
        for cb in callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks must be pynn.callbacks.Callback instances, "
                                f"got {cb!r}")
        with self._lock, distributed.session(self, comm) as dist:
            x, y = data.prepare(self, x, y, steps_per_epoch, validation_split)
            x, y, val = self._validation_sets(x, y, validation_data, validation_split)
            if dist is not None:
                verbose, callbacks = dist.start(x, val, batch_size, epochs - initial_epoch,
                                                verbose, callbacks)
            progress = ProgressLogger(verbose) if verbose else None
            self.history = History()
            # progress first (it prints the logs as fit made them), History
            # last (it records what the callbacks may have added), as Keras
            cbs = ([progress] if progress else []) + callbacks + [self.history]
            # a batch larger than the data is the whole data, as in Keras
            # (and no buffer is ever sized by the unclamped value)
            if not isinstance(x, data.Stream):
                batch_size = min(batch_size, x.shape[0])
            n, n_batches, sizes = data.plan(x, batch_size)
            params = {"epochs": epochs, "steps": n_batches, "samples": n,
                      "batch_size": batch_size, "verbose": verbose,
                      "do_validation": val is not None}
            for cb in cbs:
                cb.set_model(self)
                cb.set_params(params)
            self.stop_training = False
            for cb in cbs:
                cb.on_train_begin({})
            batch_losses = np.empty(n_batches, dtype=np.float64)
            batch_metrics = (np.empty((len(self.metrics), n_batches))
                             if self.metrics else None)
            batch_cbs = [cb for cb in callbacks if cb.wants_batches]
            logs = {}
            for epoch in range(initial_epoch, epochs):
                for cb in cbs:
                    cb.on_epoch_begin(epoch, {})
                order = self._generator.permutation(n) if shuffle and n else None
                done, diverged = self._fit_epoch(x, y, order, batch_size, sizes,
                                                 batch_losses, batch_metrics,
                                                 batch_cbs, progress)
                if diverged:
                    if progress:
                        progress.interrupt()
                    message = (f"the loss, a gradient or the updated weights became "
                               f"non-finite at epoch {epoch + 1}, batch {done + 1} "
                               f"(loss={float(batch_losses[done])!r}); that update was not "
                               f"applied, the weights are those of the last finite step")
                    if on_divergence == "raise":
                        raise DivergenceError(message)
                    warnings.warn(f"training stopped: {message}", RuntimeWarning,
                                  stacklevel=2)
                    break
                n_seen = float(sizes[:done].sum())
                logs = {"loss": float(batch_losses[:done] @ sizes[:done]) / n_seen}
                for j, metric in enumerate(self.metrics):
                    logs[metric.name] = float(batch_metrics[j, :done] @ sizes[:done]) / n_seen
                if val is not None:
                    logs.update({"val_" + k: v for k, v in self.evaluate(*val).items()})
                if dist is not None:
                    logs = dist.mean_logs(logs, n_seen, val)
                opt = self.optimizer
                logs["learning_rate"] = opt.learning_rate_at(max(opt.iterations - 1, 0))
                if target_loss is not None and logs["loss"] < target_loss:
                    self.stop_training = True
                for cb in cbs:
                    cb.on_epoch_end(epoch, logs)
                if self.stop_training:
                    break
            for cb in cbs:
                cb.on_train_end(logs)
        return self.history

    def _validation_sets(self, x, y, validation_data, validation_split):
        """(x_train, y_train, (x_val, y_val) or None), all checked."""
        if validation_data is not None:
            if validation_split:
                raise ValueError("give validation_data or validation_split, not both "
                                 f"(got validation_split={validation_split!r})")
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError("validation_data must be a pair (x_val, y_val), got "
                                 f"{type(validation_data).__name__} of length "
                                 f"{len(validation_data) if hasattr(validation_data, '__len__') else '?'}")
            xv = self._check_x(validation_data[0], "validation_data[0]")
            yv = self.loss.prepare_targets(validation_data[1], self.output_dim, self.dtype,
                                           "validation_data[1]")
            if xv.shape[0] != yv.shape[0]:
                raise ValueError(f"validation_data's x and y have different numbers of "
                                 f"samples: {xv.shape[0]} and {yv.shape[0]}")
            return x, y, (xv, yv)
        if not validation_split:
            return x, y, None
        split_at = int(x.shape[0] * (1.0 - validation_split))
        if split_at == 0 or split_at == x.shape[0]:
            raise ValueError(f"validation_split={validation_split!r} of {x.shape[0]} "
                             f"samples leaves {split_at} for training and "
                             f"{x.shape[0] - split_at} for validation; both need some")
        return x[:split_at], y[:split_at], (x[split_at:], y[split_at:])

    def _fit_epoch(self, x, y, order, batch_size, sizes, losses, metric_values,
                   batch_cbs, progress):
        """Run one epoch's batches; returns (batches done, diverged).

        Without per-batch callbacks or a live progress bar the whole epoch
        is one ``_train_batches`` call.  Otherwise batches run in chunks:
        of one batch for ``on_batch_end`` callbacks, or sized to take about
        ``ProgressLogger.REFRESH_SECONDS`` each for the bar.
        """
        n_batches = sizes.shape[0]
        live = progress is not None and progress.live
        if not batch_cbs and not live:
            done = self._train_batches(x, y, order, batch_size, 0, n_batches, losses,
                                       metric_values)
            return done, done < n_batches
        first, chunk = 0, 1
        while first < n_batches:
            stop = min(n_batches, first + chunk)
            start_time = time.perf_counter()
            done = self._train_batches(x, y, order, batch_size, first, stop, losses,
                                       metric_values)
            if done < stop:
                return done, True
            for k in range(first, stop):
                for cb in batch_cbs:
                    cb.on_batch_end(k, {"batch": k, "size": int(sizes[k]),
                                        "loss": float(losses[k])})
            if live:
                n_done = int(sizes[:stop].sum())
                progress.update(stop, n_done, float(losses[:stop] @ sizes[:stop]) / n_done)
                if not batch_cbs:
                    per_batch = (time.perf_counter() - start_time) / (stop - first)
                    chunk = max(1, int(ProgressLogger.REFRESH_SECONDS / max(per_batch, 1e-9)))
            first = stop
            if self.stop_training:
                break
        return first, False

    # ------------------------------------------------------------- inference

    def predict(self, x: npt.ArrayLike, batch_size: int | None = None) -> np.ndarray:
        """Outputs of the network for ``x``.

        Parameters
        ----------
        x : (n_samples, n_features) array
        batch_size : int, optional
            Rows per compiled call (4096 by default); does not change the result.

        Returns
        -------
        (n_samples, n_outputs) array of the model's dtype
            Probabilities when the last layer is sigmoid / softmax.
        """
        # "is None", not "or": batch_size=0 is an error, not the default
        chunk = check_positive_int(_PREDICT_CHUNK if batch_size is None else batch_size,
                                   "batch_size")
        with self._lock:
            x = self._check_x(x)
            n = x.shape[0]
            out = np.empty((n, self.output_dim), dtype=self.dtype)
            self._net.predict(x, out, min(chunk, n))
        return out

    def evaluate(self, x: npt.ArrayLike, y: npt.ArrayLike,
                 batch_size: int | None = None) -> dict[str, float]:
        """Loss and metrics on (x, y).

        Parameters
        ----------
        x : (n_samples, n_features) array
        y : (n_samples, n_outputs) array, or (n_samples,) labels / one output
        batch_size : int, optional
            Rows per compiled call; does not change the result.

        Returns
        -------
        dict
            ``{"loss": ..., metric name: ...}``, means over the samples.
        """
        self._check_compiled("evaluate")
        # "is None", not "or": batch_size=0 is an error, not the default
        chunk = check_positive_int(_PREDICT_CHUNK if batch_size is None else batch_size,
                                   "batch_size")
        with self._lock:
            x, y = self._check_xy(x, y)
            chunk = min(chunk, x.shape[0])  # the kernel takes a C integer
            if not self.metrics:
                return {"loss": self._net.loss(x, y, chunk)}
            n = x.shape[0]
            total = 0.0
            totals = np.zeros(len(self.metrics))
            values = np.empty(len(self.metrics))
            for start in range(0, n, chunk):
                xs, ys = x[start:start + chunk], y[start:start + chunk]
                total += xs.shape[0] * self._net.loss(xs, ys, chunk)
                self._batch_metrics(ys, values)
                totals += xs.shape[0] * values
        scores = {"loss": total / n}
        scores.update((m.name, float(t) / n) for m, t in zip(self.metrics, totals))
        return scores

    # ---------------------------------------------------------------- weights

    def get_weights(self) -> list[np.ndarray]:
        """Copies of the parameters.

        Returns
        -------
        list of arrays
            ``[W1, b1, W2, b2, ...]``, each ``W`` of shape (units, inputs)
            and each ``b`` of shape (units,).
        """
        if not self.built:
            raise RuntimeError("the model is not built: give the first layer an "
                               "input_dim or call fit/predict first")
        out = []
        with self._lock:                # never a half-updated set from a fit in progress
            for layer in self.layers:
                out += [layer.W.copy(), layer.b.copy()]
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
        targets = []
        for layer in self.layers:
            targets += [layer.W, layer.b]
        if isinstance(weights, np.ndarray):
            raise TypeError(f"weights must be a list of arrays (as get_weights returns), "
                            f"got one array of shape {weights.shape}")
        try:
            weights = list(weights)
        except TypeError:
            raise TypeError(f"weights must be a list of arrays (as get_weights returns), "
                            f"got {weights!r:.80}") from None
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
        with self._lock:
            for w, t in zip(checked, targets):
                t[...] = w

    # ------------------------------------------------------ saving, summary

    def save(self, path: str | os.PathLike[str], include_optimizer: bool = True) -> str:
        """Save architecture, weights, loss, optimizer (and its state) to one
        file; read it back with ``pynn.load``.  See pynn.io.save."""
        from . import io
        with self._lock:    # weights and optimizer state of one moment, not of a fit mid-step
            return io.save(self, path, include_optimizer=include_optimizer)

    def summary(self, print_fn: Callable[[str], object] | None = print) -> str | None:
        """The layers, their output shapes and parameter counts, as Keras
        prints them.

        Parameters
        ----------
        print_fn : callable or None
            Called with the table; None returns it instead of printing.
        """
        from .summary import summary_table
        text = summary_table(self)
        if print_fn is None:
            return text
        print_fn(text)
        return None

    def __repr__(self):
        return f"Sequential({self.layers!r}, dtype={np.dtype(self.dtype).name!r})"
