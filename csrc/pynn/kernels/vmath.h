/* exp, tanh and sigmoid over arrays, in place, float and double, compiled
 * for several x86-64 instruction sets and chosen when the module loads.
 *
 * A wheel is built for baseline x86-64 (SSE2), so each array function is
 * compiled three times from the same per-element code: baseline, AVX2 and
 * AVX-512F (GCC's target attribute on a copy of the loop, which the compiler
 * then vectorises 4, 8 or 16 floats wide).  A constructor run at load picks
 * the widest the CPU and OS support (__builtin_cpu_supports checks both);
 * PYNN_VMATH=default|avx2|avx512f asks for a narrower one.  None of the
 * targets enables FMA, and the code has no reduction, so every path gives
 * the same bits for the same input: only the speed depends on the CPU.
 *
 * The approximations (per element, branch-free, so that they vectorise):
 *
 *   exp(x) = 2^k p(r),  k = nearest integer to x / ln 2,
 *            r = x - k ln2_hi - k ln2_lo  (Cody and Waite's two-part ln 2,
 *            ln2_hi with trailing zero bits so that k ln2_hi is exact),
 *            p(r) = 1 + (r + r^2 Q(r)), Q the minimax polynomial (Remez
 *            exchange on the relative error, csrc/vmath_remez.py) of
 *            (e^r - 1 - r) / r^2 on |r| <= ln2 / 2: degree 4 for float
 *            (relative error of Q 1.3e-7), 9 for double (2.3e-16); Q's share
 *            of p is at most 6%, so its error adds under 0.1 ulp.
 *            k is rounded by adding and subtracting 1.5 * 2^23 (2^52), which
 *            also leaves k in the low bits; 2^k is built from its bits in two
 *            halves, 2^(k/2) 2^(k - k/2), so that outputs down to the
 *            subnormal range are rounded once, and overflow gives inf.
 *   tanh(x) = sign(x) e / (e + 2), e = expm1(2|x|) = 2^k ((1 - 2^-k) + (r + r^2 Q(r)))
 *            (the same reduction; no cancellation near 0, where tanh x ~ x);
 *            |x| is clamped where tanh rounds to 1.
 *   sigmoid(x) = (x >= 0 ? 1 : e) / (1 + e),  e = exp(-|x|) <= 1: never
 *            overflows; 1 and 0 exactly far out, subnormal outputs below
 *            about -87.3 (float) and -708.4 (double) where the caller's mode
 *            keeps them.
 *
 * Errors in units in the last place of the result, against libm's long
 * double values, measured on a dense grid over each function's whole range
 * plus 5 million random points per function and dtype (float32 / float64):
 *   exp 1.014 / 1.036,  tanh 2.45 / 2.51,  sigmoid 2.25 / 2.17;
 * subnormal results within one step of the smallest subnormal.  The tests
 * hold every path to the bounds PYNN_VMATH_MAX_ULP_* below.  NaN gives NaN;
 * +-inf give the limits (exp: inf, 0; tanh: +-1; sigmoid: 1, 0).
 */
#ifndef PYNN_VMATH_H
#define PYNN_VMATH_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define PYNN_VMATH_X86 1
#else
#define PYNN_VMATH_X86 0
#endif

#if defined(__GNUC__)
#define PYNN_VM_INLINE static inline __attribute__((always_inline))
#define PYNN_VM_UNUSED __attribute__((unused))
#else
#define PYNN_VM_INLINE static inline
#define PYNN_VM_UNUSED
#endif

/* Without trapping maths GCC turns the clamps and selects below into
 * vector compares and blends on every target (with it, only AVX-512's masks
 * vectorise them).  The values are the same: no floating-point exception is
 * ever trapped, and the results never depend on the exception flags. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC optimize("no-trapping-math")
#endif

/* Bounds in ulps, just above the measured maxima, for both dtypes */
#define PYNN_VMATH_MAX_ULP_EXP 1.1
#define PYNN_VMATH_MAX_ULP_TANH 2.6
#define PYNN_VMATH_MAX_ULP_SIGMOID 2.3

/* ---------------------------------------------------------------- bits */

PYNN_VM_INLINE uint32_t pynn_vm_f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
PYNN_VM_INLINE float pynn_vm_u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
PYNN_VM_INLINE uint64_t pynn_vm_d2u(double d) { uint64_t u; memcpy(&u, &d, 8); return u; }
PYNN_VM_INLINE double pynn_vm_u2d(uint64_t u) { double d; memcpy(&d, &u, 8); return d; }

/* ----------------------------------------------------------- float */

