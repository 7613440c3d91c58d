/* A one-thread GEMM in AVX-512 register tiles, float32 and float64, for the
 * products of a split layer's halves (csrc/dense.pyx), which run on one
 * thread each.  The code of each dtype is tile_gemm_body.h, included below
 * once per dtype with its vector type and intrinsics (_f: 16 floats a
 * vector, _d: 8 doubles).
 *
 * Row-major, C = alpha op(A) op(B) + beta C, three of the four cases:
 *
 *   NT  C = A B^T (the forward product X W^T): each element is a dot product
 *       of two contiguous rows.  A 4 x 4 tile of C keeps 16 vector sums, one
 *       per element, each over k in a vector's lanes (lane l of 16 sums the
 *       terms l, l + 16, l + 32, ...), then adds each vector's lanes in a
 *       fixed tree (pynn_tg_sum_?).  A tile reads 8 rows of k elements per
 *       pass (PYNN_TG_NT_MAX_K bounds k).
 *   TN  C = A^T B (the weight gradient dZ^T X) and
 *   NN  C = A B (dX = dZ W): each row of C is a sum over k of rows of B
 *       scaled by one element of op(A).  A tile of 4 rows by up to 4
 *       vectors of columns keeps up to 16 vector sums, adding k's terms in
 *       order.
 *
 * Neither packs its operands: a tile's B panel (4 vectors of columns of k
 * rows, or NT's 4 rows) is read from L1 for each block of A's rows.
 * Measured on one core of a 2-core AMD EPYC (Zen 4, AVX-512), against
 * SciPy's OpenBLAS 0.3.30 (SkylakeX kernels) on one thread, in
 * microseconds (python benchmarks/tile_gemm.py [--dtype float64]):
 *
 *                                            float32             float64
 *                                        tiles   OpenBLAS    tiles   OpenBLAS
 *   32 x 64 x 784 NT (mnist's forward half) 29.1   45.8       66.9    86.7
 *   64 x 784 x 32 TN (its weight gradient)  30.1   40.5       65.4    73.7
 *   128 x 256 x 784 NT (mid's)               465    537       1142    1129
 *   256 x 784 x 128 TN                       464    514       1046    1046
 *   128 x 512 x 256 NN                       300    346        661     699
 *
 * and slower from wide's halves on (float32 256 x 1024 x 1024 NT 6.50 ms
 * against 6.02; 512 x 2048 x 256 TN 6.97 against 6.21), where OpenBLAS's
 * packing keeps its panels in cache: pynn_tg_fits bounds the sizes.
 *
 * Every element's sum runs in one fixed order whatever the caller, the
 * thread or the other elements of the product, so a product's bits are the
 * same call after call.  The code is compiled for AVX-512F and FMA by the
 * target attribute in every module that includes it, whatever the module's
 * own flags, and runs only where the CPU has them (pynn_tg_cpu_ok): the
 * modules built for each instruction set give the same bits.
 */
#ifndef PYNN_TILE_GEMM_H
#define PYNN_TILE_GEMM_H

#include <stddef.h>

/* Set by pynn/_threads.py when the tile GEMM is to take the halves'
 * products: SciPy's OpenBLAS is the backend and the CPU runs AVX-512F and
 * FMA (pynn_tg_cpu_ok), unless PYNN_TILE_GEMM says otherwise. */
#if defined(_WIN32)
__declspec(dllexport) int pynn_tile_gemm = 0;
#else
__attribute__((visibility("default"))) int pynn_tile_gemm = 0;
#endif

/* the largest product it takes (m * n * k), and NT's longest rows: 8 rows
 * of 896 floats are 28 KB, in a 32 KB L1; 8 rows of 784 doubles (49 KB)
 * still matched OpenBLAS or beat it, so double keeps the same bound */
#define PYNN_TG_MAX_MNK (1LL << 26)
#define PYNN_TG_NT_MAX_K 896
#define PYNN_TG_NT_MAX_K_D 896

#if defined(__GNUC__) && defined(__x86_64__) && !defined(_WIN32)
#define PYNN_TG_X86 1
#else
#define PYNN_TG_X86 0
#endif

/* True when the tiles take a product of this shape: not TT, at most
 * PYNN_TG_MAX_MNK multiply-adds, and NT rows of at most PYNN_TG_NT_MAX_K
 * (PYNN_TG_NT_MAX_K_D in double) */
static inline int pynn_tg_fits(int is_double, int trans_a, int trans_b, int m, int n, int k)
{
    if (m <= 0 || n <= 0 || k <= 0 || (long long)m * n * k > PYNN_TG_MAX_MNK
            || (trans_a && trans_b))
        return 0;
    return trans_b ? k <= (is_double ? PYNN_TG_NT_MAX_K_D : PYNN_TG_NT_MAX_K) : 1;
}

/* True when pynn_tg_gemm_? takes this product: the tiles are on and fit it */
static inline int pynn_tg_takes(int is_double, int trans_a, int trans_b, int m, int n, int k)
{
    return PYNN_TG_X86 && pynn_tile_gemm && pynn_tg_fits(is_double, trans_a, trans_b, m, n, k);
}

