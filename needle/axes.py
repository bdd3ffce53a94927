"""Axis bookkeeping shared by NDArray's reductions and the reducing ops (Summation, LogSumExp, Dilate).

Pure tuple arithmetic on the lowest floor, so the ops under NEEDLE_BACKEND=np never load NDArray's internals.
"""
from __future__ import annotations

import operator

Shape = tuple[int, ...]


def normalize_axes(axis, ndim: int, op: str) -> Shape:
    """Sorted, non-negative, distinct axes from None (all), an int or a sequence of ints; errors name `op`."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) or not hasattr(axis, "__iter__") else tuple(axis)
    out = []
    for ax in axes:
        try:
            ax = operator.index(ax)
        except TypeError:
            raise TypeError(f"{op}: axis must be an int or a tuple of ints, got {axis!r}") from None
        if not -ndim <= ax < ndim:
            raise ValueError(f"{op}: axis {ax} is out of range for an array with {ndim} dimensions")
        out.append(ax % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: repeated axis in {axis}")
    return tuple(sorted(out))


def keepdims_shape(shape: tuple, axes: tuple[int, ...]) -> tuple[int, ...]:
    """`shape` with the (normalised) reduced axes set to 1."""
    return tuple(1 if i in axes else s for i, s in enumerate(shape))


def reduced_shape(shape: tuple, axes: tuple[int, ...]) -> tuple[int, ...]:
    """`shape` with the (normalised) reduced axes removed."""
    return tuple(s for i, s in enumerate(shape) if i not in axes)
