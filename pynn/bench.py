"""Benchmark pynn against the NumPy loop its users would write, PyTorch, and the limit.

Run as ``python -m pynn bench``.  Every contender (pynn, the NumPy loop,
PyTorch when installed, and the GEMMs alone on each installed BLAS) runs in
a process of its own; the processes take turns, block by block, round after
round, in a rotating order, so that a noisy machine slows all alike.
Figures are medians over the rounds, with their spread (half the range, as
a share of the median); ratios are medians of the paired per-round ratios.

The step: a relu MLP with a linear output, MSE, SGD with Nesterov momentum
(the Keras form).  The limit of a configuration is the time of that step's
GEMMs alone on the fastest installed BLAS and thread count (SciPy's
OpenBLAS, and MKL when the ``mkl`` wheel is installed; the Python wrapper's
per-call cost subtracted), or with pynn's tile GEMM where the CPU runs it
(a split layer's products as its larger half on one core, the halves side
by side on two, the other products on OpenBLAS), plus the update's least
memory traffic (read w, v, g; write w, v) at the copy bandwidth measured
for that many bytes.  The fit
epoch runs several epochs in a row, reported apart, so that a slowdown in
later epochs shows.
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

from pynn import _bench_worker as work

CONFIGS = {
    # name: (layer sizes, batch size)
    "tiny": ((64, 32, 10), 16),
    "mnist": ((784, 128, 10), 32),
    "mid": ((784, 512, 512, 10), 128),
    "wide": ((1024, 2048, 2048, 1024), 256),
}
QUICK_CONFIGS = {"tiny": ((64, 32, 10), 16), "small": ((128, 64, 10), 32)}
FIT_SIZES, FIT_BATCH, FIT_SAMPLES = (784, 128, 10), 32, 60000
QUICK_FIT = ((64, 32, 10), 16, 1024)
QUICK_BLOCK = (0.02, 0.02)  # seconds of settling calls, then of timed calls

CONTENDERS = [("pynn", None), ("numpy", None), ("torch", None)]
# the limit on each BLAS, and with pynn's tile GEMM for the split layers'
# halves (the BLAS's threads for the rest)
LIMITS = [("limit", "openblas"), ("limit", "mkl"), ("limit", "tiles")]
LABELS = {"pynn": "pynn", "numpy": "NumPy loop", "torch": "PyTorch"}
CPU_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl",
             "avx512_vnni", "avx512_bf16", "amx_tile")


# --------------------------------------------------------- the machine


def cpu_info():
    """(model name, flags of interest present) of this machine's CPU."""
    name, flags = platform.processor() or platform.machine(), []
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
    except OSError:
        return name, flags
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and value.strip():
            name = value.strip()
        if key.strip() == "flags":
            have = set(value.split())
            flags = [f for f in CPU_FLAGS if f in have]
            break
    return name, flags


def blas_info():
    """One line per BLAS library loaded in this process: its kernel and threads."""
    import scipy.linalg  # noqa: F401  (load SciPy's BLAS, the one pynn calls)
    return [describe_blas(lib) for lib in work.blas_libraries()]


def _threads(n):
    return f"{n} thread" + ("" if n == 1 else "s")


def describe_blas(lib):
    if "note" in lib:
        return lib["note"]
    kernel = lib.get("architecture") or lib.get("corename") or "?"
    layer = f", {lib['threading_layer']} threads" if lib.get("threading_layer") else ""
    return (f"{lib.get('internal_api')} {lib.get('version')} ({lib['file']}), "
            f"kernel {kernel}, {_threads(lib.get('num_threads'))}{layer}")


