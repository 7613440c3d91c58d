"""The NumPy baseline: pynn's maths in plain NumPy.

Written as a competent NumPy user would write a training loop: matrix
products through ``@`` (so BLAS does the work), in-place updates where they
are natural, no Python loop over samples.  Tests compare every compiled
kernel with these functions, and ``python -m pynn bench`` times pynn against
:class:`ReferenceNetwork`.

Shapes follow pynn: a batch ``x`` is (n, n_in), ``W`` is (units, n_in),
``b`` is (units,), and a layer computes ``act(x @ W.T + b)``.
"""
import numpy as np

# ------------------------------------------------------------ activations


def sigmoid(z):
    """Logistic function, without overflow for large |z|."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e)).astype(z.dtype, copy=False)


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def activate(z, activation):
    if activation == "linear":
        return z
    if activation == "relu":
        return np.maximum(z, 0)
    if activation == "tanh":
        return np.tanh(z)
    if activation == "sigmoid":
        return sigmoid(z)
    if activation == "softmax":
        return softmax(z)
    raise ValueError(f"unknown activation {activation!r}")


def activation_backward(grad_a, a, activation):
    """dL/dz from dL/da and the activation's output a."""
    if activation == "linear":
        return grad_a
    if activation == "relu":
        return grad_a * (a > 0)
    if activation == "tanh":
        return grad_a * (1 - a * a)
    if activation == "sigmoid":
        return grad_a * a * (1 - a)
    if activation == "softmax":
        return a * (grad_a - np.sum(grad_a * a, axis=1, keepdims=True))
    raise ValueError(f"unknown activation {activation!r}")


# ------------------------------------------------------------ dense layer


def dense_forward(x, W, b, activation):
    """act(x @ W.T + b)."""
    return activate(x @ W.T + b, activation)


def dense_backward(x, W, a, grad_a, activation, need_grad_x=True):
    """Gradients of one layer: returns (grad_W, grad_b, grad_x or None)."""
    grad_z = activation_backward(grad_a, a, activation)
    grad_W = grad_z.T @ x
    grad_b = grad_z.sum(axis=0)
    grad_x = grad_z @ W if need_grad_x else None
    return grad_W, grad_b, grad_x


# ----------------------------------------------------------------- losses


def mse(y_pred, y_true):
    """Mean over every element of (y_pred - y_true)**2, and its gradient."""
    diff = y_pred - y_true
    return float(np.mean(diff * diff)), (2 / diff.size) * diff


def _eps(x):
    # The kernels' last-resort clip: the machine epsilon of the storage type.
    return np.finfo(x.dtype).eps


def binary_crossentropy(p, z):
    """From probabilities: mean over every element of
    -(z log p + (1-z) log(1-p)), p clipped to [eps, 1-eps]; and its gradient."""
    eps = _eps(p)
    p = np.clip(p.astype(np.float64), eps, 1 - eps)
    z = z.astype(np.float64)
    loss = -np.mean(z * np.log(p) + (1 - z) * np.log1p(-p))
    return float(loss), ((p - z) / (p * (1 - p)) / p.size)


def binary_crossentropy_from_logits(x, z):
    """From logits: mean over every element of max(x,0) - x z + log1p(exp(-|x|)),
    and its gradient (sigmoid(x) - z) / size."""
    x64 = x.astype(np.float64)
    loss = np.where(x64 > 0, x64 * (1 - z), -x64 * z) + np.log1p(np.exp(-np.abs(x64)))
    return float(np.mean(loss)), (sigmoid(x64) - z) / x.size


def categorical_crossentropy(p, y):
    """From probabilities: -sum_k y_k log p_k, mean over samples (p clipped
    below at eps), and its gradient."""
    p = np.maximum(p.astype(np.float64), _eps(p))
    return float(-np.sum(y * np.log(p)) / p.shape[0]), -y / p / p.shape[0]


def _log_softmax(x):
    # log softmax(x) = (x - max) - log(sum exp(x - max)), exact for huge x
    shifted = x.astype(np.float64) - x.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def categorical_crossentropy_from_logits(x, y):
    """From logits: sum_k y_k (logsumexp(x) - x_k), mean over samples, and its
    gradient (softmax(x) sum_k y_k - y) / n."""
    log_p = _log_softmax(x)
    n = x.shape[0]
    grad = np.exp(log_p) * y.sum(axis=1, keepdims=True) - y
    return float(-np.sum(y * log_p) / n), grad / n


def _onehot(labels, n_classes):
    labels = np.asarray(labels).reshape(-1).astype(np.intp)
    return np.eye(n_classes)[labels]


def sparse_categorical_crossentropy(p, labels):
    """From probabilities and integer labels (n,) or (n, 1): -log p_label,
    mean over samples, and its gradient."""
    return categorical_crossentropy(p, _onehot(labels, p.shape[1]))


def sparse_categorical_crossentropy_from_logits(x, labels):
    """From logits and integer labels: logsumexp(x) - x_label, mean over
    samples, and its gradient (softmax(x) - onehot) / n."""
    return categorical_crossentropy_from_logits(x, _onehot(labels, x.shape[1]))


