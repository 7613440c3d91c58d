"""Metrics: quantities reported beside the loss by ``fit`` and ``evaluate``.

The functions take targets and probabilities (or plain outputs), as Keras's
do, and return the mean over the batch.  ``compile(metrics=[...])`` turns
names into :class:`Metric` objects, which a model feeds the raw output of
its last layer: logits when the loss is fused with the output activation
(or ``from_logits=True``), probabilities otherwise.  Accuracies need no
activation for that (argmax of logits is argmax of softmax; a logit is > 0
exactly when its sigmoid is > 0.5), MSE and MAE apply it in NumPy.

"accuracy" (or "acc") is resolved from the loss, as Keras does: binary
cross-entropy -> binary accuracy, categorical -> categorical accuracy,
sparse categorical -> sparse categorical accuracy; with another loss, a
single output means binary accuracy, several mean categorical accuracy.

AUC, precision and recall are not means of per-batch values: they are
:class:`StatefulMetric` objects (``reset_state`` / ``update_state`` /
``result``, as Keras's metrics) that accumulate across batches.  AUC is
exact by default (scikit-learn's ``roc_auc_score``); ``AUC(num_thresholds=200)``
is Keras's approximation.

Any other callable ``metric(y_true, y_pred)`` is a custom metric, as in
Keras: it returns one value per sample or a scalar for the batch, and is
reported under its ``__name__`` as the mean over the samples (Keras's
``MeanMetricWrapper``), each batch's mean weighted by its size.
"""
import numpy as np

from . import losses as _losses
from ._validation import check_real, readonly_view
from .reference import sigmoid, softmax
from ._codes import Metric as _Metric

_ACTIVATE = {"sigmoid": sigmoid, "softmax": softmax}
# the compiled metrics' codes (csrc/pynn/kernels/codes.pxd)
_BINARY_ACCURACY, _CATEGORICAL_ACCURACY, _SPARSE_ACCURACY = (
    int(_Metric[k]) for k in ("BINARY_ACCURACY", "CATEGORICAL_ACCURACY", "SPARSE_ACCURACY"))


def _labels(y_true):
    return np.asarray(y_true).reshape(-1)


def binary_accuracy(y_true, y_pred, threshold=0.5):
    """Fraction of entries where ``y_pred > threshold`` agrees with
    ``y_true > 0.5``, over every element of (n, m) arrays."""
    y_pred = np.asarray(y_pred)
    y_true = np.asarray(y_true).reshape(y_pred.shape)
    return float(np.mean((y_pred > threshold) == (y_true > 0.5)))


def categorical_accuracy(y_true, y_pred):
    """Fraction of rows whose largest output is the target's largest entry."""
    return float(np.mean(np.argmax(y_pred, axis=1) == np.argmax(y_true, axis=1)))


def sparse_categorical_accuracy(y_true, y_pred):
    """Fraction of rows whose largest output is at the integer label (n,) or (n, 1)."""
    return float(np.mean(np.argmax(y_pred, axis=1) == _labels(y_true)))


def mean_squared_error(y_true, y_pred):
    """Mean over every element of (y_pred - y_true)**2."""
    y_pred = np.asarray(y_pred)
    return float(np.mean((y_pred - np.asarray(y_true).reshape(y_pred.shape)) ** 2))


def mean_absolute_error(y_true, y_pred):
    """Mean over every element of |y_pred - y_true|."""
    y_pred = np.asarray(y_pred)
    return float(np.mean(np.abs(y_pred - np.asarray(y_true).reshape(y_pred.shape))))


