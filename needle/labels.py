"""Class labels, checked in one place for every op that takes them (`one_hot` on every device and in `init`)."""
from __future__ import annotations

import numpy as np


class LabelError(IndexError, ValueError):
    """A label that is not a whole number in [0, n): a bad index and a bad value at once, so either except catches it."""


def integer_labels(labels, n: int, op: str) -> np.ndarray:
    """`labels` (any array-like of whole numbers, float or int) as int64, checked to lie in [0, n); errors name `op`."""
    i = np.asarray(labels.numpy() if hasattr(labels, "numpy") else labels)
    if i.dtype.kind not in "iubf":
        raise TypeError(f"{op}: labels must be integers, got dtype {i.dtype}")
    if i.dtype.kind == "f" and i.size:
        whole = np.isfinite(i) & (i == np.round(i))
        if not whole.all():
            raise LabelError(f"{op}: labels must be integers, got {i[~whole][:3]}")
    i = i.astype(np.int64)
    if i.size and (i.min() < 0 or i.max() >= n):
        raise LabelError(f"{op}: labels must lie in [0, {n}), got min {i.min()} max {i.max()}")
    return i
