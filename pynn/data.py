"""Training data that need not fit in memory.

``Sequential.fit`` takes its data in three forms:

- arrays, in memory or ``np.memmap`` of the model's dtype: batches are
  gathered straight from them by compiled code, and no full-size temporary
  is made (the finiteness check runs in row chunks);
- an ``np.memmap`` x of another dtype (say uint8 pixels): converted batch by
  batch (``RowsToConvert``), never whole;
- an iterable of ``(x_batch, y_batch)`` pairs, passed as x with y omitted
  (``Stream``): read batch by batch as it yields them.

Every form but the first trains one compiled step per batch (the
``Streamed`` runner of pynn.training.runners), as distributed training
does with every form.
"""
import numpy as np

from . import _sparse
from ._validation import check_finite, check_positive_int


class Batches:
    """A batch source that fit cannot hand to compiled code whole."""

    n_batches = None            # batches per epoch

    def batches(self, model, y, order, batch_size, first, stop):
        """Yield ``(k, x_batch, y_batch)`` for batches ``first..stop-1``,
        both checked and converted to the model's dtype (finiteness is left
        to the compiled step)."""
        raise NotImplementedError


class RowsToConvert(Batches):
    """A 2-D array (a memmap) of another dtype than the model's, converted
    one batch of rows at a time.

    Slicing rows (``rows[a:b]``, as ``validation_split`` does) gives another
    such source; ``np.asarray`` converts the whole array (validation sets).
    """

    def __init__(self, x):
        self.x = x
        self.shape = x.shape

    def __getitem__(self, rows):
        return RowsToConvert(self.x[rows])

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self.x, dtype=dtype)

    def batches(self, model, y, order, batch_size, first, stop):
        n = self.shape[0]
        for k in range(first, stop):
            rows = slice(k * batch_size, min((k + 1) * batch_size, n))
            if order is not None:
                rows = order[rows]
            xb, yb = model.check_xy(self.x[rows], y[rows], finite=False)
            yield k, xb, yb


class Stream(Batches):
    """An iterable of ``(x_batch, y_batch)`` pairs as fit's training data.

    Parameters
    ----------
    source : iterable or callable
        - a callable (a generator function, say): called at the start of each
          epoch for a fresh iterable of batches;
        - an iterator (a generator object): read on across epochs, each epoch
          taking the next ``steps_per_epoch`` batches (as Keras);
        - any other iterable (a list, a dataset object): iterated afresh
          each epoch.
    steps_per_epoch : int or None
        Batches per epoch; needed unless ``source`` has a ``len()``.  An
        epoch whose source runs out of batches early raises ValueError.

    Batch ``k``'s size is recorded in ``sizes[k]`` when it is drawn (fit
    weighs the epoch's mean loss with them).  The first batch is drawn on
    construction, to build the model and refuse bad data before training.
    """

    def __init__(self, model, source, steps_per_epoch=None):
        self.model = model
        if callable(source):
            self._fresh = source
        elif iter(source) is source:
            self._fresh = None          # one iterator, read on across epochs
        else:
            self._fresh = lambda: source
        if steps_per_epoch is None:
            if callable(source) or not hasattr(source, "__len__"):
                raise ValueError(
                    f"x is an iterable of batches of unknown length "
                    f"({type(source).__name__}): give steps_per_epoch")
            steps_per_epoch = len(source)
            if steps_per_epoch < 1:
                raise ValueError("x is an empty iterable of batches")
        self.n_batches = steps_per_epoch
        self.sizes = np.zeros(steps_per_epoch, dtype=np.intp)
        self._source = source
        self._iter = self._new_iter(0)
        self._epoch = 0
        self._peeked = self._next(0)    # builds the model, checks the first batch

    def _new_iter(self, epoch):
        made = self._fresh() if self._fresh is not None else self._source
        try:
            return iter(made)
        except TypeError:
            raise TypeError(f"x must give an iterable of (x_batch, y_batch) pairs, "
                            f"got {type(made).__name__} at epoch {epoch + 1}") from None

    def _next(self, k):
        try:
            item = next(self._iter)
        except StopIteration:
            raise ValueError(f"x ran out of batches: epoch {self._epoch + 1} got {k} "
                             f"of its {self.n_batches} (steps_per_epoch)") from None
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise TypeError(f"x must yield (x_batch, y_batch) pairs; batch {k} of epoch "
                            f"{self._epoch + 1} is {type(item).__name__!s:.40}")
        return self.model.check_xy(item[0], item[1], finite=False)

    def batches(self, model, y, order, batch_size, first, stop):
        if first == 0 and self._peeked is None:
            self._epoch += 1
            if self._fresh is not None:
                self._iter = self._new_iter(self._epoch)
        for k in range(first, stop):
            if self._peeked is not None:
                (xb, yb), self._peeked = self._peeked, None
            else:
                xb, yb = self._next(k)
            self.sizes[k] = xb.shape[0]
            yield k, xb, yb


def prepare(model, x, y, steps_per_epoch, validation_split):
    """fit's training data: ``(x, y)`` checked arrays, or a Batches source
    and y (None for a Stream)."""
    steps_per_epoch = check_positive_int(steps_per_epoch, "steps_per_epoch",
                                         allow_none=True)
    if y is None:
        if isinstance(x, np.ndarray) or _sparse.is_rows(x):
            raise ValueError("y is missing: give targets y with an array x "
                             "(only an iterable of (x_batch, y_batch) pairs goes alone)")
        if validation_split:
            raise ValueError(f"validation_split={validation_split!r} needs arrays x and "
                             f"y; with an iterable of batches give validation_data")
        return Stream(model, x, steps_per_epoch), None
    if steps_per_epoch is not None:
        raise ValueError(f"steps_per_epoch applies to an iterable of batches, not to "
                         f"arrays x and y (got steps_per_epoch={steps_per_epoch!r})")
    if isinstance(x, np.memmap) and x.ndim == 2 and x.shape[0] > 0 \
            and x.dtype.kind in "biuf" and (x.dtype != model.dtype
                                            or not x.flags.c_contiguous):
        if not model.built:
            model.build(x.shape[1])
        if x.shape[1] != model.input_dim:
            raise ValueError(f"x has {x.shape[1]} features, the model expects "
                             f"{model.input_dim}")
        # Checked whole before training, in row chunks: a NaN, or a value
        # the model's dtype cannot hold, found at batch k would come after
        # k updates (the batches are converted one at a time)
        check_finite(x, "x", dtype=model.dtype)
        # targets are n_outputs wide: converting them whole costs little
        y = model.loss.prepare_targets(y, model.output_dim, model.dtype, "y")
        if y.shape[0] != x.shape[0]:
            raise ValueError(f"x and y have different numbers of samples: "
                             f"{x.shape[0]} and {y.shape[0]}")
        return RowsToConvert(x), y
    return model.check_xy(x, y)


def plan(x, batch_size):
    """(n_samples or None, n_batches, sizes) of an epoch over fit's data."""
    if isinstance(x, Stream):
        return None, x.n_batches, x.sizes
    sizes = batch_sizes(x.shape[0], batch_size)
    return x.shape[0], sizes.shape[0], sizes


def batch_sizes(n_samples, batch_size):
    """Sizes of an epoch's batches over ``n_samples``: ``batch_size`` each
    but the last, which takes the rest."""
    n_batches = -(-n_samples // batch_size)
    return np.minimum(batch_size, n_samples - batch_size * np.arange(n_batches))
