# The layer kinds other than Dense: inverted dropout, batch and layer
# normalisation, forward and backward over a batch x (n, w), row-major.
#
# Each keeps what its backward pass reads in a workspace the network
# allocates once (dense.pyx): a per-sample part (row_workspace values per
# row) and a part that does not grow with the batch (fixed_workspace).
# gamma and beta may be NULL (scale=False, center=False): 1 and 0 then;
# their gradients are NULL with them.  pynn/reference.py holds the NumPy
# twins (dropout_*, batchnorm_*, layernorm_*) these are tested against.
from cython cimport floating
from libc.math cimport ceil, isfinite, sqrt, sqrtf
from libc.stdint cimport uint64_t
from libc.string cimport memcpy, memset

from pynn.kernels.codes cimport KIND_BATCH_NORM, KIND_DROPOUT, KIND_LAYER_NORM
from pynn.kernels.pcg cimport PCG_MULT, pcg_next, pcg_output, pcg_t, uint128_t

# the per-layer settings (an array of N_SETTINGS doubles per layer)
cdef enum:
    N_SETTINGS = 2
    SET_RATE = 0            # Dropout: the fraction of units dropped
    SET_MOMENTUM = 0        # BatchNormalization: the moving statistics' momentum
    SET_EPSILON = 1         # both normalisations: added to the variance


cdef inline Py_ssize_t row_workspace(Py_ssize_t kind, Py_ssize_t w) noexcept nogil:
    # dropout: the scaled mask; BN: x_hat; LN: x_hat and the row's 1/std
    if kind == KIND_DROPOUT or kind == KIND_BATCH_NORM:
        return w
    if kind == KIND_LAYER_NORM:
        return w + 1
    return 0


cdef inline Py_ssize_t fixed_workspace(Py_ssize_t kind, Py_ssize_t w) noexcept nogil:
    # BN: the batch mean, variance and 1/std, and the two sums of backward
    return 5 * w if kind == KIND_BATCH_NORM else 0


cdef inline floating _rsqrt(floating v) noexcept nogil:
    if floating is float:
        return 1 / sqrtf(v)
    else:
        return 1 / sqrt(v)


# ------------------------------------------------------------------ dropout

cdef inline void dropout_forward(const floating* x, Py_ssize_t count, double rate,
                                 bint training, pcg_t* rng,
                                 floating* mask, floating* out) noexcept nogil:
    # Inverted dropout: out = x * mask with mask = 1 / (1 - rate) (computed in
    # double, rounded once to the type) where the unit is kept and 0 where
    # it is dropped.  One 64-bit draw per element, in row-major order: the
    # element is kept when its uniform u in [0, 1) (the top 53 bits) is
    # >= rate, with probability 1 - rate.  Inference and rate 0 copy x and
    # draw nothing.
    cdef Py_ssize_t i
    cdef pcg_t st
    cdef floating scale, m
    if not training or rate == 0:
        if training:
            for i in range(count):
                mask[i] = 1
        if out != x:
            memcpy(out, x, count * sizeof(floating))
        return
    scale = <floating>(1.0 / (1.0 - rate))
    # u = k 2^-53 >= rate exactly when the integer k >= ceil(rate 2^53)
    # (both sides exact: rate 2^53 < 2^53 is a double scaled by a power of 2)
    cdef uint64_t keep_from = <uint64_t>ceil(rate * 9007199254740992.0)
    # The stream is one chain s <- M s + c, each draw a 128-bit multiply
    # waiting for the last.  Four chains, each stepping four draws at once
    # (s <- M^4 s + c (M^3 + M^2 + M + 1)), give the same draws in the same
    # order with four multiplies in flight.
    cdef uint128_t a4 = PCG_MULT * PCG_MULT
    a4 = a4 * a4
    cdef uint128_t c4 = rng.inc * (((PCG_MULT + 1) * PCG_MULT + 1) * PCG_MULT + 1)
    cdef uint128_t s0, s1, s2, s3
    i = 0
    if count >= 4:
        s0 = rng.state * PCG_MULT + rng.inc
        s1 = s0 * PCG_MULT + rng.inc
        s2 = s1 * PCG_MULT + rng.inc
        s3 = s2 * PCG_MULT + rng.inc
        while True:
            mask[i] = scale if (pcg_output(s0) >> 11) >= keep_from else 0
            mask[i + 1] = scale if (pcg_output(s1) >> 11) >= keep_from else 0
            mask[i + 2] = scale if (pcg_output(s2) >> 11) >= keep_from else 0
            mask[i + 3] = scale if (pcg_output(s3) >> 11) >= keep_from else 0
            i += 4
            if i + 4 > count:
                break
            s0 = s0 * a4 + c4
            s1 = s1 * a4 + c4
            s2 = s2 * a4 + c4
            s3 = s3 * a4 + c4
        rng.state = s3
    st = rng[0]             # the last draws one at a time, in a local
    while i < count:
        mask[i] = scale if (pcg_next(&st) >> 11) >= keep_from else 0
        i += 1
    rng[0] = st
    for i in range(count):
        out[i] = x[i] * mask[i]


