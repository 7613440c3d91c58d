"""fit: the epoch loop over a runner, with callbacks, logs and divergence.

The model core (pynn.core) holds the model; this module trains it through
the model's step interface, holding the model's lock for the whole fit so
that other threads see it before or after, never in between.
"""
from __future__ import annotations

import time
import warnings

import numpy as np
import numpy.typing as npt

from .. import data
from .._validation import check_bool
from ..callbacks import History, ProgressLogger
from ..core import shape_scores
from ..errors import DivergenceError
from . import mpi, runners
from .arguments import check_fit_arguments
from .callback_list import CallbackList


def fit(model, x, y=None, epochs=1, batch_size=None, shuffle=True, validation_data=None,
        validation_split=0.0, callbacks=None, verbose="auto", initial_epoch=0, target_loss=None,
        on_divergence="raise", steps_per_epoch=None, comm=None, sample_weight=None,
        class_weight=None):
    """Train ``model`` with mini-batch gradient descent: ``Sequential.fit``
    (its docstring describes each argument)."""
    model.check_compiled("fit")
    if comm is not None:
        if model.numpy_path:
            raise ValueError("a data-parallel fit (comm=...) runs the compiled step: a "
                             "model with a custom loss or activation cannot take it")
        stateful = [m.name for m in model.metrics if m.stateful]
        if stateful:
            # each rank would hold the state of its own shard only
            raise ValueError(f"a data-parallel fit (comm=...) cannot report the metrics "
                             f"{stateful}: they accumulate over the whole data, which "
                             f"no rank sees; compile without them, or evaluate them "
                             f"after fit on one rank")
    args = check_fit_arguments(epochs, batch_size, shuffle, validation_split, callbacks,
                               verbose, initial_epoch, target_loss, on_divergence)
    verbose, callbacks, batch_size = args.verbose, args.callbacks, args.batch_size
    with model.lock, mpi.session(model, comm) as dist:
        x, y = data.prepare(model, x, y, steps_per_epoch, args.validation_split)
        weights = None
        if sample_weight is not None or class_weight is not None:
            if isinstance(x, data.Batches) or dist is not None:
                raise ValueError("sample_weight and class_weight need x and y as arrays, "
                                 "not a stream of batches or a data-parallel fit")
            weights = model.check_weights(sample_weight, class_weight, y)
        x, y, val = validation_sets(model, x, y, validation_data, args.validation_split)
        if weights is not None:
            weights = weights[:x.shape[0]]  # validation_split holds out the end
        if dist is not None:
            verbose, callbacks = dist.start(x, val, batch_size,
                                            args.epochs - args.initial_epoch,
                                            verbose, callbacks)
        model.history = History()
        # progress first (it prints the logs as fit made them), History
        # last (it records what the callbacks may have added), as Keras
        cbs = ([ProgressLogger(verbose)] if verbose else []) + callbacks + [model.history]
        # a batch larger than the data is the whole data, as in Keras
        # (and no buffer is ever sized by the unclamped value)
        if not isinstance(x, data.Stream):
            batch_size = min(batch_size, x.shape[0])
        n, n_batches, sizes = data.plan(x, batch_size)
        cbl = CallbackList(cbs, model, {
            "epochs": args.epochs, "steps": n_batches, "samples": n,
            "batch_size": batch_size, "verbose": verbose, "do_validation": val is not None})
        model.stop_training = False
        cbl.on_train_begin({})
        batch_losses = np.empty(n_batches, dtype=np.float64)
        batch_metrics = (np.empty((len(model.metrics), n_batches))
                         if model.metrics else None)
        logs = {}
        for epoch in range(args.initial_epoch, args.epochs):
            cbl.on_epoch_begin(epoch, {})
            model.reset_metrics()
            order = model.generator.permutation(n) if args.shuffle and n else None
            done, diverged = fit_epoch(model, x, y, order, batch_size, sizes, batch_losses,
                                       batch_metrics, cbl, dist, weights)
            if diverged:
                loss = float(batch_losses[done])
                cbl.on_divergence(epoch, {"batch": done, "loss": loss})
                message = (f"the loss, a gradient or the updated weights became "
                           f"non-finite at epoch {epoch + 1}, batch {done + 1} "
                           f"(loss={loss!r}); that update was not "
                           f"applied, the weights are those of the last finite step")
                if args.on_divergence == "raise":
                    raise DivergenceError(message)
                warnings.warn(f"training stopped: {message}", RuntimeWarning, stacklevel=3)
                break
            logs = epoch_logs(model, done, sizes, batch_losses, batch_metrics, val, dist)
            if args.target_loss is not None and logs["loss"] < args.target_loss:
                model.stop_training = True
            cbl.on_epoch_end(epoch, logs)
            if model.stop_training:
                break
        cbl.on_train_end(logs)
    return model.history


