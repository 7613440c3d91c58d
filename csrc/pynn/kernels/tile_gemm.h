/* A one-thread float32 GEMM in AVX-512 register tiles, for the products of
 * a split layer's halves (csrc/dense.pyx), which run on one thread each.
 *
 * Row-major, C = alpha op(A) op(B) + beta C, three of the four cases:
 *
 *   NT  C = A B^T (the forward product X W^T): each element is a dot product
 *       of two contiguous rows.  A 4 x 4 tile of C keeps 16 vector sums, one
 *       per element, each over k in 16 lanes (lane l sums the terms
 *       l, l + 16, l + 32, ...), then adds each vector's lanes in a fixed
 *       tree (pynn_tg_sum16).  A tile reads 8 rows of k floats per pass,
 *       from L1 when they fit (PYNN_TG_NT_MAX_K).
 *   TN  C = A^T B (the weight gradient dZ^T X) and
 *   NN  C = A B (dX = dZ W): each row of C is a sum over k of rows of B
 *       scaled by one element of op(A).  A tile of 4 rows by up to 64
 *       columns keeps up to 16 vectors, adding k's terms in order.
 *
 * Neither packs its operands: a tile's B panel (64 columns of k rows, or
 * NT's 4 rows) is read from L1 for each block of A's rows.  Measured on one
 * core of a 2-core AMD EPYC (Zen 4, AVX-512), against SciPy's OpenBLAS
 * 0.3.30 (SkylakeX kernels) on one thread, in microseconds:
 *
 *   32 x 64 x 784 NT (mnist's forward half)     29.1-29.6   OpenBLAS 45.8-46.1
 *   64 x 784 x 32 TN (its weight gradient)      30.1-30.4   OpenBLAS 40.5-41.0
 *   128 x 256 x 784 NT (mid's)                  465-481     OpenBLAS 537
 *   256 x 784 x 128 TN                          464-471     OpenBLAS 514
 *   128 x 784 x 256 NN                          466-468     OpenBLAS 528-530
 *
 * (benchmarks/tile_gemm.py), and slower from wide's halves on (256 x 1024
 * x 1024 NT 6.50 ms against 6.02; 512 x 2048 x 256 TN 6.97 against 6.21),
 * where OpenBLAS's packing keeps its panels in cache: pynn_tg_fits bounds
 * the sizes.
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
 * products: SciPy's OpenBLAS is the backend and the CPU runs AVX-512F
 * (pynn_tg_cpu_ok), unless PYNN_TILE_GEMM=0. */
#if defined(_WIN32)
__declspec(dllexport) int pynn_tile_gemm = 0;
#else
__attribute__((visibility("default"))) int pynn_tile_gemm = 0;
#endif

/* the largest product it takes (m * n * k), and NT's longest rows: 8 rows
 * of 896 floats are 28 KB, in a 32 KB L1 */
#define PYNN_TG_MAX_MNK (1LL << 26)
#define PYNN_TG_NT_MAX_K 896

#if defined(__GNUC__) && defined(__x86_64__) && !defined(_WIN32)
#define PYNN_TG_X86 1
#include <immintrin.h>

#define PYNN_TG_TARGET __attribute__((target("avx512f,fma")))
#define PYNN_TG_INLINE static inline __attribute__((always_inline))

static int pynn_tg_cpu_ok(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
}

/* Lane selections for pynn_tg_sum16's four levels (lo, hi per level):
 * each level adds two halves of every group of lanes, halving the groups
 * and interleaving two vectors' groups into one. */
static const int pynn_tg_sum_idx[8][16] __attribute__((aligned(64))) = {
    {0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23},
    {8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31},
    {0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27},
    {4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31},
    {0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29},
    {2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27, 30, 31},
    {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30},
    {1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31},
};

/* The sums of 16 vectors' lanes: lane q of the result is v[q]'s sum,
 * (l, l + 8), then (l, l + 4), (l, l + 2), (l, l + 1) added in turn */
PYNN_TG_TARGET PYNN_TG_INLINE __m512 pynn_tg_sum16(__m512 *v)
{
    int level, q, nv = 16;
    for (level = 0; level < 4; level++, nv /= 2) {
        __m512i lo = _mm512_load_si512(pynn_tg_sum_idx[2 * level]);
        __m512i hi = _mm512_load_si512(pynn_tg_sum_idx[2 * level + 1]);
        for (q = 0; q < nv / 2; q++)
            v[q] = _mm512_add_ps(_mm512_permutex2var_ps(v[2 * q], lo, v[2 * q + 1]),
                                 _mm512_permutex2var_ps(v[2 * q], hi, v[2 * q + 1]));
    }
    return v[0];
}

/* 16 dot products over k: out[4 r + j] = a[r] . b[j].  The sums are named
 * variables, not an array, so that the compiler keeps all 16 in registers. */