cdef inline void dropout_backward(const floating* grad_out, const floating* mask,
                                  Py_ssize_t count, floating* grad_x) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(count):
        grad_x[i] = grad_out[i] * mask[i]


# --------------------------------------------------- batch normalisation

cdef inline void _scale_shift(const floating* x_hat, Py_ssize_t n, Py_ssize_t w,
                              const floating* gamma, const floating* beta,
                              floating* out) noexcept nogil:
    cdef Py_ssize_t i, j
    cdef const floating* xr
    cdef floating* orow
    for i in range(n):
        xr = x_hat + i * w
        orow = out + i * w
        for j in range(w):
            orow[j] = ((gamma[j] * xr[j]) if gamma != NULL else xr[j]) \
                + (beta[j] if beta != NULL else 0)


cdef inline void batch_norm_forward(const floating* x, Py_ssize_t n, Py_ssize_t w,
                                    const floating* gamma, const floating* beta,
                                    double epsilon, bint training,
                                    const floating* moving_mean,
                                    const floating* moving_var,
                                    floating* x_hat, floating* fixed,
                                    floating* out) noexcept nogil:
    # Training: the batch's mean and biased variance per feature (kept in
    # fixed[0:w], fixed[w:2w] for the moving update, 1/std in fixed[2w:3w]);
    # inference: the moving statistics.  out = gamma * x_hat + beta.
    cdef Py_ssize_t i, j
    cdef floating* mean = fixed
    cdef floating* var = fixed + w
    cdef floating* inv_std = fixed + 2 * w
    cdef const floating* xr
    cdef floating* hr
    cdef floating c, eps = <floating>epsilon, inv_n = <floating>1 / <floating>n
    if training:
        memset(mean, 0, 2 * w * sizeof(floating))
        for i in range(n):
            xr = x + i * w
            for j in range(w):
                mean[j] += xr[j]
        for j in range(w):
            mean[j] *= inv_n
        for i in range(n):
            xr = x + i * w
            for j in range(w):
                c = xr[j] - mean[j]
                var[j] += c * c
        for j in range(w):
            var[j] *= inv_n
            inv_std[j] = _rsqrt(var[j] + eps)
    else:
        mean = <floating*>moving_mean
        for j in range(w):
            inv_std[j] = _rsqrt(moving_var[j] + eps)
    for i in range(n):
        xr = x + i * w
        hr = x_hat + i * w
        for j in range(w):
            hr[j] = (xr[j] - mean[j]) * inv_std[j]
    _scale_shift(x_hat, n, w, gamma, beta, out)


cdef inline floating _moving(floating moving, floating batch, floating m,
                             floating one_minus) noexcept nogil:
    # Keras's moving average: moving * momentum + batch * (1 - momentum).
    return moving * m + batch * one_minus