LOSSES = {
    "mse": mse,
    "binary_crossentropy": binary_crossentropy,
    "categorical_crossentropy": categorical_crossentropy,
    "sparse_categorical_crossentropy": sparse_categorical_crossentropy,
}
LOSSES_FROM_LOGITS = {
    "binary_crossentropy": binary_crossentropy_from_logits,
    "categorical_crossentropy": categorical_crossentropy_from_logits,
    "sparse_categorical_crossentropy": sparse_categorical_crossentropy_from_logits,
}
# The output activation each cross-entropy takes over when fed logits.
LOSS_ACTIVATION = {
    "binary_crossentropy": "sigmoid",
    "categorical_crossentropy": "softmax",
    "sparse_categorical_crossentropy": "softmax",
}

# -------------------------------------------------------------- optimizer


def flush_subnormals(x):
    """x with its subnormal entries set to zero (of the same sign): what the
    compiled kernels read and write, since they run with flush-to-zero and
    denormals-are-zero on (csrc/pynn/kernels/fpenv.h).  Returns a new array."""
    x = np.array(x, copy=True)
    x[np.abs(x) < np.finfo(x.dtype).tiny] *= 0
    return x


def sgd_update(w, g, v, learning_rate, momentum=0.0, nesterov=False, weight_decay=0.0):
    """One SGD step on arrays w (and velocity v), in place.  See pynn.SGD."""
    if weight_decay:
        g = g + weight_decay * w
    if momentum == 0:
        w -= learning_rate * g
        return
    v *= momentum
    v -= learning_rate * g
    if nesterov:
        w += momentum * v - learning_rate * g
    else:
        w += v


def adam_update(w, g, m, v, t, learning_rate, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                weight_decay=0.0):
    """One Adam step (t = 1-based step number) on arrays w, m, v, in place.

    See pynn.Adam.  Scalars are cast to the arrays' type first, and the
    bias corrections computed in double, as the compiled kernel does.
    """
    dt = w.dtype.type
    if weight_decay:
        g = g + dt(weight_decay) * w
    m[...] = dt(beta_1) * m + dt(1.0 - beta_1) * g
    v[...] = dt(beta_2) * v + dt(1.0 - beta_2) * g * g
    m_hat = m / dt(1.0 - beta_1 ** t)
    v_hat = v / dt(1.0 - beta_2 ** t)
    w -= dt(learning_rate) * m_hat / (np.sqrt(v_hat) + dt(epsilon))


# ---------------------------------------------------------------- network


class ReferenceNetwork:
    """A dense network trained by plain NumPy.

    Parameters
    ----------
    weights : list of arrays [W1, b1, W2, b2, ...] (copied)
    activations : list of activation names, one per layer
    loss : "mse", "binary_crossentropy", "categorical_crossentropy" or
        "sparse_categorical_crossentropy"
    from_logits : bool
        As in pynn's cross-entropies.  As there, a cross-entropy fuses with
        the output activation it implies (sigmoid / softmax, or linear when
        from_logits): the last layer then yields logits and the loss applies
        the activation, so no derivative of it is taken.
    learning_rate, momentum, nesterov, weight_decay : as pynn.SGD
    """

    def __init__(self, weights, activations, loss="mse", learning_rate=0.01,
                 momentum=0.0, nesterov=False, weight_decay=0.0, from_logits=False):
        self.W = [np.array(w) for w in weights[0::2]]
        self.b = [np.array(b) for b in weights[1::2]]
        self.activations = list(activations)
        last = self.activations[-1]
        implied = LOSS_ACTIVATION.get(loss)
        self.fused = implied is not None and (
            (last == implied and not from_logits) or (last == "linear" and from_logits))
        if self.fused or (from_logits and implied is not None):
            self.loss = LOSSES_FROM_LOGITS[loss]
        else:
            self.loss = LOSSES[loss]
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.nesterov = nesterov
        self.weight_decay = weight_decay
        self.vW = [np.zeros_like(w) for w in self.W]
        self.vb = [np.zeros_like(b) for b in self.b]

    def get_weights(self):
        return [p for pair in zip(self.W, self.b) for p in pair]

    def forward(self, x, logits_out=False):
        """Outputs of every layer, the input first (the last as logits if asked)."""
        outputs = [x]
        acts = self.activations[:-1] + ["linear" if logits_out else self.activations[-1]]
        for W, b, act in zip(self.W, self.b, acts):
            outputs.append(dense_forward(outputs[-1], W, b, act))
        return outputs

    def predict(self, x):
        return self.forward(x)[-1]

    def backward(self, outputs, grad):
        """[dW1, db1, ...] from every layer's output and dL/d(last output)."""
        grads = [None] * (2 * len(self.W))
        for i in range(len(self.W) - 1, -1, -1):
            act = self.activations[i]
            if self.fused and i == len(self.W) - 1:
                act = "linear"
            gW, gb, grad = dense_backward(outputs[i], self.W[i], outputs[i + 1], grad,
                                          act, need_grad_x=i > 0)
            grads[2 * i], grads[2 * i + 1] = gW, gb
        return grads

    def gradients(self, x, y):
        """(loss, [dW1, db1, ...]) on a batch."""
        outputs = self.forward(x, logits_out=self.fused)
        loss, grad = self.loss(outputs[-1], y)
        grad = grad.astype(outputs[-1].dtype, copy=False)
        return loss, self.backward(outputs, grad)

    def apply(self, grads):
        """The SGD update of every parameter array from its gradient."""
        for i in range(len(self.W)):
            # biases are not decayed, as in pynn.SGD
            sgd_update(self.W[i], grads[2 * i], self.vW[i], self.learning_rate,
                       self.momentum, self.nesterov, self.weight_decay)
            sgd_update(self.b[i], grads[2 * i + 1], self.vb[i], self.learning_rate,
                       self.momentum, self.nesterov)

    def train_step(self, x, y):
        """Forward, loss, backward and SGD update; returns the batch loss."""
        loss, grads = self.gradients(x, y)
        self.apply(grads)
        return loss


