"""Checks shared by every public entry point, run before compiled code.

Each raises ValueError or TypeError naming the argument and the value it got.
Arrays are converted (never modified in place): the user's data stays theirs.
"""
from __future__ import annotations

import numbers
import os
import warnings
from typing import Any

import numpy as np

def as_dtype(dtype: Any, argname: str = "dtype") -> type:
    """np.float32 or np.float64 from a name, a type or a dtype."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{argname} must be 'float32' or 'float64', got {dtype!r}") from None
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"{argname} must be 'float32' or 'float64', got {dtype!r}")
    return dt.type


def as_float_array(x: Any, dtype: Any, argname: str) -> np.ndarray:
    """x as a C-contiguous float array of ``dtype`` (or its own float type).

    Integers and booleans are converted; object, complex and string arrays
    are refused.  A copy is made only when the input is not already usable.
    """
    if (type(x) is np.ndarray and x.dtype.type is dtype and x.dtype.isnative
            and x.flags.c_contiguous and x.flags.aligned):
        return x  # the common case, and the hot one: nothing to convert
    if isinstance(x, (str, bytes)):
        raise TypeError(f"{argname} must be an array of numbers, got a string: {x!r:.60}")
    if isinstance(x, np.ma.MaskedArray):
        # np.asarray would drop the mask and compute on the hidden values
        raise TypeError(f"{argname} is a masked array; pynn does not handle missing "
                        f"values: fill or drop them first (x.filled(...))")
    if type(x).__module__.partition(".")[0] == "pandas" and \
            (hasattr(x, "columns") or hasattr(x, "to_frame")):
        x = _from_pandas(x, argname)
    try:
        arr = np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"{argname} could not be read as an array: {exc}") from None
    kind = arr.dtype.kind
    if kind not in "biuf":
        raise TypeError(
            f"{argname} must hold real numbers, got an array of dtype {arr.dtype}")
    if dtype is None:
        dtype = arr.dtype.type if kind == "f" and arr.dtype.itemsize in (4, 8) else np.float64
    # np.ascontiguousarray would turn a 0-d array into 1-d, and the shape
    # error that follows would then quote a shape the user never passed.
    # The native byte order is asked for explicitly (a '>f8' array is
    # float64 too), and an unaligned array is copied: the kernels read
    # aligned, native values only.
    target = np.dtype(dtype).newbyteorder("=")
    try:
        with np.errstate(over="raise"):
            out = np.asarray(arr, dtype=target, order="C")
    except FloatingPointError:
        _raise_overflow(arr, target, argname)
    return out if out.flags.aligned else out.copy()


def _from_pandas(x, argname):
    """A pandas DataFrame or Series as a float64 array, column by column checked.

    Numeric, boolean and nullable (Int64, Float64, boolean) columns are
    converted; a missing value is refused naming its column and row, and
    any other column (object, string, category, datetime) naming its dtype.
    pandas is not imported: the object's own methods do the work.
    """
    frame = x if hasattr(x, "columns") else x.to_frame()
    for j, (name, dtype) in enumerate(frame.dtypes.items()):
        try:
            kind = np.dtype(getattr(dtype, "numpy_dtype", dtype)).kind
        except TypeError:       # an extension dtype with no NumPy counterpart
            kind = "O"
        if kind not in "biuf":
            raise TypeError(f"{argname} has a column {name!r} of dtype {dtype}: only "
                            f"numeric and boolean columns are converted")
        missing = np.asarray(frame.iloc[:, j].isna())
        if missing.any():
            row = frame.index[int(np.argmax(missing))]
            raise ValueError(f"{argname} has a missing value in column {name!r} (at row "
                             f"{row!r}): pynn does not handle missing values; fill or "
                             f"drop them first")
    return x.to_numpy(dtype=np.float64)


def _raise_overflow(arr, dtype, argname, offset=0):
    # A finite value too large for dtype: reported as such, not as the
    # infinity the cast would have made of it.
    with np.errstate(over="ignore", invalid="ignore"):
        bad = np.isinf(arr.astype(dtype)) & np.isfinite(arr)
    idx = np.unravel_index(int(np.argmax(bad)), arr.shape)
    value = arr[idx]
    idx = (idx[0] + offset,) + idx[1:]
    where = idx[0] if len(idx) == 1 else tuple(int(i) for i in idx)
    raise ValueError(f"{argname} holds {float(value)!r} at index {where}, which overflows "
                     f"{np.dtype(dtype).name} (largest {np.finfo(dtype).max:.8g}): "
                     f"scale the data, or use a float64 model")


# Elements per pass of check_finite: its boolean temporary stays this small
# however large the array (a memory-mapped file is never read in whole).
FINITE_CHUNK = 1 << 20


def check_finite(arr, argname, dtype=None):
    """Refuse NaN and infinite values of ``arr``, read in row chunks.

    With ``dtype``, each chunk is also converted to it first, so that a
    value of a wider type that ``dtype`` cannot hold (1e39 for float32) is
    reported as overflowing before any of it is used: the check of a
    memory-mapped file of another dtype than the model's.
    """
    arr = np.asarray(arr)
    row_size = arr[0].size if arr.ndim and arr.shape[0] else 1
    rows = max(1, FINITE_CHUNK // max(row_size, 1))
    starts = [0] if arr.ndim == 0 or arr.size <= FINITE_CHUNK else \
        range(0, arr.shape[0], rows)
    n_bad = 0
    for start in starts:
        part = arr if arr.ndim == 0 or len(starts) == 1 else arr[start:start + rows]
        if dtype is not None and part.dtype != dtype and part.dtype.kind == "f":
            try:
                with np.errstate(over="raise"):
                    part.astype(dtype)
            except FloatingPointError:
                _raise_overflow(np.asarray(part), np.dtype(dtype), argname, start)
        if part.dtype.kind == "f" and not np.isfinite(part).all():
            n_bad += int(part.size - np.count_nonzero(np.isfinite(part)))
    if n_bad:
        raise ValueError(f"{argname} contains {n_bad} NaN or infinite value(s)")


MAX_NAME_LENGTH = 256


def check_name(value, argname="name"):
    """None, or a str of printable characters no longer than MAX_NAME_LENGTH.

    Names are printed (summary), used as keys (check_gradients, metrics)
    and saved: anything else would fail there, far from where it was given.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{argname} must be a str or None, got {value!r:.80} "
                        f"(type {type(value).__name__})")
    if not value or len(value) > MAX_NAME_LENGTH or not value.isprintable():
        raise ValueError(f"{argname} must be 1 to {MAX_NAME_LENGTH} printable "
                         f"characters, got {value!r:.80} ({len(value)} characters)")
    return value


