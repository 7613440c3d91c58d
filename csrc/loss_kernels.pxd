# Loss value and its gradient in one pass, as inline nogil loops.
#
# loss_and_grad(code, P, Y, n, m, G) returns the mean loss of the batch and
# writes G = dL/dP, where P is the network's output as the loss sees it:
# activations for the plain losses, logits for the fused ones.  Values are
# accumulated in double whatever the storage type.
from cython cimport floating

cdef enum:
    LOSS_MSE = 0


cdef inline double mse_and_grad(const floating* P, const floating* Y,
                                Py_ssize_t n, Py_ssize_t m,
                                floating* G) noexcept nogil:
    # MSE is the mean over every element (n * m of them), as Keras and
    # PyTorch define it; dL/dP = 2 (P - Y) / (n m).
    cdef Py_ssize_t i, size = n * m
    cdef double total = 0
    cdef floating diff
    cdef floating scale = <floating>(2.0 / <double>size)
    for i in range(size):
        diff = P[i] - Y[i]
        total += <double>diff * <double>diff
        G[i] = scale * diff
    return total / <double>size


cdef inline double loss_and_grad(int code, const floating* P, const floating* Y,
                                 Py_ssize_t n, Py_ssize_t m,
                                 floating* G) noexcept nogil:
    if code == LOSS_MSE:
        return mse_and_grad(P, Y, n, m, G)
    return -1.0
