"""``keras.utils``: set_random_seed, to_categorical."""
import random

import numpy as np

_seeds = None           # draws the seeds of the models made after set_random_seed


def set_random_seed(seed):
    """Seed Python's ``random``, NumPy's global generator and the models
    made from now on, as Keras's: each new ``keras.Sequential`` takes its
    seed (its initial weights and shuffling) from a stream this seed starts,
    so a script gives the same results run after run."""
    global _seeds
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    random.seed(int(seed))
    np.random.seed(int(seed) % 2**32)
    _seeds = np.random.default_rng(int(seed))


def next_model_seed():
    """The seed of a new model: drawn after ``set_random_seed``, else None."""
    return None if _seeds is None else int(_seeds.integers(2**63))


def to_categorical(x, num_classes=None):
    """One-hot rows (n, num_classes) of float32 for integer labels ``x`` (n,)."""
    labels = np.asarray(x)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1 or (labels.size and not np.all(labels == np.round(labels))):
        raise ValueError(f"x must hold integer labels (n,), got shape {labels.shape}")
    labels = labels.astype(np.int64)
    if labels.size and labels.min() < 0:
        raise ValueError(f"labels must be >= 0, got {labels.min()}")
    n = int(labels.max()) + 1 if num_classes is None else int(num_classes)
    if labels.size and labels.max() >= n:
        raise ValueError(f"label {labels.max()} is out of range for num_classes={n}")
    out = np.zeros((labels.size, n), dtype=np.float32)
    out[np.arange(labels.size), labels] = 1.0
    return out
