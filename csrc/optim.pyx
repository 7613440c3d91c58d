# Python entry point to the optimizer kernels of optim_kernels.pxd.
from cython cimport floating
from libc.stdint cimport int64_t


from pynn.kernels.fpenv cimport fpenv_enter, fpenv_exit, fpenv_t
from pynn.kernels.optim_kernels cimport PARALLEL_MIN_ELEMENTS as _PARALLEL_MIN_ELEMENTS
from pynn.kernels.optim_kernels cimport (
    HYPER_STEP, VAR_COLS, GradPass, OptSettings, all_finite, fill_hyper, grad_pass,
    optimizer_step, settings_of, sum_abs_if_finite, update_is_finite)
from pynn.kernels.optim_kernels cimport nadam_u_product as _nadam_u_product

# the elements per pass from which n_threads=2 runs on two threads
PARALLEL_MIN_ELEMENTS = _PARALLEL_MIN_ELEMENTS


def step(int code,
         floating[::1] params,          # IN/OUT
         floating[::1] grads,           # IN/OUT: clipped in place
         floating[::1] state,           # IN/OUT optimizer state (may be empty)
         hyper,                         # IN settings (floats), see optim_kernels.pxd
         Py_ssize_t decay_end,
         int64_t[::1] iterations=None,   # IN/OUT [the count of updates applied]
         int n_threads=1, Py_ssize_t parallel_min=-1):
    """One update of params from grads, in place, with the settings'
    clipping (the kernels [0, decay_end) one variable, the rest another).

    With iterations given, iterations[0] is the step number the settings'
    HYPER_STEP slot takes, and is advanced here, in the compiled code, when
    the update is applied: an interrupt can then never separate the two.

    n_threads: 2 runs the check and the update of a pass of at least
    parallel_min elements (-1: the kernels' threshold) on two threads.
    """
    cdef int status = 0
    cdef double settings[16]
    fill_hyper(hyper, settings)
    if params.shape[0] != grads.shape[0] or not 0 <= decay_end <= params.shape[0]:
        raise ValueError("params and grads must have one size, decay_end within it")
    if iterations is not None:
        if iterations.shape[0] != 1:
            raise ValueError(f"iterations must hold one count, got {iterations.shape[0]}")
        settings[HYPER_STEP] = <double>iterations[0]
    cdef int64_t* p_count = &iterations[0] if iterations is not None else NULL
    cdef OptSettings opt = settings_of(code, settings, settings[HYPER_STEP])
    opt.n_threads = n_threads
    if parallel_min >= 0:
        opt.parallel_min = parallel_min
    cdef floating* p_state = &state[0] if state.shape[0] else NULL
    cdef Py_ssize_t rows[2 * VAR_COLS]
    rows[0] = 0
    rows[1] = rows[3] = decay_end
    rows[2] = 1
    rows[4] = params.shape[0]
    rows[5] = 0
    cdef bint finite
    cdef GradPass gp
    cdef fpenv_t env
    with nogil:
        env = fpenv_enter()
        gp = grad_pass(&params[0], &grads[0], rows, 2, NULL, True, &opt, False, NULL)
        finite = gp.finite and update_is_finite(&params[0], &grads[0], p_state,
                                                params.shape[0], rows, 2, &opt)
        if finite:
            status = optimizer_step(&params[0], &grads[0], p_state,
                                    params.shape[0], rows, 2, &opt)
            if status == 0 and p_count != NULL:
                p_count[0] += 1
        fpenv_exit(env)
    if not finite:
        raise FloatingPointError("the update would make parameters or optimizer state "
                                 "NaN or infinite; nothing was changed")
    if status != 0:
        raise ValueError(f"unknown optimizer code {code}")


def is_finite(const floating[::1] x):
    """True when no element of x is NaN or infinite."""
    cdef bint result
    with nogil:
        result = all_finite(&x[0], x.shape[0]) if x.shape[0] else True
    return result


def sum_abs_bound(const floating[::1] x):
    """The compiled epoch's bound of sum |x| (optim_kernels.pxd's
    sum_abs_if_finite): at least the exact sum, inf when some x is not finite."""
    cdef double result
    with nogil:
        result = sum_abs_if_finite(&x[0], x.shape[0]) if x.shape[0] else 0.0
    return result


def nadam_u_product(double beta_1, double t):
    """Nadam's u_1 ... u_t as its kernel computes it (optim_kernels.pxd)."""
    return _nadam_u_product(beta_1, t)
