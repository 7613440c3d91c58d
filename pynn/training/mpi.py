"""The collective side of a data-parallel fit (see pynn.distributed).

``session`` opens one distributed fit; its ``Session`` agrees with the
other ranks before training, broadcasts rank 0's weights and optimizer
state, runs each step through ``DataParallel`` (gradient here, all-reduce,
the same update everywhere) and averages the epoch logs over the ranks.
"""
import contextlib

import numpy as np

from .. import data
from ..callbacks import ModelCheckpoint
from ..core import STATUS_OK, raise_for_inputs
from .runners import Streamed, array_batches


@contextlib.contextmanager
def session(model, comm):
    """Context of one distributed fit (nothing when ``comm`` is None).

    Yields the Session.  When this rank raises before training started, the other ranks are told (see
    ``Session.agree``) so that they raise too.
    """
    if comm is None:
        yield None
        return
    for name in ("Allreduce", "Bcast", "allgather", "rank", "size"):
        if not hasattr(comm, name):
            raise TypeError(f"comm must be an mpi4py communicator (MPI.COMM_WORLD), "
                            f"got {comm!r}")
    dist = Session(model, comm)
    try:
        yield dist
    except BaseException as exc:
        if not dist.agreed:
            dist.agree(exc)
        raise


class Session:
    """The collective side of one distributed fit."""

    def __init__(self, model, comm):
        from mpi4py import MPI
        self._mpi = MPI
        self.model = model
        self.comm = comm
        self.rank = comm.rank
        self.size = comm.size
        self.agreed = False
        self.totals = None

    def agree(self, error=None):
        """Collective: every rank says whether it is ready (``error`` None)
        or why not; raises ValueError on every rank if any rank is not."""
        self.agreed = True
        errors = self.comm.allgather(None if error is None else
                                     f"{type(error).__name__}: {error}")
        bad = [(r, e) for r, e in enumerate(errors) if e is not None]
        if bad and error is None:
            raise ValueError("distributed fit: "
                             + "; ".join(f"rank {r} refused its data ({e})" for r, e in bad))

    def start(self, x, val, batch_size, n_epochs, verbose, callbacks):
        """Collective, after each rank checked its data: agree, check the
        ranks' plans match, broadcast rank 0's weights and optimizer state.

        Returns (verbose, callbacks) for this rank: progress and checkpoints
        on rank 0 only.
        """
        self.agree()
        model, opt = self.model, self.model.optimizer
        if isinstance(x, data.Stream):
            n, n_batches = None, x.n_batches
        else:
            n = x.shape[0]
            n_batches = data.batch_sizes(n, batch_size).shape[0]
        mine = (n_batches, n_epochs, val is not None, model.count_params(),
                np.dtype(model.dtype).name, type(opt).__name__, model.loss.name,
                len(model.metrics), opt.state.shape[0])
        plans = self.comm.allgather((mine, n, batch_size))
        if any(p[0] != plans[0][0] for p in plans):
            names = ("batches per epoch", "epochs", "validation", "parameters", "dtype",
                     "optimizer", "loss", "metrics", "optimizer state")
            rows = [", ".join(f"{k}={v!r}" for k, v in zip(names, p[0])) for p in plans]
            raise ValueError("distributed fit: the ranks' training plans differ; "
                             "every rank needs the same model, fit arguments and "
                             "number of batches per epoch:\n"
                             + "\n".join(f"  rank {r}: {row}" for r, row in enumerate(rows)))
        if n is not None and all(p[1] is not None for p in plans):
            # samples of batch k summed over ranks: the weights of the mean
            self.totals = sum(data.batch_sizes(m, b) for _, m, b in plans)
        self.comm.Bcast(model.params, root=0)
        if opt.state.shape[0]:
            self.comm.Bcast(opt.state, root=0)
        opt.iterations = self.comm.bcast(opt.iterations, root=0)
        if self.rank != 0:
            verbose = 0
            callbacks = [cb for cb in callbacks if not isinstance(cb, ModelCheckpoint)]
        return verbose, callbacks

    def runner(self):
        """The runner of this fit's steps."""
        return DataParallel(self)

    def step(self, k, x, y):
        """Batch ``k``: gradient here, sum over ranks, the same update
        everywhere.  Returns (this rank's batch loss, applied); the caller
        counts nothing: the compiled update counts itself."""
        model = self.model
        with model.lock:
            model.refresh_optimizer()       # a layer frozen since the last step
            loss, status = model.engine.step(x, y, False)
            grads = model.grads
            refused = status != STATUS_OK
            if self.size > 1:
                # every rank takes part in the same collectives, whatever its
                # own step gave: whether any rank refused, then the sizes
                refused = self.comm.allreduce(refused, op=self._mpi.LOR)
                m = x.shape[0]
                total = self.totals[k] if self.totals is not None else \
                    self.comm.allreduce(m)  # a stream's batch sizes are not known ahead
                grads *= grads.dtype.type(m / total)
            if refused:
                # the whole buffer, not one entry: a frozen layer's range is
                # not read by the check, and the refusal must reach it on
                # every rank (it also puts the dropout generators back)
                grads.fill(np.nan)
            else:
                self.comm.Allreduce(self._mpi.IN_PLACE, grads, op=self._mpi.SUM)
            raise_for_inputs(status, x, y)
            # clipping, exact check and update over the trainable variables,
            # in the compiled code, which counts the update it applies, folds
            # this rank's batch statistics into the moving ones once applied,
            # and puts the dropout generators back if refused (a non-finite
            # gradient on any rank: every rank refuses)
            with model.counting() as net:
                model.push_settings()
                applied = net.apply_gradients() and not refused
            if applied:
                self._average_layer_state(model)
        return loss, applied

    def _average_layer_state(self, model):
        # BatchNormalization: each rank normalised by its own share of the
        # batch (as Keras's BatchNormalization(synchronized=False) under a
        # distribution strategy); the moving statistics, moved by the
        # update, are then averaged, so that every rank keeps the same model
        if self.size > 1 and model.layer_state.size:
            self.comm.Allreduce(self._mpi.IN_PLACE, model.layer_state, op=self._mpi.SUM)
            model.layer_state *= model.layer_state.dtype.type(1.0 / self.size)

    def mean_logs(self, logs, n_seen, val):
        """Epoch logs averaged over ranks: training values weighted by each
        rank's samples seen, ``val_`` values by its validation samples."""
        n_val = float(val[0].shape[0]) if val is not None else 0.0
        keys = [k for k in logs if isinstance(logs[k], float)]
        weights = np.array([n_val if k.startswith("val_") else n_seen for k in keys])
        sums = np.concatenate([weights * [logs[k] for k in keys], [n_seen, n_val]])
        self.comm.Allreduce(self._mpi.IN_PLACE, sums, op=self._mpi.SUM)
        totals = np.where([k.startswith("val_") for k in keys], sums[-1], sums[-2])
        return {**logs, **{k: float(s / t) for k, s, t in zip(keys, sums, totals)}}


class DataParallel(Streamed):
    """One step per batch, each through ``Session.step`` (arrays or any
    Batches source)."""

    def __init__(self, session):
        super().__init__(session.model)
        self.session = session

    def batches(self, x, y, order, batch_size, first, stop):
        if isinstance(x, data.Batches):
            return super().batches(x, y, order, batch_size, first, stop)
        return array_batches(x, y, order, batch_size, first, stop)

    def step(self, k, xb, yb):
        return self.session.step(k, xb, yb)
