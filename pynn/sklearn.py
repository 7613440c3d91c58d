"""scikit-learn estimators over pynn: ``MLPClassifier`` and ``MLPRegressor``.

They take scikit-learn's parameter names where they mean the same thing as
in ``sklearn.neural_network``, so they drop into a Pipeline, GridSearchCV or
cross_val_score, can be cloned, and pickle (as their weights and settings,
never as compiled objects).  The network underneath is a
:class:`pynn.Sequential`, kept as the fitted attribute ``model_``.

This module needs scikit-learn (``pip install "pynn[sklearn]"``); ``import
pynn`` never imports it.

Where they differ from scikit-learn's estimators
------------------------------------------------
- ``coefs_[i]`` has scikit-learn's shape (n_in, n_out): it is the transposed
  VIEW ``model_.layers[i].W.T`` of pynn's kernel (n_out, n_in), so writing
  into it changes the model; ``intercepts_[i]`` is the bias itself.
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
  root); scikit-learn adds it before the correction.  The weights start from
  pynn's generator, drawn as scikit-learn draws them (Glorot uniform with
  its factor for logistic layers, biases uniform in the same range), so
  results agree with scikit-learn's in distribution, not bit for bit.
- ``loss_curve_`` holds, per epoch, the mean of the batch losses (each taken
  before its update) plus the L2 term at the end of the epoch.
- ``dtype`` (default float64) is pynn's storage type; inputs are converted.
- Only the "sgd" and "adam" solvers (scikit-learn's "lbfgs" is not here).
"""
import numbers
import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d

from . import initializers, io
from ._validation import as_dtype, check_positive_int, check_real
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
_SOLVERS = ("sgd", "adam")
_SCHEDULES = ("constant", "invscaling", "adaptive")
# scikit-learn's adaptive schedule divides the rate by 5 on a plateau and
# stops once it is this small
_ADAPTIVE_MIN_LR = 1e-6


