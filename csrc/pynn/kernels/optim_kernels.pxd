# Parameter updates over the flat parameter buffer.
#
# An optimizer's settings travel in one OptSettings struct, cast once to the
# storage type so that a float32 model updates in float32 arithmetic, exactly
# as the NumPy formula written with float32 arrays does.  Each optimizer's
# arithmetic is written once, as a per-element inline function (_sgd_element,
# _adam_element); the update loops, the exact finiteness check and the
# bounds below all use it.
#
# The update covers a list of variables, ranges of the flat buffer (a
# layer's kernel, its bias), each a row [start, stop, decayed] of `vars`
# (VAR_COLS values; decayed = 1 for a kernel, which SGD's and Adam's L2
# weight decay covers).  A frozen layer's variables are left out of the
# list: its weights and their optimizer state are not touched.
#
# A pass over many elements (the check and the update of a big model) runs
# on two threads when the settings allow it (OptSettings.n_threads): the
# flat buffer is cut at a multiple of 16 elements, each share clipping the
# variables' rows to its side of the cut and running the same per-element
# formulas, the other share on workers.h's helper thread.  Every element's
# value is computed alone, so the results are bit for bit those of one
# thread; the check's flags are OR-ed, and a check runs over both shares
# before an update stores anything, so a refused step changes nothing.
from cython cimport floating
from libc.float cimport DBL_MAX, FLT_MAX
from libc.math cimport INFINITY, fabs, fabsf, fmax, fmin, isfinite, pow, sqrt

from pynn.kernels.codes cimport OPT_ADAGRAD, OPT_ADAM, OPT_ADAMW, OPT_NADAM, OPT_RMSPROP, OPT_SGD
from pynn.kernels.workers cimport run_pair, run_pair_spinning

cdef enum:
    # the Python side's settings sequence: SGD [learning_rate, momentum,
    # nesterov, weight_decay], Adam [learning_rate, beta_1, beta_2, epsilon,
    # weight_decay], RMSprop [learning_rate, rho, momentum, epsilon,
    # centered], AdamW [learning_rate, beta_1, beta_2, epsilon,
    # weight_decay], Nadam [learning_rate, beta_1, beta_2, epsilon],
    # Adagrad [learning_rate, initial_accumulator_value, epsilon]; every
    # optimizer's gradient clipping in slots HYPER_CLIPNORM..+2 (0: off);
    # slot HYPER_STEP holds the number of updates applied before this one
    # (the compiled loops keep it themselves)
    HYPER_CLIPNORM = 12
    HYPER_CLIPVALUE = 13
    HYPER_GLOBAL_CLIPNORM = 14
    HYPER_STEP = 15
    VAR_COLS = 3
    # the elements per pass from which two threads update faster than one
    # (benchmarks/update_threads.py, 2 cores, AVX-512, quiet machine,
    # SGD-Nesterov float32: 0.77x at 2^18, 1.22x at 2^19, 1.49x at 2^20,
    # 1.95x at 8.4M)
    PARALLEL_MIN_ELEMENTS = 1 << 19
    # the one-thread check's blocks (_check_descending): 4 KB of float64
    CHECK_BLOCK = 512
    # the cut between the two threads' shares falls on a multiple of this
    # many elements: 64 bytes of float32, a cache line of each buffer
    SHARE_ALIGN = 16


cdef struct OptSettings:
    int code                # an OPT_* code
    double learning_rate
    double weight_decay     # L2, added to the gradient of the decayed variables
    double momentum         # SGD
    bint nesterov           # SGD: the Keras form of Nesterov momentum
    double beta_1           # Adam
    double beta_2
    double epsilon
    double rho              # RMSprop
    bint centered           # RMSprop
    double clipnorm         # Keras's gradient clipping, each 0 when off
    double clipvalue
    double global_clipnorm
    double step             # updates applied before this one (Adam: t - 1)
    int n_threads           # threads a big pass may use (1: the caller's alone)
    Py_ssize_t parallel_min # elements per pass from which it uses 2
    # ranges [lo, hi) of the buffer, as (n, 2) pairs in order, that the
    # helper thread updates because its products wrote their gradient (a
    # Dense layer's products computed in halves, dense.pyx); the caller
    # takes the rest, given the same way.  n_owned 0: none (share_cut's
    # halves above parallel_min instead)
    const Py_ssize_t* owned
    Py_ssize_t n_owned
    const Py_ssize_t* rest
    Py_ssize_t n_rest


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
    s.nesterov = s.centered = False
    s.rho = 0
    if code == OPT_SGD:
        s.momentum = hyper[1]
        s.nesterov = hyper[2] != 0
        s.weight_decay = hyper[3]
    elif code == OPT_ADAM or code == OPT_ADAMW or code == OPT_NADAM:
        s.beta_1 = hyper[1]
        s.beta_2 = hyper[2]
        s.epsilon = hyper[3]
        s.weight_decay = hyper[4] if code != OPT_NADAM else 0
    elif code == OPT_RMSPROP:
        s.rho = hyper[1]
        s.momentum = hyper[2]
        s.epsilon = hyper[3]
        s.centered = hyper[4] != 0
    elif code == OPT_ADAGRAD:
        s.epsilon = hyper[2]
    s.clipnorm = hyper[HYPER_CLIPNORM]
    s.clipvalue = hyper[HYPER_CLIPVALUE]
    s.global_clipnorm = hyper[HYPER_GLOBAL_CLIPNORM]
    s.step = step
    s.n_threads = 1
    s.parallel_min = PARALLEL_MIN_ELEMENTS
    s.owned = s.rest = NULL
    s.n_owned = s.n_rest = 0
    return s


