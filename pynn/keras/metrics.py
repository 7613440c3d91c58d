"""``keras.metrics``: pynn's metrics under Keras's names and signatures.

``AUC`` here defaults to Keras's 200-threshold approximation (as Keras);
``pynn.metrics.AUC`` is exact.  AUC, Precision and Recall are stateful
(``reset_state`` / ``update_state`` / ``result``) and can be used as Keras's
are, on arrays and in ``compile(metrics=[...])``: fit resets them each
epoch, evaluate accumulates them over its chunks.
"""
from .. import metrics as _metrics
from ._missing import module_getattr, refuse


class _Named(_metrics.Metric):
    fn = None

    def __init__(self, name=None, dtype=None):
        super().__init__(name or self.default_name, type(self).fn)


class BinaryAccuracy(_Named):
    default_name = "binary_accuracy"
    fn = staticmethod(_metrics.binary_accuracy)

    def __init__(self, name="binary_accuracy", dtype=None, threshold=0.5):
        if threshold != 0.5:
            refuse(f"BinaryAccuracy(threshold={threshold!r})",
                   "the compiled accuracy reads outputs at 0.5")
        super().__init__(name)


class CategoricalAccuracy(_Named):
    default_name = "categorical_accuracy"
    fn = staticmethod(_metrics.categorical_accuracy)


class SparseCategoricalAccuracy(_Named):
    default_name = "sparse_categorical_accuracy"
    fn = staticmethod(_metrics.sparse_categorical_accuracy)


class MeanSquaredError(_Named):
    default_name = "mean_squared_error"
    fn = staticmethod(_metrics.mean_squared_error)


class MeanAbsoluteError(_Named):
    default_name = "mean_absolute_error"
    fn = staticmethod(_metrics.mean_absolute_error)


class AUC(_metrics.AUC):
    """Keras's ROC AUC with ``num_thresholds`` thresholds (200, as Keras)."""

    def __init__(self, num_thresholds=200, curve="ROC", summation_method="interpolation",
                 name=None, dtype=None, thresholds=None, multi_label=False, num_labels=None,
                 label_weights=None, from_logits=False):
        for key, value, default in (("curve", curve, "ROC"),
                                    ("summation_method", summation_method, "interpolation"),
                                    ("thresholds", thresholds, None),
                                    ("multi_label", multi_label, False),
                                    ("label_weights", label_weights, None),
                                    ("from_logits", from_logits, False)):
            if value != default:
                refuse(f"AUC({key}={value!r})", "pynn's AUC is the ROC AUC over every "
                       "element, on the model's probabilities")
        super().__init__(num_thresholds=num_thresholds, name=name or "auc")


def _confusion_args(cls, thresholds, top_k, class_id):
    if top_k is not None or class_id is not None:
        refuse(f"{cls}(top_k=..., class_id=...)", "pynn counts every element")
    return 0.5 if thresholds is None else thresholds


class Precision(_metrics.Precision):
    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None, dtype=None):
        super().__init__(_confusion_args("Precision", thresholds, top_k, class_id),
                         name=name or "precision")


class Recall(_metrics.Recall):
    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None, dtype=None):
        super().__init__(_confusion_args("Recall", thresholds, top_k, class_id),
                         name=name or "recall")


def get(identifier):
    """A metric for ``compile``: a name or an instance; "auc" is Keras's AUC
    (200 thresholds) in this namespace, other names are pynn's."""
    if isinstance(identifier, str) and identifier.lower() == "auc":
        return AUC(name=identifier)
    return identifier


Metric = _metrics.Metric
binary_accuracy = _metrics.binary_accuracy
categorical_accuracy = _metrics.categorical_accuracy
sparse_categorical_accuracy = _metrics.sparse_categorical_accuracy

_MISSING = ("Accuracy", "TopKCategoricalAccuracy", "SparseTopKCategoricalAccuracy",
            "F1Score", "FBetaScore", "Mean", "Sum", "MeanIoU", "IoU", "RootMeanSquaredError",
            "MeanAbsolutePercentageError", "R2Score", "BinaryCrossentropy",
            "CategoricalCrossentropy", "SparseCategoricalCrossentropy", "KLDivergence",
            "Hinge", "PrecisionAtRecall", "RecallAtPrecision", "SensitivityAtSpecificity",
            "SpecificityAtSensitivity", "TruePositives", "FalsePositives", "TrueNegatives",
            "FalseNegatives", "CosineSimilarity", "LogCoshError", "Poisson")
__getattr__ = module_getattr(__name__, _MISSING, "pynn has no such metric yet")
