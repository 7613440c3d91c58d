# Python entry point to the optimizer kernels of optim_kernels.pxd.
from cython cimport floating

from optim_kernels cimport all_finite, optimizer_step


def step(int code,
         floating[::1] params,          # IN/OUT
         const floating[::1] grads,     # IN
         floating[::1] state,           # IN/OUT optimizer state (may be empty)
         const double[::1] hyper,       # IN settings, see optim_kernels.pxd
         Py_ssize_t decay_end):
    """One update of params from grads, in place."""
    cdef int status
    with nogil:
        status = optimizer_step(code, &params[0], &grads[0],
                                &state[0] if state.shape[0] else NULL,
                                params.shape[0], decay_end, &hyper[0])
    if status != 0:
        raise ValueError(f"unknown optimizer code {code}")


def is_finite(const floating[::1] x):
    """True when no element of x is NaN or infinite."""
    cdef bint result
    with nogil:
        result = all_finite(&x[0], x.shape[0]) if x.shape[0] else True
    return result
