"""Activation names and the codes the compiled kernels know them by.

The maths lives in csrc/activation_kernels.pxd; pynn/reference.py has the
same functions in NumPy.  Each takes Keras 3's defaults (``keras.activations``):
leaky_relu's negative_slope 0.2, elu's alpha 1, selu's constants of Klambauer
et al. (2017), gelu's exact erf form (approximate=False), swish (also named
silu) as z * sigmoid(z), softplus as log(1 + exp(z)).

Derivatives are taken from the activation's output, except for gelu and
swish (not monotonic): the compiled network keeps their pre-activation.
"""
from ._codes import Activation

# the kernels' codes (csrc/codes.pxd)
(LINEAR, RELU, TANH, SIGMOID, SOFTMAX, LEAKY_RELU, ELU, SELU, GELU, SWISH,
 SOFTPLUS) = (int(a) for a in (
     Activation.LINEAR, Activation.RELU, Activation.TANH, Activation.SIGMOID,
     Activation.SOFTMAX, Activation.LEAKY_RELU, Activation.ELU, Activation.SELU,
     Activation.GELU, Activation.SWISH, Activation.SOFTPLUS))

_CODES = {
    "linear": LINEAR,
    "relu": RELU,
    "tanh": TANH,
    "sigmoid": SIGMOID,
    "softmax": SOFTMAX,
    "leaky_relu": LEAKY_RELU,
    "elu": ELU,
    "selu": SELU,
    "gelu": GELU,
    "swish": SWISH,
    "softplus": SOFTPLUS,
}
_ALIASES = {None: "linear", "identity": "linear", "silu": "swish"}
# the activations whose derivative needs the pre-activation Z stored
_FROM_PREACTIVATION = frozenset({"gelu", "swish"})


def names():
    """The valid activation names (aliases such as "silu" left out)."""
    return sorted(_CODES)


def get(identifier):
    """Return the canonical name of an activation.

    Parameters
    ----------
    identifier : str or None
        One of ``names()``; ``None`` and ``"identity"`` mean ``"linear"``,
        ``"silu"`` means ``"swish"``.

    Returns
    -------
    str
    """
    if isinstance(identifier, str):
        identifier = identifier.lower()
    name = _ALIASES.get(identifier, identifier)
    if not isinstance(name, str):
        raise TypeError(
            f"activation must be a string or None, got {identifier!r} "
            f"(type {type(identifier).__name__})")
    if name not in _CODES:
        raise ValueError(f"unknown activation {identifier!r}; valid names: {names()}")
    return name


def code(name):
    """The kernel code of an activation name."""
    return _CODES[get(name)]


def needs_preactivation(identifier):
    """True when the activation (a name, or a kernel code) takes its
    derivative from its input Z (gelu, swish), so that a training pass must
    keep Z beside the output."""
    if isinstance(identifier, int) and not isinstance(identifier, bool):
        return identifier in (GELU, SWISH)
    return get(identifier) in _FROM_PREACTIVATION