def describe_worker(info):
    c = info["contender"]
    if c == "pynn":
        tiles = " (a split layer's halves on its AVX-512 tile GEMM)" if info.get("tile_gemm") \
            else ""
        head = (f"pynn {info['pynn']} (numpy {info['numpy']}), "
                f"GEMM {info.get('gemm', '?')}{tiles}, "
                f"kernels built for {info.get('kernels', '?')}, "
                f"exp/tanh/sigmoid on the {info.get('vmath', '?')} path, n_threads="
                f"{info['threads'] or 'None (training: big layers in halves on two cores, one BLAS thread each; else its BLAS decides, 1 for small calls)'}")
    elif c == "numpy":
        head = f"NumPy loop: numpy {info['numpy']}"
    elif c == "torch":
        head = (f"PyTorch {info['torch']}, {_threads(info['torch_threads'])}, "
                f"BLAS {info.get('blas_info', '?')}, oneDNN {'on' if info['mkldnn'] else 'off'}")
    else:
        head = f"limit on {info['backend']}"
    libs = [describe_blas(lib) for lib in info["blas"]]
    return head + ("; BLAS: " + "; ".join(libs) if libs else "; no BLAS library seen")


# --------------------------------------------------------- the workers


class Worker:
    """One contender's process, driven one JSON line at a time."""

    def __init__(self, contender, backend=None, threads=None):
        self.contender, self.backend = contender, backend
        # run as a file, not as pynn._bench_worker: importing the package would
        # load pynn and SciPy's BLAS into every contender's process
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "import runpy, sys; runpy.run_path(sys.argv[1], "
             "run_name='__main__')", work.__file__],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        # answered by greet(), so that the processes import their libraries side by side
        self.send(op="hello", contender=contender, backend=backend, threads=threads,
                  pynn_root=os.path.dirname(os.path.dirname(work.__file__)))
        self.skip = self.info = None

    def greet(self):
        hello = self.receive()
        self.skip = hello.get("skip") or hello.get("error")
        self.info = hello.get("info")

    @property
    def name(self):
        return self.contender if self.backend is None else f"{self.contender} {self.backend}"

    def ask(self, **request):
        self.send(**request)
        return self.receive()

    def send(self, **request):
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()

    def receive(self):
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.name} process ended (exit code {self.proc.wait()})")
        return json.loads(line)

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=60)


def interleave(cases, rounds):
    """{key: [reply per round]}: each case run once per round, the order rotating."""
    results = {key: [] for key in cases}
    keys = list(cases)
    for r in range(rounds):
        shift = r % len(keys)
        for key in keys[shift:] + keys[:shift]:
            worker, case = cases[key]
            reply = worker.ask(op="run", case=case)
            if "error" in reply:
                raise RuntimeError(f"{worker.name}: {reply['error']}")
            results[key].append(reply)
    return results


def setup_cases(workers, request, threads):
    """{key: (worker, case id)} for every contender that could set this case up."""
    cases, failed = {}, []
    for w in workers:
        if w.contender != "limit":
            variants = [(w.contender, threads)]
        else:
            variants = [(f"{w.backend} {t}t", t)
                        for t in ([threads] if threads else sorted({1, work.n_cores()}))]
        for key, t in variants:
            case = f"{request['name']}-{request['dtype']}-{key}"
            kind = "limit" if w.contender == "limit" else request["kind"]
            reply = w.ask(op="setup", case=case, contender=w.contender, backend=w.backend,
                          threads=t, **dict(request, kind=kind))
            if "error" in reply:
                failed.append(f"{w.name}: {reply['error']}")
            else:
                cases[key] = (w, case)
    return cases, failed


def drop_cases(cases):
    for worker, case in cases.values():
        worker.ask(op="drop", case=case)


# --------------------------------------------------------- the figures


def summary(seconds):
    s = np.asarray(seconds, float)
    med = float(np.median(s))
    return med, float((s.max() - s.min()) / 2 / med) if med > 0 else 0.0


def paired_ratio(num, den):
    return float(np.median(np.asarray(num, float) / np.asarray(den, float)))


