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
from libc.math cimport INFINITY, fabs, fabsf, isfinite, pow, sqrt

cdef enum:
    OPT_SGD = 0
    OPT_ADAM = 1
    # hyper[HYPER_STEP] is the number of updates applied before this one:
    # the compiled epoch loop advances it after each update it applies, so
    # step-dependent settings (Adam's bias corrections) stay right in a loop
    # that never returns to Python.
    HYPER_STEP = 15


cdef inline int fill_hyper(object hyper, double* out) except -1:
    """Copy an optimizer's settings (a sequence of at most 16 floats) into
    out[16], the slots it leaves out set to zero."""
    cdef Py_ssize_t i, n = len(hyper)
    if n > 16:
        raise ValueError(f"at most 16 optimizer settings, got {n}")
    for i in range(16):
        out[i] = hyper[i] if i < n else 0
    return 0


cdef inline floating _abs(floating x) noexcept nogil:
    # fabs of the storage type: libc's fabs would round-trip a float through
    # double, which keeps the compiler from vectorising the loops below
    if floating is float:
        return fabsf(x)
    else:
        return fabs(x)


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
# refused step leaves the model exactly as it was.  The test: x - x is 0 for
# a finite x and NaN for inf or NaN, so a sum of such terms is 0 exactly
# when every term was finite.  The sums run in four independent lanes (the
# compiler turns those into vector instructions; one running sum it may not
# reorder, so it would not), and they replace the separate finiteness check
# of the gradient: a NaN or inf in it reaches the values computed here.
# The expressions are those of the updates above; g + wd w is g when wd is 0
# (but for the sign of a zero, which no finiteness depends on).

cdef inline floating _plain_term(const floating* w, const floating* g, Py_ssize_t i,
                                 floating lr, floating wd) noexcept nogil:
    cdef floating wi = w[i] - lr * (g[i] + wd * w[i])
    return wi - wi


cdef inline floating _momentum_term(const floating* w, const floating* g, const floating* v,
                                    Py_ssize_t i, floating lr, floating mu, floating wd,
                                    bint nesterov) noexcept nogil:
    cdef floating gi = g[i] + wd * w[i]
    cdef floating vi = mu * v[i] - lr * gi
    cdef floating wi = w[i] + (mu * vi - lr * gi) if nesterov else w[i] + vi
    return (vi - vi) + (wi - wi)


cdef inline floating _adam_term(const floating* w, const floating* g, const floating* m,
                                const floating* v, Py_ssize_t i, floating b1, floating b2,
                                floating c1, floating c2, floating wd, floating k,
                                floating l1, floating ib2) noexcept nogil:
    # the new moments, and twice a bound on the new weight's magnitude:
    # |w - lr m_hat / (sqrt(v_hat) + eps)| <= |w| + (lr / (eps bc1)) |m|, and
    # twice the bound overflows exactly when the bound exceeds half the
    # range, a margin far wider than rounding (when it does, the exact new
    # weights decide: rare, and it needs the costly division and root)
    cdef floating gi = g[i] + wd * w[i]
    cdef floating mi = b1 * m[i] + c1 * gi
    cdef floating vi = b2 * v[i] + c2 * gi * gi
    cdef floating twice = 2 * (_abs(w[i]) + k * _abs(mi))
    # and the kernel's intermediates lr * (m / bc1) and v / bc2 (l1 = lr /
    # bc1, ib2 = 1 / bc2), which can overflow when the bound does not
    cdef floating step = 2 * (l1 * _abs(mi))
    cdef floating scaled = 2 * (vi * ib2)
    return (mi - mi) + (vi - vi) + (twice - twice) + (step - step) + (scaled - scaled)


