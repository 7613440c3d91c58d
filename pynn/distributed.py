"""Data-parallel training over MPI (mpi4py): ``fit(..., comm=MPI.COMM_WORLD)``.

Every rank (process) holds the same model and trains on its own shard of
the data.  At each step every rank computes the gradient of its batch,
the ranks sum their gradient buffers with one in-place ``Allreduce`` (the
model keeps all gradients in one flat buffer), and each applies the same
update to the same weights: they stay identical, bit for bit.

- Each rank's gradient is weighted by its share of the step's samples,
  ``m_r / sum_r m_r``, before the sum: the result is the mean gradient over
  the union of the ranks' batches, exactly what one process training on
  that union would compute (also when the last batches differ in size).
- The weights and the optimizer state are broadcast from rank 0 when
  training starts.
- A step whose loss or gradient is not finite on ANY rank is skipped by all:
  a rank whose step failed writes NaN into its buffer before the sum, so
  every rank sees a non-finite sum (no second collective needed).
- Epoch logs (loss, metrics, validation loss and metrics) are means over
  every rank's samples, so callbacks (EarlyStopping, ...) decide alike.
- Rank 0 alone prints progress and runs ModelCheckpoint; other callbacks run
  on every rank.
- If one rank refuses its data before training, every rank raises
  ValueError instead of waiting forever.  An exception later on one rank
  (a failing callback, say) would leave the others waiting: launch with
  ``mpiexec -n N python -m mpi4py script.py``, which aborts every rank when
  one raises.

Every rank must run the same number of batches per epoch (same shard
size, give or take less than one batch) and the same fit arguments; fit
checks this and raises ValueError on every rank otherwise.

mpi4py is needed only here: ``pip install "pynn[mpi]"`` brings it and an
MPI runtime (the ``mpich`` wheel, with its ``mpiexec``).
"""
import contextlib

import numpy as np

from . import _optim
from ._codes import Status as _Status
from .callbacks import ModelCheckpoint
from ._validation import check_finite

# What Network.step reports (csrc/codes.pxd), as in model.py.
_STATUS_OK, _STATUS_X_NONFINITE, _STATUS_Y_NONFINITE = (
    int(_Status[k]) for k in ("OK", "X_NONFINITE", "Y_NONFINITE"))


def fit(model, x, y=None, comm=None, **kwargs):
    """``model.fit(x, y, comm=comm, **kwargs)``: train ``model`` on this
    rank's shard ``(x, y)`` together with every rank of ``comm`` (default
    ``MPI.COMM_WORLD``).  Returns the History (the same on every rank)."""
    if comm is None:
        from mpi4py import MPI
        comm = MPI.COMM_WORLD
    return model.fit(x, y, comm=comm, **kwargs)


@contextlib.contextmanager
def session(model, comm):
    """Context of one distributed fit (nothing when ``comm`` is None).

    Yields the Session, reachable as ``model._dist`` meanwhile.  When this
    rank raises before training started, the other ranks are told (see
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
    model._dist = dist
    try:
        yield dist
    except BaseException as exc:
        if not dist.agreed:
            dist.agree(exc)
        raise
    finally:
        model._dist = None


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
        from . import data
        if isinstance(x, data.Stream):
            n, n_batches = None, x.n_batches
        else:
            n, n_batches = x.shape[0], -(-x.shape[0] // batch_size)
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
            self.totals = sum(np.minimum(b, m - b * np.arange(n_batches))
                              for _, m, b in plans)
        self.comm.Bcast(model.params, root=0)
        if opt.state.shape[0]:
            self.comm.Bcast(opt.state, root=0)
        opt.iterations = self.comm.bcast(opt.iterations, root=0)
        if self.rank != 0:
            verbose = 0
            callbacks = [cb for cb in callbacks if not isinstance(cb, ModelCheckpoint)]
        return verbose, callbacks

    def step(self, k, x, y):
        """Batch ``k``: gradient here, sum over ranks, the same update
        everywhere.  Returns (this rank's batch loss, applied)."""
        model = self.model
        loss, status = model._net.step(x, y, False)
        grads = model.grads
        if status != _STATUS_OK:
            grads[0] = np.nan           # tells every rank to skip this step
        elif self.size > 1:
            m = x.shape[0]
            total = self.totals[k] if self.totals is not None else \
                self.comm.allreduce(m)  # a stream's batch sizes are not known ahead
            grads *= grads.dtype.type(m / total)
        self.comm.Allreduce(self._mpi.IN_PLACE, grads, op=self._mpi.SUM)
        if status == _STATUS_X_NONFINITE:
            check_finite(x, "x")
        if status == _STATUS_Y_NONFINITE:
            check_finite(y, "y")
        if not _optim.is_finite(grads):
            return loss, False
        model.optimizer.apply(model.params, grads, model._n_kernel_params)
        return loss, True

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
