# Parameter updates over the flat parameter buffer.
#
# An optimizer's settings travel in one OptSettings struct, cast once to the
# storage type so that a float32 model updates in float32 arithmetic, exactly
# as the NumPy formula written with float32 arrays does.  Each optimizer's
# arithmetic is written once, as a per-element inline function (_sgd_element,
# _adam_element); the update loops, the exact finiteness check and the
# bounds below all use it.
from cython cimport floating
from libc.float cimport DBL_MAX, FLT_MAX
from libc.math cimport INFINITY, fabs, fabsf, isfinite, pow, sqrt

from codes cimport OPT_ADAM, OPT_SGD

cdef enum:
    # the Python side's settings sequence: SGD [learning_rate, momentum,
    # nesterov, weight_decay], Adam [learning_rate, beta_1, beta_2, epsilon,
    # weight_decay]; slot HYPER_STEP holds the number of updates applied
    # before this one (the compiled loops keep it themselves)
    HYPER_STEP = 15


cdef struct OptSettings:
    int code                # OPT_SGD or OPT_ADAM
    double learning_rate
    double weight_decay     # L2, added to the gradient of entries [0, decay_end)
    double momentum         # SGD
    bint nesterov           # SGD: the Keras form of Nesterov momentum
    double beta_1           # Adam
    double beta_2
    double epsilon
    double step             # updates applied before this one (Adam: t - 1)


cdef inline int fill_hyper(object hyper, double* out) except -1:
    """Copy an optimizer's settings (a sequence of at most 16 floats) into
    out[16], the slots it leaves out set to zero."""
    cdef Py_ssize_t i, n = len(hyper)
    if n > 16:
        raise ValueError(f"at most 16 optimizer settings, got {n}")
    for i in range(16):
        out[i] = hyper[i] if i < n else 0
    return 0


cdef inline OptSettings settings_of(int code, const double* hyper,
                                    double step) noexcept nogil:
    """The settings named, from the Python side's sequence (see HYPER_STEP)."""
    cdef OptSettings s
    s.code = code
    s.learning_rate = hyper[0]
    s.momentum = s.beta_1 = s.beta_2 = s.epsilon = s.weight_decay = 0
    s.nesterov = False
    if code == OPT_SGD:
        s.momentum = hyper[1]
        s.nesterov = hyper[2] != 0
        s.weight_decay = hyper[3]
    elif code == OPT_ADAM:
        s.beta_1 = hyper[1]
        s.beta_2 = hyper[2]
        s.epsilon = hyper[3]
        s.weight_decay = hyper[4]
    s.step = step
    return s


cdef inline floating _abs(floating x) noexcept nogil:
    # fabs of the storage type: libc's fabs would round-trip a float through
    # double, which keeps the compiler from vectorising the loops below
    if floating is float:
        return fabsf(x)
    else:
        return fabs(x)


cdef inline bint _bad(floating x) noexcept nogil:
    # NaN or infinite: a comparison, so that loops OR-ing it vectorise
    # (a floating-point sum would need reassociation to)
    if floating is float:
        return not (fabsf(x) <= FLT_MAX)
    else:
        return not (fabs(x) <= DBL_MAX)


# ---- SGD --------------------------------------------------------------------
#   g' = g + wd w           (L2 weight decay, entries [0, decay_end): the kernels)
#   momentum 0:  w = w - lr g'
#   classic:     v = mu v - lr g';  w = w + v
#   Nesterov:    v = mu v - lr g';  w = w + (mu v - lr g')

cdef inline floating _sgd_element(floating w, floating g, floating v, floating lr,
                                  floating mu, floating wd, bint decay, bint momentum,
                                  bint nesterov, floating* v_new) noexcept nogil:
    # the new weight; the new velocity in v_new (with momentum)
    cdef floating gp = g + wd * w if decay else g
    cdef floating vn
    if not momentum:
        return w - lr * gp
    vn = mu * v - lr * gp
    v_new[0] = vn
    if nesterov:
        return w + (mu * vn - lr * gp)
    return w + vn


