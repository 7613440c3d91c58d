# Activations and their derivatives, per element and per row.
#
# Backward passes take the derivative from the activation's *output* A
# rather than its input Z wherever the output determines it (relu: A > 0,
# tanh: 1 - A^2, sigmoid: A (1 - A), leaky_relu, elu, selu, softplus), so a
# forward pass only has to keep A.  gelu and swish are not monotonic: one
# output comes from two inputs with different slopes, so their derivative
# is taken from the pre-activation Z, which the forward pass then keeps too
# (needs_preactivation).
#
# Every exp below is of a non-positive argument and erfc's argument is
# finite, so no activation or derivative overflows or turns NaN for any
# finite input of either type (checked at +-1e4).  The formulas are those of
# pynn/reference.py, written in the same order of operations.
from cython cimport floating
from libc.math cimport erfc, erfcf, exp, expf, expm1, expm1f, log1p, log1pf, tanh, tanhf

from pynn.kernels.codes cimport (
    ACT_ELU, ACT_GELU, ACT_LEAKY_RELU, ACT_LINEAR, ACT_RELU, ACT_SELU, ACT_SIGMOID,
    ACT_SOFTMAX, ACT_SOFTPLUS, ACT_SWISH, ACT_TANH)
from pynn.kernels.vmath cimport vexp, vsigmoid, vtanh
from pynn.kernels.workers cimport run_pair

cdef extern from *:
    """
    /* Keras 3's defaults: keras.activations.leaky_relu(negative_slope=0.2),
       elu(alpha=1.0); SELU's constants from Klambauer et al. (2017). */
    #define PYNN_LEAKY_RELU_SLOPE 0.2
    #define PYNN_SELU_ALPHA 1.6732632423543772848170429916717
    #define PYNN_SELU_SCALE 1.0507009873554804934193349852946
    #define PYNN_SQRT_HALF 0.70710678118654752440084436210485
    #define PYNN_INV_SQRT_2PI 0.39894228040143267793994605993438
    """
    const double LEAKY_RELU_SLOPE "PYNN_LEAKY_RELU_SLOPE"
    const double SELU_ALPHA "PYNN_SELU_ALPHA"
    const double SELU_SCALE "PYNN_SELU_SCALE"
    const double SQRT_HALF "PYNN_SQRT_HALF"
    const double INV_SQRT_2PI "PYNN_INV_SQRT_2PI"


cdef inline floating fexp(floating x) noexcept nogil:
    if floating is float:
        return expf(x)
    else:
        return exp(x)


cdef inline floating sigmoid(floating z) noexcept nogil:
    # exp of a non-positive number only: no overflow for any z, and
    # sigmoid(-1000) is 0 and sigmoid(1000) is 1 exactly, never NaN.
    cdef floating e
    if z >= 0:
        e = fexp(-z)
        return 1 / (1 + e)
    e = fexp(z)
    return e / (1 + e)


cdef inline floating fexpm1(floating x) noexcept nogil:
    if floating is float:
        return expm1f(x)
    else:
        return expm1(x)


cdef inline floating _log1p(floating x) noexcept nogil:
    if floating is float:
        return log1pf(x)
    else:
        return log1p(x)


cdef inline floating ferfc(floating x) noexcept nogil:
    if floating is float:
        return erfcf(x)
    else:
        return erfc(x)


cdef inline floating leaky_relu(floating z) noexcept nogil:
    return z if z > 0 else <floating>LEAKY_RELU_SLOPE * z


cdef inline floating elu(floating z) noexcept nogil:
    # alpha = 1; expm1 keeps the relative accuracy near 0
    return z if z > 0 else fexpm1(z)


cdef inline floating selu(floating z) noexcept nogil:
    if z > 0:
        return <floating>SELU_SCALE * z
    return <floating>(SELU_SCALE * SELU_ALPHA) * fexpm1(z)


cdef inline floating gelu(floating z) noexcept nogil:
    # the exact GELU (Keras approximate=False), z Phi(z), with
    # Phi(z) = erfc(-z / sqrt 2) / 2: the same function as 1 + erf(z / sqrt 2),
    # without the cancellation in the left tail
    return <floating>0.5 * z * ferfc(-z * <floating>SQRT_HALF)