def bench_step(workers, name, sizes, batch, dtype, rounds, threads, block=None):
    request = {"name": name, "kind": "step", "sizes": list(sizes), "batch": batch,
               "dtype": dtype, "block": block}
    cases, failed = setup_cases(workers, request, threads)
    for line in failed:
        print(f"  {name} {dtype}: {line}")
    results = interleave(cases, rounds)
    drop_cases(cases)
    times = {k: [r["seconds"] for r in v] for k, v in results.items()}
    row = {"config": name, "sizes": sizes, "batch": batch, "dtype": dtype}
    for c, _ in CONTENDERS:
        if c in times:
            row[c] = summary(times[c])
    for c in ("numpy", "torch"):
        if c in times and "pynn" in times:
            row["vs_" + c] = paired_ratio(times[c], times["pynn"])
    limits = {k: v for k, v in results.items() if k not in dict(CONTENDERS)}
    if limits:
        best = min(limits, key=lambda k: np.median([r["seconds"] for r in limits[k]]))
        rs = limits[best]
        row["limit"] = summary([r["seconds"] for r in rs])
        row["limit_gemm"] = float(np.median([r["gemm"] for r in rs]))
        row["limit_update"] = float(np.median([r["update"] for r in rs]))
        row["limit_bw"] = float(np.median([r["bandwidth"] for r in rs]))
        row["limit_blas"] = best
        if "pynn" in row:
            row["share"] = row["limit"][0] / row["pynn"][0]
    return row


def bench_fit(workers, sizes, batch, n_samples, dtype, epochs, threads):
    request = {"name": "fit", "kind": "fit", "sizes": list(sizes), "batch": batch,
               "dtype": dtype, "n_samples": n_samples}
    contenders = [w for w in workers if w.contender != "limit"]
    cases, failed = setup_cases(contenders, request, threads)
    for line in failed:
        print(f"  fit {dtype}: {line}")
    results = interleave(cases, epochs)
    drop_cases(cases)
    row = {"dtype": dtype, "sizes": sizes, "batch": batch, "n_samples": n_samples}
    for c, replies in results.items():
        s = [r["seconds"] for r in replies]
        later = s[1:] or s
        row[c] = {"first": s[0], "later": summary(later),
                  "slowdown": float(np.median(later)) / s[0],
                  "loss": [r["loss"] for r in replies]}
    for c in ("numpy", "torch"):
        if c in row and "pynn" in row:  # in the steady state: the later epochs
            row["vs_" + c] = row[c]["later"][0] / row["pynn"]["later"][0]
    return row


# --------------------------------------------------------- the tables


def fmt_time(seconds):
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.3f} s"


def fmt_spread(pair):
    return f"{fmt_time(pair[0])} ±{100 * pair[1]:.0f}%"


def config_label(row):
    return f"{row['config']} {'-'.join(map(str, row['sizes']))}, batch {row['batch']}"


def table(header, lines):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(cells) + " |" for cells in lines]
    return "\n".join(out)


def step_table(rows, contenders, markdown=False):
    have_torch = "torch" in contenders
    header = ["config", "dtype", "pynn", "NumPy loop"] + (["PyTorch"] if have_torch else [])
    header += ["pynn vs NumPy"] + (["vs PyTorch"] if have_torch else [])
    header += ["limit", "pynn's share of limit"]
    if not markdown:
        header += ["limit: GEMM + update, BLAS threads"]
    lines = []
    for r in rows:
        cell = (lambda p: fmt_time(p[0])) if markdown else fmt_spread
        cells = [config_label(r), r["dtype"]]
        cells += [cell(r[c]) if c in r else "-" for c in ["pynn", "numpy"] +
                  (["torch"] if have_torch else [])]
        cells += [f"{r['vs_numpy']:.2f}×" if "vs_numpy" in r else "-"]
        if have_torch:
            cells += [f"{r['vs_torch']:.2f}×" if "vs_torch" in r else "-"]
        cells += [cell(r["limit"]) if "limit" in r else "-",
                  f"{100 * r['share']:.0f}%" if "share" in r else "-"]
        if not markdown:
            cells += [f"{fmt_time(r['limit_gemm'])} + {fmt_time(r['limit_update'])} "
                      f"({r['limit_bw'] / 1e9:.0f} GB/s), {r['limit_blas']}"
                      if "limit" in r else "-"]
        lines.append(cells)
    return table(header, lines)


