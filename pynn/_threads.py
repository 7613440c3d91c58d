"""BLAS threads: the thread control of the BLAS that pynn's kernels call.

pynn multiplies through SciPy's BLAS.  When that is OpenBLAS 0.3.27 or newer
it exports ``openblas_set_num_threads_local``, which sets the thread count of
the calling thread only: the kernels use it to run small steps on one thread
(waking a second costs more than it saves there) and to honour a model's
``n_threads``, leaving the process-wide count, and so threadpoolctl's
limits, alone.  With any other BLAS these settings are ignored and the BLAS
decides alone.
"""
import ctypes
import functools

# A step with fewer floating-point operations than this runs its products on
# one thread.  Measured on a 2-core x86-64 machine (OpenBLAS) with
# ``python -m pynn bench --threads-sweep``: below it one thread is faster.
MIN_PARALLEL_FLOPS = 5e6

_SETTERS = ("openblas_set_num_threads_local", "scipy_openblas_set_num_threads_local")


@functools.lru_cache(maxsize=None)
def local_thread_setter():
    """Address of SciPy's BLAS's ``openblas_set_num_threads_local``, or 0."""
    try:
        from scipy.linalg import cython_blas
        # dlsym on the module's handle searches the module, then the libraries
        # it was linked against: it finds the BLAS that cython_blas calls.
        lib = ctypes.CDLL(cython_blas.__file__)
    except (ImportError, OSError):
        return 0
    for name in _SETTERS:
        fn = getattr(lib, name, None)
        if fn is not None:
            return ctypes.cast(fn, ctypes.c_void_p).value or 0
    return 0
