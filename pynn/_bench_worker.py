"""The benchmark's contenders, each run in a process of its own.

``python -m pynn bench`` runs this file once per contender (pynn, the
NumPy loop, PyTorch, and the GEMM-alone limit on each BLAS) and talks to it
over stdin/stdout, one JSON object a line:

    {"op": "setup", "case": ..., "kind": "step" | "fit", ...}  -> {"info": ...}
    {"op": "run", "case": ...}                                  -> {"seconds": ...}
    {"op": "drop", "case": ...}                                 -> {}

Two thread pools in one process (NumPy's or PyTorch's beside pynn's) spin
into each other's turns on a machine with few cores, hence one process per
contender; only one of them computes at a time.

The step is the same for all: a relu MLP with a linear output, MSE (the mean
over every element), SGD with Nesterov momentum in the Keras form
``v = mu*v - lr*g; w += mu*v - lr*g`` (PyTorch's form gives the same weights
at a constant learning rate).
"""
import contextlib
import ctypes
import glob
import json
import os
import sys
import time

import numpy as np

LEARNING_RATE = 1e-3
MOMENTUM = 0.9

# A pool's threads keep spinning for a while after its last call, so each
# timed block starts with a settling stretch of untimed calls, long enough to
# outlast the previous contender's spinning (OpenBLAS, GNU and Intel OpenMP).
SETTLE_SECONDS = 0.25
BLOCK_SECONDS = 0.15


def n_cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


# ---------------------------------------------------------------- the data


def initial_weights(sizes, dtype, seed=0):
    """[W1, b1, W2, b2, ...], W of shape (n_out, n_in) Glorot-uniform, b zero."""
    rng = np.random.default_rng(seed)
    weights = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        limit = np.sqrt(6.0 / (n_in + n_out))
        weights.append(rng.uniform(-limit, limit, (n_out, n_in)).astype(dtype))
        weights.append(np.zeros(n_out, dtype))
    return weights


def step_batch(sizes, batch, dtype, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, sizes[0])).astype(dtype)
    y = rng.standard_normal((batch, sizes[-1])).astype(dtype)
    return x, y


def digits_like(n_samples, n_features, n_classes, dtype, seed=2):
    """Images shaped like handwritten digits: ink near the centre, none at the border.

    Pixels of the border stay zero in most batches, so the gradients of
    their weights are zero there and their velocities decay geometrically,
    through the subnormal range, as with real digit images. Targets are
    one-hot random classes.
    """
    rng = np.random.default_rng(seed)
    side = int(round(np.sqrt(n_features)))
    if side * side == n_features:
        r = np.hypot(*np.meshgrid(np.arange(side) - (side - 1) / 2,
                                  np.arange(side) - (side - 1) / 2)).ravel()
        p_ink = 0.5 * np.exp(-(r / (side / 3.5)) ** 4)
    else:
        p_ink = np.full(n_features, 0.3)
    x = np.empty((n_samples, n_features), dtype)
    chunk = 4096
    for start in range(0, n_samples, chunk):
        part = rng.random((min(chunk, n_samples - start), n_features))
        ink = rng.random(part.shape) < p_ink
        x[start:start + part.shape[0]] = np.where(ink, part, 0.0)
    y = np.zeros((n_samples, n_classes), dtype)
    y[np.arange(n_samples), rng.integers(0, n_classes, n_samples)] = 1
    return x, y


# ------------------------------------------------------------ contenders


def pynn_model(weights, dtype, n_threads=None):
    import pynn
    sizes = [weights[0].shape[1]] + [w.shape[0] for w in weights[0::2]]
    layers = [pynn.Dense(sizes[1], activation="relu" if len(sizes) > 2 else "linear",
                         input_dim=sizes[0])]
    layers += [pynn.Dense(u, activation="relu") for u in sizes[2:-1]]
    if len(sizes) > 2:
        layers += [pynn.Dense(sizes[-1])]
    model = pynn.Sequential(layers, dtype=dtype, seed=0, n_threads=n_threads)
    model.compile(loss="mse", optimizer=pynn.SGD(learning_rate=LEARNING_RATE,
                                                 momentum=MOMENTUM, nesterov=True))
    model.set_weights(weights)
    return model


