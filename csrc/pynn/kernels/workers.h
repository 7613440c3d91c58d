/* A second core for the element-wise passes that run outside GEMM.
 *
 * One helper thread per extension module that includes this header (in
 * practice pynn._dense; pynn._optim's own only when asked for), started on
 * first use.  A caller hands it one task, a function and its argument, runs
 * its own share of the pass meanwhile, then waits for the helper to finish:
 *
 *     if (!pynn_worker_start(fn, &second_half)) fn(&second_half);
 *     fn(&first_half);
 *     if (started && !pynn_worker_join()) fn(&second_half);
 *
 * The helper sleeps on a condition variable between tasks (a futex wait),
 * so that it never takes turns from the BLAS's threads while a product
 * runs, and it only runs while its caller waits for it: at most two
 * threads compute at once, the BLAS pool's being idle in between.  The
 * exception is a task handed over with spin set (see PYNN_WORKER_SPIN_NS):
 * the halves of a step whose products run on one thread each, where no
 * BLAS pool runs and a wake-up per half would cost more than the half.
 * A caller that finishes its share before the helper has even begun (the
 * other core busy with other work, or a wake-up slower than the share)
 * takes the task back and runs it itself: a loaded machine costs a pass
 * no more than one thread would.
 *
 * One helper, shared: a caller that finds it busy (another Python thread,
 * another network, in the middle of its own pass) does not wait for it but
 * runs both shares itself (start returns 0).  On two cores two callers
 * already fill the machine; a helper per caller could only oversubscribe.
 * Either way each share computes the same values, so the results do not
 * depend on who ran what.
 *
 * The helper runs each task in its caller's floating-point control mode
 * (x86 MXCSR, AArch64 FPCR): the flush-to-zero set on entry to a compiled
 * call (fpenv.h) is per thread and must hold on both shares, or the two
 * threads would round subnormals differently.  It blocks every signal, so
 * that they go to the interpreter's threads.  After fork the child has no
 * helper: a pthread_atfork handler forgets it, and the child's first
 * parallel pass starts a new one.  If a helper cannot be started, every
 * pass runs on the calling thread.
 *
 * pynn_worker_count(0) counts the tasks the helper has run and
 * pynn_worker_count(1) those handed to it (run by it or taken back), for
 * the tests (found through ctypes in the module's symbol table, as
 * blas_backend.h's pointers are).
 */
#ifndef PYNN_WORKERS_H
#define PYNN_WORKERS_H

#include <pthread.h>
#include <signal.h>
#include <time.h>

#if defined(__x86_64__) || defined(_M_X64) || (defined(__i386__) && defined(__SSE2__))
#include <xmmintrin.h>
typedef unsigned int pynn_fpmode_t;
static inline pynn_fpmode_t pynn_fpmode_get(void) { return _mm_getcsr(); }
static inline void pynn_fpmode_set(pynn_fpmode_t m) { _mm_setcsr(m); }
#elif defined(__aarch64__)
typedef unsigned long pynn_fpmode_t;
static inline pynn_fpmode_t pynn_fpmode_get(void) {
    unsigned long m;
    __asm__ __volatile__("mrs %0, fpcr" : "=r"(m));
    return m;
}
static inline void pynn_fpmode_set(pynn_fpmode_t m) {
    __asm__ __volatile__("msr fpcr, %0" : : "r"(m));
}
#else
typedef int pynn_fpmode_t;
static inline pynn_fpmode_t pynn_fpmode_get(void) { return 0; }
static inline void pynn_fpmode_set(pynn_fpmode_t m) { (void)m; }
#endif

#if defined(_WIN32)
#define PYNN_WORKERS_EXPORT __declspec(dllexport)
#else
#define PYNN_WORKERS_EXPORT __attribute__((visibility("default")))
#endif

/* a module that includes the header without a parallel pass uses none of it */
#if defined(__GNUC__)
#define PYNN_WORKERS_STATIC static __attribute__((unused))
#else
#define PYNN_WORKERS_STATIC static
#endif

typedef void (*pynn_task_fn)(void *arg);

PYNN_WORKERS_STATIC struct {
    pthread_mutex_t mutex;      /* guards every field below */
    pthread_cond_t task_ready;  /* the helper waits here for a task */
    pthread_cond_t task_done;   /* the owner waits here for its end */
    int state;                  /* 0 none yet, 1 running, -1 could not start */
    int owned;                  /* a caller holds the helper from start to join */
    int has_task;               /* set by the owner, cleared when done or taken back */
    int running;                /* the helper has begun the task */
    pynn_task_fn fn;
    void *arg;
    pynn_fpmode_t fpmode;
    long long tasks;            /* tasks the helper has run */
    long long handoffs;         /* tasks handed to it */
    int spin;                   /* the last task asked the helper to stay awake */
} pynn_worker = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
                 PTHREAD_COND_INITIALIZER, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};

/* Waking a sleeping thread costs a system call and a context switch on each
 * side, tens of microseconds in all on a virtual machine: more than a share
 * of a mid-sized step's products.  A task handed over with spin set (the
 * split products of dense.pyx, which come several to a step and step after
 * step) keeps both threads awake: the helper polls for the next task for up
 * to PYNN_WORKER_SPIN_NS after it, and the owner polls for the end of the
 * helper's share before it sleeps on it.  The other tasks (the element-wise
 * passes of big steps, between which the BLAS's own threads run) never spin. */
#define PYNN_WORKER_SPIN_NS 200000LL

static inline long long pynn_worker_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static inline void pynn_worker_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Poll *flag (a field of pynn_worker, read without the mutex: only a hint,
 * confirmed under it) until it equals want or PYNN_WORKER_SPIN_NS pass. */
