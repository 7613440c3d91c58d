"""Weight initializers with the names and meanings of Keras' initializers.

An initializer is called as ``init(out, generator)`` and fills ``out`` in
place: ``out`` is a C-contiguous float32 or float64 array, usually a view
into the model's flat parameter buffer, of shape ``(units, inputs)`` for a
kernel ``W`` or ``(units,)`` for a bias; ``generator`` is a
:class:`pynn._random.Generator`.  Nothing here calls ``numpy.random``.

Look an initializer up with :func:`get` (a name such as ``"glorot_uniform"``,
an :class:`Initializer`, or a config dict ``{"class_name": ..., "config":
{...}}``) and turn one back into a JSON-able dict with :func:`serialize`.

Fans follow the ``(units, inputs)`` layout of ``W``: ``fan_in = inputs`` and
``fan_out = units``.  A 1-D shape ``(n,)`` has ``fan_in = fan_out = n``, a
0-D shape has both 1, and a shape ``(units, inputs, *k)`` with more
dimensions has ``fan_in = inputs * prod(k)`` and ``fan_out = units *
prod(k)``.
"""
import math

import numpy as np

from ._random import Generator
from ._validation import check_real

__all__ = [
    "Initializer", "Zeros", "Ones", "Constant", "RandomNormal", "RandomUniform",
    "TruncatedNormal", "VarianceScaling", "GlorotNormal", "GlorotUniform",
    "HeNormal", "HeUniform", "LecunNormal", "LecunUniform",
    "get", "serialize", "deserialize", "make_generator", "compute_fans",
]

# Standard deviation of a standard normal truncated to [-2, 2]; dividing by
# it makes a truncated normal have the intended standard deviation.
TRUNCATED_STD = 0.87962566103423978


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------

def make_generator(seed=None):
    """Return a new :class:`pynn._random.Generator`.

    Parameters
    ----------
    seed : int or None, optional
        Seed in ``[0, 2**64)``, or None for fresh entropy from the OS.

    Returns
    -------
    pynn._random.Generator
    """
    return Generator(seed)


