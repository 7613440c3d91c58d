"""scikit-learn estimators over pynn: ``MLPClassifier`` and ``MLPRegressor``.

They take scikit-learn's parameters and follow the semantics of
``sklearn.neural_network`` (attributes, warm starts, partial_fit, early
stopping, warnings and error texts), so they drop into a Pipeline,
GridSearchCV or cross_val_score, can be cloned, and pickle (as their weights
and settings, never as compiled objects).  The network underneath is a
:class:`pynn.Sequential`, kept as the fitted attribute ``model_``.

This module needs scikit-learn (``pip install "pynn[sklearn]"``); ``import
pynn`` never imports it.

Where they differ from scikit-learn's estimators (the README's table goes
through every parameter and attribute)
-----------------------------------------------------------------------
- ``coefs_[i]`` has scikit-learn's shape (n_in, n_out): it is the transposed
  VIEW ``model_.layers[i].W.T`` of pynn's kernel (n_out, n_in), so writing
  into it changes the model; assigning ``coefs_`` / ``intercepts_`` copies
  checked arrays into the network.
- The initial weights are drawn from ``random_state`` exactly as scikit-learn
  draws them, and so is the early-stopping split; the shuffling order comes
  from pynn's generator (seeded from ``random_state``), so stochastic runs
  agree with scikit-learn's in distribution, not bit for bit.
- ``alpha`` is scikit-learn's L2 term ``0.5 * alpha * ||W||^2 / batch_size``
  added to each batch's mean loss; it becomes pynn's ``weight_decay =
  alpha / batch_size`` (kernels only, as in scikit-learn).  scikit-learn
  divides by the size of each batch, so only a smaller last batch differs.
- The gradients are scikit-learn's: the regressor's are those of its
  ``0.5 * sum over outputs of mean((y - p)**2)`` (pynn's MSE is the mean over
  every element, without the 0.5) and the multilabel classifier's those of
  the binary cross-entropy summed over labels (pynn's is the mean).  The SGD
  learning rate, the L2 coefficient and Adam's epsilon are scaled by that
  ratio, so that the steps are scikit-learn's (Adam is otherwise invariant
  to the scale of the loss); ``loss_curve_`` reports scikit-learn's values.
- Adam is Kingma & Ba's Algorithm 1 (epsilon added to the bias-corrected
  root); scikit-learn adds it before the correction.
- "lbfgs" minimises scikit-learn's objective (its losses and L2 term, over
  the full batch) with SciPy's L-BFGS-B, pynn's compiled network giving the
  loss and the gradient at each point.
- A step whose loss or gradient is not finite is never applied: where
  scikit-learn's weights become NaN, pynn's stay those of the last finite
  step.  The error raised, ``pynn.errors.SolverDivergenceError``, is both
  the ValueError scikit-learn raises and pynn's DivergenceError.
- ``dtype`` (default None: X's dtype, float32 or float64, as scikit-learn)
  fixes pynn's storage type when given.
- Sparse X (CSR or CSC, matrices or arrays; other formats converted to CSR
  as scikit-learn converts them) is densified batch by batch by the compiled
  gather, chunk by chunk in predict and lbfgs's objective: never whole.
  scikit-learn multiplies the sparse X by the first kernel instead; the
  results are those of the same X dense (CSC is converted once to CSR).
"""
import numbers
import warnings

import numpy as np
import scipy.optimize
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets, unique_labels
from sklearn.utils.validation import check_is_fitted, column_or_1d

from . import io
from ._sparse import as_rows, chunk_rows, is_rows
from ._validation import as_dtype, check_bool, check_positive_int, check_real
from .errors import DivergenceError, SolverDivergenceError
from .layers import Dense
from .model import Sequential
from .optimizers import SGD, Adam

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data as _validate_data
except ImportError:  # pragma: no cover - older scikit-learn
    def _validate_data(estimator, *args, **kwargs):
        return estimator._validate_data(*args, **kwargs)

__all__ = ["MLPClassifier", "MLPRegressor"]

_ACTIVATIONS = {"relu": "relu", "tanh": "tanh", "logistic": "sigmoid", "identity": "linear"}
# MLPRegressor's losses: scikit-learn's name -> pynn's loss
_REGRESSION_LOSSES = {"squared_error": "mse", "poisson": "half_poisson_deviance"}
_SOLVERS = ("lbfgs", "sgd", "adam")
_SCHEDULES = ("constant", "invscaling", "adaptive")
# scikit-learn's adaptive schedule divides the rate by 5 on a plateau and
# stops once it is this small
_ADAPTIVE_MIN_LR = 1e-6
# scikit-learn's texts, which users and tools match on
_NONFINITE_MESSAGE = ("Solver produced non-finite parameter weights. The input data may"
                      " contain large values and need to be preprocessed.")
_SMALL_VALIDATION_MESSAGE = ("The validation set is too small. Increase "
                             "'validation_fraction' or the size of your dataset.")
# the sparse formats read as they are (the others are converted to CSR)
_SPARSE_FORMATS = ["csr", "csc"]


def _as_input(X, dtype):
    """Validated X as the network reads it: a C-contiguous array of
    ``dtype``, or for sparse X ``CSRRows`` (CSC converted once to CSR, a
    sparse copy; densified batch by batch by the compiled gather)."""
    if is_rows(X):
        return as_rows(X, dtype, "X")
    return np.ascontiguousarray(X, dtype=dtype)


