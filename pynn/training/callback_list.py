"""CallbackList: fans each of fit's events out to the callbacks, in order.

The trainer never loops over callbacks itself.  Besides the events every
callback gets, it sorts out who wants batch ends: callbacks whose
``wants_batches`` is true get ``on_batch_end`` after every batch (fit then
runs one batch per compiled call), callbacks with a ``batch_period`` (in
seconds; the live progress bar) get it after the last batch of chunks sized
to last about that long.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..callbacks import Callback


class CallbackList:
    """The callbacks of one fit, each given the model and fit's settings.

    Parameters
    ----------
    callbacks : list of Callback
        In calling order.
    model : the model being trained
    params : dict
        fit's settings (epochs, steps, samples, batch_size, verbose,
        do_validation), as ``Callback.params``.
    """

    def __init__(self, callbacks: Sequence[Callback], model, params: dict) -> None:
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            cb.set_model(model)
            cb.set_params(params)
        self.every_batch = []
        self.periodic = []
        self.period = None

    def on_train_begin(self, logs: dict) -> None:
        for cb in self.callbacks:
            cb.on_train_begin(logs)
        # read after on_train_begin: a callback may decide there (a bar is
        # live only on a terminal)
        self.every_batch = [cb for cb in self.callbacks if cb.wants_batches]
        self.periodic = [cb for cb in self.callbacks
                         if not cb.wants_batches and cb.batch_period is not None]
        self.period = min((cb.batch_period for cb in self.periodic), default=None)

    @property
    def needs_batches(self) -> bool:
        """True when some callback hears of batches within an epoch."""
        return bool(self.every_batch or self.periodic)

    def on_epoch_begin(self, epoch: int, logs: dict) -> None:
        for cb in self.callbacks:
            cb.on_epoch_begin(epoch, logs)

    def on_batches_end(self, first: int, stop: int, sizes: np.ndarray,
                       losses: np.ndarray) -> None:
        """Batches ``first``..``stop-1`` were applied (``losses[k]`` their losses)."""
        for k in range(first, stop):
            for cb in self.every_batch:
                cb.on_batch_end(k, {"batch": k, "size": int(sizes[k]),
                                    "loss": float(losses[k])})
        if self.periodic:
            n_seen = int(sizes[:stop].sum())
            last = stop - 1
            logs = {"batch": last, "size": int(sizes[last]), "loss": float(losses[last]),
                    "samples_seen": n_seen,
                    "mean_loss": float(losses[:stop] @ sizes[:stop]) / n_seen}
            for cb in self.periodic:
                cb.on_batch_end(last, logs)

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        for cb in self.callbacks:
            cb.on_epoch_end(epoch, logs)

    def on_divergence(self, epoch: int, logs: dict) -> None:
        for cb in self.callbacks:
            cb.on_divergence(epoch, logs)

    def on_train_end(self, logs: dict) -> None:
        for cb in self.callbacks:
            cb.on_train_end(logs)