cdef inline floating _sgd_range_check(const floating* w, const floating* g,
                                      const floating* v, Py_ssize_t start,
                                      Py_ssize_t stop, floating lr, floating mu,
                                      bint nesterov, floating wd) noexcept nogil:
    # 0 when every value the update would write is finite, NaN otherwise
    cdef Py_ssize_t i = start
    cdef floating a0 = 0, a1 = 0, a2 = 0, a3 = 0
    if mu == 0:
        while i + 4 <= stop:
            a0 += _plain_term(w, g, i, lr, wd)
            a1 += _plain_term(w, g, i + 1, lr, wd)
            a2 += _plain_term(w, g, i + 2, lr, wd)
            a3 += _plain_term(w, g, i + 3, lr, wd)
            i += 4
        while i < stop:
            a0 += _plain_term(w, g, i, lr, wd)
            i += 1
    elif nesterov:
        while i + 4 <= stop:
            a0 += _momentum_term(w, g, v, i, lr, mu, wd, True)
            a1 += _momentum_term(w, g, v, i + 1, lr, mu, wd, True)
            a2 += _momentum_term(w, g, v, i + 2, lr, mu, wd, True)
            a3 += _momentum_term(w, g, v, i + 3, lr, mu, wd, True)
            i += 4
        while i < stop:
            a0 += _momentum_term(w, g, v, i, lr, mu, wd, True)
            i += 1
    else:
        while i + 4 <= stop:
            a0 += _momentum_term(w, g, v, i, lr, mu, wd, False)
            a1 += _momentum_term(w, g, v, i + 1, lr, mu, wd, False)
            a2 += _momentum_term(w, g, v, i + 2, lr, mu, wd, False)
            a3 += _momentum_term(w, g, v, i + 3, lr, mu, wd, False)
            i += 4
        while i < stop:
            a0 += _momentum_term(w, g, v, i, lr, mu, wd, False)
            i += 1
    return (a0 + a1) + (a2 + a3)


cdef inline floating _adam_range_check(const floating* w, const floating* g,
                                       const floating* m, const floating* v,
                                       Py_ssize_t start, Py_ssize_t stop,
                                       floating b1, floating b2, floating c1,
                                       floating c2, floating wd, floating k,
                                       floating l1, floating ib2) noexcept nogil:
    # 0 when the new moments are finite and every new weight certainly is
    cdef Py_ssize_t i = start
    cdef floating a0 = 0, a1 = 0, a2 = 0, a3 = 0
    while i + 4 <= stop:
        a0 += _adam_term(w, g, m, v, i, b1, b2, c1, c2, wd, k, l1, ib2)
        a1 += _adam_term(w, g, m, v, i + 1, b1, b2, c1, c2, wd, k, l1, ib2)
        a2 += _adam_term(w, g, m, v, i + 2, b1, b2, c1, c2, wd, k, l1, ib2)
        a3 += _adam_term(w, g, m, v, i + 3, b1, b2, c1, c2, wd, k, l1, ib2)
        i += 4
    while i < stop:
        a0 += _adam_term(w, g, m, v, i, b1, b2, c1, c2, wd, k, l1, ib2)
        i += 1
    return (a0 + a1) + (a2 + a3)


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
    cdef floating k = <floating>(hyper[0] / (hyper[3] * (1.0 - pow(hyper[1], t))))
    cdef const floating* m = state
    cdef const floating* v = state + n_params
    cdef floating gi, mi, vi, root, wi, acc
    cdef Py_ssize_t i
    cdef floating l1 = <floating>(hyper[0] / (1.0 - pow(hyper[1], t)))
    cdef floating ib2 = <floating>(1.0 / (1.0 - pow(hyper[2], t)))
    acc = (_adam_range_check(w, g, m, v, 0, decay_end, b1, b2, c1, c2, wd, k, l1, ib2)
           + _adam_range_check(w, g, m, v, decay_end, n_params, b1, b2, c1, c2, 0, k, l1, ib2))
    if acc == 0:
        return True
    acc = 0
    for i in range(n_params):
        gi = g[i]
        if wd != 0 and i < decay_end:
            gi = gi + wd * w[i]
        mi = b1 * m[i] + c1 * gi
        vi = b2 * v[i] + c2 * gi * gi
        root = <floating>sqrt(<double>(vi / bc2))
        wi = w[i] - lr * (mi / bc1) / (root + eps)
        acc += (mi - mi) + (vi - vi) + (wi - wi)
    return acc == 0


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
        return (_sgd_range_check(w, g, state, 0, decay_end, lr, mu, nesterov, wd)
                + _sgd_range_check(w, g, state, decay_end, n_params, lr, mu,
                                   nesterov, 0)) == 0
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
    # x - x is 0 for finite x and NaN for inf or NaN; four lanes, as above
    cdef Py_ssize_t i = 0
    cdef floating a0 = 0, a1 = 0, a2 = 0, a3 = 0
    while i + 4 <= n:
        a0 += x[i] - x[i]
        a1 += x[i + 1] - x[i + 1]
        a2 += x[i + 2] - x[i + 2]
        a3 += x[i + 3] - x[i + 3]
        i += 4
    while i < n:
        a0 += x[i] - x[i]
        i += 1
    return (a0 + a1) + (a2 + a3) == 0