cdef inline floating gelu_derivative(floating z) noexcept nogil:
    # Phi(z) + z phi(z); z*z is at most 1e8 at |z| = 1e4, finite in float32
    cdef floating cdf = <floating>0.5 * ferfc(-z * <floating>SQRT_HALF)
    return cdf + z * <floating>INV_SQRT_2PI * fexp(<floating>-0.5 * z * z)


cdef inline floating swish(floating z) noexcept nogil:
    # Keras's swish, PyTorch's silu: z sigmoid(z)
    return z * sigmoid(z)


cdef inline floating swish_derivative(floating z) noexcept nogil:
    # s + z s (1 - s) = s (1 + z (1 - s))
    cdef floating s = sigmoid(z)
    return s * (1 + z * (1 - s))


cdef inline floating softplus(floating z) noexcept nogil:
    # log(1 + exp(z)) = max(z, 0) + log1p(exp(-|z|)): exact for large |z|
    cdef floating e = fexp(-z if z > 0 else z)
    cdef floating m = z if z > 0 else 0
    if floating is float:
        return m + log1pf(e)
    else:
        return m + log1p(e)


cdef inline floating softplus_derivative_from_output(floating a) noexcept nogil:
    # sigmoid(z) = 1 - exp(-a), as -expm1(-a): accurate where a ~ exp(z) is
    # tiny (1 - exp(-a) would round to 0 there) and where a ~ z is large
    return -fexpm1(-a)


cdef enum:
    SWISH_CHUNK = 256       # swish, elu, selu: the vectorised exponentials, this many at a time


cdef inline void _expm1_negative(floating* z, floating* e, Py_ssize_t k) noexcept nogil:
    # e <- expm1(min(z, 0)) for k values: the vectorised exp less 1 where
    # z <= -1/4 (the difference then loses no accuracy: exp(z) <= 0.78),
    # libm's expm1 closer to 0, where exp(z) - 1 would cancel
    cdef Py_ssize_t j
    for j in range(k):
        e[j] = z[j] if z[j] < 0 else 0
    vexp(e, k)
    for j in range(k):
        if z[j] <= <floating>-0.25:
            e[j] = e[j] - 1
        elif z[j] < 0:
            e[j] = fexpm1(z[j])
        else:
            e[j] = 0


cdef inline void _swish_row(const floating* z, floating* out, Py_ssize_t m) noexcept nogil:
    # out <- z sigmoid(z) over m values (out may be z), the sigmoids
    # vectorised a chunk at a time
    cdef Py_ssize_t j, k, start = 0
    cdef floating s[SWISH_CHUNK]
    while start < m:
        k = min(<Py_ssize_t>SWISH_CHUNK, m - start)
        for j in range(k):
            s[j] = z[start + j]
        vsigmoid(s, k)
        for j in range(k):
            out[start + j] = z[start + j] * s[j]
        start += k


cdef inline bint needs_preactivation(int act) noexcept nogil:
    """True for the activations whose derivative is taken from Z, not A."""
    return act == ACT_GELU or act == ACT_SWISH


cdef inline floating activate(floating z, int act) noexcept nogil:
    if act == ACT_RELU:
        return 0 if z < 0 else z
    if act == ACT_TANH:
        if floating is float:
            return tanhf(z)
        else:
            return tanh(z)
    if act == ACT_SIGMOID:
        return sigmoid(z)
    if act == ACT_LEAKY_RELU:
        return leaky_relu(z)
    if act == ACT_ELU:
        return elu(z)
    if act == ACT_SELU:
        return selu(z)
    if act == ACT_GELU:
        return gelu(z)
    if act == ACT_SWISH:
        return swish(z)
    if act == ACT_SOFTPLUS:
        return softplus(z)
    return z


cdef inline floating derivative_from_output(floating a, int act) noexcept nogil:
    if act == ACT_RELU:
        return 1 if a > 0 else 0
    if act == ACT_TANH:
        return 1 - a * a
    if act == ACT_SIGMOID:
        return a * (1 - a)
    if act == ACT_LEAKY_RELU:
        # a > 0 exactly when z > 0 (the slope is positive)
        return 1 if a > 0 else <floating>LEAKY_RELU_SLOPE
    if act == ACT_ELU:
        # exp(z) = a + alpha below 0
        return 1 if a > 0 else a + 1
    if act == ACT_SELU:
        return <floating>SELU_SCALE if a > 0 else a + <floating>(SELU_SCALE * SELU_ALPHA)
    if act == ACT_SOFTPLUS:
        return softplus_derivative_from_output(a)
    return 1


