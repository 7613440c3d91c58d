/* The GEMM that pynn's kernels call, one function pointer per dtype.
 *
 * NULL (the default) means SciPy's BLAS through scipy.linalg.cython_blas.
 * Otherwise the pointer is a CBLAS row-major gemm (MKL's cblas_sgemm and
 * cblas_dgemm), set once at import of pynn by pynn._threads before any
 * kernel runs.  The symbols are exported so that Python finds them in the
 * extension's symbol table (ctypes), the one place where they are written.
 */
#ifndef PYNN_BLAS_BACKEND_H
#define PYNN_BLAS_BACKEND_H

typedef void (*pynn_cblas_sgemm_fn)(int layout, int trans_a, int trans_b,
                                    int m, int n, int k, float alpha,
                                    const float *A, int lda, const float *B, int ldb,
                                    float beta, float *C, int ldc);
typedef void (*pynn_cblas_dgemm_fn)(int layout, int trans_a, int trans_b,
                                    int m, int n, int k, double alpha,
                                    const double *A, int lda, const double *B, int ldb,
                                    double beta, double *C, int ldc);

#if defined(_WIN32)
#define PYNN_EXPORT __declspec(dllexport)
#else
#define PYNN_EXPORT __attribute__((visibility("default")))
#endif

PYNN_EXPORT pynn_cblas_sgemm_fn pynn_cblas_sgemm = 0;
PYNN_EXPORT pynn_cblas_dgemm_fn pynn_cblas_dgemm = 0;

/* The per-thread thread count handed to the kernels' thread policy when MKL
 * multiplies.  MKL_Set_Num_Threads_Local is also how threadpoolctl limits
 * MKL, so a call that dropped the override (0) would drop the user's limit
 * too: this wrapper puts back the value it found instead. */
typedef int (*pynn_set_threads_fn)(int);
PYNN_EXPORT pynn_set_threads_fn pynn_mkl_set_num_threads_local = 0;
static _Thread_local int pynn_mkl_saved_threads = 0;

PYNN_EXPORT int pynn_mkl_threads_local(int n_threads)
{
    if (n_threads > 0) {
        pynn_mkl_saved_threads = pynn_mkl_set_num_threads_local(n_threads);
        return pynn_mkl_saved_threads;
    }
    return pynn_mkl_set_num_threads_local(pynn_mkl_saved_threads);
}

/* Products of at most this many multiply-adds (m * n * k) go to SciPy's
 * OpenBLAS even when the pointers above are set: its small-matrix kernels
 * cost less per call than MKL's up to there (benchmarks/small_gemm.py;
 * csrc/pynn/kernels/_blas.pxd).  32768 is the largest product of a 64-32-10 network's
 * step at batch 16. */
#define PYNN_SMALL_GEMM_MAX 32768L

/* CBLAS's enum values */
#define PYNN_CBLAS_ROW_MAJOR 101
#define PYNN_CBLAS_NO_TRANS 111
#define PYNN_CBLAS_TRANS 112

#endif