cdef inline void batch_norm_update_moving(const floating* fixed, Py_ssize_t w,
                                          double momentum, floating* moving_mean,
                                          floating* moving_var) noexcept nogil:
    cdef Py_ssize_t j
    cdef floating m = <floating>momentum, one_minus = <floating>(1.0 - momentum)
    for j in range(w):
        moving_mean[j] = _moving(moving_mean[j], fixed[j], m, one_minus)
        moving_var[j] = _moving(moving_var[j], fixed[w + j], m, one_minus)


cdef inline bint batch_norm_moving_stays_finite(const floating* fixed, Py_ssize_t w,
                                                double momentum,
                                                const floating* moving_mean,
                                                const floating* moving_var) noexcept nogil:
    # Whether batch_norm_update_moving would write finite values only (a
    # finite batch can still overflow its variance in float32): the same
    # arithmetic, checked before a step is applied.
    cdef Py_ssize_t j
    cdef floating m = <floating>momentum, one_minus = <floating>(1.0 - momentum)
    cdef bint ok = True
    for j in range(w):
        ok &= isfinite(_moving(moving_mean[j], fixed[j], m, one_minus)) \
            and isfinite(_moving(moving_var[j], fixed[w + j], m, one_minus))
    return ok


cdef inline void batch_norm_backward(const floating* grad_out, const floating* x_hat,
                                     Py_ssize_t n, Py_ssize_t w, const floating* gamma,
                                     floating* fixed, floating* grad_gamma,
                                     floating* grad_beta, floating* grad_x) noexcept nogil:
    # With d = grad_out * gamma and the sums over the batch:
    #   grad_x = inv_std / n * (n d - sum(d) - x_hat sum(d x_hat))
    #          = gamma inv_std / n * (n g - sum(g) - x_hat sum(g x_hat)), g = grad_out
    # and sum(g x_hat), sum(g) are grad_gamma and grad_beta.
    cdef Py_ssize_t i, j
    cdef floating* inv_std = fixed + 2 * w
    cdef floating* sum_g = fixed + 3 * w
    cdef floating* sum_gx = fixed + 4 * w
    cdef const floating* gr
    cdef const floating* hr
    cdef floating* dr
    cdef floating fn = <floating>n
    memset(sum_g, 0, 2 * w * sizeof(floating))
    for i in range(n):
        gr = grad_out + i * w
        hr = x_hat + i * w
        for j in range(w):
            sum_g[j] += gr[j]
            sum_gx[j] += gr[j] * hr[j]
    if grad_gamma != NULL:
        memcpy(grad_gamma, sum_gx, w * sizeof(floating))
    if grad_beta != NULL:
        memcpy(grad_beta, sum_g, w * sizeof(floating))
    if grad_x == NULL:
        return
    for j in range(w):
        # the column's factor, kept where 1/std was: backward reads it no more
        inv_std[j] = (gamma[j] * inv_std[j] if gamma != NULL else inv_std[j]) / fn
    for i in range(n):
        gr = grad_out + i * w
        hr = x_hat + i * w
        dr = grad_x + i * w
        for j in range(w):
            dr[j] = inv_std[j] * (fn * gr[j] - sum_g[j] - hr[j] * sum_gx[j])


cdef inline void _scale_shift_grads(const floating* grad_out, const floating* x_hat,
                                    Py_ssize_t n, Py_ssize_t w, floating* grad_gamma,
                                    floating* grad_beta) noexcept nogil:
    # gamma's and beta's gradients of gamma * x_hat + beta, summed over the
    # batch (NULL: the layer has no such part)
    cdef Py_ssize_t i, j
    cdef const floating* gr
    cdef const floating* hr
    if grad_gamma != NULL:
        memset(grad_gamma, 0, w * sizeof(floating))
    if grad_beta != NULL:
        memset(grad_beta, 0, w * sizeof(floating))
    for i in range(n):
        gr = grad_out + i * w
        hr = x_hat + i * w
        for j in range(w):
            if grad_gamma != NULL:
                grad_gamma[j] += gr[j] * hr[j]
            if grad_beta != NULL:
                grad_beta[j] += gr[j]


