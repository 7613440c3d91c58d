"""fit's arguments, checked before anything is read or changed."""
from __future__ import annotations

from dataclasses import dataclass

from .._validation import (check_bool, check_nonneg_int, check_positive_int, check_real,
                           check_verbose)
from ..callbacks import Callback


@dataclass(frozen=True)
class FitArguments:
    """fit's settings once accepted (see ``Sequential.fit`` for each)."""

    epochs: int
    initial_epoch: int
    batch_size: int
    shuffle: bool
    verbose: int
    target_loss: float | None
    on_divergence: str
    validation_split: float
    callbacks: list


def check_fit_arguments(epochs, batch_size, shuffle, validation_split, callbacks, verbose,
                        initial_epoch, target_loss, on_divergence) -> FitArguments:
    """The settings of fit, each refused with the value received when wrong."""
    epochs = check_nonneg_int(epochs, "epochs")
    initial_epoch = check_nonneg_int(initial_epoch, "initial_epoch")
    if initial_epoch > epochs:
        raise ValueError(f"initial_epoch ({initial_epoch}) must not exceed "
                         f"epochs ({epochs})")
    # None is Keras's default of 32
    batch_size = 32 if batch_size is None else check_positive_int(batch_size, "batch_size")
    shuffle = check_bool(shuffle, "shuffle")
    verbose = check_verbose(verbose)
    if target_loss is not None:
        target_loss = check_real(target_loss, "target_loss")
    if on_divergence not in ("raise", "stop"):
        raise ValueError(f"on_divergence must be 'raise' or 'stop', "
                         f"got {on_divergence!r}")
    validation_split = check_real(validation_split, "validation_split",
                                  low=0, high=1, high_open=True)
    return FitArguments(epochs, initial_epoch, batch_size, shuffle, verbose, target_loss,
                        on_divergence, validation_split, check_callbacks(callbacks))


def check_callbacks(callbacks) -> list:
    """``callbacks`` as a list of Callback instances (None: empty)."""
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
    return callbacks