class NumpyMLP:
    """The training step a NumPy user writes: the formulas of pynn/reference.py."""

    def __init__(self, weights):
        self.W = [np.array(w) for w in weights[0::2]]
        self.b = [np.array(b) for b in weights[1::2]]
        self.vW = [np.zeros_like(w) for w in self.W]
        self.vb = [np.zeros_like(b) for b in self.b]

    def get_weights(self):
        return [p for pair in zip(self.W, self.b) for p in pair]

    def train_step(self, x, y):
        lr, mu = LEARNING_RATE, MOMENTUM
        acts = [x]
        for i, (W, b) in enumerate(zip(self.W, self.b)):
            z = acts[-1] @ W.T + b
            if i < len(self.W) - 1:
                np.maximum(z, 0, out=z)
            acts.append(z)
        diff = acts[-1] - y
        loss = float(np.mean(diff * diff))
        grad = diff * (2 / diff.size)
        for i in range(len(self.W) - 1, -1, -1):
            grad_W = grad.T @ acts[i]
            grad_b = grad.sum(axis=0)
            if i > 0:
                grad = (grad @ self.W[i]) * (acts[i] > 0)
            for w, g, v in ((self.W[i], grad_W, self.vW[i]), (self.b[i], grad_b, self.vb[i])):
                v *= mu
                v -= lr * g
                w += mu * v - lr * g
        return loss


def torch_mlp(weights, n_threads):
    """A PyTorch model with these weights, and its step; None without torch."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(n_threads)
    mods = []
    n_layers = len(weights) // 2
    for i in range(n_layers):
        W = torch.from_numpy(np.array(weights[2 * i]))
        lin = torch.nn.Linear(W.shape[1], W.shape[0], dtype=W.dtype)
        with torch.no_grad():
            lin.weight.copy_(W)
            lin.bias.copy_(torch.from_numpy(np.array(weights[2 * i + 1])))
        mods.append(lin)
        if i < n_layers - 1:
            mods.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*mods)
    opt = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM,
                          nesterov=True)
    loss_fn = torch.nn.MSELoss()

    def step(x, y):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss.detach()
    return model, step


# ----------------------------------------------------------- the limit

def gemm_sequence(sizes, batch):
    """The GEMMs of one train step, as (m, n, k, trans_a, trans_b) row-major.

    Forward Z = A @ W.T, weight gradient dW = dZ.T @ A, and dA = dZ @ W for
    every layer past the first.
    """
    seq = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        seq.append((batch, n_out, n_in, False, True))
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        seq.append((n_out, n_in, batch, True, False))
        if i > 0:
            seq.append((batch, n_in, n_out, False, False))
    return seq


def tile_plan(sizes, batch, dtype, threads):
    """The GEMMs of one train step as pynn multiplies them with its tile
    GEMM, as (m, n, k, trans_a, trans_b, on_tiles, calls): a split layer's
    products as its larger half on the tiles where they take it, once when
    the halves run side by side on two cores (threads >= 2), twice when one
    core runs both; every other product whole on the BLAS."""
    from pynn import _dense, _gemm
    name = np.dtype(dtype).name
    plan = []
    for m, n, k, ta, tb in gemm_sequence(sizes, batch):
        if tb:                          # forward: (batch, n_out, n_in)
            n_in, n_out, half = k, n, (batch, None, k, False, True)
        elif ta:                        # weight gradient: (n_out, n_in, batch)
            n_in, n_out, half = n, m, (None, n, batch, True, False)
        else:                           # input gradient: (batch, n_in, n_out)
            n_in, n_out, half = n, k, (batch, n, None, False, False)
        first = _dense.split_units(batch, n_in, n_out)
        shape = tuple(n_out - first if v is None else v for v in half[:3])
        if first and _gemm.tile_gemm_fits(name, half[3], half[4], *shape):
            plan.append(shape + half[3:] + (True, 1 if threads >= 2 else 2))
        else:
            plan.append((m, n, k, ta, tb, False, 1))
    return plan


def n_params(sizes):
    return sum(n_in * n_out + n_out for n_in, n_out in zip(sizes[:-1], sizes[1:]))


def operands(m, n, k, trans_a, trans_b, dtype, rng):
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    return a, b, np.zeros((m, n), dtype)


def scipy_gemm(dtype):
    """bind(a, b, c, trans_a, trans_b): a call doing c[...] = op(a) @ op(b), SciPy's BLAS.

    The arrays are C-contiguous. Row-major C = op(A) op(B) is column-major
    C.T = op(B).T op(A).T, and the .T views are Fortran-ordered: nothing is copied.
    """
    from scipy.linalg import blas
    gemm = blas.sgemm if dtype == np.float32 else blas.dgemm

    def bind(a, b, c, trans_a, trans_b):
        at, bt, ct = a.T, b.T, c.T
        return lambda: gemm(1.0, bt, at, 0.0, ct, trans_a=trans_b, trans_b=trans_a,
                            overwrite_c=True)
    return bind


def find_mkl():
    """ctypes handle of MKL's runtime library (the ``mkl`` wheel), or None."""
    names = []
    for prefix in dict.fromkeys([sys.prefix, sys.base_prefix]):
        names += sorted(glob.glob(os.path.join(prefix, "lib", "libmkl_rt.so*")))
    names += ["libmkl_rt.so.2", "libmkl_rt.so"]
    for name in names:
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    return None