#define PYNN_VM_F_SHIFT 12582912.0f            /* 1.5 * 2^23 */
#define PYNN_VM_F_LOG2E 1.44269504088896341f
#define PYNN_VM_F_LN2HI 0.693359375f           /* 9 significant bits */
#define PYNN_VM_F_LN2LO (-2.12194440e-4f)

/* (e^r - 1 - r) / r^2 on |r| <= ln2/2, minimax, degree 4 */
PYNN_VM_INLINE float pynn_vm_qf(float r)
{
    float q = 0.001390153425745666f;
    q = q * r + 0.008363739587366581f;
    q = q * r + 0.04166686162352562f;
    q = q * r + 0.16666573286056519f;
    q = q * r + 0.5f;
    return q;
}

/* x -> (k, r, k's bits) with x = k ln2 + r; the caller has clamped x */
PYNN_VM_INLINE float pynn_vm_reduce_f(float x, int32_t* k)
{
    float t = x * PYNN_VM_F_LOG2E + PYNN_VM_F_SHIFT;
    float kf = t - PYNN_VM_F_SHIFT;
    *k = (int32_t)(pynn_vm_f2u(t) - pynn_vm_f2u(PYNN_VM_F_SHIFT));
    return (x - kf * PYNN_VM_F_LN2HI) - kf * PYNN_VM_F_LN2LO;
}

PYNN_VM_INLINE float pynn_vm_pow2_f(int32_t k)
{
    return pynn_vm_u2f((uint32_t)(k + 127) << 23);
}

PYNN_VM_INLINE float pynn_vm_exp_f(float x)
{
    int32_t k, k1;
    float r, p;
    /* comparisons are false for NaN, which passes through */
    x = x > 89.0f ? 89.0f : x;        /* exp(89) > FLT_MAX: inf */
    x = x < -104.0f ? -104.0f : x;    /* exp(-104) rounds to 0 */
    r = pynn_vm_reduce_f(x, &k);
    p = 1.0f + (r + r * r * pynn_vm_qf(r));
    k1 = k >> 1;
    return p * pynn_vm_pow2_f(k1) * pynn_vm_pow2_f(k - k1);
}

/* expm1(u) for 0 <= u <= 20 */
PYNN_VM_INLINE float pynn_vm_expm1_pos_f(float u)
{
    int32_t k;
    float r = pynn_vm_reduce_f(u, &k);
    float c = 1.0f - pynn_vm_pow2_f(-k);
    return pynn_vm_pow2_f(k) * (c + (r + r * r * pynn_vm_qf(r)));
}

PYNN_VM_INLINE float pynn_vm_tanh_f(float x)
{
    uint32_t sign = pynn_vm_f2u(x) & 0x80000000u;
    float y = pynn_vm_u2f(pynn_vm_f2u(x) & 0x7fffffffu);
    float e;
    y = y > 10.0f ? 10.0f : y;         /* tanh rounds to 1 beyond 9.01 */
    e = pynn_vm_expm1_pos_f(y + y);
    return pynn_vm_u2f(pynn_vm_f2u(e / (e + 2.0f)) | sign);
}

PYNN_VM_INLINE float pynn_vm_sigmoid_f(float x)
{
    float e = pynn_vm_exp_f(-pynn_vm_u2f(pynn_vm_f2u(x) & 0x7fffffffu));
    return (x >= 0.0f ? 1.0f : e) / (1.0f + e);
}

/* ---------------------------------------------------------- double */

#define PYNN_VM_D_SHIFT 6755399441055744.0      /* 1.5 * 2^52 */
#define PYNN_VM_D_LOG2E 1.4426950408889634074
#define PYNN_VM_D_LN2HI 6.93147180369123816490e-01   /* 32 significant bits */
#define PYNN_VM_D_LN2LO 1.90821492927058770002e-10

/* (e^r - 1 - r) / r^2 on |r| <= ln2/2, minimax, degree 9 */
PYNN_VM_INLINE double pynn_vm_qd(double r)
{
    double q = 2.506848812820305e-08;
    q = q * r + 2.7621295193396375e-07;
    q = q * r + 2.7557356965576188e-06;
    q = q * r + 2.4801518747905056e-05;
    q = q * r + 0.00019841269781221372;
    q = q * r + 0.0013888888918857636;
    q = q * r + 0.008333333333358074;
    q = q * r + 0.04166666666662084;
    q = q * r + 0.1666666666666664;
    q = q * r + 0.5000000000000001;
    return q;
}

PYNN_VM_INLINE double pynn_vm_reduce_d(double x, int64_t* k)
{
    double t = x * PYNN_VM_D_LOG2E + PYNN_VM_D_SHIFT;
    double kf = t - PYNN_VM_D_SHIFT;
    *k = (int64_t)(pynn_vm_d2u(t) - pynn_vm_d2u(PYNN_VM_D_SHIFT));
    return (x - kf * PYNN_VM_D_LN2HI) - kf * PYNN_VM_D_LN2LO;
}