cdef inline bint _sgd_range(floating* w, const floating* g, floating* v,
                            Py_ssize_t start, Py_ssize_t stop, floating lr,
                            floating mu, bint nesterov, floating wd,
                            bint store) noexcept nogil:
    # store: apply the update to [start, stop); otherwise only compute it and
    # return True when some value it would write is NaN or infinite.  One
    # loop per case, each branch-free, so that the compiler vectorises it.
    cdef Py_ssize_t i
    cdef floating wi, vi = 0
    cdef bint bad = False
    if mu == 0:
        if wd == 0:
            if store:
                for i in range(start, stop):
                    w[i] = _sgd_element(w[i], g[i], vi, lr, mu, wd, False, False, False, &vi)
            else:
                for i in range(start, stop):
                    bad |= _bad(_sgd_element(w[i], g[i], vi, lr, mu, wd, False, False,
                                             False, &vi))
        else:
            if store:
                for i in range(start, stop):
                    w[i] = _sgd_element(w[i], g[i], vi, lr, mu, wd, True, False, False, &vi)
            else:
                for i in range(start, stop):
                    bad |= _bad(_sgd_element(w[i], g[i], vi, lr, mu, wd, True, False,
                                             False, &vi))
    elif nesterov:
        if store:
            for i in range(start, stop):
                w[i] = _sgd_element(w[i], g[i], v[i], lr, mu, wd, wd != 0, True, True, &vi)
                v[i] = vi
        else:
            for i in range(start, stop):
                wi = _sgd_element(w[i], g[i], v[i], lr, mu, wd, wd != 0, True, True, &vi)
                bad |= _bad(wi) | _bad(vi)
    else:
        if store:
            for i in range(start, stop):
                w[i] = _sgd_element(w[i], g[i], v[i], lr, mu, wd, wd != 0, True, False, &vi)
                v[i] = vi
        else:
            for i in range(start, stop):
                wi = _sgd_element(w[i], g[i], v[i], lr, mu, wd, wd != 0, True, False, &vi)
                bad |= _bad(wi) | _bad(vi)
    return bad


cdef inline bint _sgd(floating* w, const floating* g, floating* v, Py_ssize_t n_params,
                      Py_ssize_t decay_end, const OptSettings* s, bint store) noexcept nogil:
    cdef floating lr = <floating>s.learning_rate
    cdef floating mu = <floating>s.momentum
    cdef floating wd = <floating>s.weight_decay
    cdef bint bad = _sgd_range(w, g, v, 0, decay_end, lr, mu, s.nesterov, wd, store)
    return _sgd_range(w, g, v, decay_end, n_params, lr, mu, s.nesterov, 0, store) or bad


# ---- Adam -------------------------------------------------------------------
# Kingma & Ba, Algorithm 1, with state = [m (n_params), v (n_params)]:
#   g' = g + wd w                                (kernels only, as SGD)
#   m = b1 m + (1 - b1) g';  v = b2 v + (1 - b2) g' g'
#   w = w - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
# The bias corrections are computed in double, then everything runs in the
# storage type, in the order pynn/reference.py adam_update writes it.

cdef struct AdamCoeffs:
    double lr, b1, b2, eps, c1, c2, bc1, bc2
    double k        # lr / (eps bc1): bounds |the weight's change| by k |m|
    double l1       # lr / bc1
    double ib2      # 1 / bc2


cdef inline AdamCoeffs _adam_coeffs(const OptSettings* s) noexcept nogil:
    cdef AdamCoeffs a
    cdef double t = s.step + 1
    a.lr = s.learning_rate
    a.b1 = s.beta_1
    a.b2 = s.beta_2
    a.eps = s.epsilon
    a.c1 = 1.0 - s.beta_1
    a.c2 = 1.0 - s.beta_2
    a.bc1 = 1.0 - pow(s.beta_1, t)
    a.bc2 = 1.0 - pow(s.beta_2, t)
    a.k = s.learning_rate / (s.epsilon * a.bc1)
    a.l1 = s.learning_rate / a.bc1
    a.ib2 = 1.0 / a.bc2
    return a


