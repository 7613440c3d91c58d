# The helper thread of workers.h: a second core for the element-wise passes
# (run_pair below is how the kernels use it).
cdef extern from "workers.h" nogil:
    ctypedef void (*task_fn "pynn_task_fn")(void* arg) noexcept nogil
    bint worker_start "pynn_worker_start"(task_fn fn, void* arg) noexcept
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
