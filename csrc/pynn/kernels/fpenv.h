/* Flush-to-zero for the duration of one compiled call.
 *
 * Subnormal floats (below FLT_MIN / DBL_MIN in magnitude) cost x86 cores a
 * microcode assist of about a hundred cycles per operation.  Training makes
 * them by the million: momentum multiplies small velocities by 0.9 every
 * step.  Each compiled entry point calls pynn_fpenv_enter() first, which
 * turns on FTZ (results that would be subnormal become zero) and DAZ
 * (subnormal inputs are read as zero), and pynn_fpenv_exit() last, which
 * puts the caller's control bits back, so that NumPy and user code outside
 * pynn keep IEEE gradual underflow.  The exception flags raised inside the
 * call are kept, as any floating-point work would leave them.
 *
 * The register is per thread: the BLAS's own worker threads keep theirs.
 */
#ifndef PYNN_FPENV_H
#define PYNN_FPENV_H

#if defined(__x86_64__) || defined(_M_X64) || (defined(__i386__) && defined(__SSE2__))
#include <xmmintrin.h>

typedef unsigned int pynn_fpenv_t;
#define PYNN_FPENV_MODE "flush-to-zero and denormals-are-zero (x86 MXCSR)"

static inline pynn_fpenv_t pynn_fpenv_enter(void) {
    unsigned int old = _mm_getcsr();
    _mm_setcsr(old | 0x8040u);          /* FTZ (bit 15) | DAZ (bit 6) */
    return old;
}

static inline void pynn_fpenv_exit(pynn_fpenv_t old) {
    /* the caller's control bits, with the status flags (bits 0-5) as now */
    _mm_setcsr((old & ~0x3Fu) | (_mm_getcsr() & 0x3Fu));
}

#elif defined(__aarch64__)

typedef unsigned long pynn_fpenv_t;
#define PYNN_FPENV_MODE "flush-to-zero (AArch64 FPCR.FZ)"

static inline pynn_fpenv_t pynn_fpenv_enter(void) {
    unsigned long old;
    __asm__ __volatile__("mrs %0, fpcr" : "=r"(old));
    __asm__ __volatile__("msr fpcr, %0" : : "r"(old | (1ul << 24)));
    return old;
}

static inline void pynn_fpenv_exit(pynn_fpenv_t old) {
    __asm__ __volatile__("msr fpcr, %0" : : "r"(old));
}

#else

typedef int pynn_fpenv_t;
#define PYNN_FPENV_MODE "IEEE gradual underflow (no flush-to-zero control on this processor)"

static inline pynn_fpenv_t pynn_fpenv_enter(void) { return 0; }
static inline void pynn_fpenv_exit(pynn_fpenv_t old) { (void)old; }

#endif
#endif
