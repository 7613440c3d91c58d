# Activations and their derivatives, per element and per row.
#
# Backward passes take the derivative from the activation's *output* A rather
# than its input Z (relu: A > 0, tanh: 1 - A^2, sigmoid: A (1 - A)), so a
# forward pass only has to keep A.
from cython cimport floating
from libc.math cimport exp, expf, tanh, tanhf

from codes cimport ACT_LINEAR, ACT_RELU, ACT_SIGMOID, ACT_SOFTMAX, ACT_TANH
from vmath cimport vexp, vsigmoid, vtanh


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
    return z


cdef inline floating derivative_from_output(floating a, int act) noexcept nogil:
    if act == ACT_RELU:
        return 1 if a > 0 else 0
    if act == ACT_TANH:
        return 1 - a * a
    if act == ACT_SIGMOID:
        return a * (1 - a)
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
    vexp(z, m)   # vectorised, csrc/vmath.h
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
    cdef Py_ssize_t i, j
    cdef floating* row
    cdef floating z
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
            vtanh(row, m)   # vectorised, csrc/vmath.h
        else:
            for j in range(m):
                row[j] = row[j] + b[j]
            vsigmoid(row, m)   # vectorised, csrc/vmath.h


cdef inline void activation_backward(floating* dA, const floating* A,
                                     Py_ssize_t n, Py_ssize_t m, int act) noexcept nogil:
    """In place over (n x m): dA <- dL/dZ given dL/dA and the output A."""
    cdef Py_ssize_t i, j, size = n * m
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
    else:
        for i in range(n):
            g = dA + i * m
            a = A + i * m
            # Jacobian-vector product of softmax: a * (g - <g, a>).
            dot = 0
            for j in range(m):
                dot += g[j] * a[j]
            for j in range(m):
                g[j] = a[j] * (g[j] - dot)