cdef inline void batch_norm_backward_inference(const floating* grad_out,
                                               const floating* x_hat, Py_ssize_t n,
                                               Py_ssize_t w, const floating* gamma,
                                               const floating* fixed, floating* grad_gamma,
                                               floating* grad_beta,
                                               floating* grad_x) noexcept nogil:
    # After an inference-mode forward pass (the moving statistics are
    # constants): grad_x = grad_out * gamma * inv_std, inv_std in
    # fixed[2w:3w]; grad_gamma = sum(grad_out x_hat), grad_beta = sum(grad_out).
    cdef Py_ssize_t i, j
    cdef const floating* inv_std = fixed + 2 * w
    cdef const floating* gr
    cdef floating* dr
    _scale_shift_grads(grad_out, x_hat, n, w, grad_gamma, grad_beta)
    if grad_x == NULL:
        return
    for i in range(n):
        gr = grad_out + i * w
        dr = grad_x + i * w
        for j in range(w):
            dr[j] = gr[j] * (gamma[j] * inv_std[j] if gamma != NULL else inv_std[j])


# --------------------------------------------------- layer normalisation

cdef inline void layer_norm_forward(const floating* x, Py_ssize_t n, Py_ssize_t w,
                                    const floating* gamma, const floating* beta,
                                    double epsilon, floating* work,
                                    floating* out) noexcept nogil:
    # Per sample over its w features, the same in training and inference.
    # work holds x_hat (n x w), then each row's 1/std (n).
    cdef Py_ssize_t i, j
    cdef const floating* xr
    cdef floating* hr
    cdef floating* inv_std = work + n * w
    cdef floating mean, var, c, eps = <floating>epsilon, inv_w = <floating>1 / <floating>w
    for i in range(n):
        xr = x + i * w
        hr = work + i * w
        mean = 0
        for j in range(w):
            mean += xr[j]
        mean *= inv_w
        var = 0
        for j in range(w):
            c = xr[j] - mean
            hr[j] = c
            var += c * c
        inv_std[i] = _rsqrt(var * inv_w + eps)
        for j in range(w):
            hr[j] *= inv_std[i]
    _scale_shift(work, n, w, gamma, beta, out)


cdef inline void layer_norm_backward(const floating* grad_out, const floating* work,
                                     Py_ssize_t n, Py_ssize_t w, const floating* gamma,
                                     floating* grad_gamma, floating* grad_beta,
                                     floating* grad_x) noexcept nogil:
    # Per row, with d = grad_out * gamma and the sums over the row's features:
    #   grad_x = inv_std / w * (w d - sum(d) - x_hat sum(d x_hat));
    # gamma's and beta's gradients sum over the batch.
    cdef Py_ssize_t i, j
    cdef const floating* gr
    cdef const floating* hr
    cdef floating* dr
    cdef const floating* inv_std = work + n * w
    cdef floating d, sum_d, sum_dx, fw = <floating>w, f
    _scale_shift_grads(grad_out, work, n, w, grad_gamma, grad_beta)
    if grad_x == NULL:
        return
    for i in range(n):
        gr = grad_out + i * w
        hr = work + i * w
        dr = grad_x + i * w
        sum_d = 0
        sum_dx = 0
        for j in range(w):
            d = gr[j] * gamma[j] if gamma != NULL else gr[j]
            sum_d += d
            sum_dx += d * hr[j]
        f = inv_std[i] / fw
        for j in range(w):
            d = gr[j] * gamma[j] if gamma != NULL else gr[j]
            dr[j] = f * (fw * d - sum_d - hr[j] * sum_dx)
