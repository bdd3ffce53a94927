"""Axis bookkeeping shared by the reducing ops (Summation, LogSumExp, Dilate): normalise, keep-dims shapes."""
from __future__ import annotations

from ..backend_ndarray.layout import normalize_axes  # noqa: F401  (one definition for NDArray and ops)


def keepdims_shape(shape: tuple, axes: tuple[int, ...]) -> tuple[int, ...]:
    """`shape` with the (normalised) reduced axes set to 1."""
    return tuple(1 if i in axes else s for i, s in enumerate(shape))


def reduced_shape(shape: tuple, axes: tuple[int, ...]) -> tuple[int, ...]:
    """`shape` with the (normalised) reduced axes removed."""
    return tuple(s for i, s in enumerate(shape) if i not in axes)
