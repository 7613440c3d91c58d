"""Distributed fit scenarios, run by test_distributed.py under ``mpiexec -n 2``.

Rank 0 writes every scenario's outcome to the .npz file named by argv[1];
the test compares them with one process training on the same samples.
Importable without mpi4py (the test uses its data and model makers).
"""
import json
import sys
import warnings

import numpy as np

import pynn

N_FEATURES, N_OUTPUTS = 6, 3
B = 16                                    # batch size per rank


def make_data(n, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, N_FEATURES)).astype(dtype)
    y = np.tanh(x[:, :N_OUTPUTS] * x[:, N_OUTPUTS:]).astype(dtype)
    return x, y


def make_model(dtype, optimizer, seed):
    net = pynn.Sequential([pynn.Dense(16, activation="tanh", input_dim=N_FEATURES),
                           pynn.Dense(N_OUTPUTS)], dtype=dtype, seed=seed)
    net.compile(loss="mse", optimizer=optimizer, metrics=["mae"])
    return net


def make_trimmed_model(dtype, seed):
    """A frozen middle layer, regularizers and global clipping: the update
    over ranks must skip, penalise and clip as one process does."""
    layers = [pynn.Dense(16, activation="tanh", input_dim=N_FEATURES,
                         kernel_regularizer=pynn.regularizers.L1L2(1e-3, 1e-2)),
              pynn.Dense(8, activation="tanh"),
              pynn.Dense(N_OUTPUTS, bias_regularizer="l2")]
    layers[1].trainable = False
    net = pynn.Sequential(layers, dtype=dtype, seed=seed)
    net.compile(loss="mse", optimizer=pynn.Adam(0.01, global_clipnorm=0.2))
    return net


def optimizer(name):
    if name == "sgd":
        return pynn.SGD(learning_rate=0.05, momentum=0.9, weight_decay=1e-3)
    return pynn.Adam(learning_rate=0.01)


def shard(a, rank, b, size=2):
    """Rank ``rank``'s samples when one process's batch k of size*b samples
    is split into ``size`` consecutive pieces of b, piece r going to rank r
    (the last batch's pieces may be shorter or empty)."""
    n = a.shape[0]
    idx = [i for k in range(0, n, size * b)
           for i in range(k + rank * b, min(k + (rank + 1) * b, n))]
    return a[idx]


# 160 samples: 5 steps of 16 + 16.  148: 4 such steps, then 16 (rank 0) +
# 4 (rank 1), a last step whose gradients must be weighted 16:4.
EVEN, UNEVEN = 160, 148