PYNN_VM_INLINE double pynn_vm_pow2_d(int64_t k)
{
    return pynn_vm_u2d((uint64_t)(k + 1023) << 52);
}

PYNN_VM_INLINE double pynn_vm_exp_d(double x)
{
    int64_t k, k1;
    double r, p;
    x = x > 710.0 ? 710.0 : x;        /* exp(710) > DBL_MAX: inf */
    x = x < -746.0 ? -746.0 : x;      /* exp(-746) rounds to 0 */
    r = pynn_vm_reduce_d(x, &k);
    p = 1.0 + (r + r * r * pynn_vm_qd(r));
    k1 = k >> 1;
    return p * pynn_vm_pow2_d(k1) * pynn_vm_pow2_d(k - k1);
}

/* expm1(u) for 0 <= u <= 40 */
PYNN_VM_INLINE double pynn_vm_expm1_pos_d(double u)
{
    int64_t k;
    double r = pynn_vm_reduce_d(u, &k);
    double c = 1.0 - pynn_vm_pow2_d(-k);
    return pynn_vm_pow2_d(k) * (c + (r + r * r * pynn_vm_qd(r)));
}

PYNN_VM_INLINE double pynn_vm_tanh_d(double x)
{
    uint64_t sign = pynn_vm_d2u(x) & 0x8000000000000000ull;
    double y = pynn_vm_u2d(pynn_vm_d2u(x) & 0x7fffffffffffffffull);
    double e;
    y = y > 20.0 ? 20.0 : y;           /* tanh rounds to 1 beyond 19.06 */
    e = pynn_vm_expm1_pos_d(y + y);
    return pynn_vm_u2d(pynn_vm_d2u(e / (e + 2.0)) | sign);
}

PYNN_VM_INLINE double pynn_vm_sigmoid_d(double x)
{
    double e = pynn_vm_exp_d(-pynn_vm_u2d(pynn_vm_d2u(x) & 0x7fffffffffffffffull));
    return (x >= 0.0 ? 1.0 : e) / (1.0 + e);
}

/* ------------------------------------------- the loops, once per ISA */

typedef void (*pynn_vfunc_f)(float* z, ptrdiff_t n);
typedef void (*pynn_vfunc_d)(double* z, ptrdiff_t n);

typedef struct {
    pynn_vfunc_f exp_f, tanh_f, sigmoid_f;
    pynn_vfunc_d exp_d, tanh_d, sigmoid_d;
} pynn_vmath_table;

#define PYNN_VM_LOOP(NAME, T, ELEM, TARGET)                                  \
    TARGET PYNN_VM_UNUSED static void NAME(T* z, ptrdiff_t n)                              \
    {                                                                       \
        ptrdiff_t i;                                                        \
        for (i = 0; i < n; i++) z[i] = ELEM(z[i]);                          \
    }