class Metric:
    """A named metric, reported as the mean of its per-batch values.

    Parameters
    ----------
    name : str
        The key under which ``fit`` and ``evaluate`` report it (the name
        given to ``compile``).
    fn : callable ``fn(y_true, y_pred) -> float``
        One of this module's functions.
    """

    #: False: ``fit`` and ``evaluate`` average ``from_outputs`` over the
    #: batches, weighted by batch size.  True (:class:`StatefulMetric`): the
    #: metric is not such a mean and accumulates state across batches.
    stateful = False
    #: True for a user's function (``custom``): it takes whatever targets
    #: the loss prepares, so no fit with the loss is checked.
    custom = False

    def __init__(self, name, fn):
        self.name = name
        self.fn = fn

    def __call__(self, y_true, y_pred):
        return self.fn(y_true, y_pred)

    def from_outputs(self, y, out, activation):
        """The metric on a batch: targets ``y`` as the loss prepared them,
        ``out`` the last layer's output (n, m), which are logits of
        ``activation`` when that is not None."""
        if activation is None:
            return self.fn(y, out)
        if self.fn in (categorical_accuracy, sparse_categorical_accuracy):
            return self.fn(y, out)      # sigmoid and softmax keep the argmax
        if self.fn is binary_accuracy and activation == "sigmoid":
            return binary_accuracy(y, out, threshold=0.0)
        return self.fn(y, _ACTIVATE[activation](out))

    def kernel(self, activation):
        """(code, threshold) of the compiled twin of ``from_outputs`` with this
        ``activation`` (see csrc/dense.pyx), or None when there is none."""
        if self.fn is categorical_accuracy:
            return _CATEGORICAL_ACCURACY, 0.0
        if self.fn is sparse_categorical_accuracy:
            return _SPARSE_ACCURACY, 0.0
        if self.fn is binary_accuracy and activation in (None, "sigmoid"):
            return _BINARY_ACCURACY, 0.0 if activation == "sigmoid" else 0.5
        return None

    def __repr__(self):
        return f"Metric({self.name!r})"


class _BatchMean:
    # A user's metric as the mean of its values over a batch's samples.
    def __init__(self, fn, name):
        self.fn, self.name = fn, name

    def __call__(self, y_true, y_pred):
        # read-only views: y_true may be the user's own array, y_pred the
        # network's output buffer
        values = self.fn(readonly_view(y_true), readonly_view(y_pred))
        try:
            values = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"metric {self.name!r} must return numbers (one per sample, "
                            f"or one for the batch), got {values!r:.80}") from None
        n = np.shape(y_pred)[0]
        if values.ndim and values.shape[0] != n:
            raise ValueError(f"metric {self.name!r} returned values of shape "
                             f"{values.shape} for a batch of {n} samples: give one "
                             f"per sample, or a scalar")
        return float(np.mean(values))


def custom(fn, name=None):
    """A :class:`Metric` from a user's callable ``fn(y_true, y_pred)``.

    ``fn`` gets the targets as the loss prepares them and the model's
    predictions (probabilities for a sigmoid or softmax output, as
    ``predict`` gives); it returns per-sample values (n,) or a scalar.
    The metric is reported under ``name`` (``fn.__name__`` by default)
    as the mean over samples.
    """
    if not callable(fn):
        raise TypeError(f"a custom metric must be callable, got {fn!r}")
    if name is None:
        name = getattr(fn, "__name__", None) or type(fn).__name__
    metric = Metric(name, _BatchMean(fn, name))
    metric.custom = True
    return metric


# ------------------------------------------------ metrics with state across batches


def _binary_pair(y_true, y_pred, threshold_name=None):
    # Flattened, checked (targets, outputs): every element counts, as Keras's
    # AUC, Precision and Recall do without multi_label, class_id or top_k.
    y_pred = np.asarray(y_pred, dtype=np.float64)
    y_true = np.asarray(y_true, dtype=np.float64)
    if y_true.size != y_pred.size:
        raise ValueError(f"y_true and y_pred must have as many elements, got shapes "
                         f"{y_true.shape} and {y_pred.shape}")
    for argname, arr in (("y_true", y_true), ("y_pred", y_pred)):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{argname} holds NaN or infinite values")
    return y_true.reshape(-1) > 0.5, y_pred.reshape(-1)