def _check_bool(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


class _BaseMLP(BaseEstimator):
    """Shared by MLPClassifier and MLPRegressor: parameters, the epoch loop."""

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
                 n_iter_no_change=10, dtype="float64"):
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
            raise ValueError(f"solver must be one of {list(_SOLVERS)} (pynn has no "
                             f"'lbfgs'), got {self.solver!r}")
        if self.learning_rate not in _SCHEDULES:
            raise ValueError(f"learning_rate must be one of {list(_SCHEDULES)}, "
                             f"got {self.learning_rate!r}")
        if not (isinstance(self.batch_size, str) and self.batch_size == "auto"):
            check_positive_int(self.batch_size, "batch_size")
        check_real(self.alpha, "alpha", low=0)
        check_real(self.learning_rate_init, "learning_rate_init", low=0, low_open=True)
        check_real(self.power_t, "power_t", low=0)
        check_positive_int(self.max_iter, "max_iter")
        check_real(self.tol, "tol", low=0)
        check_real(self.momentum, "momentum", low=0, high=1, high_open=True)
        check_real(self.validation_fraction, "validation_fraction", low=0, high=1,
                   low_open=True, high_open=True)
        check_real(self.beta_1, "beta_1", low=0, high=1, high_open=True)
        check_real(self.beta_2, "beta_2", low=0, high=1, high_open=True)
        check_real(self.epsilon, "epsilon", low=0, low_open=True)
        check_positive_int(self.n_iter_no_change, "n_iter_no_change")
        for name in ("shuffle", "warm_start", "nesterovs_momentum", "early_stopping"):
            _check_bool(getattr(self, name), name)
        if not isinstance(self.verbose, (bool, np.bool_, numbers.Integral)):
            raise TypeError(f"verbose must be a bool or an int, got {self.verbose!r}")
        as_dtype(self.dtype)
        return sizes

    def _batch_size(self, n_samples):
        if isinstance(self.batch_size, str):
            return min(200, n_samples)
        if self.batch_size > n_samples:
            warnings.warn(f"Got batch_size={self.batch_size} larger than the "
                          f"{n_samples} samples; it is clipped to {n_samples}",
                          UserWarning, stacklevel=3)
        return min(self.batch_size, n_samples)

    # ------------------------------------------------------------ the model

    def _new_model(self, sizes, n_features, n_outputs, out_activation, loss, seed):
        """A Sequential initialised as scikit-learn initialises its MLPs."""
        dims = [n_features, *sizes, n_outputs]
        activations = [_ACTIVATIONS[self.activation]] * len(sizes) + [out_activation]
        # scikit-learn: W and b uniform in +-sqrt(factor / (fan_in + fan_out)),
        # factor 2 for a logistic layer and 6 otherwise; as a variance-scaling
        # initializer (limit sqrt(3 * scale / fan_avg)), scale = factor / 6
        layers = []
        for i, act in enumerate(activations):
            factor = 2.0 if act == "sigmoid" else 6.0
            limit = float(np.sqrt(factor / (dims[i] + dims[i + 1])))
            layers.append(Dense(
                dims[i + 1], activation=act, input_dim=dims[0] if i == 0 else None,
                kernel_initializer=initializers.VarianceScaling(
                    scale=factor / 6.0, mode="fan_avg", distribution="uniform"),
                bias_initializer=initializers.RandomUniform(-limit, limit)))
        model = Sequential(layers, dtype=self.dtype, seed=seed)
        model.compile(loss=loss, optimizer=self._new_optimizer(n_samples=None))
        return model

    def _new_optimizer(self, n_samples, batch_size=None):
        # the rate is that of the first epoch; _fit_epochs updates it
        weight_decay = (self.alpha / batch_size / self._grad_scale()) if batch_size else 0.0
        if self.solver == "sgd":
            return SGD(learning_rate=self.learning_rate_init * self._grad_scale(),
                       momentum=self.momentum,
                       nesterov=bool(self.nesterovs_momentum) and self.momentum > 0,
                       weight_decay=weight_decay)
        return Adam(learning_rate=self.learning_rate_init, beta_1=self.beta_1,
                    beta_2=self.beta_2, epsilon=self.epsilon / self._grad_scale(),
                    weight_decay=weight_decay)

    def _penalty(self, batch_size):
        # scikit-learn's L2 term on the batch loss, with the current weights
        squares = sum(float(np.dot(layer.W.ravel(), layer.W.ravel()))
                      for layer in self.model_.layers)
        return 0.5 * self.alpha * squares / batch_size

    @property
    def coefs_(self):
        """Kernels in scikit-learn's layout: ``coefs_[i]`` of shape
        (n_in, n_out), the transposed view of ``model_.layers[i].W``."""
        check_is_fitted(self, "model_")
        return [layer.W.T for layer in self.model_.layers]

    @property
    def intercepts_(self):
        """Biases: ``intercepts_[i]`` of shape (n_out,), a view of
        ``model_.layers[i].b``."""
        check_is_fitted(self, "model_")
        return [layer.b for layer in self.model_.layers]

    # ------------------------------------------------------------- training

    def _fit(self, X, y, incremental, classes=None):
        sizes = self._check_params()
        first_call = not hasattr(self, "model_")
        reuse = not first_call and (incremental or self.warm_start)
        X, y = _validate_data(self, X, y, reset=not reuse, **self._validate_kwargs())
        X = np.ascontiguousarray(X, dtype=as_dtype(self.dtype))
        targets = self._encode(y, incremental, reuse, classes)
        n_samples = X.shape[0]
        rng = check_random_state(self.random_state)
        if not reuse:
            n_outputs, out_activation, loss = self._output_spec()
            seed = int(rng.randint(np.iinfo(np.int32).max))
            self.model_ = self._new_model(sizes, X.shape[1], n_outputs, out_activation,
                                          loss, seed)
            self.n_outputs_ = n_outputs
            self.out_activation_ = {"sigmoid": "logistic", "linear": "identity"}.get(
                out_activation, out_activation)
            self.n_layers_ = len(sizes) + 2
            self.n_iter_ = 0
            self.t_ = 0
            self.loss_curve_ = []
            self._no_improvement_count = 0
            self.best_loss_ = np.inf
            self._current_lr = self.learning_rate_init
        elif len(self.model_.layers) != len(sizes) + 1 or any(
                layer.units != size for layer, size in zip(self.model_.layers, sizes)):
            raise ValueError(f"hidden_layer_sizes={self.hidden_layer_sizes!r} does not "
                             f"match the fitted network; refit with warm_start=False")
        batch_size = self._batch_size(n_samples)
        if not incremental:
            # scikit-learn starts a new optimizer on every fit, warm or not
            self.model_.compile(loss=self.model_.loss,
                                optimizer=self._new_optimizer(n_samples, batch_size))
            self._current_lr = self.learning_rate_init
            self._no_improvement_count = 0
        elif first_call or not reuse:
            self.model_.compile(loss=self.model_.loss,
                                optimizer=self._new_optimizer(n_samples, batch_size))
        else:
            # partial_fit on batches of another size: keep scikit-learn's L2 term
            self.model_.optimizer.weight_decay = self.alpha / batch_size / self._grad_scale()

        early_stopping = self.early_stopping and not incremental
        if early_stopping:
            stratify = (targets if isinstance(self, MLPClassifier) and targets.ndim == 1
                        else None)
            X, X_val, targets, _, _, y_val = train_test_split(
                X, targets, y, random_state=rng, test_size=self.validation_fraction,
                stratify=stratify)
            if X.shape[0] < 2 or X_val.shape[0] < 2:
                raise ValueError(f"validation_fraction={self.validation_fraction!r} of "
                                 f"{n_samples} samples leaves too few for training or "
                                 f"validation")
            batch_size = self._batch_size(X.shape[0])
            self.model_.optimizer.weight_decay = self.alpha / batch_size / self._grad_scale()
            if not reuse or not hasattr(self, "validation_scores_") \
                    or self.validation_scores_ is None:
                self.validation_scores_ = []
                self.best_validation_score_ = -np.inf
            self.best_loss_ = None
        else:
            X_val = y_val = None
            self.validation_scores_ = None
            self.best_validation_score_ = None
            if self.best_loss_ is None:
                self.best_loss_ = np.inf
        self._fit_epochs(X, targets, X_val, y_val, batch_size,
                         1 if incremental else self.max_iter, incremental)
        return self

    def _fit_epochs(self, X, targets, X_val, y_val, batch_size, n_epochs, incremental):
        model, opt = self.model_, self.model_.optimizer
        best_params = None
        for _ in range(n_epochs):
            if self.solver == "sgd":
                opt.learning_rate = self._current_lr * self._grad_scale()
            history = model.fit(X, targets, epochs=1, batch_size=batch_size,
                                shuffle=bool(self.shuffle), verbose=0)
            loss = self._loss_scale() * history.history["loss"][0] + self._penalty(batch_size)
            self.n_iter_ += 1
            self.t_ += X.shape[0]
            self.loss_curve_.append(loss)
            if self.verbose:
                print(f"Iteration {self.n_iter_}, loss = {loss:.8f}")
            if self.solver == "sgd" and self.learning_rate == "invscaling":
                self._current_lr = self.learning_rate_init / (self.t_ + 1) ** self.power_t
            if X_val is not None:
                score = self._score_raw(X_val, y_val)
                self.validation_scores_.append(score)
                if self.verbose:
                    print(f"Validation score: {score:f}")
                if score < self.best_validation_score_ + self.tol:
                    self._no_improvement_count += 1
                else:
                    self._no_improvement_count = 0
                if score > self.best_validation_score_:
                    self.best_validation_score_ = score
                    best_params = model.params.copy()
            else:
                if loss > self.best_loss_ - self.tol:
                    self._no_improvement_count += 1
                else:
                    self._no_improvement_count = 0
                self.best_loss_ = min(self.best_loss_, loss)
            if incremental:
                continue
            if self._no_improvement_count > self.n_iter_no_change:
                if self.solver == "sgd" and self.learning_rate == "adaptive" \
                        and self._current_lr > _ADAPTIVE_MIN_LR:
                    self._current_lr /= 5.0
                    self._no_improvement_count = 0
                    if self.verbose:
                        print(f"Setting learning rate to {self._current_lr:f}")
                    continue
                if self.verbose:
                    what = "Validation score" if X_val is not None else "Training loss"
                    print(f"{what} did not improve more than tol={self.tol:f} for "
                          f"{self.n_iter_no_change} consecutive epochs. Stopping.")
                break
        else:
            if not incremental and n_epochs > 0:
                warnings.warn(f"Stochastic Optimizer: Maximum iterations "
                              f"({self.max_iter}) reached and the optimization hasn't "
                              f"converged yet.", ConvergenceWarning, stacklevel=3)
        if best_params is not None:
            # as scikit-learn: early stopping keeps the best-scoring weights
            model.params[...] = best_params

    def fit(self, X, y):
        """Fit the network to ``X``, ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)

        Returns
        -------
        self
        """
        return self._fit(X, y, incremental=False)

    def _predict_raw(self, X):
        """The network's outputs, (n_samples, n_outputs), for checked X."""
        check_is_fitted(self, "model_")
        X = _validate_data(self, X, reset=False, accept_sparse=False,
                           dtype=(np.float64, np.float32))
        return self.model_.predict(np.ascontiguousarray(X, dtype=as_dtype(self.dtype)))

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
    solver : {"adam", "sgd"}, default "adam"
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
        Epochs.
    shuffle : bool, default True
    random_state : int, RandomState or None
        Seeds pynn's generator (initial weights, shuffling) and the
        early-stopping split.
    tol : float >= 0, default 1e-4
    verbose : bool or int, default False
        Print the loss of each epoch.
    warm_start : bool, default False
        Continue from the fitted weights (with a new optimizer) on ``fit``.
    momentum : float in [0, 1), default 0.9
    nesterovs_momentum : bool, default True
    early_stopping : bool, default False
        Hold out ``validation_fraction`` (stratified), stop when its accuracy
        has not improved by ``tol`` for ``n_iter_no_change`` epochs, and keep
        the best-scoring weights.
    validation_fraction : float in (0, 1), default 0.1
    beta_1, beta_2 : float in [0, 1), defaults 0.9, 0.999
    epsilon : float > 0, default 1e-8
    n_iter_no_change : int > 0, default 10
    dtype : "float64" or "float32", default "float64"

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    loss_curve_ : list of float, one per epoch
    best_loss_ : float or None (None with early stopping)
    validation_scores_ : list of float or None
    best_validation_score_ : float or None
    n_iter_ : int
        Epochs run.
    t_ : int
        Samples seen.
    coefs_ : list of ndarray, ``coefs_[i]`` of shape (n_in, n_out)
        Transposed views of pynn's kernels.
    intercepts_ : list of ndarray, ``intercepts_[i]`` of shape (n_out,)
    n_features_in_ : int
    n_outputs_ : int
    n_layers_ : int
    out_activation_ : str
    model_ : pynn.Sequential
        The trained network.
    """

    def _validate_kwargs(self):
        return dict(accept_sparse=False, multi_output=True,
                    dtype=(np.float64, np.float32))

    def _encode(self, y, incremental, reuse, classes=None):
        # y -> what the pynn loss reads: class codes 0..k-1 (as floats), or
        # the 0/1 indicator matrix of a multilabel y
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        if reuse:
            binarizer = self._label_binarizer
            known = set(binarizer.classes_.tolist())
            if not set(np.unique(y).tolist()) <= known or \
                    (y.ndim == 2) != (binarizer.y_type_ == "multilabel-indicator"):
                what = "partial_fit" if incremental else "warm_start"
                raise ValueError(f"{what} can only be used where y has the same "
                                 f"classes as in the first fit, got {np.unique(y)!r} "
                                 f"for classes_={self.classes_!r}")
        else:
            binarizer = LabelBinarizer()
            binarizer.fit(y if classes is None else classes)
            if classes is not None and binarizer.y_type_ != "multilabel-indicator":
                unknown = np.setdiff1d(np.unique(y), binarizer.classes_)
                if unknown.size:
                    raise ValueError(f"y has classes not in classes={list(classes)!r}: "
                                     f"{unknown.tolist()!r}")
            if binarizer.y_type_ != "multilabel-indicator" and len(binarizer.classes_) < 2:
                raise ValueError(f"MLPClassifier needs samples of at least 2 classes, "
                                 f"got one class: {binarizer.classes_[0]!r}")
            self._label_binarizer = binarizer
            self.classes_ = binarizer.classes_
        if binarizer.y_type_ == "multilabel-indicator":
            return np.ascontiguousarray(y, dtype=as_dtype(self.dtype))
        codes = np.searchsorted(self.classes_, y)
        return codes.astype(as_dtype(self.dtype))

    def _loss_scale(self):
        # scikit-learn sums the binary cross-entropy over the labels, pynn's
        # takes the mean over every element
        if self._label_binarizer.y_type_ == "multilabel-indicator":
            return float(len(self.classes_))
        return 1.0

    def _output_spec(self):
        if self._label_binarizer.y_type_ == "multilabel-indicator":
            return len(self.classes_), "sigmoid", "binary_crossentropy"
        if len(self.classes_) == 2:
            return 1, "sigmoid", "binary_crossentropy"
        return len(self.classes_), "softmax", "sparse_categorical_crossentropy"

    def _score_raw(self, X, y):
        return accuracy_score(y, self._decide(self.model_.predict(X)))

    def _decide(self, proba):
        if self._label_binarizer.y_type_ == "multilabel-indicator":
            return (proba > 0.5).astype(int)
        if proba.shape[1] == 1:
            return self.classes_[(proba[:, 0] > 0.5).astype(np.intp)]
        return self.classes_[np.argmax(proba, axis=1)]

    def partial_fit(self, X, y, classes=None):
        """One epoch over ``X``, ``y``, continuing from the current weights
        and optimizer state.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
        classes : array-like of shape (n_classes,), optional
            Every class that will ever appear; required on the first call
            (for a multilabel ``y`` it may be left out).

        Returns
        -------
        self
        """
        if not hasattr(self, "model_"):
            y_arr = np.asarray(y)
            if classes is None and not (y_arr.ndim == 2 and y_arr.shape[1] > 1):
                raise ValueError("classes must be passed on the first call to partial_fit")
        elif classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(f"classes={classes!r} is not the same as on the first "
                             f"call to partial_fit ({self.classes_!r})")
        return self._fit(X, y, incremental=True, classes=classes)

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
            probability of each label (rows need not sum to 1).
        """
        proba = self._predict_raw(X)
        if self._label_binarizer.y_type_ != "multilabel-indicator" and proba.shape[1] == 1:
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
    on scikit-learn's squared loss ``0.5 * mean((y - p)**2)``.

    Parameters
    ----------
    The same as :class:`MLPClassifier`'s; early stopping scores the
    held-out fraction (not stratified) by R^2.

    Attributes
    ----------
    loss_curve_ : list of float, one per epoch
    best_loss_, validation_scores_, best_validation_score_, n_iter_, t_
        As in :class:`MLPClassifier`.
    coefs_ : list of ndarray, ``coefs_[i]`` of shape (n_in, n_out)
        Transposed views of pynn's kernels.
    intercepts_ : list of ndarray, ``intercepts_[i]`` of shape (n_out,)
    n_features_in_, n_outputs_, n_layers_, out_activation_ ("identity")
    model_ : pynn.Sequential
    """

    def _loss_scale(self):
        # scikit-learn's squared loss has a 0.5 that pynn's MSE has not
        return 0.5

    def _grad_scale(self):
        # and its gradient is that of the squared error summed over the
        # outputs (not averaged, as the loss it reports)
        return 0.5 * self._n_targets

    def _validate_kwargs(self):
        return dict(accept_sparse=False, multi_output=True, y_numeric=True,
                    dtype=(np.float64, np.float32))

    def _encode(self, y, incremental, reuse, classes=None):
        y = np.asarray(y)
        y2 = y.reshape(-1, 1) if y.ndim == 1 else y
        if reuse and y2.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {y2.shape[1]} outputs, the fitted network "
                             f"{self.n_outputs_}")
        if not reuse:
            self._n_targets = y2.shape[1]
        return np.ascontiguousarray(y2, dtype=as_dtype(self.dtype))

    def _output_spec(self):
        return self._n_targets, "linear", "mse"

    def _score_raw(self, X, y):
        return r2_score(y, self.model_.predict(X).reshape(np.shape(y)))

    def partial_fit(self, X, y):
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
        return self._fit(X, y, incremental=True)

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