def compute_fans(shape):
    """Return ``(fan_in, fan_out)`` for an array of shape ``(units, inputs, ...)``.

    Parameters
    ----------
    shape : tuple of int
        The shape of the array to initialize.

    Returns
    -------
    tuple of int
        ``(fan_in, fan_out)``; see the module docstring for the rules.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _check_out(out):
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
    if out.dtype not in (np.float32, np.float64):
        raise TypeError(f"out must have dtype float32 or float64, got {out.dtype}")
    if not out.flags.c_contiguous:
        raise ValueError("out must be C-contiguous (got a non-contiguous array)")
    if not out.flags.writeable:
        raise ValueError("out must be writeable (got a read-only array)")


def _check_generator(generator):
    if not isinstance(generator, Generator):
        raise TypeError(
            "generator must be a pynn._random.Generator (see make_generator), "
            f"got {type(generator).__name__}")


# --------------------------------------------------------------------------
# Base class and constants
# --------------------------------------------------------------------------

class Initializer:
    """Base class: fills an array in place.

    Subclasses implement ``_fill(out, generator)`` and ``get_config()``;
    calling an initializer checks ``out`` (and, for random initializers,
    ``generator``) first.
    """

    #: Whether ``__call__`` needs a generator.
    random = True

    def __call__(self, out, generator=None):
        """Fill ``out`` in place.

        Parameters
        ----------
        out : numpy.ndarray
            C-contiguous, writeable, float32 or float64.
        generator : pynn._random.Generator, optional
            The source of randomness; may be None for the constant
            initializers.

        Returns
        -------
        numpy.ndarray
            ``out``.
        """
        _check_out(out)
        if self.random:
            _check_generator(generator)
        if out.size:
            self._fill(out, generator)
        return out

    def _fill(self, out, generator):
        raise NotImplementedError

    def get_config(self):
        """Return the constructor arguments as a JSON-able dict.

        Returns
        -------
        dict
        """
        return {}

    @classmethod
    def from_config(cls, config):
        """Build an initializer from ``get_config()`` output.

        Parameters
        ----------
        config : dict
            Constructor arguments.

        Returns
        -------
        Initializer

        Raises
        ------
        ValueError
            If ``config`` has keys the class does not take.
        """
        if not isinstance(config, dict):
            raise TypeError(f"config must be a dict, got {type(config).__name__}")
        unknown = set(config) - set(cls().get_config())
        if unknown:
            raise ValueError(
                f"unknown config keys for {cls.__name__}: {sorted(unknown)}; "
                f"valid keys: {sorted(cls().get_config())}")
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other):
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self):
        return hash((type(self), tuple(sorted(self.get_config().items()))))


class Zeros(Initializer):
    """Fill with 0."""

    random = False

    def _fill(self, out, generator):
        out.fill(0)


class Ones(Initializer):
    """Fill with 1."""

    random = False

    def _fill(self, out, generator):
        out.fill(1)


class Constant(Initializer):
    """Fill with a constant.

    Parameters
    ----------
    value : float, optional
        The finite value to fill with (default 0).
    """

    random = False

    def __init__(self, value=0.0):
        self.value = check_real(value, "value")

    def _fill(self, out, generator):
        out.fill(self.value)

    def get_config(self):
        return {"value": self.value}


# --------------------------------------------------------------------------
# Random initializers with explicit parameters
# --------------------------------------------------------------------------

class RandomNormal(Initializer):
    """Normal distribution.

    Parameters
    ----------
    mean : float, optional
        Mean (default 0).
    stddev : float, optional
        Standard deviation, >= 0 (default 0.05).
    """

    def __init__(self, mean=0.0, stddev=0.05):
        self.mean = check_real(mean, "mean")
        self.stddev = check_real(stddev, "stddev")
        if self.stddev < 0:
            raise ValueError(f"stddev must be >= 0, got {stddev!r}")

    def _fill(self, out, generator):
        generator.normal(out, self.mean, self.stddev)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev}


class TruncatedNormal(RandomNormal):
    """Normal distribution truncated to ``mean +- 2 stddev``.

    Values more than two standard deviations from the mean are redrawn, as
    in Keras; ``stddev`` is that of the normal before truncation, so the
    values have standard deviation about ``0.88 * stddev``.

    Parameters
    ----------
    mean : float, optional
        Mean (default 0).
    stddev : float, optional
        Standard deviation before truncation, >= 0 (default 0.05).
    """

    def _fill(self, out, generator):
        generator.truncated_normal(out, self.mean, self.stddev)


class RandomUniform(Initializer):
    """Uniform distribution on ``[minval, maxval)``.

    Parameters
    ----------
    minval : float, optional
        Lower bound (default -0.05).
    maxval : float, optional
        Upper bound, > ``minval`` (default 0.05).
    """

    def __init__(self, minval=-0.05, maxval=0.05):
        self.minval = check_real(minval, "minval")
        self.maxval = check_real(maxval, "maxval")
        if not self.minval < self.maxval:
            raise ValueError(
                f"minval must be < maxval, got minval={minval!r}, maxval={maxval!r}")

    def _fill(self, out, generator):
        generator.uniform(out, self.minval, self.maxval)

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval}


# --------------------------------------------------------------------------
# Variance scaling (Glorot, He, LeCun)
# --------------------------------------------------------------------------

_MODES = ("fan_in", "fan_out", "fan_avg")
_DISTRIBUTIONS = ("truncated_normal", "uniform")


class VarianceScaling(Initializer):
    """Values with variance ``scale / n``, ``n`` a fan of the array's shape.

    Parameters
    ----------
    scale : float, optional
        Positive scaling factor (default 1).
    mode : {"fan_in", "fan_out", "fan_avg"}, optional
        Which fan is ``n``: the inputs, the units, or their mean (default
        "fan_in").  See the module docstring for fans.
    distribution : {"truncated_normal", "uniform"}, optional
        "truncated_normal" (default): a normal truncated to +-2 standard
        deviations, with standard deviation before truncation
        ``sqrt(scale / n) / 0.87962566103423978`` so that the values have
        standard deviation ``sqrt(scale / n)``.  "uniform": uniform on
        ``[-limit, limit)`` with ``limit = sqrt(3 * scale / n)``.

    Notes
    -----
    ``n`` is at least 1, as in Keras.  The named variants are
    :class:`GlorotNormal`, :class:`GlorotUniform` (scale 1, fan_avg),
    :class:`HeNormal`, :class:`HeUniform` (scale 2, fan_in) and
    :class:`LecunNormal`, :class:`LecunUniform` (scale 1, fan_in).
    """

    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal"):
        self.scale = check_real(scale, "scale")
        if self.scale <= 0:
            raise ValueError(f"scale must be > 0, got {scale!r}")
        if not isinstance(mode, str) or mode not in _MODES:
            raise ValueError(f"mode must be one of {list(_MODES)}, got {mode!r}")
        if not isinstance(distribution, str) or distribution not in _DISTRIBUTIONS:
            raise ValueError(
                f"distribution must be one of {list(_DISTRIBUTIONS)}, got {distribution!r}")
        self.mode = mode
        self.distribution = distribution

    def _variance(self, shape):
        fan_in, fan_out = compute_fans(shape)
        n = {"fan_in": fan_in, "fan_out": fan_out,
             "fan_avg": (fan_in + fan_out) / 2.0}[self.mode]
        return self.scale / max(1.0, n)

    def _fill(self, out, generator):
        variance = self._variance(out.shape)
        if self.distribution == "truncated_normal":
            generator.truncated_normal(out, 0.0, math.sqrt(variance) / TRUNCATED_STD)
        else:
            limit = math.sqrt(3.0 * variance)
            generator.uniform(out, -limit, limit)

    def get_config(self):
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution}


class _NamedVarianceScaling(VarianceScaling):
    # A VarianceScaling with fixed settings and an empty config.
    _settings = None

    def __init__(self):
        super().__init__(*self._settings)

    def get_config(self):
        return {}


class GlorotNormal(_NamedVarianceScaling):
    """Glorot (Xavier) normal: truncated normal, std ``sqrt(2 / (fan_in + fan_out))``."""

    _settings = (1.0, "fan_avg", "truncated_normal")


class GlorotUniform(_NamedVarianceScaling):
    """Glorot (Xavier) uniform: limit ``sqrt(6 / (fan_in + fan_out))``."""

    _settings = (1.0, "fan_avg", "uniform")


class HeNormal(_NamedVarianceScaling):
    """He normal: truncated normal, std ``sqrt(2 / fan_in)``."""

    _settings = (2.0, "fan_in", "truncated_normal")


class HeUniform(_NamedVarianceScaling):
    """He uniform: limit ``sqrt(6 / fan_in)``."""

    _settings = (2.0, "fan_in", "uniform")


class LecunNormal(_NamedVarianceScaling):
    """LeCun normal: truncated normal, std ``sqrt(1 / fan_in)``."""

    _settings = (1.0, "fan_in", "truncated_normal")


class LecunUniform(_NamedVarianceScaling):
    """LeCun uniform: limit ``sqrt(3 / fan_in)``."""

    _settings = (1.0, "fan_in", "uniform")


# --------------------------------------------------------------------------
# Lookup and serialization
# --------------------------------------------------------------------------

_BY_NAME = {
    "zeros": Zeros,
    "ones": Ones,
    "constant": Constant,
    "random_normal": RandomNormal,
    "random_uniform": RandomUniform,
    "truncated_normal": TruncatedNormal,
    "variance_scaling": VarianceScaling,
    "glorot_normal": GlorotNormal,
    "glorot_uniform": GlorotUniform,
    "he_normal": HeNormal,
    "he_uniform": HeUniform,
    "lecun_normal": LecunNormal,
    "lecun_uniform": LecunUniform,
}
_BY_CLASS_NAME = {cls.__name__: cls for cls in _BY_NAME.values()}


def _lookup(name):
    cls = _BY_NAME.get(name) or _BY_CLASS_NAME.get(name)
    if cls is None:
        raise ValueError(
            f"unknown initializer {name!r}; valid names: {sorted(_BY_NAME)} "
            f"(or class names {sorted(_BY_CLASS_NAME)})")
    return cls


def serialize(initializer):
    """Return ``{"class_name": ..., "config": {...}}`` for an initializer.

    Parameters
    ----------
    initializer : Initializer

    Returns
    -------
    dict
        JSON-able; :func:`get` or :func:`deserialize` rebuilds it.
    """
    if not isinstance(initializer, Initializer):
        raise TypeError(f"expected an Initializer, got {type(initializer).__name__}")
    return {"class_name": type(initializer).__name__, "config": initializer.get_config()}


def deserialize(config):
    """Build an initializer from a :func:`serialize` dict.

    Parameters
    ----------
    config : dict
        ``{"class_name": name, "config": {...}}``; ``name`` is a class name
        (``"GlorotUniform"``) or a snake-case name (``"glorot_uniform"``),
        and ``"config"`` may be omitted.

    Returns
    -------
    Initializer
    """
    if not isinstance(config, dict):
        raise TypeError(f"expected a dict, got {type(config).__name__}")
    unknown = set(config) - {"class_name", "config"}
    if "class_name" not in config or unknown:
        raise ValueError(
            "an initializer config must be {'class_name': ..., 'config': {...}}, "
            f"got keys {sorted(config)}")
    name = config["class_name"]
    if not isinstance(name, str):
        raise TypeError(f"class_name must be a string, got {name!r}")
    return _lookup(name).from_config(config.get("config") or {})


def get(identifier):
    """Return an initializer from a name, an instance or a config dict.

    Parameters
    ----------
    identifier : str, Initializer or dict
        A Keras name (``"zeros"``, ``"ones"``, ``"constant"``,
        ``"random_normal"``, ``"random_uniform"``, ``"truncated_normal"``,
        ``"variance_scaling"``, ``"glorot_normal"``, ``"glorot_uniform"``,
        ``"he_normal"``, ``"he_uniform"``, ``"lecun_normal"``,
        ``"lecun_uniform"``) or class name, giving an instance with default
        arguments; an :class:`Initializer`, returned as is; or a
        :func:`serialize` dict.

    Returns
    -------
    Initializer

    Raises
    ------
    ValueError
        For an unknown name (the message lists the valid ones) or a bad
        config.
    TypeError
        For any other type of identifier.
    """
    if isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, str):
        return _lookup(identifier)()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    raise TypeError(
        "an initializer must be a name, an Initializer or a config dict, "
        f"got {identifier!r}")
