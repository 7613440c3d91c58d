# Loss value and its gradient in one pass, as inline nogil loops.
#
# loss_and_grad(code, P, Y, row_weight, n, m, G, param) returns the mean loss
# of the batch and writes G = dL/dP, where P is the network's output as the loss
# sees it: activations for the plain losses, logits for the fused ones, the raw
# output (the log of the mean) for POISSON_LOG.  Values are accumulated in
# double whatever the storage type.  param is the loss's one setting (Huber's
# delta); the other losses ignore it.
#
# Sample weights: row_weight (n,) multiplies row i's loss and gradient by
# row_weight[i]; NULL means every row weighs 1.  The denominator of the mean
# is unchanged, as in Keras's "sum_over_batch_size" reduction: sum_i w_i l_i
# over the batch size, not over the sum of the weights.
#
# Averaging, as Keras does it:
# - MSE, binary cross-entropy, MAE, Huber and both Poissons: the mean over
#   all n * m elements;
# - categorical and sparse categorical cross-entropy: the sum over the m
#   classes, the mean over the n samples.
#
# The *_LOGITS kernels take logits x and apply sigmoid / softmax themselves:
# the loss is written so that no exp overflows and no log sees 0 (finite and
# exact at |x| = 1e4).  The plain kernels take probabilities p and must take
# log p: there, and only where p is within the machine epsilon of the
# storage type from 0 (or, for binary cross-entropy, from 1), p is clipped to
# that epsilon, and the gradient is the loss's derivative at the clipped p
# (not the zero a clip's derivative would give, so a saturated wrong output
# is still pushed back).
#
# Sparse labels arrive as floats, one per row (Y is (n, 1)); the Python side
# checks they are integers in [0, m).  A label outside that range makes the
# kernel return NaN rather than read out of bounds.
from cython cimport floating
from libc.float cimport DBL_EPSILON, FLT_EPSILON
from libc.math cimport NAN, exp, fabs, log, log1p

from pynn.kernels.codes cimport (
    LOSS_BCE, LOSS_BCE_LOGITS, LOSS_CCE, LOSS_CCE_LOGITS, LOSS_HUBER, LOSS_MAE, LOSS_MSE,
    LOSS_POISSON, LOSS_POISSON_LOG, LOSS_SPARSE_CCE, LOSS_SPARSE_CCE_LOGITS)


cdef enum:
    # mse_and_grad's partial sums of a row
    MSE_LANES = 8


cdef inline double _lanes_total(const double* acc) noexcept nogil:
    # MSE_LANES partial sums added pairwise
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))


cdef inline double mse_and_grad(const floating* P, const floating* Y,
                                const floating* row_weight,
                                Py_ssize_t n, Py_ssize_t m,
                                floating* G) noexcept nogil:
    # MSE is the mean over every element (n * m of them), as Keras and
    # PyTorch define it; dL/dP = 2 (P - Y) / (n m).  Each row's squares are
    # summed in MSE_LANES partial sums (one vector of doubles), so that the
    # sum is not one chain of n m dependent additions (a tiny network's
    # batch: 160, 0.2 us); the gradient does not depend on the order.
    cdef Py_ssize_t i, k, l, j, size = n * m
    cdef double total = 0, row
    cdef double acc[MSE_LANES]
    cdef floating diff, w
    cdef floating scale = <floating>(2.0 / <double>size)
    for i in range(n):
        w = _weight(row_weight, i)
        for l in range(MSE_LANES):
            acc[l] = 0
        k = 0
        while k + MSE_LANES <= m:
            for l in range(MSE_LANES):
                j = i * m + k + l
                diff = P[j] - Y[j]
                acc[l] += <double>diff * <double>diff
                G[j] = scale * w * diff
            k += MSE_LANES
        row = 0
        while k < m:
            j = i * m + k
            diff = P[j] - Y[j]
            row += <double>diff * <double>diff
            G[j] = scale * w * diff
            k += 1
        total += w * (row + _lanes_total(acc))
    return total / <double>size


cdef inline floating _weight(const floating* row_weight, Py_ssize_t i) noexcept nogil:
    # NULL: every row weighs 1 (a multiplication by 1 is exact, so the
    # unweighted results are unchanged bit for bit)
    if row_weight == NULL:
        return 1
    return row_weight[i]