def fit_table(rows, contenders, markdown=False):
    header = ["fit epoch", "dtype"]
    for c in contenders:
        header += [f"{LABELS[c]} epoch 1", f"{LABELS[c]} later"]
        if not markdown:
            header += [f"{LABELS[c]} later / first"]
    header += [f"pynn vs {LABELS[c]}" for c in contenders if c != "pynn"]
    lines = []
    for r in rows:
        cells = [f"{r['n_samples']:,} × {r['sizes'][0]}, batch {r['batch']}", r["dtype"]]
        for c in contenders:
            if c not in r:
                cells += ["-", "-"] + ([] if markdown else ["-"])
                continue
            later = fmt_time(r[c]["later"][0]) if markdown else fmt_spread(r[c]["later"])
            cells += [fmt_time(r[c]["first"]), later]
            if not markdown:
                cells += [f"{r[c]['slowdown']:.2f}"]
        cells += [f"{r['vs_' + c]:.2f}×" if "vs_" + c in r else "-"
                  for c in contenders if c != "pynn"]
        lines.append(cells)
    return table(header, lines)


# --------------------------------------------------------- other modes


def profile_config(name, dtype, rounds):
    """Median seconds per phase of one pynn step (from its compiled network) and NumPy's."""
    from pynn import reference
    sizes, batch = CONFIGS[name]
    weights = work.initial_weights(sizes, dtype)
    model = work.pynn_model(weights, dtype)
    ref = reference.ReferenceNetwork(weights, ["relu"] * (len(sizes) - 2) + ["linear"],
                                     learning_rate=work.LEARNING_RATE,
                                     momentum=work.MOMENTUM, nesterov=True)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4096, sizes[0])).astype(dtype)
    y = rng.standard_normal((4096, sizes[-1])).astype(dtype)
    model.train_on_batch(x[:batch], y[:batch])  # hands loss and optimizer to the network
    engine = model.engine
    if not hasattr(engine, "profile_step"):
        return None
    ours, theirs = [], []
    for _ in range(rounds):
        rows = rng.permutation(4096)[:batch].astype(np.intp)
        ours.append(engine.profile_step(x, y, rows))
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


PHASES = ["data", "forward", "loss", "backward", "update"]


def print_profiles(configs, dtypes, rounds):
    for name in configs:
        for dt in dtypes:
            result = profile_config(name, np.dtype(dt).type, rounds * 4)
            if result is None:
                print(f"\n{name} {dt}: this build's compiled network has no phase profile")
                continue
            ours, theirs = result
            print(f"\n{name} {dt}: median µs per phase (one process: pynn, then NumPy)")
            print(table(["phase", "pynn", "numpy"],
                        [[p, f"{a * 1e6:.1f}", f"{b * 1e6:.1f}"]
                         for p, a, b in zip(PHASES, ours, theirs)] +
                        [["total", f"{ours.sum() * 1e6:.1f}", f"{theirs.sum() * 1e6:.1f}"]]))


def print_threads_sweep(configs, dtypes, rounds):
    """pynn's step with n_threads=1 against n_threads=2, per configuration."""
    for dt in dtypes:
        lines = []
        for name in configs:
            sizes, batch = CONFIGS[name]
            weights = work.initial_weights(sizes, dt)
            x, y = work.step_batch(sizes, batch, dt)
            models = {k: work.pynn_model(weights, dt, n_threads=k) for k in (1, 2)}
            steps = {k: (lambda m=m: m.train_on_batch(x, y)) for k, m in models.items()}
            times = {1: [], 2: []}
            for _ in range(rounds):
                for k in (1, 2):
                    times[k].append(work.timed_block(steps[k]))
            flops = sum(2 * m * n * k for m, n, k, _, _ in work.gemm_sequence(sizes, batch))
            lines.append([name, f"{flops:.3g}", fmt_time(np.median(times[1])),
                          fmt_time(np.median(times[2])),
                          f"{paired_ratio(times[1], times[2]):.2f}"])
        print(f"\n{dt}: pynn step, 1 BLAS thread vs 2")
        print(table(["config", "GEMM flops/step", "1 thread", "2 threads",
                     "1-thread time / 2-thread time"], lines))