cdef inline floating derivative_from_preactivation(floating z, int act) noexcept nogil:
    if act == ACT_GELU:
        return gelu_derivative(z)
    if act == ACT_SWISH:
        return swish_derivative(z)
    return 1


cdef inline void softmax_row(floating* z, Py_ssize_t m) noexcept nogil:
    """In place: z <- exp(z - max z) / sum exp(z - max z)."""
    cdef Py_ssize_t j
    cdef floating zmax = z[0]
    cdef floating total = 0
    for j in range(1, m):
        if z[j] > zmax:
            zmax = z[j]
    for j in range(m):
        z[j] = z[j] - zmax
    vexp(z, m)   # vectorised, csrc/pynn/kernels/vmath.h
    for j in range(m):
        total += z[j]
    for j in range(m):
        z[j] = z[j] / total


# The loops below are written one per activation, each without branches in
# its body (a select, not a conditional store): relu's signs are as good as
# random, and a mispredicted branch per element cost more than the rest of
# the pass; branch-free, the compiler also vectorises them.

cdef inline void bias_activate(floating* Z, const floating* b,
                               Py_ssize_t n, Py_ssize_t m, int act) noexcept nogil:
    """In place over the row-major (n x m) Z: Z <- act(Z + b), one pass."""
    cdef Py_ssize_t i, j, start, k
    cdef floating* row
    cdef floating z
    cdef floating s[SWISH_CHUNK]
    for i in range(n):
        row = Z + i * m
        if act == ACT_RELU:
            for j in range(m):
                z = row[j] + b[j]
                row[j] = 0 if z < 0 else z   # NaN passes through: divergence shows
        elif act == ACT_LINEAR:
            for j in range(m):
                row[j] = row[j] + b[j]
        elif act == ACT_SOFTMAX:
            for j in range(m):
                row[j] = row[j] + b[j]
            softmax_row(row, m)
        elif act == ACT_TANH:
            for j in range(m):
                row[j] = row[j] + b[j]
            vtanh(row, m)   # vectorised, csrc/pynn/kernels/vmath.h
        elif act == ACT_SIGMOID:
            for j in range(m):
                row[j] = row[j] + b[j]
            vsigmoid(row, m)   # vectorised, csrc/pynn/kernels/vmath.h
        elif act == ACT_LEAKY_RELU:
            for j in range(m):
                z = row[j] + b[j]
                row[j] = z if z > 0 else <floating>LEAKY_RELU_SLOPE * z
        elif act == ACT_ELU or act == ACT_SELU:
            # the exponentials of the negative side vectorised, a chunk at a time
            start = 0
            while start < m:
                k = min(<Py_ssize_t>SWISH_CHUNK, m - start)
                for j in range(k):
                    row[start + j] = row[start + j] + b[start + j]
                _expm1_negative(row + start, s, k)
                if act == ACT_ELU:
                    for j in range(k):
                        z = row[start + j]
                        row[start + j] = z if z > 0 else s[j]
                else:
                    for j in range(k):
                        z = row[start + j]
                        row[start + j] = (<floating>SELU_SCALE * z if z > 0
                                          else <floating>(SELU_SCALE * SELU_ALPHA) * s[j])
                start += k
        elif act == ACT_SOFTPLUS:
            # max(z, 0) + log1p(exp(-|z|)), the exponentials vectorised
            start = 0
            while start < m:
                k = min(<Py_ssize_t>SWISH_CHUNK, m - start)
                for j in range(k):
                    z = row[start + j] + b[start + j]
                    row[start + j] = z
                    s[j] = -z if z > 0 else z
                vexp(s, k)
                for j in range(k):
                    z = row[start + j]
                    row[start + j] = (z if z > 0 else 0) + _log1p(s[j])
                start += k
        elif act == ACT_SWISH:
            for j in range(m):
                row[j] = row[j] + b[j]
            _swish_row(row, row, m)
        else:
            for j in range(m):
                row[j] = activate(row[j] + b[j], act)