# ======================================================================
# Twins of the layers, activations, losses, regularizers, optimizers and
# clipping that follow Keras 3.  Each function is the formula its
# docstring names; scalars are cast to the arrays' type first and the
# element-wise arithmetic runs in that type, so a float32 kernel can be
# compared with its twin to the last bit where the order of operations
# is the same.
# ======================================================================

from scipy.special import erfc as _erfc  # noqa: E402  (scipy is a dependency)

# ------------------------------------- activations from the pre-activation
#
# ``f(z)`` is the value, ``f_derivative(z)`` is df/dz from the
# pre-activation z, and ``f_derivative_from_output(a)`` is df/dz from the
# output a = f(z), given only for the functions that are invertible
# enough for it: leaky_relu (negative_slope > 0), elu (alpha > 0), selu
# and softplus.  gelu (both forms) and swish are not monotonic, so their
# derivative needs z stored.  All are free of overflow and NaN for finite
# z of either type (checked at +-1e4): every exp is of a non-positive
# argument.

# Klambauer et al. (2017), "Self-Normalizing Neural Networks"
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
_SQRT_HALF = 0.70710678118654752440084436210485        # 1 / sqrt(2)
_INV_SQRT_2PI = 0.39894228040143267793994605993438     # 1 / sqrt(2 pi)
_SQRT_2_OVER_PI = 0.79788456080286535587989211986876   # sqrt(2 / pi)
_GELU_TANH_CUBIC = 0.044715


def _c(z, value):
    """A Python scalar in z's floating type."""
    return z.dtype.type(value)


def leaky_relu(z, negative_slope=0.2):
    """z for z > 0, negative_slope * z otherwise (Keras's default slope 0.2;
    PyTorch's is 0.01)."""
    return np.where(z > 0, z, _c(z, negative_slope) * z)


def leaky_relu_derivative(z, negative_slope=0.2):
    """1 for z > 0, negative_slope otherwise (negative_slope at 0, as
    PyTorch's kernel)."""
    return np.where(z > 0, _c(z, 1), _c(z, negative_slope))


def leaky_relu_derivative_from_output(a, negative_slope=0.2):
    """The same from a = leaky_relu(z): a > 0 exactly when z > 0, for a
    negative_slope > 0."""
    if not negative_slope > 0:
        raise ValueError(f"negative_slope must be > 0 to take the derivative from the "
                         f"output, got {negative_slope!r}")
    return np.where(a > 0, _c(a, 1), _c(a, negative_slope))


def elu(z, alpha=1.0):
    """z for z > 0, alpha * (exp(z) - 1) otherwise (Clevert et al. 2016)."""
    return np.where(z > 0, z, _c(z, alpha) * np.expm1(np.minimum(z, 0)))


def elu_derivative(z, alpha=1.0):
    """1 for z > 0, alpha * exp(z) otherwise."""
    return np.where(z > 0, _c(z, 1), _c(z, alpha) * np.exp(np.minimum(z, 0)))


def elu_derivative_from_output(a, alpha=1.0):
    """The same from a = elu(z): 1 for a > 0, a + alpha otherwise (alpha > 0)."""
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0 to take the derivative from the output, "
                         f"got {alpha!r}")
    return np.where(a > 0, _c(a, 1), a + _c(a, alpha))


def selu(z):
    """SELU_SCALE * elu(z, SELU_ALPHA), the constants of Klambauer et al."""
    return np.where(z > 0, _c(z, SELU_SCALE) * z,
                    _c(z, SELU_SCALE * SELU_ALPHA) * np.expm1(np.minimum(z, 0)))


def selu_derivative(z):
    """SELU_SCALE for z > 0, SELU_SCALE * SELU_ALPHA * exp(z) otherwise."""
    return np.where(z > 0, _c(z, SELU_SCALE),
                    _c(z, SELU_SCALE * SELU_ALPHA) * np.exp(np.minimum(z, 0)))


def selu_derivative_from_output(a):
    """The same from a = selu(z): SELU_SCALE for a > 0, else a + SCALE*ALPHA."""
    return np.where(a > 0, _c(a, SELU_SCALE), a + _c(a, SELU_SCALE * SELU_ALPHA))


