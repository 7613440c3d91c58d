"""Benchmark pynn against the NumPy baseline (pynn/reference.py) and PyTorch.

Run as ``python -m pynn bench``.  Every comparison is timed side by side in
one process on the same data, interleaving the contenders so that a noisy
machine slows both alike; speedups are medians of paired ratios.
"""
import argparse
import platform
import time

import numpy as np

import pynn
from pynn import _threads, reference

CONFIGS = {
    # name: (layer sizes, batch size)
    "tiny": ((64, 32, 10), 16),
    "mnist": ((784, 128, 10), 32),
    "mid": ((784, 512, 512, 10), 128),
    "wide": ((1024, 2048, 2048, 1024), 256),
}


def blas_info():
    """One line per BLAS library loaded: its kernel and thread count."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return ["threadpoolctl not installed: BLAS kernel and threads unknown"]
    import scipy.linalg  # noqa: F401  (load SciPy's BLAS, the one pynn calls)
    lines = []
    for lib in threadpool_info():
        if lib.get("user_api") != "blas":
            continue
        owner = "scipy (pynn)" if "scipy.libs" in lib["filepath"] else \
            "numpy (reference)" if "numpy" in lib["filepath"] else lib["filepath"].split("/")[-1]
        lines.append(f"{owner}: {lib['internal_api']} {lib.get('version')} "
                     f"kernel={lib.get('architecture')} threads={lib['num_threads']}")
    return lines


def step_flops(sizes, batch):
    """Multiply-adds x2 of one train step: forward, dW, and dX past the first layer."""
    flops = 0
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        flops += 2 * batch * n_in * n_out * (2 if i == 0 else 3)
    return flops


def gemm_ceiling(dtype, size=2048, repeats=5):
    """GFLOP/s of a large square GEMM through SciPy's BLAS (pynn's BLAS)."""
    from scipy.linalg import blas
    gemm = blas.sgemm if dtype == np.float32 else blas.dgemm
    a = np.asfortranarray(np.random.default_rng(0).standard_normal((size, size)).astype(dtype))
    gemm(1.0, a, a)
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        gemm(1.0, a, a)
        best = min(best, time.perf_counter() - t0)
    return 2 * size ** 3 / best / 1e9


def build(sizes, batch, dtype, seed=0):
    layers = [pynn.Dense(sizes[1], activation="relu", input_dim=sizes[0])]
    layers += [pynn.Dense(u, activation="relu") for u in sizes[2:-1]]
    layers += [pynn.Dense(sizes[-1])]
    net = pynn.Sequential(layers, dtype=dtype, seed=seed)
    net.compile(loss="mse", optimizer=pynn.SGD(learning_rate=1e-3, momentum=0.9))
    ref = reference.ReferenceNetwork(net.get_weights(),
                                     ["relu"] * (len(sizes) - 2) + ["linear"],
                                     learning_rate=1e-3, momentum=0.9)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, sizes[0])).astype(dtype)
    y = rng.standard_normal((batch, sizes[-1])).astype(dtype)
    return net, ref, x, y


def torch_step(sizes, net, dtype, threads):
    """A PyTorch train step on the same network, or None without torch."""
    try:
        import torch
    except ImportError:
        return None
    if threads:
        torch.set_num_threads(threads)
    tdtype = torch.float32 if dtype == np.float32 else torch.float64
    mods = []
    ws = net.get_weights()
    for i in range(len(sizes) - 1):
        lin = torch.nn.Linear(sizes[i], sizes[i + 1]).to(tdtype)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(ws[2 * i]))
            lin.bias.copy_(torch.from_numpy(ws[2 * i + 1]))
        mods.append(lin)
        if i < len(sizes) - 2:
            mods.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*mods)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    loss_fn = torch.nn.MSELoss()

    def step(x, y):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss
    return step, (lambda a: torch.from_numpy(a))


def time_calls(fn, n_calls):
    t0 = time.perf_counter()
    for _ in range(n_calls):
        fn()
    return (time.perf_counter() - t0) / n_calls


# Each library keeps its own thread pool (SciPy's OpenBLAS for pynn, NumPy's
# OpenBLAS for the baseline, OpenMP for PyTorch), and a pool's threads keep
# spinning for a while after their last call: on two cores, alternating
# contenders call by call would charge each with its predecessor's spinning.
# So each contender runs in blocks: a settling part (discarded), then the
# timed calls; blocks alternate, round after round.
SETTLE_SECONDS = 0.15
BLOCK_SECONDS = 0.1


def time_block(fn, n_calls):
    """Seconds per call of fn, after a settling stretch of untimed calls."""
    settle_until = time.perf_counter() + SETTLE_SECONDS
    while time.perf_counter() < settle_until:
        fn()
    return time_calls(fn, n_calls)


def bench_config(name, dtype, rounds, threads):
    sizes, batch = CONFIGS[name]
    net, ref, x, y = build(sizes, batch, dtype)
    flops = step_flops(sizes, batch)
    contenders = {"pynn": lambda: net.train_on_batch(x, y),
                  "numpy": lambda: ref.train_step(x, y)}
    ts = torch_step(sizes, net, dtype, threads)
    if ts is not None:
        step, conv = ts
        tx, ty = conv(x), conv(y)
        contenders["torch"] = lambda: step(tx, ty)
    times = {k: [] for k in contenders}
    calls = {}
    for k, fn in contenders.items():
        fn()  # warm up, then enough calls for a timed block
        calls[k] = max(1, int(BLOCK_SECONDS / max(time_calls(fn, 3), 1e-7)))
    for _ in range(rounds):
        for k, fn in contenders.items():
            times[k].append(time_block(fn, calls[k]))
    t = {k: np.array(v) for k, v in times.items()}
    row = {"config": name, "dtype": np.dtype(dtype).name, "batch": batch,
           "pynn_us": np.median(t["pynn"]) * 1e6, "numpy_us": np.median(t["numpy"]) * 1e6,
           "speedup": float(np.median(t["numpy"] / t["pynn"])),
           "gflops": flops / np.median(t["pynn"]) / 1e9}
    if "torch" in t:
        row["torch_us"] = np.median(t["torch"]) * 1e6
        row["vs_torch"] = float(np.median(t["torch"] / t["pynn"]))
    return row


def bench_fit_epoch(dtype, n_samples=60000, batch=32, epochs=1, rounds=3):
    """One fit epoch of the mnist shape against a NumPy loop that shuffles and slices."""
    sizes, _ = CONFIGS["mnist"]
    net, ref, _, _ = build(sizes, batch, dtype)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((n_samples, sizes[0])).astype(dtype)
    y = rng.standard_normal((n_samples, sizes[-1])).astype(dtype)

    def numpy_epoch():
        order = rng.permutation(n_samples)
        for start in range(0, n_samples, batch):
            idx = order[start:start + batch]
            ref.train_step(x[idx], y[idx])

    def pynn_epoch():
        net.fit(x, y, epochs=epochs, batch_size=batch, verbose=0)

    tp, tn = [], []
    for _ in range(rounds):
        t0 = time.perf_counter(); pynn_epoch(); tp.append(time.perf_counter() - t0)
        t0 = time.perf_counter(); numpy_epoch(); tn.append(time.perf_counter() - t0)
    tp, tn = np.array(tp), np.array(tn)
    return {"pynn_s": np.median(tp), "numpy_s": np.median(tn),
            "speedup": float(np.median(tn / tp))}


PHASES = ["data", "forward", "loss", "backward", "update"]


def profile_config(name, dtype, rounds):
    """Median seconds per phase of one step, for pynn and the NumPy baseline.

    The batch is gathered from a 4096-sample set by shuffled indices (the
    "data" phase), as fit does.
    """
    sizes, batch = CONFIGS[name]
    net, ref, _, _ = build(sizes, batch, dtype)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4096, sizes[0])).astype(dtype)
    y = rng.standard_normal((4096, sizes[-1])).astype(dtype)
    net.refresh_optimizer()
    ours, theirs = [], []
    for _ in range(rounds):
        rows = rng.permutation(4096)[:batch].astype(np.intp)
        ours.append(net.engine.profile_step(x, y, rows))
        t = [time.perf_counter()]
        xb, yb = x[rows], y[rows]
        t.append(time.perf_counter())
        outputs = ref.forward(xb, logits_out=ref.fused)
        t.append(time.perf_counter())
        _, grad = ref.loss(outputs[-1], yb)
        t.append(time.perf_counter())
        grads = ref.backward(outputs, grad)
        t.append(time.perf_counter())
        ref.apply(grads)
        t.append(time.perf_counter())
        theirs.append(np.diff(t))
    return np.median(ours, axis=0), np.median(theirs, axis=0)


def threads_sweep(dtype, rounds):
    """pynn's step on one thread against two, per configuration."""
    rows = []
    for name, (sizes, batch) in CONFIGS.items():
        nets = {}
        for k in (1, 2):
            net, _, x, y = build(sizes, batch, dtype)
            net.n_threads = k
            net.engine.set_thread_policy(_threads.local_thread_setter(), k, 0)
            nets[k] = net
        n_calls = max(1, int(0.02 / max(time_calls(lambda: nets[1].train_on_batch(x, y), 2), 1e-7)))
        times = {1: [], 2: []}
        for _ in range(rounds):
            for k in (1, 2):
                times[k].append(time_calls(lambda: nets[k].train_on_batch(x, y), n_calls))
        rows.append((name, step_flops(sizes, batch), np.median(times[1]), np.median(times[2]),
                     float(np.median(np.array(times[1]) / np.array(times[2])))))
    return rows


