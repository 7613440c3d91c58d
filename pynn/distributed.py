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

The collective side lives in pynn.training.mpi; mpi4py is needed only
there: ``pip install "pynn[mpi]"`` brings it and an MPI runtime (the
``mpich`` wheel, with its ``mpiexec``).
"""


def fit(model, x, y=None, comm=None, **kwargs):
    """``model.fit(x, y, comm=comm, **kwargs)``: train ``model`` on this
    rank's shard ``(x, y)`` together with every rank of ``comm`` (default
    ``MPI.COMM_WORLD``).  Returns the History (the same on every rank)."""
    if comm is None:
        from mpi4py import MPI
        comm = MPI.COMM_WORLD
    return model.fit(x, y, comm=comm, **kwargs)
