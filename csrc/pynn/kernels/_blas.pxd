# Row-major GEMM behind one function pointer per dtype (csrc/pynn/kernels/blas_backend.h).
#
# By default the pointer is NULL and the product goes to the Fortran BLAS
# that SciPy exports to Cython (OpenBLAS in SciPy's wheels).  BLAS is
# column-major.  A row-major (m x n) matrix is, read column-major, its own
# transpose, so the row-major product C = op(A) op(B) is computed as the
# column-major product C^T = op(B)^T op(A)^T: the same call with the two
# operands (and their sizes) swapped.  No copy, no transpose in memory.
#
# When pynn._threads chose another backend (MKL) at import, the pointer is
# that library's CBLAS gemm, called row-major as it is, for the products
# above PYNN_SMALL_GEMM_MAX multiply-adds (m * n * k).  The smaller ones
# still go to SciPy's OpenBLAS, whose small-matrix kernels (the SkylakeX
# and Haswell builds take them before any blocking or threading) cost less
# per call than MKL's: measured on a tiny network's products, 16 x 32 x 64
# and below, by benchmarks/small_gemm.py.  Each product's result is then
# that of one fixed library for its shape, call after call: a backend's
# results stay reproducible bit for bit.
from cython cimport floating
from scipy.linalg.cython_blas cimport dgemm, sgemm


cdef extern from "blas_backend.h" nogil:
    ctypedef void (*pynn_cblas_sgemm_fn)(int, int, int, int, int, int, float,
                                         const float*, int, const float*, int,
                                         float, float*, int) noexcept nogil
    ctypedef void (*pynn_cblas_dgemm_fn)(int, int, int, int, int, int, double,
                                         const double*, int, const double*, int,
                                         double, double*, int) noexcept nogil
    pynn_cblas_sgemm_fn pynn_cblas_sgemm
    pynn_cblas_dgemm_fn pynn_cblas_dgemm
    int PYNN_CBLAS_ROW_MAJOR, PYNN_CBLAS_NO_TRANS, PYNN_CBLAS_TRANS
    long PYNN_SMALL_GEMM_MAX


cdef inline bint small_product(int m, int n, int k) noexcept nogil:
    """True when gemm() leaves this product to SciPy's OpenBLAS whatever the backend."""
    return <long>m * n * k <= PYNN_SMALL_GEMM_MAX


cdef inline void gemm(bint trans_a, bint trans_b,
                      int m, int n, int k,
                      floating alpha,
                      const floating* A, int lda,     # IN  op(A) is (m x k)
                      const floating* B, int ldb,     # IN  op(B) is (k x n)
                      floating beta,
                      floating* C, int ldc            # OUT (m x n)
                      ) noexcept nogil:
    """C = alpha * op(A) @ op(B) + beta * C, all row-major, lda/ldb/ldc row strides."""
    if m == 0 or n == 0:
        return
    gemm_on(small_product(m, n, k), trans_a, trans_b, m, n, k, alpha, A, lda, B, ldb,
            beta, C, ldc)


cdef inline void gemm_on(bint openblas, bint trans_a, bint trans_b,
                         int m, int n, int k,
                         floating alpha,
                         const floating* A, int lda,
                         const floating* B, int ldb,
                         floating beta,
                         floating* C, int ldc) noexcept nogil:
    """gemm() on SciPy's OpenBLAS (``openblas``) or else on the backend's
    CBLAS pointer when one is set, whatever the size (for the tests)."""
    cdef char ta = b'T' if trans_a else b'N'
    cdef char tb = b'T' if trans_b else b'N'
    if m == 0 or n == 0:
        return
    if floating is float:
        if pynn_cblas_sgemm != NULL and not openblas:
            pynn_cblas_sgemm(PYNN_CBLAS_ROW_MAJOR,
                             PYNN_CBLAS_TRANS if trans_a else PYNN_CBLAS_NO_TRANS,
                             PYNN_CBLAS_TRANS if trans_b else PYNN_CBLAS_NO_TRANS,
                             m, n, k, alpha, A, lda, B, ldb, beta, C, ldc)
        else:
            sgemm(&tb, &ta, &n, &m, &k, &alpha, <float*>B, &ldb, <float*>A, &lda,
                  &beta, C, &ldc)
    else:
        if pynn_cblas_dgemm != NULL and not openblas:
            pynn_cblas_dgemm(PYNN_CBLAS_ROW_MAJOR,
                             PYNN_CBLAS_TRANS if trans_a else PYNN_CBLAS_NO_TRANS,
                             PYNN_CBLAS_TRANS if trans_b else PYNN_CBLAS_NO_TRANS,
                             m, n, k, alpha, A, lda, B, ldb, beta, C, ldc)
        else:
            dgemm(&tb, &ta, &n, &m, &k, &alpha, <double*>B, &ldb, <double*>A, &lda,
                  &beta, C, &ldc)
