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
    denormals-are-zero on (csrc/fpenv.h).  Returns a new array."""
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