def gelu(z):
    """The exact GELU (Hendrycks & Gimpel 2016; Keras approximate=False):
    z * Phi(z) = 0.5 z (1 + erf(z / sqrt 2)), written as 0.5 z erfc(-z / sqrt 2),
    the same function, which keeps its relative accuracy in the left tail."""
    return _c(z, 0.5) * z * _erfc(-z * _c(z, _SQRT_HALF))


def gelu_derivative(z):
    """Phi(z) + z phi(z), phi the standard normal density."""
    cdf = _c(z, 0.5) * _erfc(-z * _c(z, _SQRT_HALF))
    # exp(-z^2/2) of |z| up to 1e4: z*z is 1e8, finite in float32
    return cdf + z * _c(z, _INV_SQRT_2PI) * np.exp(_c(z, -0.5) * z * z)


def _gelu_tanh_inner(z):
    # tanh's argument; z^3 overflows only beyond |z| ~ 1e12 (float32),
    # where tanh(+-inf) = +-1 still gives the right value
    return _c(z, _SQRT_2_OVER_PI) * (z + _c(z, _GELU_TANH_CUBIC) * z * z * z)


def gelu_tanh(z):
    """GELU's tanh approximation (Keras approximate=True, PyTorch
    approximate="tanh"): 0.5 z (1 + tanh(u)), u = sqrt(2/pi) (z + 0.044715 z^3),
    written z * sigmoid(2u), the same function: 1 + tanh(u) = 2 sigmoid(2u)
    keeps its relative accuracy where tanh(u) nears -1 (the left tail)."""
    return z * sigmoid(_c(z, 2) * _gelu_tanh_inner(z))


def gelu_tanh_derivative(z):
    """0.5 (1 + t) + 0.5 z (1 - t^2) u', t = tanh(u), u' = sqrt(2/pi) (1 + 3 *
    0.044715 z^2); as s + 2 z s (1 - s) u' with s = sigmoid(2u), 1 - s = sigmoid(-2u)."""
    two_u = _c(z, 2) * _gelu_tanh_inner(z)
    s, one_minus_s = sigmoid(two_u), sigmoid(-two_u)
    inner_slope = _c(z, _SQRT_2_OVER_PI) * (_c(z, 1) + _c(z, 3 * _GELU_TANH_CUBIC) * z * z)
    return s + _c(z, 2) * z * s * one_minus_s * inner_slope


def swish(z):
    """z * sigmoid(z): Keras's swish, PyTorch's silu (beta = 1)."""
    return z * sigmoid(z)


def swish_derivative(z):
    """s + z s (1 - s) = s (1 + z (1 - s)), s = sigmoid(z)."""
    s = sigmoid(z)
    return s * (_c(z, 1) + z * (_c(z, 1) - s))


def softplus(z):
    """log(1 + exp(z)), as max(z, 0) + log1p(exp(-|z|)): exact for large |z|.
    (PyTorch's and Keras's torch backend return z itself above z = 20, a
    difference below 2.1e-9.)"""
    return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))


def softplus_derivative(z):
    """sigmoid(z)."""
    return sigmoid(z)


def softplus_derivative_from_output(a):
    """The same from a = softplus(z): sigmoid(z) = 1 - exp(-a) = -expm1(-a),
    accurate at both ends (a ~ exp(z) for z << 0, a ~ z for z >> 0)."""
    return -np.expm1(-a)


# name -> (value, derivative from z, derivative from the output or None);
# each takes its settings (negative_slope, alpha) as keywords
PREACTIVATION_ACTIVATIONS = {
    "leaky_relu": (leaky_relu, leaky_relu_derivative, leaky_relu_derivative_from_output),
    "elu": (elu, elu_derivative, elu_derivative_from_output),
    "selu": (selu, selu_derivative, selu_derivative_from_output),
    "gelu": (gelu, gelu_derivative, None),
    "gelu_tanh": (gelu_tanh, gelu_tanh_derivative, None),
    "swish": (swish, swish_derivative, None),
    "silu": (swish, swish_derivative, None),
    "softplus": (softplus, softplus_derivative, softplus_derivative_from_output),
}


# --------------------------------------------- losses: mae, huber, poisson
#
# As the losses above: (loss, dloss/dy_pred), the loss a float computed in
# double, the mean over every element (Keras's mean over the last axis and
# then over the batch, for rows of equal length).


def mae(y_pred, y_true):
    """Mean absolute error, mean over every element of |y_pred - y_true|;
    gradient sign(y_pred - y_true) / size, 0 where they are equal (the
    subgradient PyTorch's l1_loss and Keras's backends both take)."""
    diff = y_pred.astype(np.float64) - y_true
    return float(np.mean(np.abs(diff))), np.sign(diff) / diff.size


def huber(y_pred, y_true, delta=1.0):
    """Keras's Huber loss (PyTorch's HuberLoss is the same function):
    0.5 d^2 for |d| <= delta, delta |d| - 0.5 delta^2 beyond, d = y_pred - y_true,
    mean over every element; gradient clip(d, -delta, delta) / size."""
    if not delta > 0:
        raise ValueError(f"delta must be > 0, got {delta!r}")
    d = y_pred.astype(np.float64) - y_true
    abs_d = np.abs(d)
    per_element = np.where(abs_d <= delta, 0.5 * d * d, delta * abs_d - 0.5 * delta * delta)
    return float(np.mean(per_element)), np.clip(d, -delta, delta) / d.size