def roc_auc(y_true, y_score):
    """Area under the ROC curve, exactly: the probability that a random
    positive scores above a random negative, ties counting one half (the
    Mann-Whitney U statistic over n_pos * n_neg; scikit-learn's
    ``roc_auc_score``).  Targets > 0.5 are positives; every element of
    (n, m) arrays counts.  NaN when only one class is present."""
    positive, score = _binary_pair(y_true, y_score)
    n_pos = int(np.count_nonzero(positive))
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(score, kind="mergesort")
    _, first, counts = np.unique(score[order], return_index=True, return_counts=True)
    ranks = np.empty(score.size)
    ranks[order] = np.repeat(first + (counts + 1) / 2.0, counts)   # 1-based, ties averaged
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _counts(y_true, y_pred, threshold):
    positive, score = _binary_pair(y_true, y_pred)
    predicted = score > threshold
    tp = int(np.count_nonzero(predicted & positive))
    return tp, int(np.count_nonzero(predicted)) - tp, int(np.count_nonzero(positive)) - tp


def precision(y_true, y_pred, threshold=0.5):
    """``tp / (tp + fp)`` with ``y_pred > threshold`` the predicted positives
    and targets > 0.5 the real ones, over every element; 0 when nothing is
    predicted positive (as Keras and scikit-learn's ``zero_division=0``)."""
    tp, fp, _ = _counts(y_true, y_pred, threshold)
    return tp / (tp + fp) if tp + fp else 0.0


def recall(y_true, y_pred, threshold=0.5):
    """``tp / (tp + fn)``, as :func:`precision` counts them; 0 without positives."""
    tp, _, fn = _counts(y_true, y_pred, threshold)
    return tp / (tp + fn) if tp + fn else 0.0


class StatefulMetric(Metric):
    """A metric that is not a mean of per-batch values (AUC, precision,
    recall): it accumulates what it needs across batches.

    The interface Keras's metrics have::

        metric.reset_state()
        for each batch:
            metric.update_state(y_true, y_pred)     # probabilities
        metric.result()

    ``metric(y_true, y_pred)`` computes it on those arrays alone and leaves
    the state as it is.  A model feeds it through ``update_from_outputs``
    (the raw output of its last layer, as for :meth:`Metric.from_outputs`).
    """

    stateful = True

    def __init__(self, name, fn):
        super().__init__(name, fn)
        self.reset_state()

    def reset_state(self):
        raise NotImplementedError

    def update_state(self, y_true, y_pred):
        raise NotImplementedError

    def result(self):
        raise NotImplementedError

    def update_from_outputs(self, y, out, activation):
        """``update_state`` from a batch's targets and last-layer output
        ``out``, which are logits of ``activation`` when it is not None."""
        self.update_state(y, out if activation is None else _ACTIVATE[activation](out))

    def from_outputs(self, y, out, activation):
        # The per-batch-mean path: averaging this metric over batches would
        # give a wrong value, so a model must use update_from_outputs.
        raise NotImplementedError(_not_a_mean(self.name))

    def kernel(self, activation):
        return None


def _not_a_mean(name):
    return (f"metric {name!r} is not a mean of per-batch values: fit and evaluate would "
            f"accumulate it across batches (reset_state / update_state / result); "
            f"this caller averages per-batch values: compute it on the predictions "
            f"instead, e.g. pynn.metrics.get({name!r}, loss)(y, model.predict(x))")


class _Confusion(StatefulMetric):
    # Precision and recall: true positives, false positives, false negatives.

    def __init__(self, name, fn, threshold):
        self.threshold = check_real(threshold, "threshold", low=0, high=1)
        super().__init__(name, lambda y_true, y_pred: fn(y_true, y_pred, self.threshold))

    def reset_state(self):
        self.true_positives = self.false_positives = self.false_negatives = 0

    def update_state(self, y_true, y_pred):
        tp, fp, fn = _counts(y_true, y_pred, self.threshold)
        self.true_positives += tp
        self.false_positives += fp
        self.false_negatives += fn


class Precision(_Confusion):
    """Precision over every batch seen since ``reset_state`` (see :func:`precision`).

    Parameters
    ----------
    thresholds : float in [0, 1]
        Outputs above it are predicted positives (Keras's name; one value).
    name : str
    """

    def __init__(self, thresholds=0.5, name="precision"):
        super().__init__(name, precision, thresholds)

    def result(self):
        tp, fp = self.true_positives, self.false_positives
        return tp / (tp + fp) if tp + fp else 0.0