def _full_batch_gradients(model, X, targets, row_weight):
    """The loss and the flat float64 gradient over all of X: one compiled
    step, or for sparse X one per chunk of rows (each chunk densified, never
    the whole matrix), their means weighted by their rows."""
    n_samples = X.shape[0]
    chunk = chunk_rows(X, n_samples)
    loss, grad = 0.0, None
    for start in range(0, n_samples, chunk):
        rows = slice(start, start + chunk)
        part_loss, grads = model.gradients(
            X[rows], targets[rows], None if row_weight is None else row_weight[rows])
        share = (min(start + chunk, n_samples) - start) / n_samples
        part = np.concatenate([g.ravel() for g in grads]).astype(np.float64)
        loss += share * part_loss
        grad = share * part if grad is None else grad + share * part
    return loss, grad


def _check_stochastic(estimator):
    # partial_fit exists for the stochastic solvers only (as scikit-learn)
    if estimator.solver not in ("sgd", "adam"):
        raise AttributeError(f"partial_fit is only available for stochastic optimizers. "
                             f"{estimator.solver} is not stochastic.")
    return True


def _check_weights(arrays, shapes, dtype, name):
    """Copies in ``dtype`` of ``arrays``, a list of one array per layer of
    the given shapes; ValueError / TypeError naming ``name``."""
    if isinstance(arrays, np.ndarray) or not isinstance(arrays, (list, tuple)):
        raise TypeError(f"{name} must be a list of {len(shapes)} arrays, got "
                        f"{type(arrays).__name__}")
    if len(arrays) != len(shapes):
        raise ValueError(f"{name} must hold {len(shapes)} arrays (one per layer), "
                         f"got {len(arrays)}")
    checked = []
    for i, (array, shape) in enumerate(zip(arrays, shapes)):
        array = np.asarray(array)
        if array.dtype.kind not in "biuf":
            raise TypeError(f"{name}[{i}] must hold real numbers, got dtype {array.dtype}")
        if array.shape != tuple(shape):
            raise ValueError(f"{name}[{i}] must have shape {tuple(shape)}, got {array.shape}")
        if not np.isfinite(array).all():
            raise ValueError(f"{name}[{i}] holds NaN or infinite values")
        checked.append(array.astype(dtype))
    return checked


def _check_sample_weight(sample_weight, n_samples):
    """sample_weight as a float64 (n_samples,) array of finite values >= 0, or None."""
    if sample_weight is None:
        return None
    if np.isscalar(sample_weight):
        sample_weight = np.full(n_samples, sample_weight)
    w = np.array(sample_weight, dtype=np.float64)
    if w.shape != (n_samples,):
        raise ValueError(f"sample_weight.shape == {w.shape}, expected ({n_samples},)!")
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError("sample_weight must hold finite values >= 0")
    if not w.any():
        raise ValueError("Sample weights must contain at least one non-zero number.")
    return w


def _lbfgs_n_iter(result, max_iter):
    """n_iter_ of an L-BFGS-B run, with scikit-learn's ConvergenceWarning
    when it did not converge."""
    n_iter = min(result.nit, max_iter)
    if result.status != 0:
        message = (f"lbfgs failed to converge after {n_iter} iteration(s) "
                   f"(status={result.status}):\n{result.message}\n")
        if n_iter == max_iter:
            message += (f"\nIncrease the number of iterations to improve the "
                        f"convergence (max_iter={max_iter}).")
        message += ("\nYou might also want to scale the data as shown in:\n"
                    "    https://scikit-learn.org/stable/modules/preprocessing.html")
        warnings.warn(message, ConvergenceWarning, stacklevel=5)
    return n_iter