POISSON_EPSILON = 1e-7   # Keras's backend.epsilon(), whatever the float type


def poisson(y_pred, y_true, epsilon=POISSON_EPSILON):
    """Keras's Poisson loss, mean over every element of
    y_pred - y_true * log(y_pred + epsilon), for y_pred >= 0 (the output of
    softplus, relu or exp); gradient (1 - y_true / (y_pred + epsilon)) / size."""
    p = y_pred.astype(np.float64) + epsilon
    y = np.asarray(y_true, dtype=np.float64)
    return float(np.mean(p - epsilon - y * np.log(p))), (1 - y / p) / p.size


def half_poisson_from_raw(raw, y_true):
    """scikit-learn's MLPRegressor(loss="poisson"): an exp output and the
    half Poisson deviance y log(y / mu) - y + mu, mu = exp(raw), taken from
    the raw output so that log(mu) is raw itself:
    exp(raw) - y raw + xlogy(y, y) - y.  Mean over every element (scikit-
    learn sums the per-output means: the same for one output); gradient
    w.r.t. raw (exp(raw) - y) / size.

    In double: exact wherever exp(raw) is finite (raw < 709.78); beyond, the
    loss and gradient are +inf, never NaN (y raw is finite and exp(raw) is
    the larger term).  In float32 the gradient is +inf above raw ~ 88.72, as
    the storage type's exp.
    """
    raw64 = raw.astype(np.float64)
    y = np.asarray(y_true, dtype=np.float64)
    with np.errstate(over="ignore"):
        mu = np.exp(raw64)
    y_log_y = np.where(y > 0, y * np.log(np.where(y > 0, y, 1.0)), 0.0)
    per_element = mu - y * raw64 + y_log_y - y
    return float(np.mean(per_element)), (mu - y) / raw.size


# ----------------------------------------------- regularizers (Keras 3)
#
# (penalty, gradient) for one weight array: the penalty, a float, is
# added to the loss as Keras adds a layer's regularization losses (the
# sum over every regularized array, after the mean over the batch), and
# the gradient to that array's gradient.  Keras 3's defaults: L1(l1=0.01),
# L2(l2=0.01), and L1L2(l1=0.0, l2=0.0), of which l1_l2 is a second name
# (Keras 2's function l1_l2 defaulted to 0.01 each).


def l1_regularizer(w, l1=0.01):
    """l1 * sum |w|; gradient l1 * sign(w) (0 at 0)."""
    return float(l1 * np.sum(np.abs(w.astype(np.float64)))), _c(w, l1) * np.sign(w)


def l2_regularizer(w, l2=0.01):
    """l2 * sum w^2; gradient 2 l2 w."""
    w64 = w.astype(np.float64)
    return float(l2 * np.sum(w64 * w64)), _c(w, 2 * l2) * w


def l1_l2_regularizer(w, l1=0.0, l2=0.0):
    """l1 * sum |w| + l2 * sum w^2; gradient l1 sign(w) + 2 l2 w."""
    p1, g1 = l1_regularizer(w, l1)
    p2, g2 = l2_regularizer(w, l2)
    return p1 + p2, g1 + g2


# ------------------------------------------- gradient clipping (Keras 3)
#
# Keras 3's base optimizer clips before weight decay and the update, and
# accepts at most one of clipnorm, clipvalue, global_clipnorm.  A
# "variable" is one weight array: a Dense layer's kernel and its bias are
# two, each clipped by its own norm under clipnorm.


def clip_by_norm(g, clipnorm):
    """Keras's clipnorm for one variable: g * clipnorm / max(||g||_2, clipnorm)
    (unchanged when the norm is within clipnorm; a zero gradient stays zero)."""
    norm = np.sqrt(np.sum(g.astype(np.float64) ** 2))
    return g * _c(g, clipnorm) / _c(g, max(norm, clipnorm))


def clip_by_value(g, clipvalue):
    """Keras's clipvalue: every element clipped to [-clipvalue, clipvalue]."""
    return np.clip(g, _c(g, -clipvalue), _c(g, clipvalue))


def clip_by_global_norm(grads, global_clipnorm):
    """Keras's global_clipnorm: every variable scaled by
    global_clipnorm * min(1 / n, 1 / global_clipnorm), n the 2-norm of all
    gradients together; a non-finite n makes every gradient NaN, as Keras."""
    n = np.sqrt(sum(np.sum(g.astype(np.float64) ** 2) for g in grads))
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = global_clipnorm * min(1.0 / n, 1.0 / global_clipnorm) + (n - n)
    return [g * _c(g, scale) for g in grads]