def check_positive_int(value, argname, allow_none=False, high=None):
    """``value`` as an int > 0 (and <= ``high`` if given; None passes if allowed)."""
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{argname} must be a positive integer, got {value!r}")
    if value <= 0:
        raise ValueError(f"{argname} must be a positive integer, got {value!r}")
    if high is not None and value > high:
        raise ValueError(f"{argname} must be at most {high}, got {value!r}")
    return int(value)


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def check_n_threads(value, argname="n_threads"):
    """None, or a thread count clamped to the usable cores, with a warning.

    More BLAS threads than cores do not run side by side: they take turns,
    and each product waits for the slowest (a fit measured 66 times slower
    with more threads than cores on 2 cores).  The count is a C int for the
    kernels, hence the upper bound.
    """
    n = check_positive_int(value, argname, allow_none=True, high=2**31 - 1)
    cores = usable_cores()
    if n is not None and n > cores:
        warnings.warn(f"{argname}={n} is more than the {cores} core(s) this process may "
                      f"use: using {cores} (threads beyond the cores only wait for "
                      f"each other)", RuntimeWarning, stacklevel=3)
        n = cores
    return n


def check_nonneg_int(value, argname):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{argname} must be a non-negative integer, got {value!r}")
    if value < 0:
        raise ValueError(f"{argname} must be a non-negative integer, got {value!r}")
    return int(value)


def check_bool(value, argname):
    """``value`` as a bool: True or False (or NumPy's), nothing that merely
    converts to one (``bool("no")`` is True)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{argname} must be True or False, got {value!r}")
    return bool(value)


def check_real(value, argname, low=None, high=None, low_open=False, high_open=False):
    """A finite real number within [low, high] (ends open if asked)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{argname} must be a real number, got {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{argname} must be finite, got {value!r}")
    if low is not None and (value < low or (low_open and value == low)):
        bound = f"> {low}" if low_open else f">= {low}"
        raise ValueError(f"{argname} must be {bound}, got {value!r}")
    if high is not None and (value > high or (high_open and value == high)):
        bound = f"< {high}" if high_open else f"<= {high}"
        raise ValueError(f"{argname} must be {bound}, got {value!r}")
    return value


def check_verbose(verbose, argname="verbose"):
    """``verbose`` as 0, 1 or 2: "auto" is 1, as Keras; anything else is refused."""
    if isinstance(verbose, str) and verbose == "auto":
        return 1
    if isinstance(verbose, (bool, np.bool_)) or not isinstance(verbose, (int, np.integer)) \
            or verbose not in (0, 1, 2):
        raise ValueError(f"{argname} must be 'auto', 0, 1 or 2, got {verbose!r}")
    return int(verbose)


def readonly_view(a):
    """A read-only view of ``a``: what a user's callable is handed when the
    array is the user's own data or one of pynn's buffers."""
    view = np.asarray(a).view()
    view.flags.writeable = False
    return view
