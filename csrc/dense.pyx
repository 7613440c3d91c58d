# Dense layers and whole-network steps over typed memoryviews.
#
# Conventions shared with pynn/layers.py and pynn/model.py:
# - row-major, C-contiguous arrays; a batch X is (n_samples, n_inputs);
# - W is (units, inputs), so that a layer computes W·x per sample, as
#   Z = X @ W.T + b and A = act(Z);
# - a network is described by `layout`, an int64 array (n_layers, N_COLS)
#   whose rows are [n_in, n_out, w_offset, b_offset, activation code,
#   z_offset, kind, row_work, fixed_work, stats_offset, rng]: w_offset and
#   b_offset index the flat parameter buffer (and the gradient buffer,
#   which has its layout); z_offset is where, in units of the batch's row
#   count, the layer keeps its pre-activation Z in `work` (Z of a batch of
#   n at work + n * z_offset, n x n_out), or -1 when its activation's
#   derivative comes from its output and Z is not kept; kind is a
#   LayerKind (codes.pxd).  A layer of another kind than Dense has
#   n_in == n_out; its w_offset and b_offset are gamma's and beta's (-1
#   when it has none), row_work and fixed_work the offsets of its
#   workspaces (the Network sets them, see _workspaces), stats_offset that
#   of its moving statistics in the `stats` buffer (BN), rng the index of
#   its generator (Dropout); -1 where unused.  Per-layer real settings
#   (layer_kernels.pxd: rate, momentum, epsilon) come in `settings`.
# - `work` holds, for a batch of n, every layer's output A (n x n_out, one
#   after the other) followed by two delta buffers of n x max(width) each,
#   then the kept pre-activations (n * Net.work_width values up to there),
#   then the layer kinds' per-sample workspaces: n x row_width values; their
#   fixed_width values that do not grow with n are a buffer of their own.
#
# The Python layer validates everything (shapes, dtypes, capacities) before
# calling in; the kernels run without the GIL and do not check again.
from cython cimport floating
from libc.stdint cimport int32_t, int64_t
from libc.string cimport memcpy, memset
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec

cimport numpy as cnp
import weakref

import numpy as np
from cpython.weakref cimport PyWeakref_GetObject

from pynn.kernels._blas cimport PYNN_SMALL_GEMM_MAX, gemm, gemm_one_thread
from pynn.kernels.fpenv cimport fpenv_enter, fpenv_exit, fpenv_t
from pynn.kernels.activation_kernels cimport (
    ACT_PARALLEL_MIN_ELEMENTS as _ACT_PARALLEL_MIN_ELEMENTS, activation_backward,
    activation_backward_from_preactivation, activation_backward_par, bias_activate_par,
    needs_preactivation)
from pynn.kernels.layer_kernels cimport (
    N_SETTINGS, SET_EPSILON, SET_MOMENTUM, SET_RATE, batch_norm_backward,
    batch_norm_backward_inference, batch_norm_forward, batch_norm_moving_stays_finite,
    batch_norm_update_moving, dropout_backward, dropout_forward, fixed_workspace,
    layer_norm_backward, layer_norm_forward, row_workspace)
from pynn.kernels.pcg cimport pcg_t
from pynn.kernels.workers cimport run_pair, run_pair_spinning
from pynn.kernels.codes cimport (
    ACT_LINEAR, KIND_BATCH_NORM, KIND_DENSE, KIND_DROPOUT, KIND_LAYER_NORM,
    METRIC_BINARY_ACCURACY, METRIC_CATEGORICAL_ACCURACY, METRIC_SPARSE_ACCURACY,
    STATUS_NONFINITE, STATUS_OK, STATUS_X_NONFINITE, STATUS_Y_NONFINITE)
from pynn.kernels.metric_kernels cimport MAX_METRICS, Metrics, metric_value
from pynn.kernels.loss_kernels cimport loss_and_grad
from libc.math cimport isfinite

from pynn.kernels.optim_kernels cimport (
    PARALLEL_MIN_ELEMENTS, VAR_COLS, Bounds, GradPass, OptSettings, all_finite, bounded_update_is_finite,
    fill_hyper, grad_pass, measure_bounds, optimizer_step, penalty, settings_of, state_size,
    sum_abs_if_finite, update_is_finite)

cdef enum:
    N_COLS = 11
    COL_Z = 5               # the layout's column of z_offset
    COL_KIND = 6
    COL_ROW_WORK = 7
    COL_FIXED_WORK = 8
    COL_STATS = 9
    COL_RNG = 10

# the widths of a layout row and of a layer's settings, for the Python layer
LAYOUT_WIDTH = N_COLS
# the elements per activation pass from which it may take two threads
ACT_PARALLEL_MIN_ELEMENTS = _ACT_PARALLEL_MIN_ELEMENTS

# A step of fewer floating-point operations than this (about 20 us of
# work) runs with the GIL held: releasing and taking it back costs some
# 0.1 us, a few percent of a tiny network's step, and another thread waits
# no longer than that step (NumPy keeps the GIL for small loops likewise).
# Longer calls release it.
cdef double _GIL_KEPT_BELOW_FLOPS = 1e6
GIL_KEPT_BELOW_FLOPS = _GIL_KEPT_BELOW_FLOPS
SETTINGS_WIDTH = N_SETTINGS


cdef struct Vars:
    # what the update covers (optim_kernels.pxd): the trainable variables'
    # rows [start, stop, decayed] and their regularizers [l1, l2] (NULL: none)
    const Py_ssize_t* rows
    Py_ssize_t n
    const double* reg
    # per variable, the entry of Net.half_bounds that holds its gradient's
    # bound when a split layer's halves took it (a Dense layer's whole
    # kernel 2 l, its bias 2 l + 1), or -1; and room for those bounds
    const Py_ssize_t* slot
    double* known


# --------------------------------------------------------------------------
# One layer (the Python-level path, and the unit the tests check)
# --------------------------------------------------------------------------

# --------------------------------------------------------------------------
# A Dense layer's products in two halves of its units
#
# Two BLAS threads lose on a mid-sized training step (784-128-10 at batch
# 32: 150 us against 120 on one), because each update writes W, v and g
# from one core and the next products read them from the other: half the
# parameters cross between the cores' caches every step.  Split by owner
# instead: the helper thread computes the forward and weight-gradient
# products of the second half of a layer's units (rows of W), each half on
# one BLAS thread, and updates those rows itself, so that each core's half
# of W, v and g stays in its own cache, step after step.  The split is a
# function of the shapes alone (and of a per-thread BLAS count setter
# being there, Network._splits), never of who runs a half: with one thread
# allowed, or the helper busy, the caller computes both halves, to the same
# bits.  dX = dZ W is summed from the halves' shares, first + second.
# Measured on 2 cores (AVX-512, MKL, float32, a 784-128 layer at batch 32,
# its forward and weight-gradient products and the SGD update): 135 us a
# step on one core, 69-74 us on two.
# --------------------------------------------------------------------------

cdef enum:
    # a Dense layer's products split from this many multiply-adds each
    _SPLIT_MIN_MACS = 1 << 19
    # the first half's units, a multiple of this (16 float32s: a cache line)
    _SPLIT_ALIGN = 16

SPLIT_MIN_MACS = _SPLIT_MIN_MACS


def split_units(Py_ssize_t n, Py_ssize_t n_in, Py_ssize_t n_out):
    """The units of the first half of a Dense(n_out) layer's training
    products on n_in inputs at batch n, or 0 when they are not split."""
    return _split_units(n, n_in, n_out)

cdef extern from "<pthread.h>" nogil:
    ctypedef unsigned long pthread_t
    pthread_t pthread_self()
    int pthread_equal(pthread_t, pthread_t)


cdef inline Py_ssize_t _halves(Net net, Py_ssize_t n, Py_ssize_t n_in,
                               Py_ssize_t n_out) noexcept nogil:
    # The units of the first half of a Dense layer's products in this
    # pass, 0 when they are not split
    return _split_units(n, n_in, n_out) if net.split and net.training else 0


