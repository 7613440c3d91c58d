"""Batch runners: how an epoch's batches reach the compiled network.

Every runner has one method, ``run(x, y, order, batch_size, first, stop,
losses, metric_values)``, which trains on batches ``first``..``stop-1`` of
an epoch and returns the index of the first batch not applied (its loss or
a gradient was not finite; nothing of it was applied), or ``stop``.  Batch
``k`` holds samples ``order[k*batch_size:(k+1)*batch_size]`` (or that
slice itself when ``order`` is None); the last batch may be smaller.  Each
batch's loss goes to ``losses[k]`` and, when ``metric_values`` (n_metrics,
n_batches) is given, each metric on the batch's outputs before the update
to ``metric_values[:, k]``.

- ``CompiledEpoch``: the whole range in one compiled call (gather, steps,
  compiled metrics in C);
- ``PerBatch``: one compiled call per batch, when a learning-rate schedule
  must be evaluated before each step or a metric has no compiled twin;
- ``NumpyPath``: one ``Model.step`` per batch through ``pynn.custom``, for
  a model with a custom loss or activation (NumPy forward and backward,
  the compiled update);
- ``Streamed``: batches converted or drawn in Python (``pynn.data``
  sources: memmaps of another dtype, iterables of batches), one step each;
- ``DataParallel`` (``pynn.training.mpi``): one step per batch with an
  all-reduce of the gradients between the backward pass and the update.

``choose`` picks one for the data and the model's state.  The updates
applied are counted inside the compiled calls (``Model.counting``).
"""
from __future__ import annotations

from .. import data


class Runner:
    """Trains a model on a range of an epoch's batches (see the module doc)."""

    def __init__(self, model) -> None:
        self.model = model

    def run(self, x, y, order, batch_size, first, stop, losses, metric_values=None,
            sample_weight=None) -> int:
        raise NotImplementedError


class CompiledEpoch(Runner):
    """The whole range in one compiled call."""

    def run(self, x, y, order, batch_size, first, stop, losses, metric_values=None,
            sample_weight=None):
        model = self.model
        with model.lock, model.counting() as net:
            model.push_settings()
            done = net.train_batches(x, y, order, batch_size, first, stop, losses,
                                     metric_values, sample_weight)
        return done


class PerBatch(Runner):
    """One compiled call per batch: the schedule's rate is set before each
    step, and metrics without a compiled twin read each batch's outputs."""

    def run(self, x, y, order, batch_size, first, stop, losses, metric_values=None,
            sample_weight=None):
        model = self.model
        with model.lock, model.counting() as net:
            opt = model.optimizer
            in_c = metric_values is None or model.metrics_compiled
            done = first
            while done < stop:
                opt.iterations = net.iterations     # the step the schedule reads
                model.push_settings()
                if net.train_batches(x, y, order, batch_size, done, done + 1,
                                     losses, metric_values if in_c else None,
                                     sample_weight) == done:
                    break
                if not in_c:
                    rows = slice(done * batch_size, (done + 1) * batch_size)
                    ys = y[rows] if order is None else y[order[rows]]
                    model.batch_metrics(ys, metric_values[:, done])
                done += 1
        return done


def batch_rows(n, order, batch_size, k):
    """The rows of batch ``k`` of ``n`` samples: a slice, or indices of ``order``."""
    rows = slice(k * batch_size, min((k + 1) * batch_size, n))
    return rows if order is None else order[rows]


def array_batches(x, y, order, batch_size, first, stop):
    """Yield ``(k, x_batch, y_batch)`` for batches ``first..stop-1`` of arrays."""
    for k in range(first, stop):
        rows = batch_rows(x.shape[0], order, batch_size, k)
        yield k, x[rows], y[rows]


class Streamed(Runner):
    """One compiled step per batch of a ``pynn.data.Batches`` source."""

    def batches(self, x, y, order, batch_size, first, stop):
        return x.batches(self.model, y, order, batch_size, first, stop)

    def step(self, k, xb, yb):
        return self.model.step(xb, yb)

    def run(self, x, y, order, batch_size, first, stop, losses, metric_values=None,
            sample_weight=None):
        if sample_weight is not None:
            raise ValueError("sample_weight and class_weight need x and y as arrays, "
                             "not a stream of batches or a data-parallel fit")
        return self.train(self.batches(x, y, order, batch_size, first, stop), first,
                          losses, metric_values)

    def train(self, batches, first, losses, metric_values):
        """``step`` through ``batches`` of ``(k, x_batch, y_batch)``, from
        batch ``first``; returns the index of the first batch not applied."""
        model = self.model
        done = first
        with model.lock:
            for k, xb, yb in batches:
                losses[k], applied = self.step(k, xb, yb)
                if not applied:
                    break
                if metric_values is not None:
                    model.batch_metrics(yb, metric_values[:, k])
                done = k + 1
        return done


class NumpyPath(Streamed):
    """One ``Model.step`` per batch of arrays, for a model whose custom loss
    or activation runs in NumPy (``pynn.custom``); its metrics read the
    outputs that step computed."""

    def __init__(self, model) -> None:
        super().__init__(model)
        self.weights = lambda k: None       # batch k's sample weights, set by run

    def run(self, x, y, order, batch_size, first, stop, losses, metric_values=None,
            sample_weight=None):
        def weights(k):
            if sample_weight is None:
                return None
            return sample_weight[batch_rows(x.shape[0], order, batch_size, k)]

        self.weights = weights
        return self.train(array_batches(x, y, order, batch_size, first, stop), first,
                          losses, metric_values)

    def step(self, k, xb, yb):
        return self.model.step(xb, yb, sample_weight=self.weights(k))


def choose(model, x, metric_values=None, session=None) -> Runner:
    """The runner for training ``model`` on ``x`` (and its metrics), now.

    ``session``: the ``pynn.training.mpi.Session`` of a data-parallel fit.
    Read before each call: a callback may change the optimizer or metrics.
    """
    model.refresh_optimizer()
    if session is not None:
        return session.runner()
    if isinstance(x, data.Batches):
        return Streamed(model)
    if model.numpy_path:
        return NumpyPath(model)
    in_c = metric_values is None or model.metrics_compiled
    if in_c and not model.optimizer.scheduled:
        return CompiledEpoch(model)
    return PerBatch(model)


def run_batches(model, x, y, order, batch_size, first, stop, losses, metric_values=None,
                session=None, sample_weight=None) -> int:
    """``choose(...).run(...)``: train on batches ``first``..``stop-1``."""
    runner = choose(model, x, metric_values, session)
    return runner.run(x, y, order, batch_size, first, stop, losses, metric_values,
                      sample_weight)