cdef inline double _eps(const floating* dtype_of) noexcept nogil:
    # The clip of the probability kernels: the storage type's epsilon, so
    # 1 - eps is representable and every p in [eps, 1 - eps] is left alone.
    if floating is float:
        return FLT_EPSILON
    else:
        return DBL_EPSILON


# ------------------------------------------------------ binary cross-entropy

cdef inline double bce_logits_and_grad(const floating* X, const floating* Y,
                                       const floating* row_weight,
                                       Py_ssize_t n, Py_ssize_t m,
                                       floating* G) noexcept nogil:
    # l = max(x, 0) - x z + log1p(exp(-|x|)),  dl/dx = sigmoid(x) - z.
    # max(x, 0) - x z is written x (1 - z) or -x z by the sign of x, so no
    # two large terms cancel; exp(-|x|) never overflows and serves both the
    # loss and the sigmoid (taken on the branch of the sign of x).
    cdef Py_ssize_t i, size = n * m
    cdef double x, z, e, sig, w, total = 0
    cdef double scale = 1.0 / <double>size
    for i in range(size):
        x = X[i]
        z = Y[i]
        w = _weight(row_weight, i // m)
        e = exp(-fabs(x))
        if x > 0:
            total += w * (x * (1 - z) + log1p(e))
            sig = 1 / (1 + e)
        else:
            total += w * (-x * z + log1p(e))
            sig = e / (1 + e)
        G[i] = <floating>((sig - z) * scale * w)
    return total * scale


cdef inline double bce_and_grad(const floating* P, const floating* Y,
                                const floating* row_weight,
                                Py_ssize_t n, Py_ssize_t m,
                                floating* G) noexcept nogil:
    # l = -(z log p + (1 - z) log(1 - p)),  dl/dp = (p - z) / (p (1 - p)).
    cdef Py_ssize_t i, size = n * m
    cdef double p, z, w, total = 0
    cdef double scale = 1.0 / <double>size
    cdef double eps = _eps(P)
    for i in range(size):
        p = P[i]
        z = Y[i]
        w = _weight(row_weight, i // m)
        if p < eps:           # NaN passes through, so divergence shows
            p = eps
        elif p > 1 - eps:
            p = 1 - eps
        total -= w * (z * log(p) + (1 - z) * log1p(-p))
        G[i] = <floating>((p - z) / (p * (1 - p)) * scale * w)
    return total * scale


# ------------------------------------------------- categorical cross-entropy

cdef inline double _row_max(const floating* x, Py_ssize_t m) noexcept nogil:
    cdef Py_ssize_t k
    cdef double best = x[0]
    for k in range(1, m):
        if x[k] > best:
            best = x[k]
    return best


cdef inline double _exp_shifted(const floating* x, Py_ssize_t m, double xmax,
                                floating* out) noexcept nogil:
    # out <- exp(x - max), each in (0, 1]; returns their sum, in [1, m].
    cdef Py_ssize_t k
    cdef double e, total = 0
    for k in range(m):
        e = exp(<double>x[k] - xmax)
        out[k] = <floating>e
        total += e
    return total


cdef inline double cce_logits_and_grad(const floating* X, const floating* Y,
                                       const floating* row_weight,
                                       Py_ssize_t n, Py_ssize_t m,
                                       floating* G) noexcept nogil:
    # l = sum_k y_k (lse(x) - x_k),  dl/dx = softmax(x) sum_k y_k - y.
    # lse(x) - x_k is taken as log(sum exp(x - max)) - (x_k - max): the
    # difference x_k - max is exact, so huge logits lose nothing.  Targets
    # need not sum to 1 (probability targets, label smoothing): the
    # gradient's sum_k y_k keeps it the exact derivative anyway.
    cdef Py_ssize_t i, k
    cdef const floating* x
    cdef const floating* y
    cdef floating* g
    cdef double xmax, lse0, sum_e, ysum, row_loss, w, total = 0
    cdef double scale = 1.0 / <double>n
    for i in range(n):
        x = X + i * m
        y = Y + i * m
        g = G + i * m
        xmax = _row_max(x, m)
        sum_e = _exp_shifted(x, m, xmax, g)
        lse0 = log(sum_e)     # lse(x) - max
        ysum = 0
        row_loss = 0
        for k in range(m):
            ysum += y[k]
            row_loss += y[k] * (lse0 - (<double>x[k] - xmax))
        w = _weight(row_weight, i)
        total += w * row_loss
        for k in range(m):
            g[k] = <floating>((g[k] / sum_e * ysum - y[k]) * scale * w)
    return total * scale


cdef inline double cce_and_grad(const floating* P, const floating* Y,
                                const floating* row_weight,
                                Py_ssize_t n, Py_ssize_t m,
                                floating* G) noexcept nogil:
    # l = -sum_k y_k log p_k,  dl/dp_k = -y_k / p_k.  p is taken as given
    # (not renormalised to sum 1, unlike Keras): it should be a softmax.
    cdef Py_ssize_t i, size = n * m
    cdef double p, w, total = 0
    cdef double scale = 1.0 / <double>n
    cdef double eps = _eps(P)
    for i in range(size):
        p = P[i]
        w = _weight(row_weight, i // m)
        if p < eps:
            p = eps
        total -= w * (Y[i] * log(p))
        G[i] = <floating>(-Y[i] / p * scale * w)
    return total * scale


cdef inline double sparse_cce_logits_and_grad(const floating* X, const floating* labels,
                                              const floating* row_weight,
                                              Py_ssize_t n, Py_ssize_t m,
                                              floating* G) noexcept nogil:
    # l = lse(x) - x_label,  dl/dx = softmax(x) - onehot(label).
    cdef Py_ssize_t i, k, label
    cdef const floating* x
    cdef floating* g
    cdef double xmax, sum_e, w, total = 0
    cdef double scale = 1.0 / <double>n
    for i in range(n):
        if not (labels[i] >= 0 and labels[i] < m):
            return NAN
        label = <Py_ssize_t>labels[i]
        x = X + i * m
        g = G + i * m
        xmax = _row_max(x, m)
        sum_e = _exp_shifted(x, m, xmax, g)
        w = _weight(row_weight, i)
        total += w * (log(sum_e) - (<double>x[label] - xmax))
        for k in range(m):
            g[k] = <floating>((g[k] / sum_e - (k == label)) * scale * w)
    return total * scale


cdef inline double sparse_cce_and_grad(const floating* P, const floating* labels,
                                       const floating* row_weight,
                                       Py_ssize_t n, Py_ssize_t m,
                                       floating* G) noexcept nogil:
    # l = -log p_label,  dl/dp_label = -1 / p_label, 0 for the other classes.
    cdef Py_ssize_t i, k, label
    cdef double p, w, total = 0
    cdef double scale = 1.0 / <double>n
    cdef double eps = _eps(P)
    for i in range(n):
        if not (labels[i] >= 0 and labels[i] < m):
            return NAN
        label = <Py_ssize_t>labels[i]
        for k in range(m):
            G[i * m + k] = 0
        p = P[i * m + label]
        if p < eps:
            p = eps
        w = _weight(row_weight, i)
        total -= w * log(p)
        G[i * m + label] = <floating>(-scale / p * w)
    return total * scale


# ------------------------------------------- MAE, Huber and the Poissons
#
# One function per loss gives the loss of one element and its derivative
# with respect to the output, in double; _elementwise_mean is the one loop
# over the batch, inlined once per loss with its code a constant.

cdef struct LossGrad:
    double loss
    double grad


cdef inline LossGrad mae_element(double p, double y) noexcept nogil:
    # l = |p - y|,  dl/dp = sign(p - y), 0 where they are equal (the
    # subgradient PyTorch's l1_loss and Keras's backends take)
    cdef LossGrad r
    cdef double d = p - y
    r.loss = fabs(d)
    r.grad = (d > 0) - (d < 0)
    return r


cdef inline LossGrad huber_element(double p, double y, double delta) noexcept nogil:
    # Keras's Huber (PyTorch's HuberLoss): d = p - y,
    # l = d^2 / 2 for |d| <= delta, delta |d| - delta^2 / 2 beyond;
    # dl/dp = clip(d, -delta, delta)
    cdef LossGrad r
    cdef double d = p - y
    cdef double a = fabs(d)
    if a <= delta:
        r.loss = 0.5 * d * d
        r.grad = d
    else:
        r.loss = delta * a - 0.5 * delta * delta
        r.grad = delta if d > 0 else -delta
    return r


cdef inline LossGrad poisson_element(double p, double y) noexcept nogil:
    # Keras's Poisson: l = p - y log(p + eps),  dl/dp = 1 - y / (p + eps).
    # The eps is Keras's whole guard: p should be >= 0 (a softplus, relu or
    # exp output); a p below -eps gives NaN, and the step is refused.
    cdef LossGrad r
    cdef double q = p + 1e-7      # Keras's backend.epsilon(), for both dtypes
    r.loss = p - y * log(q)
    r.grad = 1 - y / q
    return r


cdef inline LossGrad poisson_log_element(double raw, double y) noexcept nogil:
    # scikit-learn's half Poisson deviance with its log link, mu = exp(raw):
    # l = y log(y / mu) - y + mu = exp(raw) - y raw + y log y - y
    # (y log y = 0 at y = 0),  dl/draw = exp(raw) - y.
    # log(mu) is raw itself, never log(exp(raw)): no inf - inf.  exp is taken
    # in double, so a float32 raw output gives a finite loss up to raw ~ 709.78;
    # beyond, the loss (above 1e308) is +inf, never NaN.
    cdef LossGrad r
    cdef double mu = exp(raw)
    r.loss = mu - y * raw - y
    if y > 0:
        r.loss += y * log(y)
    r.grad = mu - y
    return r


cdef inline LossGrad _element(int code, double p, double y, double param) noexcept nogil:
    if code == LOSS_MAE:
        return mae_element(p, y)
    if code == LOSS_HUBER:
        return huber_element(p, y, param)
    if code == LOSS_POISSON:
        return poisson_element(p, y)
    return poisson_log_element(p, y)


cdef inline double _elementwise_mean(int code, const floating* P, const floating* Y,
                                     const floating* row_weight,
                                     Py_ssize_t n, Py_ssize_t m,
                                     floating* G, double param) noexcept nogil:
    # The mean over every element (n * m of them) of w_i l(p, y); G = its gradient.
    cdef Py_ssize_t i, k, j
    cdef double w, total = 0
    cdef double scale = 1.0 / <double>(n * m)
    cdef LossGrad r
    for i in range(n):
        w = _weight(row_weight, i)
        for k in range(m):
            j = i * m + k
            r = _element(code, P[j], Y[j], param)
            total += w * r.loss
            G[j] = <floating>(r.grad * scale * w)
    return total * scale


cdef inline double loss_and_grad(int code, const floating* P, const floating* Y,
                                 const floating* row_weight,
                                 Py_ssize_t n, Py_ssize_t m,
                                 floating* G, double param) noexcept nogil:
    if code == LOSS_MSE:
        return mse_and_grad(P, Y, row_weight, n, m, G)
    if code == LOSS_BCE_LOGITS:
        return bce_logits_and_grad(P, Y, row_weight, n, m, G)
    if code == LOSS_BCE:
        return bce_and_grad(P, Y, row_weight, n, m, G)
    if code == LOSS_CCE_LOGITS:
        return cce_logits_and_grad(P, Y, row_weight, n, m, G)
    if code == LOSS_CCE:
        return cce_and_grad(P, Y, row_weight, n, m, G)
    if code == LOSS_SPARSE_CCE_LOGITS:
        return sparse_cce_logits_and_grad(P, Y, row_weight, n, m, G)
    if code == LOSS_SPARSE_CCE:
        return sparse_cce_and_grad(P, Y, row_weight, n, m, G)
    # each with its code as a constant, so the inlined loop loses the switch
    if code == LOSS_MAE:
        return _elementwise_mean(LOSS_MAE, P, Y, row_weight, n, m, G, param)
    if code == LOSS_HUBER:
        return _elementwise_mean(LOSS_HUBER, P, Y, row_weight, n, m, G, param)
    if code == LOSS_POISSON:
        return _elementwise_mean(LOSS_POISSON, P, Y, row_weight, n, m, G, param)
    if code == LOSS_POISSON_LOG:
        return _elementwise_mean(LOSS_POISSON_LOG, P, Y, row_weight, n, m, G, param)
    return -1.0