def header():
    lines = [f"pynn {pynn.__version__}, numpy {np.__version__}, python {platform.python_version()}, "
             f"{platform.machine()}"]
    lines += blas_info()
    try:
        import torch
        lines.append(f"torch {torch.__version__} threads={torch.get_num_threads()}")
    except ImportError:
        lines.append("torch not installed: no PyTorch column")
    return lines


def format_table(rows, ceilings):
    has_torch = any("torch_us" in r for r in rows)
    cols = ["config", "dtype", "batch", "pynn µs", "numpy µs", "speedup", "GFLOP/s", "% ceiling"]
    if has_torch:
        cols += ["torch µs", "vs torch"]
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        cells = [r["config"], r["dtype"], str(r["batch"]), f"{r['pynn_us']:.1f}",
                 f"{r['numpy_us']:.1f}", f"{r['speedup']:.2f}x", f"{r['gflops']:.1f}",
                 f"{100 * r['gflops'] / ceilings[r['dtype']]:.0f}%"]
        if has_torch:
            cells += [f"{r['torch_us']:.1f}" if "torch_us" in r else "-",
                      f"{r['vs_torch']:.2f}x" if "vs_torch" in r else "-"]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m pynn bench", description=__doc__)
    parser.add_argument("--configs", default=",".join(CONFIGS),
                        help="comma-separated subset of " + ",".join(CONFIGS))
    parser.add_argument("--dtypes", default="float32,float64")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--ceiling-size", type=int, default=2048,
                        help="side of the square GEMM that measures the ceiling")
    parser.add_argument("--torch-threads", type=int, default=None,
                        help="PyTorch's intra-op threads (default: its own)")
    parser.add_argument("--no-fit", action="store_true", help="skip the fit-epoch timing")
    parser.add_argument("--profile", action="store_true",
                        help="split each step into data, forward, loss, backward, update")
    parser.add_argument("--threads-sweep", action="store_true",
                        help="time pynn on one BLAS thread against two, per configuration")
    args = parser.parse_args(argv)
    for line in header():
        print(line)
    if args.threads_sweep:
        for dt in [np.dtype(d).type for d in args.dtypes.split(",")]:
            print(f"\n{np.dtype(dt).name}: pynn step, 1 BLAS thread vs 2 "
                  f"(policy threshold now {_threads.MIN_PARALLEL_FLOPS:.3g} flops)")
            print("| config | flops/step | 1 thread µs | 2 threads µs | 1-thread time / 2-thread time |")
            print("|---|---|---|---|---|")
            for name, flops, t1, t2, ratio in threads_sweep(dt, args.rounds):
                print(f"| {name} | {flops:.3g} | {t1 * 1e6:.1f} | {t2 * 1e6:.1f} | {ratio:.2f} |")
        return 0
    if args.profile:
        for name in args.configs.split(","):
            for dt in [np.dtype(d).type for d in args.dtypes.split(",")]:
                ours, theirs = profile_config(name, dt, args.rounds * 4)
                print(f"\n{name} {np.dtype(dt).name}: median µs per phase")
                print("| phase | pynn | numpy |")
                print("|---|---|---|")
                for phase, a, b in zip(PHASES, ours, theirs):
                    print(f"| {phase} | {a * 1e6:.1f} | {b * 1e6:.1f} |")
                print(f"| total | {ours.sum() * 1e6:.1f} | {theirs.sum() * 1e6:.1f} |")
        return 0
    dtypes = [np.dtype(d).type for d in args.dtypes.split(",")]
    ceilings = {}
    for dt in dtypes:
        ceilings[np.dtype(dt).name] = gemm_ceiling(dt, args.ceiling_size)
        print(f"GEMM ceiling ({np.dtype(dt).name}, {args.ceiling_size}^3 through SciPy's BLAS): "
              f"{ceilings[np.dtype(dt).name]:.1f} GFLOP/s")
    rows = []
    for name in args.configs.split(","):
        for dt in dtypes:
            rows.append(bench_config(name, dt, args.rounds, args.torch_threads))
    print()
    print(format_table(rows, ceilings))
    if not args.no_fit:
        for dt in dtypes:
            r = bench_fit_epoch(dt)
            print(f"\nfit epoch, mnist shape, 60000 samples, batch 32, {np.dtype(dt).name}: "
                  f"pynn {r['pynn_s']:.3f} s, numpy loop {r['numpy_s']:.3f} s, "
                  f"speedup {r['speedup']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