cdef inline Py_ssize_t _split_units(Py_ssize_t n, Py_ssize_t n_in,
                                    Py_ssize_t n_out) noexcept nogil:
    # the first half's units of a split layer's products at batch n, or 0
    if n * n_in * n_out < _SPLIT_MIN_MACS or n_out < 2 * _SPLIT_ALIGN:
        return 0
    return (n_out // 2) // _SPLIT_ALIGN * _SPLIT_ALIGN


cdef struct _Half:
    # one half of a Dense layer's products: units [r0, r1)
    const void* X           # the layer's input (n x n_in)
    const void* W           # its kernel (n_out x n_in)
    void* A                 # forward: the output (n x n_out), columns [r0, r1)
    const void* dZ          # backward: dL/dZ (n x n_out)
    void* dW
    void* db
    void* dX                # this half's share of dL/dX (n x n_in), or NULL
    Py_ssize_t n, n_in, n_out, r0, r1
    bint backward, is_double
    void* set_threads       # set_threads_fn, for a half run off the caller's thread
    pthread_t caller
    # backward: when want_bound, sum_abs_if_finite of this half's rows of
    # dW and of db, taken while they are in the cache of the core that
    # wrote them (the compiled epoch's gradient bound, optim_kernels.pxd)
    bint want_bound
    double bound_w, bound_b


cdef inline void _half_products(_Half* t, floating* kind) noexcept nogil:
    cdef const floating* X = <const floating*>t.X
    cdef const floating* W = <const floating*>t.W + t.r0 * t.n_in
    cdef const floating* dZ = <const floating*>t.dZ + t.r0
    cdef floating* db = <floating*>t.db
    cdef int n = <int>t.n, n_in = <int>t.n_in, n_out = <int>t.n_out
    cdef int m = <int>(t.r1 - t.r0)
    cdef Py_ssize_t i, j
    cdef const floating* row
    if not t.backward:
        # A[:, r0:r1] = X @ W[r0:r1].T (on one thread, as every half: see _run_half)
        gemm_one_thread(False, True, n, m, n_in, <floating>1, X, n_in, W, n_in,
                        <floating>0, <floating*>t.A + t.r0, n_out)
        return
    # dW[r0:r1] = dZ[:, r0:r1].T @ X, db[r0:r1] its column sums, and this
    # half's share of dX, dZ[:, r0:r1] @ W[r0:r1]
    gemm_one_thread(True, False, m, n_in, n, <floating>1, dZ, n_out, X, n_in, <floating>0,
                    <floating*>t.dW + t.r0 * t.n_in, n_in)
    memset(db + t.r0, 0, m * sizeof(floating))
    for i in range(n):
        row = <const floating*>t.dZ + i * n_out
        for j in range(t.r0, t.r1):
            db[j] += row[j]
    if t.want_bound:
        t.bound_w = sum_abs_if_finite(<floating*>t.dW + t.r0 * t.n_in, m * t.n_in)
        t.bound_b = sum_abs_if_finite(db + t.r0, m)
    if t.dX != NULL:
        gemm_one_thread(False, False, n, n_in, m, <floating>1, dZ, n_out, W, n_in,
                        <floating>0, <floating*>t.dX, n_in)


cdef void _run_half(void* arg) noexcept nogil:
    cdef _Half* t = <_Half*>arg
    cdef int previous = -1
    cdef set_threads_fn setter = <set_threads_fn>t.set_threads
    # the helper's own BLAS count: one thread for its product, as the caller's
    if setter != NULL and not pthread_equal(pthread_self(), t.caller):
        previous = setter(1)
    if t.is_double:
        _half_products(t, <double*>NULL)
    else:
        _half_products(t, <float*>NULL)
    if previous >= 0:
        setter(previous)


cdef inline void _split_products(Net net, const floating* X, const floating* W,
                                 floating* A, const floating* dZ, floating* dW,
                                 floating* db, floating* dX, Py_ssize_t n,
                                 Py_ssize_t n_in, Py_ssize_t n_out,
                                 Py_ssize_t h, double* bounds) noexcept nogil:
    # A layer's forward (dZ NULL) or backward products in halves [0, h) and
    # [h, n_out), the second on the helper when net.n_threads allows it;
    # bounds, when not NULL (backward), receives the bounds of sum |dW| and
    # sum |db| (_Half.want_bound)
    cdef _Half first, second
    cdef Py_ssize_t i
    cdef floating* part = <floating*>net.dx_part
    first.X = X
    first.W = W
    first.A = A
    first.dZ = dZ
    first.dW = dW
    first.db = db
    first.dX = dX
    first.n = n
    first.n_in = n_in
    first.n_out = n_out
    first.r0 = 0
    first.r1 = h
    first.backward = dZ != NULL
    first.is_double = floating is double
    first.set_threads = net.set_threads
    first.caller = pthread_self()
    first.want_bound = bounds != NULL and dZ != NULL
    second = first
    second.r0 = h
    second.r1 = n_out
    second.dX = part if dX != NULL else NULL
    if net.n_threads >= 2:
        run_pair_spinning(_run_half, &first, &second)
    else:
        _run_half(&first)
        _run_half(&second)
    if first.want_bound:
        bounds[0] = first.bound_w + second.bound_w
        bounds[1] = first.bound_b + second.bound_b
    if dX != NULL:
        for i in range(n * n_in):
            dX[i] = dX[i] + part[i]


cdef inline void _affine(const floating* X, const floating* W, const floating* b,
                         Py_ssize_t n, Py_ssize_t n_in, Py_ssize_t n_out,
                         int act, floating* A, floating* Z, int n_threads) noexcept nogil:
    # A = act(X @ W.T + b): GEMM, then bias and activation in one pass,
    # which also keeps Z = X @ W.T + b when Z is not NULL.
    gemm(False, True, <int>n, <int>n_out, <int>n_in,
         <floating>1, X, <int>n_in, W, <int>n_in, <floating>0, A, <int>n_out)
    bias_activate_par(A, Z, b, n, n_out, act, n_threads)


cdef inline void _affine_backward(const floating* X, const floating* W,
                                  floating* dZ, Py_ssize_t n, Py_ssize_t n_in,
                                  Py_ssize_t n_out, floating* dW, floating* db,
                                  floating* dX) noexcept nogil:
    # Given dZ (n x n_out): dW = dZ.T @ X, db = sum_rows dZ, dX = dZ @ W.
    cdef Py_ssize_t i, j
    cdef const floating* row
    gemm(True, False, <int>n_out, <int>n_in, <int>n,
         <floating>1, dZ, <int>n_out, X, <int>n_in, <floating>0, dW, <int>n_in)
    memset(db, 0, n_out * sizeof(floating))
    for i in range(n):
        row = dZ + i * n_out
        for j in range(n_out):
            db[j] += row[j]
    if dX != NULL:
        gemm(False, False, <int>n, <int>n_in, <int>n_out,
             <floating>1, dZ, <int>n_out, W, <int>n_in, <floating>0, dX, <int>n_in)


def dense_forward(const floating[:, ::1] X,   # IN  (n, n_in)
                  const floating[:, ::1] W,   # IN  (n_out, n_in)
                  const floating[::1] b,      # IN  (n_out,)
                  int activation,
                  floating[:, ::1] A):        # OUT (n, n_out)
    """A = act(X @ W.T + b)."""
    cdef Py_ssize_t n = X.shape[0], n_in = X.shape[1], n_out = W.shape[0]
    # cheap, and what stands between a wrong shape and a read past a buffer
    if W.shape[1] != n_in or b.shape[0] != n_out or A.shape[0] != n or A.shape[1] != n_out:
        raise ValueError(f"dense_forward: shapes do not match: X {tuple(X.shape)[:2]}, "
                         f"W {tuple(W.shape)[:2]}, b {tuple(b.shape)[:1]}, "
                         f"A {tuple(A.shape)[:2]}")
    cdef fpenv_t env
    with nogil:
        env = fpenv_enter()
        _affine(&X[0, 0] if n else NULL, &W[0, 0], &b[0], n, n_in, n_out,
                activation, &A[0, 0] if n else NULL, NULL, 1)
        fpenv_exit(env)


def dense_backward(const floating[:, ::1] X,  # IN  (n, n_in) the layer's input
                   const floating[:, ::1] W,  # IN  (n_out, n_in)
                   const floating[:, ::1] A,  # IN  (n, n_out) the layer's output
                   floating[:, ::1] dA,       # IN/OUT (n, n_out): dL/dA in, dL/dZ out
                   int activation,
                   floating[:, ::1] dW,       # OUT (n_out, n_in)
                   floating[::1] db,          # OUT (n_out,)
                   floating[:, ::1] dX=None,  # OUT (n, n_in), or None for a first layer
                   const floating[:, ::1] Z=None):  # IN (n, n_out) X @ W.T + b, or None
    """Backward through one dense layer; dA is overwritten with dZ.

    Z, the pre-activation, is needed (and only read) for the activations
    whose derivative it gives (gelu, swish); the others take it from A.
    """
    cdef Py_ssize_t n = X.shape[0], n_in = X.shape[1], n_out = W.shape[0]
    cdef floating* dx = NULL
    cdef bint from_z = needs_preactivation(activation)
    if from_z and Z is None:
        raise ValueError(f"dense_backward: activation code {activation} takes its "
                         f"derivative from the pre-activation: Z must be given, got None")
    if (W.shape[1] != n_in or A.shape[0] != n or A.shape[1] != n_out
            or dA.shape[0] != n or dA.shape[1] != n_out or dW.shape[0] != n_out
            or dW.shape[1] != n_in or db.shape[0] != n_out
            or (dX is not None and (dX.shape[0] != n or dX.shape[1] != n_in))
            or (from_z and (Z.shape[0] != n or Z.shape[1] != n_out))):
        raise ValueError(f"dense_backward: shapes do not match: X {tuple(X.shape)[:2]}, "
                         f"W {tuple(W.shape)[:2]}, A {tuple(A.shape)[:2]}, "
                         f"dA {tuple(dA.shape)[:2]}, dW {tuple(dW.shape)[:2]}, "
                         f"db {tuple(db.shape)[:1]}"
                         + (f", Z {tuple(Z.shape)[:2]}" if from_z else ""))
    if dX is not None and n:
        dx = &dX[0, 0]
    if n == 0:
        dW[:, :] = 0
        db[:] = 0
        return
    cdef fpenv_t env
    with nogil:
        env = fpenv_enter()
        if from_z:
            activation_backward_from_preactivation(&dA[0, 0], &Z[0, 0], n, n_out,
                                                   activation)
        else:
            activation_backward(&dA[0, 0], &A[0, 0], n, n_out, activation)
        _affine_backward(&X[0, 0], &W[0, 0], &dA[0, 0], n, n_in, n_out,
                         &dW[0, 0], &db[0], dx)
        fpenv_exit(env)


# --------------------------------------------------------------------------
# Whole networks: forward, loss, backward and update in one call, no GIL
# --------------------------------------------------------------------------

ctypedef int (*set_threads_fn)(int) noexcept nogil
ctypedef int (*get_threads_fn)() noexcept nogil


cdef struct Net:
    const Py_ssize_t* layout
    Py_ssize_t n_layers
    Py_ssize_t max_width
    Py_ssize_t total_width
    Py_ssize_t work_width       # outputs, deltas and kept Z: n * work_width values
    # the layer kinds' state: workspaces' sizes (per sample, fixed), the
    # moving statistics (of the network's dtype), the settings, the
    # generators (pointers to their states) and room to save their states
    Py_ssize_t row_width
    Py_ssize_t fixed_width
    void* stats
    void* fixed             # the workspaces that do not grow with the batch
    const double* settings
    pcg_t** rngs
    unsigned char* rng_saved
    Py_ssize_t n_rngs
    # per layer, 1 where a frozen BatchNormalization runs in inference mode
    # in training too (Keras's rule); NULL: none
    const unsigned char* inference
    bint training           # batch statistics and masks (a step) or not
    double loss_param           # the loss kernel's param (Huber's delta), see set_loss
    int n_threads           # threads a big activation pass may use (see _pass_threads)
    # a training pass whose big Dense layers' products are computed in two
    # halves of their units, the second on the helper thread when n_threads
    # allows (see _halves and Network._splits)
    bint split
    void* set_threads       # the BLAS's per-thread count setter (set_threads_fn), or NULL
    void* dx_part           # the second half's share of dX (n x the widest input)
    # per layer [kernel, bias], the bounds of the split layers' gradients
    # their halves took (-1: none), for the compiled epoch; NULL: not taken
    double* half_bounds


cdef inline Net _net(const Py_ssize_t[:, ::1] layout) noexcept:
    cdef Net net
    cdef Py_ssize_t l, w
    net.layout = &layout[0, 0]
    net.n_layers = layout.shape[0]
    net.max_width = 0
    net.total_width = 0
    net.row_width = 0
    net.fixed_width = 0
    net.stats = NULL
    net.fixed = NULL
    net.settings = NULL
    net.rngs = NULL
    net.rng_saved = NULL
    net.n_rngs = 0
    net.inference = NULL
    net.training = False
    net.loss_param = 0
    net.n_threads = 1
    net.split = False
    net.set_threads = NULL
    net.dx_part = NULL
    net.half_bounds = NULL
    for l in range(net.n_layers):
        w = layout[l, 1]
        net.total_width += w
        # deltas are (n x n_out) and, below the top, (n x n_in) = the
        # previous layer's (n x n_out): the widest output bounds both
        if w > net.max_width:
            net.max_width = w
    net.work_width = net.total_width + 2 * net.max_width
    for l in range(net.n_layers):
        if layout[l, COL_Z] >= 0 and layout[l, COL_Z] + layout[l, 1] > net.work_width:
            net.work_width = layout[l, COL_Z] + layout[l, 1]
    return net


def _check_preactivation_offsets(const Py_ssize_t[:, ::1] layout):
    # The kernels write each kept Z where column COL_Z says, trusting it:
    # a layer whose derivative needs Z must have its own region past the
    # outputs and deltas (and within as many values again as the outputs
    # take, room for every layer's: no offset so large that the work
    # buffer's size would overflow), and every other layer -1.
    cdef Py_ssize_t l, total = 0, widest = 0
    for l in range(layout.shape[0]):
        total += layout[l, 1]
        widest = max(widest, layout[l, 1])
    base = total + 2 * widest
    regions = []
    for l in range(layout.shape[0]):
        z = layout[l, COL_Z]
        if needs_preactivation(<int>layout[l, 4]):
            if not base <= z <= base + total - layout[l, 1]:
                raise ValueError(f"layout[{l}, {COL_Z}] must be an offset in [{base}, "
                                 f"{base + total - layout[l, 1]}] (past the outputs and "
                                 f"deltas) for activation code {layout[l, 4]}, got {z}")
            regions.append((z, z + layout[l, 1], l))
        elif z != -1:
            raise ValueError(f"layout[{l}, {COL_Z}] must be -1 for activation code "
                             f"{layout[l, 4]}, whose derivative comes from its output, "
                             f"got {z}")
    regions.sort()
    for (_, end, l), (start, _, k) in zip(regions, regions[1:]):
        if start < end:
            raise ValueError(f"layers {l} and {k} keep their pre-activations in "
                             f"overlapping parts of the work buffer")


cdef inline floating* _kept_preactivation(const Py_ssize_t* row, int act, floating* work,
                                          Py_ssize_t n) noexcept nogil:
    # where this layer's forward pass keeps Z, or NULL (not needed: the
    # derivative comes from the output, or the loss takes the logits)
    if row[COL_Z] < 0 or not needs_preactivation(act):
        return NULL
    return work + n * row[COL_Z]


cdef inline void _layer_activation_backward(const Py_ssize_t* row, floating* delta,
                                            const floating* A, floating* work,
                                            Py_ssize_t n, int n_threads) noexcept nogil:
    # dL/dA -> dL/dZ in place, from Z where the layer kept it, else from A
    if row[COL_Z] >= 0:
        activation_backward_par(delta, work + n * row[COL_Z], n, row[1], <int>row[4],
                                True, n_threads)
    else:
        activation_backward_par(delta, A, n, row[1], <int>row[4], False, n_threads)


# --------------------------------------------------------------------------
# The layer kinds other than Dense, called from the loops below
# --------------------------------------------------------------------------

cdef inline floating* _row_work(Net net, const Py_ssize_t* row, floating* work,
                                Py_ssize_t n) noexcept nogil:
    return work + n * (net.work_width + row[COL_ROW_WORK])


cdef inline floating* _part(floating* base, Py_ssize_t offset) noexcept nogil:
    # gamma, beta or their gradients: NULL for a layer without them
    return base + offset if offset >= 0 else NULL


cdef void _kind_forward(Net net, Py_ssize_t l, const floating* params,
                        const floating* inp, Py_ssize_t n, floating* work,
                        floating* out) noexcept nogil:
    cdef const Py_ssize_t* row = net.layout + l * N_COLS
    cdef const double* settings = net.settings + l * N_SETTINGS
    cdef Py_ssize_t w = row[1], kind = row[COL_KIND]
    cdef floating* p = <floating*>params
    cdef floating* stats = _part(<floating*>net.stats, row[COL_STATS])
    cdef bint frozen = net.inference != NULL and net.inference[l]
    if kind == KIND_DROPOUT:
        dropout_forward(inp, n * w, settings[SET_RATE], net.training,
                        net.rngs[row[COL_RNG]] if net.training else NULL,
                        _row_work(net, row, work, n), out)
    elif kind == KIND_BATCH_NORM:
        batch_norm_forward(inp, n, w, _part(p, row[2]), _part(p, row[3]),
                           settings[SET_EPSILON], net.training and not frozen,
                           stats, stats + w,
                           _row_work(net, row, work, n),
                           <floating*>net.fixed + row[COL_FIXED_WORK], out)
    elif kind == KIND_LAYER_NORM:
        layer_norm_forward(inp, n, w, _part(p, row[2]), _part(p, row[3]),
                           settings[SET_EPSILON], _row_work(net, row, work, n), out)


cdef void _kind_backward(Net net, Py_ssize_t l, const floating* params, floating* grads,
                         const floating* delta, Py_ssize_t n, floating* work,
                         floating* grad_x) noexcept nogil:
    # dL/d(input) into grad_x (NULL for a first layer) and gamma's and
    # beta's gradients, from dL/d(output) in delta
    cdef const Py_ssize_t* row = net.layout + l * N_COLS
    cdef Py_ssize_t w = row[1], kind = row[COL_KIND]
    cdef floating* p = <floating*>params
    if kind == KIND_DROPOUT:
        if grad_x != NULL:
            dropout_backward(delta, _row_work(net, row, work, n), n * w, grad_x)
    elif kind == KIND_BATCH_NORM and net.inference != NULL and net.inference[l]:
        batch_norm_backward_inference(delta, _row_work(net, row, work, n), n, w,
                                      _part(p, row[2]),
                                      <floating*>net.fixed + row[COL_FIXED_WORK],
                                      _part(grads, row[2]), _part(grads, row[3]), grad_x)
    elif kind == KIND_BATCH_NORM:
        batch_norm_backward(delta, _row_work(net, row, work, n), n, w, _part(p, row[2]),
                            <floating*>net.fixed + row[COL_FIXED_WORK],
                            _part(grads, row[2]), _part(grads, row[3]), grad_x)
    elif kind == KIND_LAYER_NORM:
        layer_norm_backward(delta, _row_work(net, row, work, n), n, w, _part(p, row[2]),
                            _part(grads, row[2]), _part(grads, row[3]), grad_x)


cdef void _commit_layer_state(Net net, floating* stats) noexcept nogil:
    # Once a step's update is applied: the moving statistics take in the
    # batch's (a refused step leaves them as they were).
    cdef Py_ssize_t l
    cdef const Py_ssize_t* row
    for l in range(net.n_layers):
        row = net.layout + l * N_COLS
        if row[COL_KIND] == KIND_BATCH_NORM and not (net.inference != NULL
                                                     and net.inference[l]):
            batch_norm_update_moving(<floating*>net.fixed + row[COL_FIXED_WORK], row[1],
                                     net.settings[l * N_SETTINGS + SET_MOMENTUM],
                                     stats + row[COL_STATS], stats + row[COL_STATS] + row[1])


cdef bint _layer_state_stays_finite(Net net, const floating* stats) noexcept nogil:
    # Whether _commit_layer_state would keep every moving statistic finite:
    # checked with the update's check, so that a step that would leave an
    # inf there is refused like one that would leave it in the weights.
    cdef Py_ssize_t l
    cdef const Py_ssize_t* row
    for l in range(net.n_layers):
        row = net.layout + l * N_COLS
        if row[COL_KIND] == KIND_BATCH_NORM and not (net.inference != NULL
                                                     and net.inference[l]):
            if not batch_norm_moving_stays_finite(
                    <floating*>net.fixed + row[COL_FIXED_WORK], row[1],
                    net.settings[l * N_SETTINGS + SET_MOMENTUM],
                    stats + row[COL_STATS], stats + row[COL_STATS] + row[1]):
                return False
    return True


cdef inline void _rng_save(Net net) noexcept nogil:
    # A refused step changes nothing: not even the generators its masks
    # drew from (restored by _rng_restore).
    cdef Py_ssize_t i
    for i in range(net.n_rngs):
        memcpy(net.rng_saved + i * sizeof(pcg_t), net.rngs[i], sizeof(pcg_t))


cdef inline void _rng_restore(Net net) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(net.n_rngs):
        memcpy(net.rngs[i], net.rng_saved + i * sizeof(pcg_t), sizeof(pcg_t))


cdef floating* _forward(Net net, const floating* params, const floating* X,
                        Py_ssize_t n, floating* work, bint logits_out) noexcept nogil:
    # Every layer's output lands in work, one after the other; returns the
    # last.  With logits_out the last layer's activation is left to the loss.
    cdef Py_ssize_t l, n_in, n_out, h
    cdef int act
    cdef const Py_ssize_t* row
    cdef const floating* inp = X
    cdef floating* out = work
    for l in range(net.n_layers):
        row = net.layout + l * N_COLS
        n_in = row[0]
        n_out = row[1]
        act = <int>row[4]
        if logits_out and l == net.n_layers - 1:
            act = ACT_LINEAR
        h = _halves(net, n, n_in, n_out) if row[COL_KIND] == KIND_DENSE else 0
        if row[COL_KIND] != KIND_DENSE:
            _kind_forward(net, l, params, inp, n, work, out)
        elif h:
            _split_products(net, inp, params + row[2], out, NULL, NULL, NULL, NULL,
                            n, n_in, n_out, h, NULL)
            bias_activate_par(out, _kept_preactivation(row, act, work, n),
                              params + row[3], n, n_out, act, net.n_threads)
        else:
            _affine(inp, params + row[2], params + row[3], n, n_in, n_out, act, out,
                    _kept_preactivation(row, act, work, n), net.n_threads)
        inp = out
        out = out + n * n_out
    return <floating*>inp


cdef void _backward(Net net, const floating* params, floating* grads,
                    const floating* X, Py_ssize_t n, floating* work,
                    bint fused) noexcept nogil:
    # From dL/d(output) in the first delta buffer down to every layer's
    # gradients.  dZ overwrites dA in place; dX goes to the other buffer.
    cdef Py_ssize_t l, n_in, n_out, h
    cdef const Py_ssize_t* row
    cdef floating* delta = work + n * net.total_width
    cdef floating* other = delta + n * net.max_width
    cdef floating* tmp
    cdef floating* A = delta - n * net.layout[(net.n_layers - 1) * N_COLS + 1]
    cdef const floating* inp
    cdef double* bounds
    for l in range(net.n_layers - 1, -1, -1):
        row = net.layout + l * N_COLS
        n_in = row[0]
        n_out = row[1]
        if row[COL_KIND] != KIND_DENSE:
            _kind_backward(net, l, params, grads, delta, n, work,
                           other if l > 0 else NULL)
        else:
            if not (fused and l == net.n_layers - 1):
                _layer_activation_backward(row, delta, A, work, n, net.n_threads)
            inp = X if l == 0 else A - n * n_in
            h = _halves(net, n, n_in, n_out)
            bounds = net.half_bounds + 2 * l if net.half_bounds != NULL else NULL
            if bounds != NULL:
                bounds[0] = bounds[1] = -1      # none taken (a layer not split)
            if h:
                _split_products(net, inp, params + row[2], NULL, delta, grads + row[2],
                                grads + row[3], other if l > 0 else NULL, n, n_in, n_out,
                                h, bounds)
            else:
                _affine_backward(inp, params + row[2], delta, n, n_in, n_out,
                                 grads + row[2], grads + row[3],
                                 other if l > 0 else NULL)
        A = A - n * n_in
        tmp = delta
        delta = other
        other = tmp


cdef double _loss_and_backward(Net net, const floating* params, floating* grads,
                               const floating* X, const floating* Y,
                               const floating* row_weight,
                               Py_ssize_t n, floating* work, int loss_code,
                               bint fused, double* clock) noexcept nogil:
    # clock, when not NULL, receives the time after the forward pass, the
    # loss and the backward pass at clock[0..3) (profile_step's phases)
    net.training = True         # a step: dropout's masks, the batch's statistics
    cdef floating* output = _forward(net, params, X, n, work, fused)
    _stamp(clock, 0)
    cdef double loss = loss_and_grad(loss_code, output, Y, row_weight, n,
                                     net.layout[(net.n_layers - 1) * N_COLS + 1],
                                     work + n * net.total_width, net.loss_param)
    _stamp(clock, 1)
    _backward(net, params, grads, X, n, work, fused)
    _stamp(clock, 2)
    return loss


cdef inline void _stamp(double* clock, Py_ssize_t i) noexcept nogil:
    cdef timespec ts
    if clock != NULL:
        clock_gettime(CLOCK_MONOTONIC, &ts)
        clock[i] = ts.tv_sec + 1e-9 * ts.tv_nsec


# --------------------------------------------------------------------------
# Network: the model's buffers held once, so a step costs one cheap call
# --------------------------------------------------------------------------
#
# Acquiring a typed memoryview costs a few hundred nanoseconds per argument,
# which is much of a tiny network's step.  A Network keeps raw pointers to
# the model's buffers (and references that keep those alive), checks each
# batch with NumPy's C API in nanoseconds, and dispatches on its dtype to
# the fused kernels above.

cnp.import_array()

cdef int _checked_update(Net net, floating* params, floating* grads, floating* state,
                         Py_ssize_t n_params, const Vars* vars, const OptSettings* opt,
                         bint update, bint regularize, double* loss,
                         int64_t* iterations) noexcept nogil:
    # The gradient pass, the exact check and the update if asked and safe,
    # after a training pass of net: a refusal puts the generators back as
    # the pass found them, an applied update commits the layers' state.
    cdef int status = STATUS_NONFINITE
    if not update or _layer_state_stays_finite(net, <floating*>net.stats):
        status = _checked_apply(params, grads, state, n_params, vars, opt, update,
                                regularize, loss, iterations)
    if status != STATUS_OK:
        _rng_restore(net)
    elif update:
        _commit_layer_state(net, <floating*>net.stats)
    return status


cdef int _checked_apply(floating* params, floating* grads, floating* state,
                        Py_ssize_t n_params, const Vars* vars, const OptSettings* opt,
                        bint update, bint regularize, double* loss,
                        int64_t* iterations) noexcept nogil:
    # The gradient pass (the regularizers' terms when regularize, their
    # penalty added to loss[0] if loss is given; the clipping when update),
    # the exact check, and the update if asked and safe.
    cdef GradPass gp = grad_pass(params, grads, vars.rows, vars.n,
                                 vars.reg if regularize else NULL, update, opt, False, NULL)
    if loss != NULL:
        loss[0] += gp.penalty
        if not isfinite(loss[0]):
            return STATUS_NONFINITE
    if not gp.finite:
        return STATUS_NONFINITE
    if not update:
        return STATUS_OK if all_finite(grads, n_params) else STATUS_NONFINITE
    # update_is_finite also covers the gradient (a NaN or inf in it reaches
    # the values the update would write), so a step reads it once to check
    if not update_is_finite(params, grads, state, n_params, vars.rows, vars.n, opt):
        return STATUS_NONFINITE
    optimizer_step(params, grads, state, n_params, vars.rows, vars.n, opt)
    iterations[0] += 1
    return STATUS_OK


cdef int _checked_step(Net net, floating* params, floating* grads, floating* state,
                       const floating* X, const floating* Y,
                       const floating* row_weight, Py_ssize_t n,
                       Py_ssize_t n_in, Py_ssize_t n_y, floating* work,
                       int loss_code, bint fused, const OptSettings* opt,
                       Py_ssize_t n_params, const Vars* vars, bint update,
                       double* loss, int64_t* iterations, double* clock) noexcept nogil:
    # clock (NULL, or 5 values): the time after the checks of x and y, the
    # forward pass, the loss, the backward pass and the update
    if not all_finite(X, n * n_in):
        return STATUS_X_NONFINITE
    if not all_finite(Y, n * n_y):
        return STATUS_Y_NONFINITE
    _stamp(clock, 0)
    _rng_save(net)
    loss[0] = _loss_and_backward(net, params, grads, X, Y, row_weight, n, work,
                                 loss_code, fused, clock + 1 if clock != NULL else NULL)
    cdef int status = STATUS_NONFINITE
    if isfinite(loss[0]):
        status = _checked_update(net, params, grads, state, n_params, vars, opt, update,
                                 True, loss, iterations)
    else:
        _rng_restore(net)
    _stamp(clock, 4)
    return status


cdef inline void _gather(const floating* src, const Py_ssize_t* rows, Py_ssize_t n_rows,
                         Py_ssize_t width, floating* dst) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n_rows):
        memcpy(dst + i * width, src + rows[i] * width, width * sizeof(floating))


