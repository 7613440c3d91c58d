/* The tile GEMM's code for one dtype, included by tile_gemm.h once for
 * float and once for double with these defined:
 *
 *   TG_T      the element type           TG_V     its 512-bit vector
 *   TG_LANES  elements in a vector       TG_MASK  a mask of TG_LANES bits
 *   TG_NAME(name)  name with the dtype's suffix (_f, _d)
 *   TG_IS_DOUBLE   1 for double
 *   TG_SUM_IDX, TG_LEVELS  pynn_tg_sum's lane selections and levels
 *   TG_LOAD, TG_LOAD_MASKED, TG_STORE, TG_STORE_MASKED, TG_FMA, TG_ADD, TG_MUL,
 *   TG_SET1, TG_ZERO, TG_PERMUTE   the intrinsics of that vector type
 *
 * No include guard: it is meant to be included twice. */

/* The sums of 16 vectors' lanes, 16 / TG_LANES vectors out: lane q of
 * out[0], then of out[1], is v[q]'s sum.  Each level adds the two halves
 * of every group of lanes, halving the groups and interleaving two
 * vectors' groups into one: (l, l + 8) (float only), (l, l + 4),
 * (l, l + 2), (l, l + 1) in turn. */
PYNN_TG_TARGET PYNN_TG_INLINE void TG_NAME(pynn_tg_sum)(TG_V *v, TG_T *out)
{
    int level, q, nv = 16;
    for (level = 0; level < TG_LEVELS; level++, nv /= 2) {
        __m512i lo = _mm512_load_si512(TG_SUM_IDX[2 * level]);
        __m512i hi = _mm512_load_si512(TG_SUM_IDX[2 * level + 1]);
        for (q = 0; q < nv / 2; q++)
            v[q] = TG_ADD(TG_PERMUTE(v[2 * q], lo, v[2 * q + 1]),
                          TG_PERMUTE(v[2 * q], hi, v[2 * q + 1]));
    }
    for (q = 0; q < nv; q++)
        TG_STORE(out + q * TG_LANES, v[q]);
}

/* 16 dot products over k: out[4 r + j] = a[r] . b[j].  The sums are named
 * variables, not an array, so that the compiler keeps all 16 in registers. */
PYNN_TG_TARGET PYNN_TG_INLINE void TG_NAME(pynn_tg_nt_tile)(int k, const TG_T *const *a,
                                                            const TG_T *const *b, TG_T *out)
{
    const TG_T *pa0 = a[0], *pa1 = a[1], *pa2 = a[2], *pa3 = a[3];
    const TG_T *b0 = b[0], *b1 = b[1], *b2 = b[2], *b3 = b[3];
    TG_V s00, s01, s02, s03, s10, s11, s12, s13;
    TG_V s20, s21, s22, s23, s30, s31, s32, s33;
    TG_V a0, a1, a2, a3, bv, sums[16];
    TG_MASK tail;
    int p;
    s00 = s01 = s02 = s03 = s10 = s11 = s12 = s13 = TG_ZERO();
    s20 = s21 = s22 = s23 = s30 = s31 = s32 = s33 = TG_ZERO();
    for (p = 0; p + TG_LANES <= k; p += TG_LANES) {
        PYNN_TG_NT_STEP(PYNN_TG_LOAD);
    }
    if (p < k) {
        /* the last k % TG_LANES terms in the low lanes, zeros in the others */
        tail = (TG_MASK)((1u << (k - p)) - 1);
        PYNN_TG_NT_STEP(PYNN_TG_LOAD_TAIL);
    }
    sums[0] = s00; sums[1] = s01; sums[2] = s02; sums[3] = s03;
    sums[4] = s10; sums[5] = s11; sums[6] = s12; sums[7] = s13;
    sums[8] = s20; sums[9] = s21; sums[10] = s22; sums[11] = s23;
    sums[12] = s30; sums[13] = s31; sums[14] = s32; sums[15] = s33;
    TG_NAME(pynn_tg_sum)(sums, out);
}

/* C = alpha A B^T + beta C: A (m x k), B (n x k).  Tiles of 4 rows of B
 * outside, so that they stay in L1 while A's rows pass; past an edge, a
 * tile repeats its last row (of A or B) and stores only the real ones. */
PYNN_TG_TARGET static void TG_NAME(pynn_tg_nt)(int m, int n, int k, TG_T alpha,
                                               const TG_T *A, int lda, const TG_T *B,
                                               int ldb, TG_T beta, TG_T *C, int ldc)
{
    const TG_T *a[4], *b[4];
    TG_T out[16], *c;
    int i0, j0, r, j, rows, cols;
    for (j0 = 0; j0 < n; j0 += 4) {
        cols = n - j0 < 4 ? n - j0 : 4;
        for (j = 0; j < 4; j++)
            b[j] = B + (size_t)(j0 + (j < cols ? j : cols - 1)) * ldb;
        for (i0 = 0; i0 < m; i0 += 4) {
            rows = m - i0 < 4 ? m - i0 : 4;
            for (r = 0; r < 4; r++)
                a[r] = A + (size_t)(i0 + (r < rows ? r : rows - 1)) * lda;
            TG_NAME(pynn_tg_nt_tile)(k, a, b, out);
            for (r = 0; r < rows; r++) {
                c = C + (size_t)(i0 + r) * ldc + j0;
                for (j = 0; j < cols; j++)
                    c[j] = beta == 0 ? alpha * out[4 * r + j]
                                     : alpha * out[4 * r + j] + beta * c[j];
            }
        }
    }
}

