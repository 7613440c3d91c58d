# The helper thread of workers.h: a second core for the element-wise passes.
#     if not worker_start(fn, &second):  fn(&second)   (then no join)
#     fn(&first)
#     worker_join()                                    (when start returned 1)
cdef extern from "workers.h" nogil:
    ctypedef void (*task_fn "pynn_task_fn")(void* arg) noexcept nogil
    bint worker_start "pynn_worker_start"(task_fn fn, void* arg) noexcept
    void worker_join "pynn_worker_join"() noexcept
    long long worker_tasks "pynn_worker_tasks"() noexcept


cdef inline void run_pair(task_fn fn, void* first, void* second) noexcept nogil:
    """fn(first) on the calling thread and fn(second) on the helper, at
    once when the helper is free; both on the calling thread otherwise."""
    if worker_start(fn, second):
        fn(first)
        worker_join()
    else:
        fn(second)
        fn(first)