def main(out_path):
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    rank = comm.rank
    results = {}
    info = {}

    def same_everywhere(arr):
        return all(np.array_equal(a, arr) for a in comm.allgather(arr))

    # 1. equivalence: arrays, then a stream, for each dtype and optimizer
    for dtype in ("float32", "float64"):
        for opt, n in (("sgd", EVEN), ("adam", UNEVEN)):
            x, y = make_data(n, dtype)
            xv, yv = make_data(40, dtype, seed=1)
            xs, ys = shard(x, rank, B), shard(y, rank, B)
            xvs, yvs = xv[rank::2], yv[rank::2]
            for source in ("arrays", "stream"):
                # a different seed on each rank: rank 0's weights must win
                net = make_model(dtype, optimizer(opt), seed=1 + rank)
                if source == "arrays":
                    hist = net.fit(xs, ys, epochs=3, batch_size=B, shuffle=False,
                                   validation_data=(xvs, yvs), verbose=0, comm=comm)
                else:
                    def batches():
                        for k in range(0, xs.shape[0], B):
                            yield xs[k:k + B], ys[k:k + B]
                    hist = net.fit(batches, epochs=3, steps_per_epoch=-(-xs.shape[0] // B),
                                   validation_data=(xvs, yvs), verbose=0, comm=comm)
                key = f"{dtype}-{opt}-{source}"
                results[key] = net.params.copy()
                info[key] = {"history": hist.history,
                             "identical": same_everywhere(net.params),
                             "iterations": net.optimizer.iterations}

    # 2. divergence on rank 1 only: every rank stops at the same step
    x, y = make_data(EVEN, "float32")
    xs, ys = shard(x, rank, B), shard(y, rank, B)
    if rank == 1:
        ys[B + 3] = 1e30                  # batch 1's loss overflows on rank 1
    # ("stop-frozen": the first layer frozen, so the check does not read
    # the first entries of the gradient: the refusal still reaches every rank)
    for mode in ("stop", "raise", "stop-frozen"):
        net = make_model("float32", optimizer("sgd"), seed=1)
        if mode == "stop-frozen":
            net.layers[0].trainable = False
        outcome = "none"
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                hist = net.fit(xs, ys, epochs=2, batch_size=B, shuffle=False, verbose=0,
                               on_divergence=mode.split("-")[0], comm=comm)
                outcome = f"epochs={len(hist.history.get('loss', []))}"
            except pynn.DivergenceError:
                outcome = "DivergenceError"
        info[f"diverge-{mode}"] = {
            "outcomes": comm.allgather(outcome),
            "warned": comm.allgather(any("non-finite" in str(w.message) for w in caught)),
            "iterations": comm.allgather(net.optimizer.iterations),
            "identical": same_everywhere(net.params),
            "finite": bool(np.isfinite(net.params).all())}

    # 3. bad data on one rank, and shards of different numbers of batches:
    # every rank raises instead of waiting for the other
    x, y = make_data(EVEN, "float64")
    for case in ("features", "batches"):
        xs, ys = shard(x, rank, B), shard(y, rank, B)
        if rank == 1:
            xs = xs[:, :4] if case == "features" else np.concatenate([xs, xs])
            ys = ys if case == "features" else np.concatenate([ys, ys])
        net = make_model("float64", optimizer("sgd"), seed=1)
        try:
            net.fit(xs, ys, epochs=1, batch_size=B, verbose=0, comm=comm)
            outcome = "trained"
        except ValueError as exc:
            outcome = str(exc)
        info[f"refuse-{case}"] = comm.allgather(outcome)

    # 4. rank 0 alone prints and checkpoints
    class CountingCheckpoint(pynn.ModelCheckpoint):
        calls = 0

        def on_epoch_end(self, epoch, logs=None):
            CountingCheckpoint.calls += 1

    xs, ys = shard(x, rank, B), shard(y, rank, B)
    net = make_model("float64", optimizer("sgd"), seed=1)
    net.fit(xs, ys, epochs=2, batch_size=B, verbose=2, comm=comm,
            callbacks=[CountingCheckpoint("unused.npz")])
    info["checkpoint-calls"] = comm.allgather(CountingCheckpoint.calls)

    # 5. freezing, regularizers and clipping across ranks
    for dtype in ("float32", "float64"):
        x, y = make_data(EVEN, dtype)
        xs, ys = shard(x, rank, B), shard(y, rank, B)
        net = make_trimmed_model(dtype, seed=1 + rank)
        hist = net.fit(xs, ys, epochs=2, batch_size=B, shuffle=False, verbose=0, comm=comm)
        results[f"{dtype}-trimmed"] = net.params.copy()
        info[f"{dtype}-trimmed"] = {"history": hist.history,
                                    "identical": same_everywhere(net.params)}

    # 6. BatchNormalization: statistics per rank, the moving ones averaged
    x, y = make_data(EVEN, "float64")
    xs, ys = shard(x, rank, B), shard(y, rank, B)
    net = pynn.Sequential([pynn.Dense(16, activation="tanh", input_dim=N_FEATURES),
                           pynn.BatchNormalization(), pynn.Dense(N_OUTPUTS)],
                          dtype="float64", seed=1)
    net.compile(loss="mse", optimizer=optimizer("adam"))
    net.fit(xs, ys, epochs=2, batch_size=B, shuffle=False, verbose=0, comm=comm)
    info["batchnorm"] = {"identical": same_everywhere(net.params)
                         and same_everywhere(net.layer_state),
                         "moved": bool(np.any(net.layers[1].moving_mean != 0))}

    # 7. Dropout, a frozen BatchNormalization, a frozen Dense, L2 and clipnorm
    net = pynn.Sequential([pynn.Dense(16, activation="tanh", input_dim=N_FEATURES,
                                      kernel_regularizer="l2"),
                           pynn.Dropout(0.2), pynn.BatchNormalization(trainable=False),
                           pynn.Dense(8, activation="relu", trainable=False),
                           pynn.LayerNormalization(), pynn.Dense(N_OUTPUTS)],
                          dtype="float64", seed=1 + rank)
    net.compile(loss="mse", optimizer=pynn.Adam(0.01, clipnorm=0.1))
    frozen = [a.copy() for a in net.layers[2].buffers()] + [net.layers[3].W.copy()]
    first = net.layers[0].W.copy()
    net.fit(xs, ys, epochs=2, batch_size=B, shuffle=False, verbose=0, comm=comm)
    info["mixed"] = {"identical": same_everywhere(net.params)
                     and same_everywhere(net.layer_state),
                     # the frozen BatchNormalization in inference mode: its
                     # moving statistics stay, as gamma and beta do
                     "frozen": all(np.array_equal(a, b) for a, b in zip(
                         net.layers[2].buffers() + [net.layers[3].W], frozen)),
                     "moved": not np.array_equal(net.layers[0].W, first)}

    if rank == 0:
        np.savez(out_path, info=json.dumps(info), **results)


if __name__ == "__main__":
    main(sys.argv[1])