cdef extern from *:
    """
    #if defined(__GNUC__)
    #define PYNN_PREFETCH_L2(p) __builtin_prefetch((p), 0, 2)
    #else
    #define PYNN_PREFETCH_L2(p) ((void)(p))
    #endif
    """
    void PYNN_PREFETCH_L2(const void* p) noexcept nogil


cdef inline void _prefetch_rows(const floating* src, const Py_ssize_t* rows,
                                Py_ssize_t n_rows, Py_ssize_t width) noexcept nogil:
    # Ask for the rows the next batch gathers, a cache line at a time, into
    # the L2 cache while this batch's step computes: the shuffled rows of a
    # large x come from memory, and the step no longer waits for them.
    # A hint only: no value changes.
    cdef Py_ssize_t i, b, size = width * sizeof(floating)
    cdef const char* row
    for i in range(n_rows):
        row = <const char*>(src + rows[i] * width)
        for b in range(0, size, 64):
            PYNN_PREFETCH_L2(row + b)


# --------------------------------------------------------------------------
# Sparse rows: a CSR matrix densified batch by batch, never whole
# --------------------------------------------------------------------------

ctypedef fused csr_index:
    int32_t
    int64_t


cdef struct CSRView:
    const void* indptr      # (n_rows + 1,) offsets of each row's values
    const void* indices     # the column of each stored value
    const void* data        # the stored values, in the network's dtype
    bint wide               # indptr and indices are int64 (else int32)


cdef void _densify_rows(const csr_index* indptr, const csr_index* indices,
                        const floating* data, const Py_ssize_t* rows, Py_ssize_t first,
                        Py_ssize_t m, Py_ssize_t width, floating* dst) noexcept nogil:
    # dst (m x width) <- rows rows[0..m) (first..first+m when rows is NULL),
    # zeros and stored values; a column stored twice adds up, as in scipy's
    # toarray (the Python layer sums duplicates beforehand all the same)
    cdef Py_ssize_t i, r
    cdef int64_t p
    cdef floating* out
    memset(dst, 0, m * width * sizeof(floating))
    for i in range(m):
        r = rows[i] if rows != NULL else first + i
        out = dst + i * width
        for p in range(indptr[r], indptr[r + 1]):
            out[indices[p]] += data[p]