def clip_gradients(grads, clipnorm=None, clipvalue=None, global_clipnorm=None):
    """The clipping Keras 3's optimizer applies to a list of gradients."""
    chosen = [name for name, v in (("clipnorm", clipnorm), ("clipvalue", clipvalue),
                                   ("global_clipnorm", global_clipnorm)) if v is not None]
    if len(chosen) > 1:
        raise ValueError(f"only one of clipnorm, clipvalue and global_clipnorm can be "
                         f"set, got {', '.join(chosen)}")
    if clipnorm is not None and clipnorm > 0:
        return [clip_by_norm(g, clipnorm) for g in grads]
    if global_clipnorm is not None and global_clipnorm > 0:
        return clip_by_global_norm(grads, global_clipnorm)
    if clipvalue is not None and clipvalue > 0:
        return [clip_by_value(g, clipvalue) for g in grads]
    return list(grads)


# ----------------------------------- optimizers: one step, as a function
#
# step(w, g, state, settings, t) -> (w', state'): w and g one flat array,
# state a dict of arrays (and, for Nadam, a double scalar), settings a
# dict whose missing keys take the defaults below, t the 1-based step
# number.  Nothing passed in is modified.  Per-step scalars (powers, bias
# corrections, Nadam's momentum cache) are computed in double and rounded
# once to w's type, as pynn's Adam kernel does; every element-wise
# operation runs in w's type.

RMSPROP_DEFAULTS = {"learning_rate": 0.001, "rho": 0.9, "momentum": 0.0,
                    "epsilon": 1e-7, "centered": False}
ADAMW_DEFAULTS = {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999,
                  "epsilon": 1e-7, "weight_decay": 0.004, "decay_mask": None}
NADAM_DEFAULTS = {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}
ADAGRAD_DEFAULTS = {"learning_rate": 0.001, "initial_accumulator_value": 0.1,
                    "epsilon": 1e-7}


def _settings(defaults, settings):
    unknown = set(settings or {}) - set(defaults)
    if unknown:
        raise ValueError(f"unknown settings {sorted(unknown)}; known: {sorted(defaults)}")
    return {**defaults, **(settings or {})}


def rmsprop_state(w, settings=None):
    """Zeros: velocity, and momentum / average_gradient when those are on."""
    s = _settings(RMSPROP_DEFAULTS, settings)
    state = {"velocity": np.zeros_like(w)}
    if s["momentum"] > 0:
        state["momentum"] = np.zeros_like(w)
    if s["centered"]:
        state["average_gradient"] = np.zeros_like(w)
    return state


def rmsprop_step(w, g, state, settings=None, t=1):
    """One RMSprop step in Keras 3's form (keras/src/optimizers/rmsprop.py)::

        velocity = rho * velocity + (1 - rho) * g * g
        if centered:
            average_gradient = rho * average_gradient + (1 - rho) * g
            denominator = velocity - average_gradient**2 + epsilon
        else:
            denominator = velocity + epsilon
        increment = learning_rate * g / sqrt(denominator)
        if momentum > 0:
            momentum_buffer = momentum * momentum_buffer + increment
            w = w - momentum_buffer
        else:
            w = w - increment

    epsilon is inside the square root and the learning rate inside the
    momentum buffer (PyTorch's RMSprop puts both outside).  t is unused.
    """
    s = _settings(RMSPROP_DEFAULTS, settings)
    dt = w.dtype.type
    rho = dt(s["rho"])
    velocity = rho * state["velocity"] + dt(1.0 - s["rho"]) * g * g
    new_state = {"velocity": velocity}
    if s["centered"]:
        average = rho * state["average_gradient"] + dt(1.0 - s["rho"]) * g
        new_state["average_gradient"] = average
        denominator = velocity - average * average + dt(s["epsilon"])
    else:
        denominator = velocity + dt(s["epsilon"])
    increment = dt(s["learning_rate"]) * g / np.sqrt(denominator)
    if s["momentum"] > 0:
        buffer = dt(s["momentum"]) * state["momentum"] + increment
        new_state["momentum"] = buffer
        return w - buffer, new_state
    return w - increment, new_state


def adamw_state(w, settings=None):
    """Zeros: the first and second moments m and v."""
    return {"m": np.zeros_like(w), "v": np.zeros_like(w)}


def adamw_step(w, g, state, settings=None, t=1):
    """One AdamW step: Loshchilov & Hutter's decoupled weight decay, applied
    as Keras 3 applies it (base_optimizer: decay, then the update) and as
    PyTorch's AdamW does, on the weights before the Adam step; then pynn's
    Adam step (Kingma & Ba, Algorithm 1, as PyTorch's AdamW)::

        w = w - learning_rate * weight_decay * w       # where decay_mask
        m = beta_1 * m + (1 - beta_1) * g
        v = beta_2 * v + (1 - beta_2) * g * g
        m_hat = m / (1 - beta_1**t)
        v_hat = v / (1 - beta_2**t)
        w = w - learning_rate * m_hat / (sqrt(v_hat) + epsilon)

    The decay does not depend on g, so its order relative to the Adam step
    is immaterial for the result up to rounding.  decay_mask None decays
    every element, biases included, as Keras (nothing excluded unless
    exclude_from_weight_decay is called) and PyTorch (every parameter
    given) do; a boolean array of w's shape decays only where True, which
    is Keras's exclude_from_weight_decay and pynn's kernels-only decay.
    Keras's own Adam puts epsilon after a bias-corrected step size,
    lr sqrt(1 - beta_2**t) / (1 - beta_1**t) * m / (sqrt(v) + epsilon):
    the same up to the scale of epsilon.  Defaults are Keras's (weight_decay
    0.004, epsilon 1e-7; PyTorch's are 0.01 and 1e-8).
    """
    s = _settings(ADAMW_DEFAULTS, settings)
    dt = w.dtype.type
    lr = dt(s["learning_rate"])
    if s["weight_decay"]:
        decay = dt(s["learning_rate"] * s["weight_decay"])
        mask = s["decay_mask"]
        w = w - decay * w if mask is None else np.where(mask, w - decay * w, w)
    m = dt(s["beta_1"]) * state["m"] + dt(1.0 - s["beta_1"]) * g
    v = dt(s["beta_2"]) * state["v"] + dt(1.0 - s["beta_2"]) * g * g
    m_hat = m / dt(1.0 - s["beta_1"] ** t)
    v_hat = v / dt(1.0 - s["beta_2"] ** t)
    return w - lr * m_hat / (np.sqrt(v_hat) + dt(s["epsilon"])), {"m": m, "v": v}