def epoch_logs(model, done, sizes, batch_losses, batch_metrics, val, dist):
    """The logs of an epoch whose first ``done`` batches ran."""
    n_seen = float(sizes[:done].sum())
    logs = {"loss": float(batch_losses[:done] @ sizes[:done]) / n_seen}
    for j, metric in enumerate(model.metrics):
        logs[metric.name] = model.metric_result(metric, batch_metrics[j, :done], sizes[:done])
    if val is not None:
        logs.update({"val_" + k: v for k, v in model.evaluate(*val, return_dict=True).items()})
    if dist is not None:
        logs = dist.mean_logs(logs, n_seen, val)
    opt = model.optimizer
    logs["learning_rate"] = opt.learning_rate_at(max(opt.iterations - 1, 0))
    return logs


def validation_sets(model, x, y, validation_data, validation_split):
    """(x_train, y_train, (x_val, y_val) or None), all checked."""
    if validation_data is not None:
        if validation_split:
            raise ValueError("give validation_data or validation_split, not both "
                             f"(got validation_split={validation_split!r})")
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise ValueError("validation_data must be a pair (x_val, y_val), got "
                             f"{type(validation_data).__name__} of length "
                             f"{len(validation_data) if hasattr(validation_data, '__len__') else '?'}")
        xv = model.check_x(validation_data[0], "validation_data[0]")
        yv = model.loss.prepare_targets(validation_data[1], model.output_dim, model.dtype,
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


def fit_epoch(model, x, y, order, batch_size, sizes, losses, metric_values, cbl, dist,
              sample_weight=None):
    """Run one epoch's batches; returns (batches done, diverged).

    When no callback hears of batches the whole epoch is one runner call.
    Otherwise batches run in chunks: of one batch for callbacks that want
    every batch, or sized to take about the callbacks' ``batch_period``
    each (the live progress bar).
    """
    n_batches = sizes.shape[0]

    def run(first, stop):
        return runners.run_batches(model, x, y, order, batch_size, first, stop, losses,
                                   metric_values, dist, sample_weight)

    if not cbl.needs_batches:
        done = run(0, n_batches)
        return done, done < n_batches
    first, chunk = 0, 1
    while first < n_batches:
        stop = min(n_batches, first + chunk)
        start_time = time.perf_counter()
        done = run(first, stop)
        if done < stop:
            return done, True
        cbl.on_batches_end(first, stop, sizes, losses)
        if not cbl.every_batch:
            per_batch = (time.perf_counter() - start_time) / (stop - first)
            chunk = max(1, int(cbl.period / max(per_batch, 1e-9)))
        first = stop
        if model.stop_training:
            break
    return first, False


def train_on_batch(model, x: npt.ArrayLike, y: npt.ArrayLike,
                   sample_weight: npt.ArrayLike | None = None,
                   class_weight: dict | None = None,
                   return_dict: bool = False) -> float | list[float] | dict[str, float]:
    """One forward pass, backward pass and update on a batch.

    ``sample_weight`` and ``class_weight`` as in ``fit``.

    Returns
    -------
    float, list of float, or dict
        As Keras 3's: the batch loss alone (a float) when no metrics were
        compiled, ``[loss, *metrics]`` in ``metrics_names`` order when
        some were, the dict with ``return_dict=True``; all computed on
        the outputs before the update (stateful metrics on this batch
        alone).
    """
    # The hot path: arrays ready as they are, no weights, no metrics: one
    # locked call with one fused check (the compiled step checks the values
    # for NaN and inf itself)
    done = (model.step_as_given(x, y)
            if sample_weight is None and class_weight is None and return_dict is False
            else None)
    if done is not None:
        if done[1]:
            return done[0]
        loss, applied = done
        scores = None
    else:
        if return_dict is not False:
            return_dict = check_bool(return_dict, "return_dict")
        model.check_compiled("train_on_batch")
        with model.lock:
            if not model.accepts(x, y):
                x, y = model.check_xy(x, y, finite=False)
            weights = (None if sample_weight is None and class_weight is None
                       else model.check_weights(sample_weight, class_weight, y))
            loss, applied = model.step(x, y, True, weights)
            scores = ({"loss": float(loss), **batch_scores(model, y)}
                      if applied and model.metrics else None)
    if not applied:
        raise DivergenceError(
            f"the loss, a gradient or the updated weights would not be finite "
            f"(loss={loss!r}); the update was not applied, the weights are those "
            f"of the last finite step")
    if scores is None:
        return {"loss": float(loss)} if return_dict else float(loss)
    return shape_scores(scores, return_dict)


def batch_scores(model, y):
    """The metrics on the batch (targets ``y``) the last step ran: its outputs
    before the update, as Keras reports them; stateful ones of that batch alone."""
    values = np.empty(len(model.metrics))
    model.reset_metrics()
    model.batch_metrics(y, values)
    one = np.ones(1)
    return {metric.name: model.metric_result(metric, values[j:j + 1], one)
            for j, metric in enumerate(model.metrics)}
