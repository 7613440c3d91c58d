# Dense layers and whole-network steps over typed memoryviews.
#
# Conventions shared with pynn/layers.py and pynn/model.py:
# - row-major, C-contiguous arrays; a batch X is (n_samples, n_inputs);
# - W is (units, inputs), as in the mission's W·x, so a layer computes
#   Z = X @ W.T + b and A = act(Z);
# - a network is described by `layout`, an int64 array (n_layers, 5) whose
#   rows are [n_in, n_out, w_offset, b_offset, activation code], offsets into
#   the flat parameter buffer (and the gradient buffer, which has its layout);
# - `work` holds, for a batch of n, every layer's output A (n x n_out, one
#   after the other) followed by two delta buffers of n x max(width) each.
#
# The Python layer validates everything (shapes, dtypes, capacities) before
# calling in; the kernels run without the GIL and do not check again.
from cython cimport floating
from libc.string cimport memset, memcpy

from _blas cimport gemm
from activations cimport (ACT_LINEAR, activation_backward, bias_activate)
from loss_kernels cimport loss_and_grad
from libc.math cimport isfinite

from optim_kernels cimport all_finite, optimizer_step

cdef enum:
    N_COLS = 5


# --------------------------------------------------------------------------
# One layer (the Python-level path, and the unit the tests check)
# --------------------------------------------------------------------------

cdef inline void _affine(const floating* X, const floating* W, const floating* b,
                         Py_ssize_t n, Py_ssize_t n_in, Py_ssize_t n_out,
                         int act, floating* A) noexcept nogil:
    # A = act(X @ W.T + b): GEMM, then bias and activation in one pass.
    gemm(False, True, <int>n, <int>n_out, <int>n_in,
         <floating>1, X, <int>n_in, W, <int>n_in, <floating>0, A, <int>n_out)
    bias_activate(A, b, n, n_out, act)


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
    with nogil:
        _affine(&X[0, 0] if n else NULL, &W[0, 0], &b[0], n, n_in, n_out,
                activation, &A[0, 0] if n else NULL)


def dense_backward(const floating[:, ::1] X,  # IN  (n, n_in) the layer's input
                   const floating[:, ::1] W,  # IN  (n_out, n_in)
                   const floating[:, ::1] A,  # IN  (n, n_out) the layer's output
                   floating[:, ::1] dA,       # IN/OUT (n, n_out): dL/dA in, dL/dZ out
                   int activation,
                   floating[:, ::1] dW,       # OUT (n_out, n_in)
                   floating[::1] db,          # OUT (n_out,)
                   floating[:, ::1] dX=None): # OUT (n, n_in), or None for a first layer
    """Backward through one dense layer; dA is overwritten with dZ."""
    cdef Py_ssize_t n = X.shape[0], n_in = X.shape[1], n_out = W.shape[0]
    cdef floating* dx = NULL
    if dX is not None and n:
        dx = &dX[0, 0]
    if n == 0:
        dW[:, :] = 0
        db[:] = 0
        return
    with nogil:
        activation_backward(&dA[0, 0], &A[0, 0], n, n_out, activation)
        _affine_backward(&X[0, 0], &W[0, 0], &dA[0, 0], n, n_in, n_out,
                         &dW[0, 0], &db[0], dx)


# --------------------------------------------------------------------------
# Whole networks: forward, loss, backward and update in one call, no GIL
# --------------------------------------------------------------------------

cdef struct Net:
    const Py_ssize_t* layout
    Py_ssize_t n_layers
    Py_ssize_t max_width
    Py_ssize_t total_width


cdef inline Net _net(const Py_ssize_t[:, ::1] layout) noexcept:
    cdef Net net
    cdef Py_ssize_t l, w
    net.layout = &layout[0, 0]
    net.n_layers = layout.shape[0]
    net.max_width = 0
    net.total_width = 0
    for l in range(net.n_layers):
        w = layout[l, 1]
        net.total_width += w
        if w > net.max_width:
            net.max_width = w
        if layout[l, 0] > net.max_width:
            net.max_width = layout[l, 0]
    return net


def work_size(const Py_ssize_t[:, ::1] layout, Py_ssize_t n_samples):
    """Number of elements of the `work` buffer a batch of n_samples needs."""
    cdef Net net = _net(layout)
    return n_samples * (net.total_width + 2 * net.max_width)


def output_offset(const Py_ssize_t[:, ::1] layout, Py_ssize_t n_samples):
    """Where, in `work`, a pass over n_samples leaves the last layer's output.

    After train_step or forward_loss, work[off:off + n_samples * n_out] holds
    the network's output for that batch (logits when the loss was fused).
    """
    cdef Net net = _net(layout)
    return n_samples * (net.total_width - layout[net.n_layers - 1, 1])