/* One tile of the TN and NN cases: rows c[0..3] of C, nv vectors of
 * columns (the last one masked by `last`), += a[r][kk * sk] * B[kk, :] for
 * kk = 0 .. k-1 in order.  nv is a constant in each call below, so that the
 * compiler unrolls the loops over r and v and keeps s[][] in registers. */
PYNN_TG_TARGET PYNN_TG_INLINE void TG_NAME(pynn_tg_rows_tile)(
        const int nv, int k, const TG_T *const *a, size_t sk, const TG_T *B, size_t ldb,
        TG_MASK last, TG_T alpha, TG_T beta, TG_T *const *c, int rows)
{
    TG_V s[4][4], bv[4], x;
    const TG_T *brow;
    TG_MASK mask;
    int kk, r, v;
#pragma GCC unroll 4
    for (r = 0; r < 4; r++)
#pragma GCC unroll 4
        for (v = 0; v < nv; v++)
            s[r][v] = TG_ZERO();
    for (kk = 0; kk < k; kk++) {
        brow = B + kk * ldb;
#pragma GCC unroll 4
        for (v = 0; v < nv; v++)
            bv[v] = v < nv - 1 ? TG_LOAD(brow + TG_LANES * v)
                               : TG_LOAD_MASKED(last, brow + TG_LANES * v);
#pragma GCC unroll 4
        for (r = 0; r < 4; r++) {
            x = TG_SET1(a[r][kk * sk]);
#pragma GCC unroll 4
            for (v = 0; v < nv; v++)
                s[r][v] = TG_FMA(x, bv[v], s[r][v]);
        }
    }
#pragma GCC unroll 4
    for (r = 0; r < 4; r++) {
        if (r >= rows)
            break;
#pragma GCC unroll 4
        for (v = 0; v < nv; v++) {
            mask = v < nv - 1 ? (TG_MASK)-1 : last;
            x = s[r][v];
            if (alpha != 1)
                x = TG_MUL(TG_SET1(alpha), x);
            if (beta != 0)
                x = TG_ADD(x, TG_MUL(TG_SET1(beta),
                                     TG_LOAD_MASKED(mask, c[r] + TG_LANES * v)));
            TG_STORE_MASKED(c[r] + TG_LANES * v, mask, x);
        }
    }
}

/* C = alpha op(A) B + beta C, op(A) (m x k): A^T when trans_a (A is k x m).
 * Blocks of 4 vectors of columns outside, so that B's panel stays in L1
 * while A's rows pass; past the last row a tile repeats it and stores only
 * the real ones. */
PYNN_TG_TARGET static void TG_NAME(pynn_tg_rows)(int trans_a, int m, int n, int k,
                                                 TG_T alpha, const TG_T *A, int lda,
                                                 const TG_T *B, int ldb, TG_T beta,
                                                 TG_T *C, int ldc)
{
    size_t si = trans_a ? 1 : (size_t)lda, sk = trans_a ? (size_t)lda : 1;
    const TG_T *a[4];
    TG_T *c[4];
    int i0, j0, r, i, rows, cols, nv;
    TG_MASK last;
    for (j0 = 0; j0 < n; j0 += 4 * TG_LANES) {
        cols = n - j0 < 4 * TG_LANES ? n - j0 : 4 * TG_LANES;
        nv = (cols + TG_LANES - 1) / TG_LANES;
        last = cols % TG_LANES ? (TG_MASK)((1u << (cols % TG_LANES)) - 1) : (TG_MASK)-1;
        for (i0 = 0; i0 < m; i0 += 4) {
            rows = m - i0 < 4 ? m - i0 : 4;
            for (r = 0; r < 4; r++) {
                i = i0 + (r < rows ? r : rows - 1);
                a[r] = A + i * si;
                c[r] = C + (size_t)i * ldc + j0;
            }
            switch (nv) {
            case 4:
                TG_NAME(pynn_tg_rows_tile)(4, k, a, sk, B + j0, ldb, last, alpha, beta, c, rows);
                break;
            case 3:
                TG_NAME(pynn_tg_rows_tile)(3, k, a, sk, B + j0, ldb, last, alpha, beta, c, rows);
                break;
            case 2:
                TG_NAME(pynn_tg_rows_tile)(2, k, a, sk, B + j0, ldb, last, alpha, beta, c, rows);
                break;
            default:
                TG_NAME(pynn_tg_rows_tile)(1, k, a, sk, B + j0, ldb, last, alpha, beta, c, rows);
            }
        }
    }
}

/* C = alpha op(A) op(B) + beta C on the tiles, for a shape that fits, on
 * a CPU that runs them (the caller has checked both) */
static inline void TG_NAME(pynn_tg_run)(int trans_a, int trans_b, int m, int n, int k,
                                        TG_T alpha, const TG_T *A, int lda, const TG_T *B,
                                        int ldb, TG_T beta, TG_T *C, int ldc)
{
    if (trans_b)
        TG_NAME(pynn_tg_nt)(m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
    else
        TG_NAME(pynn_tg_rows)(trans_a, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* pynn_tg_run_? when pynn_tg_takes the product; 0 when not, for the
 * caller to multiply elsewhere */
static inline int TG_NAME(pynn_tg_gemm)(int trans_a, int trans_b, int m, int n, int k,
                                        TG_T alpha, const TG_T *A, int lda, const TG_T *B,
                                        int ldb, TG_T beta, TG_T *C, int ldc)
{
    if (!pynn_tg_takes(TG_IS_DOUBLE, trans_a, trans_b, m, n, k))
        return 0;
    TG_NAME(pynn_tg_run)(trans_a, trans_b, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
    return 1;
}
