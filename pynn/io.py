"""Saving and loading models: one .npz file, no pickle.

The file (written by ``np.savez``) holds:

``config``
    uint8 array: UTF-8 JSON with the format name and version, the pynn
    version, dtype, seed, the layers (units, activation, name), the loss
    and the optimizer settings ({"class_name", "config"} each).
``params``
    the flat parameter buffer (all kernels, then all biases).
``optimizer_state``, ``optimizer_iterations``
    the optimizer's buffer (velocities or moments) and step count; absent
    when saved with ``include_optimizer=False``.
``generator_state``
    uint8 JSON of the model's shuffling generator state, when it has one,
    so that a further ``fit`` shuffles as the original would have.

Loading reads with ``allow_pickle=False`` and rebuilds only pynn classes
looked up by name: a file can neither unpickle nor run code.  Anything
unexpected (truncated, corrupted, foreign, from a newer format) raises a
ValueError before a model is returned: never a half-loaded model.
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile
import zlib
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from . import losses, optimizers
from ._validation import as_dtype

if TYPE_CHECKING:  # model.py imports this module
    from .model import Sequential

FORMAT_NAME = "pynn.Sequential"
FORMAT_VERSION = 1


def _json_bytes(obj):
    return np.frombuffer(json.dumps(obj, sort_keys=True).encode("utf-8"), dtype=np.uint8)


def _generator_state(generator):
    # pynn's PCG64: {"state": int, "inc": int}, JSON-ready (JSON integers
    # have no size limit, and Python's json reads them back exactly).
    return generator.get_state()


def to_arrays(model: Sequential, include_optimizer: bool = True) -> dict[str, np.ndarray]:
    """The model as the named arrays ``save`` writes (see the module doc).

    For keeping a model in memory or in another container (scikit-learn's
    pickles, say) without pickling compiled objects; ``from_arrays`` reads
    them back.  ``params`` and the optimizer state are the model's live
    buffers, not copies.

    Parameters
    ----------
    model : Sequential
        Built (it has weights).
    include_optimizer : bool

    Returns
    -------
    dict of str to numpy.ndarray
    """
    if not model.built:
        raise ValueError("cannot save a model that is not built (it has no weights yet)")
    if not isinstance(include_optimizer, (bool, np.bool_)):
        raise TypeError(f"include_optimizer must be True or False, got {include_optimizer!r}")
    from . import __version__
    config = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "pynn_version": __version__,
        "dtype": np.dtype(model.dtype).name,
        "seed": model.seed,
        "input_dim": int(model.input_dim),
        "layers": [{"units": layer.units, "activation": layer.activation,
                    "name": layer.name} for layer in model.layers],
        "loss": losses.serialize(model.loss) if model.loss is not None else None,
        "optimizer": (optimizers.serialize(model.optimizer)
                      if model.optimizer is not None else None),
    }
    arrays = {"config": _json_bytes(config), "params": model.params}
    if include_optimizer and model.optimizer is not None:
        arrays["optimizer_state"] = model.optimizer.state
        arrays["optimizer_iterations"] = np.array(model.optimizer.iterations, dtype=np.int64)
    gen_state = _generator_state(model._generator)
    if gen_state is not None:
        arrays["generator_state"] = _json_bytes(gen_state)
    return arrays


def from_arrays(arrays: Mapping[str, np.ndarray]) -> Sequential:
    """The model described by ``to_arrays``'s output (its arrays are copied).

    Raises
    ------
    ValueError
        When the arrays do not describe a pynn model of a supported format.
    """
    try:
        return _build(_parse_config(arrays), arrays)
    except _Invalid as exc:
        raise ValueError(f"cannot rebuild a pynn model from these arrays: {exc}") from None


def save(model: Sequential, path: str | os.PathLike[str],
         include_optimizer: bool = True) -> str:
    """Write ``model`` to ``path`` (exactly that name: no extension added).

    Parameters
    ----------
    model : Sequential
        Built (it has weights).
    path : str or path-like
    include_optimizer : bool
        Also save the optimizer's state (momentum velocities, Adam moments,
        step count), so that training resumes exactly.  Its settings are
        saved either way; without the state, a loaded model restarts the
        optimizer from zero.

    The file is written to a temporary name and renamed, so an interrupted
    save never leaves a truncated file under ``path``.
    """
    arrays = to_arrays(model, include_optimizer)
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".pynn-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            # a file object, so np.savez does not append ".npz" to the name
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path


class _Invalid(ValueError):
    pass


def _require(condition, message):
    if not condition:
        raise _Invalid(message)


def _read(path):
    """The arrays of a pynn file, fully read into memory (or _Invalid)."""
    try:
        npz = np.load(path, allow_pickle=False)
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise _Invalid("it holds a single array, not a pynn model (.npz)")
        with npz:
            return {key: npz[key] for key in npz.files}
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, KeyError, ValueError) as exc:
        if isinstance(exc, _Invalid):
            raise
        if isinstance(exc, ValueError) and "pickle" in str(exc):
            # np.load's own advice (allow_pickle=True) is not one to pass on
            raise _Invalid("it is not an .npz archive (pynn never unpickles)") from None
        raise _Invalid(f"it is not a readable .npz archive ({type(exc).__name__}: {exc})") \
            from None


def _parse_config(arrays):
    _require("config" in arrays, "it has no 'config' entry")
    raw = arrays["config"]
    _require(raw.dtype == np.uint8 and raw.ndim == 1, "its 'config' entry is not JSON bytes")
    try:
        config = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _Invalid(f"its config is not valid JSON ({exc})") from None
    _require(isinstance(config, dict) and config.get("format") == FORMAT_NAME,
             "it is not a pynn model file")
    version = config.get("format_version")
    from . import __version__
    _require(version == FORMAT_VERSION,
             f"its format version {version!r} is not supported (this pynn "
             f"{__version__} reads version {FORMAT_VERSION})")
    return config


def _build(config, arrays):
    # Imported here: model.py imports this module for Sequential.save.
    from .layers import Dense
    from .model import Sequential

    layers = config.get("layers")
    _require(isinstance(layers, list) and layers, "its config lists no layers")
    try:
        dtype = as_dtype(config.get("dtype"))
        dense = []
        for i, spec in enumerate(layers):
            _require(isinstance(spec, dict), f"layer {i} of its config is not a dict")
            dense.append(Dense(spec.get("units"), activation=spec.get("activation"),
                               input_dim=config.get("input_dim") if i == 0 else None,
                               name=spec.get("name")))
        seed = config.get("seed")
        _require(seed is None or (isinstance(seed, int) and not isinstance(seed, bool)),
                 f"its seed {seed!r} is not an integer")
        model = Sequential(dense, dtype=dtype, seed=seed)
        if config.get("loss") is not None:
            model.compile(loss=losses.get(config["loss"]),
                          optimizer=optimizers.get(config["optimizer"]))
    except _Invalid:
        raise
    except (TypeError, ValueError) as exc:
        raise _Invalid(f"its config describes no valid model ({exc})") from None

    _require(model.built, "its config gives no input size (input_dim)")
    params = arrays.get("params")
    _require(params is not None, "it has no 'params' entry")
    _require(params.dtype == model.params.dtype and params.shape == model.params.shape,
             f"its params ({params.dtype}, shape {params.shape}) do not fit the "
             f"architecture ({model.params.dtype}, shape {model.params.shape})")
    _require(bool(np.isfinite(params).all()), "its params contain NaN or infinite values")
    model.params[...] = params

    opt = model.optimizer
    if "optimizer_state" in arrays:
        _require(opt is not None, "it has an optimizer state but no optimizer")
        state, iterations = arrays["optimizer_state"], arrays.get("optimizer_iterations")
        _require(state.dtype == opt.state.dtype and state.shape == opt.state.shape,
                 f"its optimizer state ({state.dtype}, shape {state.shape}) does not fit "
                 f"the optimizer ({opt.state.dtype}, shape {opt.state.shape})")
        _require(iterations is not None and iterations.shape == () and
                 iterations.dtype.kind == "i" and iterations >= 0,
                 "its optimizer_iterations entry is missing or not a count")
        _require(bool(np.isfinite(state).all()), "its optimizer state is not finite")
        opt.state[...] = state
        opt.iterations = int(iterations)

    if "generator_state" in arrays:
        try:
            state = json.loads(arrays["generator_state"].tobytes().decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise _Invalid("its generator state is not JSON") from None
        try:
            model.generator.set_state(state)
        except (TypeError, ValueError) as exc:
            raise _Invalid(f"its generator state is invalid ({exc})") from None
    model._trained = True                # adding a layer would redraw the loaded weights
    return model


def load(path: str | os.PathLike[str]) -> Sequential:
    """Read a model written by ``Sequential.save``.

    Returns
    -------
    Sequential
        With its weights, and compiled with its loss and optimizer (and the
        optimizer's state, if it was saved) when the saved model was.

    Raises
    ------
    ValueError
        When the file is truncated, corrupted, not a pynn model, or of an
        unsupported format version.
    FileNotFoundError
        When there is no such file.
    """
    try:
        arrays = _read(path)
        return _build(_parse_config(arrays), arrays)
    except _Invalid as exc:
        raise ValueError(f"cannot load a pynn model from {os.fspath(path)!r}: {exc}") from None
