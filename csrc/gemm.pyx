# The GEMM the kernels call (csrc/_blas.pxd), seen from Python: for the
# tests that hold each library to pynn/reference.py and to the other on
# every shape the small-product rule sends to OpenBLAS, and for
# benchmarks/small_gemm.py, which times a call from compiled code.
from cython cimport floating

from pynn.kernels._blas cimport PYNN_SMALL_GEMM_MAX, gemm, gemm_on, small_product

LIBRARIES = ("auto", "openblas", "backend")
SMALL_GEMM_MAX = PYNN_SMALL_GEMM_MAX


def goes_to_openblas(int m, int n, int k):
    """True when gemm() hands an (m x k) @ (k x n) product to SciPy's
    OpenBLAS whatever the backend (at most ``SMALL_GEMM_MAX`` multiply-adds)."""
    return small_product(m, n, k)


def matmul(bint trans_a, bint trans_b, double alpha,
           const floating[:, ::1] A,    # IN  (m, k), or (k, m) with trans_a
           const floating[:, ::1] B,    # IN  (k, n), or (n, k) with trans_b
           double beta,
           floating[:, ::1] C,          # IN/OUT (m, n)
           library="auto", Py_ssize_t repeat=1):
    """C = alpha * op(A) @ op(B) + beta * C in place, ``repeat`` times.

    ``library``: "auto" (gemm() as the network calls it), "openblas"
    (SciPy's, whatever the size) or "backend" (the backend's GEMM, whatever
    the size: MKL's when it is the backend).
    """
    if library not in LIBRARIES:
        raise ValueError(f"library must be one of {LIBRARIES}, got {library!r}")
    if repeat < 0:
        raise ValueError(f"repeat must be >= 0, got {repeat}")
    cdef int m = C.shape[0], n = C.shape[1]
    cdef int k = A.shape[0] if trans_a else A.shape[1]
    if (A.shape[1] if trans_a else A.shape[0]) != m \
            or (B.shape[1] if trans_b else B.shape[0]) != k \
            or (B.shape[0] if trans_b else B.shape[1]) != n:
        raise ValueError(f"shapes do not multiply: A ({A.shape[0]}, {A.shape[1]}), "
                         f"B ({B.shape[0]}, {B.shape[1]}), C ({m}, {n}) with "
                         f"trans_a={trans_a}, trans_b={trans_b}")
    if m == 0 or n == 0:
        return
    # BLAS reads a leading dimension of at least 1 even for an empty operand
    cdef const floating* pa = &A[0, 0] if A.shape[0] and A.shape[1] else NULL
    cdef const floating* pb = &B[0, 0] if B.shape[0] and B.shape[1] else NULL
    cdef int lda = max(A.shape[1], 1), ldb = max(B.shape[1], 1), ldc = n
    cdef int which = LIBRARIES.index(library)
    cdef floating a = <floating>alpha, b = <floating>beta
    cdef Py_ssize_t r
    with nogil:
        for r in range(repeat):
            if which == 0:
                gemm(trans_a, trans_b, m, n, k, a, pa, lda, pb, ldb, b, &C[0, 0], ldc)
            else:
                gemm_on(which == 1, trans_a, trans_b, m, n, k, a, pa, lda, pb, ldb, b,
                        &C[0, 0], ldc)