#define PYNN_TG_NT_COL(J, LOAD)                                          \
    bv = LOAD(b##J);                                                     \
    s0##J = _mm512_fmadd_ps(a0, bv, s0##J);                              \
    s1##J = _mm512_fmadd_ps(a1, bv, s1##J);                              \
    s2##J = _mm512_fmadd_ps(a2, bv, s2##J);                              \
    s3##J = _mm512_fmadd_ps(a3, bv, s3##J)
#define PYNN_TG_NT_STEP(LOAD)                                            \
    a0 = LOAD(pa0); a1 = LOAD(pa1); a2 = LOAD(pa2); a3 = LOAD(pa3);      \
    PYNN_TG_NT_COL(0, LOAD); PYNN_TG_NT_COL(1, LOAD);                    \
    PYNN_TG_NT_COL(2, LOAD); PYNN_TG_NT_COL(3, LOAD)
#define PYNN_TG_LOAD(row) _mm512_loadu_ps(row + p)
#define PYNN_TG_LOAD_TAIL(row) _mm512_maskz_loadu_ps(tail, row + p)

PYNN_TG_TARGET PYNN_TG_INLINE void pynn_tg_nt_tile(int k, const float *const *a,
                                                   const float *const *b, float *out)
{
    const float *pa0 = a[0], *pa1 = a[1], *pa2 = a[2], *pa3 = a[3];
    const float *b0 = b[0], *b1 = b[1], *b2 = b[2], *b3 = b[3];
    __m512 s00, s01, s02, s03, s10, s11, s12, s13;
    __m512 s20, s21, s22, s23, s30, s31, s32, s33;
    __m512 a0, a1, a2, a3, bv, sums[16];
    int p;
    s00 = s01 = s02 = s03 = s10 = s11 = s12 = s13 = _mm512_setzero_ps();
    s20 = s21 = s22 = s23 = s30 = s31 = s32 = s33 = _mm512_setzero_ps();
    for (p = 0; p + 16 <= k; p += 16) {
        PYNN_TG_NT_STEP(PYNN_TG_LOAD);
    }
    if (p < k) {
        /* the last k % 16 terms in the low lanes, zeros in the others */
        __mmask16 tail = (__mmask16)((1u << (k - p)) - 1);
        PYNN_TG_NT_STEP(PYNN_TG_LOAD_TAIL);
    }
    sums[0] = s00; sums[1] = s01; sums[2] = s02; sums[3] = s03;
    sums[4] = s10; sums[5] = s11; sums[6] = s12; sums[7] = s13;
    sums[8] = s20; sums[9] = s21; sums[10] = s22; sums[11] = s23;
    sums[12] = s30; sums[13] = s31; sums[14] = s32; sums[15] = s33;
    _mm512_storeu_ps(out, pynn_tg_sum16(sums));
}

/* C = alpha A B^T + beta C: A (m x k), B (n x k).  Tiles of 4 rows of B
 * outside, so that they stay in L1 while A's rows pass; past an edge, a
 * tile repeats its last row (of A or B) and stores only the real ones. */
PYNN_TG_TARGET static void pynn_tg_nt(int m, int n, int k, float alpha, const float *A,
                                      int lda, const float *B, int ldb, float beta,
                                      float *C, int ldc)
{
    const float *a[4], *b[4];
    float out[16], *c;
    int i0, j0, r, j, rows, cols;
    for (j0 = 0; j0 < n; j0 += 4) {
        cols = n - j0 < 4 ? n - j0 : 4;
        for (j = 0; j < 4; j++)
            b[j] = B + (size_t)(j0 + (j < cols ? j : cols - 1)) * ldb;
        for (i0 = 0; i0 < m; i0 += 4) {
            rows = m - i0 < 4 ? m - i0 : 4;
            for (r = 0; r < 4; r++)
                a[r] = A + (size_t)(i0 + (r < rows ? r : rows - 1)) * lda;
            pynn_tg_nt_tile(k, a, b, out);
            for (r = 0; r < rows; r++) {
                c = C + (size_t)(i0 + r) * ldc + j0;
                for (j = 0; j < cols; j++)
                    c[j] = beta == 0.0f ? alpha * out[4 * r + j]
                                        : alpha * out[4 * r + j] + beta * c[j];
            }
        }
    }
}

/* One tile of the TN and NN cases: rows c[0..3] of C, nv vectors of 16
 * columns (the last one masked by `last`), += a[r][kk * sk] * B[kk, :] for
 * kk = 0 .. k-1 in order.  nv is a constant in each call below, so that the
 * compiler unrolls the loops over r and v and keeps s[][] in registers. */
PYNN_TG_TARGET PYNN_TG_INLINE void pynn_tg_rows_tile(const int nv, int k,
                                                     const float *const *a, size_t sk,
                                                     const float *B, size_t ldb,
                                                     __mmask16 last, float alpha, float beta,
                                                     float *const *c, int rows)
{
    __m512 s[4][4], bv[4], x;
    const float *brow;
    int kk, r, v;
#pragma GCC unroll 4
    for (r = 0; r < 4; r++)
#pragma GCC unroll 4
        for (v = 0; v < nv; v++)
            s[r][v] = _mm512_setzero_ps();
    for (kk = 0; kk < k; kk++) {
        brow = B + kk * ldb;
#pragma GCC unroll 4
        for (v = 0; v < nv; v++)
            bv[v] = v < nv - 1 ? _mm512_loadu_ps(brow + 16 * v)
                               : _mm512_maskz_loadu_ps(last, brow + 16 * v);
#pragma GCC unroll 4
        for (r = 0; r < 4; r++) {
            x = _mm512_set1_ps(a[r][kk * sk]);
#pragma GCC unroll 4
            for (v = 0; v < nv; v++)
                s[r][v] = _mm512_fmadd_ps(x, bv[v], s[r][v]);
        }
    }
#pragma GCC unroll 4
    for (r = 0; r < 4; r++) {
        if (r >= rows)
            break;
#pragma GCC unroll 4
        for (v = 0; v < nv; v++) {
            __mmask16 mask = v < nv - 1 ? (__mmask16)0xFFFF : last;
            x = s[r][v];
            if (alpha != 1.0f)
                x = _mm512_mul_ps(_mm512_set1_ps(alpha), x);
            if (beta != 0.0f)
                x = _mm512_add_ps(x, _mm512_mul_ps(_mm512_set1_ps(beta),
                                                   _mm512_maskz_loadu_ps(mask, c[r] + 16 * v)));
            _mm512_mask_storeu_ps(c[r] + 16 * v, mask, x);
        }
    }
}

/* C = alpha op(A) B + beta C, op(A) (m x k): A^T when trans_a (A is k x m).
 * Blocks of 64 columns outside, so that B's panel stays in L1 while A's
 * rows pass; past the last row a tile repeats it and stores only the real
 * ones. */
PYNN_TG_TARGET static void pynn_tg_rows(int trans_a, int m, int n, int k, float alpha,
                                        const float *A, int lda, const float *B, int ldb,
                                        float beta, float *C, int ldc)
{
    size_t si = trans_a ? 1 : (size_t)lda, sk = trans_a ? (size_t)lda : 1;
    const float *a[4];
    float *c[4];
    int i0, j0, r, i, rows, cols, nv;
    __mmask16 last;
    for (j0 = 0; j0 < n; j0 += 64) {
        cols = n - j0 < 64 ? n - j0 : 64;
        nv = (cols + 15) / 16;
        last = cols % 16 ? (__mmask16)((1u << (cols % 16)) - 1) : (__mmask16)0xFFFF;
        for (i0 = 0; i0 < m; i0 += 4) {
            rows = m - i0 < 4 ? m - i0 : 4;
            for (r = 0; r < 4; r++) {
                i = i0 + (r < rows ? r : rows - 1);
                a[r] = A + i * si;
                c[r] = C + (size_t)i * ldc + j0;
            }
            switch (nv) {
            case 4: pynn_tg_rows_tile(4, k, a, sk, B + j0, ldb, last, alpha, beta, c, rows); break;
            case 3: pynn_tg_rows_tile(3, k, a, sk, B + j0, ldb, last, alpha, beta, c, rows); break;
            case 2: pynn_tg_rows_tile(2, k, a, sk, B + j0, ldb, last, alpha, beta, c, rows); break;
            default: pynn_tg_rows_tile(1, k, a, sk, B + j0, ldb, last, alpha, beta, c, rows);
            }
        }
    }
}

#else
#define PYNN_TG_X86 0
static int pynn_tg_cpu_ok(void) { return 0; }
#endif

/* True when the tiles take a product of this shape: not TT, at most
 * PYNN_TG_MAX_MNK multiply-adds, and NT rows of at most PYNN_TG_NT_MAX_K */
static inline int pynn_tg_fits(int trans_a, int trans_b, int m, int n, int k)
{
    if (m <= 0 || n <= 0 || k <= 0 || (long long)m * n * k > PYNN_TG_MAX_MNK
            || (trans_a && trans_b))
        return 0;
    return trans_b ? k <= PYNN_TG_NT_MAX_K : 1;
}

/* True when pynn_tg_sgemm takes this product: the tiles are on and fit it */
static inline int pynn_tg_takes(int trans_a, int trans_b, int m, int n, int k)
{
    return PYNN_TG_X86 && pynn_tile_gemm && pynn_tg_fits(trans_a, trans_b, m, n, k);
}

/* C = alpha op(A) op(B) + beta C on the tiles, for a shape that fits, on
 * a CPU that runs them (the caller has checked both) */
static inline void pynn_tg_run(int trans_a, int trans_b, int m, int n, int k, float alpha,
                               const float *A, int lda, const float *B, int ldb, float beta,
                               float *C, int ldc)
{
#if PYNN_TG_X86
    if (trans_b)
        pynn_tg_nt(m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
    else
        pynn_tg_rows(trans_a, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
#endif
}

/* pynn_tg_run when pynn_tg_takes the product; 0 when not, for the caller
 * to multiply elsewhere */
static inline int pynn_tg_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha,
                                const float *A, int lda, const float *B, int ldb, float beta,
                                float *C, int ldc)
{
    if (!pynn_tg_takes(trans_a, trans_b, m, n, k))
        return 0;
    pynn_tg_run(trans_a, trans_b, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
    return 1;
}

#endif
