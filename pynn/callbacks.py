"""Training callbacks: hooks ``fit`` calls around epochs and batches.

``fit`` calls, in this order::

    on_train_begin(logs={})
    for each epoch:
        on_epoch_begin(epoch, logs={})
        on_batch_end(batch, logs={"batch", "size", "loss"})   # each batch
        on_epoch_end(epoch, logs)    # logs: loss, val_loss, learning_rate, ...
    on_train_end(logs)               # logs of the last epoch

and ``on_divergence(epoch, logs={"batch", "loss"})`` when a step's loss or
gradient is not finite (before fit raises DivergenceError or stops).

Epochs and batches are counted from 0.  ``on_batch_end`` costs a return
to Python after every batch, so ``fit`` only makes it when some callback
overrides it; otherwise an epoch's batches run in one compiled pass.

A callback with a ``batch_period`` (seconds) instead of ``wants_batches``
hears ``on_batch_end`` about that often, after the last batch of a chunk,
with ``samples_seen`` and ``mean_loss`` (the epoch's so far) in its logs:
the live progress bar works so.

A callback reaches the model through ``self.model`` (and can stop training
by setting ``self.model.stop_training = True``) and fit's settings through
``self.params`` (epochs, steps, samples, batch_size, verbose, do_validation).
"""
from __future__ import annotations

import csv
import inspect
import math
import os
import sys
import time

from collections.abc import Callable
from typing import Any

import numpy as np

from ._validation import check_bool, check_nonneg_int, check_real


class Callback:
    """Base class: override the hooks you need; each receives ``logs``, a dict."""

    batch_period = None     # seconds between coarse on_batch_end calls (see above)

    def __init__(self):
        self.model = None
        self.params = {}

    def set_model(self, model: Any) -> None:
        self.model = model

    def set_params(self, params: dict) -> None:
        self.params = params

    def on_train_begin(self, logs: dict | None = None) -> None:
        pass

    def on_train_end(self, logs: dict | None = None) -> None:
        pass

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        pass

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        pass

    def on_batch_end(self, batch: int, logs: dict | None = None) -> None:
        pass

    def on_divergence(self, epoch: int, logs: dict | None = None) -> None:
        pass

    @property
    def wants_batches(self):
        """True when ``on_batch_end`` does something (fit then calls it)."""
        return type(self).on_batch_end is not Callback.on_batch_end


class LambdaCallback(Callback):
    """A callback made of functions, each optional::

        LambdaCallback(on_epoch_end=lambda epoch, logs: print(epoch, logs["loss"]))

    Parameters
    ----------
    on_train_begin, on_train_end : callable(logs)
    on_epoch_begin, on_epoch_end : callable(epoch, logs)
    on_batch_end : callable(batch, logs)
    """

    def __init__(self, on_train_begin: Callable[[dict], object] | None = None,
                 on_train_end: Callable[[dict], object] | None = None,
                 on_epoch_begin: Callable[[int, dict], object] | None = None,
                 on_epoch_end: Callable[[int, dict], object] | None = None,
                 on_batch_end: Callable[[int, dict], object] | None = None) -> None:
        super().__init__()
        hooks = dict(on_train_begin=on_train_begin, on_train_end=on_train_end,
                     on_epoch_begin=on_epoch_begin, on_epoch_end=on_epoch_end,
                     on_batch_end=on_batch_end)
        for name, fn in hooks.items():
            if fn is not None and not callable(fn):
                raise TypeError(f"{name} must be callable or None, got {fn!r}")
        self._hooks = hooks

    def on_train_begin(self, logs=None):
        if self._hooks["on_train_begin"]:
            self._hooks["on_train_begin"](logs)

    def on_train_end(self, logs=None):
        if self._hooks["on_train_end"]:
            self._hooks["on_train_end"](logs)

    def on_epoch_begin(self, epoch, logs=None):
        if self._hooks["on_epoch_begin"]:
            self._hooks["on_epoch_begin"](epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        if self._hooks["on_epoch_end"]:
            self._hooks["on_epoch_end"](epoch, logs)

    def on_batch_end(self, batch, logs=None):
        if self._hooks["on_batch_end"]:
            self._hooks["on_batch_end"](batch, logs)

    @property
    def wants_batches(self):
        return self._hooks["on_batch_end"] is not None


class History(Callback):
    """What fit reports, epoch by epoch (``fit`` returns it).

    Attributes
    ----------
    history : dict
        Each logged quantity ("loss", "val_loss", "learning_rate", metrics)
        mapped to its list of per-epoch values.
    epoch : list of int
        The epoch indices those values belong to.
    """

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.record(epoch, logs or {})

    def record(self, epoch, logs):
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)

    def plot(self, path, keys=None, log_scale=True):
        """Draw the loss curves (training and validation) to an image file.

        Needs matplotlib (``pip install "pynn[plot]"``).  Does not touch
        pyplot's global state: safe inside notebooks and scripts alike.

        Parameters
        ----------
        path : str or path-like
            Where to write; the format follows the extension (".png", ...).
        keys : list of str, optional
            The logged quantities to draw; default "loss" and "val_loss".
        log_scale : bool
            A logarithmic loss axis (when every value is positive).

        Returns
        -------
        path
        """
        try:
            from matplotlib.figure import Figure
        except ImportError:
            raise ImportError('History.plot needs matplotlib: pip install "pynn[plot]" '
                              '(or pip install matplotlib)') from None
        keys = [k for k in (keys or ("loss", "val_loss")) if k in self.history]
        if not keys:
            raise ValueError(f"nothing to plot: the history holds {sorted(self.history)}")
        fig = Figure(figsize=(6, 4))
        ax = fig.add_subplot()
        epochs = [e + 1 for e in self.epoch]
        for key in keys:
            ax.plot(epochs, self.history[key], label=key, marker="." if len(epochs) < 30 else None)
        if log_scale and all(v > 0 for k in keys for v in self.history[k]):
            ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax.legend()
        ax.grid(True, alpha=0.3)
        fig.tight_layout()
        fig.savefig(path)
        return path

    def __repr__(self):
        return f"History(epochs={len(self.epoch)}, keys={sorted(self.history)})"


