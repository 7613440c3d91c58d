"""``keras.initializers``: pynn's initializers under Keras's names.

Keras's ``seed=`` is refused: pynn draws every weight from its model's own
generator (seeded by ``keras.utils.set_random_seed`` or the model's seed).
"""
from .. import initializers as _init
from ._missing import module_getattr, refuse

__all__ = ["Constant", "GlorotNormal", "GlorotUniform", "HeNormal", "HeUniform",
           "Initializer", "LecunNormal", "LecunUniform", "Ones", "RandomNormal",
           "RandomUniform", "TruncatedNormal", "VarianceScaling", "Zeros", "get"]

Initializer = _init.Initializer
Zeros, Ones, Constant = _init.Zeros, _init.Ones, _init.Constant


def _seedless(base):
    class Seedless(base):
        __doc__ = base.__doc__

        def __init__(self, *args, seed=None, **kwargs):
            if seed is not None:
                refuse(f"{base.__name__}(seed={seed!r})",
                       "every weight is drawn from the model's own generator; seed it "
                       "with keras.utils.set_random_seed")
            super().__init__(*args, **kwargs)
    Seedless.__name__ = Seedless.__qualname__ = base.__name__   # saved by pynn's name
    return Seedless


RandomNormal = _seedless(_init.RandomNormal)
RandomUniform = _seedless(_init.RandomUniform)
TruncatedNormal = _seedless(_init.TruncatedNormal)
VarianceScaling = _seedless(_init.VarianceScaling)
GlorotNormal = _seedless(_init.GlorotNormal)
GlorotUniform = _seedless(_init.GlorotUniform)
HeNormal = _seedless(_init.HeNormal)
HeUniform = _seedless(_init.HeUniform)
LecunNormal = _seedless(_init.LecunNormal)
LecunUniform = _seedless(_init.LecunUniform)

get = _init.get

__getattr__ = module_getattr(__name__, ("Orthogonal", "Identity", "IdentityInitializer",
                                        "OrthogonalInitializer", "STFT", "STFTInitializer"))