def _numpy_elementwise(name, x, y):
    if name == "exp":
        return lambda: np.exp(x, out=y)
    if name == "tanh":
        return lambda: np.tanh(x, out=y)

    def sigmoid():  # as a NumPy user writes it, without temporaries
        np.negative(x, out=y)
        np.exp(y, out=y)
        np.add(y, 1, out=y)
        np.reciprocal(y, out=y)
    return sigmoid


def print_elementwise(dtypes, rounds, n_elements=1 << 20):
    """ns per element of exp/tanh/sigmoid: NumPy's ufuncs and each path of csrc/pynn/kernels/vmath.h.

    One thread each, no BLAS: one process serves.  pynn's figure holds a copy
    of the input into the output (its functions work in place), NumPy's not.
    """
    from pynn import _elementwise as vm
    paths = vm.supported_isas()
    rng = np.random.default_rng(0)
    for dt in dtypes:
        x = rng.uniform(-10, 10, n_elements).astype(dt)
        y = np.empty_like(x)
        lines = []
        for name in vm.FUNCTIONS:
            calls = {"numpy": _numpy_elementwise(name, x, y)}
            calls.update({p: (lambda p=p: vm.apply(name, x, p, out=y)) for p in paths})
            times = {k: [] for k in calls}
            for r in range(rounds):
                keys = list(calls)[r % len(calls):] + list(calls)[:r % len(calls)]
                for k in keys:
                    times[k].append(work.timed_block(calls[k], 0.05, 0.1) / n_elements)
            med = {k: float(np.median(v)) for k, v in times.items()}
            lines.append([name] + [f"{med[k] * 1e9:.2f}" for k in calls] +
                         [f"{med['numpy'] / med[paths[-1]]:.2f}×"])
        print(f"\n{dt}, {n_elements:,} elements: ns per element, median of {rounds} rounds "
              f"(this process runs the {vm.isa()} path)")
        print(table(["function", "NumPy"] + [f"pynn {p}" for p in paths] +
                    [f"NumPy / pynn {paths[-1]}"], lines))


# --------------------------------------------------------- the command