cdef inline const floating* _batch_x(const floating* X, const CSRView* csr,
                                     const Py_ssize_t* rows, Py_ssize_t start,
                                     Py_ssize_t m, Py_ssize_t width,
                                     floating* buf) noexcept nogil:
    # Rows start..start+m of the inputs (rows[start..start+m) when rows is
    # given), m x width values: a slice of X as it is, or gathered into buf
    # (from X, or densified from csr when X is sparse).
    cdef const Py_ssize_t* picked = rows + start if rows != NULL else NULL
    if csr != NULL:
        if csr.wide:
            _densify_rows(<const int64_t*>csr.indptr, <const int64_t*>csr.indices,
                          <const floating*>csr.data, picked, start, m, width, buf)
        else:
            _densify_rows(<const int32_t*>csr.indptr, <const int32_t*>csr.indices,
                          <const floating*>csr.data, picked, start, m, width, buf)
        return buf
    if rows == NULL:
        return X + start * width
    _gather(X, picked, m, width, buf)
    return buf


cdef struct _GatherShare:
    const void* src
    const Py_ssize_t* rows
    Py_ssize_t n_rows, width, itemsize
    void* dst


cdef void _run_gather(void* arg) noexcept nogil:
    cdef _GatherShare* t = <_GatherShare*>arg
    cdef Py_ssize_t i, row = t.width * t.itemsize
    for i in range(t.n_rows):
        memcpy(<char*>t.dst + i * row, <const char*>t.src + t.rows[i] * row, row)


