"""``keras.optimizers``: pynn's SGD, Adam, RMSprop, AdamW, Nadam and Adagrad
under Keras's signatures.

Keras's ``weight_decay`` is decoupled decay (AdamW's, on every variable);
pynn's optimizers take ``weight_decay`` as an L2 penalty on the kernels'
gradients.  The two differ, so here any ``weight_decay`` (but AdamW's) raises
NotImplementedError instead of changing what a ported script does; use
``pynn.SGD`` / ``pynn.Adam`` for the L2 form.  Clipping, EMA, AMSGrad and
loss scaling raise too.
"""
from types import SimpleNamespace

from .. import optimizers as _optimizers
from .. import schedules as _schedules
from ._missing import Missing, module_getattr, refuse

_OFF = {"weight_decay": None, "clipnorm": None, "clipvalue": None, "global_clipnorm": None,
        "use_ema": False, "loss_scale_factor": None, "gradient_accumulation_steps": None}
_WHY = {"weight_decay": "Keras's weight_decay is decoupled decay, pynn's is an L2 penalty "
                        "on the gradient (pynn.SGD/pynn.Adam weight_decay=...); decoupled "
                        "decay is not in the compiled update yet",
        "use_ema": "weight averaging is not in the compiled update",
        "loss_scale_factor": "pynn trains in float32 or float64, without loss scaling",
        "gradient_accumulation_steps": "the compiled step updates after every batch"}


_CLIPPING = ("clipnorm", "clipvalue", "global_clipnorm")


def _check(name, settings):
    """Refuse what pynn cannot honour; return the clipping settings, which
    every pynn optimizer takes as Keras's."""
    clip = {key: settings.pop(key) for key in _CLIPPING if key in settings}
    for key, value in settings.items():
        if key not in _OFF:
            raise TypeError(f"{name}() got an unexpected argument {key!r}")
        off = value is None or value is False or (key == "weight_decay" and value == 0)
        if not off:
            refuse(f"{name}({key}={value!r})", _WHY[key])
    return clip


class SGD(_optimizers.SGD):
    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, name="SGD",
                 **kwargs):
        kwargs.pop("ema_momentum", None), kwargs.pop("ema_overwrite_frequency", None)
        clip = _check("SGD", kwargs)
        super().__init__(learning_rate=learning_rate, momentum=momentum, nesterov=nesterov,
                         **clip)


class Adam(_optimizers.Adam):
    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, name="adam", **kwargs):
        if amsgrad:
            refuse("Adam(amsgrad=True)", "AMSGrad is not in the compiled update")
        kwargs.pop("ema_momentum", None), kwargs.pop("ema_overwrite_frequency", None)
        clip = _check("Adam", kwargs)
        super().__init__(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2,
                         epsilon=epsilon, **clip)


def _keras_kwargs(name, kwargs):
    kwargs.pop("ema_momentum", None), kwargs.pop("ema_overwrite_frequency", None)
    return _check(name, kwargs)


class RMSprop(_optimizers.RMSprop):
    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7,
                 centered=False, name="rmsprop", **kwargs):
        clip = _keras_kwargs("RMSprop", kwargs)
        super().__init__(learning_rate=learning_rate, rho=rho, momentum=momentum,
                         epsilon=epsilon, centered=centered, **clip)


class AdamW(_optimizers.AdamW):
    # decoupled decay on every variable, biases included, as Keras without
    # exclude_from_weight_decay
    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-7, amsgrad=False, name="adamw", **kwargs):
        if amsgrad:
            refuse("AdamW(amsgrad=True)", "AMSGrad is not in the compiled update")
        clip = _keras_kwargs("AdamW", kwargs)
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay,
                         beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, **clip)


class Nadam(_optimizers.Nadam):
    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 name="nadam", **kwargs):
        clip = _keras_kwargs("Nadam", kwargs)
        super().__init__(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2,
                         epsilon=epsilon, **clip)


class Adagrad(_optimizers.Adagrad):
    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7,
                 name="adagrad", **kwargs):
        clip = _keras_kwargs("Adagrad", kwargs)
        super().__init__(learning_rate=learning_rate,
                         initial_accumulator_value=initial_accumulator_value,
                         epsilon=epsilon, **clip)


Optimizer = _optimizers.Optimizer

_MISSING = ("Adadelta", "Adamax", "Adafactor", "Ftrl",
            "Lion", "Lamb", "LossScaleOptimizer", "Muon")
_BY_NAME = {"sgd": SGD, "adam": Adam, "rmsprop": RMSprop, "adamw": AdamW, "nadam": Nadam,
            "adagrad": Adagrad}


def get(identifier):
    """An optimizer from a Keras name ("sgd", "adam", "rmsprop", ...) or an instance."""
    if isinstance(identifier, str):
        key = identifier.lower()
        if key in _BY_NAME:
            return _BY_NAME[key]()
        if key in {m.lower() for m in _MISSING}:
            refuse(f"optimizer {identifier!r}", "the compiled update has SGD, Adam, RMSprop, "
                   "AdamW, Nadam and Adagrad")
    return _optimizers.get(identifier)


class ExponentialDecay(_schedules.ExponentialDecay):
    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False,
                 name="ExponentialDecay"):
        super().__init__(initial_learning_rate, decay_steps, decay_rate, staircase)


class CosineDecay(_schedules.CosineDecay):
    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, name="CosineDecay",
                 warmup_target=None, warmup_steps=0):
        super().__init__(initial_learning_rate, decay_steps, alpha, warmup_target,
                         warmup_steps)


schedules = SimpleNamespace(
    LearningRateSchedule=_schedules.LearningRateSchedule,
    ExponentialDecay=ExponentialDecay, CosineDecay=CosineDecay,
    CosineDecayRestarts=Missing("keras.optimizers.schedules.CosineDecayRestarts",
                                "pynn has no such schedule"),
    InverseTimeDecay=Missing("keras.optimizers.schedules.InverseTimeDecay",
                             "pynn has no such schedule (pynn.InverseScaling is "
                             "scikit-learn's invscaling)"),
    PiecewiseConstantDecay=Missing("keras.optimizers.schedules.PiecewiseConstantDecay",
                                   "pynn has no such schedule"),
    PolynomialDecay=Missing("keras.optimizers.schedules.PolynomialDecay",
                            "pynn has no such schedule"))

__getattr__ = module_getattr(__name__, _MISSING)
