# Parameter updates over the flat parameter buffer, one fused pass.
#
# hyper holds the optimizer's settings as doubles, cast once to the storage
# type so that a float32 model updates in float32 arithmetic, exactly as the
# NumPy formula written with float32 arrays does:
#   SGD:  hyper = [learning_rate, momentum, nesterov, weight_decay]
#   Adam: hyper = [learning_rate, beta_1, beta_2, epsilon, weight_decay, t]
#         (t = the 1-based number of this step, for the bias corrections)
from cython cimport floating
from libc.float cimport DBL_MAX, FLT_MAX
from libc.math cimport fabs, pow, sqrt

cdef enum:
    OPT_SGD = 0
    OPT_ADAM = 1
    # hyper[HYPER_STEP] is the number of updates applied before this one:
    # the compiled epoch loop advances it after each update it applies, so
    # step-dependent settings (Adam's bias corrections) stay right in a loop
    # that never returns to Python.
    HYPER_STEP = 15


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


cdef inline void adam_update(floating* w, const floating* g, floating* state,
                             Py_ssize_t n_params, Py_ssize_t decay_end,
                             const double* hyper) noexcept nogil:
    # Kingma & Ba, Algorithm 1, with state = [m (n_params), v (n_params)]:
    #   g += wd * w                                (kernels only, as SGD)
    #   m = b1 * m + (1 - b1) * g;  v = b2 * v + (1 - b2) * g * g
    #   w -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
    # The bias corrections are computed in double, then everything runs in
    # the storage type, in the order pynn/reference.py adam_update writes it.
    cdef floating lr = <floating>hyper[0]
    cdef floating b1 = <floating>hyper[1]
    cdef floating b2 = <floating>hyper[2]
    cdef floating eps = <floating>hyper[3]
    cdef floating wd = <floating>hyper[4]
    cdef floating c1 = <floating>(1.0 - hyper[1])
    cdef floating c2 = <floating>(1.0 - hyper[2])
    cdef double t = hyper[HYPER_STEP] + 1
    cdef floating bc1 = <floating>(1.0 - pow(hyper[1], t))
    cdef floating bc2 = <floating>(1.0 - pow(hyper[2], t))
    cdef floating* m = state
    cdef floating* v = state + n_params
    cdef floating gi, mi, vi, root
    cdef Py_ssize_t i
    for i in range(n_params):
        gi = g[i]
        if wd != 0 and i < decay_end:
            gi = gi + wd * w[i]
        mi = b1 * m[i] + c1 * gi
        vi = b2 * v[i] + c2 * gi * gi
        m[i] = mi
        v[i] = vi
        # sqrt in double, rounded once to float: the correctly rounded
        # float square root, so float32 matches NumPy's np.sqrt exactly
        root = <floating>sqrt(<double>(vi / bc2))
        w[i] = w[i] - lr * (mi / bc1) / (root + eps)


# ---- the same updates, computed without writing: are their results finite?
#
# Finite gradients can still give non-finite parameters or state (Adam's
# g * g overflowing float32, a huge learning rate times a large gradient).
# A step is applied only if every value it would write is finite, so that a
# refused step leaves the model exactly as it was.  |x| <= max is false for
# inf and NaN alike; OR-ing such flags vectorises (a float sum would not).
# The expressions are those of the updates above.

cdef inline int _sgd_range_check(const floating* w, const floating* g,
                                 const floating* v, Py_ssize_t start,
                                 Py_ssize_t stop, floating lr, floating mu,
                                 bint nesterov, floating wd) noexcept nogil:
    # 1 when some value the update would write is NaN or infinite
    cdef Py_ssize_t i
    cdef floating gi, vi, wi
    cdef floating big = FLT_MAX if floating is float else DBL_MAX
    cdef int bad = 0
    if mu == 0:
        for i in range(start, stop):
            wi = w[i] - lr * (g[i] + wd * w[i]) if wd != 0 else w[i] - lr * g[i]
            bad |= not (fabs(wi) <= big)
    elif nesterov:
        for i in range(start, stop):
            gi = g[i] + wd * w[i] if wd != 0 else g[i]
            vi = mu * v[i] - lr * gi
            wi = w[i] + (mu * vi - lr * gi)
            bad |= (not (fabs(vi) <= big)) | (not (fabs(wi) <= big))
    else:
        for i in range(start, stop):
            gi = g[i] + wd * w[i] if wd != 0 else g[i]
            vi = mu * v[i] - lr * gi
            wi = w[i] + vi
            bad |= (not (fabs(vi) <= big)) | (not (fabs(wi) <= big))
    return bad