cdef inline floating _abs(floating x) noexcept nogil:
    # fabs of the storage type: libc's fabs would round-trip a float through
    # double, which keeps the compiler from vectorising the loops below
    if floating is float:
        return fabsf(x)
    else:
        return fabs(x)


cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    /* 1 when some x[i] is NaN or infinite (its exponent bits all ones),
       else 0: an integer test of each value's bits, OR-ed, a loop that
       vectorises on every instruction set (the comparison form does not
       in float64 on baseline x86-64, and runs at half the speed on AVX-512
       where it does).  memcpy reads the bits without breaking aliasing. */
    static inline int pynn_any_nonfinite_f(const float* x, ptrdiff_t n) {
        uint32_t bad = 0;
        for (ptrdiff_t i = 0; i < n; i++) {
            uint32_t u;
            memcpy(&u, x + i, sizeof u);
            bad |= (u & 0x7f800000u) == 0x7f800000u;
        }
        return (int)bad;
    }
    static inline int pynn_any_nonfinite_d(const double* x, ptrdiff_t n) {
        uint64_t bad = 0;
        for (ptrdiff_t i = 0; i < n; i++) {
            uint64_t u;
            memcpy(&u, x + i, sizeof u);
            bad |= (u & 0x7ff0000000000000ull) == 0x7ff0000000000000ull;
        }
        return (int)bad;
    }
    """
    bint _any_nonfinite_f "pynn_any_nonfinite_f"(const float* x, Py_ssize_t n) noexcept nogil
    bint _any_nonfinite_d "pynn_any_nonfinite_d"(const double* x, Py_ssize_t n) noexcept nogil


cdef inline bint _bad(floating x) noexcept nogil:
    # NaN or infinite: a comparison, so that loops OR-ing it vectorise
    # (a floating-point sum would need reassociation to)
    if floating is float:
        return not (fabsf(x) <= FLT_MAX)
    else:
        return not (fabs(x) <= DBL_MAX)


cdef inline Py_ssize_t _first(const Py_ssize_t* var, Py_ssize_t lo) noexcept nogil:
    # a variable's row [start, stop) clipped to a share [lo, hi) of the buffer
    return var[0] if var[0] > lo else lo


cdef inline Py_ssize_t _last(const Py_ssize_t* var, Py_ssize_t hi) noexcept nogil:
    return var[1] if var[1] < hi else hi


# ---- SGD --------------------------------------------------------------------
#   g' = g + wd w           (L2 weight decay, decayed variables: the kernels)
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
                    w[i] = _sgd_element(w[i], g[i], vi, lr, mu, wd,
                                        False, False, False, &vi)
            else:
                for i in range(start, stop):
                    bad |= _bad(_sgd_element(w[i], g[i], vi, lr, mu, wd,
                                             False, False, False, &vi))
        else:
            if store:
                for i in range(start, stop):
                    w[i] = _sgd_element(w[i], g[i], vi, lr, mu, wd,
                                        True, False, False, &vi)
            else:
                for i in range(start, stop):
                    bad |= _bad(_sgd_element(w[i], g[i], vi, lr, mu, wd,
                                             True, False, False, &vi))
    elif nesterov:
        if store:
            for i in range(start, stop):
                w[i] = _sgd_element(w[i], g[i], v[i], lr, mu, wd,
                                    wd != 0, True, True, &vi)
                v[i] = vi
        else:
            for i in range(start, stop):
                wi = _sgd_element(w[i], g[i], v[i], lr, mu, wd,
                                  wd != 0, True, True, &vi)
                bad |= _bad(wi) | _bad(vi)
    else:
        if store:
            for i in range(start, stop):
                w[i] = _sgd_element(w[i], g[i], v[i], lr, mu, wd,
                                    wd != 0, True, False, &vi)
                v[i] = vi
        else:
            for i in range(start, stop):
                wi = _sgd_element(w[i], g[i], v[i], lr, mu, wd,
                                  wd != 0, True, False, &vi)
                bad |= _bad(wi) | _bad(vi)
    return bad


cdef inline bint _sgd(floating* w, const floating* g, floating* v, Py_ssize_t n_params,
                      const Py_ssize_t* vars, Py_ssize_t n_vars,
                      const OptSettings* s, bint store, Py_ssize_t lo,
                      Py_ssize_t hi) noexcept nogil:
    cdef floating lr = <floating>s.learning_rate
    cdef floating mu = <floating>s.momentum
    cdef floating wd = <floating>s.weight_decay, zero = 0
    cdef bint bad = False
    cdef Py_ssize_t k
    cdef const Py_ssize_t* var
    for k in range(n_vars):
        var = vars + k * VAR_COLS
        bad |= _sgd_range(w, g, v, _first(var, lo), _last(var, hi), lr, mu, s.nesterov,
                          wd if var[2] else zero, store)
    return bad


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
            w[i] = _adam_element(w[i], g[i], m[i], v[i], lr, b1, b2,
                                 c1, c2, bc1, bc2, eps, wd, decay, &m[i], &v[i])
        return False
    if not _adam_cheap_bad(w, g, m, v, start, stop, a, wd, decay):
        return False
    for i in range(start, stop):
        wi = _adam_element(w[i], g[i], m[i], v[i], lr, b1, b2, c1, c2,
                           bc1, bc2, eps, wd, decay, &mi, &vi)
        bad |= _bad(wi) | _bad(mi) | _bad(vi)
    return bad


cdef inline bint _adam(floating* w, const floating* g, floating* state,
                       Py_ssize_t n_params, const Py_ssize_t* vars, Py_ssize_t n_vars,
                       const OptSettings* s, bint store, Py_ssize_t lo,
                       Py_ssize_t hi) noexcept nogil:
    # the kernels with the weight decay, the biases without
    cdef AdamCoeffs a = _adam_coeffs(s)
    cdef floating wd = <floating>s.weight_decay
    cdef bint bad = False
    cdef Py_ssize_t k
    cdef const Py_ssize_t* var
    for k in range(n_vars):
        var = vars + k * VAR_COLS
        bad |= _adam_range(w, g, state, state + n_params, _first(var, lo), _last(var, hi),
                           &a, wd,
                           var[2] != 0 and wd != 0, store)
    return bad


# ---- RMSprop, AdamW, Nadam, Adagrad -------------------------------------
# Each in the form of its twin in pynn/reference.py (rmsprop_step,
# adamw_step, nadam_step, adagrad_step), operation for operation: per-step
# scalars in double rounded once to the storage type, everything else in
# the storage type.  No carried bounds for these (bounded_update_is_finite
# answers False): their divisions by a root of the state have no cheap
# bound, so the exact check runs before every update.

cdef inline floating _root(floating x) noexcept nogil:
    # the correctly rounded square root in the storage type (see Adam)
    return <floating>sqrt(<double>x)


# RMSprop, Keras 3's form; state = [velocity, momentum (if momentum > 0),
# average_gradient (if centered)], each n_params long:
#   velocity = rho velocity + (1 - rho) g g
#   centered: average = rho average + (1 - rho) g;  den = velocity - average^2 + eps
#   otherwise den = velocity + eps
#   increment = lr g / sqrt(den)
#   momentum > 0: buffer = momentum buffer + increment;  w = w - buffer
#   otherwise     w = w - increment
cdef inline floating _rmsprop_element(floating w, floating g, floating vel, floating buf,
                                      floating avg, floating lr, floating rho,
                                      floating c, floating mu, floating eps,
                                      bint momentum, bint centered, floating* vel_new,
                                      floating* buf_new, floating* avg_new) noexcept nogil:
    cdef floating vn = rho * vel + c * g * g
    cdef floating an, den, inc
    vel_new[0] = vn
    if centered:
        an = rho * avg + c * g
        avg_new[0] = an
        den = vn - an * an + eps
    else:
        den = vn + eps
    inc = lr * g / _root(den)
    if momentum:
        inc = mu * buf + inc
        buf_new[0] = inc
    return w - inc


cdef inline bint _rmsprop(floating* w, const floating* g, floating* state,
                          Py_ssize_t n, const Py_ssize_t* vars, Py_ssize_t n_vars,
                          const OptSettings* s, bint store, Py_ssize_t lo,
                          Py_ssize_t hi) noexcept nogil:
    cdef floating lr = <floating>s.learning_rate, rho = <floating>s.rho
    cdef floating c = <floating>(1.0 - s.rho), mu = <floating>s.momentum
    cdef floating eps = <floating>s.epsilon
    cdef bint momentum = s.momentum > 0, centered = s.centered
    cdef floating* vel = state
    cdef floating* buf = state + n if momentum else state
    cdef floating* avg = state + n * (1 + momentum) if centered else state
    cdef floating wi, vi, bi = 0, ai = 0, zero = 0
    cdef Py_ssize_t i, k
    cdef bint bad = False
    for k in range(n_vars):
        for i in range(_first(vars + k * VAR_COLS, lo), _last(vars + k * VAR_COLS, hi)):
            wi = _rmsprop_element(w[i], g[i], vel[i],
                                  buf[i] if momentum else zero,
                                  avg[i] if centered else zero, lr, rho, c, mu, eps,
                                  momentum, centered, &vi, &bi, &ai)
            if store:
                w[i] = wi
                vel[i] = vi
                if momentum:
                    buf[i] = bi
                if centered:
                    avg[i] = ai
            else:
                bad |= _bad(wi) | _bad(vi) | _bad(bi) | _bad(ai)
    return bad


# AdamW: the decoupled decay of Loshchilov & Hutter as Keras 3 and PyTorch
# apply it, w = w - (lr wd) w on every entry (biases too, as Keras without
# exclude_from_weight_decay), then the Adam step above without L2.
cdef inline bint _adamw(floating* w, const floating* g, floating* state,
                        Py_ssize_t n, const Py_ssize_t* vars, Py_ssize_t n_vars,
                        const OptSettings* s, bint store, Py_ssize_t lo,
                        Py_ssize_t hi) noexcept nogil:
    cdef AdamCoeffs a = _adam_coeffs(s)
    cdef floating lr = <floating>a.lr, b1 = <floating>a.b1, b2 = <floating>a.b2
    cdef floating c1 = <floating>a.c1, c2 = <floating>a.c2, eps = <floating>a.eps
    cdef floating bc1 = <floating>a.bc1, bc2 = <floating>a.bc2
    cdef floating decay = <floating>(s.learning_rate * s.weight_decay), zero = 0
    cdef bint decayed = s.weight_decay != 0
    cdef floating* m = state
    cdef floating* v = state + n
    cdef floating wi, mi, vi
    cdef Py_ssize_t i, k
    cdef bint bad = False
    for k in range(n_vars):
        for i in range(_first(vars + k * VAR_COLS, lo), _last(vars + k * VAR_COLS, hi)):
            wi = w[i] - decay * w[i] if decayed else w[i]
            wi = _adam_element(wi, g[i], m[i], v[i], lr, b1, b2, c1, c2,
                               bc1, bc2, eps, zero, False, &mi, &vi)
            if store:
                w[i] = wi
                m[i] = mi
                v[i] = vi
            else:
                bad |= _bad(wi) | _bad(mi) | _bad(vi)
    return bad


# Nadam, Keras 3's form (Dozat 2016), t the 1-based step:
#   u_t = b1 (1 - 0.5 0.96^t);  u_next = b1 (1 - 0.5 0.96^(t+1));  P = u_1 ... u_t
#   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g g
#   m_hat = [u_next / (1 - P u_next)] m + [(1 - u_t) / (1 - P)] g
#   w = w - lr m_hat / (sqrt(v / (1 - b2^t)) + eps)
# P is recomputed from the step count (multiplied in the twin's order, so
# bit for bit the product it keeps), stopping once it falls below 2^-60:
# from there 1 - P u and 1 - P are exactly 1 in double, whatever P is.  So
# the state is the step count the model keeps; the cost is bounded (about
# 400 factors for beta_1 = 0.9).
cdef inline double _nadam_cache(double b1, double t) noexcept nogil:
    return b1 * (1.0 - 0.5 * pow(0.96, t))


cdef inline double nadam_u_product(double b1, double t) noexcept nogil:
    """u_1 u_2 ... u_t (1 for t = 0), or a value below 2^-60 standing for it."""
    cdef double p = 1.0, j = 1
    while j <= t and p >= 8.673617379884035e-19:
        p = p * _nadam_cache(b1, j)
        j += 1
    return p


cdef inline bint _nadam(floating* w, const floating* g, floating* state,
                        Py_ssize_t n, const Py_ssize_t* vars, Py_ssize_t n_vars,
                        const OptSettings* s, bint store, Py_ssize_t lo,
                        Py_ssize_t hi) noexcept nogil:
    cdef double t = s.step + 1
    cdef double u_t = _nadam_cache(s.beta_1, t), u_next = _nadam_cache(s.beta_1, t + 1)
    cdef double p = nadam_u_product(s.beta_1, t)
    cdef floating a = <floating>(u_next / (1.0 - p * u_next))
    cdef floating bg = <floating>((1.0 - u_t) / (1.0 - p))
    cdef floating b1 = <floating>s.beta_1, b2 = <floating>s.beta_2
    cdef floating c1 = <floating>(1.0 - s.beta_1), c2 = <floating>(1.0 - s.beta_2)
    cdef floating bc2 = <floating>(1.0 - pow(s.beta_2, t))
    cdef floating lr = <floating>s.learning_rate, eps = <floating>s.epsilon
    cdef floating* m = state
    cdef floating* v = state + n
    cdef floating wi, mi, vi, gi
    cdef Py_ssize_t i, k
    cdef bint bad = False
    for k in range(n_vars):
        for i in range(_first(vars + k * VAR_COLS, lo), _last(vars + k * VAR_COLS, hi)):
            gi = g[i]
            mi = b1 * m[i] + c1 * gi
            vi = b2 * v[i] + c2 * gi * gi
            wi = w[i] - lr * (a * mi + bg * gi) / (_root(vi / bc2) + eps)
            if store:
                w[i] = wi
                m[i] = mi
                v[i] = vi
            else:
                bad |= _bad(wi) | _bad(mi) | _bad(vi)
    return bad


# Adagrad, Keras 3's form (Duchi et al. 2011); state = [accumulator],
# started at initial_accumulator_value:
#   accumulator = accumulator + g g;  w = w - lr g / sqrt(accumulator + eps)
cdef inline floating _adagrad_element(floating w, floating g, floating acc, floating lr,
                                      floating eps, floating* acc_new) noexcept nogil:
    cdef floating an = acc + g * g
    acc_new[0] = an
    return w - lr * g / _root(an + eps)


cdef inline bint _adagrad(floating* w, const floating* g, floating* state,
                          Py_ssize_t n, const Py_ssize_t* vars, Py_ssize_t n_vars,
                          const OptSettings* s, bint store, Py_ssize_t lo,
                          Py_ssize_t hi) noexcept nogil:
    cdef floating lr = <floating>s.learning_rate, eps = <floating>s.epsilon
    cdef floating wi, ai
    cdef Py_ssize_t i, k, start, stop
    cdef bint bad = False
    for k in range(n_vars):
        start = _first(vars + k * VAR_COLS, lo)
        stop = _last(vars + k * VAR_COLS, hi)
        if store:
            for i in range(start, stop):
                w[i] = _adagrad_element(w[i], g[i], state[i], lr, eps,
                                        &state[i])
        else:
            for i in range(start, stop):
                wi = _adagrad_element(w[i], g[i], state[i], lr, eps, &ai)
                bad |= _bad(wi) | _bad(ai)
    return bad


cdef inline Py_ssize_t state_size(int code, const double* hyper,
                                  Py_ssize_t n_params) noexcept nogil:
    """The state values an optimizer's kernel reads and writes, -1 for an
    unknown code."""
    if code == OPT_SGD:
        return n_params if hyper[1] != 0 else 0
    if code == OPT_ADAM or code == OPT_ADAMW or code == OPT_NADAM:
        return 2 * n_params
    if code == OPT_RMSPROP:
        return n_params * (1 + (hyper[2] > 0) + (hyper[4] != 0))
    if code == OPT_ADAGRAD:
        return n_params
    return -1


cdef inline bint _dispatch_share(floating* w, const floating* g, floating* state,
                                 Py_ssize_t n_params, const Py_ssize_t* vars,
                                 Py_ssize_t n_vars, const OptSettings* s, bint store,
                                 Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    # the check (store False) or the update of the elements in [lo, hi)
    if s.code == OPT_SGD:
        return _sgd(w, g, state, n_params, vars, n_vars, s, store, lo, hi)
    if s.code == OPT_ADAM:
        return _adam(w, g, state, n_params, vars, n_vars, s, store, lo, hi)
    if s.code == OPT_RMSPROP:
        return _rmsprop(w, g, state, n_params, vars, n_vars, s, store, lo, hi)
    if s.code == OPT_ADAMW:
        return _adamw(w, g, state, n_params, vars, n_vars, s, store, lo, hi)
    if s.code == OPT_NADAM:
        return _nadam(w, g, state, n_params, vars, n_vars, s, store, lo, hi)
    if s.code == OPT_ADAGRAD:
        return _adagrad(w, g, state, n_params, vars, n_vars, s, store, lo, hi)
    return False                # unknown: optimizer_step refuses it


cdef inline Py_ssize_t _elements_below(const Py_ssize_t* vars, Py_ssize_t n_vars,
                                       Py_ssize_t cut) noexcept nogil:
    # how many of the variables' elements lie below index cut of the buffer
    cdef Py_ssize_t k, count = 0, stop
    for k in range(n_vars):
        if cut > vars[k * VAR_COLS]:
            stop = _last(vars + k * VAR_COLS, cut)
            count += stop - vars[k * VAR_COLS]
    return count


cdef inline Py_ssize_t share_cut(const Py_ssize_t* vars, Py_ssize_t n_vars,
                                 Py_ssize_t n_params, const OptSettings* s) noexcept nogil:
    """Where a pass over the variables is cut between two threads: the
    first index of the buffer, rounded down to a multiple of SHARE_ALIGN,
    with half the elements below it (the rows need not be in order); 0 when
    the pass runs on one thread (below s.parallel_min elements, or one
    thread allowed)."""
    cdef Py_ssize_t lo = 0, hi = n_params, mid, half
    if s.n_threads < 2:
        return 0
    half = _elements_below(vars, n_vars, n_params)
    if half < s.parallel_min or half < 2 * SHARE_ALIGN:
        return 0
    half = half // 2
    while lo < hi:              # the least cut with half the elements below it
        mid = lo + (hi - lo) // 2
        if _elements_below(vars, n_vars, mid) >= half:
            hi = mid
        else:
            lo = mid + 1
    return lo - lo % SHARE_ALIGN


cdef struct _UpdateShare:
    # one thread's share of a check or an update (_dispatch_share's arguments)
    void* w
    const void* g
    void* state
    Py_ssize_t n_params
    const Py_ssize_t* vars
    Py_ssize_t n_vars
    const OptSettings* s
    bint store
    Py_ssize_t lo, hi
    const Py_ssize_t* ranges    # (n_ranges, 2) [lo, hi) pairs instead of lo, hi
    Py_ssize_t n_ranges
    bint is_double
    bint bad                    # OUT


cdef inline void _run_share(void* arg) noexcept nogil:
    cdef _UpdateShare* t = <_UpdateShare*>arg
    cdef Py_ssize_t k, r
    if t.ranges == NULL:
        t.bad = _run_range(t, t.lo, t.hi)
        return
    t.bad = False
    for k in range(t.n_ranges):
        # the check's ranges last to first, as its blocks (_check_descending)
        r = k if t.store else t.n_ranges - 1 - k
        t.bad |= _run_range(t, t.ranges[2 * r], t.ranges[2 * r + 1])


cdef inline bint _run_range(_UpdateShare* t, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    if t.is_double:
        return _range_typed(t, <double*>t.w, lo, hi)
    return _range_typed(t, <float*>t.w, lo, hi)


cdef inline bint _range_typed(_UpdateShare* t, floating* w, Py_ssize_t lo,
                              Py_ssize_t hi) noexcept nogil:
    # a share's range in t's dtype: the update, or the check in descending blocks
    if t.store:
        return _dispatch_share(w, <const floating*>t.g, <floating*>t.state, t.n_params,
                               t.vars, t.n_vars, t.s, True, lo, hi)
    return _check_descending(w, <const floating*>t.g, <floating*>t.state, t.n_params,
                             t.vars, t.n_vars, t.s, lo, hi)


cdef inline bint _check_descending(floating* w, const floating* g, floating* state,
                                   Py_ssize_t n_params, const Py_ssize_t* vars,
                                   Py_ssize_t n_vars, const OptSettings* s,
                                   Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    # The check of [lo, hi) in blocks of CHECK_BLOCK elements (on multiples
    # of it), from the end to the start: the update that follows runs from
    # the start, and finds there the blocks the check read last, still in
    # L1 or L2 where the parameters, gradient and state do not all fit.  The
    # check ORs a flag per element: the order changes nothing else.
    cdef Py_ssize_t start
    cdef bint bad = False
    while hi > lo:
        start = (hi - 1) - (hi - 1) % CHECK_BLOCK
        if start < lo:
            start = lo
        bad |= _dispatch_share(w, g, state, n_params, vars, n_vars, s, False, start, hi)
        hi = start
    return bad


cdef inline bint _dispatch(floating* w, const floating* g, floating* state,
                           Py_ssize_t n_params, const Py_ssize_t* vars, Py_ssize_t n_vars,
                           const OptSettings* s, bint store) noexcept nogil:
    cdef Py_ssize_t cut = 0 if s.n_owned else share_cut(vars, n_vars, n_params, s)
    cdef _UpdateShare first, second
    if cut == 0 and (s.n_owned == 0 or s.n_threads < 2):
        if store:
            return _dispatch_share(w, g, state, n_params, vars, n_vars, s, True, 0, n_params)
        return _check_descending(w, g, state, n_params, vars, n_vars, s, 0, n_params)
    first.w = w
    first.g = g
    first.state = state
    first.n_params = n_params
    first.vars = vars
    first.n_vars = n_vars
    first.s = s
    first.store = store
    first.is_double = floating is double
    first.lo = 0
    first.hi = cut
    first.ranges = NULL
    first.n_ranges = 0
    first.bad = False
    second = first
    second.lo = cut
    second.hi = n_params
    if s.n_owned:
        # each thread the rows its products wrote: they are in its cache
        first.ranges = s.rest
        first.n_ranges = s.n_rest
        second.ranges = s.owned
        second.n_ranges = s.n_owned
        run_pair_spinning(_run_share, &first, &second)
    else:
        run_pair(_run_share, &first, &second)
    return first.bad | second.bad


cdef inline bint update_is_finite(const floating* w, const floating* g,
                                  const floating* state, Py_ssize_t n_params,
                                  const Py_ssize_t* vars, Py_ssize_t n_vars,
                                  const OptSettings* s) noexcept nogil:
    """Would optimizer_step write only finite values?  (Finite gradients can
    still give non-finite parameters or state: Adam's g * g overflowing
    float32, a huge learning rate times a large gradient.  A NaN or inf in
    the gradient reaches the values computed, so this checks it too.)"""
    return not _dispatch(<floating*>w, g, <floating*>state, n_params, vars, n_vars,
                         s, False)


cdef inline int optimizer_step(floating* w, const floating* g, floating* state,
                               Py_ssize_t n_params, const Py_ssize_t* vars,
                               Py_ssize_t n_vars, const OptSettings* s) noexcept nogil:
    if s.code < OPT_SGD or s.code > OPT_ADAGRAD:
        return -1
    _dispatch(w, g, state, n_params, vars, n_vars, s, True)
    return 0


cdef inline bint all_finite(const floating* x, Py_ssize_t n) noexcept nogil:
    # no NaN or inf in x[0..n): the bits' test above
    if floating is float:
        return not _any_nonfinite_f(x, n)
    else:
        return not _any_nonfinite_d(x, n)


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


cdef enum:
    # sum_abs_if_finite's partial sums, one vector register of float32s
    SUM_LANES = 16


cdef inline double sum_abs_if_finite(const floating* x, Py_ssize_t n) noexcept nogil:
    # An upper bound of sum |x| (and so of max |x|), or inf when some x is
    # NaN or infinite (a NaN or inf makes the sum NaN or inf; so does a sum
    # past the type's range, and the caller then checks exactly).  A sum,
    # not a max: the compiler vectorises sums kept in lanes, not a max
    # written with comparisons (NaN semantics).  Summed in the storage type
    # for the same reason, in SUM_LANES partial sums that the compiler
    # keeps in one vector register (four scalar sums compiled to a lane
    # extract and a scalar add per element in float64), and scaled up by
    # the worst case of rounding: each lane adds at most m = n/SUM_LANES +
    # SUM_LANES - 1 terms and the lanes' total SUM_LANES more, which
    # undercuts the exact sum by a factor of at most 1 - 1.1 m' u for
    # m' = m + SUM_LANES and m' u below 1/4 (u the unit roundoff).
    cdef Py_ssize_t i = 0, j
    cdef floating acc[SUM_LANES]
    cdef double total = 0
    cdef double m_u = (n / SUM_LANES + 2 * SUM_LANES) * (
        5.960464477539063e-08 if floating is float else 1.1102230246251565e-16)
    for j in range(SUM_LANES):
        acc[j] = 0
    while i + SUM_LANES <= n:
        for j in range(SUM_LANES):
            acc[j] += _abs(x[i + j])
        i += SUM_LANES
    j = 0
    while i < n:
        acc[j] += _abs(x[i])
        i += 1
        j += 1
    for j in range(SUM_LANES):
        total += acc[j]
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


# ---- the gradient pass: regularizers, clipping, the finiteness bound ----
#
# One read of the trainable variables' gradients after the backward pass,
# before the update: it adds each regularizer's gradient (and sums its
# penalty from the same read of the weights), clips by value in place, sums
# each variable's squares for clipping by norm, and bounds max |g| for the
# carried bounds above.  Variables that need none of this take the plain
# vectorised sum_abs_if_finite, or the bound their gradient's writer took
# (known): a Dense layer whose products are split between the cores sums
# each half's rows on the core that wrote them, in its cache, where a
# pass here would read the other core's half across (an eighth of a
# 784-128-10 epoch at batch 32 when it did).  Clipping by norm needs the norm before it
# can scale: a second, vectorised pass over those gradients (the update
# loops stay as they are, free of a per-element division that most
# steps would not need).  Keras 3's order: the regularizers belong
# to the loss, so their gradient is in g before the clipping, which comes
# before the update (and its weight decay).

cdef struct GradPass:
    double bound        # >= max |g| over the variables (inf: not known, check exactly)
    bint finite         # False: some gradient is NaN or infinite (refuse the step)
    double penalty      # the regularizers' penalty, added to the loss


cdef inline floating _sign(floating x) noexcept nogil:
    # NumPy's sign: -1, 0 or 1
    return <floating>((x > 0) - (x < 0))


cdef inline GradPass grad_pass(const floating* w, floating* g, const Py_ssize_t* vars,
                               Py_ssize_t n_vars, const double* reg, bint clip,
                               const OptSettings* s, bint want_bound,
                               const double* known) noexcept nogil:
    """reg: (n_vars, 2) [l1, l2] per variable, or NULL for none (L1 adds
    l1 sign(w), L2 adds 2 l2 w to the gradient, as pynn/reference.py's
    twins); clip: apply s's clipping (False when only the gradient is
    wanted).
    want_bound: the caller carries bounds (the compiled epoch); otherwise
    a variable that needs neither regularizer nor clipping is not read
    (the exact check that follows reads it), and bound is left at inf.
    known: NULL, or per variable a bound of its sum |g| (as
    sum_abs_if_finite's: inf when some g is not finite) already taken
    where the gradient was written, or -1 where none was: a variable that
    needs neither regularizer nor clipping then is not read again."""
    cdef GradPass out
    cdef Py_ssize_t k, i, start, stop
    cdef double l1, l2, p1, p2, sq, sa, total_sq = 0, norm, f = 0
    cdef bint by_value = clip and s.clipvalue > 0
    cdef bint by_norm = clip and (s.clipnorm > 0 or s.global_clipnorm > 0)
    cdef bint regular, bad = False
    cdef floating gi, wi, fl1, fl2, fa, fd
    cdef floating hi = <floating>s.clipvalue, lo = <floating>(-s.clipvalue)
    out.bound = 0
    out.penalty = 0
    for k in range(n_vars):
        start = vars[k * VAR_COLS]
        stop = vars[k * VAR_COLS + 1]
        l1 = reg[2 * k] if reg != NULL else 0
        l2 = reg[2 * k + 1] if reg != NULL else 0
        regular = l1 != 0 or l2 != 0
        if not (regular or by_value or by_norm):
            if not want_bound:
                out.bound += INFINITY
            elif known != NULL and known[k] >= 0:
                out.bound += known[k]
            else:
                out.bound += sum_abs_if_finite(g + start, stop - start)
            continue
        fl1 = <floating>l1
        fl2 = <floating>(2 * l2)
        p1 = p2 = sq = sa = 0
        for i in range(start, stop):
            gi = g[i]
            if regular:
                wi = w[i]
                p1 += fabs(<double>wi)
                p2 += <double>wi * <double>wi
                gi = gi + (fl1 * _sign(wi) + fl2 * wi)
            bad |= _bad(gi)
            if by_value:
                # np.clip(g, -clipvalue, clipvalue)
                gi = lo if gi < lo else (hi if gi > hi else gi)
            if regular or by_value:
                g[i] = gi
            sq += <double>gi * <double>gi
            sa += <double>_abs(gi)
        out.penalty += l1 * p1 + l2 * p2
        out.bound += sa * (1 + 4.5e-16 * (stop - start))
        total_sq += sq
        if by_norm and s.clipnorm > 0 and not bad:
            # clip_by_norm: (g clipnorm) / max(||g||, clipnorm), in the twin's order
            fa = <floating>s.clipnorm
            fd = <floating>fmax(sqrt(sq), s.clipnorm)
            for i in range(start, stop):
                g[i] = (g[i] * fa) / fd
    if by_norm and s.global_clipnorm > 0:
        # clip_by_global_norm: g (c min(1 / n, 1 / c) + (n - n)), NaN for a
        # non-finite n (the step is then refused)
        norm = sqrt(total_sq)
        f = s.global_clipnorm * fmin(1.0 / norm, 1.0 / s.global_clipnorm) + (norm - norm)
        bad |= not isfinite(f)
        fa = <floating>f
        if not bad:
            for k in range(n_vars):
                for i in range(vars[k * VAR_COLS], vars[k * VAR_COLS + 1]):
                    g[i] = g[i] * fa
    out.finite = not bad
    return out


cdef inline double penalty(const floating* w, const Py_ssize_t* vars, Py_ssize_t n_vars,
                           const double* reg) noexcept nogil:
    """The regularizers' penalty: sum over variables of l1 sum |w| + l2 sum w^2."""
    cdef Py_ssize_t k, i
    cdef double p1, p2, total = 0
    if reg == NULL:
        return 0
    for k in range(n_vars):
        if reg[2 * k] == 0 and reg[2 * k + 1] == 0:
            continue
        p1 = p2 = 0
        for i in range(vars[k * VAR_COLS], vars[k * VAR_COLS + 1]):
            p1 += fabs(<double>w[i])
            p2 += <double>w[i] * <double>w[i]
        total += reg[2 * k] * p1 + reg[2 * k + 1] * p2
    return total
