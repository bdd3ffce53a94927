"""Class labels and ids, checked in one place: `integer_labels` for every `one_hot` (on every device and in `init`),
`id_error` for the fused kernels of the numpy and CUDA devices (the C++ kernels check the same way)."""
from __future__ import annotations

import numpy as np


class LabelError(IndexError, ValueError):
    """A label that is not a whole number in [0, n): a bad index and a bad value at once, so either except catches it."""


def integer_labels(labels, n: int, op: str) -> np.ndarray:
    """`labels` (any array-like of whole numbers, float or int) as int64, checked to lie in [0, n); errors name `op`."""
    i = np.asarray(labels.numpy() if hasattr(labels, "numpy") else labels)
    if i.dtype.kind not in "iubf":
        raise TypeError(f"{op}: labels must be integers, got dtype {i.dtype}")
    if i.dtype.kind == "f":
        whole = np.isfinite(i) & (i == np.round(i))
        if not whole.all():
            raise LabelError(f"{op}: labels must be integers, got {i[~whole][:3]}")
    i = i.astype(np.int64)
    if i.size and (i.min() < 0 or i.max() >= n):
        raise LabelError(f"{op}: labels must lie in [0, {n}), got min {i.min()} max {i.max()}")
    return i


def id_error(ids: np.ndarray, num: int, what: str, op: str) -> Exception | None:
    """The error for the first of `ids` (floats holding whole numbers) that is not a whole number in [0, num), worded
    as the C++ kernels word it: an IndexError outside the range (NaN included), else a ValueError for a fraction;
    None when every id is good."""
    outside = ~((ids >= 0) & (ids < num))
    fraction = ids != np.floor(ids)
    bad = outside | fraction
    if not bad.any():
        return None
    i = int(np.argmax(bad))
    if outside[i]:
        return IndexError(f"{op}: {what} {float(ids[i]):g} (at {i}) outside [0, {num})")
    return ValueError(f"{op}: {what} must be whole numbers, got {float(ids[i]):g} (at {i})")
