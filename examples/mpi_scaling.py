"""Throughput of data-parallel fit, and the all-reduce it costs.

Run with 1 and with 2 ranks and compare the samples/s::

    OPENBLAS_NUM_THREADS=1 mpiexec -n 1 python examples/mpi_scaling.py
    OPENBLAS_NUM_THREADS=1 mpiexec -n 2 python examples/mpi_scaling.py

The model is the benchmark's "mid" configuration, 784-512-512-10 (relu,
softmax cross-entropy), float32, batch 128 per rank, one BLAS thread per
rank.  Rank 0 prints: the throughput of fit (all ranks' samples per second),
the time of one step's parts (gradient, all-reduce of the gradient buffer,
update), and, from the measured compute time, an estimate of the efficiency
of N machines on 10 and 100 Gbit/s networks.
"""
import argparse
import time

import numpy as np
from mpi4py import MPI

import pynn

SIZES = (784, 512, 512, 10)


def model(seed=0):
    net = pynn.Sequential([pynn.Dense(SIZES[1], activation="relu", input_dim=SIZES[0]),
                           pynn.Dense(SIZES[2], activation="relu"), pynn.Dense(SIZES[3])],
                          dtype="float32", seed=seed, n_threads=1)
    net.compile(loss=pynn.SparseCategoricalCrossentropy(from_logits=True),
                optimizer=pynn.SGD(0.01, momentum=0.9))
    return net


def median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def ring_allreduce_seconds(n, nbytes, gbit_per_s, latency):
    # a ring all-reduce sends 2(N-1)/N of the buffer per node, in 2(N-1) messages
    return 2 * (n - 1) / n * nbytes * 8 / (gbit_per_s * 1e9) + 2 * (n - 1) * latency


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128, help="samples per rank and step")
    parser.add_argument("--steps", type=int, default=60, help="steps per timed epoch")
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs (median)")
    args = parser.parse_args()
    comm = MPI.COMM_WORLD
    rank, size = comm.rank, comm.size
    rng = np.random.default_rng(rank)
    n = args.batch * args.steps
    x = rng.normal(size=(n, SIZES[0])).astype(np.float32)
    y = rng.integers(0, SIZES[-1], size=n)

    net = model()
    net.fit(x[:4 * args.batch], y[:4 * args.batch], batch_size=args.batch, verbose=0,
            comm=comm)                                   # warm-up: buffers, pages

    def epoch():
        net.fit(x, y, batch_size=args.batch, verbose=0, comm=comm)
    comm.Barrier()
    fit_seconds = median_time(epoch, args.repeats)
    # the same without comm: whole epochs in one compiled call (1 rank only)
    plain_seconds = median_time(lambda: net.fit(x, y, batch_size=args.batch, verbose=0),
                                args.repeats) if size == 1 else None

    # one step's parts, on one batch
    xb, yb = x[:args.batch], y[:args.batch].astype(np.float32).reshape(-1, 1)
    grads = net.grads
    compute = median_time(lambda: net._net.step(xb, yb, False), 20)
    comm.Barrier()
    allreduce = median_time(lambda: comm.Allreduce(MPI.IN_PLACE, grads, op=MPI.SUM), 20)
    net.grads[:] = 0
    opt = net.optimizer
    update = median_time(lambda: opt.apply(net.params, net.grads, net._n_kernel_params), 20)
    # the slowest rank sets the pace
    compute, allreduce, update = (comm.allreduce(v, op=MPI.MAX)
                                  for v in (compute, allreduce, update))
    if rank:
        return
    nbytes = grads.nbytes
    print(f"{size} rank(s), {'-'.join(map(str, SIZES))} float32, batch {args.batch} per rank, "
          f"{net.count_params():,} parameters = {nbytes / 1e6:.2f} MB of gradients")
    print(f"fit: {size * n / fit_seconds:,.0f} samples/s "
          f"({fit_seconds / args.steps * 1e3:.1f} ms per step)")
    if plain_seconds:
        print(f"fit without comm: {n / plain_seconds:,.0f} samples/s")
    print(f"per step: gradient {compute * 1e3:.2f} ms, all-reduce {allreduce * 1e3:.2f} ms, "
          f"update {update * 1e3:.2f} ms")
    step = compute + update
    print(f"\nestimate for N machines (one rank each, compute {step * 1e3:.1f} ms per step, "
          f"no overlap of communication and compute):")
    for gbit, latency in ((10, 30e-6), (100, 5e-6)):
        full = 2 * nbytes * 8 / (gbit * 1e9)     # the bandwidth term as N grows
        rows = []
        best = 1
        for n_machines in (2, 4, 8, 16, 32, 64, 128, 256):
            t = ring_allreduce_seconds(n_machines, nbytes, gbit, latency)
            eff = step / (step + t)
            rows.append(f"N={n_machines}: {t * 1e3:.2f} ms, {eff:.0%}")
        n_machines = 2
        while step / (step + ring_allreduce_seconds(n_machines, nbytes, gbit, latency)) >= 0.8:
            best = n_machines
            n_machines += 1
            if n_machines > 100000:
                break
        print(f"  {gbit:3d} Gbit/s, {latency * 1e6:.0f} us latency: all-reduce -> "
              f"{full * 1e3:.2f} ms as N grows; " + "; ".join(rows)
              + f"; efficiency >= 80% up to N = {best if best > 1 else 'none'}")


if __name__ == "__main__":
    main()