def nadam_momentum_cache(beta_1, t):
    """Keras 3's Nadam schedule: u_t = beta_1 (1 - 0.5 * 0.96**t)."""
    return beta_1 * (1.0 - 0.5 * 0.96 ** t)


def nadam_state(w, settings=None):
    """Zeros for m and v, and the running product of the momentum cache, 1."""
    return {"m": np.zeros_like(w), "v": np.zeros_like(w), "u_product": 1.0}


def nadam_step(w, g, state, settings=None, t=1):
    """One Nadam step in Keras 3's form (keras/src/optimizers/nadam.py;
    Dozat 2016)::

        u_t = beta_1 * (1 - 0.5 * 0.96**t)         # momentum cache
        u_next = beta_1 * (1 - 0.5 * 0.96**(t + 1))
        u_product = u_product * u_t                # prod of u_1 .. u_t
        m = beta_1 * m + (1 - beta_1) * g
        v = beta_2 * v + (1 - beta_2) * g * g
        m_hat = u_next * m / (1 - u_product * u_next) + (1 - u_t) * g / (1 - u_product)
        v_hat = v / (1 - beta_2**t)
        w = w - learning_rate * m_hat / (sqrt(v_hat) + epsilon)

    PyTorch's NAdam has the same shape but a schedule 0.96**(0.004 t)
    (momentum_decay), which reaches beta_1 only after thousands of steps,
    and epsilon 1e-8: a different optimizer for the first steps.  Keras's is
    taken because pynn's names and defaults follow Keras.  u_product is
    kept in double in the state, one per optimizer (Keras keeps one for
    all variables), and advanced once per step.
    """
    s = _settings(NADAM_DEFAULTS, settings)
    dt = w.dtype.type
    beta_1, beta_2 = s["beta_1"], s["beta_2"]
    u_t = nadam_momentum_cache(beta_1, t)
    u_next = nadam_momentum_cache(beta_1, t + 1)
    u_product = state["u_product"] * u_t
    m = dt(beta_1) * state["m"] + dt(1.0 - beta_1) * g
    v = dt(beta_2) * state["v"] + dt(1.0 - beta_2) * g * g
    m_hat = (dt(u_next / (1.0 - u_product * u_next)) * m
             + dt((1.0 - u_t) / (1.0 - u_product)) * g)
    v_hat = v / dt(1.0 - beta_2 ** t)
    w = w - dt(s["learning_rate"]) * m_hat / (np.sqrt(v_hat) + dt(s["epsilon"]))
    return w, {"m": m, "v": v, "u_product": u_product}


def adagrad_state(w, settings=None):
    """The accumulator, filled with initial_accumulator_value."""
    s = _settings(ADAGRAD_DEFAULTS, settings)
    return {"accumulator": np.full_like(w, s["initial_accumulator_value"])}


def adagrad_step(w, g, state, settings=None, t=1):
    """One Adagrad step in Keras 3's form (keras/src/optimizers/adagrad.py;
    Duchi et al. 2011)::

        accumulator = accumulator + g * g
        w = w - learning_rate * g / sqrt(accumulator + epsilon)

    epsilon inside the square root; the accumulator starts at
    initial_accumulator_value (0.1; PyTorch's starts at 0 and adds 1e-10
    outside the root).  t is unused.
    """
    s = _settings(ADAGRAD_DEFAULTS, settings)
    dt = w.dtype.type
    accumulator = state["accumulator"] + g * g
    w = w - dt(s["learning_rate"]) * g / np.sqrt(accumulator + dt(s["epsilon"]))
    return w, {"accumulator": accumulator}


OPTIMIZER_STEPS = {
    "rmsprop": (rmsprop_state, rmsprop_step, RMSPROP_DEFAULTS),
    "adamw": (adamw_state, adamw_step, ADAMW_DEFAULTS),
    "nadam": (nadam_state, nadam_step, NADAM_DEFAULTS),
    "adagrad": (adagrad_state, adagrad_step, ADAGRAD_DEFAULTS),
}


# ----------------------------------------------------- dropout (inverted)


