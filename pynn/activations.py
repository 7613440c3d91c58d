"""Activation names and the codes the compiled kernels know them by.

The maths lives in csrc/activation_kernels.pxd; pynn/reference.py has the
same functions in NumPy.  Derivatives are taken from the activation's output.
"""
from ._codes import Activation

# the kernels' codes (csrc/codes.pxd)
LINEAR, RELU, TANH, SIGMOID, SOFTMAX = (int(Activation[k]) for k in
                                        ("LINEAR", "RELU", "TANH", "SIGMOID", "SOFTMAX"))

_CODES = {
    "linear": LINEAR,
    "relu": RELU,
    "tanh": TANH,
    "sigmoid": SIGMOID,
    "softmax": SOFTMAX,
}
_ALIASES = {None: "linear", "identity": "linear"}


def names():
    """The valid activation names."""
    return sorted(_CODES)


def get(identifier):
    """Return the canonical name of an activation.

    Parameters
    ----------
    identifier : str or None
        One of ``names()``; ``None`` and ``"identity"`` mean ``"linear"``.

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
