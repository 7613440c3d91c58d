# Python entry points to the loss kernels of loss_kernels.pxd.
from cython cimport floating

from pynn.kernels.fpenv cimport fpenv_enter, fpenv_exit, fpenv_t
from pynn.kernels.loss_kernels cimport loss_and_grad


def loss_value_grad(int code,
                    const floating[:, ::1] P,   # IN  (n, m) outputs or logits
                    const floating[:, ::1] Y,   # IN  (n, m) targets
                    floating[:, ::1] G,         # OUT (n, m) dL/dP
                    const floating[::1] row_weight=None,  # IN (n,) or None
                    double param=0.0):                    # IN the loss's setting
    """Mean loss of the batch; writes its gradient with respect to P into G.

    row_weight multiplies row i's loss and gradient (None: all 1); the mean's
    denominator stays the batch's.  param: Huber's delta (ignored by the
    losses without a setting)."""
    cdef Py_ssize_t n = P.shape[0], m = P.shape[1]
    cdef const floating* w = NULL
    if row_weight is not None:
        if row_weight.shape[0] != n:
            raise ValueError(f"row_weight must have {n} entries, got {row_weight.shape[0]}")
        w = &row_weight[0]
    cdef double loss
    cdef fpenv_t env
    with nogil:
        env = fpenv_enter()
        loss = loss_and_grad(code, &P[0, 0], &Y[0, 0], w, n, m, &G[0, 0], param)
        fpenv_exit(env)
    return loss
