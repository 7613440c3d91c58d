"""Saving and loading models: one .npz file, no pickle.

The file (written by ``np.savez``) holds:

``config``
    uint8 array: UTF-8 JSON with the format name and version, the pynn
    version, dtype, seed, the layers (units, activation, name; trainable
    and the kernel and bias regularizers when set; the other kinds their
    class_name and settings, trainable when False), the model's trainable
    flag when False, the loss and the optimizer settings (its clipping
    included; {"class_name", "config"} each).
``params``
    the flat parameter buffer (all kernels, then all biases).
``optimizer_state``, ``optimizer_iterations``
    the optimizer's buffer (velocities or moments) and step count; absent
    when saved with ``include_optimizer=False``.
``generator_state``
    uint8 JSON of the model's shuffling generator state, when it has one,
    so that a further ``fit`` shuffles as the original would have (and
    draws the same dropout masks).
``layer_state``
    the non-trainable values (BatchNormalization's moving statistics), when
    the model has any.
``layer_generators``
    uint8 JSON list of the states of the generators that Dropout layers with
    a seed of their own draw from, in layer order, when there are any.

Loading reads with ``allow_pickle=False`` and rebuilds only pynn classes
looked up by name: a file can neither unpickle nor run code.  Anything
unexpected (truncated, corrupted, foreign, from a newer format) raises a
ValueError before a model is returned: never a half-loaded model.
"""
from __future__ import annotations

import json
import os
import stat
import tempfile
import tokenize
import zipfile
import zlib
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from . import _registry
from ._validation import check_bool, check_positive_int
from .layers import layer_from_config, widths
from ._version import __version__

if TYPE_CHECKING:  # the model imports this module; files load through _registry
    from .core import Model as Sequential

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
    include_optimizer = check_bool(include_optimizer, "include_optimizer")
    config = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION,
              "pynn_version": __version__, **model.get_config()}
    arrays = {"config": _json_bytes(config), "params": model.params}
    if include_optimizer and model.optimizer is not None:
        arrays["optimizer_state"] = model.optimizer.state
        arrays["optimizer_iterations"] = np.array(model.optimizer.iterations, dtype=np.int64)
    gen_state = _generator_state(model.generator)
    if gen_state is not None:
        arrays["generator_state"] = _json_bytes(gen_state)
    if model.layer_state.size:
        arrays["layer_state"] = model.layer_state
    own = model.generators[1:]
    if own:
        arrays["layer_generators"] = _json_bytes([_generator_state(g) for g in own])
    return arrays


def from_arrays(arrays: Mapping[str, np.ndarray]) -> Sequential:
    """The model described by ``to_arrays``'s output (its arrays are copied).

    Raises
    ------
    ValueError
        When the arrays do not describe a pynn model of a supported format.
    """
    if not isinstance(arrays, Mapping):
        raise TypeError(f"arrays must be a mapping of names to numpy arrays, got "
                        f"{type(arrays).__name__}")
    try:
        for name, value in arrays.items():
            _require(isinstance(value, np.ndarray),
                     f"its entry {name!r} is a {type(value).__name__}, not a numpy array")
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
    path = os.fspath(_check_path(path))
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


def _check_path(path):
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"path must be a str or path-like, got {path!r:.80}")
    return path


class _Invalid(ValueError):
    pass


def _require(condition, message):
    if not condition:
        raise _Invalid(message)


# What a pynn file may hold; anything else is refused unread.
_ENTRIES = ("config", "params", "optimizer_state", "optimizer_iterations",
            "generator_state", "layer_state", "layer_generators")
# pynn writes entries uncompressed; a compressed one may expand at most this
# much (float weights barely compress: a higher ratio is a zip bomb).
_MAX_EXPANSION = 50
_MAX_SMALL_ENTRY = 1 << 20          # bytes any entry may expand to regardless
_MAX_JSON_BYTES = 1 << 22           # config and generator state: ~100x pynn's
_MAX_JSON_DEPTH = 32                # pynn's config nests 4 deep
_SCAN_CHUNK = 1 << 16               # bytes per pass of the depth scan