cdef inline void bias_activate_keep(floating* A, floating* Z, const floating* b,
                                    Py_ssize_t n, Py_ssize_t m, int act) noexcept nogil:
    """Over the row-major (n x m) A, which holds X @ W.T: Z <- A + b, then
    A <- act(Z), for an activation whose derivative needs Z."""
    cdef Py_ssize_t i, j
    cdef floating z
    for i in range(n):
        if act == ACT_SWISH:
            for j in range(m):
                Z[i * m + j] = A[i * m + j] + b[j]
            _swish_row(Z + i * m, A + i * m, m)
            continue
        for j in range(m):
            z = A[i * m + j] + b[j]
            Z[i * m + j] = z
            A[i * m + j] = activate(z, act)


cdef inline void activation_backward(floating* dA, const floating* A,
                                     Py_ssize_t n, Py_ssize_t m, int act) noexcept nogil:
    """In place over (n x m): dA <- dL/dZ given dL/dA and the output A."""
    cdef Py_ssize_t i, j, start, k, size = n * m
    cdef floating t[SWISH_CHUNK]
    cdef floating e[SWISH_CHUNK]
    cdef floating dot
    cdef floating* g
    cdef const floating* a
    if act == ACT_LINEAR:
        return
    if act == ACT_RELU:
        for j in range(size):
            dA[j] = dA[j] if A[j] > 0 else 0
    elif act == ACT_TANH:
        for j in range(size):
            dA[j] = dA[j] * (1 - A[j] * A[j])
    elif act == ACT_SIGMOID:
        for j in range(size):
            dA[j] = dA[j] * (A[j] * (1 - A[j]))
    elif act == ACT_SOFTMAX:
        for i in range(n):
            g = dA + i * m
            a = A + i * m
            # Jacobian-vector product of softmax: a * (g - <g, a>).
            dot = 0
            for j in range(m):
                dot += g[j] * a[j]
            for j in range(m):
                g[j] = a[j] * (g[j] - dot)
    elif act == ACT_ELU:
        # one loop per activation, branch-free, so that it vectorises
        for j in range(size):
            dA[j] = dA[j] * (1 if A[j] > 0 else A[j] + 1)
    elif act == ACT_SELU:
        for j in range(size):
            dA[j] = dA[j] * (<floating>SELU_SCALE if A[j] > 0
                             else A[j] + <floating>(SELU_SCALE * SELU_ALPHA))
    elif act == ACT_LEAKY_RELU:
        for j in range(size):
            dA[j] = dA[j] * (1 if A[j] > 0 else <floating>LEAKY_RELU_SLOPE)
    elif act == ACT_SOFTPLUS:
        # sigmoid(z) = -expm1(-a) (a >= 0), vectorised as elu's, a chunk at a time
        start = 0
        while start < size:
            k = min(<Py_ssize_t>SWISH_CHUNK, size - start)
            for j in range(k):
                t[j] = -A[start + j]
            _expm1_negative(t, e, k)
            for j in range(k):
                dA[start + j] = dA[start + j] * -e[j]
            start += k
    else:
        for j in range(size):
            dA[j] = dA[j] * derivative_from_output(A[j], act)


cdef inline void activation_backward_from_preactivation(
        floating* dA, const floating* Z, Py_ssize_t n, Py_ssize_t m, int act) noexcept nogil:
    """In place over (n x m): dA <- dL/dZ given dL/dA and the pre-activation
    Z, for the activations of needs_preactivation."""
    cdef Py_ssize_t j, start, k, size = n * m
    cdef floating s[SWISH_CHUNK]
    if act == ACT_GELU:
        # Phi(z) + z phi(z), the exponential of phi vectorised, erfc from libm
        start = 0
        while start < size:
            k = min(<Py_ssize_t>SWISH_CHUNK, size - start)
            for j in range(k):
                s[j] = <floating>-0.5 * Z[start + j] * Z[start + j]
            vexp(s, k)
            for j in range(k):
                dA[start + j] = dA[start + j] * (
                    <floating>0.5 * ferfc(-Z[start + j] * <floating>SQRT_HALF)
                    + Z[start + j] * <floating>INV_SQRT_2PI * s[j])
            start += k
        return
    if act == ACT_SWISH:
        # s (1 + z (1 - s)), s = sigmoid(z) vectorised, a chunk at a time
        start = 0
        while start < size:
            k = min(<Py_ssize_t>SWISH_CHUNK, size - start)
            for j in range(k):
                s[j] = Z[start + j]
            vsigmoid(s, k)
            for j in range(k):
                dA[start + j] = dA[start + j] * (s[j] * (1 + Z[start + j] * (1 - s[j])))
            start += k
        return
    for j in range(size):
        dA[j] = dA[j] * derivative_from_preactivation(Z[j], act)


