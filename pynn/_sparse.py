"""Sparse inputs: SciPy's sparse matrices and arrays as rows for the kernels.

A ``scipy.sparse`` matrix or array (``csr_matrix`` or ``csr_array``, and
the other formats) reaches the compiled network as ``CSRRows``: its
``indptr``, ``indices`` and ``data``, read where they lie when they can be
(int32 or int64 indices, values of the model's dtype).  The compiled gather
densifies each batch (each chunk of predict and evaluate) into a buffer of
that many rows, zeros and stored values; the whole matrix is never dense.

- CSR is read as it is.  CSC is converted once to CSR, a sparse copy (as
  many values as it stores): gathering a batch of rows from columns would
  search every column for each batch.
- The other formats (COO, LIL, DOK, BSR, DIA) are converted to CSR, as
  scikit-learn's ``check_array(accept_sparse=["csr", "csc"])`` converts them.
- A matrix not in canonical form (unsorted indices, a column stored twice in
  a row) is canonicalised in a copy, duplicates summed as SciPy sums them;
  stored values of another dtype are converted once (a copy of the values).
  The user's matrix is never modified.
- The stored values are checked finite once, before any compiled code runs
  (the zeros are finite).
"""
import sys

import numpy as np

from . import _dense
from ._validation import check_finite

CSRRows = _dense.CSRRows

# Elements in one densified chunk of predict, evaluate or a full-batch
# gradient at most (8 MiB of float32): chunk rows = this / n_features.
CHUNK_ELEMENTS = 1 << 21


def is_sparse(x) -> bool:
    """True for a scipy.sparse matrix or array (without importing SciPy:
    nothing can be one before scipy.sparse is imported)."""
    sparse = sys.modules.get("scipy.sparse")
    return sparse is not None and sparse.issparse(x)


def is_rows(x) -> bool:
    """True for sparse input: a scipy.sparse object or ``CSRRows``."""
    return isinstance(x, CSRRows) or is_sparse(x)


def as_rows(x, dtype, argname="x"):
    """``x``, a scipy.sparse object or ``CSRRows``, as ``CSRRows`` of
    ``dtype`` for the compiled gathers (see the module doc); the stored
    values checked finite.  TypeError / ValueError name ``argname``."""
    dtype = np.dtype(dtype)
    if isinstance(x, CSRRows):
        if x.dtype == dtype:
            return x        # made here: already checked
        check_finite(x.data, argname, dtype=dtype)
        return CSRRows(x.indptr, x.indices, x.data.astype(dtype), x.n_cols)
    if x.ndim != 2:
        raise ValueError(f"{argname} must be 2-D (n_samples, n_features), got a sparse "
                         f"array of shape {x.shape}")
    if x.dtype.kind not in "biuf":
        raise TypeError(f"{argname} must hold real numbers, got a sparse matrix of "
                        f"dtype {x.dtype}")
    _check_structure(x, argname)
    owned = x.format != "csr"
    csr = x.tocsr() if owned else x
    if csr.dtype not in (np.float32, np.float64):
        # integers summed as duplicates could wrap around: converted first
        csr = csr.astype(dtype)
        owned = True
    if not csr.has_canonical_format:
        if not owned:
            csr = csr.copy()
        csr.sum_duplicates()
    # before the values are converted: one that dtype cannot hold is
    # reported as overflowing, not as the infinity it would become
    check_finite(csr.data, argname, dtype=dtype)
    indptr, indices = csr.indptr, csr.indices
    index_dtype = np.int32 if indptr.dtype == indices.dtype == np.int32 else np.int64
    # the values of float32 x for a float64 model (or the reverse) are
    # converted here, once: a copy of the stored values only
    return CSRRows(np.ascontiguousarray(indptr, dtype=index_dtype),
                   np.ascontiguousarray(indices, dtype=index_dtype),
                   np.ascontiguousarray(csr.data, dtype=dtype), csr.shape[1])


def _check_structure(x, argname):
    # Index arrays checked before SciPy's conversions and sum_duplicates
    # read them: those do not bound-check corrupt indices.  The full check
    # runs on a new matrix over the same arrays (it may re-assign a
    # matrix's attributes; the user's matrix stays as it is).
    try:
        if x.format in ("csr", "csc", "bsr"):
            args = ((x.data, x.indices, x.indptr),)
            type(x)(*args, shape=x.shape, copy=False).check_format(full_check=True)
        elif x.format == "coo":
            coords = getattr(x, "coords", None) or (x.row, x.col)
            for axis, (index, size) in enumerate(zip(coords, x.shape)):
                index = np.asarray(index)
                if index.size and (index.min() < 0 or index.max() >= size):
                    bad = index.min() if index.min() < 0 else index.max()
                    raise ValueError(f"axis {axis} holds index {bad}, outside [0, {size})")
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{argname} is a malformed sparse {x.format} matrix of shape "
                         f"{x.shape}: {exc}") from None


def chunk_rows(x, chunk: int) -> int:
    """Rows per compiled call over ``x``: ``chunk``, or for ``CSRRows`` at
    most as many as densify into ``CHUNK_ELEMENTS`` values."""
    if isinstance(x, CSRRows):
        return max(1, min(chunk, CHUNK_ELEMENTS // max(x.n_cols, 1)))
    return chunk