def _read_entry(zf, info):
    """One .npy entry of the archive, its header checked before any data is read.

    The header's shape and dtype must account exactly for the entry's
    declared size, which is itself bounded by the bytes in the file: so a
    header claiming 10**12 elements is refused without allocating anything.
    """
    fmt = np.lib.format
    name = info.filename[:-4]
    if info.compress_type == zipfile.ZIP_STORED:
        _require(info.file_size == info.compress_size,
                 f"its stored entry {name!r} declares {info.file_size} bytes but "
                 f"occupies {info.compress_size}")
    limit = max(_MAX_SMALL_ENTRY, _MAX_EXPANSION * info.compress_size)
    _require(info.file_size <= limit,
             f"its entry {name!r} declares {info.file_size} bytes from "
             f"{info.compress_size} compressed ones (a zip bomb?)")
    with zf.open(info) as f:
        version = fmt.read_magic(f)
        reader = {(1, 0): fmt.read_array_header_1_0,
                  (2, 0): fmt.read_array_header_2_0}.get(version)
        _require(reader is not None, f"its entry {name!r} has .npy version {version}")
        try:
            shape, fortran, dtype = reader(f)
        except (ValueError, SyntaxError, TypeError, tokenize.TokenError) as exc:
            # NumPy's header parser tokenizes the header as Python: an
            # unclosed bracket is a TokenError, not a ValueError
            raise _Invalid(f"its entry {name!r} has a malformed .npy header "
                           f"({type(exc).__name__}: {str(exc)[:200]})") from None
        _require(not dtype.hasobject and dtype.kind in "biuf",
                 f"its entry {name!r} has dtype {dtype} (pynn never unpickles)")
        count = 1
        for dim in shape:
            count *= dim
        nbytes = count * dtype.itemsize
        _require(f.tell() + nbytes == info.file_size,
                 f"its entry {name!r} declares shape {shape} of {dtype} "
                 f"({nbytes} bytes) but holds {info.file_size - f.tell()} bytes")
        data = f.read(nbytes)        # the CRC is checked on reaching the end
        _require(len(data) == nbytes, f"its entry {name!r} is truncated")
    return np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")


def _read(path):
    """The arrays of a pynn file, fully read into memory (or _Invalid).

    Read with zipfile and NumPy's header parser rather than np.load, so
    that every size is checked before memory is allocated for it: each
    entry must lie inside the file's real size, as the file system reports
    it, whatever the archive's directory claims.
    """
    path = os.fspath(path)
    # O_NONBLOCK: opening a FIFO must not wait for a writer before it is
    # refused (it changes nothing for a regular file)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(f"{path!r} is a directory")
        _require(stat.S_ISREG(mode), "it is not a regular file (a device, a FIFO "
                                     "or a socket has no size to bound the read by)")
        file = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    try:
        with file, zipfile.ZipFile(file) as zf:
            size = os.fstat(file.fileno()).st_size
            infos = zf.infolist()
            for info in infos:
                _require(0 <= info.header_offset and
                         info.header_offset + info.compress_size <= size,
                         f"its entry {info.filename!r:.80} claims {info.compress_size} "
                         f"bytes at offset {info.header_offset}, past the end of "
                         f"the file ({size} bytes)")
            names = [info.filename for info in infos]
            for entry in names:
                _require(entry.endswith(".npy") and entry[:-4] in _ENTRIES,
                         f"it holds an entry {entry!r} that no pynn file has")
            _require(len(set(names)) == len(names), "it holds an entry twice")
            return {info.filename[:-4]: _read_entry(zf, info) for info in infos}
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except _Invalid:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError,
            RuntimeError, NotImplementedError, SyntaxError, OverflowError,
            tokenize.TokenError) as exc:
        # RuntimeError: an encrypted entry; NotImplementedError: an unknown
        # compression; SyntaxError/ValueError: a malformed .npy header
        raise _Invalid(f"it is not a readable .npz archive ({type(exc).__name__}: "
                       f"{str(exc)[:200]})") from None


def _json(raw, what):
    """Parse JSON bytes from a uint8 entry, bounded in size and depth."""
    _require(raw.dtype == np.uint8 and raw.ndim == 1, f"its {what} entry is not JSON bytes")
    _require(raw.shape[0] <= _MAX_JSON_BYTES, f"its {what} is {raw.shape[0]} bytes of JSON")
    text = raw.tobytes()
    _require(_json_depth(text) <= _MAX_JSON_DEPTH,
             f"its {what} nests more than {_MAX_JSON_DEPTH} levels deep")
    try:
        return json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        # ValueError also covers integers longer than Python's digit limit
        raise _Invalid(f"its {what} is not valid JSON ({str(exc)[:200]})") from None


