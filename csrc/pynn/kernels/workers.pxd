# The helper thread of workers.h: a second core for the element-wise passes
# (run_pair below is how the kernels use it).
cdef extern from "workers.h" nogil:
    ctypedef void (*task_fn "pynn_task_fn")(void* arg) noexcept nogil
    bint worker_start "pynn_worker_start"(task_fn fn, void* arg) noexcept
    bint worker_start_spin "pynn_worker_start_spin"(task_fn fn, void* arg, int spin) noexcept
    bint worker_join "pynn_worker_join"() noexcept


cdef inline void run_pair(task_fn fn, void* first, void* second) noexcept nogil:
    """fn(first) on the calling thread and fn(second) on the helper, at
    once when the helper is free and gets to it while the caller runs its
    share; both on the calling thread otherwise."""
    if worker_start(fn, second):
        fn(first)
        if not worker_join():
            fn(second)
    else:
        fn(second)
        fn(first)


cdef inline void run_pair_spinning(task_fn fn, void* first, void* second) noexcept nogil:
    """run_pair for passes that come several to a step, step after step (the
    split products of dense.pyx): the helper stays awake after it, polling
    for the next, and the caller polls for its end (workers.h)."""
    if worker_start_spin(fn, second, 1):
        fn(first)
        if not worker_join():
            fn(second)
    else:
        fn(second)
        fn(first)