def mkl_gemm(dtype, lib):
    """bind(a, b, c, trans_a, trans_b): a call doing c[...] = op(a) @ op(b), MKL's cblas."""
    real = ctypes.c_float if dtype == np.float32 else ctypes.c_double
    fn = lib.cblas_sgemm if dtype == np.float32 else lib.cblas_dgemm
    ci, vp = ctypes.c_int, ctypes.c_void_p
    fn.argtypes = [ci, ci, ci, ci, ci, ci, real, vp, ci, vp, ci, real, vp, ci]
    fn.restype = None
    row_major, no_trans, trans = 101, 111, 112

    def bind(a, b, c, trans_a, trans_b):
        m, n = c.shape
        k = a.shape[0] if trans_a else a.shape[1]
        # converted once, so that a call costs ctypes as little as it can
        args = [ci(row_major), ci(trans if trans_a else no_trans),
                ci(trans if trans_b else no_trans), ci(m), ci(n), ci(k), real(1.0),
                vp(a.ctypes.data), ci(a.shape[1]), vp(b.ctypes.data), ci(b.shape[1]),
                real(0.0), vp(c.ctypes.data), ci(n)]
        return lambda: fn(*args)
    return bind


def blas_gemm(backend, dtype):
    if backend == "openblas":
        return scipy_gemm(dtype)
    lib = find_mkl()
    if lib is None:
        return None
    return mkl_gemm(dtype, lib)


def seconds_per_call(fn, n_calls):
    t0 = time.perf_counter()
    for _ in range(n_calls):
        fn()
    return (time.perf_counter() - t0) / n_calls


def timed_block(fn, settle=SETTLE_SECONDS, block=BLOCK_SECONDS):
    """Seconds per call of fn: a settling stretch of calls, then block seconds of them."""
    t0 = time.perf_counter()
    n = 0
    while time.perf_counter() < t0 + settle or n < 2:
        fn()
        n += 1
    per_call = (time.perf_counter() - t0) / n
    return seconds_per_call(fn, max(3, int(block / max(per_call, 1e-7))))