def _json_depth(text):
    """The deepest nesting of brackets outside strings in JSON ``text``, in
    linear time and bounded memory (or _Invalid when they do not balance).

    Checked before parsing: json recurses per level, and a deep enough nest
    raises RecursionError, or with a raised recursion limit overflows the C
    stack.  Escapes go first (an escaped backslash, then an escaped quote:
    the left-to-right pairing JSON gives them); every quote left then opens
    or closes a string, so the parity of the quotes before a bracket says
    whether it is inside one.  No scan restarts, whatever the quotes.
    """
    data = np.frombuffer(text.replace(b"\\\\", b"").replace(b'\\"', b""), np.uint8)
    quotes = depth = deepest = 0
    for start in range(0, data.shape[0], _SCAN_CHUNK):
        chunk = data[start:start + _SCAN_CHUNK]
        outside = (np.cumsum(chunk == ord('"'), dtype=np.int64) + quotes) % 2 == 0
        opens = (chunk == ord("[")) | (chunk == ord("{"))
        closes = (chunk == ord("]")) | (chunk == ord("}"))
        levels = np.cumsum((opens.astype(np.int64) - closes) * outside) + depth
        _require(levels.min() >= 0, "its JSON closes a bracket it never opened")
        deepest = max(deepest, int(levels.max()))
        quotes += int(np.count_nonzero(chunk == ord('"')))
        depth = int(levels[-1])
    return deepest


def _parse_config(arrays):
    _require("config" in arrays, "it has no 'config' entry")
    config = _json(arrays["config"], "config")
    _require(isinstance(config, dict) and config.get("format") == FORMAT_NAME,
             "it is not a pynn model file")
    version = config.get("format_version")
    _require(version == FORMAT_VERSION,
             f"its format version {version!r} is not supported (this pynn "
             f"{__version__} reads version {FORMAT_VERSION})")
    return config


def _build(config, arrays):
    layers = config.get("layers")
    _require(isinstance(layers, list) and layers, "its config lists no layers")
    try:
        for i, spec in enumerate(layers):
            _require(isinstance(spec, dict), f"layer {i} of its config is not a dict")
        # Compare the architecture's size with the params entry before
        # building: a config claiming huge layers must not allocate them.
        described = [layer_from_config(spec) for spec in layers]
        sizes = widths(described, check_positive_int(config.get("input_dim"), "input_dim"))
        expected = sum(sum(layer.sizes(n_in)[:2])
                       for layer, n_in in zip(described, sizes))
        params = arrays.get("params")
        _require(params is not None, "it has no 'params' entry")
        _require(params.shape == (expected,),
                 f"its params (shape {params.shape}) do not fit the architecture "
                 f"({expected} parameters)")
        seed = config.get("seed")
        _require(seed is None or (isinstance(seed, int) and not isinstance(seed, bool)),
                 f"its seed {seed!r} is not an integer")
        metrics = config.get("metrics", [])    # absent from older files
        _require(isinstance(metrics, list) and all(isinstance(m, str) for m in metrics),
                 f"its metrics {metrics!r:.80} are not a list of names")
        _require(config.get("loss") is None or config.get("optimizer") is not None,
                 "its config names a loss but no optimizer")
        # built once from the whole config, however many layers
        model = _registry.model_class(FORMAT_NAME).from_config(config)
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
    with model.lock:
        _load_state(model, params, arrays)
    return model


def _load_state(model, params, arrays):
    # the saved weights, optimizer state and generator state into ``model``
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
        state = _json(arrays["generator_state"], "generator state")
        try:
            model.generator.set_state(state)
        except (TypeError, ValueError) as exc:
            raise _Invalid(f"its generator state is invalid ({exc})") from None
    _load_layer_state(model, arrays)
    model.mark_trained()                 # adding a layer would redraw the loaded weights


def _load_layer_state(model, arrays):
    # BatchNormalization's moving statistics and the layers' own generators
    state = arrays.get("layer_state")
    if model.layer_state.size or state is not None:
        _require(state is not None, "it has no 'layer_state' entry for the moving statistics")
        _require(state.dtype == model.layer_state.dtype
                 and state.shape == model.layer_state.shape,
                 f"its layer_state ({state.dtype}, shape {state.shape}) does not fit the "
                 f"architecture ({model.layer_state.dtype}, shape "
                 f"{model.layer_state.shape})")
        _require(bool(np.isfinite(state).all()), "its layer_state is not finite")
        model.layer_state[...] = state
        try:
            for layer in model.layers:
                layer.check_values(layer.buffers())
        except ValueError as exc:
            raise _Invalid(f"its layer_state is invalid ({exc})") from None
    own = model.generators[1:]
    states = (_json(arrays["layer_generators"], "layer generators")
              if "layer_generators" in arrays else [])
    _require(isinstance(states, list) and len(states) == len(own),
             f"its layer_generators entry does not hold {len(own)} generator states")
    for generator, state in zip(own, states):
        try:
            generator.set_state(state)
        except (TypeError, ValueError) as exc:
            raise _Invalid(f"its layer generator state is invalid ({exc})") from None


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
    _check_path(path)
    try:
        arrays = _read(path)
        return _build(_parse_config(arrays), arrays)
    except _Invalid as exc:
        raise ValueError(f"cannot load a pynn model from {os.fspath(path)!r}: {exc}") from None