class Recall(_Confusion):
    """Recall over every batch seen since ``reset_state`` (see :func:`recall`).

    Parameters
    ----------
    thresholds : float in [0, 1]
    name : str
    """

    def __init__(self, thresholds=0.5, name="recall"):
        super().__init__(name, recall, thresholds)

    def result(self):
        tp, fn = self.true_positives, self.false_negatives
        return tp / (tp + fn) if tp + fn else 0.0


def _keras_thresholds(num_thresholds):
    # Keras's AUC: num_thresholds - 2 evenly spaced inner thresholds, and two
    # just outside [0, 1] so that every output falls between the extremes.
    epsilon = 1e-7
    inner = np.arange(1, num_thresholds - 1) / (num_thresholds - 1)
    return np.concatenate([[-epsilon], inner, [1.0 + epsilon]])


def _above(sorted_scores, thresholds):
    # how many of the sorted scores are > each threshold
    return sorted_scores.size - np.searchsorted(sorted_scores, thresholds, side="right")


def keras_roc_auc(y_true, y_pred, num_thresholds=200):
    """Keras's approximation of the ROC AUC: true- and false-positive rates
    at ``num_thresholds`` thresholds (``y_pred > t``), and the trapezoid
    rule between them (Keras's ``summation_method="interpolation"``, which
    for ROC is the trapezoid).  ``y_pred`` must lie in [0, 1]."""
    auc = AUC(num_thresholds=num_thresholds)
    auc.update_state(y_true, y_pred)
    return auc.result()


class AUC(StatefulMetric):
    """Area under the ROC curve over every batch seen since ``reset_state``.

    Parameters
    ----------
    num_thresholds : int >= 3 or None
        None (the default): exact, as :func:`roc_auc` (it keeps every
        output seen, 8 bytes each, with its target).  An int: Keras's
        approximation with that many thresholds (Keras's default is 200),
        as :func:`keras_roc_auc`; it keeps four counts per threshold.
    name : str
    """

    def __init__(self, num_thresholds=None, name="auc"):
        if num_thresholds is not None:
            if isinstance(num_thresholds, bool) or not isinstance(
                    num_thresholds, (int, np.integer)) or num_thresholds < 3:
                raise ValueError(f"num_thresholds must be None (exact) or an int >= 3, "
                                 f"got {num_thresholds!r}")
            num_thresholds = int(num_thresholds)
            self.thresholds = _keras_thresholds(num_thresholds)
        self.num_thresholds = num_thresholds
        super().__init__(name, self._on_arrays)

    def _on_arrays(self, y_true, y_pred):
        if self.num_thresholds is None:
            return roc_auc(y_true, y_pred)
        return keras_roc_auc(y_true, y_pred, self.num_thresholds)

    def reset_state(self):
        if self.num_thresholds is None:
            self._positives, self._scores = [], []
        else:
            size = self.num_thresholds
            self.true_positives = np.zeros(size, dtype=np.int64)
            self.false_positives = np.zeros(size, dtype=np.int64)
            self.n_positives = self.n_negatives = 0

    def update_state(self, y_true, y_pred):
        positive, score = _binary_pair(y_true, y_pred)
        if self.num_thresholds is None:
            self._positives.append(positive)
            self._scores.append(score.copy())
            return
        if score.size and (score.min() < 0 or score.max() > 1):
            raise ValueError(f"AUC with num_thresholds needs outputs in [0, 1], got "
                             f"values in [{score.min()!r}, {score.max()!r}]")
        self.true_positives += _above(np.sort(score[positive]), self.thresholds)
        self.false_positives += _above(np.sort(score[~positive]), self.thresholds)
        n_pos = int(np.count_nonzero(positive))
        self.n_positives += n_pos
        self.n_negatives += positive.size - n_pos

    def result(self):
        if self.num_thresholds is None:
            if not self._scores:
                return float("nan")
            return roc_auc(np.concatenate(self._positives), np.concatenate(self._scores))
        # rates are 0 where their denominator is (Keras's divide_no_nan)
        tpr = self.true_positives / max(self.n_positives, 1)
        fpr = self.false_positives / max(self.n_negatives, 1)
        return float(np.sum((fpr[:-1] - fpr[1:]) * (tpr[:-1] + tpr[1:]) / 2.0))