cdef floating* _forward(Net net, const floating* params, const floating* X,
                        Py_ssize_t n, floating* work, bint logits_out) noexcept nogil:
    # Every layer's output lands in work, one after the other; returns the
    # last.  With logits_out the last layer's activation is left to the loss.
    cdef Py_ssize_t l, n_in, n_out
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
        _affine(inp, params + row[2], params + row[3], n, n_in, n_out, act, out)
        inp = out
        out = out + n * n_out
    return <floating*>inp


cdef double _loss_and_backward(Net net, const floating* params, floating* grads,
                               const floating* X, const floating* Y,
                               Py_ssize_t n, floating* work, int loss_code,
                               bint fused) noexcept nogil:
    cdef Py_ssize_t l, n_in, n_out
    cdef const Py_ssize_t* row
    cdef floating* output = _forward(net, params, X, n, work, fused)
    cdef floating* delta = work + n * net.total_width
    cdef floating* other = delta + n * net.max_width
    cdef floating* tmp
    cdef floating* A = output
    cdef const floating* inp
    cdef double loss
    row = net.layout + (net.n_layers - 1) * N_COLS
    loss = loss_and_grad(loss_code, output, Y, n, row[1], delta)
    for l in range(net.n_layers - 1, -1, -1):
        row = net.layout + l * N_COLS
        n_in = row[0]
        n_out = row[1]
        if not (fused and l == net.n_layers - 1):
            activation_backward(delta, A, n, n_out, <int>row[4])
        inp = X if l == 0 else A - n * n_in
        _affine_backward(inp, params + row[2], delta, n, n_in, n_out,
                         grads + row[2], grads + row[3],
                         other if l > 0 else NULL)
        A = A - n * n_in
        tmp = delta
        delta = other
        other = tmp
    return loss


def forward(floating[::1] params,                # IN
            const Py_ssize_t[:, ::1] layout,     # IN  (n_layers, 5)
            const floating[:, ::1] X,            # IN  (n, n_in)
            floating[::1] work,                  # SCRATCH work_size(layout, n)
            bint logits_out=False):
    """Run the network on X; returns a view into work of the output (n, n_out)."""
    cdef Net net = _net(layout)
    cdef Py_ssize_t n = X.shape[0]
    cdef floating* out
    cdef Py_ssize_t off
    if n == 0:
        return None
    with nogil:
        out = _forward(net, &params[0], &X[0, 0], n, &work[0], logits_out)
    off = out - &work[0]
    return work[off:off + n * layout[net.n_layers - 1, 1]]


def train_step(floating[::1] params,             # IN/OUT flat parameters
               floating[::1] grads,              # OUT   same layout as params
               floating[::1] state,              # IN/OUT optimizer state
               const Py_ssize_t[:, ::1] layout,  # IN  (n_layers, 5)
               const floating[:, ::1] X,         # IN  (n, n_in)
               const floating[:, ::1] Y,         # IN  (n, n_out) targets
               floating[::1] work,               # SCRATCH work_size(layout, n)
               int loss_code, bint fused,
               int opt_code, const double[::1] hyper,
               Py_ssize_t decay_end, bint update=True):
    """Forward, loss, backward and (if update) the optimizer step, in one call.

    Returns (loss, finite): the batch loss before the update, and whether the
    loss and every gradient were finite.  The update is applied only when
    they were, so a diverging step never writes NaN or inf into params.
    With update=False only the gradients are computed (into grads).
    """
    cdef Net net = _net(layout)
    cdef Py_ssize_t n = X.shape[0]
    cdef double loss
    cdef int status = 0
    cdef bint finite
    with nogil:
        loss = _loss_and_backward(net, &params[0], &grads[0], &X[0, 0], &Y[0, 0],
                                  n, &work[0], loss_code, fused)
        finite = isfinite(loss) and all_finite(&grads[0], grads.shape[0])
        if update and finite:
            status = optimizer_step(opt_code, &params[0], &grads[0],
                                    &state[0] if state.shape[0] else NULL,
                                    params.shape[0], decay_end, &hyper[0])
    if status != 0:
        raise ValueError(f"unknown optimizer code {opt_code}")
    return loss, finite


def forward_loss(floating[::1] params,               # IN
                 const Py_ssize_t[:, ::1] layout,    # IN  (n_layers, 5)
                 const floating[:, ::1] X,           # IN  (n, n_in)
                 const floating[:, ::1] Y,           # IN  (n, n_out)
                 floating[::1] work,                 # SCRATCH work_size(layout, n)
                 int loss_code, bint fused):
    """Mean loss of the network on (X, Y), no gradient kept, nothing updated."""
    cdef Net net = _net(layout)
    cdef Py_ssize_t n = X.shape[0]
    cdef floating* out
    cdef double loss
    with nogil:
        out = _forward(net, &params[0], &X[0, 0], n, &work[0], fused)
        loss = loss_and_grad(loss_code, out, &Y[0, 0], n,
                             layout[net.n_layers - 1, 1],
                             &work[0] + n * net.total_width)
    return loss