cdef inline floating _adam_element(floating w, floating g, floating m, floating v,
                                   floating lr, floating b1, floating b2, floating c1,
                                   floating c2, floating bc1, floating bc2, floating eps,
                                   floating wd, bint decay, floating* m_new,
                                   floating* v_new) noexcept nogil:
    cdef floating gp = g + wd * w if decay else g
    cdef floating mi = b1 * m + c1 * gp
    cdef floating vi = b2 * v + c2 * gp * gp
    m_new[0] = mi
    v_new[0] = vi
    # sqrt in double, rounded once to float: the correctly rounded float
    # square root, so float32 matches NumPy's np.sqrt exactly
    return w - lr * (mi / bc1) / (<floating>sqrt(<double>(vi / bc2)) + eps)


cdef inline bint _adam_cheap_bad(const floating* w, const floating* g, const floating* m,
                                 const floating* v, Py_ssize_t start, Py_ssize_t stop,
                                 const AdamCoeffs* a, floating wd,
                                 bint decay) noexcept nogil:
    # False when the new moments are finite and every new weight certainly
    # is, without the division and root: |w - lr m_hat / (sqrt(v_hat) + eps)|
    # <= |w| + k |m|, with twice the bound (overflowing exactly when it
    # exceeds half the range: a margin far wider than rounding) and the
    # kernel's intermediates lr m / bc1 and v / bc2 checked too.  True: the
    # exact new weights decide (rare).
    cdef floating b1 = <floating>a.b1, b2 = <floating>a.b2
    cdef floating c1 = <floating>a.c1, c2 = <floating>a.c2
    cdef floating k = <floating>a.k, l1 = <floating>a.l1, ib2 = <floating>a.ib2
    cdef floating gp, mi, vi
    cdef Py_ssize_t i
    cdef bint bad = False
    for i in range(start, stop):
        gp = g[i] + wd * w[i] if decay else g[i]
        mi = b1 * m[i] + c1 * gp
        vi = b2 * v[i] + c2 * gp * gp
        bad |= (_bad(mi) | _bad(vi) | _bad(2 * (_abs(w[i]) + k * _abs(mi)))
                | _bad(2 * (l1 * _abs(mi))) | _bad(2 * (vi * ib2)))
    return bad


cdef inline bint _adam_range(floating* w, const floating* g, floating* m, floating* v,
                             Py_ssize_t start, Py_ssize_t stop, const AdamCoeffs* a,
                             floating wd, bint decay, bint store) noexcept nogil:
    # store: apply the update to [start, stop); otherwise return True when
    # some value it would write is NaN or infinite
    cdef floating lr = <floating>a.lr, b1 = <floating>a.b1, b2 = <floating>a.b2
    cdef floating c1 = <floating>a.c1, c2 = <floating>a.c2, eps = <floating>a.eps
    cdef floating bc1 = <floating>a.bc1, bc2 = <floating>a.bc2
    cdef floating wi, mi, vi
    cdef Py_ssize_t i
    cdef bint bad = False
    if store:
        for i in range(start, stop):
            w[i] = _adam_element(w[i], g[i], m[i], v[i], lr, b1, b2, c1, c2, bc1, bc2,
                                 eps, wd, decay, &m[i], &v[i])
        return False
    if not _adam_cheap_bad(w, g, m, v, start, stop, a, wd, decay):
        return False
    for i in range(start, stop):
        wi = _adam_element(w[i], g[i], m[i], v[i], lr, b1, b2, c1, c2, bc1, bc2,
                           eps, wd, decay, &mi, &vi)
        bad |= _bad(wi) | _bad(mi) | _bad(vi)
    return bad


