# exp, tanh and sigmoid over arrays, in place, vectorised for the CPU that
# runs them (vmath.h: the approximations, their error bounds, the dispatch).
from cython cimport floating

cdef extern from "vmath.h" nogil:
    double MAX_ULP_EXP "PYNN_VMATH_MAX_ULP_EXP"
    double MAX_ULP_TANH "PYNN_VMATH_MAX_ULP_TANH"
    double MAX_ULP_SIGMOID "PYNN_VMATH_MAX_ULP_SIGMOID"
    int VMATH_N_ISA "PYNN_VMATH_N_ISA"
    const char* const* vmath_isa_names "pynn_vmath_isa_names"
    int vmath_request "pynn_vmath_request"
    void vexp_f "pynn_vexp_f"(float* z, Py_ssize_t n) noexcept
    void vtanh_f "pynn_vtanh_f"(float* z, Py_ssize_t n) noexcept
    void vsigmoid_f "pynn_vsigmoid_f"(float* z, Py_ssize_t n) noexcept
    void vexp_d "pynn_vexp_d"(double* z, Py_ssize_t n) noexcept
    void vtanh_d "pynn_vtanh_d"(double* z, Py_ssize_t n) noexcept
    void vsigmoid_d "pynn_vsigmoid_d"(double* z, Py_ssize_t n) noexcept
    const char* vmath_isa_name "pynn_vmath_isa_name"() noexcept
    bint vmath_supported "pynn_vmath_supported"(int isa) noexcept
    int vmath_apply_f "pynn_vmath_apply_f"(int func, int isa, float* z, Py_ssize_t n) noexcept
    int vmath_apply_d "pynn_vmath_apply_d"(int func, int isa, double* z, Py_ssize_t n) noexcept


cdef inline void vexp(floating* z, Py_ssize_t n) noexcept nogil:
    """In place: z <- exp(z)."""
    if floating is float:
        vexp_f(z, n)
    else:
        vexp_d(z, n)


cdef inline void vtanh(floating* z, Py_ssize_t n) noexcept nogil:
    """In place: z <- tanh(z)."""
    if floating is float:
        vtanh_f(z, n)
    else:
        vtanh_d(z, n)


cdef inline void vsigmoid(floating* z, Py_ssize_t n) noexcept nogil:
    """In place: z <- 1 / (1 + exp(-z))."""
    if floating is float:
        vsigmoid_f(z, n)
    else:
        vsigmoid_d(z, n)