#define PYNN_VM_ISA(SUFFIX, TARGET)                                          \
    PYNN_VM_LOOP(pynn_vexp_f_##SUFFIX, float, pynn_vm_exp_f, TARGET)         \
    PYNN_VM_LOOP(pynn_vtanh_f_##SUFFIX, float, pynn_vm_tanh_f, TARGET)       \
    PYNN_VM_LOOP(pynn_vsigmoid_f_##SUFFIX, float, pynn_vm_sigmoid_f, TARGET) \
    PYNN_VM_LOOP(pynn_vexp_d_##SUFFIX, double, pynn_vm_exp_d, TARGET)        \
    PYNN_VM_LOOP(pynn_vtanh_d_##SUFFIX, double, pynn_vm_tanh_d, TARGET)      \
    PYNN_VM_LOOP(pynn_vsigmoid_d_##SUFFIX, double, pynn_vm_sigmoid_d, TARGET)

#define PYNN_VM_ROW(SUFFIX)                                                  \
    {pynn_vexp_f_##SUFFIX, pynn_vtanh_f_##SUFFIX, pynn_vsigmoid_f_##SUFFIX,  \
     pynn_vexp_d_##SUFFIX, pynn_vtanh_d_##SUFFIX, pynn_vsigmoid_d_##SUFFIX}

enum { PYNN_VMATH_DEFAULT = 0, PYNN_VMATH_AVX2 = 1, PYNN_VMATH_AVX512F = 2,
       PYNN_VMATH_N_ISA = 3 };
static const char* const pynn_vmath_isa_names[PYNN_VMATH_N_ISA] = {
    "default", "avx2", "avx512f"};

PYNN_VM_ISA(default, )
#if PYNN_VMATH_X86
PYNN_VM_ISA(avx2, __attribute__((target("avx2"))))
PYNN_VM_ISA(avx512f, __attribute__((target("avx512f"))))
static const pynn_vmath_table pynn_vmath_tables[PYNN_VMATH_N_ISA] = {
    PYNN_VM_ROW(default), PYNN_VM_ROW(avx2), PYNN_VM_ROW(avx512f)};
#else
static const pynn_vmath_table pynn_vmath_tables[PYNN_VMATH_N_ISA] = {
    PYNN_VM_ROW(default), PYNN_VM_ROW(default), PYNN_VM_ROW(default)};
#endif

/* ----------------------------------------------------------- dispatch */

/* 1 when this CPU (and its OS) runs the given path */
PYNN_VM_UNUSED static int pynn_vmath_supported(int isa)
{
    if (isa == PYNN_VMATH_DEFAULT) return 1;
#if PYNN_VMATH_X86
    __builtin_cpu_init();
    if (isa == PYNN_VMATH_AVX2) return __builtin_cpu_supports("avx2") != 0;
    if (isa == PYNN_VMATH_AVX512F) return __builtin_cpu_supports("avx512f") != 0;
#endif
    return 0;
}

/* the path in use in this module, and what PYNN_VMATH asked for:
 * 0 nothing, 1 honoured, -1 not understood, -2 not supported here */
static int pynn_vmath_isa = PYNN_VMATH_DEFAULT;
static int pynn_vmath_request = 0;
static pynn_vmath_table pynn_vmath = PYNN_VM_ROW(default);

PYNN_VM_UNUSED static void pynn_vmath_choose(void)
{
    const char* want = getenv("PYNN_VMATH");
    int isa, best = PYNN_VMATH_DEFAULT;
    for (isa = PYNN_VMATH_N_ISA - 1; isa > PYNN_VMATH_DEFAULT; isa--)
        if (pynn_vmath_supported(isa)) { best = isa; break; }
    pynn_vmath_request = 0;
    if (want != NULL && want[0] != '\0') {
        pynn_vmath_request = -1;
        for (isa = 0; isa < PYNN_VMATH_N_ISA; isa++) {
            if (strcmp(want, pynn_vmath_isa_names[isa]) == 0) {
                if (pynn_vmath_supported(isa)) { best = isa; pynn_vmath_request = 1; }
                else pynn_vmath_request = -2;
            }
        }
    }
    pynn_vmath_isa = best;
    pynn_vmath = pynn_vmath_tables[best];
}

#if defined(__GNUC__)
__attribute__((constructor)) static void pynn_vmath_init(void) { pynn_vmath_choose(); }
#endif

static inline void pynn_vexp_f(float* z, ptrdiff_t n) { pynn_vmath.exp_f(z, n); }
static inline void pynn_vtanh_f(float* z, ptrdiff_t n) { pynn_vmath.tanh_f(z, n); }
static inline void pynn_vsigmoid_f(float* z, ptrdiff_t n) { pynn_vmath.sigmoid_f(z, n); }
static inline void pynn_vexp_d(double* z, ptrdiff_t n) { pynn_vmath.exp_d(z, n); }
static inline void pynn_vtanh_d(double* z, ptrdiff_t n) { pynn_vmath.tanh_d(z, n); }
static inline void pynn_vsigmoid_d(double* z, ptrdiff_t n) { pynn_vmath.sigmoid_d(z, n); }

static inline const char* pynn_vmath_isa_name(void)
{
    return pynn_vmath_isa_names[pynn_vmath_isa];
}

/* func: 0 exp, 1 tanh, 2 sigmoid; on one given path (for tests and
 * benchmarks); returns -1 when the path does not run on this CPU */
PYNN_VM_UNUSED static int pynn_vmath_apply_f(int func, int isa, float* z, ptrdiff_t n)
{
    const pynn_vmath_table* t;
    if (isa < 0 || isa >= PYNN_VMATH_N_ISA || !pynn_vmath_supported(isa)) return -1;
    t = &pynn_vmath_tables[isa];
    (func == 0 ? t->exp_f : func == 1 ? t->tanh_f : t->sigmoid_f)(z, n);
    return 0;
}

PYNN_VM_UNUSED static int pynn_vmath_apply_d(int func, int isa, double* z, ptrdiff_t n)
{
    const pynn_vmath_table* t;
    if (isa < 0 || isa >= PYNN_VMATH_N_ISA || !pynn_vmath_supported(isa)) return -1;
    t = &pynn_vmath_tables[isa];
    (func == 0 ? t->exp_d : func == 1 ? t->tanh_d : t->sigmoid_d)(z, n);
    return 0;
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif

#endif /* PYNN_VMATH_H */