class _BaseMLP(BaseEstimator):
    """Shared by MLPClassifier and MLPRegressor: parameters, the solvers."""

    def _loss_scale(self):
        # scikit-learn's reported data loss = this * pynn's loss
        return 1.0

    def _grad_scale(self):
        # scikit-learn's gradient of the data loss = this * pynn's gradient
        return self._loss_scale()

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=False,
                 validation_fraction=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                 n_iter_no_change=10, max_fun=15000, dtype=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dtype = dtype

    # --------------------------------------------------------------- checks

    def _check_params(self):
        """Check every parameter (ValueError / TypeError naming it); return
        the hidden sizes as a tuple."""
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, numbers.Integral) and not isinstance(sizes, (bool, np.bool_)):
            sizes = (sizes,)
        try:
            sizes = tuple(sizes)
        except TypeError:
            raise TypeError(f"hidden_layer_sizes must be an int or a sequence of ints, "
                            f"got {self.hidden_layer_sizes!r}") from None
        for size in sizes:
            check_positive_int(size, "hidden_layer_sizes entries")
        if self.activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, "
                             f"got {self.activation!r}")
        if self.solver not in _SOLVERS:
            raise ValueError(f"solver must be one of {list(_SOLVERS)}, got {self.solver!r}")
        if self.learning_rate not in _SCHEDULES:
            raise ValueError(f"learning_rate must be one of {list(_SCHEDULES)}, "
                             f"got {self.learning_rate!r}")
        if not (isinstance(self.batch_size, str) and self.batch_size == "auto"):
            check_positive_int(self.batch_size, "batch_size")
        check_real(self.alpha, "alpha", low=0)
        check_real(self.learning_rate_init, "learning_rate_init", low=0, low_open=True)
        check_real(self.power_t, "power_t", low=0)
        check_positive_int(self.max_iter, "max_iter")
        check_positive_int(self.max_fun, "max_fun")
        check_real(self.tol, "tol", low=0)
        check_real(self.momentum, "momentum", low=0, high=1, high_open=True)
        check_real(self.validation_fraction, "validation_fraction", low=0, high=1,
                   low_open=True, high_open=True)
        check_real(self.beta_1, "beta_1", low=0, high=1, high_open=True)
        check_real(self.beta_2, "beta_2", low=0, high=1, high_open=True)
        check_real(self.epsilon, "epsilon", low=0, low_open=True)
        # as scikit-learn: np.inf means never stop on a plateau
        if not (isinstance(self.n_iter_no_change, numbers.Real)
                and self.n_iter_no_change == np.inf):
            check_positive_int(self.n_iter_no_change, "n_iter_no_change")
        for name in ("shuffle", "warm_start", "nesterovs_momentum", "early_stopping"):
            check_bool(getattr(self, name), name)
        if not isinstance(self.verbose, (bool, np.bool_, numbers.Integral)):
            raise TypeError(f"verbose must be a bool or an int, got {self.verbose!r}")
        if self.dtype is not None:
            as_dtype(self.dtype)
        return sizes

    def _reported_out_activation(self, out_activation):
        # scikit-learn's name for the network's output activation
        return {"sigmoid": "logistic", "linear": "identity"}.get(out_activation, out_activation)

    def _batch_size(self, n_samples):
        if isinstance(self.batch_size, str):
            return min(200, n_samples)
        if self.batch_size > n_samples:
            # scikit-learn's text, which warning filters match on
            warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is "
                          "going to be clipped", UserWarning, stacklevel=4)
        return min(self.batch_size, n_samples)

    # ------------------------------------------------------------ the model

    def _draw_weights(self, rng, dims, dtype):
        """The initial (kernels, biases), drawn from ``rng`` exactly as
        scikit-learn draws them: per layer, W (n_in, n_out) then b, uniform in
        +-sqrt(factor / (fan_in + fan_out)), factor 2 when the hidden
        activation is logistic and 6 otherwise (for every layer)."""
        factor = 2.0 if self.activation == "logistic" else 6.0
        kernels, biases = [], []
        for fan_in, fan_out in zip(dims[:-1], dims[1:]):
            bound = np.sqrt(factor / (fan_in + fan_out))
            kernels.append(rng.uniform(-bound, bound, (fan_in, fan_out)).astype(dtype))
            biases.append(rng.uniform(-bound, bound, fan_out).astype(dtype))
        return kernels, biases

    def _new_model(self, dims, out_activation, loss, dtype, seed):
        activations = [_ACTIVATIONS[self.activation]] * (len(dims) - 2) + [out_activation]
        layers = [Dense(units, activation=act, input_dim=dims[0] if i == 0 else None)
                  for i, (units, act) in enumerate(zip(dims[1:], activations))]
        model = Sequential(layers, dtype=dtype, seed=seed)
        model.compile(loss=loss, optimizer=SGD())
        return model

    def _new_optimizer(self, batch_size):
        # the rate is that of the first epoch; _fit_stochastic updates it
        weight_decay = self.alpha / batch_size / self._grad_scale()
        if self.solver == "sgd":
            return SGD(learning_rate=self.learning_rate_init * self._grad_scale(),
                       momentum=self.momentum,
                       nesterov=bool(self.nesterovs_momentum) and self.momentum > 0,
                       weight_decay=weight_decay)
        return Adam(learning_rate=self.learning_rate_init, beta_1=self.beta_1,
                    beta_2=self.beta_2, epsilon=self.epsilon / self._grad_scale(),
                    weight_decay=weight_decay)

    def _squared_kernels(self):
        return sum(float(np.dot(layer.W.ravel(), layer.W.ravel()))
                   for layer in self.model_.layers)

    def _layer_shapes(self):
        return ([(layer.W.shape[1], layer.W.shape[0]) for layer in self.model_.layers],
                [layer.b.shape for layer in self.model_.layers])

    @property
    def coefs_(self):
        """Kernels in scikit-learn's layout: ``coefs_[i]`` of shape
        (n_in, n_out), the transposed view of ``model_.layers[i].W``.
        Assigning a list of arrays of these shapes copies them in."""
        check_is_fitted(self, "model_")
        return [layer.W.T for layer in self.model_.layers]

    @coefs_.setter
    def coefs_(self, coefs):
        check_is_fitted(self, "model_")
        checked = _check_weights(coefs, self._layer_shapes()[0], self.model_.dtype, "coefs_")
        for layer, coef in zip(self.model_.layers, checked):
            layer.W[...] = coef.T

    @property
    def intercepts_(self):
        """Biases: ``intercepts_[i]`` of shape (n_out,), a view of
        ``model_.layers[i].b``.  Assigning a list of arrays copies them in."""
        check_is_fitted(self, "model_")
        return [layer.b for layer in self.model_.layers]

    @intercepts_.setter
    def intercepts_(self, intercepts):
        check_is_fitted(self, "model_")
        checked = _check_weights(intercepts, self._layer_shapes()[1], self.model_.dtype,
                                 "intercepts_")
        for layer, bias in zip(self.model_.layers, checked):
            layer.b[...] = bias

    # ------------------------------------------------------------- training

    def _fit(self, X, y, incremental, state=None, sample_weight=None):
        # a fit refused before training starts leaves the estimator as it was
        state = dict(self.__dict__) if state is None else state
        try:
            train = self._prepare_fit(X, y, incremental, sample_weight)
        except Exception:
            self.__dict__.clear()
            self.__dict__.update(state)
            raise
        train()
        return self

    def _prepare_fit(self, X, y, incremental, sample_weight=None):
        """Check and encode the data, build or check the network; return
        the training to run."""
        sizes = self._check_params()
        if incremental and self.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True")
        first_pass = not hasattr(self, "model_") or (not self.warm_start and not incremental)
        X, y = _validate_data(self, X, y, reset=first_pass, **self._validate_kwargs())
        if first_pass:
            dtype = as_dtype(self.dtype) if self.dtype is not None else X.dtype.type
        else:
            dtype = self.model_.dtype
            if len(self.model_.layers) != len(sizes) + 1 or any(
                    layer.units != size for layer, size in zip(self.model_.layers, sizes)):
                raise ValueError(f"hidden_layer_sizes={self.hidden_layer_sizes!r} does not "
                                 f"match the fitted network; refit with warm_start=False")
        X = _as_input(X, dtype)
        sw = _check_sample_weight(sample_weight, X.shape[0])
        targets, stratify, y_score = self._encode(y, incremental, dtype)
        rng = check_random_state(self.random_state)
        if first_pass:
            n_outputs, out_activation, loss = self._output_spec()
            dims = [X.shape[1], *sizes, n_outputs]
            kernels, biases = self._draw_weights(rng, dims, dtype)
        early_stopping = self.early_stopping and self.solver != "lbfgs"
        if early_stopping:
            # split indices as scikit-learn splits X and y: the same held-out
            # samples for the same random_state (stratified for one output)
            train, val = train_test_split(np.arange(X.shape[0]), random_state=rng,
                                          test_size=self.validation_fraction,
                                          stratify=stratify)
            if val.shape[0] < 2:
                raise ValueError(_SMALL_VALIDATION_MESSAGE)
        if first_pass:
            seed = int(rng.randint(np.iinfo(np.int32).max))
            self.model_ = self._new_model(dims, out_activation, loss, dtype, seed)
            self.n_outputs_ = n_outputs
            self.out_activation_ = self._reported_out_activation(out_activation)
            self.n_layers_ = len(dims)
            self.coefs_, self.intercepts_ = kernels, biases
            self.n_iter_ = 0
            self.t_ = 0
            self._best_params = self.model_.params.copy()
        if self.solver != "lbfgs":
            # scikit-learn starts these records on the first fit only; pynn
            # also when a warm start comes from lbfgs or turns early stopping
            # on or off (where scikit-learn fails on the missing records)
            if first_pass or not hasattr(self, "loss_curve_"):
                self.loss_curve_ = []
                self._no_improvement_count = 0
                self.best_loss_ = np.inf
                self.validation_scores_ = self.best_validation_score_ = None
            if early_stopping and self.validation_scores_ is None:
                self.validation_scores_, self.best_validation_score_ = [], -np.inf
                self.best_loss_ = None
            elif not early_stopping and self.best_loss_ is None:
                self.best_loss_ = np.inf
        if self.solver == "lbfgs":
            return lambda: self._fit_lbfgs(X, targets, sw)
        if early_stopping:
            return lambda: self._fit_stochastic(
                X[train], targets[train], X[val], y_score[val], incremental,
                None if sw is None else sw[train], None if sw is None else sw[val])
        return lambda: self._fit_stochastic(X, targets, None, None, incremental, sw)

    def _fit_lbfgs(self, X, targets, sample_weight=None):
        """scikit-learn's full-batch objective, minimised by L-BFGS-B.

        The objective is the data loss (scikit-learn's definitions) plus
        ``0.5 * alpha * sum of squared kernels / n_samples``; pynn's compiled
        network gives the loss and gradient at each point SciPy asks for.
        With sample weights, scikit-learn's weighted mean: ``sum_i w_i l_i``
        and the L2 term both over ``sum_i w_i`` (the kernels get the weights
        rescaled to sum to n_samples, so their mean over n_samples is it).
        """
        model = self.model_
        # the gradients of the loss alone: the L2 term is added here, once;
        # a later partial_fit starts a new stochastic optimizer
        model.compile(loss=model.loss, optimizer=SGD())
        self.__dict__.pop("_current_lr", None)
        n_samples = X.shape[0]
        rows_weight = None
        if sample_weight is not None:
            rows_weight = sample_weight * (n_samples / sample_weight.sum())
            n_samples = float(sample_weight.sum())
        loss_scale, grad_scale = self._loss_scale(), self._grad_scale()
        shapes = [(layer.W.shape, layer.b.shape) for layer in model.layers]
        sizes = [int(np.prod(shape)) for pair in shapes for shape in pair]
        bounds = np.cumsum([0] + sizes)
        is_kernel = np.zeros(bounds[-1], dtype=bool)
        for k in range(0, len(sizes), 2):
            is_kernel[bounds[k]:bounds[k + 1]] = True

        def unpack(w):
            for i, layer in enumerate(model.layers):
                layer.W[...] = w[bounds[2 * i]:bounds[2 * i + 1]].reshape(layer.W.shape)
                layer.b[...] = w[bounds[2 * i + 1]:bounds[2 * i + 2]]

        def loss_and_grad(w):
            unpack(w)
            try:
                loss, grad = _full_batch_gradients(model, X, targets, rows_weight)
            except DivergenceError:
                # SciPy's line search steps back from an infinite value; at
                # the start L-BFGS-B stops there, as scikit-learn's does on NaN
                return np.inf, np.zeros_like(w)
            kernels = np.where(is_kernel, w, 0.0)
            loss = loss_scale * loss + 0.5 * self.alpha * float(kernels @ kernels) / n_samples
            return loss, grad_scale * grad + self.alpha * kernels / n_samples

        start = np.concatenate([a.ravel() for layer in model.layers
                                for a in (layer.W, layer.b)]).astype(np.float64)
        result = scipy.optimize.minimize(
            loss_and_grad, start, method="L-BFGS-B", jac=True,
            options={"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol})
        if not np.isfinite(result.x).all():
            unpack(start)
            raise SolverDivergenceError(_NONFINITE_MESSAGE)
        unpack(result.x)
        self.n_iter_ = _lbfgs_n_iter(result, self.max_iter)
        # scikit-learn's loss is NaN where pynn's network reports overflow
        self.loss_ = float(result.fun) if np.isfinite(result.fun) else np.nan

    def _fit_stochastic(self, X, targets, X_val, y_val, incremental, sample_weight=None,
                        val_weight=None):
        model = self.model_
        n_samples = X.shape[0]
        batch_size = self._batch_size(n_samples)
        n_batches = -(-n_samples // batch_size)
        if not incremental or not hasattr(self, "_current_lr"):
            # scikit-learn starts a new optimizer on every fit, warm or not
            model.compile(loss=model.loss, optimizer=self._new_optimizer(batch_size))
            self._current_lr = self.learning_rate_init
        else:
            # partial_fit on batches of another size: keep scikit-learn's L2 term
            model.optimizer.weight_decay = self.alpha / batch_size / self._grad_scale()
        opt = model.optimizer
        early_stopping = X_val is not None
        diverged = None
        self.n_iter_ = 0
        for _ in range(self.max_iter):
            if diverged is None:
                if self.solver == "sgd":
                    opt.learning_rate = self._current_lr * self._grad_scale()
                try:
                    if sample_weight is not None:
                        epoch_loss = self._weighted_epoch(X, targets, sample_weight, batch_size)
                    else:
                        history = model.fit(X, targets, epochs=1, batch_size=batch_size,
                                            shuffle=bool(self.shuffle), verbose=0)
                except DivergenceError:
                    # scikit-learn's weights would now be NaN for good: every
                    # later epoch's loss and score is NaN (pynn's weights stay
                    # those of the last finite step)
                    diverged = self.n_iter_ + 1
            if diverged is None and sample_weight is not None:
                loss = epoch_loss
            elif diverged is None:
                # scikit-learn's epoch loss: the batch losses, each with its
                # L2 term 0.5 * alpha * ||W||^2 / batch, weighted by batch size
                loss = (self._loss_scale() * history.history["loss"][0] + 0.5 * self.alpha
                        * self._squared_kernels() * n_batches / n_samples)
            else:
                loss = np.nan
            self.n_iter_ += 1
            self.t_ += n_samples
            self.loss_ = loss
            self.loss_curve_.append(loss)
            if self.verbose:
                print(f"Iteration {self.n_iter_}, loss = {loss:.8f}")
            self._update_no_improvement_count(X_val, y_val, diverged is not None, val_weight)
            if self.solver == "sgd" and self.learning_rate == "invscaling":
                self._current_lr = self.learning_rate_init / (self.t_ + 1) ** self.power_t
            if self._no_improvement_count > self.n_iter_no_change:
                if self.solver == "sgd" and self.learning_rate == "adaptive" \
                        and self._current_lr > _ADAPTIVE_MIN_LR:
                    self._current_lr /= 5.0
                    self._no_improvement_count = 0
                    if self.verbose:
                        print(f"Setting learning rate to {self._current_lr:f}")
                else:
                    if self.verbose:
                        what = "Validation score" if early_stopping else "Training loss"
                        print(f"{what} did not improve more than tol={self.tol:f} for "
                              f"{self.n_iter_no_change} consecutive epochs. Stopping.")
                    break
            if incremental:
                break
            if self.n_iter_ == self.max_iter:
                warnings.warn(f"Stochastic Optimizer: Maximum iterations "
                              f"({self.max_iter}) reached and the optimization hasn't "
                              f"converged yet.", ConvergenceWarning, stacklevel=4)
        if early_stopping:
            # as scikit-learn: keep the best-scoring weights
            model.params[...] = self._best_params
        elif diverged is not None:
            raise SolverDivergenceError(
                f"{_NONFINITE_MESSAGE} (pynn: a loss or gradient became non-finite in "
                f"epoch {diverged}; that step was not applied, the weights are those of "
                f"the last finite step)")

    def _weighted_epoch(self, X, targets, sample_weight, batch_size):
        """One epoch with scikit-learn's weighted batches: each batch's data
        loss, gradient and L2 term over the batch's sum of weights.  A step
        per batch (the L2 term's divisor changes from batch to batch); the
        row weights are rescaled to sum to the batch size, so the compiled
        mean over the batch is scikit-learn's weighted mean.  Returns the
        epoch's loss as scikit-learn reports it."""
        model = self.model_
        n_samples = X.shape[0]
        order = (model.generator.permutation(n_samples) if self.shuffle
                 else np.arange(n_samples))
        total = 0.0
        for start in range(0, n_samples, batch_size):
            rows = order[start:start + batch_size]
            w = sample_weight[rows]
            w_sum = float(w.sum())
            divisor = w_sum if w_sum > 0 else float(rows.shape[0])
            model.optimizer.weight_decay = self.alpha / divisor / self._grad_scale()
            l2 = 0.5 * self.alpha * self._squared_kernels() / divisor
            loss = model.train_on_batch(X[rows], targets[rows],
                                        sample_weight=w * (rows.shape[0] / divisor))
            total += (self._loss_scale() * loss + l2) * rows.shape[0]
        return total / n_samples

    def _update_no_improvement_count(self, X_val, y_val, diverged, val_weight=None):
        # NaN compares False both ways: a NaN loss or score resets the count,
        # as in scikit-learn
        if X_val is not None:
            score = np.nan if diverged else self._score_raw(X_val, y_val, val_weight)
            self.validation_scores_.append(score)
            if self.verbose:
                print(f"Validation score: {score:f}")
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best_params = self.model_.params.copy()
        else:
            loss = self.loss_curve_[-1]
            if loss > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if loss < self.best_loss_:
                self.best_loss_ = loss

    def fit(self, X, y, sample_weight=None):
        """Fit the network to ``X``, ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), optional
            As scikit-learn's MLP: each batch's loss, gradient and L2 term
            over the batch's sum of weights (and the validation score of
            early stopping weighted too).  A compiled step per batch.

        Returns
        -------
        self
        """
        return self._fit(X, y, incremental=False, sample_weight=sample_weight)

    def _forward(self, X):
        """The network's outputs, (n_samples, n_outputs), for checked X."""
        return self.model_.predict(_as_input(X, self.model_.dtype))

    def _predict_raw(self, X):
        check_is_fitted(self, "model_")
        X = _validate_data(self, X, reset=False, accept_sparse=_SPARSE_FORMATS,
                           dtype=(np.float64, np.float32))
        out = self._forward(X)
        # scikit-learn's outputs have the dtype of X with the weights'
        return out.astype(np.result_type(X.dtype, out.dtype), copy=False)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True   # CSR and CSC X, densified batch by batch
        return tags

    # -------------------------------------------------------------- pickling

    def __getstate__(self):
        # the Sequential holds compiled objects and a lock: it travels as the
        # arrays of pynn's own (pickle-free) save format
        state = super().__getstate__()
        if "model_" in state:
            state = dict(state)
            state["model_"] = {key: np.array(value) for key, value in
                               io.to_arrays(state["model_"]).items()}
        return state

    def __setstate__(self, state):
        if isinstance(state.get("model_"), dict):
            state = dict(state)
            state["model_"] = io.from_arrays(state["model_"])
        super().__setstate__(state)


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier trained by pynn's compiled kernels.

    scikit-learn's ``MLPClassifier`` interface (see this module's doc for
    where it differs).  Several classes: a softmax output layer and the
    cross-entropy on integer labels; two classes: one sigmoid output and the
    binary cross-entropy; a 2-D indicator ``y`` (multilabel): one sigmoid
    output per label.

    Parameters
    ----------
    hidden_layer_sizes : int or tuple of int, default (100,)
        Units of each hidden layer.
    activation : {"relu", "tanh", "logistic", "identity"}, default "relu"
        Hidden layers' activation (pynn's relu, tanh, sigmoid, linear).
    solver : {"adam", "sgd", "lbfgs"}, default "adam"
        "lbfgs": SciPy's L-BFGS-B on the full-batch objective.
    alpha : float >= 0, default 1e-4
        L2 penalty (see the module doc).
    batch_size : int or "auto", default "auto"
        "auto" is ``min(200, n_samples)``.
    learning_rate : {"constant", "invscaling", "adaptive"}, default "constant"
        The SGD rate's schedule, as scikit-learn's (per epoch).
    learning_rate_init : float > 0, default 0.001
    power_t : float >= 0, default 0.5
        Exponent of "invscaling".
    max_iter : int > 0, default 200
        Epochs ("sgd", "adam"), iterations ("lbfgs").
    shuffle : bool, default True
    random_state : int, RandomState or None
        Draws the initial weights and the early-stopping split as
        scikit-learn draws them, and seeds pynn's generator (shuffling).
    tol : float >= 0, default 1e-4
    verbose : bool or int, default False
        Print the loss of each epoch.
    warm_start : bool, default False
        Continue from the fitted weights (with a new optimizer) on ``fit``.
    momentum : float in [0, 1), default 0.9
    nesterovs_momentum : bool, default True
    early_stopping : bool, default False
        Hold out ``validation_fraction`` (stratified when there is one
        output), stop when its accuracy has not improved by ``tol`` for
        ``n_iter_no_change`` epochs, and keep the best-scoring weights.
    validation_fraction : float in (0, 1), default 0.1
    beta_1, beta_2 : float in [0, 1), defaults 0.9, 0.999
    epsilon : float > 0, default 1e-8
    n_iter_no_change : int > 0 or np.inf, default 10
    max_fun : int > 0, default 15000
        Most loss evaluations of "lbfgs".
    dtype : None, "float64" or "float32", default None
        pynn's storage type; None follows X (float32 stays float32).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    loss_ : float
    loss_curve_ : list of float, one per epoch (not with "lbfgs")
    best_loss_ : float or None (None with early stopping; not with "lbfgs")
    validation_scores_ : list of float or None
    best_validation_score_ : float or None
    n_iter_ : int
        Epochs (or lbfgs iterations) of the last fit or partial_fit.
    t_ : int
        Samples seen by the stochastic solvers since the first fit.
    coefs_ : list of ndarray, ``coefs_[i]`` of shape (n_in, n_out)
        Transposed views of pynn's kernels (assignable).
    intercepts_ : list of ndarray, ``intercepts_[i]`` of shape (n_out,)
    n_features_in_ : int
    n_outputs_ : int
    n_layers_ : int
    out_activation_ : str
    model_ : pynn.Sequential
        The trained network.
    """

    def _validate_kwargs(self):
        return dict(accept_sparse=_SPARSE_FORMATS, multi_output=True,
                    dtype=(np.float64, np.float32))

    def _encode(self, y, incremental, dtype):
        """y as scikit-learn binarizes it, then what the pynn loss reads:
        class codes (as floats) for several classes, the 0/1 matrix for one
        output or a multilabel y; also the array to stratify the
        early-stopping split on, and the labels to score it with."""
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer().fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(f"warm_start can only be used where `y` has the same "
                                     f"classes as in the previous call to fit. Previously "
                                     f"got {self.classes_}, `y` has {classes}")
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` "
                                 f"has {self.classes_}. 'y' has {classes}.")
        binarized = self._label_binarizer.transform(y).astype(bool)
        # as scikit-learn: stratified for one output (two classes, or one)
        stratify = binarized if binarized.shape[1] == 1 else None
        if self._label_binarizer.y_type_ == "multiclass":
            targets = np.argmax(binarized, axis=1).astype(dtype)
        else:
            targets = np.ascontiguousarray(binarized, dtype=dtype)
        return targets, stratify, y

    def _loss_scale(self):
        # scikit-learn sums the binary cross-entropy over the labels, pynn's
        # takes the mean over every element
        if self._label_binarizer.y_type_ == "multilabel-indicator":
            return float(len(self.classes_))
        return 1.0

    def _output_spec(self):
        binarizer = self._label_binarizer
        if binarizer.y_type_ == "multilabel-indicator":
            return len(self.classes_), "sigmoid", "binary_crossentropy"
        if binarizer.y_type_ == "multiclass":
            return len(self.classes_), "softmax", "sparse_categorical_crossentropy"
        return 1, "sigmoid", "binary_crossentropy"   # two classes, or one

    def _score_raw(self, X, y, sample_weight=None):
        proba = self._forward(X)
        if not np.isfinite(proba).all():
            return np.nan
        return accuracy_score(y, self._decide(proba), sample_weight=sample_weight)

    def _decide(self, proba):
        return self._label_binarizer.inverse_transform(
            proba.ravel() if proba.shape[1] == 1 else proba)

    @available_if(_check_stochastic)
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch over ``X``, ``y``, continuing from the current weights
        and optimizer state.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
        classes : array-like of shape (n_classes,)
            Every class that will ever appear; required on the first call
            (for a multilabel y, the label indices).

        Returns
        -------
        self
        """
        state = dict(self.__dict__)
        if getattr(self, "classes_", None) is None:
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit.")
            y_arr = np.asarray(y)
            # unknown labels in y are refused in _fit, with scikit-learn's text
            binarizer = LabelBinarizer().fit(
                y_arr if y_arr.ndim == 2 and y_arr.shape[1] > 1 else classes)
            self._label_binarizer = binarizer
            self.classes_ = binarizer.classes_
        elif classes is not None and not np.array_equal(self.classes_, unique_labels(classes)):
            raise ValueError(f"`classes={classes!r}` is not the same as on last call to "
                             f"partial_fit, was: {self.classes_!r}")
        return self._fit(X, y, incremental=True, state=state, sample_weight=sample_weight)

    def predict(self, X):
        """Predicted class of each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,), or (n_samples, n_labels) for multilabel
        """
        return self._decide(self._predict_raw(X))

    def predict_proba(self, X):
        """Class probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Columns in the order of ``classes_``; for multilabel, the
            probability of each label (rows need not sum to 1).  With one
            output (two classes, or one) the columns are 1 - p and p.
        """
        proba = self._predict_raw(X)
        if proba.shape[1] == 1:
            return np.hstack([1.0 - proba, proba])
        return proba

    def predict_log_proba(self, X):
        """Log of ``predict_proba``, shape (n_samples, n_classes)."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags

    def _more_tags(self):  # scikit-learn < 1.6
        return {"multilabel": True}


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor trained by pynn's compiled kernels.

    scikit-learn's ``MLPRegressor`` interface (see this module's doc for
    where it differs): a linear output layer, one unit per target, trained
    on scikit-learn's squared loss ``0.5 * mean((y - p)**2)``, or on its half
    Poisson deviance with an exp output.

    Parameters
    ----------
    loss : {"squared_error", "poisson"}, default "squared_error"
        "squared_error": a linear output and half the squared error.
        "poisson": scikit-learn's log link, ``predict`` returning
        ``exp(raw output)``, and the half Poisson deviance
        ``y log(y / mu) - y + mu`` (averaged over the samples, summed over the
        outputs) as ``loss_`` and ``loss_curve_``; pynn computes it from the
        raw output with the exp fused in (``pynn.losses.HalfPoissonDeviance``).
        y must be >= 0, and ``fit`` needs ``sum(y) > 0``.
    others
        The same as :class:`MLPClassifier`'s; early stopping scores the
        held-out fraction (not stratified) by R^2.

    Attributes
    ----------
    loss_, loss_curve_, best_loss_, validation_scores_, best_validation_score_,
    n_iter_, t_
        As in :class:`MLPClassifier`.
    coefs_ : list of ndarray, ``coefs_[i]`` of shape (n_in, n_out)
        Transposed views of pynn's kernels.
    intercepts_ : list of ndarray, ``intercepts_[i]`` of shape (n_out,)
    n_features_in_, n_outputs_, n_layers_
    out_activation_ : "identity", or "exp" with loss="poisson"
    model_ : pynn.Sequential
    """

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *,
                 solver="adam", alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=False,
                 validation_fraction=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                 n_iter_no_change=10, max_fun=15000, dtype=None):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, solver=solver,
            alpha=alpha, batch_size=batch_size, learning_rate=learning_rate,
            learning_rate_init=learning_rate_init, power_t=power_t, max_iter=max_iter,
            shuffle=shuffle, random_state=random_state, tol=tol, verbose=verbose,
            warm_start=warm_start, momentum=momentum, nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, n_iter_no_change=n_iter_no_change,
            max_fun=max_fun, dtype=dtype)
        self.loss = loss

    def _check_params(self):
        if self.loss not in _REGRESSION_LOSSES:
            raise ValueError(f"loss must be one of {list(_REGRESSION_LOSSES)}, "
                             f"got {self.loss!r}")
        return super()._check_params()

    def _loss_scale(self):
        # scikit-learn's squared loss has a 0.5 that pynn's MSE has not; its
        # Poisson deviance sums the outputs' means, pynn's takes their mean
        return 0.5 if self.loss == "squared_error" else float(self._n_targets)

    def _grad_scale(self):
        # and its gradient is that of the loss summed over the outputs (for
        # the squared error, not averaged as the loss it reports)
        return self._n_targets * (0.5 if self.loss == "squared_error" else 1.0)

    def _reported_out_activation(self, out_activation):
        return "exp" if self.loss == "poisson" else super()._reported_out_activation(
            out_activation)

    def _validate_kwargs(self):
        return dict(accept_sparse=_SPARSE_FORMATS, multi_output=True, y_numeric=True,
                    dtype=(np.float64, np.float32))

    def _encode(self, y, incremental, dtype):
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        y2 = y.reshape(-1, 1) if y.ndim == 1 else y
        if hasattr(self, "model_") and (self.warm_start or incremental) \
                and y2.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {y2.shape[1]} outputs, the fitted network "
                             f"{self.n_outputs_}")
        if hasattr(self, "model_") and (self.warm_start or incremental):
            fitted = "poisson" if self.out_activation_ == "exp" else "squared_error"
            if self.loss != fitted:
                raise ValueError(f"loss={self.loss!r} does not match the fitted network's "
                                 f"loss {fitted!r}; refit with warm_start=False")
        if self.loss == "poisson":
            # scikit-learn's requirement of Poisson targets (the text of its
            # gradient boosting); a partial_fit batch may be all zeros
            if (y2 < 0).any() or (not incremental and not y2.sum() > 0):
                raise ValueError("loss='poisson' requires non-negative y and sum(y) > 0.")
        self._n_targets = y2.shape[1]
        return np.ascontiguousarray(y2, dtype=dtype), None, y2

    def _output_spec(self):
        # poisson: a linear last layer whose output is log(mu), the exp fused
        # into the loss (and applied by _forward)
        return self._n_targets, "linear", _REGRESSION_LOSSES[self.loss]

    def _forward(self, X):
        out = super()._forward(X)
        return np.exp(out) if self.out_activation_ == "exp" else out

    def _score_raw(self, X, y, sample_weight=None):
        pred = self._forward(X)
        if not np.isfinite(pred).all():
            return np.nan
        return r2_score(y, pred, sample_weight=sample_weight)

    @available_if(_check_stochastic)
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over ``X``, ``y``, continuing from the current weights
        and optimizer state.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)

        Returns
        -------
        self
        """
        return self._fit(X, y, incremental=True, sample_weight=sample_weight)

    def predict(self, X):
        """Predicted targets.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,) for one target, else (n_samples, n_outputs)
        """
        out = self._predict_raw(X)
        return out.ravel() if out.shape[1] == 1 else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def _more_tags(self):  # scikit-learn < 1.6
        return {"multioutput": True}
