"""Weight initializers (temporary minimal set; see issue 3 for the full family).

An initializer is called as ``init(out, generator)`` and fills ``out`` (a view
into the model's flat parameter buffer) in place.
"""
import math

import numpy as np


class Initializer:
    def __call__(self, out, generator):
        raise NotImplementedError

    def get_config(self):
        return {}


class Zeros(Initializer):
    def __call__(self, out, generator):
        out[...] = 0


class GlorotUniform(Initializer):
    def __call__(self, out, generator):
        fan_out, fan_in = out.shape
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        out[...] = generator.uniform(-limit, limit, size=out.shape)


class HeUniform(Initializer):
    def __call__(self, out, generator):
        fan_in = out.shape[1]
        limit = math.sqrt(6.0 / fan_in)
        out[...] = generator.uniform(-limit, limit, size=out.shape)


_NAMES = {"zeros": Zeros, "glorot_uniform": GlorotUniform, "he_uniform": HeUniform}


def get(identifier):
    if isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, str) and identifier in _NAMES:
        return _NAMES[identifier]()
    raise ValueError(f"unknown initializer {identifier!r}; valid names: {sorted(_NAMES)}")


def make_generator(seed):
    return np.random.default_rng(seed)


def serialize(init):
    return {"class_name": type(init).__name__, "config": init.get_config()}
