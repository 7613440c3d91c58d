"""Sequential: the public model, the model core with its trainer and saving.

``pynn.core.Model`` holds the model (layers, buffers, compile state,
predict and evaluate, weights, config); ``pynn.training`` trains it and
``pynn.io`` saves it.  Sequential joins the three, so that neither the
core nor io imports the trainer, and io never imports this module: it
finds the class to load into through ``pynn._registry``.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy.typing as npt

from . import _registry, io, training
from .callbacks import Callback, History
from .core import Model


class Sequential(Model):
    """A feed-forward network of Dense layers, trained with ``fit``.

    ``Sequential(layers=None, dtype="float32", seed=None, n_threads=None)``:
    the parameters are those of ``pynn.core.Model`` (the model it is), and
    it adds ``fit``, ``train_on_batch`` and ``save``.
    """

    def train_on_batch(self, x: npt.ArrayLike, y: npt.ArrayLike,
                       sample_weight: npt.ArrayLike | None = None,
                       class_weight: dict | None = None,
                       return_dict: bool = False) -> float | list[float] | dict[str, float]:
        # The hot path first: the HotStep the last checked step left
        # (Model._hot_step) steps on arrays ready as they are, or answers
        # None having changed nothing; the trainer's checked path then
        # decides, and may leave another.
        if sample_weight is None and class_weight is None and return_dict is False:
            loss = self._hot_step(x, y)
            if loss is not None:
                return loss
        return training.train_on_batch(self, x, y, sample_weight, class_weight, return_dict)

    train_on_batch.__doc__ = training.train_on_batch.__doc__

    def fit(self, x: npt.ArrayLike, y: npt.ArrayLike | None = None, epochs: int = 1,
            batch_size: int | None = None, shuffle: bool = True,
            validation_data: tuple[npt.ArrayLike, npt.ArrayLike] | None = None,
            validation_split: float = 0.0, callbacks: Sequence[Callback] | None = None,
            verbose: int | str = "auto", initial_epoch: int = 0, target_loss: float | None = None,
            on_divergence: str = "raise", steps_per_epoch: int | None = None,
            comm: Any = None, sample_weight: npt.ArrayLike | None = None,
            class_weight: dict | None = None) -> History:
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
        batch_size : int > 0 or None
            None means 32 (as Keras).  The last batch of an epoch may be smaller.  A batch_size larger
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
        verbose : "auto", 0, 1 or 2
            0 silent, 1 ("auto", as Keras) a progress bar per epoch, 2 one
            line per epoch.
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
        sample_weight : (n_samples,) array of finite values >= 0, optional
            Row i's loss and gradient are multiplied by its weight; a batch's
            loss is ``sum_i w_i l_i / batch_size``, Keras's
            "sum_over_batch_size" reduction (so a weight of 2 is a duplicated
            row only up to the batch size, and weights of 0 still count in
            it).  Gathered with each batch inside the compiled epoch.  With
            ``validation_split``, the held-out rows' weights are dropped.
        class_weight : dict class index -> weight, optional
            For the cross-entropy losses: each sample weighs its class's
            weight (times its sample_weight, if given), as Keras.

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
        return training.fit(self, x, y, epochs=epochs, batch_size=batch_size, shuffle=shuffle,
                            validation_data=validation_data,
                            validation_split=validation_split, callbacks=callbacks,
                            verbose=verbose, initial_epoch=initial_epoch,
                            target_loss=target_loss, on_divergence=on_divergence,
                            steps_per_epoch=steps_per_epoch, comm=comm,
                            sample_weight=sample_weight, class_weight=class_weight)

    def save(self, path: str | os.PathLike[str], include_optimizer: bool = True) -> str:
        """Save architecture, weights, loss, optimizer (and its state) to one
        file; read it back with ``pynn.load``.  See pynn.io.save."""
        with self.lock:    # weights and optimizer state of one moment, not of a fit mid-step
            self.refresh_optimizer()        # a state that fits the optimizer's settings
            return io.save(self, path, include_optimizer=include_optimizer)


_registry.register_model(io.FORMAT_NAME, Sequential)
