"""Activation names and the codes the compiled kernels know them by.

The maths lives in csrc/pynn/kernels/activation_kernels.pxd; pynn/reference.py has the
same functions in NumPy.  Each takes Keras 3's defaults (``keras.activations``):
leaky_relu's negative_slope 0.2, elu's alpha 1, selu's constants of Klambauer
et al. (2017), gelu's exact erf form (approximate=False), swish (also named
silu) as z * sigmoid(z), softplus as log(1 + exp(z)).

Derivatives are taken from the activation's output, except for gelu and
swish (not monotonic): the compiled network keeps their pre-activation.

A custom activation is an object with ``__call__(z)`` and ``derivative(z)``
(see :class:`Activation`): pynn has no automatic differentiation, so the
derivative comes with it.  A model with one trains through NumPy, one batch
at a time (``pynn.custom``), slower than the compiled network.
"""
from ._codes import Activation as _Activation

# the kernels' codes (csrc/pynn/kernels/codes.pxd)
(LINEAR, RELU, TANH, SIGMOID, SOFTMAX, LEAKY_RELU, ELU, SELU, GELU, SWISH,
 SOFTPLUS) = (int(a) for a in (
     _Activation.LINEAR, _Activation.RELU, _Activation.TANH, _Activation.SIGMOID,
     _Activation.SOFTMAX, _Activation.LEAKY_RELU, _Activation.ELU, _Activation.SELU,
     _Activation.GELU, _Activation.SWISH, _Activation.SOFTPLUS))

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


class Activation:
    """Base class of custom activations: element-wise functions a = f(z).

    Subclass it (or give any object these two methods)::

        class Swish(pynn.activations.Activation):
            def __call__(self, z):
                return z / (1 + np.exp(-z))
            def derivative(self, z):
                s = 1 / (1 + np.exp(-z))
                return s * (1 + z * (1 - s))

    Both take the pre-activation ``z`` (n, units), an array of the model's
    dtype (read-only), and return an array of its shape: ``f(z)`` and the
    element-wise derivative ``df/dz``.  ``name`` (the class name by
    default) is what summaries and errors show.
    """

    name = None

    def __call__(self, z):
        raise NotImplementedError(f"{type(self).__name__} must define __call__(z)")

    def derivative(self, z):
        raise NotImplementedError(f"{type(self).__name__} must define derivative(z)")

    def __repr__(self):
        return f"{type(self).__name__}()"


def is_custom(activation):
    """True for a custom activation object (what ``get`` returns for one),
    False for a name."""
    return not isinstance(activation, str)


def name_of(activation):
    """The name of an activation: itself when it is a name, else the custom
    object's ``name``, ``__name__`` or class name."""
    if not is_custom(activation):
        return activation
    return (getattr(activation, "name", None) or getattr(activation, "__name__", None)
            or type(activation).__name__)


def _check_custom(activation):
    derivative = getattr(activation, "derivative", None)
    # a subclass of Activation that left the base class's placeholders in
    # place has no derivative (or no function) either: refused here, at
    # Dense(...), rather than in the first backward pass
    inherited = isinstance(activation, Activation) and (
        type(activation).derivative is Activation.derivative
        or type(activation).__call__ is Activation.__call__)
    if callable(derivative) and not isinstance(activation, type) and not inherited:
        return activation
    what = getattr(activation, "__name__", None) or type(activation).__name__
    raise TypeError(
        f"activation {what!r} has no derivative: pynn has no automatic "
        f"differentiation, so a custom activation must bring its own.  Give an "
        f"object with __call__(z) -> f(z) and derivative(z) -> df/dz (element-wise, "
        f"both of z's shape), e.g. an instance of a pynn.activations.Activation "
        f"subclass, or set {what}.derivative to a function of z; or use one of "
        f"the compiled activations {names()}")


def names():
    """The valid activation names (aliases such as "silu" left out)."""
    return sorted(_CODES)


def get(identifier):
    """Return the canonical name of an activation.

    Parameters
    ----------
    identifier : str, None or custom activation
        One of ``names()``; ``None`` and ``"identity"`` mean ``"linear"``,
        ``"silu"`` means ``"swish"``.  A callable with a ``derivative``
        method is a custom activation (see :class:`Activation`), returned as
        it is; a callable without one is refused with a TypeError that says
        what to add.

    Returns
    -------
    str, or the custom activation object
    """
    if callable(identifier):
        return _check_custom(identifier)
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
    """The kernel code of an activation name; LINEAR for a custom activation,
    whose layer's compiled part is the affine map alone (``pynn.custom``
    applies the activation)."""
    name = get(name)
    return LINEAR if is_custom(name) else _CODES[name]


def needs_preactivation(identifier):
    """True when the activation (a name, or a kernel code) takes its
    derivative from its input Z (gelu, swish), so that a training pass must
    keep Z beside the output."""
    if isinstance(identifier, int) and not isinstance(identifier, bool):
        return identifier in (GELU, SWISH)
    name = get(identifier)
    return not is_custom(name) and name in _FROM_PREACTIVATION