static inline void pynn_worker_poll(const int *flag, int want)
{
    long long deadline = pynn_worker_now_ns() + PYNN_WORKER_SPIN_NS;
    int i;
    for (;;) {
        for (i = 0; i < 64; i++) {
            if (__atomic_load_n(flag, __ATOMIC_ACQUIRE) == want)
                return;
            pynn_worker_pause();
        }
        if (pynn_worker_now_ns() > deadline)
            return;
    }
}

PYNN_WORKERS_STATIC void *pynn_worker_main(void *unused)
{
    pynn_task_fn fn;
    void *arg;
    (void)unused;
    pthread_mutex_lock(&pynn_worker.mutex);
    for (;;) {
        if (!pynn_worker.has_task && pynn_worker.spin) {
            pthread_mutex_unlock(&pynn_worker.mutex);
            pynn_worker_poll(&pynn_worker.has_task, 1);
            pthread_mutex_lock(&pynn_worker.mutex);
        }
        while (!pynn_worker.has_task)
            pthread_cond_wait(&pynn_worker.task_ready, &pynn_worker.mutex);
        fn = pynn_worker.fn;
        arg = pynn_worker.arg;
        pynn_fpmode_set(pynn_worker.fpmode);
        pynn_worker.running = 1;
        pthread_mutex_unlock(&pynn_worker.mutex);
        fn(arg);
        pthread_mutex_lock(&pynn_worker.mutex);
        pynn_worker.tasks++;
        pynn_worker.running = 0;
        __atomic_store_n(&pynn_worker.has_task, 0, __ATOMIC_RELEASE);
        pthread_cond_signal(&pynn_worker.task_done);
    }
    return NULL;
}

PYNN_WORKERS_STATIC void pynn_worker_after_fork_child(void)
{
    /* the child has only the thread that forked: no helper, no owner */
    pthread_mutex_init(&pynn_worker.mutex, NULL);
    pthread_cond_init(&pynn_worker.task_ready, NULL);
    pthread_cond_init(&pynn_worker.task_done, NULL);
    pynn_worker.state = 0;
    pynn_worker.owned = 0;
    pynn_worker.has_task = 0;
    pynn_worker.running = 0;
    pynn_worker.spin = 0;
}

PYNN_WORKERS_STATIC int pynn_worker_launch(void)
{
    /* with the mutex held; 1 when the helper runs */
    static int fork_handler = 0;
    pthread_t thread;
    pthread_attr_t attr;
    sigset_t all, old;
    int ok;
    if (!fork_handler) {
        if (pthread_atfork(NULL, NULL, pynn_worker_after_fork_child) != 0)
            return 0;
        fork_handler = 1;
    }
    if (pthread_attr_init(&attr) != 0)
        return 0;
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    /* the helper's loops need little stack */
    pthread_attr_setstacksize(&attr, 1 << 20);
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);   /* inherited by the helper */
    ok = pthread_create(&thread, &attr, pynn_worker_main, NULL) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    return ok;
}

/* Hand fn(arg) to the helper: 1 when it takes it (join it later), 0 when the
 * caller must run it itself (the helper busy with another caller's task, or
 * unavailable).  spin: keep both threads polling around it (above). */
PYNN_WORKERS_STATIC int pynn_worker_start_spin(pynn_task_fn fn, void *arg, int spin)
{
    int taken = 0;
    pthread_mutex_lock(&pynn_worker.mutex);
    if (pynn_worker.state == 0)
        pynn_worker.state = pynn_worker_launch() ? 1 : -1;
    if (pynn_worker.state == 1 && !pynn_worker.owned) {
        pynn_worker.owned = 1;
        pynn_worker.fn = fn;
        pynn_worker.arg = arg;
        pynn_worker.fpmode = pynn_fpmode_get();
        pynn_worker.spin = spin;
        __atomic_store_n(&pynn_worker.has_task, 1, __ATOMIC_RELEASE);
        pynn_worker.handoffs++;
        pthread_cond_signal(&pynn_worker.task_ready);
        taken = 1;
    }
    pthread_mutex_unlock(&pynn_worker.mutex);
    return taken;
}

PYNN_WORKERS_STATIC int pynn_worker_start(pynn_task_fn fn, void *arg)
{
    return pynn_worker_start_spin(fn, arg, 0);
}

/* After the caller's own share: 1 once the helper has run the task handed
 * over by pynn_worker_start (waiting for it to finish), 0 when the helper
 * had not begun it, which the caller then runs itself. */
PYNN_WORKERS_STATIC int pynn_worker_join(void)
{
    int ran = 1;
    pthread_mutex_lock(&pynn_worker.mutex);
    if (pynn_worker.has_task && !pynn_worker.running) {
        pynn_worker.has_task = 0;       /* taken back */
        ran = 0;
    }
    if (pynn_worker.has_task && pynn_worker.spin) {
        pthread_mutex_unlock(&pynn_worker.mutex);
        pynn_worker_poll(&pynn_worker.has_task, 0);
        pthread_mutex_lock(&pynn_worker.mutex);
    }
    while (pynn_worker.has_task)
        pthread_cond_wait(&pynn_worker.task_done, &pynn_worker.mutex);
    pynn_worker.owned = 0;
    pthread_mutex_unlock(&pynn_worker.mutex);
    return ran;
}

/* handoffs 0: the tasks the helper has run; 1: those handed to it */
PYNN_WORKERS_EXPORT long long pynn_worker_count(int handoffs)
{
    long long n;
    pthread_mutex_lock(&pynn_worker.mutex);
    n = handoffs ? pynn_worker.handoffs : pynn_worker.tasks;
    pthread_mutex_unlock(&pynn_worker.mutex);
    return n;
}

#endif