cdef inline bint _adam(floating* w, const floating* g, floating* state,
                       Py_ssize_t n_params, Py_ssize_t decay_end,
                       const OptSettings* s, bint store) noexcept nogil:
    # the kernels' entries [0, decay_end) with the weight decay, the rest without
    cdef AdamCoeffs a = _adam_coeffs(s)
    cdef floating wd = <floating>s.weight_decay
    cdef bint bad = _adam_range(w, g, state, state + n_params, 0, decay_end, &a, wd,
                                wd != 0, store)
    return _adam_range(w, g, state, state + n_params, decay_end, n_params, &a, wd,
                       False, store) or bad


cdef inline bint update_is_finite(const floating* w, const floating* g,
                                  const floating* state, Py_ssize_t n_params,
                                  Py_ssize_t decay_end,
                                  const OptSettings* s) noexcept nogil:
    """Would optimizer_step write only finite values?  (Finite gradients can
    still give non-finite parameters or state: Adam's g * g overflowing
    float32, a huge learning rate times a large gradient.  A NaN or inf in
    the gradient reaches the values computed, so this checks it too.)"""
    if s.code == OPT_SGD:
        return not _sgd(<floating*>w, g, <floating*>state, n_params, decay_end, s, False)
    if s.code == OPT_ADAM:
        return not _adam(<floating*>w, g, <floating*>state, n_params, decay_end, s, False)
    return True


cdef inline int optimizer_step(floating* w, const floating* g, floating* state,
                               Py_ssize_t n_params, Py_ssize_t decay_end,
                               const OptSettings* s) noexcept nogil:
    if s.code == OPT_SGD:
        _sgd(w, g, state, n_params, decay_end, s, True)
        return 0
    if s.code == OPT_ADAM:
        _adam(w, g, state, n_params, decay_end, s, True)
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


cdef inline void measure_bounds(const floating* w, const floating* state,
                                Py_ssize_t n_params, const OptSettings* s,
                                Bounds* b) noexcept nogil:
    # exact maxima (the parameters and state are finite here); plain SGD
    # (momentum 0) has no state to read
    b.w = sum_abs_if_finite(w, n_params)
    b.s0 = b.s1 = 0
    if s.code == OPT_SGD and s.momentum != 0:
        b.s0 = sum_abs_if_finite(state, n_params)
    elif s.code == OPT_ADAM:
        b.s0 = sum_abs_if_finite(state, n_params)
        b.s1 = sum_abs_if_finite(state + n_params, n_params)
    b.valid = True


cdef inline bint bounded_update_is_finite(double max_g, const OptSettings* s,
                                          Bounds* b, bint single) noexcept nogil:
    # Carry the bounds through the update, the per-element formulas above
    # read with magnitudes (the triangle inequality); True when its results
    # are certainly finite (the bounds then describe the parameters after
    # it).  single: float32 storage.  Without valid bounds, False (check
    # exactly).
    cdef double limit = (FLT_MAX if single else DBL_MAX) / 4
    cdef double lr = s.learning_rate, gp, w, s0, s1
    cdef AdamCoeffs a
    if not (b.valid and isfinite(max_g)):
        return False
    gp = max_g + s.weight_decay * b.w
    if not gp < limit:          # g + wd w itself must not overflow
        return False
    if s.code == OPT_SGD:
        s0 = s.momentum * b.s0 + lr * gp
        if s.momentum == 0:
            w = b.w + lr * gp
        elif s.nesterov:
            w = b.w + s.momentum * s0 + lr * gp
        else:
            w = b.w + s0
        s1 = 0
    elif s.code == OPT_ADAM:
        a = _adam_coeffs(s)
        s0 = a.b1 * b.s0 + a.c1 * gp
        s1 = a.b2 * b.s1 + a.c2 * gp * gp
        w = b.w + a.k * s0
        # the kernel's intermediates too: lr m / bc1 and v / bc2
        if not (a.l1 * s0 < limit and s1 * a.ib2 < limit):
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