cdef inline const floating* _epoch_batch_x(Net net, const floating* X, const CSRView* csr,
                                           const Py_ssize_t* rows, Py_ssize_t start,
                                           Py_ssize_t m, Py_ssize_t width,
                                           floating* buf) noexcept nogil:
    # _batch_x; in a step whose products are split between the cores, the
    # shuffled rows are gathered by both, half each: rows read from memory,
    # not from cache, two cores keep twice the reads in flight
    cdef _GatherShare first, second
    if rows == NULL or csr != NULL or not net.split or net.n_threads < 2 or m < 2:
        return _batch_x(X, csr, rows, start, m, width, buf)
    first.src = X
    first.rows = rows + start
    first.n_rows = m // 2
    first.width = width
    first.itemsize = sizeof(floating)
    first.dst = buf
    second = first
    second.rows = rows + start + m // 2
    second.n_rows = m - m // 2
    second.dst = buf + (m // 2) * width
    run_pair_spinning(_run_gather, &first, &second)
    return buf


cdef int _csr_status(const csr_index* indptr, Py_ssize_t n_rows, const csr_index* indices,
                     Py_ssize_t n_stored, Py_ssize_t n_cols) noexcept nogil:
    # 0 when every offset lies in [0, n_stored] without going back and every
    # column read is in [0, n_cols); 1 for a bad offset, 2 for a bad column
    cdef Py_ssize_t r
    cdef int64_t p
    if indptr[0] < 0 or indptr[n_rows] > n_stored:
        return 1
    for r in range(n_rows):
        if indptr[r + 1] < indptr[r]:
            return 1
    for p in range(indptr[0], indptr[n_rows]):
        if indices[p] < 0 or indices[p] >= n_cols:
            return 2
    return 0


cdef class CSRRows:
    """The rows of a CSR matrix, as the compiled gathers read them: each
    batch densified into a buffer of batch rows, never the whole matrix.

    Parameters
    ----------
    indptr : (n_rows + 1,) int32 or int64 array
        Row r's values are ``data[indptr[r]:indptr[r + 1]]``, in columns
        ``indices[...]``; need not start at 0 (a slice of rows is a view).
    indices : int array of indptr's dtype
    data : float32 or float64 array, as long as indices
    n_cols : int
        The matrix's width.

    Every array is 1-D and C-contiguous; checked here once (offsets in
    range and never going back, every column read in [0, n_cols)), so that
    no gather reads or writes out of bounds.  The values are not looked at:
    the Python layer (pynn._sparse) checks them finite.
    """
    cdef readonly object indptr, indices, data, dtype
    cdef readonly Py_ssize_t n_rows, n_cols
    cdef CSRView view

    def __init__(self, cnp.ndarray indptr not None, cnp.ndarray indices not None,
                 cnp.ndarray data not None, Py_ssize_t n_cols):
        for name, a in (("indptr", indptr), ("indices", indices), ("data", data)):
            if a.ndim != 1 or not a.flags.c_contiguous or not a.flags.aligned \
                    or not a.dtype.isnative:
                raise ValueError(f"{name} must be a 1-D C-contiguous aligned array "
                                 f"in native byte order")
        if indptr.dtype not in (np.int32, np.int64) or indices.dtype != indptr.dtype:
            raise TypeError(f"indptr and indices must both be int32 or both int64, got "
                            f"{indptr.dtype} and {indices.dtype}")
        if data.dtype not in (np.float32, np.float64):
            raise TypeError(f"data must be float32 or float64, got {data.dtype}")
        if indptr.shape[0] < 1 or indices.shape[0] != data.shape[0] or n_cols < 0:
            raise ValueError(f"indptr must have n_rows + 1 >= 1 entries and indices as "
                             f"many as data, got {indptr.shape[0]}, {indices.shape[0]}, "
                             f"{data.shape[0]} entries and n_cols={n_cols}")
        cdef Py_ssize_t n_rows = indptr.shape[0] - 1, n_stored = data.shape[0]
        cdef bint wide = indptr.dtype == np.int64
        cdef const void* p_indptr = cnp.PyArray_DATA(indptr)
        cdef const void* p_indices = cnp.PyArray_DATA(indices)
        cdef int status
        with nogil:
            if wide:
                status = _csr_status(<const int64_t*>p_indptr, n_rows,
                                     <const int64_t*>p_indices, n_stored, n_cols)
            else:
                status = _csr_status(<const int32_t*>p_indptr, n_rows,
                                     <const int32_t*>p_indices, n_stored, n_cols)
        if status == 1:
            raise ValueError(f"indptr must be non-decreasing offsets in [0, {n_stored}]")
        if status == 2:
            raise ValueError(f"indices must be column numbers in [0, {n_cols})")
        self.indptr, self.indices, self.data = indptr, indices, data
        self.dtype = data.dtype
        self.n_rows, self.n_cols = n_rows, n_cols
        self.view.indptr = p_indptr
        self.view.indices = p_indices
        self.view.data = cnp.PyArray_DATA(data)
        self.view.wide = wide

    @property
    def shape(self):
        return (self.n_rows, self.n_cols)

    @property
    def ndim(self):
        return 2

    @property
    def nnz(self):
        """The number of values stored in these rows."""
        return int(self.indptr[self.n_rows] - self.indptr[0])

    def __len__(self):
        return self.n_rows

    def __getitem__(self, key):
        """Rows ``key``: a slice of step 1 (a view: no value is copied) or a
        1-D array of row numbers (their values copied, in that order)."""
        if isinstance(key, slice):
            start, stop, step = key.indices(self.n_rows)
            if step != 1:
                raise TypeError(f"rows of a CSRRows are sliced with step 1, got {key!r}")
            stop = max(start, stop)
            return CSRRows(self.indptr[start:stop + 1], self.indices, self.data,
                           self.n_cols)
        rows = np.asarray(key)
        if rows.ndim != 1 or (rows.dtype.kind not in "iu" and rows.shape[0]):
            raise TypeError(f"rows of a CSRRows are taken by a slice or a 1-D array of "
                            f"row numbers, got {type(key).__name__}")
        rows = rows.astype(np.int64)
        rows = np.where(rows < 0, rows + self.n_rows, rows)
        if rows.shape[0] and (rows.min() < 0 or rows.max() >= self.n_rows):
            raise IndexError(f"row numbers must lie in [-{self.n_rows}, {self.n_rows})")
        indptr = self.indptr.astype(np.int64)
        starts = indptr[rows]
        lengths = indptr[rows + 1] - starts
        offsets = np.zeros(rows.shape[0] + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        # position of each value taken: its row's start, then on by one
        # (no negative index: this module is compiled without wraparound)
        total = int(offsets[rows.shape[0]])
        positions = np.repeat(starts - offsets[:rows.shape[0]], lengths) + np.arange(total)
        index_dtype = self.indptr.dtype if total <= np.iinfo(np.int32).max else np.int64
        return CSRRows(offsets.astype(index_dtype),
                       np.ascontiguousarray(self.indices[positions], dtype=index_dtype),
                       self.data[positions], self.n_cols)


cdef Py_ssize_t _epoch(Net net, floating* params, floating* grads, floating* state,
                       const floating* X, const CSRView* sx, const floating* Y,
                       const floating* row_weight, Py_ssize_t n_samples,
                       Py_ssize_t n_in, Py_ssize_t n_y, const Py_ssize_t* order,
                       Py_ssize_t batch_size, Py_ssize_t first, Py_ssize_t stop,
                       floating* bx, floating* by, floating* bw, floating* work,
                       int loss_code,
                       bint fused, OptSettings* opt,
                       Py_ssize_t n_params, const Vars* vars,
                       double* losses, Metrics* metrics,
                       int64_t* iterations) noexcept nogil:
    # Batches first..stop-1 of an epoch; returns the first batch whose step
    # was not applied (stop when all were).  x and y were checked finite once.
    # sx: x as CSR rows (X is then NULL), each batch densified into bx.
    # row_weight (n_samples,) or NULL: gathered with x and y into bw.
    # iterations[0] counts the updates applied, advanced right after each:
    # the count is right whenever the caller looks, even if the call
    # returns into a KeyboardInterrupt.
    cdef Py_ssize_t k, start, m, j
    cdef Py_ssize_t n_out = net.layout[(net.n_layers - 1) * N_COLS + 1]
    cdef const floating* xb
    cdef const floating* yb
    cdef const floating* wb = NULL
    cdef Bounds bounds
    cdef GradPass gp
    # the gradient bounds the split layers' halves took, per variable
    cdef const double* known = vars.known if net.half_bounds != NULL \
        and vars.slot != NULL else NULL
    bounds.valid = False
    for k in range(first, stop):
        start = k * batch_size
        m = min(batch_size, n_samples - start)
        xb = _epoch_batch_x(net, X, sx, order, start, m, n_in, bx)
        if order != NULL and sx == NULL and k + 1 < stop:
            _prefetch_rows(X, order + start + batch_size,
                           min(batch_size, n_samples - start - batch_size), n_in)
        if order == NULL:
            yb = Y + start * n_y
            if row_weight != NULL:
                wb = row_weight + start
        else:
            _gather(Y, order + start, m, n_y, by)
            yb = by
            if row_weight != NULL:
                _gather(row_weight, order + start, m, 1, bw)
                wb = bw
        _rng_save(net)
        losses[k] = _loss_and_backward(net, params, grads, xb, yb, wb, m, work,
                                       loss_code, fused, NULL)
        if not isfinite(losses[k]):
            _rng_restore(net)
            return k
        # regularizers and clipping, in the pass that bounds the gradient
        if known != NULL:
            for j in range(vars.n):
                vars.known[j] = net.half_bounds[vars.slot[j]] if vars.slot[j] >= 0 else -1
        gp = grad_pass(params, grads, vars.rows, vars.n, vars.reg, True, opt, True, known)
        losses[k] += gp.penalty
        if not (gp.finite and isfinite(losses[k])):
            _rng_restore(net)
            return k
        # the first step checks exactly and measures the bounds that the
        # next ones carry (optim_kernels.pxd); a step the bounds cannot
        # vouch for is checked exactly too
        if not bounded_update_is_finite(gp.bound, opt, &bounds, floating is float):
            if not update_is_finite(params, grads, state, n_params, vars.rows, vars.n, opt):
                _rng_restore(net)
                return k
            bounds.valid = False
        if not _layer_state_stays_finite(net, <floating*>net.stats):
            _rng_restore(net)
            return k
        for j in range(metrics.n):
            # the output of this batch's forward pass, before the update
            metrics.values[j * metrics.stride + k] = metric_value(
                metrics.codes[j], metrics.thresholds[j],
                work + m * (net.total_width - n_out), yb, m, n_out, n_y)
        optimizer_step(params, grads, state, n_params, vars.rows, vars.n, opt)
        _commit_layer_state(net, <floating*>net.stats)
        iterations[0] += 1
        opt.step += 1
        if not bounds.valid and k + 1 < stop:
            measure_bounds(params, state, n_params, opt, &bounds)
    return stop




cdef void _predict_rows(Net net, const floating* params, const floating* X,
                        const CSRView* sx, floating* bx, Py_ssize_t n,
                        Py_ssize_t n_in, Py_ssize_t n_out,
                        Py_ssize_t chunk, floating* work, bint logits,
                        floating* out) noexcept nogil:
    # The network's outputs for n rows, chunk rows at a time through work
    # (and through bx, densified, when the rows are the CSR ones of sx).
    cdef Py_ssize_t start = 0, m
    cdef floating* res
    while start < n:
        m = min(chunk, n - start)
        res = _forward(net, params, _batch_x(X, sx, NULL, start, m, n_in, bx), m, work,
                       logits)
        memcpy(out + start * n_out, res, m * n_out * sizeof(floating))
        start += m


cdef double _mean_loss(Net net, const floating* params, const floating* X,
                       const CSRView* sx, floating* bx, const floating* Y,
                       const floating* row_weight,
                       Py_ssize_t n, Py_ssize_t n_in,
                       Py_ssize_t n_y, Py_ssize_t chunk, floating* work,
                       int loss_code, bint fused) noexcept nogil:
    # The loss over n rows, chunk rows at a time; every loss is a mean over
    # rows (and columns), so chunk means weighted by their rows give it.
    # With row weights: sum_i w_i l_i / n, the weighted sum over the count.
    cdef Py_ssize_t start = 0, m
    cdef Py_ssize_t n_out = net.layout[(net.n_layers - 1) * N_COLS + 1]
    cdef double total = 0
    cdef floating* res
    while start < n:
        m = min(chunk, n - start)
        res = _forward(net, params, _batch_x(X, sx, NULL, start, m, n_in, bx), m, work,
                       fused)
        total += m * loss_and_grad(loss_code, res, Y + start * n_y,
                                   row_weight + start if row_weight != NULL else NULL,
                                   m, n_out,
                                   work + m * net.total_width, net.loss_param)
        start += m
    return total / n


# --------------------------------------------------------------------------
# The dtype dispatch, written once
# --------------------------------------------------------------------------
#
# Every entry of Network fills a Call (the pointers untyped) and hands it
# to Network._run, the one place that picks the float32 or float64
# instantiation of _run_typed, which reads the pointers as that type and
# runs the call's kernel.  Adding an entry adds an Op and its case below.

cdef enum Op:
    OP_STEP             # one batch: assembled, checked, forward, loss, backward, update
    OP_EPOCH            # batches first..stop-1 of an epoch
    OP_PREDICT          # outputs, chunk rows at a time
    OP_LOSS             # the mean loss, chunk rows at a time
    OP_PENALTY          # the regularizers' penalty
    OP_APPLY            # the gradient pass, the check and the update on the buffer
    OP_COMMIT           # the last training pass's statistics into the moving ones


cdef struct Call:
    int op
    Net net
    void* params
    void* grads
    void* state
    const void* x           # the rows (NULL when sx holds them)
    const CSRView* sx
    const void* y
    const void* w           # row weights, or NULL
    const Py_ssize_t* order # the rows to take, in order (NULL: as they come)
    Py_ssize_t n, n_in, n_y, n_out, chunk, batch_size, first, stop, n_params
    void* bx                # batch buffers (gathered or densified rows)
    void* by
    void* bw
    void* work
    void* out
    int loss_code
    bint fused, update, regularize, logits, pending
    OptSettings opt
    const Vars* vars
    double* losses
    Metrics* metrics
    double* clock           # profile_step's clock readings, or NULL
    int64_t* iterations
    # results
    int status
    double value
    Py_ssize_t done


cdef void _run_typed(Call* c, floating* params) noexcept nogil:
    cdef floating* grads = <floating*>c.grads
    cdef floating* state = <floating*>c.state
    cdef floating* work = <floating*>c.work
    cdef floating* bx = <floating*>c.bx
    cdef const floating* y = <const floating*>c.y
    cdef const floating* w = <const floating*>c.w
    cdef const floating* xb
    if c.op == OP_STEP:
        _stamp(c.clock, 0)
        xb = _batch_x(<const floating*>c.x, c.sx, c.order, 0, c.n, c.n_in, bx)
        if c.order != NULL:
            _gather(y, c.order, c.n, c.n_y, <floating*>c.by)
            y = <const floating*>c.by
            if w != NULL:
                _gather(w, c.order, c.n, 1, <floating*>c.bw)
                w = <const floating*>c.bw
        c.status = _checked_step(c.net, params, grads, state, xb, y, w, c.n, c.n_in,
                                 c.n_y, work, c.loss_code, c.fused, &c.opt, c.n_params,
                                 c.vars, c.update, &c.value, c.iterations,
                                 c.clock + 1 if c.clock != NULL else NULL)
    elif c.op == OP_EPOCH:
        c.done = _epoch(c.net, params, grads, state, <const floating*>c.x, c.sx, y, w,
                        c.n, c.n_in, c.n_y, c.order, c.batch_size, c.first, c.stop,
                        bx, <floating*>c.by, <floating*>c.bw, work, c.loss_code, c.fused,
                        &c.opt, c.n_params, c.vars, c.losses, c.metrics, c.iterations)
    elif c.op == OP_PREDICT:
        _predict_rows(c.net, params, <const floating*>c.x, c.sx, bx, c.n, c.n_in, c.n_out,
                      c.chunk, work, c.logits, <floating*>c.out)
    elif c.op == OP_LOSS:
        _rng_save(c.net)
        c.value = _mean_loss(c.net, params, <const floating*>c.x, c.sx, bx, y, w, c.n,
                             c.n_in, c.n_y, c.chunk, work, c.loss_code, c.fused)
        _rng_restore(c.net)
    elif c.op == OP_PENALTY:
        c.value = penalty(params, c.vars.rows, c.vars.n, c.vars.reg)
    elif c.op == OP_APPLY:
        if c.pending:
            c.status = _checked_update(c.net, params, grads, state, c.n_params, c.vars,
                                       &c.opt, c.update, c.regularize, NULL, c.iterations)
        else:
            c.status = _checked_apply(params, grads, state, c.n_params, c.vars, &c.opt,
                                      c.update, c.regularize, NULL, c.iterations)
    elif c.op == OP_COMMIT:
        _commit_layer_state(c.net, <floating*>c.net.stats)


cdef enum:
    # Network.all_finite takes two threads from arrays of this many bytes.
    # Measured on 2 cores (AVX-512, both dtypes, arrays evicted from the
    # caches first, as a data set is): at 2 MB two threads tie with one, at
    # 4 MB they take 0.70-0.75 of its time, from 8 MB 0.59-0.66 (at most
    # 0.50 on 45 MB and up); below 8 MB an array still in L2 was faster
    # read by one thread.
    _FINITE_PARALLEL_MIN_BYTES = 1 << 23

FINITE_PARALLEL_MIN_BYTES = _FINITE_PARALLEL_MIN_BYTES


# Network.all_finite's shares: a range of an array of the network's dtype
cdef struct _FiniteShare:
    const void* x
    Py_ssize_t n
    bint is_double
    bint bad


cdef void _finite_share(void* arg) noexcept nogil:
    cdef _FiniteShare* t = <_FiniteShare*>arg
    if t.is_double:
        t.bad = not all_finite(<const double*>t.x, t.n)
    else:
        t.bad = not all_finite(<const float*>t.x, t.n)


cdef class Network:
    """The compiled side of a Sequential model.

    Parameters
    ----------
    params, grads : 1-D C-contiguous float32 or float64 arrays of one size
        The flat parameter and gradient buffers (not copied: the Network
        reads and writes them in place).
    layout : (n_layers, N_COLS) intp array, see the top of this file
        (columns 7 and 8, the workspaces' offsets, are set here).
    settings : (n_layers, N_SETTINGS) float64 array, optional
        The layer kinds' real settings (layer_kernels.pxd); copied.
    stats : 1-D array of the params' dtype, optional
        The moving statistics the layout's stats offsets point into (not
        copied: updated in place by each applied training step).
    """
    cdef object _params, _grads, _layout, _work, _state, _bx, _by, _bw
    cdef object _var_rows, _var_reg, _var_slot, _var_known, _half_bounds
    cdef Vars vars
    cdef object _settings, _stats, _fixed, _generators, _rng_ptrs, _rng_saved, _inference
    cdef void* p_params
    cdef void* p_grads
    cdef void* p_state
    cdef Net net
    cdef bint is_double
    cdef Py_ssize_t n_params, n_in, n_out, n_y, work_capacity, batch_capacity, state_len
    cdef int loss_code, opt_code
    cdef bint fused
    cdef Py_ssize_t rngs_needed
    # a step(update=False) passed: its generators' saved states and its
    # layers' statistics await apply_gradients
    cdef bint pending
    cdef double hyper[16]
    # the number of updates applied to these parameters: step and
    # train_batches advance it inside their compiled loops, one per update
    cdef public int64_t iterations
    cdef Metrics metrics
    cdef readonly object dtype
    # BLAS thread policy: see set_thread_policy
    cdef set_threads_fn set_local_threads
    cdef get_threads_fn get_threads
    cdef int n_threads, element_threads
    cdef double flops_per_sample, min_parallel_flops
    # the largest Dense layer's n_in * n_out and n_out: a batch of n rows
    # has no product above n * max_macs multiply-adds and no activation
    # pass above n * max_width elements
    cdef Py_ssize_t max_macs, max_width, max_in
    cdef Py_ssize_t split_min_rows  # the fewest rows at which some layer splits (_split_units)
    # the update's shares when products are split (_share_rows): the
    # helper's ranges of the buffer and the caller's, (n, 2) pairs each
    cdef object _ranges
    cdef Py_ssize_t* ranges
    # the settings object set_hyper copied last (a tuple: immutable), so
    # that the same settings handed again at every step are not re-read
    cdef object hyper_given

    def __init__(self, cnp.ndarray params not None, cnp.ndarray grads not None, layout,
                 settings=None, stats=None):
        if params.ndim != 1 or not params.flags.c_contiguous:
            raise ValueError("params must be a 1-D C-contiguous array")
        if params.dtype != np.float32 and params.dtype != np.float64:
            raise TypeError(f"params must be float32 or float64, got {params.dtype}")
        if grads.dtype != params.dtype or grads.ndim != 1 \
                or grads.shape[0] != params.shape[0] or not grads.flags.c_contiguous:
            raise ValueError("grads must be laid out like params")
        self._layout = np.array(layout, dtype=np.intp, order="C")   # a copy: set below
        if self._layout.ndim != 2 or self._layout.shape[1] != N_COLS \
                or self._layout.shape[0] < 1:
            raise ValueError(f"layout must have shape (n_layers, {N_COLS})")
        row_width, fixed_width = self._workspaces(self._layout)
        cdef const Py_ssize_t[:, ::1] lay = self._layout
        _check_preactivation_offsets(lay)
        self._params = params
        self._grads = grads
        self.p_params = cnp.PyArray_DATA(params)
        self.p_grads = cnp.PyArray_DATA(grads)
        self.net = _net(lay)
        self.dtype = params.dtype
        self._set_kinds(settings, stats, row_width, fixed_width)
        self.is_double = params.dtype == np.float64
        self.n_params = params.shape[0]
        self.n_in = lay[0, 0]
        self.n_out = lay[self.net.n_layers - 1, 1]
        self.n_y = self.n_out
        self.work_capacity = 0
        self.batch_capacity = 0
        self._state = np.zeros(1, dtype=self.dtype)
        self.p_state = cnp.PyArray_DATA(self._state)
        self.set_variables([[0, self.n_params, 0]])
        self.state_len = 0
        memset(self.hyper, 0, sizeof(self.hyper))
        self.iterations = 0
        memset(&self.metrics, 0, sizeof(Metrics))
        self.set_local_threads = NULL
        self.n_threads = 0
        self.get_threads = NULL
        self.element_threads = 0
        self.min_parallel_flops = 0
        self.flops_per_sample = 0
        self.max_macs = self.max_width = self.max_in = 0
        self.split_min_rows = (<Py_ssize_t>1) << 62
        self.hyper_given = None
        cdef Py_ssize_t l, m
        for l in range(lay.shape[0]):
            # forward, dW and (above the first layer) dX products
            if lay[l, COL_KIND] == KIND_DENSE:
                self.flops_per_sample += 2.0 * lay[l, 0] * lay[l, 1] * (2 if l == 0 else 3)
                self.max_macs = max(self.max_macs, lay[l, 0] * lay[l, 1])
                self.max_width = max(self.max_width, lay[l, 1])
                self.max_in = max(self.max_in, lay[l, 0])
                if lay[l, 1] >= 2 * _SPLIT_ALIGN:
                    m = lay[l, 0] * lay[l, 1]
                    self.split_min_rows = min(self.split_min_rows,
                                              (_SPLIT_MIN_MACS + m - 1) // m)
        # at most one range per layer for the helper, one more for the caller
        self._ranges = np.zeros(4 * (lay.shape[0] + 2), dtype=np.intp)
        self.ranges = <Py_ssize_t*>cnp.PyArray_DATA(<cnp.ndarray>self._ranges)
        self._half_bounds = np.full(2 * lay.shape[0], -1.0)

    @staticmethod
    def _workspaces(layout):
        # Each layer's workspace offsets into columns 7 and 8: its share of
        # the per-sample part, and of the part that does not grow with n.
        cdef Py_ssize_t row_width = 0, fixed_width = 0, l, need
        for l in range(layout.shape[0]):
            kind, w = int(layout[l, COL_KIND]), int(layout[l, 1])
            if kind not in (KIND_DENSE, KIND_DROPOUT, KIND_BATCH_NORM, KIND_LAYER_NORM):
                raise ValueError(f"layout row {l}: unknown layer kind {kind}")
            if kind != KIND_DENSE and layout[l, 0] != w:
                raise ValueError(f"layout row {l}: a layer of kind {kind} keeps its width")
            need = row_workspace(kind, w)
            layout[l, COL_ROW_WORK] = row_width if need else -1
            row_width += need
            need = fixed_workspace(kind, w)
            layout[l, COL_FIXED_WORK] = fixed_width if need else -1
            fixed_width += need
        return row_width, fixed_width

    def _set_kinds(self, settings, stats, Py_ssize_t row_width, Py_ssize_t fixed_width):
        cdef Py_ssize_t l, n_layers = self.net.n_layers
        self._settings = np.zeros((n_layers, N_SETTINGS), dtype=np.float64)
        if settings is not None:
            self._settings[...] = settings
        cdef Py_ssize_t n_stats = 0
        for l in range(n_layers):
            if self._layout[l, COL_STATS] >= 0:
                n_stats = max(n_stats, self._layout[l, COL_STATS] + 2 * self._layout[l, 1])
            if self._layout[l, COL_KIND] == KIND_DROPOUT \
                    and not 0 <= self._settings[l, SET_RATE] < 1:
                raise ValueError(f"layer {l}: dropout rate {self._settings[l, SET_RATE]} "
                                 f"is not in [0, 1)")
        if stats is None:
            stats = np.zeros(max(n_stats, 1), dtype=self.dtype)
        if not isinstance(stats, np.ndarray) or stats.dtype != self.dtype \
                or stats.ndim != 1 or not stats.flags.c_contiguous \
                or stats.shape[0] < n_stats:
            raise ValueError(f"stats must be a 1-D C-contiguous {self.dtype} array of at "
                             f"least {n_stats} values")
        self._stats = stats
        self._fixed = np.zeros(max(fixed_width, 1), dtype=self.dtype)
        self.net.row_width = row_width
        self.net.fixed_width = fixed_width
        self.net.stats = cnp.PyArray_DATA(<cnp.ndarray>stats)
        self.net.fixed = cnp.PyArray_DATA(<cnp.ndarray>self._fixed)
        self.net.settings = <const double*>cnp.PyArray_DATA(<cnp.ndarray>self._settings)
        self.rngs_needed = 0
        for l in range(n_layers):
            self.rngs_needed = max(self.rngs_needed, self._layout[l, COL_RNG] + 1)
        self._rng_ptrs = np.zeros(1, dtype=np.uintp)        # until set_generators
        self._rng_saved = np.zeros(sizeof(pcg_t), dtype=np.uint8)
        self.net.rngs = <pcg_t**>cnp.PyArray_DATA(<cnp.ndarray>self._rng_ptrs)
        self.net.rng_saved = <unsigned char*>cnp.PyArray_DATA(<cnp.ndarray>self._rng_saved)
        self.net.n_rngs = 0

    cdef int _check_generators(self) except -1:
        # a training pass of a network with dropout draws from them
        if self.net.n_rngs < self.rngs_needed:
            raise RuntimeError(f"the network draws from {self.rngs_needed} generators: "
                               f"give them with set_generators first")
        return 0

    def set_generators(self, generators):
        """The generators (pynn._random.Generator) that the layers whose
        layout names a generator index draw from, in that order; the
        network keeps references to them and draws from them in place."""
        generators = list(generators)
        if len(generators) < self.rngs_needed:
            raise ValueError(f"the layout draws from {self.rngs_needed} generators, "
                             f"{len(generators)} given")
        self._generators = generators
        self._rng_ptrs = np.array([g.state_address() for g in generators] or [0],
                                  dtype=np.uintp)
        self._rng_saved = np.zeros(max(len(generators), 1) * sizeof(pcg_t), dtype=np.uint8)
        self.net.rngs = <pcg_t**>cnp.PyArray_DATA(<cnp.ndarray>self._rng_ptrs)
        self.net.rng_saved = <unsigned char*>cnp.PyArray_DATA(<cnp.ndarray>self._rng_saved)
        self.net.n_rngs = len(generators)

    def commit_layer_state(self):
        """Fold the statistics of the last training pass into the moving
        ones, as an applied step does: for a caller that applies the update
        itself after ``step(update=False)`` (data-parallel training)."""
        cdef Call c = self._call(OP_COMMIT)
        with nogil:
            self._run(&c, 0)

    def layer_workspace(self, Py_ssize_t layer, Py_ssize_t n):
        """A view of layer ``layer``'s per-sample workspace (n, width) after a
        pass over n samples: dropout's scaled mask (0 or 1 / (1 - rate)),
        normalisation's x_hat (and LayerNormalization's 1/std per row, last)."""
        if not 0 <= layer < self.net.n_layers or self._layout[layer, COL_ROW_WORK] < 0:
            raise ValueError(f"layer {layer} has no per-sample workspace")
        if n < 1 or n * (self.net.work_width + self.net.row_width) > self.work_capacity:
            raise ValueError(f"no pass over {n} samples is held")
        kind, w = self._layout[layer, COL_KIND], self._layout[layer, 1]
        width = row_workspace(kind, w)
        off = n * (self.net.work_width + self._layout[layer, COL_ROW_WORK])
        return self._work[off:off + n * width].reshape(n, width) if kind != KIND_LAYER_NORM \
            else self._work[off:off + n * width]

    @property
    def layout(self):
        """The layout the network runs (a read-only copy, the workspace
        columns set)."""
        lay = np.array(self._layout)
        lay.flags.writeable = False
        return lay

    def set_thread_policy(self, size_t set_local_threads, int n_threads,
                          double min_parallel_flops, size_t get_threads=0,
                          int element_threads=0):
        """How many BLAS threads the kernels' products use, and whether the
        passes outside them may use a second thread.

        set_local_threads is the address of OpenBLAS's
        ``int openblas_set_num_threads_local(int)`` (0 when unavailable: the
        BLAS then decides alone).  n_threads > 0 forces that many threads for
        this network's calls; 0 lets the BLAS use its own count (which honours
        threadpoolctl's limits) except for steps of fewer than
        min_parallel_flops floating-point operations, run on one thread since
        waking a second costs more than it saves there.

        The optimizer's check and update of a big model (optim_kernels.pxd)
        and the activation passes of big layers (activation_kernels.pxd) use
        two threads when n_threads is 2 or more, or when n_threads is 0 and
        get_threads, the address of the BLAS's ``int f(void)`` giving its
        current thread count (threadpoolctl's limits included), says 2 or
        more; one thread without it.  element_threads > 0 sets their count
        alone, the products' left as above.
        """
        self.set_local_threads = <set_threads_fn>set_local_threads
        self.get_threads = <get_threads_fn>get_threads
        self.element_threads = element_threads
        self.n_threads = n_threads
        self.min_parallel_flops = min_parallel_flops

    cdef inline int _pass_threads(self, Py_ssize_t n) noexcept nogil:
        # threads for the passes outside the products of a call on batches
        # of n rows (0: no batch), read at each call; 1 without asking the
        # BLAS when no pass of the call is big enough to be split
        if n * self.max_width < _ACT_PARALLEL_MIN_ELEMENTS \
                and self.n_params < PARALLEL_MIN_ELEMENTS and n * self.max_macs < _SPLIT_MIN_MACS:
            return 1
        return self._element_thread_count()

    cdef inline int _element_thread_count(self) noexcept nogil:
        # the thread policy's count for a pass big enough to split
        if self.element_threads > 0:
            return self.element_threads
        if self.n_threads > 0:
            return self.n_threads
        return self.get_threads() if self.get_threads != NULL else 1

    cdef inline int _threads_enter(self, Py_ssize_t n, bint split) noexcept nogil:
        # The thread count for this call's products; returns the count the
        # setter reports it replaced, which _threads_exit puts back (-1: none
        # set).  Putting back the count found, not 0, keeps threadpoolctl's
        # limit: OpenBLAS's openblas_set_num_threads_local(0) sets its
        # default count instead of dropping an override.
        if self.set_local_threads == NULL:
            return -1
        if split:
            return self.set_local_threads(1)    # the halves, one core each
        if n * self.max_macs <= PYNN_SMALL_GEMM_MAX:
            # every product on SciPy's OpenBLAS (_blas.pxd), which runs
            # products of fewer than 262,144 multiply-adds on one thread
            # whatever its count: the count is left as it is
            return -1
        if self.n_threads > 0:
            return self.set_local_threads(self.n_threads)
        if n * self.flops_per_sample < self.min_parallel_flops:
            return self.set_local_threads(1)
        return -1

    cdef inline bint _splits(self, const Call* c, Py_ssize_t n) noexcept nogil:
        # whether a call on batches of n rows is a training pass whose big
        # Dense layers split their products in halves (_halves), each half
        # on one BLAS thread, the second on the helper when n_threads allows:
        # measured on 2 cores (AVX-512, MKL, float32, one process, quiet),
        # train_on_batch per step against the BLAS's two threads: 784-128-10
        # at batch 32 70 us against 120 (there on one thread: two lose),
        # 784-512-512-10 at 128 1.55-1.63 ms against 1.77-1.91,
        # 1024-2048-2048-1024 at 256 median 38.3-38.7 ms against 43.5-43.8.
        # It needs the per-thread setter: two threads each calling a
        # threaded BLAS would oversubscribe the cores
        return self.set_local_threads != NULL and n >= self.split_min_rows \
            and c.work != NULL and (c.op == OP_STEP or c.op == OP_EPOCH)

    cdef void _share_rows(self, Call* c, Py_ssize_t n) noexcept nogil:
        # The update's shares when the helper computes the second halves of
        # the split layers' products: it updates those rows of W (the
        # gradient it wrote, in its cache), the caller the rest
        cdef Py_ssize_t l, h, k, lo, hi, n_owned = 0, n_rest = 0
        cdef Py_ssize_t* owned = self.ranges
        cdef Py_ssize_t* rest = self.ranges + 2 * (self.net.n_layers + 2)
        cdef const Py_ssize_t* row
        for l in range(self.net.n_layers):
            row = self.net.layout + l * N_COLS
            if row[COL_KIND] != KIND_DENSE:
                continue
            h = _split_units(n, row[0], row[1])
            if h == 0:
                continue
            lo = row[2] + h * row[0]
            hi = row[2] + row[1] * row[0]
            k = n_owned         # kept in order of the buffer
            while k > 0 and owned[2 * (k - 1)] > lo:
                owned[2 * k] = owned[2 * (k - 1)]
                owned[2 * k + 1] = owned[2 * (k - 1) + 1]
                k -= 1
            owned[2 * k] = lo
            owned[2 * k + 1] = hi
            n_owned += 1
        lo = 0
        for k in range(n_owned):
            if owned[2 * k] > lo:
                rest[2 * n_rest] = lo
                rest[2 * n_rest + 1] = owned[2 * k]
                n_rest += 1
            lo = owned[2 * k + 1]
        if lo < self.n_params:
            rest[2 * n_rest] = lo
            rest[2 * n_rest + 1] = self.n_params
            n_rest += 1
        c.opt.owned = owned
        c.opt.n_owned = n_owned
        c.opt.rest = rest
        c.opt.n_rest = n_rest

    cdef inline void _threads_exit(self, int previous) noexcept nogil:
        if previous >= 0:
            self.set_local_threads(previous)

    def set_loss(self, int code, bint fused, Py_ssize_t target_width, double param=0.0):
        """The loss kernel's code, whether it takes the last layer's logits,
        the width of its targets (the output width, or 1 for labels), and the
        loss's param (Huber's delta; 0 for the losses without one)."""
        if target_width < 1:
            raise ValueError(f"target_width must be >= 1, got {target_width}")
        self.loss_code = code
        self.fused = fused
        self.net.loss_param = param
        self.n_y = target_width
        self.metrics.n = 0          # set_metrics again: they depend on the targets
        self.batch_capacity = 0  # the target buffer's width may have changed

    def set_optimizer(self, int code, cnp.ndarray state not None, Py_ssize_t decay_end):
        """The optimizer kernel's code and its state buffer (kept, updated in
        place); its settings come before each call through set_hyper."""
        if state.dtype != self.dtype or state.ndim != 1 or not state.flags.c_contiguous:
            raise ValueError("state must be a 1-D C-contiguous array of the model's dtype")
        real_len = state.shape[0]
        if real_len == 0:
            state = np.zeros(1, dtype=self.dtype)  # never dereferenced; keeps a valid pointer
        if not 0 <= decay_end <= self.n_params:
            raise ValueError(f"decay_end must lie in [0, {self.n_params}], got {decay_end}")
        self.state_len = real_len
        self.opt_code = code
        self.hyper_given = None     # set_hyper checks the settings against this state
        self._state = state
        self.p_state = cnp.PyArray_DATA(state)
        # every parameter, kernels first: set_variables may narrow it
        self.set_variables([[0, decay_end, 1], [decay_end, self.n_params, 0]])

    def set_variables(self, variables, regularizers=None):
        """The variables the update covers and their regularizers.

        variables: (n_vars, 3) integers, rows [start, stop, decayed] of
        disjoint ranges of the parameter buffer in increasing order (a
        layer's kernel, its bias; decayed = 1 where SGD's and Adam's L2
        weight decay applies).  Entries outside every range (a frozen
        layer's) are never updated, nor is their optimizer state.
        Clipping by norm takes each row as one variable.
        regularizers: None, or (n_vars, 2) [l1, l2] >= 0 per row: the
        penalty l1 sum |w| + l2 sum w^2 joins the loss, its gradient the
        gradient.
        """
        rows = np.array(variables, dtype=np.intp).reshape(-1, VAR_COLS)
        cdef Py_ssize_t k, end = 0
        for k in range(rows.shape[0]):
            if not end <= rows[k, 0] <= rows[k, 1] <= self.n_params or rows[k, 2] not in (0, 1):
                raise ValueError(f"variables must be disjoint increasing ranges within "
                                 f"[0, {self.n_params}] flagged 0 or 1, got row {k}: "
                                 f"{rows[k].tolist()}")
            end = rows[k, 1]
        reg = None
        if regularizers is not None:
            reg = np.array(regularizers, dtype=np.float64).reshape(-1, 2)
            if reg.shape[0] != rows.shape[0] or not np.all(np.isfinite(reg)) \
                    or np.any(reg < 0):
                raise ValueError(f"regularizers must hold finite [l1, l2] >= 0, one row "
                                 f"per variable ({rows.shape[0]}), got {reg.tolist()!r:.80}")
        kept = rows[:, 1] > rows[:, 0]      # empty ranges dropped
        rows = np.ascontiguousarray(rows[kept])
        if reg is not None:
            reg = np.ascontiguousarray(reg[kept]) if np.any(reg) else None
        self._var_rows = rows
        self._var_reg = reg
        self.vars.rows = <const Py_ssize_t*>cnp.PyArray_DATA(<cnp.ndarray>rows) \
            if rows.shape[0] else NULL
        self.vars.n = rows.shape[0]
        self.vars.reg = <const double*>cnp.PyArray_DATA(<cnp.ndarray>reg) \
            if reg is not None else NULL
        # which variables are a Dense layer's whole kernel or bias, whose
        # gradient bound a split step's halves take (_Half.want_bound)
        layout = np.asarray(self._layout)
        slot = np.full(rows.shape[0], -1, dtype=np.intp)
        for k in range(rows.shape[0]):
            for l in range(layout.shape[0]):
                if layout[l, COL_KIND] != KIND_DENSE:
                    continue
                kernel = layout[l, 2], layout[l, 2] + layout[l, 0] * layout[l, 1]
                bias = layout[l, 3], layout[l, 3] + layout[l, 1]
                if (rows[k, 0], rows[k, 1]) == kernel:
                    slot[k] = 2 * l
                elif (rows[k, 0], rows[k, 1]) == bias:
                    slot[k] = 2 * l + 1
        self._var_slot = slot
        self._var_known = np.full(rows.shape[0], -1.0)
        self.vars.slot = <const Py_ssize_t*>cnp.PyArray_DATA(<cnp.ndarray>slot) \
            if rows.shape[0] else NULL
        self.vars.known = <double*>cnp.PyArray_DATA(<cnp.ndarray>self._var_known) \
            if rows.shape[0] else NULL

    def set_inference_layers(self, flags):
        """Per layer, True where a BatchNormalization runs in inference mode
        in training steps too (a frozen one, as Keras's): the moving
        statistics normalise and do not move, and its backward pass treats
        them as constants.  Other layers' flags must be False."""
        arr = np.array(flags, dtype=np.uint8).reshape(-1)
        if arr.shape[0] != self.net.n_layers:
            raise ValueError(f"flags must hold one entry per layer ({self.net.n_layers}), "
                             f"got {arr.shape[0]}")
        layout = np.asarray(self._layout)
        if np.any(arr[layout[:, COL_KIND] != KIND_BATCH_NORM]):
            raise ValueError(f"only BatchNormalization layers run in inference mode, got "
                             f"flags {arr.tolist()}")
        self._inference = arr if np.any(arr) else None
        self.net.inference = <const unsigned char*>cnp.PyArray_DATA(<cnp.ndarray>arr) \
            if self._inference is not None else NULL

    @property
    def variables(self):
        """A copy of the rows the update covers (see set_variables)."""
        return np.array(self._var_rows)

    def set_metrics(self, codes, thresholds):
        """Accuracies that train_batches computes on each batch (see the
        METRIC_* codes above); empty lists for none."""
        if len(codes) != len(thresholds) or len(codes) > MAX_METRICS:
            raise ValueError(f"at most {MAX_METRICS} metrics, one threshold each")
        cdef Py_ssize_t j
        for j in range(len(codes)):
            if codes[j] not in (METRIC_BINARY_ACCURACY, METRIC_CATEGORICAL_ACCURACY,
                                METRIC_SPARSE_ACCURACY):
                raise ValueError(f"unknown metric code {codes[j]!r}")
            # each reads the targets as its kind has them: labels, or rows
            # as wide as the output
            if (self.n_y != 1 if codes[j] == METRIC_SPARSE_ACCURACY
                    else self.n_y != self.n_out):
                raise ValueError(f"metric code {codes[j]} does not fit targets of "
                                 f"width {self.n_y} for {self.n_out} outputs")
            self.metrics.codes[j] = codes[j]
            self.metrics.thresholds[j] = thresholds[j]
        self.metrics.n = len(codes)

    def set_hyper(self, hyper):
        """Copy the optimizer's settings: a sequence of at most 16 floats
        (the slots it leaves out are zero; the step number's slot,
        HYPER_STEP, is overwritten by ``iterations`` at each call).  Refused
        when the state buffer is too small for what they ask (momentum
        turned on after compile, say): the kernels would run past its end."""
        self._set_hyper(hyper)

    cdef int _set_hyper(self, object hyper) except -1:
        cdef Py_ssize_t i
        cdef double values[16]
        if hyper is self.hyper_given and type(hyper) is tuple:
            return 0            # copied last time, and a tuple cannot have changed
        fill_hyper(hyper, values)
        if self.state_len < state_size(self.opt_code, values, self.n_params):
            raise ValueError(f"the optimizer's state holds {self.state_len} values, fewer "
                             f"than its settings need for {self.n_params} parameters")
        for i in range(16):
            self.hyper[i] = values[i]
        self.hyper_given = hyper
        return 0

    cdef void* _batch_buffers(self, Py_ssize_t n) except NULL:
        # _bx, _by, _bw hold batches of up to batch_capacity rows: gathered
        # rows of x, y and the row weights, or CSR rows densified
        if n > self.batch_capacity:
            self._bx = np.empty(n * self.n_in, dtype=self.dtype)
            self._by = np.empty(n * self.n_y, dtype=self.dtype)
            self._bw = np.empty(n, dtype=self.dtype)
            self.batch_capacity = n
        return cnp.PyArray_DATA(<cnp.ndarray>self._bx)

    cdef Py_ssize_t _rows_of(self, object x, const void** px, const CSRView** sx) except -1:
        # x's rows as the kernels read them: a checked array (px), or
        # CSRRows (sx, px NULL) of this network's width and dtype
        cdef CSRRows rows
        if isinstance(x, CSRRows):
            rows = <CSRRows>x
            if rows.n_cols != self.n_in or rows.n_rows < 1:
                raise ValueError(f"x must have shape (n_samples >= 1, {self.n_in}), "
                                 f"got {rows.shape}")
            if rows.dtype != self.dtype:
                raise TypeError(f"x's values must be {self.dtype}, got {rows.dtype}")
            px[0] = NULL
            sx[0] = &rows.view
            return rows.n_rows
        self._check(x, self.n_in, "x")
        px[0] = cnp.PyArray_DATA(<cnp.ndarray>x)
        sx[0] = NULL
        return x.shape[0]

    cdef Call _call(self, int op):
        # a Call of this network's buffers and settings; the entry fills the rest
        cdef Call c
        memset(&c, 0, sizeof(Call))
        c.op = op
        c.net = self.net
        c.params = self.p_params
        c.grads = self.p_grads
        c.state = self.p_state
        c.n_in = self.n_in
        c.n_y = self.n_y
        c.n_out = self.n_out
        c.n_params = self.n_params
        c.loss_code = self.loss_code
        c.fused = self.fused
        c.opt = settings_of(self.opt_code, self.hyper, <double>self.iterations)
        c.vars = &self.vars
        c.iterations = &self.iterations
        return c

    cdef void _run(self, Call* c, Py_ssize_t batch_rows) noexcept nogil:
        # The call under pynn's floating-point environment (fpenv.h) and,
        # for batches of batch_rows rows (0: no products), its BLAS thread
        # count; the one dtype dispatch of the module.
        cdef fpenv_t env = fpenv_enter()
        # the BLAS's count read before _threads_enter sets this call's
        c.net.n_threads = c.opt.n_threads = self._pass_threads(batch_rows)
        c.net.split = batch_rows > 0 and self._splits(c, batch_rows)
        cdef int threads = self._threads_enter(batch_rows, c.net.split) if batch_rows > 0 else -1
        if c.net.split:
            c.net.set_threads = <void*>self.set_local_threads
            c.net.dx_part = <char*>c.work + batch_rows * (
                self.net.work_width + self.net.row_width) * (8 if self.is_double else 4)
            if c.net.n_threads >= 2:
                self._share_rows(c, batch_rows)
            if c.op == OP_EPOCH:
                c.net.half_bounds = <double*>cnp.PyArray_DATA(
                    <cnp.ndarray>self._half_bounds)
        if self.is_double:
            _run_typed(c, <double*>c.params)
        else:
            _run_typed(c, <float*>c.params)
        self._threads_exit(threads)
        fpenv_exit(env)

    cdef void* _work_for(self, Py_ssize_t n) except NULL:
        # and the second half's share of dX when products are split (_halves)
        cdef Py_ssize_t need = n * (self.net.work_width + self.net.row_width + self.max_in)
        if need > self.work_capacity:
            self._work = np.empty(need, dtype=self.dtype)
            self.work_capacity = need
        return cnp.PyArray_DATA(<cnp.ndarray>self._work)

    cdef void* _weights_of(self, object w, Py_ssize_t n) except? NULL:
        # The row weights' pointer (NULL for None) once checked: (n,) of the
        # network's dtype, C-contiguous; the Python layer checked the values.
        if w is None:
            return NULL
        if not isinstance(w, np.ndarray) or (<cnp.ndarray>w).ndim != 1 \
                or (<cnp.ndarray>w).shape[0] != n:
            raise ValueError(f"sample_weight must be an array of shape ({n},), got "
                             f"{getattr(w, 'shape', type(w).__name__)}")
        if w.dtype != self.dtype or not cnp.PyArray_ISNOTSWAPPED(<cnp.ndarray>w) \
                or not cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>w) \
                or not cnp.PyArray_ISALIGNED(<cnp.ndarray>w):
            raise TypeError(f"sample_weight must be C-contiguous aligned {self.dtype}, "
                            f"got {w.dtype}")
        return cnp.PyArray_DATA(<cnp.ndarray>w)

    cdef int _check(self, cnp.ndarray a, Py_ssize_t width, str name) except -1:
        # The Python layer converts and explains; this makes sure that
        # nothing it missed can be misread.
        if a is None or cnp.PyArray_NDIM(a) != 2 or a.shape[1] != width or a.shape[0] < 1:
            raise ValueError(f"{name} must be an array of shape (n_samples >= 1, {width}), "
                             f"got {'None' if a is None else (<object>a).shape}")
        # the type number, not a comparison of dtype objects: a C test per step
        if cnp.PyArray_TYPE(a) != (cnp.NPY_FLOAT64 if self.is_double else cnp.NPY_FLOAT32) \
                or not cnp.PyArray_ISNOTSWAPPED(a):
            raise TypeError(f"{name} must be {self.dtype} in native byte order, got {a.dtype}")
        if not cnp.PyArray_ISALIGNED(a):
            raise ValueError(f"{name} must be aligned")
        if not cnp.PyArray_IS_C_CONTIGUOUS(a):
            raise ValueError(f"{name} must be C-contiguous")
        return 0

    def accepts(self, x, y):
        """True when x and y can go to step as they are: NumPy arrays (not
        subclasses) of the network's dtype, 2-D, C-contiguous, of the right
        widths and one non-zero number of rows.  A few C tests, so that the
        hot path of train_on_batch costs no Python-level checks."""
        return self._accepts(x, y)

    cdef bint _accepts(self, object x, object y):
        cdef int typenum = cnp.NPY_FLOAT64 if self.is_double else cnp.NPY_FLOAT32
        if not (cnp.PyArray_CheckExact(x) and cnp.PyArray_CheckExact(y)):
            return False
        cdef cnp.ndarray a = <cnp.ndarray>x
        cdef cnp.ndarray b = <cnp.ndarray>y
        return (cnp.PyArray_TYPE(a) == typenum and cnp.PyArray_TYPE(b) == typenum
                and cnp.PyArray_ISNOTSWAPPED(a) and cnp.PyArray_ISNOTSWAPPED(b)
                and cnp.PyArray_ISALIGNED(a) and cnp.PyArray_ISALIGNED(b)
                and cnp.PyArray_NDIM(a) == 2 and cnp.PyArray_NDIM(b) == 2
                and cnp.PyArray_IS_C_CONTIGUOUS(a) and cnp.PyArray_IS_C_CONTIGUOUS(b)
                and a.shape[1] == self.n_in and b.shape[1] == self.n_y
                and a.shape[0] == b.shape[0] and a.shape[0] > 0)

    def all_finite(self, cnp.ndarray x not None):
        """True when no value of x is NaN or infinite: x an aligned,
        C-contiguous array of the network's dtype in native byte order, of
        any shape (the check of the x that fit, evaluate and predict are
        given).  On two threads from FINITE_PARALLEL_MIN_BYTES when the
        thread policy allows (set_thread_policy)."""
        cdef int typenum = cnp.NPY_FLOAT64 if self.is_double else cnp.NPY_FLOAT32
        if not (cnp.PyArray_TYPE(x) == typenum and cnp.PyArray_ISNOTSWAPPED(x)
                and cnp.PyArray_ISALIGNED(x) and cnp.PyArray_IS_C_CONTIGUOUS(x)):
            raise TypeError(f"x must be an aligned C-contiguous array of "
                            f"{'float64' if self.is_double else 'float32'}, got {x.dtype} "
                            f"(contiguous: {bool(x.flags.c_contiguous)})")
        cdef Py_ssize_t n = cnp.PyArray_SIZE(x), half, itemsize = 8 if self.is_double else 4
        cdef _FiniteShare first, second
        first.x = cnp.PyArray_DATA(x)
        first.n = n
        first.is_double = self.is_double
        first.bad = second.bad = False
        with nogil:
            if n * itemsize >= _FINITE_PARALLEL_MIN_BYTES and self._element_thread_count() >= 2:
                # cut on a cache line of either dtype
                half = (n // 2) & ~(<Py_ssize_t>15)
                second = first
                second.x = (<const char*>first.x) + half * itemsize
                second.n = n - half
                first.n = half
                run_pair(_finite_share, &first, &second)
            else:
                _finite_share(&first)
        return not (first.bad or second.bad)

    def step(self, x, cnp.ndarray y, bint update=True, sample_weight=None):
        """Forward, loss, backward and (if update) the optimizer step on a batch.

        sample_weight (n,) or None multiplies each row's loss and gradient.
        x may be CSRRows: densified whole (it is one batch) into a buffer.

        Returns (loss, status): status 0 when done, 1 when the loss or a
        gradient was not finite (the update was not applied), 2 or 3 when x
        or y holds NaN or inf (checked first: nothing ran).
        """
        cdef double value
        cdef int status = self._step(x, y, update, sample_weight, &value)
        return value, status

    cdef int _step(self, object x, cnp.ndarray y, bint update, object sample_weight,
                   double* value) except -1:
        # step's work: the status, the loss in value[0]
        cdef Call c = self._call(OP_STEP)
        c.n = self._rows_of(x, &c.x, &c.sx)
        self._check(y, self.n_y, "y")
        if y.shape[0] != c.n:
            raise ValueError(f"x and y have different numbers of samples: {c.n} and "
                             f"{y.shape[0]}")
        self._check_generators()
        c.w = self._weights_of(sample_weight, c.n)
        c.work = self._work_for(c.n)
        if c.sx != NULL:
            c.bx = self._batch_buffers(c.n)
        c.y = cnp.PyArray_DATA(y)
        c.update = update
        if c.n * self.flops_per_sample < _GIL_KEPT_BELOW_FLOPS:
            self._run(&c, c.n)      # a step of a few microseconds: see GIL_KEPT_BELOW_FLOPS
        else:
            with nogil:
                self._run(&c, c.n)
        self.pending = not update and c.status == STATUS_OK
        value[0] = c.value
        return c.status

    def train_batches(self, x, cnp.ndarray y, order, Py_ssize_t batch_size,
                      Py_ssize_t first, Py_ssize_t stop, double[::1] losses not None,
                      double[:, ::1] metric_values=None, sample_weight=None):
        """Train on batches first..stop-1 of an epoch without coming back to Python.

        Batch k holds rows order[k*batch_size : (k+1)*batch_size] of x and y
        (gathered into a buffer allocated once), or that slice of x and y
        itself when order is None; the last batch may be smaller.  x and y
        must already be known finite.  losses[k] receives batch k's loss.
        With metrics set (set_metrics) and metric_values given
        (n_metrics, >= stop), it receives metric j on batch k's output before its update at [j, k].
        sample_weight (n,) or None: row weights, gathered with x and y.
        x may be CSRRows: each batch is densified into the batch buffer.
        Returns the first batch not applied because its loss or gradient was
        not finite, or stop.
        """
        self.pending = False
        cdef Call c = self._call(OP_EPOCH)
        c.n = self._rows_of(x, &c.x, &c.sx)
        self._check(y, self.n_y, "y")
        cdef const Py_ssize_t[::1] idx
        if y.shape[0] != c.n:
            raise ValueError(f"x and y have different numbers of samples: {c.n} and "
                             f"{y.shape[0]}")
        if batch_size < 1 or first < 0 or stop < first or (stop - 1) * batch_size >= c.n \
                or losses.shape[0] < stop:
            raise ValueError("batch range out of bounds")
        self._check_generators()
        c.w = self._weights_of(sample_weight, c.n)
        if order is not None:
            idx = order
            if idx.shape[0] != c.n:
                raise ValueError(f"order must have {c.n} entries, got {idx.shape[0]}")
            c.order = &idx[0]
        cdef Py_ssize_t rows = min(batch_size, c.n)
        if order is not None or c.sx != NULL:
            c.bx = self._batch_buffers(rows)
        if order is not None:
            c.by = cnp.PyArray_DATA(<cnp.ndarray>self._by)
            c.bw = cnp.PyArray_DATA(<cnp.ndarray>self._bw)
        c.work = self._work_for(rows)
        c.y = cnp.PyArray_DATA(y)
        c.batch_size = batch_size
        c.first = first
        c.stop = stop
        c.losses = &losses[0]
        cdef Metrics metrics = self.metrics
        if metric_values is None:
            metrics.n = 0           # not asked for this time
        if metrics.n:
            if metric_values.shape[0] != metrics.n or metric_values.shape[1] < stop:
                raise ValueError(f"metric_values must have shape ({metrics.n}, >= {stop})")
            metrics.values = &metric_values[0, 0]
            metrics.stride = metric_values.shape[1]
        c.metrics = &metrics
        with nogil:
            self._run(&c, rows)
        return c.done

    def last_output(self, Py_ssize_t n):
        """A view of the last layer's output for the batch of n samples that
        the last call (step, train_batches, loss, predict) ran last: logits
        when the loss reads logits."""
        if n < 1 or n * self.net.work_width > self.work_capacity:
            raise ValueError(f"no output of {n} samples is held")
        off = n * (self.net.total_width - self.n_out)
        return self._work[off:off + n * self.n_out].reshape(n, self.n_out)

    def profile_step(self, cnp.ndarray x, cnp.ndarray y, const Py_ssize_t[::1] rows not None):
        """One training step on rows of (x, y), the step that train_on_batch
        runs (checked, refused if not finite), timed phase by phase.

        Returns the seconds spent in [data (the rows gathered and checked
        finite), forward, loss, backward, update (the gradient pass, the
        exact check and the update)], for the benchmark's --profile.
        """
        self.pending = False
        self._check(x, self.n_in, "x")
        self._check(y, self.n_y, "y")
        cdef Py_ssize_t i, n = rows.shape[0]
        if n < 1 or y.shape[0] != x.shape[0]:
            raise ValueError("rows must be non-empty and x, y of one length")
        self._check_generators()
        for i in range(n):
            if not 0 <= rows[i] < x.shape[0]:
                raise ValueError(f"rows[{i}] = {rows[i]} is out of range")
        cdef Call c = self._call(OP_STEP)
        cdef double clock[6]
        c.n = n
        c.x = cnp.PyArray_DATA(x)
        c.y = cnp.PyArray_DATA(y)
        c.order = &rows[0]
        c.bx = self._batch_buffers(n)
        c.by = cnp.PyArray_DATA(<cnp.ndarray>self._by)
        c.work = self._work_for(n)
        c.update = True
        c.clock = clock
        with nogil:
            self._run(&c, n)
        if c.status != STATUS_OK:
            raise ValueError(f"the profiled step was refused (status {c.status}): the "
                             f"rows or the step's values are not finite")
        return [clock[i + 1] - clock[i] for i in range(5)]

    def predict(self, x, cnp.ndarray out, Py_ssize_t chunk, bint logits=False):
        """Network outputs for x, written to out (n, n_out), chunk rows at a
        time (CSRRows x: each chunk densified into a buffer of chunk rows)."""
        cdef Call c = self._call(OP_PREDICT)
        c.n = self._rows_of(x, &c.x, &c.sx)
        self._check(out, self.n_out, "out")
        if out.shape[0] != c.n:
            raise ValueError("out must have one row per sample of x")
        c.chunk = max(1, min(chunk, c.n))
        c.work = self._work_for(c.chunk)
        if c.sx != NULL:
            c.bx = self._batch_buffers(c.chunk)
        c.out = cnp.PyArray_DATA(out)
        c.logits = logits
        with nogil:
            self._run(&c, c.chunk)

    def loss(self, x, cnp.ndarray y, Py_ssize_t chunk, sample_weight=None,
             bint training=False):
        """Mean loss over (x, y), computed chunk rows at a time; nothing updated.
        With sample_weight (n,): sum_i w_i l_i / n.  CSRRows x: as predict.
        training: as a step computes it (batch statistics per chunk, dropout
        masks drawn and the generators then set back: every such call draws
        the same masks, those of the next step), for gradient checks."""
        self.pending = False
        cdef Call c = self._call(OP_LOSS)
        c.n = self._rows_of(x, &c.x, &c.sx)
        self._check(y, self.n_y, "y")
        if y.shape[0] != c.n:
            raise ValueError(f"x and y have different numbers of samples: {c.n} and "
                             f"{y.shape[0]}")
        c.chunk = max(1, min(chunk, c.n))
        if training:
            self._check_generators()
        c.w = self._weights_of(sample_weight, c.n)
        c.work = self._work_for(c.chunk)
        if c.sx != NULL:
            c.bx = self._batch_buffers(c.chunk)
        c.y = cnp.PyArray_DATA(y)
        c.net.training = training
        with nogil:
            self._run(&c, c.chunk)
        return c.value + self.penalty()

    def penalty(self):
        """The regularizers' penalty on the current weights (0 without any)."""
        cdef Call c = self._call(OP_PENALTY)
        with nogil:
            self._run(&c, 0)
        return c.value

    def apply_gradients(self, bint update=True, bint regularize=False):
        """The clipping, the exact check and the update on the gradients
        the buffer holds now (a data-parallel fit all-reduced them there
        after step(update=False), which added the regularizers' terms).
        Returns True when applied (iterations advanced), False when some
        value would not be finite (nothing changed).  regularize: add the
        regularizers' terms to the gradient first (gradients computed
        elsewhere: the NumPy path); with update False, only that and the
        check (True when every gradient is finite).  Right after that
        step, the update also commits the step's layer statistics (the
        moving ones take them in, see commit_layer_state) and a refusal
        puts the generators back as the step found them."""
        cdef Call c = self._call(OP_APPLY)
        c.pending = self.pending
        c.update = update
        c.regularize = regularize
        self.pending = False
        with nogil:
            self._run(&c, 0)
        return c.status == STATUS_OK


# --------------------------------------------------------------------------
# train_on_batch's hot path: the model's checks compared in C
# --------------------------------------------------------------------------
#
# Through the model's Python layers a tiny network's step cost 1.3 us more
# than the compiled step itself: the model's lock taken by a `with`, the
# checks that nothing changed since the optimizer's settings and variables
# were handed over, the settings fetched, the step count handed over and
# back.  A HotStep keeps what those checks compared against the last time
# they passed and compares the same things here.

cdef class HotStep:
    """train_on_batch's hot path for one model, made by the model after a
    step whose checks passed (``pynn.core.Model.step_as_given``).

    ``hot(x, y)`` runs a training step on x and y as they are and returns
    its loss, or returns None having changed nothing when the checked path
    might decide otherwise: another thread holds the model's lock, the
    model is gone or no longer holds this HotStep (setting any attribute of
    the model drops it), the optimizer's state array or settings revision
    or the layers' settings revision differ from those the network was
    last handed, metrics were added, or the network does not take x and y
    as they are; and when the step is refused (x or y or the result not
    finite), so that the checked path runs it again and reports it.

    owner: the model (held by a weak reference: a model is freed when its
    last reference goes, HotStep or not); opt: its optimizer; lock: the
    model's lock (an RLock: taken without waiting, released after);
    counter: the one-element list holding the layers' settings revision
    (``pynn.layers.settings_counter``); seen, state, revision: the layers'
    revision, the optimizer's state array and its revision that the
    network was last handed (not the values now: another thread may have
    changed them since, and the next hot call must then see the
    difference); scheduled: the optimizer's rate follows a schedule, so
    that its settings are asked for at every step (otherwise the tuple the
    network was last handed is handed again).
    """
    cdef Network net
    cdef object owner_ref, opt, state, revision, counter, seen, settings
    cdef object acquire, release

    def __init__(self, Network net not None, owner, opt, lock, list counter not None,
                 seen, state, revision, bint scheduled):
        if len(counter) != 1:
            raise ValueError(f"counter must hold one count, got {counter!r}")
        self.net = net
        self.owner_ref = weakref.ref(owner)
        self.opt = opt
        self.state = state
        self.revision = revision
        self.counter = counter
        self.seen = seen
        # the tuple set_hyper copied last (anything else: asked for each step)
        self.settings = (net.hyper_given if not scheduled and type(net.hyper_given) is tuple
                         else None)
        self.acquire = lock.acquire
        self.release = lock.release

    def __call__(self, x, y):
        cdef double value = 0
        cdef int status = -1
        cdef Network net = self.net
        cdef object opt = self.opt
        cdef object owner
        if not self.acquire(False):
            return None
        try:
            owner = <object>PyWeakref_GetObject(self.owner_ref)
            if (owner is None or owner._hot is not self or opt.state is not self.state
                    or opt.revision != self.revision or self.counter[0] != self.seen
                    or owner.metrics or not net._accepts(x, y)):
                return None
            net._set_hyper(self.settings if self.settings is not None
                           else opt.kernel_settings())
            net.iterations = opt.iterations
            try:
                status = net._step(x, <cnp.ndarray>y, True, None, &value)
            finally:
                opt.iterations = net.iterations
        finally:
            self.release()
        return value if status == STATUS_OK else None