# ---- the passes of big layers on two threads ------------------------------
#
# Rows are independent (softmax's sums run along a row), so a pass cut
# between two rows and run as two calls, one on workers.h's helper thread,
# gives the bits of one call.  Measured on 2 cores (AVX-512), the fastest
# of 2000 passes over a 256 x 2048 float32 batch, one thread / two: relu
# forward 55 / 56 us (a read and a write that one core streams as fast as
# two: relu, leaky relu and linear forward passes stay on one thread), relu
# backward 128 / 108 us, tanh 242 / 128-241 us, swish 336 / 193 us, selu
# 2149 / 1109 us (the machine shared with other work, load average 3).

cdef enum:
    # elements per pass from which an activation's pass takes two threads;
    # relu's and leaky relu's backward passes from 4 times as many
    ACT_PARALLEL_MIN_ELEMENTS = 1 << 16


cdef struct _ActShare:
    # one thread's rows of a pass (bias_activate_par's or activation_backward_par's)
    void* a                 # the forward pass's A (X @ W.T in, act(Z) out); dA backward
    void* z                 # the kept Z (forward, or NULL); backward: A or Z, read
    const void* b
    Py_ssize_t n, m
    int act
    bint backward, from_z, is_double


cdef inline void _act_rows(floating* a, floating* z, const floating* b, Py_ssize_t n,
                           Py_ssize_t m, int act, bint backward, bint from_z) noexcept nogil:
    if backward:
        if from_z:
            activation_backward_from_preactivation(a, z, n, m, act)
        else:
            activation_backward(a, z, n, m, act)
    elif z != NULL:
        bias_activate_keep(a, z, b, n, m, act)
    else:
        bias_activate(a, b, n, m, act)


cdef inline void _run_act_share(void* arg) noexcept nogil:
    cdef _ActShare* t = <_ActShare*>arg
    if t.is_double:
        _act_rows(<double*>t.a, <double*>t.z, <const double*>t.b, t.n, t.m, t.act,
                  t.backward, t.from_z)
    else:
        _act_rows(<float*>t.a, <float*>t.z, <const float*>t.b, t.n, t.m, t.act,
                  t.backward, t.from_z)


cdef inline bint _act_pays(Py_ssize_t n, Py_ssize_t m, int act, bint backward,
                           int n_threads) noexcept nogil:
    cdef Py_ssize_t size = n * m
    if n_threads < 2 or n < 2 or act == ACT_LINEAR:
        return False
    if act == ACT_RELU or act == ACT_LEAKY_RELU:
        return backward and size >= 4 * ACT_PARALLEL_MIN_ELEMENTS
    return size >= ACT_PARALLEL_MIN_ELEMENTS


cdef inline void _act_pass(floating* a, floating* z, const floating* b, Py_ssize_t n,
                           Py_ssize_t m, int act, bint backward, bint from_z,
                           int n_threads) noexcept nogil:
    cdef _ActShare first, second
    cdef Py_ssize_t half = n // 2
    if not _act_pays(n, m, act, backward, n_threads):
        _act_rows(a, z, b, n, m, act, backward, from_z)
        return
    first.a = a
    first.z = z
    first.b = b
    first.n = half
    first.m = m
    first.act = act
    first.backward = backward
    first.from_z = from_z
    first.is_double = floating is double
    second = first
    second.a = a + half * m
    second.z = z + half * m if z != NULL else NULL
    second.n = n - half
    run_pair(_run_act_share, &first, &second)


cdef inline void bias_activate_par(floating* A, floating* Z, const floating* b,
                                   Py_ssize_t n, Py_ssize_t m, int act,
                                   int n_threads) noexcept nogil:
    """bias_activate (Z NULL) or bias_activate_keep, on two threads for a
    big pass when n_threads allows it."""
    _act_pass(A, Z, b, n, m, act, False, False, n_threads)


cdef inline void activation_backward_par(floating* dA, const floating* AZ, Py_ssize_t n,
                                         Py_ssize_t m, int act, bint from_z,
                                         int n_threads) noexcept nogil:
    """activation_backward (AZ the output A) or, from_z, its twin from the
    pre-activation; on two threads for a big pass when n_threads allows it."""
    _act_pass(dA, <floating*>AZ, <const floating*>NULL, n, m, act, True, from_z, n_threads)