# ---- within one compiled loop: bounds instead of a second pass ----------
#
# The exact check above reads the parameters, the state and the gradient
# once more before each update.  Inside one compiled epoch nothing else
# touches the parameters, so after one exact check and update the loop can
# keep upper bounds on max |w| and on the state's largest magnitudes, and
# carry them through each update by the triangle inequality, knowing only a
# bound on max |g| (read in the gradient's finiteness pass, needed anyway).
# When the carried bounds stay below a quarter of the type's range, every
# value the update writes is certainly finite; otherwise the loop falls back
# to the exact check.  Bounds are in double with 1% slack for rounding.

cdef struct Bounds:
    bint valid
    double w            # >= max |w|  (measured as sum |w|, then carried)
    double s0           # >= max |state component 0| (SGD v; Adam m)
    double s1           # >= max |state component 1| (Adam v)


cdef inline double sum_abs_if_finite(const floating* x, Py_ssize_t n) noexcept nogil:
    # An upper bound of sum |x| (and so of max |x|), or inf when some x is
    # NaN or infinite (a NaN or inf makes the sum NaN or inf; so does a sum
    # past the type's range, and the caller then checks exactly).  A sum,
    # not a max: the compiler vectorises sums kept in lanes, not a max
    # written with comparisons (NaN semantics).  Summed in the storage type
    # for the same reason, and scaled up by the worst case of rounding: each
    # lane adds at most m = n/4 + 3 terms, which undercuts the exact sum by a
    # factor of at most 1 - 1.1 m u for m u below 1/4 (u the unit roundoff).
    cdef Py_ssize_t i = 0
    cdef floating a0 = 0, a1 = 0, a2 = 0, a3 = 0
    cdef double total
    cdef double m_u = (n / 4 + 3) * (5.960464477539063e-08 if floating is float
                                     else 1.1102230246251565e-16)
    while i + 4 <= n:
        a0 += _abs(x[i])
        a1 += _abs(x[i + 1])
        a2 += _abs(x[i + 2])
        a3 += _abs(x[i + 3])
        i += 4
    while i < n:
        a0 += _abs(x[i])
        i += 1
    total = (a0 + a1) + (a2 + a3)
    if not isfinite(total) or m_u >= 0.25:
        return INFINITY
    return total * (1 + 2 * m_u)


cdef inline void measure_bounds(int code, const floating* w, const floating* state,
                                Py_ssize_t n_params, const double* hyper,
                                Bounds* b) noexcept nogil:
    # exact maxima (the parameters and state are finite here); plain SGD
    # (momentum 0) has no state to read
    b.w = sum_abs_if_finite(w, n_params)
    b.s0 = b.s1 = 0
    if code == OPT_SGD and hyper[1] != 0:
        b.s0 = sum_abs_if_finite(state, n_params)
    elif code == OPT_ADAM:
        b.s0 = sum_abs_if_finite(state, n_params)
        b.s1 = sum_abs_if_finite(state + n_params, n_params)
    b.valid = True


cdef inline bint bounded_update_is_finite(int code, double max_g, const double* hyper,
                                          Bounds* b, bint single) noexcept nogil:
    # Carry the bounds through the update; True when its results are
    # certainly finite (the bounds then describe the parameters after it).
    # single: float32 storage.  Without valid bounds, False (check exactly).
    cdef double limit = (FLT_MAX if single else DBL_MAX) / 4
    cdef double lr = hyper[0], gp, w, s0, s1, t, k
    if not (b.valid and isfinite(max_g)):
        return False
    if code == OPT_SGD:
        gp = max_g + hyper[3] * b.w
        if not gp < limit:          # g + wd w itself must not overflow
            return False
        s0 = hyper[1] * b.s0 + lr * gp
        if hyper[1] == 0:
            w = b.w + lr * gp
        elif hyper[2] != 0:
            w = b.w + hyper[1] * s0 + lr * gp
        else:
            w = b.w + s0
        s1 = 0
    elif code == OPT_ADAM:
        gp = max_g + hyper[4] * b.w
        if not gp < limit:
            return False
        s0 = hyper[1] * b.s0 + (1 - hyper[1]) * gp
        s1 = hyper[2] * b.s1 + (1 - hyper[2]) * gp * gp
        t = hyper[HYPER_STEP] + 1
        k = lr / (hyper[3] * (1 - pow(hyper[1], t)))
        w = b.w + k * s0
        # the kernel's intermediates too: lr m / bc1 and v / bc2
        if not (lr * s0 / (1 - pow(hyper[1], t)) < limit
                and s1 / (1 - pow(hyper[2], t)) < limit):
            return False
    else:
        return False
    w *= 1.01
    s0 *= 1.01
    s1 *= 1.01
    if not (w < limit and s0 < limit and s1 < limit):
        return False
    b.w = w
    b.s0 = s0
    b.s1 = s1
    return True