def parse(argv):
    parser = argparse.ArgumentParser(prog="python -m pynn bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="tiny shapes, one round, a short fit: seconds in all")
    parser.add_argument("--configs", default=None,
                        help="comma-separated subset of " + ",".join(CONFIGS) +
                             ", and 'fit' for the fit epoch (default: all)")
    parser.add_argument("--dtype", "--dtypes", dest="dtype", default="float32,float64",
                        help="float32, float64 or both, comma-separated")
    parser.add_argument("--rounds", type=int, default=None,
                        help="interleaved rounds per configuration (default 7; 1 with --quick)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="fit epochs in a row, each timed (default 4; 2 with --quick)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for every contender and the limit (default: pynn's "
                             "and NumPy's BLAS choose, PyTorch one per core, the limit "
                             "the faster of 1 and one per core)")
    parser.add_argument("--no-fit", action="store_true",
                        help="leave the fit epochs out (as --configs without 'fit')")
    parser.add_argument("--markdown", action="store_true",
                        help="print the README's tables (medians only)")
    parser.add_argument("--profile", action="store_true",
                        help="split pynn's step into data, forward, loss, backward, update")
    parser.add_argument("--threads-sweep", action="store_true",
                        help="time pynn's step on one BLAS thread against two")
    parser.add_argument("--elementwise", action="store_true",
                        help="time exp/tanh/sigmoid on each instruction-set path against "
                             "NumPy's")
    args = parser.parse_args(argv)
    known = dict(QUICK_CONFIGS if args.quick else CONFIGS)
    names = (args.configs or ",".join(list(known) + ["fit"])).split(",")
    for n in names:
        if n not in known and n != "fit":
            parser.error(f"--configs: unknown configuration {n!r}; choose from "
                         f"{', '.join(list(known) + ['fit'])}")
    args.configs = [n for n in names if n != "fit"]
    args.fit = "fit" in names and not args.no_fit
    args.known = known
    args.dtypes = args.dtype.split(",")
    for d in args.dtypes:
        if d not in ("float32", "float64"):
            parser.error(f"--dtype: expected float32 or float64, got {d!r}")
    for opt in ("rounds", "epochs", "threads"):
        value = getattr(args, opt)
        if value is not None and value < 1:
            parser.error(f"--{opt} must be at least 1, got {value}")
    args.rounds = args.rounds or (1 if args.quick else 7)
    args.epochs = args.epochs or (2 if args.quick else 4)
    return args


def main(argv=None):
    args = parse(argv)
    if args.profile:
        print_profiles([c for c in args.configs if c in CONFIGS], args.dtypes, args.rounds)
        return 0
    if args.elementwise:
        print_elementwise(args.dtypes, args.rounds)
        return 0
    if args.threads_sweep:
        print_threads_sweep([c for c in args.configs if c in CONFIGS], args.dtypes,
                            args.rounds)
        return 0
    name, flags = cpu_info()
    print(f"CPU: {name}, {work.n_cores()} cores, flags {' '.join(flags) or 'none of interest'}; "
          f"python {platform.python_version()}; load average at start "
          f"{', '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print("threads: " + (f"{args.threads} for every contender and the limit" if args.threads
                         else "pynn's and NumPy's BLAS choose, PyTorch one per core, the limit "
                              "the faster of 1 and one per core"))
    if not args.quick:
        bw = work.copy_bandwidth(1 << 29, seconds=0.5)
        print(f"memory bandwidth, a 256 MiB copy: {bw / 1e9:.1f} GB/s (read + written)")
    workers = []
    try:
        started = [Worker(contender, backend, args.threads)
                   for contender, backend in CONTENDERS + LIMITS]
        for w in started:
            w.greet()
            if w.skip:
                print(f"{LABELS.get(w.contender, w.name)}: {w.skip}")
                w.close()
                continue
            print(describe_worker(w.info))
            workers.append(w)
        contenders = [w.contender for w in workers if w.contender != "limit"]
        rows = []
        for cfg in args.configs:
            sizes, batch = args.known[cfg]
            for dt in args.dtypes:
                print(f"timing {cfg} {dt} ...", file=sys.stderr, flush=True)
                rows.append(bench_step(workers, cfg, sizes, batch, dt, args.rounds,
                                       args.threads, QUICK_BLOCK if args.quick else None))
        if rows:
            print(f"\nOne train step, median of {args.rounds} interleaved rounds"
                  + ("" if args.markdown else " (± half the range)") + ":\n")
            print(step_table(rows, contenders, markdown=args.markdown))
        if args.fit:
            sizes, batch, n = QUICK_FIT if args.quick else (FIT_SIZES, FIT_BATCH, FIT_SAMPLES)
            print("timing fit epochs ...", file=sys.stderr, flush=True)
            fits = [bench_fit(workers, sizes, batch, n, dt, args.epochs, args.threads)
                    for dt in args.dtypes]
            later = (f"the median of epochs 2 to {args.epochs}" if args.epochs > 2 else
                     "epoch 2" if args.epochs == 2 else "epoch 1 again")
            print(f"\nfit, {'-'.join(map(str, sizes))} on digit-like images, "
                  f"{args.epochs} epochs in a row, interleaved; 'later' is {later}:\n")
            print(fit_table(fits, contenders, markdown=args.markdown))
            if not args.markdown:
                for r in fits:
                    print(f"\n{r['dtype']}: mean training loss of each epoch (shuffled apart, "
                          f"so close, not equal): " + "; ".join(
                              f"{LABELS[c]} " + ", ".join(f"{v:.4f}" for v in r[c]["loss"])
                              for c in contenders if c in r))
    finally:
        for w in workers:
            w.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