def dropout_forward(x, keep_mask, rate, training=True):
    """Inverted dropout, as Keras and PyTorch: in training x * keep_mask /
    (1 - rate), written x * (keep_mask * scale) with scale = 1 / (1 - rate)
    computed in double and rounded once to x's type (PyTorch's rounding;
    Keras's torch backend divides x by 1 - rate, within an ulp of this);
    identity in inference and for rate 0, zeros for rate 1 (as both).
    keep_mask is (n, units), True (or 1) where the unit is kept; the twin
    takes it as given, the kernel draws it from its generator."""
    if not 0 <= rate <= 1:
        raise ValueError(f"rate must be in [0, 1], got {rate!r}")
    if not training or rate == 0:
        return x
    if rate == 1:
        return np.zeros_like(x)
    return x * (keep_mask.astype(x.dtype) * _c(x, 1.0 / (1.0 - rate)))


def dropout_backward(grad_y, keep_mask, rate, training=True):
    """dL/dx: the same mask and scale applied to dL/dy."""
    return dropout_forward(grad_y, keep_mask, rate, training)


# ------------------------------------- batch and layer normalisation
#
# Both normalise x_hat = (x - mean) / sqrt(var + epsilon) with the biased
# variance and give gamma * x_hat + beta, gamma and beta of shape (units,).
# BatchNormalization takes mean and var per feature over the batch (axis
# 0) in training, the moving statistics in inference; LayerNormalization
# takes them per sample over the features (axis 1), in both modes.  The
# forward pass returns a cache (x_hat, inv_std) that the backward pass
# reads: a kernel keeps x_hat (or x) and one inv_std per feature (BN) or
# per sample (LN).

BATCHNORM_MOMENTUM = 0.99
BATCHNORM_EPSILON = 1e-3
LAYERNORM_EPSILON = 1e-3


def _normalise(x, axis, epsilon):
    mean = x.mean(axis=axis, keepdims=True)
    centred = x - mean
    var = (centred * centred).mean(axis=axis, keepdims=True)   # biased
    inv_std = _c(x, 1) / np.sqrt(var + _c(x, epsilon))
    return centred * inv_std, mean, var, inv_std


def batchnorm_forward(x, gamma, beta, moving_mean, moving_variance, training,
                      momentum=BATCHNORM_MOMENTUM, epsilon=BATCHNORM_EPSILON):
    """Keras's BatchNormalization over axis 0 of x (n, units).

    Returns (y, cache, moving_mean', moving_variance').  In training the
    batch's mean and biased variance normalise x and the moving statistics
    become moving * momentum + batch * (1 - momentum) (Keras; PyTorch's
    running_var takes the unbiased variance instead); in inference the
    moving statistics normalise x and are returned unchanged.
    """
    if training:
        x_hat, mean, var, inv_std = _normalise(x, 0, epsilon)
        m = _c(x, momentum)
        one_minus = _c(x, 1.0 - momentum)
        moving_mean = moving_mean * m + mean[0] * one_minus
        moving_variance = moving_variance * m + var[0] * one_minus
    else:
        inv_std = (_c(x, 1) / np.sqrt(moving_variance + _c(x, epsilon)))[None, :]
        x_hat = (x - moving_mean) * inv_std
    return gamma * x_hat + beta, (x_hat, inv_std, training), moving_mean, moving_variance


def batchnorm_backward(grad_y, cache, gamma):
    """(grad_x, grad_gamma, grad_beta) from dL/dy and the forward cache.

    Training: grad_x = inv_std / n * (n d - sum(d) - x_hat sum(d x_hat)),
    d = grad_y * gamma, sums over the batch; inference: grad_x = d inv_std
    (the moving statistics are constants)."""
    x_hat, inv_std, training = cache
    grad_gamma = (grad_y * x_hat).sum(axis=0)
    grad_beta = grad_y.sum(axis=0)
    d = grad_y * gamma
    if not training:
        return d * inv_std, grad_gamma, grad_beta
    n = x_hat.shape[0]
    grad_x = (inv_std / _c(x_hat, n)) * (
        _c(x_hat, n) * d - d.sum(axis=0, keepdims=True)
        - x_hat * (d * x_hat).sum(axis=0, keepdims=True))
    return grad_x, grad_gamma, grad_beta


def layernorm_forward(x, gamma, beta, epsilon=LAYERNORM_EPSILON):
    """Keras's LayerNormalization over the last axis of x (n, units), the
    same in training and inference; returns (y, cache)."""
    x_hat, _, _, inv_std = _normalise(x, 1, epsilon)
    return gamma * x_hat + beta, (x_hat, inv_std)


def layernorm_backward(grad_y, cache, gamma):
    """(grad_x, grad_gamma, grad_beta): the batch-norm formula with the sums
    taken per sample over the features, gamma's and beta's over the batch."""
    x_hat, inv_std = cache
    d = grad_y * gamma
    k = x_hat.shape[1]
    grad_x = (inv_std / _c(x_hat, k)) * (
        _c(x_hat, k) * d - d.sum(axis=1, keepdims=True)
        - x_hat * (d * x_hat).sum(axis=1, keepdims=True))
    return grad_x, (grad_y * x_hat).sum(axis=0), grad_y.sum(axis=0)
