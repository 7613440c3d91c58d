# Parameter updates over the flat parameter buffer, one fused pass.
#
# hyper holds the optimizer's settings as doubles, cast once to the storage
# type so that a float32 model updates in float32 arithmetic, exactly as the
# NumPy formula written with float32 arrays does:
#   SGD:  hyper = [learning_rate, momentum, nesterov, weight_decay]
from cython cimport floating

cdef enum:
    OPT_SGD = 0


cdef inline void _sgd_range(floating* w, const floating* g, floating* v,
                            Py_ssize_t start, Py_ssize_t stop, floating lr,
                            floating mu, bint nesterov, floating wd) noexcept nogil:
    # One loop per case, so that each is branch-free and the compiler can
    # vectorise it; the arithmetic is the same in every case:
    #   g' = g + wd w;  v = mu v - lr g';  w = w + v  or  w + (mu v - lr g')
    cdef Py_ssize_t i
    cdef floating gi, vi
    if mu == 0:
        if wd == 0:
            for i in range(start, stop):
                w[i] = w[i] - lr * g[i]
        else:
            for i in range(start, stop):
                w[i] = w[i] - lr * (g[i] + wd * w[i])
    elif nesterov:
        for i in range(start, stop):
            gi = g[i] + wd * w[i] if wd != 0 else g[i]
            vi = mu * v[i] - lr * gi
            v[i] = vi
            w[i] = w[i] + (mu * vi - lr * gi)
    else:
        for i in range(start, stop):
            gi = g[i] + wd * w[i] if wd != 0 else g[i]
            vi = mu * v[i] - lr * gi
            v[i] = vi
            w[i] = w[i] + vi


cdef inline void sgd_update(floating* w, const floating* g, floating* v,
                            Py_ssize_t n_params, Py_ssize_t decay_end,
                            const double* hyper) noexcept nogil:
    # g += wd * w   (L2 weight decay, on entries [0, decay_end): the kernels)
    # momentum 0:   w -= lr * g
    # classic:      v = mu * v - lr * g;  w += v
    # Nesterov:     v = mu * v - lr * g;  w += mu * v - lr * g
    cdef floating lr = <floating>hyper[0]
    cdef floating mu = <floating>hyper[1]
    cdef bint nesterov = hyper[2] != 0
    cdef floating wd = <floating>hyper[3]
    _sgd_range(w, g, v, 0, decay_end, lr, mu, nesterov, wd)
    _sgd_range(w, g, v, decay_end, n_params, lr, mu, nesterov, 0)


cdef inline int optimizer_step(int code, floating* w, const floating* g,
                               floating* state, Py_ssize_t n_params,
                               Py_ssize_t decay_end,
                               const double* hyper) noexcept nogil:
    if code == OPT_SGD:
        sgd_update(w, g, state, n_params, decay_end, hyper)
        return 0
    return -1


cdef inline bint all_finite(const floating* x, Py_ssize_t n) noexcept nogil:
    # Inf and NaN are exactly the values whose exponent bits are all ones, so
    # the largest magnitude bit pattern tells: an integer max-reduction, which
    # the compiler vectorises (a floating-point sum would not be).
    cdef Py_ssize_t i
    cdef unsigned int top32 = 0, bits32
    cdef unsigned long long top64 = 0, bits64
    if floating is float:
        for i in range(n):
            bits32 = (<const unsigned int*>x)[i] & 0x7fffffffU
            if bits32 > top32:
                top32 = bits32
        return top32 < 0x7f800000U
    else:
        for i in range(n):
            bits64 = (<const unsigned long long*>x)[i] & 0x7fffffffffffffffULL
            if bits64 > top64:
                top64 = bits64
        return top64 < 0x7ff0000000000000ULL
