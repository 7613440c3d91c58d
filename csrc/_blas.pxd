# Row-major GEMM over the Fortran BLAS that SciPy exports to Cython.
#
# BLAS is column-major.  A row-major (m x n) matrix is, read column-major,
# its own transpose, so the row-major product C = op(A) op(B) is computed as
# the column-major product C^T = op(B)^T op(A)^T: the same call with the two
# operands (and their sizes) swapped.  No copy, no transpose in memory.
from cython cimport floating
from scipy.linalg.cython_blas cimport dgemm, sgemm


cdef inline void gemm(bint trans_a, bint trans_b,
                      int m, int n, int k,
                      floating alpha,
                      const floating* A, int lda,     # IN  op(A) is (m x k)
                      const floating* B, int ldb,     # IN  op(B) is (k x n)
                      floating beta,
                      floating* C, int ldc            # OUT (m x n)
                      ) noexcept nogil:
    """C = alpha * op(A) @ op(B) + beta * C, all row-major, lda/ldb/ldc row strides."""
    cdef char ta = b'T' if trans_a else b'N'
    cdef char tb = b'T' if trans_b else b'N'
    if m == 0 or n == 0:
        return
    if floating is float:
        sgemm(&tb, &ta, &n, &m, &k, &alpha, <float*>B, &ldb, <float*>A, &lda,
              &beta, C, &ldc)
    else:
        dgemm(&tb, &ta, &n, &m, &k, &alpha, <double*>B, &ldb, <double*>A, &lda,
              &beta, C, &ldc)
