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

#include <pthread.h>
#include <string.h>

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

/* MKL's JIT small GEMM: when MKL is the backend, pynn._threads sets these
 * to its mkl_cblas_jit_create_?gemm, mkl_jit_get_?gemm_ptr and
 * mkl_jit_destroy, and the products of at most PYNN_SMALL_GEMM_MAX
 * multiply-adds run on a kernel generated for their exact shape, strides,
 * alpha and beta: on a tiny network's five products at batch 16 it costs
 * 1.26 us a step in float32 against 1.71 us on OpenBLAS's small-matrix
 * kernels (2.32 against 2.86 us in float64), a C loop over them on one
 * thread; benchmarks/small_gemm.py times every small shape.
 *
 * Each module that includes this header keeps its own table of kernels,
 * filled on first use of a shape and never emptied: a hash table that
 * readers probe without a lock (an entry is published by its ready flag),
 * a writer fills under the mutex.  A shape MKL generates no code for
 * (MKL_NO_JIT) is kept as such and goes to OpenBLAS.  Past the table's
 * PYNN_JIT_MAX_FILL entries a new shape gets a kernel generated for the
 * call and destroyed after it, so that every product of a shape runs on
 * the same code whatever the history (slow, but the same bits).  A
 * generation that fails leaves the product to OpenBLAS (pynn_jit_gemm
 * returns 0). */
typedef int (*pynn_jit_create_s_fn)(void **jitter, int layout, int trans_a, int trans_b,
                                    int m, int n, int k, float alpha, int lda, int ldb,
                                    float beta, int ldc);
typedef int (*pynn_jit_create_d_fn)(void **jitter, int layout, int trans_a, int trans_b,
                                    int m, int n, int k, double alpha, int lda, int ldb,
                                    double beta, int ldc);
typedef void *(*pynn_jit_get_fn)(const void *jitter);
typedef int (*pynn_jit_destroy_fn)(void *jitter);
typedef void (*pynn_jit_s_kernel)(void *jitter, float *a, float *b, float *c);
typedef void (*pynn_jit_d_kernel)(void *jitter, double *a, double *b, double *c);

PYNN_EXPORT pynn_jit_create_s_fn pynn_mkl_jit_create_sgemm = 0;
PYNN_EXPORT pynn_jit_create_d_fn pynn_mkl_jit_create_dgemm = 0;
PYNN_EXPORT pynn_jit_get_fn pynn_mkl_jit_get_sgemm_ptr = 0;
PYNN_EXPORT pynn_jit_get_fn pynn_mkl_jit_get_dgemm_ptr = 0;
PYNN_EXPORT pynn_jit_destroy_fn pynn_mkl_jit_destroy = 0;

#define PYNN_JIT_CAPACITY 4096          /* a power of 2 */
#define PYNN_JIT_MAX_FILL 3072          /* entries kept at most: probes stay short */
/* MKL's status codes: MKL_JIT_SUCCESS, MKL_NO_JIT (a kernel that calls the
 * standard GEMM), MKL_JIT_ERROR */
#define PYNN_JIT_ERROR 2

typedef struct {
    int ready;              /* 1 once the entry is written (release/acquire) */
    int key[9];             /* double, trans_a, trans_b, m, n, k, lda, ldb, ldc */
    double alpha, beta;
    void *jitter;
    void *kernel;
} pynn_jit_entry;

/* open addressing, linear probing; entries are never removed */
static pynn_jit_entry pynn_jit_table[PYNN_JIT_CAPACITY];
static int pynn_jit_count = 0;
static pthread_mutex_t pynn_jit_mutex = PTHREAD_MUTEX_INITIALIZER;
PYNN_EXPORT long long pynn_jit_created = 0;     /* kernels generated, for the tests */

/* fork: the child must not inherit the mutex held by a thread fork does
 * not copy (one generating a kernel), or its first new shape would wait
 * forever.  The handlers take the mutex before fork and release it after,
 * in the parent and in the child: a fork waits for a generation under
 * way.  Registered once per module, before its first generation. */
static pthread_once_t pynn_jit_fork_once = PTHREAD_ONCE_INIT;
static void pynn_jit_before_fork(void) { pthread_mutex_lock(&pynn_jit_mutex); }
static void pynn_jit_after_fork(void) { pthread_mutex_unlock(&pynn_jit_mutex); }
static void pynn_jit_watch_fork(void)
{
    pthread_atfork(pynn_jit_before_fork, pynn_jit_after_fork, pynn_jit_after_fork);
}

static inline unsigned pynn_jit_hash(const int *key, double alpha, double beta)
{
    unsigned long long h = 1469598103934665603ULL, bits;
    int j;
    for (j = 0; j < 9; j++)
        h = (h ^ (unsigned)key[j]) * 1099511628211ULL;
    memcpy(&bits, &alpha, sizeof bits);
    h = (h ^ bits) * 1099511628211ULL;
    memcpy(&bits, &beta, sizeof bits);
    h = (h ^ bits) * 1099511628211ULL;
    return (unsigned)(h ^ (h >> 29));
}