#if PYNN_TG_X86
#include <immintrin.h>

#define PYNN_TG_TARGET __attribute__((target("avx512f,fma")))
#define PYNN_TG_INLINE static inline __attribute__((always_inline))

static __attribute__((unused)) int pynn_tg_cpu_ok(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
}

/* Lane selections of pynn_tg_sum's levels (lo, hi per level), for 16
 * floats (indices 16-31 pick the second vector's lanes) and for 8 doubles
 * (8-15) */
static const int pynn_tg_sum_idx_f[8][16] __attribute__((aligned(64))) = {
    {0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23},
    {8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31},
    {0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27},
    {4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31},
    {0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29},
    {2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27, 30, 31},
    {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30},
    {1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31},
};
static const long long pynn_tg_sum_idx_d[6][8] __attribute__((aligned(64))) = {
    {0, 1, 2, 3, 8, 9, 10, 11},
    {4, 5, 6, 7, 12, 13, 14, 15},
    {0, 1, 4, 5, 8, 9, 12, 13},
    {2, 3, 6, 7, 10, 11, 14, 15},
    {0, 2, 4, 6, 8, 10, 12, 14},
    {1, 3, 5, 7, 9, 11, 13, 15},
};

/* one step of 16 dot products: 4 rows of A by 4 rows of B, one vector each */
#define PYNN_TG_NT_COL(J, LOAD)                                          \
    bv = LOAD(b##J);                                                     \
    s0##J = TG_FMA(a0, bv, s0##J);                                       \
    s1##J = TG_FMA(a1, bv, s1##J);                                       \
    s2##J = TG_FMA(a2, bv, s2##J);                                       \
    s3##J = TG_FMA(a3, bv, s3##J)
#define PYNN_TG_NT_STEP(LOAD)                                            \
    a0 = LOAD(pa0); a1 = LOAD(pa1); a2 = LOAD(pa2); a3 = LOAD(pa3);      \
    PYNN_TG_NT_COL(0, LOAD); PYNN_TG_NT_COL(1, LOAD);                    \
    PYNN_TG_NT_COL(2, LOAD); PYNN_TG_NT_COL(3, LOAD)
#define PYNN_TG_LOAD(row) TG_LOAD(row + p)
#define PYNN_TG_LOAD_TAIL(row) TG_LOAD_MASKED(tail, row + p)

#define TG_T float
#define TG_V __m512
#define TG_LANES 16
#define TG_MASK __mmask16
#define TG_NAME(name) name##_f
#define TG_IS_DOUBLE 0
#define TG_SUM_IDX pynn_tg_sum_idx_f
#define TG_LEVELS 4
#define TG_LOAD _mm512_loadu_ps
#define TG_LOAD_MASKED _mm512_maskz_loadu_ps
#define TG_STORE _mm512_storeu_ps
#define TG_STORE_MASKED _mm512_mask_storeu_ps
#define TG_FMA _mm512_fmadd_ps
#define TG_ADD _mm512_add_ps
#define TG_MUL _mm512_mul_ps
#define TG_SET1 _mm512_set1_ps
#define TG_ZERO _mm512_setzero_ps
#define TG_PERMUTE _mm512_permutex2var_ps
#include "tile_gemm_body.h"
#undef TG_T
#undef TG_V
#undef TG_LANES
#undef TG_MASK
#undef TG_NAME
#undef TG_IS_DOUBLE
#undef TG_SUM_IDX
#undef TG_LEVELS
#undef TG_LOAD
#undef TG_LOAD_MASKED
#undef TG_STORE
#undef TG_STORE_MASKED
#undef TG_FMA
#undef TG_ADD
#undef TG_MUL
#undef TG_SET1
#undef TG_ZERO
#undef TG_PERMUTE

#define TG_T double
#define TG_V __m512d
#define TG_LANES 8
#define TG_MASK __mmask8
#define TG_NAME(name) name##_d
#define TG_IS_DOUBLE 1
#define TG_SUM_IDX pynn_tg_sum_idx_d
#define TG_LEVELS 3
#define TG_LOAD _mm512_loadu_pd
#define TG_LOAD_MASKED _mm512_maskz_loadu_pd
#define TG_STORE _mm512_storeu_pd
#define TG_STORE_MASKED _mm512_mask_storeu_pd
#define TG_FMA _mm512_fmadd_pd
#define TG_ADD _mm512_add_pd
#define TG_MUL _mm512_mul_pd
#define TG_SET1 _mm512_set1_pd
#define TG_ZERO _mm512_setzero_pd
#define TG_PERMUTE _mm512_permutex2var_pd
#include "tile_gemm_body.h"

#else
/* no tiles: pynn_tg_takes is 0, so nothing runs them */
static int pynn_tg_cpu_ok(void) { return 0; }
#define pynn_tg_run_f(...) ((void)0)
#define pynn_tg_run_d(...) ((void)0)
#define pynn_tg_gemm_f(...) 0
#define pynn_tg_gemm_d(...) 0
#endif

#endif
