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
# and below, by benchmarks/small_gemm.py.  With MKL they run instead on
# MKL's JIT small GEMM (blas_backend.h, pynn_jit_gemm), a kernel generated
# for each shape, which costs less again.  Each product's result is then
# that of one fixed kernel for its shape, call after call: a backend's
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
    void* pynn_mkl_jit_create_sgemm
    int pynn_jit_gemm(int is_double, int trans_a, int trans_b, int m, int n, int k,
                      double alpha, const void* A, int lda, const void* B, int ldb,
                      double beta, void* C, int ldc)
    int PYNN_CBLAS_ROW_MAJOR, PYNN_CBLAS_NO_TRANS, PYNN_CBLAS_TRANS
    long PYNN_SMALL_GEMM_MAX


cdef enum:
    # where gemm_on multiplies
    GEMM_BACKEND = 0    # the backend's CBLAS pointer (MKL's), else SciPy's OpenBLAS
    GEMM_OPENBLAS = 1   # SciPy's OpenBLAS
    GEMM_SMALL = 2      # MKL's JIT kernel for the shape when MKL is the backend, else OpenBLAS


cdef inline bint small_product(int m, int n, int k) noexcept nogil:
    """True when gemm() takes this product to the small-matrix path (GEMM_SMALL)."""
    return <long long>m * n * k <= PYNN_SMALL_GEMM_MAX


# A split layer's halves run on one thread each: there the products go to
# the tile GEMM of tile_gemm.h when pynn._threads turned it on (SciPy's
# OpenBLAS the backend, a CPU with AVX-512F) and it takes the shape
# (pynn_tg_takes), else to gemm().
cdef extern from "tile_gemm.h" nogil:
    int pynn_tile_gemm
    long long PYNN_TG_MAX_MNK
    int PYNN_TG_NT_MAX_K, PYNN_TG_NT_MAX_K_D
    int pynn_tg_cpu_ok()
    int pynn_tg_fits(int is_double, int trans_a, int trans_b, int m, int n, int k)
    int pynn_tg_takes(int is_double, int trans_a, int trans_b, int m, int n, int k)
    void pynn_tg_run_f(int trans_a, int trans_b, int m, int n, int k, float alpha,
                       const float* A, int lda, const float* B, int ldb, float beta,
                       float* C, int ldc)
    void pynn_tg_run_d(int trans_a, int trans_b, int m, int n, int k, double alpha,
                       const double* A, int lda, const double* B, int ldb, double beta,
                       double* C, int ldc)
    int pynn_tg_gemm_f(int trans_a, int trans_b, int m, int n, int k, float alpha,
                      const float* A, int lda, const float* B, int ldb, float beta,
                      float* C, int ldc)
    int pynn_tg_gemm_d(int trans_a, int trans_b, int m, int n, int k, double alpha,
                      const double* A, int lda, const double* B, int ldb, double beta,
                      double* C, int ldc)


cdef inline bint small_on_jit() noexcept nogil:
    """True when the small-matrix path is MKL's JIT GEMM."""
    return pynn_mkl_jit_create_sgemm != NULL


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
    gemm_on(GEMM_SMALL if small_product(m, n, k) else GEMM_BACKEND, trans_a, trans_b,
            m, n, k, alpha, A, lda, B, ldb, beta, C, ldc)


cdef inline void gemm_one_thread(bint trans_a, bint trans_b,
                                 int m, int n, int k,
                                 floating alpha,
                                 const floating* A, int lda,
                                 const floating* B, int ldb,
                                 floating beta,
                                 floating* C, int ldc) noexcept nogil:
    """gemm() for a caller whose products run on one thread (a split
    layer's halves): on the tile GEMM where it takes the shape."""
    if floating is float:
        if pynn_tg_gemm_f(trans_a, trans_b, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc):
            return
    else:
        if pynn_tg_gemm_d(trans_a, trans_b, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc):
            return
    gemm(trans_a, trans_b, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc)


cdef inline void gemm_on(int where, bint trans_a, bint trans_b,
                         int m, int n, int k,
                         floating alpha,
                         const floating* A, int lda,
                         const floating* B, int ldb,
                         floating beta,
                         floating* C, int ldc) noexcept nogil:
    """gemm() on the path ``where`` names (GEMM_*), whatever the size (for
    the tests)."""
    cdef char ta = b'T' if trans_a else b'N'
    cdef char tb = b'T' if trans_b else b'N'
    cdef bint openblas = where != GEMM_BACKEND
    if m == 0 or n == 0:
        return
    if where == GEMM_SMALL and small_on_jit() and k > 0 \
            and pynn_jit_gemm(floating is double, trans_a, trans_b, m, n, k, alpha, A, lda,
                              B, ldb, beta, C, ldc):
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