# ------------------------------------------------------- monitoring a value


def _check_mode(mode, monitor):
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode == "auto":
        name = monitor[4:] if monitor.startswith("val_") else monitor
        higher_is_better = ("acc", "auc", "precision", "recall", "f1")
        mode = "max" if any(word in name for word in higher_is_better) else "min"
    return mode


class _Monitor(Callback):
    """Shared by the callbacks that watch one logged value for improvement."""

    def __init__(self, monitor, mode, min_delta):
        super().__init__()
        if not isinstance(monitor, str):
            raise TypeError(f"monitor must be the name of a logged value, got {monitor!r}")
        self.monitor = monitor
        self.mode = _check_mode(mode, monitor)
        self.min_delta = abs(check_real(min_delta, "min_delta"))
        self.best = math.inf if self.mode == "min" else -math.inf

    def _check_available(self):
        # Fail before the first epoch rather than silently never acting.
        if self.monitor.startswith("val_") and not self.params.get("do_validation", True):
            raise ValueError(
                f"{type(self).__name__} monitors {self.monitor!r}, but fit has no "
                f"validation data: pass validation_data or validation_split, or "
                f"monitor='{self.monitor[4:]}'")

    def _current(self, logs):
        if self.monitor not in logs:
            raise ValueError(f"{type(self).__name__} monitors {self.monitor!r}, which "
                             f"is not logged; logged values: {sorted(logs)}")
        return logs[self.monitor]

    def _improved(self, current):
        if self.mode == "min":
            return current < self.best - self.min_delta
        return current > self.best + self.min_delta