def copy_bandwidth(n_bytes, seconds=0.05):
    """Bytes per second (read + written) of a copy moving n_bytes in all."""
    n = max(1, n_bytes // 16)
    src, dst = np.ones(n), np.empty(n)
    np.copyto(dst, src)
    tiny_src, tiny_dst = np.ones(1), np.empty(1)
    reps = max(3, int(seconds / max(seconds_per_call(lambda: np.copyto(dst, src), 2), 1e-7)))
    best = min(seconds_per_call(lambda: np.copyto(dst, src), reps) for _ in range(3))
    overhead = min(seconds_per_call(lambda: np.copyto(tiny_dst, tiny_src), 1000)
                   for _ in range(3))
    return 16 * n / max(best - overhead, 1e-9)


def tile_gemm_call(a, b, c, trans_a, trans_b):
    """A call doing c[...] = op(a) @ op(b) on pynn's tile GEMM."""
    from pynn import _gemm
    return lambda: _gemm.tile_matmul(trans_a, trans_b, 1.0, a, b, 0.0, c)


class LimitCase:
    """The step's GEMMs alone on one BLAS, plus the update's minimal traffic.

    backend "tiles": the GEMMs as pynn multiplies them with its tile GEMM
    (tile_plan), the others on SciPy's OpenBLAS."""

    def __init__(self, sizes, batch, dtype, backend, threads, block):
        self.block = block
        bind = blas_gemm("openblas" if backend == "tiles" else backend, dtype)
        if bind is None:
            raise LookupError("MKL not installed (pip install mkl)")
        rng = np.random.default_rng(0)
        plan = tile_plan(sizes, batch, dtype, threads) if backend == "tiles" else \
            [(m, n, k, ta, tb, False, 1) for m, n, k, ta, tb in gemm_sequence(sizes, batch)]
        # the arrays stay referenced here while the bound calls point at them
        self.operands = [(operands(m, n, k, ta, tb, dtype, rng), ta, tb, tiles, times)
                         for m, n, k, ta, tb, tiles, times in plan]
        self.operands.append((operands(1, 1, 1, False, False, dtype, rng), False, False,
                              False, 1))
        calls = []
        for abc, ta, tb, tiles, times in self.operands:
            calls += [(tile_gemm_call if tiles else bind)(*abc, ta, tb)] * times
        self.calls, self.one_tiny = calls[:-1], calls[-1]
        self.threads = threads
        itemsize = np.dtype(dtype).itemsize
        # read w, v, g; write w, v: the least any SGD-momentum update moves
        self.update_bytes = 5 * n_params(sizes) * itemsize
        self.bandwidth = copy_bandwidth(self.update_bytes)

    def sequence(self):
        for call in self.calls:
            call()

    def run(self):
        try:
            from threadpoolctl import threadpool_limits
            limits = threadpool_limits(self.threads, user_api="blas")
        except ImportError:  # the BLAS's own thread count, then
            limits = contextlib.nullcontext()
        with limits:
            measured = timed_block(self.sequence, *self.block)
            # the Python wrapper's cost per call, which the compiled kernels do not pay
            overhead = min(seconds_per_call(self.one_tiny, 2000) for _ in range(3))
        # a lower bound: the 1x1x1 product's time also holds the BLAS's own
        # dispatch, which the kernels do pay, so this may subtract too much
        gemm = max(measured - overhead * len(self.calls), 0.0)
        update = self.update_bytes / self.bandwidth
        return {"seconds": gemm + update, "gemm": gemm, "update": update,
                "bandwidth": self.bandwidth, "gemm_measured": measured,
                "call_overhead": overhead, "n_gemm": len(self.calls),
                "update_bytes": self.update_bytes, "threads": self.threads}


# ------------------------------------------------------------- the cases


def use_threads(contender, threads):
    """Threads for the rest of the process: NumPy's BLAS, or PyTorch's (pynn's are per model)."""
    if threads is None:
        return
    if contender == "numpy":
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            return
        threadpool_limits(threads, user_api="blas")
    elif contender == "torch":
        import torch
        torch.set_num_threads(threads)


class StepCase:
    """One contender's train step on one configuration, timed in blocks."""

    def __init__(self, contender, sizes, batch, dtype, threads, block):
        self.block = block
        weights = initial_weights(sizes, dtype)
        x, y = step_batch(sizes, batch, dtype)
        if contender == "pynn":
            model = pynn_model(weights, dtype, threads)
            self.step = lambda: model.train_on_batch(x, y)
        elif contender == "numpy":
            mlp = NumpyMLP(weights)
            self.step = lambda: mlp.train_step(x, y)
        else:
            import torch
            _, step = torch_mlp(weights, threads or n_cores())
            tx, ty = torch.from_numpy(x), torch.from_numpy(y)
            self.step = lambda: step(tx, ty)
        self.step()

    def run(self):
        return {"seconds": timed_block(self.step, *self.block)}


class FitCase:
    """One contender's training epochs over a data set: each run is one more epoch."""

    def __init__(self, contender, sizes, batch, dtype, threads, n_samples, seed=3):
        weights = initial_weights(sizes, dtype)
        x, y = digits_like(n_samples, sizes[0], sizes[-1], dtype)
        rng = np.random.default_rng(seed)
        if contender == "pynn":
            model = pynn_model(weights, dtype, threads)

            def epoch():
                return model.fit(x, y, epochs=1, batch_size=batch, verbose=0).history["loss"][-1]
        elif contender == "numpy":
            mlp = NumpyMLP(weights)

            def epoch():
                order = rng.permutation(n_samples)
                total = 0.0
                for start in range(0, n_samples, batch):
                    idx = order[start:start + batch]
                    total += mlp.train_step(x[idx], y[idx]) * idx.shape[0]
                return total / n_samples
        else:
            import torch
            _, step = torch_mlp(weights, threads or n_cores())
            tx, ty = torch.from_numpy(x), torch.from_numpy(y)
            gen = torch.Generator().manual_seed(seed)

            def epoch():
                order = torch.randperm(n_samples, generator=gen)
                total = 0.0
                for start in range(0, n_samples, batch):
                    idx = order[start:start + batch]
                    total += float(step(tx[idx], ty[idx])) * idx.shape[0]
                return total / n_samples
        self.epoch = epoch

    def run(self):
        t0 = time.perf_counter()
        loss = self.epoch()
        return {"seconds": time.perf_counter() - t0, "loss": float(loss)}


# -------------------------------------------------------- what ran where


def blas_libraries():
    """threadpoolctl's view of the BLAS libraries loaded in this process."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return [{"note": "threadpoolctl not installed: BLAS kernel and threads unknown"}]
    keys = ("internal_api", "version", "architecture", "corename", "threading_layer",
            "num_threads")
    libs = []
    for lib in threadpool_info():
        if lib.get("user_api") != "blas":
            continue
        entry = {k: lib[k] for k in keys if lib.get(k) is not None}
        # the folder tells whose copy it is: numpy.libs, scipy.libs, torch/lib, ...
        path = lib.get("filepath", "")
        entry["file"] = os.path.join(os.path.basename(os.path.dirname(path)),
                                     os.path.basename(path))
        if entry.get("internal_api") == "mkl" and "architecture" not in entry:
            entry["architecture"] = mkl_kernel()
        libs.append(entry)
    return libs


# mkl_cbwr_get_auto_branch(): the code path MKL chose for this CPU
MKL_BRANCHES = {2: "AUTO (no branch of its own for this CPU)", 3: "COMPATIBLE", 4: "SSE2",
                6: "SSSE3", 7: "SSE4_1", 8: "SSE4_2", 9: "AVX", 10: "AVX2", 11: "AVX512_MIC",
                12: "AVX512", 13: "AVX512_MIC_E1", 14: "AVX512_E1"}


def mkl_kernel():
    lib = find_mkl()
    branch = getattr(lib, "mkl_cbwr_get_auto_branch", None) if lib is not None else None
    if branch is None:
        return None
    branch.restype = ctypes.c_int
    code = branch()
    return MKL_BRANCHES.get(code, f"code {code}")


def environment(contender, backend=None):
    info = {"contender": contender, "numpy": np.__version__}
    if contender == "pynn":
        import pynn
        import scipy.linalg  # noqa: F401  (the BLAS pynn multiplies with)
        info["pynn"] = pynn.__version__
        from pynn import _dense, _elementwise, _gemm, _threads
        info["gemm"] = _threads.backend()
        info["tile_gemm"] = _gemm.tile_gemm_on()
        info["kernels"] = _dense.ISA
        info["vmath"] = _elementwise.isa()
    elif contender == "torch":
        import torch
        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        config = torch.__config__.show()
        for key in ("BLAS_INFO", "LAPACK_INFO"):
            part = config.split(key + "=")
            if len(part) > 1:
                info[key.lower()] = part[1].split(",")[0].strip()
        info["mkldnn"] = bool(torch.backends.mkldnn.is_available())
    elif contender == "limit":
        info["backend"] = backend
        if backend in ("openblas", "tiles"):
            import scipy.linalg  # noqa: F401
    info["blas"] = blas_libraries()
    return info


def make_case(req):
    sizes, batch, dtype = tuple(req["sizes"]), req["batch"], np.dtype(req["dtype"]).type
    threads = req.get("threads")  # None: each library's own default
    block = req.get("block") or (SETTLE_SECONDS, BLOCK_SECONDS)
    if req["kind"] == "limit":
        return LimitCase(sizes, batch, dtype, req["backend"], threads or n_cores(), block)
    if req["kind"] == "fit":
        return FitCase(req["contender"], sizes, batch, dtype, threads, req["n_samples"])
    return StepCase(req["contender"], sizes, batch, dtype, threads, block)


def serve(inp, out):
    cases = {}
    for line in inp:
        req = json.loads(line)
        try:
            op = req["op"]
            if op == "hello":
                if req["contender"] == "pynn":
                    sys.path.insert(0, req["pynn_root"])
                if req["contender"] == "torch":
                    try:
                        import torch  # noqa: F401
                    except ImportError:
                        reply = {"skip": "PyTorch not installed: no PyTorch column "
                                         "(pip install torch; its CPU build)"}
                        out.write(json.dumps(reply) + "\n")
                        out.flush()
                        continue
                if req["contender"] == "limit" and req.get("backend") == "tiles":
                    sys.path.insert(0, req["pynn_root"])
                    from pynn import _gemm
                    if not _gemm.tile_gemm_cpu():
                        reply = {"skip": "the CPU lacks AVX-512F or FMA: no limit on "
                                         "pynn's tile GEMM"}
                        out.write(json.dumps(reply) + "\n")
                        out.flush()
                        continue
                if req["contender"] == "limit" and req.get("backend") == "mkl" \
                        and find_mkl() is None:
                    reply = {"skip": "MKL not installed (pip install mkl): limit on OpenBLAS only"}
                    out.write(json.dumps(reply) + "\n")
                    out.flush()
                    continue
                threads = req.get("threads")
                use_threads(req["contender"], threads)
                reply = {"info": environment(req["contender"], req.get("backend"))}
                reply["info"]["threads"] = threads
            elif op == "setup":
                cases[req["case"]] = make_case(req)
                reply = {}
            elif op == "run":
                reply = cases[req["case"]].run()
            elif op == "drop":
                cases.pop(req["case"], None)
                reply = {}
            else:
                reply = {"error": f"unknown op {op!r}"}
        except Exception as exc:  # reported to the parent, which prints it
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        out.write(json.dumps(reply) + "\n")
        out.flush()


if __name__ == "__main__":
    serve(sys.stdin, sys.stdout)
