"""The vectorised exp, tanh and sigmoid of csrc/pynn/kernels/vmath.h, over NumPy arrays.

For the tests (each instruction-set path against libm and the others) and
for ``python -m pynn info`` (which path runs).  The kernels call them from
C; nothing in the training path goes through this module.
"""
import numpy as np

from pynn.kernels.vmath cimport (
    MAX_ULP_EXP, MAX_ULP_SIGMOID, MAX_ULP_TANH, VMATH_N_ISA, vmath_apply_d, vmath_apply_f,
    vmath_isa_name, vmath_isa_names, vmath_request, vmath_supported)

FUNCTIONS = ("exp", "tanh", "sigmoid")
ISAS = tuple(vmath_isa_names[i].decode() for i in range(VMATH_N_ISA))
MAX_ULP = {"exp": MAX_ULP_EXP, "tanh": MAX_ULP_TANH, "sigmoid": MAX_ULP_SIGMOID}


def isa():
    """The path this process runs: 'default' (baseline x86-64), 'avx2' or 'avx512f'."""
    return vmath_isa_name().decode()


def supported_isas():
    """The paths this CPU and OS can run, narrowest first."""
    return tuple(name for i, name in enumerate(ISAS) if vmath_supported(i))


def request_status():
    """What became of PYNN_VMATH: None (unset), 'honoured', 'unknown' or 'unsupported'."""
    return {0: None, 1: "honoured", -1: "unknown", -2: "unsupported"}[vmath_request]


def apply(name, x, isa=None, out=None):
    """name(x) in x's dtype (float32 or float64), on one path.

    isa=None takes the path in use; a path this CPU cannot run is a ValueError.
    out: a C-contiguous writable array of x's shape and dtype to write into
    (x itself for in place); None for a new array.
    """
    if name not in FUNCTIONS:
        raise ValueError(f"name must be one of {', '.join(FUNCTIONS)}; got {name!r}")
    if isa is None:
        isa = globals()["isa"]()
    if isa not in ISAS:
        raise ValueError(f"isa must be one of {', '.join(ISAS)}; got {isa!r}")
    x = np.asarray(x)
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"x must be float32 or float64; got {x.dtype}")
    if out is None:
        out = np.array(x, order="C", copy=True)
    else:
        if not isinstance(out, np.ndarray) or out.dtype != x.dtype or out.shape != x.shape \
                or not out.flags.c_contiguous or not out.flags.writeable:
            raise ValueError("out must be a writable C-contiguous array of x's shape and "
                             f"dtype {x.dtype}{tuple(x.shape)}; got {out!r:.80}")
        if out is not x:
            np.copyto(out, x)
    cdef float[::1] zf
    cdef double[::1] zd
    cdef int func = FUNCTIONS.index(name), code = ISAS.index(isa), status
    cdef Py_ssize_t n = out.size
    if n == 0:
        return out
    if out.dtype == np.float32:
        zf = out.reshape(-1)
        with nogil:
            status = vmath_apply_f(func, code, &zf[0], n)
    else:
        zd = out.reshape(-1)
        with nogil:
            status = vmath_apply_d(func, code, &zd[0], n)
    if status != 0:
        raise ValueError(f"isa {isa!r} does not run on this CPU; it runs "
                         f"{', '.join(supported_isas())}")
    return out