class EarlyStopping(_Monitor):
    """Stop training when a logged value stops improving.

    Parameters
    ----------
    monitor : str
        A logged value ("val_loss", "loss", a metric, ...).
    patience : int >= 0
        Training stops after ``patience`` epochs in a row without
        improvement (after the first such epoch when 0), as in Keras.
    min_delta : float
        A change smaller than this is no improvement.
    mode : "auto", "min" or "max"
        Whether lower or higher is better; "auto" takes "max" for accuracy-
        like names and "min" otherwise.
    restore_best_weights : bool
        At the end of training, put back the weights of the best epoch.

    Attributes
    ----------
    stopped_epoch : int or None
        The epoch after which it stopped training (None if it did not).
    best_epoch : int or None
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 0, min_delta: float = 0,
                 mode: str = "auto", restore_best_weights: bool = False) -> None:
        super().__init__(monitor, mode, min_delta)
        self.wait = 0
        self.best_weights = None
        self.best_epoch = self.stopped_epoch = None
        self.patience = check_nonneg_int(patience, "patience")
        self.restore_best_weights = check_bool(restore_best_weights, "restore_best_weights")

    def on_train_begin(self, logs=None):
        self._check_available()
        self.best = math.inf if self.mode == "min" else -math.inf
        self.wait = 0
        self.best_epoch = self.stopped_epoch = None
        self.best_weights = None

    def on_epoch_end(self, epoch, logs=None):
        current = self._current(logs)
        if self._improved(current):
            self.best, self.best_epoch, self.wait = current, epoch, 0
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            return
        self.wait += 1
        if self.wait >= max(self.patience, 1):
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self.best_weights is not None:
            self.model.set_weights(self.best_weights)


class ReduceLROnPlateau(_Monitor):
    """Multiply the learning rate by ``factor`` when a value stops improving.

    Parameters
    ----------
    monitor : str
    factor : float in (0, 1)
    patience : int >= 0
        The rate is reduced after ``patience`` epochs in a row without
        improvement (after each such epoch when 0).
    min_delta : float
    min_lr : float >= 0
        The rate never goes below this.
    mode : "auto", "min" or "max"

    Needs a constant learning rate (a schedule already decides the rate).
    """

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10,
                 min_delta: float = 1e-4, min_lr: float = 0.0, mode: str = "auto") -> None:
        super().__init__(monitor, mode, min_delta)
        self.wait = 0
        self.factor = check_real(factor, "factor", low=0, high=1, low_open=True, high_open=True)
        self.patience = check_nonneg_int(patience, "patience")
        self.min_lr = check_real(min_lr, "min_lr", low=0)

    def on_train_begin(self, logs=None):
        self._check_available()
        if callable(self.model.optimizer.learning_rate):
            raise TypeError("ReduceLROnPlateau needs a constant learning rate, but the "
                            f"optimizer's is a schedule: {self.model.optimizer.learning_rate!r}")
        self.best = math.inf if self.mode == "min" else -math.inf
        self.wait = 0

    def on_epoch_end(self, epoch, logs=None):
        current = self._current(logs)
        if self._improved(current):
            self.best, self.wait = current, 0
            return
        self.wait += 1
        opt = self.model.optimizer
        if self.wait >= max(self.patience, 1) and opt.learning_rate > self.min_lr:
            opt.learning_rate = max(opt.learning_rate * self.factor, self.min_lr)
            self.wait = 0


class ModelCheckpoint(_Monitor):
    """Save the model (``model.save``) after each epoch.

    Parameters
    ----------
    path : str
        May hold ``str.format`` fields filled from the epoch's logs and the
        1-based epoch number: ``"ckpt-{epoch:03d}-{val_loss:.4f}.npz"``.
    monitor : str
        The value compared when ``save_best_only``.
    save_best_only : bool
        Save only when ``monitor`` improved on the best value so far.
    mode : "auto", "min" or "max"
    include_optimizer : bool
        Passed to ``model.save``.
    """

    def __init__(self, path: str | os.PathLike[str], monitor: str = "val_loss",
                 save_best_only: bool = False, mode: str = "auto",
                 include_optimizer: bool = True) -> None:
        super().__init__(monitor, mode, 0.0)
        if not isinstance(path, (str, bytes, os.PathLike)):
            raise TypeError(f"path must be a str or path-like, got {path!r:.80}")
        self.path = os.fsdecode(path)  # bytes paths too: str.format needs text
        self.save_best_only = check_bool(save_best_only, "save_best_only")
        self.include_optimizer = check_bool(include_optimizer, "include_optimizer")

    def on_train_begin(self, logs=None):
        if self.save_best_only:
            self._check_available()

    def on_epoch_end(self, epoch, logs=None):
        if self.save_best_only:
            current = self._current(logs)
            if not self._improved(current):
                return
            self.best = current
        try:
            path = self.path.format(epoch=epoch + 1, **logs)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"ModelCheckpoint path {self.path!r} cannot be filled from "
                             f"epoch and the logs {sorted(logs)}: {exc!r}") from None
        self.model.save(path, include_optimizer=self.include_optimizer)


# ------------------------------------------------- Keras's epoch callbacks


class LearningRateScheduler(Callback):
    """Set the optimizer's learning rate before each epoch, as Keras's.

    Parameters
    ----------
    schedule : callable ``schedule(epoch, learning_rate) -> float``
        ``epoch`` counted from 0, ``learning_rate`` the rate in force; a
        function of the epoch alone, ``schedule(epoch)``, works too.  Must
        return a finite number > 0.
    verbose : int
        > 0 prints the rate each epoch sets.

    Needs a constant learning rate (a schedule of steps already decides the
    rate).  The rate set stays the optimizer's after training.
    """

    def __init__(self, schedule: Callable[..., float], verbose: int = 0) -> None:
        super().__init__()
        if not callable(schedule):
            raise TypeError(f"schedule must be callable, got {schedule!r}")
        self.schedule = schedule
        self.verbose = check_nonneg_int(verbose, "verbose")
        try:
            inspect.signature(schedule).bind(0, 0.1)
            self._takes_rate = True
        except TypeError:
            self._takes_rate = False
        except ValueError:              # no signature to read (some builtins)
            self._takes_rate = True

    def on_train_begin(self, logs=None):
        if callable(self.model.optimizer.learning_rate):
            raise TypeError("LearningRateScheduler needs a constant learning rate, but the "
                            f"optimizer's is a schedule: {self.model.optimizer.learning_rate!r}")

    def on_epoch_begin(self, epoch, logs=None):
        opt = self.model.optimizer
        value = (self.schedule(epoch, opt.learning_rate) if self._takes_rate
                 else self.schedule(epoch))
        try:
            rate = check_real(value, "learning_rate", low=0, low_open=True)
        except (TypeError, ValueError):
            raise ValueError(f"the schedule {self.schedule!r} returned {value!r} for epoch "
                             f"{epoch}; it must return a finite number > 0") from None
        opt.learning_rate = rate
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to "
                  f"{rate}.")


class CSVLogger(Callback):
    """Write each epoch's logs as a row of a CSV file, as Keras's.

    The first row names the columns: ``epoch`` (from 0), then the logged
    values in alphabetical order; a value missing from an epoch's logs is
    written ``NA``.  The file is written and flushed at the end of each
    epoch, so it holds every completed epoch even if training fails.

    Parameters
    ----------
    filename : str or path-like
    separator : str
        One character between values.
    append : bool
        Append to an existing file (without writing the header again if it
        is not empty) instead of overwriting it.
    """

    def __init__(self, filename: str | os.PathLike[str], separator: str = ",",
                 append: bool = False) -> None:
        super().__init__()
        if not isinstance(filename, (str, bytes, os.PathLike)):
            raise TypeError(f"filename must be a str or path-like, got {filename!r:.80}")
        if not isinstance(separator, str) or len(separator) != 1:
            raise ValueError(f"separator must be one character, got {separator!r}")
        if not isinstance(append, (bool, np.bool_)):
            raise TypeError(f"append must be True or False, got {append!r}")
        self.filename = os.fsdecode(filename)
        self.sep = separator
        self.append = bool(append)
        self.keys = None
        self._write_header = True

    def on_train_begin(self, logs=None):
        self.keys = None
        self._write_header = not (self.append and os.path.isfile(self.filename)
                                  and os.path.getsize(self.filename) > 0)
        if not self.append:
            open(self.filename, "w").close()       # fail now, not after an epoch

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
        with open(self.filename, "a", newline="") as f:
            writer = csv.writer(f, delimiter=self.sep, lineterminator="\n")
            if self._write_header:
                writer.writerow(["epoch"] + self.keys)
                self._write_header = False
            writer.writerow([epoch] + [_csv_value(logs.get(key, "NA")) for key in self.keys])


def _csv_value(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, (list, tuple, np.ndarray)):
        return "[" + ", ".join(str(v) for v in np.ravel(value)) + "]"
    return value


class TerminateOnNaN(Callback):
    """Stop training when a logged loss is NaN or infinite, as Keras's.

    pynn never applies a step whose loss or gradient is not finite: at such
    a batch ``fit`` raises DivergenceError, or stops with a warning when
    ``on_divergence="stop"`` (what ``pynn.keras``'s fit passes when this
    callback is among its callbacks, so that a Keras script stops as it
    would under Keras).  This callback checks what reaches the epoch's
    logs, "loss" and "val_loss", and stops training after an epoch where
    either is not finite.
    """

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        for key in ("loss", "val_loss"):
            value = logs.get(key)
            if value is not None and not math.isfinite(value):
                print(f"Epoch {epoch + 1}: invalid {key} {value!r}, terminating training")
                self.model.stop_training = True
                return


# ------------------------------------------------------------ progress bar


def _fmt(value):
    return f"{value:.4g}" if isinstance(value, (float, np.floating)) else str(value)


def _fmt_time(seconds):
    if seconds >= 3600:
        return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"
    if seconds >= 60:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    return f"{seconds:.1f}s" if seconds < 10 else f"{seconds:.0f}s"


class ProgressLogger(Callback):
    """What fit prints: ``verbose=1`` a bar per epoch, ``verbose=2`` one line.

    The bar (batches done/total, samples/s, ETA, running loss) is redrawn
    in place with ``\\r`` at most ``refresh`` times a second, and only when
    sys.stdout is a terminal; elsewhere (a log file, a pipe) each epoch
    prints just its final line.  While the bar is live its ``batch_period``
    asks fit for ``on_batch_end`` between chunks of batches, never per batch
    on its own account.
    """

    REFRESH_SECONDS = 0.1

    def __init__(self, verbose=1):
        super().__init__()
        self.verbose = verbose
        self._live = False
        self._width = 0
        self._start = self._last_draw = 0.0

    @property
    def wants_batches(self):
        return False        # it asks for batches from time to time: batch_period

    @property
    def batch_period(self):
        """REFRESH_SECONDS while a live bar is drawn (fit then reports the
        batches that often), else None."""
        return self.REFRESH_SECONDS if self._live else None

    def on_train_begin(self, logs=None):
        isatty = getattr(sys.stdout, "isatty", None)
        try:
            self._live = self.verbose == 1 and bool(isatty and isatty())
        except ValueError:               # a closed stream
            self._live = False
        self._width = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._start = self._last_draw = time.perf_counter()
        if self.verbose == 1:
            self._write(f"Epoch {epoch + 1}/{self.params['epochs']}\n")

    def on_batch_end(self, batch, logs=None):
        """Redraw the bar (if live and at least REFRESH_SECONDS passed)."""
        if not self._live:
            return
        now = time.perf_counter()
        if now - self._last_draw < self.REFRESH_SECONDS:
            return
        self._last_draw = now
        elapsed = now - self._start
        steps = self.params["steps"]
        batches_done = batch + 1
        eta = elapsed / batches_done * (steps - batches_done)
        self._draw(f"{self._bar(batches_done, steps)} - "
                   f"{logs['samples_seen'] / max(elapsed, 1e-9):,.0f} samples/s - "
                   f"ETA {_fmt_time(eta)} - loss: {_fmt(logs['mean_loss'])}")

    def _bar(self, done, total, width=20):
        filled = width * done // total
        head = ">" if 0 < filled < width else ""
        return (f"{done:{len(str(total))}d}/{total} "
                f"[{'=' * (filled - bool(head))}{head}{'.' * (width - filled)}]")

    def _draw(self, line):
        # Pad with spaces so a shorter line fully covers the previous one.
        self._write("\r" + line.ljust(self._width))
        self._width = len(line)

    def _write(self, text):
        sys.stdout.write(text)
        sys.stdout.flush()

    def on_epoch_end(self, epoch, logs=None):
        elapsed = time.perf_counter() - self._start
        values = " - ".join(f"{k}: {_fmt(v)}" for k, v in logs.items())
        samples = self.params["samples"]    # None for a stream of batches
        rate = f"{samples / max(elapsed, 1e-9):,.0f} samples/s - " if samples else ""
        if self.verbose == 1:
            steps = self.params["steps"]
            line = f"{self._bar(steps, steps)} - {_fmt_time(elapsed)} {rate}{values}"
            if self._live:
                self._draw(line)
                self._write("\n")
            else:
                self._write(line + "\n")
        else:
            self._write(f"Epoch {epoch + 1}/{self.params['epochs']} - "
                        f"{_fmt_time(elapsed)} - {values}\n")
        self._width = 0

    def on_divergence(self, epoch, logs=None):
        """End a half-drawn bar line (training stops mid-epoch)."""
        if self._live and self._width:
            self._write("\n")
            self._width = 0
