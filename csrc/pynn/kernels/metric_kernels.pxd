# Metrics computed inside the compiled epoch.
from cython cimport floating

from pynn.kernels.codes cimport METRIC_BINARY_ACCURACY, METRIC_CATEGORICAL_ACCURACY


# Accuracies computed on each batch's output inside the compiled epoch, so
# that fit with metrics=["accuracy"] stays one call (pynn/metrics.py has the
# NumPy definitions these follow: ties in argmax go to the first index).
cdef enum:
    MAX_METRICS = 8


cdef struct Metrics:
    int n
    int codes[MAX_METRICS]
    double thresholds[MAX_METRICS]
    double* values          # values[j * stride + k]: metric j on batch k
    Py_ssize_t stride


cdef inline Py_ssize_t _argmax(const floating* row, Py_ssize_t m) noexcept nogil:
    cdef Py_ssize_t j, best = 0
    for j in range(1, m):
        if row[j] > row[best]:
            best = j
    return best


cdef inline double metric_value(int code, double threshold, const floating* out, const floating* Y,
                    Py_ssize_t n, Py_ssize_t n_out, Py_ssize_t n_y) noexcept nogil:
    cdef Py_ssize_t i, hits = 0, truth
    cdef floating t = <floating>threshold
    if code == METRIC_BINARY_ACCURACY:
        for i in range(n * n_out):
            hits += (out[i] > t) == (Y[i] > 0.5)
        return hits / <double>(n * n_out)
    for i in range(n):
        if code == METRIC_CATEGORICAL_ACCURACY:
            truth = _argmax(Y + i * n_y, n_y)
        else:
            truth = <Py_ssize_t>Y[i * n_y]
        hits += _argmax(out + i * n_out, n_out) == truth
    return hits / <double>n