_STATEFUL = {"auc": AUC, "precision": Precision, "recall": Recall}

_FUNCTIONS = {
    "binary_accuracy": binary_accuracy,
    "categorical_accuracy": categorical_accuracy,
    "sparse_categorical_accuracy": sparse_categorical_accuracy,
    "mse": mean_squared_error,
    "mean_squared_error": mean_squared_error,
    "mae": mean_absolute_error,
    "mean_absolute_error": mean_absolute_error,
}
_ACCURACY = ("accuracy", "acc")


def names():
    """The valid metric names."""
    return sorted(set(_FUNCTIONS) | set(_ACCURACY) | set(_STATEFUL))


def _accuracy_for(loss, n_outputs):
    if isinstance(loss, _losses.BinaryCrossentropy):
        return binary_accuracy
    if isinstance(loss, _losses.SparseCategoricalCrossentropy):
        return sparse_categorical_accuracy
    if isinstance(loss, _losses.CategoricalCrossentropy):
        return categorical_accuracy
    return binary_accuracy if n_outputs == 1 else categorical_accuracy


def get(identifier, loss, n_outputs=None):
    """A :class:`Metric` from a name (or a Metric), for a model compiled
    with ``loss`` and ``n_outputs`` outputs."""
    if isinstance(identifier, Metric):
        if not identifier.custom:
            _check_fits(identifier.name, identifier.fn, loss)
        return identifier
    if callable(identifier):
        return custom(identifier)
    if not isinstance(identifier, str):
        raise TypeError(f"a metric must be a name, a pynn Metric or a callable, got "
                        f"{identifier!r} (type {type(identifier).__name__})")
    key = identifier.lower()
    if key in _ACCURACY:
        fn = _accuracy_for(loss, n_outputs)
    elif key in _FUNCTIONS:
        fn = _FUNCTIONS[key]
    elif key in _STATEFUL:
        metric = _STATEFUL[key](name=identifier)
        _check_fits(identifier, metric.fn, loss)
        return metric
    else:
        raise ValueError(f"unknown metric {identifier!r}; valid names: {names()}")
    _check_fits(identifier, fn, loss)
    return Metric(identifier, fn)


def _check_fits(name, fn, loss):
    # a metric reads the targets as the loss prepared them: integer labels
    # for the sparse loss, rows shaped like the output otherwise
    sparse = isinstance(loss, _losses.SparseCategoricalCrossentropy)
    if sparse != (fn is sparse_categorical_accuracy):
        what = "integer labels" if sparse else "targets shaped like the output"
        raise ValueError(f"metric {name!r} does not fit the loss {loss.name!r}, "
                         f"whose targets are {what}")


def get_list(identifiers, loss, n_outputs=None, accumulates=False):
    """Metrics from ``compile(metrics=...)``: None or a list of names.

    ``accumulates``: the caller feeds stateful metrics through
    ``reset_state`` / ``update_from_outputs`` / ``result``; without it a
    stateful metric is refused (a mean of its per-batch values is wrong).
    """
    if identifiers is None:
        return []
    if isinstance(identifiers, (str, Metric)) or callable(identifiers):
        raise TypeError(f"metrics must be a list, got {identifiers!r}; "
                        f"write metrics=[{identifiers!r}]")
    out = [get(m, loss, n_outputs) for m in identifiers]
    seen = set()
    for m in out:
        if m.name in seen or m.name == "loss":
            raise ValueError(f"metric name {m.name!r} is used twice (or is 'loss')")
        seen.add(m.name)
        if m.stateful and not accumulates:
            raise NotImplementedError(_not_a_mean(m.name))
    return out