cdef inline bint _adam_check(const floating* w, const floating* g,
                             const floating* state, Py_ssize_t n_params,
                             Py_ssize_t decay_end, const double* hyper) noexcept nogil:
    cdef floating lr = <floating>hyper[0]
    cdef floating b1 = <floating>hyper[1]
    cdef floating b2 = <floating>hyper[2]
    cdef floating eps = <floating>hyper[3]
    cdef floating wd = <floating>hyper[4]
    cdef floating c1 = <floating>(1.0 - hyper[1])
    cdef floating c2 = <floating>(1.0 - hyper[2])
    cdef double t = hyper[HYPER_STEP] + 1
    cdef floating bc1 = <floating>(1.0 - pow(hyper[1], t))
    cdef floating bc2 = <floating>(1.0 - pow(hyper[2], t))
    cdef const floating* m = state
    cdef const floating* v = state + n_params
    cdef floating gi, mi, vi, root, wi, bound
    cdef floating big = FLT_MAX if floating is float else DBL_MAX
    cdef floating half = big / 2
    # |w - lr m_hat / (sqrt(v_hat) + eps)| <= |w| + lr |m_hat| / eps: when
    # that bound is below half the range (a margin far wider than rounding),
    # the new weight is finite and its exact value (a division and a square
    # root, the costly part) need not be computed.  It nearly always is.
    cdef floating lr_over_eps_bc1 = <floating>(hyper[0] / (hyper[3] * (1.0 - pow(hyper[1], t))))
    cdef int bad = 0, exact = 0
    cdef Py_ssize_t i
    for i in range(n_params):               # no calls: vectorisable
        gi = g[i]
        if wd != 0 and i < decay_end:
            gi = gi + wd * w[i]
        mi = b1 * m[i] + c1 * gi
        vi = b2 * v[i] + c2 * gi * gi
        # comparisons are false for NaN too; an OR of them vectorises
        bad |= (not (fabs(mi) <= big)) | (not (vi <= big))
        bound = fabs(w[i]) + lr_over_eps_bc1 * fabs(mi)
        exact |= not (bound <= half)
    if exact and not bad:                   # rare: some step may overflow
        for i in range(n_params):
            gi = g[i]
            if wd != 0 and i < decay_end:
                gi = gi + wd * w[i]
            mi = b1 * m[i] + c1 * gi
            vi = b2 * v[i] + c2 * gi * gi
            root = <floating>sqrt(<double>(vi / bc2))
            wi = w[i] - lr * (mi / bc1) / (root + eps)
            bad |= not (fabs(wi) <= big)
    return bad == 0


cdef inline bint update_is_finite(int code, const floating* w, const floating* g,
                                  const floating* state, Py_ssize_t n_params,
                                  Py_ssize_t decay_end,
                                  const double* hyper) noexcept nogil:
    """Would optimizer_step write only finite values?"""
    cdef floating lr, mu, wd
    cdef bint nesterov
    if code == OPT_SGD:
        lr = <floating>hyper[0]
        mu = <floating>hyper[1]
        nesterov = hyper[2] != 0
        wd = <floating>hyper[3]
        return not (_sgd_range_check(w, g, state, 0, decay_end, lr, mu, nesterov, wd)
                    or _sgd_range_check(w, g, state, decay_end, n_params, lr, mu,
                                        nesterov, 0))
    if code == OPT_ADAM:
        return _adam_check(w, g, state, n_params, decay_end, hyper)
    return True


cdef inline int optimizer_step(int code, floating* w, const floating* g,
                               floating* state, Py_ssize_t n_params,
                               Py_ssize_t decay_end,
                               const double* hyper) noexcept nogil:
    if code == OPT_SGD:
        sgd_update(w, g, state, n_params, decay_end, hyper)
        return 0
    if code == OPT_ADAM:
        adam_update(w, g, state, n_params, decay_end, hyper)
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
