"""``keras.losses``: pynn's losses under Keras's names and signatures.

Keras's arguments pynn cannot honour yet (``label_smoothing``, a
``reduction`` other than the mean, ``ignore_class``) raise NotImplementedError.
"""
from .. import losses as _losses
from ._missing import module_getattr, refuse

_MEAN = "sum_over_batch_size"


def _check(name, reduction, **unsupported):
    if reduction != _MEAN:
        refuse(f"{name}(reduction={reduction!r})", "pynn's losses are means over the batch")
    for key, (value, default) in unsupported.items():
        if value != default:
            refuse(f"{name}({key}={value!r})", "the compiled loss kernels have no such option")


class MeanSquaredError(_losses.MeanSquaredError):
    def __init__(self, reduction=_MEAN, name="mean_squared_error", dtype=None):
        _check("MeanSquaredError", reduction)
        super().__init__()


class MeanAbsoluteError(_losses.MeanAbsoluteError):
    def __init__(self, reduction=_MEAN, name="mean_absolute_error", dtype=None):
        _check("MeanAbsoluteError", reduction)
        super().__init__()


class Huber(_losses.Huber):
    def __init__(self, delta=1.0, reduction=_MEAN, name="huber_loss", dtype=None):
        _check("Huber", reduction)
        super().__init__(delta=delta)


class Poisson(_losses.Poisson):
    def __init__(self, reduction=_MEAN, name="poisson", dtype=None):
        _check("Poisson", reduction)
        super().__init__()


class BinaryCrossentropy(_losses.BinaryCrossentropy):
    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1, reduction=_MEAN,
                 name="binary_crossentropy", dtype=None):
        _check("BinaryCrossentropy", reduction, label_smoothing=(label_smoothing, 0.0),
               axis=(axis, -1))
        super().__init__(from_logits=from_logits)


class CategoricalCrossentropy(_losses.CategoricalCrossentropy):
    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1, reduction=_MEAN,
                 name="categorical_crossentropy", dtype=None):
        _check("CategoricalCrossentropy", reduction, label_smoothing=(label_smoothing, 0.0),
               axis=(axis, -1))
        super().__init__(from_logits=from_logits)


class SparseCategoricalCrossentropy(_losses.SparseCategoricalCrossentropy):
    def __init__(self, from_logits=False, ignore_class=None, reduction=_MEAN,
                 name="sparse_categorical_crossentropy", dtype=None):
        _check("SparseCategoricalCrossentropy", reduction, ignore_class=(ignore_class, None))
        super().__init__(from_logits=from_logits)


def get(identifier):
    if isinstance(identifier, str) and identifier.lower() in _MISSING_NAMES:
        refuse(f"loss {identifier!r}", "it is not in pynn's compiled loss kernels yet; "
               f"available: {_losses.names()}")
    # a custom loss follows pynn's protocol (call and gradient): pynn.losses.get
    # refuses a function without a gradient with a TypeError saying what to add
    return _losses.get(identifier)


_MISSING_NAMES = ("log_cosh", "logcosh", "mape", "mean_absolute_percentage_error", "msle",
                  "mean_squared_logarithmic_error", "hinge", "squared_hinge",
                  "categorical_hinge", "kl_divergence", "kld", "cosine_similarity",
                  "binary_focal_crossentropy", "categorical_focal_crossentropy")
_MISSING = ("LogCosh", "MeanAbsolutePercentageError",
            "MeanSquaredLogarithmicError", "Hinge", "SquaredHinge", "CategoricalHinge",
            "KLDivergence", "CosineSimilarity", "BinaryFocalCrossentropy",
            "CategoricalFocalCrossentropy", "Dice", "Tversky", "CTC")
# the base class of custom losses: Keras's call(y_true, y_pred), plus the
# gradient(y_true, y_pred) that pynn needs without automatic differentiation
Loss = _losses.Loss
__getattr__ = module_getattr(__name__, _MISSING)
