"""Data-parallel training with MPI: every rank trains on its own shard.

Launch (after ``pip install "pynn[mpi]"``)::

    mpiexec -n 2 python examples/mpi_train.py

or, so that an error on one rank ends every rank instead of leaving the
others waiting::

    mpiexec -n 2 python -m mpi4py examples/mpi_train.py

The ranks keep identical weights; rank 0 prints the progress and saves the
model.  With 1 process (``python examples/mpi_train.py``) it trains alone.
"""
import numpy as np
from mpi4py import MPI

import pynn

comm = MPI.COMM_WORLD

# A toy data set, the same on every rank (a real job would load only its shard,
# say from one np.memmap: x[rank * n // size:(rank + 1) * n // size]).
rng = np.random.default_rng(0)
x = rng.normal(size=(8192, 20)).astype(np.float32)
labels = (x[:, :10].sum(axis=1) > x[:, 10:].sum(axis=1)).astype(np.int64) \
    + 2 * (x[:, 0] > 0)
x_val, y_val = x[-1024:], labels[-1024:]
x, labels = x[:-1024], labels[:-1024]

# Rank r takes every size-th sample from r: shards of equal size.
x_shard, y_shard = x[comm.rank::comm.size], labels[comm.rank::comm.size]

net = pynn.Sequential([pynn.Dense(64, activation="relu", input_dim=20),
                       pynn.Dense(4)], seed=comm.rank)   # rank 0's weights are broadcast
net.compile(loss=pynn.SparseCategoricalCrossentropy(from_logits=True),
            optimizer=pynn.Adam(1e-3), metrics=["accuracy"])
history = net.fit(x_shard, y_shard, epochs=5, batch_size=64,
                  validation_data=(x_val[comm.rank::comm.size], y_val[comm.rank::comm.size]),
                  verbose=2, comm=comm)

if comm.rank == 0:
    print(f"{comm.size} rank(s), global batch {64 * comm.size}: "
          f"val_accuracy {history.history['val_accuracy'][-1]:.3f}")
    net.save("mpi_model.npz")