/* the entry of this key, or -1 - (the first free slot on its probe path) */
static inline int pynn_jit_find(const int *key, double alpha, double beta)
{
    unsigned i = pynn_jit_hash(key, alpha, beta) & (PYNN_JIT_CAPACITY - 1);
    int j;
    for (;;) {
        const pynn_jit_entry *e = &pynn_jit_table[i];
        if (!__atomic_load_n(&e->ready, __ATOMIC_ACQUIRE))
            return -1 - (int)i;
        for (j = 0; j < 9 && e->key[j] == key[j]; j++)
            ;
        if (j == 9 && e->alpha == alpha && e->beta == beta)
            return (int)i;
        i = (i + 1) & (PYNN_JIT_CAPACITY - 1);
    }
}

/* 1: a generated kernel; 2: MKL generates none for this shape (MKL_NO_JIT:
 * the product goes to OpenBLAS, faster than MKL's standard GEMM there);
 * 0: generation failed */
static int pynn_jit_make(const int *key, double alpha, double beta,
                         void **jitter, void **kernel)
{
    int status;
    int ta = key[1] ? PYNN_CBLAS_TRANS : PYNN_CBLAS_NO_TRANS;
    int tb = key[2] ? PYNN_CBLAS_TRANS : PYNN_CBLAS_NO_TRANS;
    *jitter = 0;
    *kernel = 0;
    if (key[0])
        status = pynn_mkl_jit_create_dgemm(jitter, PYNN_CBLAS_ROW_MAJOR, ta, tb, key[3],
                                           key[4], key[5], alpha, key[6], key[7], beta,
                                           key[8]);
    else
        status = pynn_mkl_jit_create_sgemm(jitter, PYNN_CBLAS_ROW_MAJOR, ta, tb, key[3],
                                           key[4], key[5], (float)alpha, key[6], key[7],
                                           (float)beta, key[8]);
    if (status == PYNN_JIT_ERROR || *jitter == 0)
        return 0;
    if (status != 0) {
        pynn_mkl_jit_destroy(*jitter);
        *jitter = 0;
        return 2;
    }
    *kernel = key[0] ? pynn_mkl_jit_get_dgemm_ptr(*jitter)
                     : pynn_mkl_jit_get_sgemm_ptr(*jitter);
    if (*kernel == 0) {
        pynn_mkl_jit_destroy(*jitter);
        *jitter = 0;
        return 0;
    }
    __atomic_fetch_add(&pynn_jit_created, 1, __ATOMIC_RELAXED);
    return 1;
}

/* C = alpha op(A) op(B) + beta C (row-major) on the generated kernel of this
 * shape; 0 when there is none (the caller multiplies on OpenBLAS). */
static int pynn_jit_gemm(int is_double, int trans_a, int trans_b, int m, int n, int k,
                         double alpha, const void *A, int lda, const void *B, int ldb,
                         double beta, void *C, int ldc)
{
    int key[9] = {is_double, trans_a != 0, trans_b != 0, m, n, k, lda, ldb, ldc};
    void *jitter = 0, *kernel = 0;
    int owned = 0, made;
    int i = pynn_jit_find(key, alpha, beta);
    if (i < 0) {
        pthread_once(&pynn_jit_fork_once, pynn_jit_watch_fork);
        pthread_mutex_lock(&pynn_jit_mutex);
        i = pynn_jit_find(key, alpha, beta);
        if (i < 0) {
            made = pynn_jit_make(key, alpha, beta, &jitter, &kernel);
            if (made && pynn_jit_count < PYNN_JIT_MAX_FILL) {
                pynn_jit_entry *e = &pynn_jit_table[-1 - i];
                memcpy(e->key, key, sizeof key);
                e->alpha = alpha;
                e->beta = beta;
                e->jitter = jitter;
                e->kernel = kernel;
                pynn_jit_count++;
                __atomic_store_n(&e->ready, 1, __ATOMIC_RELEASE);
                i = -1 - i;
            } else {
                owned = 1;      /* not kept: this call's kernel, destroyed after it */
            }
        }
        pthread_mutex_unlock(&pynn_jit_mutex);
    }
    if (!owned) {
        jitter = pynn_jit_table[i].jitter;
        kernel = pynn_jit_table[i].kernel;
    }
    if (kernel == 0)
        return 0;
    if (is_double)
        ((pynn_jit_d_kernel)kernel)(jitter, (double *)A, (double *)B, (double *)C);
    else
        ((pynn_jit_s_kernel)kernel)(jitter, (float *)A, (float *)B, (float *)C);
    if (owned)
        pynn_mkl_jit_destroy(jitter);
    return 1;
}


#endif
