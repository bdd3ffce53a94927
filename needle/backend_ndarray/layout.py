"""Pure shape/stride arithmetic for strided views (no buffers, no devices).

Strides and offsets are in elements and may be negative (flips) or zero (broadcasts). Every
function validates its input and raises a ValueError/IndexError/TypeError naming the operation.
"""
from __future__ import annotations

import math
import operator
from functools import lru_cache
from typing import Sequence

from ..axes import normalize_axes  # noqa: F401  (layout's reductions and the ops share one definition)

Shape = tuple[int, ...]


@lru_cache(maxsize=4096)
def compact_strides(shape: Shape) -> Shape:
    """Row-major strides of a dense array of `shape` (cached: every op asks for them)."""
    stride, res = 1, []
    for s in reversed(shape):
        res.append(stride)
        stride *= s
    return tuple(reversed(res))


def is_contiguous(shape: Shape, strides: Shape) -> bool:
    """True when the view is dense row-major (strides of size-1 axes do not matter)."""
    if strides == compact_strides(shape):
        return True
    expected = 1
    for n, s in zip(reversed(shape), reversed(strides)):
        if n == 0:
            return True
        if n != 1 and s != expected:
            return False
        expected *= n
    return True


def int_tuple(shape, op: str) -> Shape:
    """`shape` as a tuple of ints (an int means a 1-D shape); TypeError naming `op` otherwise."""
    if isinstance(shape, int):
        return (shape,)
    try:
        return tuple(operator.index(s) for s in shape)
    except TypeError:
        raise TypeError(f"{op}: shape must be a tuple of ints, got {shape!r}") from None


def as_shape(shape, op: str) -> Shape:
    """A validated tuple of non-negative ints (an int means a 1-D shape)."""
    shape = int_tuple(shape, op)
    if any(s < 0 for s in shape):
        raise ValueError(f"{op}: negative dimension in shape {shape}")
    return shape


def check_bounds(op: str, shape: Shape, strides: Shape, offset: int, size: int) -> None:
    """Raises unless every element of the view (shape, strides, offset) lies in a buffer of `size`."""
    if math.prod(shape) == 0:
        return
    lo = hi = offset
    for n, s in zip(shape, strides):
        if s < 0:
            lo += (n - 1) * s
        else:
            hi += (n - 1) * s
    if lo < 0 or hi >= size:
        raise ValueError(
            f"{op}: shape {shape} with strides {strides} and offset {offset} reaches outside "
            f"the buffer of {size} elements"
        )


def resolve_reshape(shape: Shape, new_shape) -> Shape:
    """The target shape of a reshape of `shape`, with one -1 resolved; sizes must agree."""
    new_shape = int_tuple(new_shape, "reshape")
    size = math.prod(shape)
    if new_shape.count(-1) > 1 or any(s < -1 for s in new_shape):
        raise ValueError(f"reshape: invalid target shape {new_shape} for an array of shape {shape}")
    if -1 in new_shape:
        known = math.prod(s for s in new_shape if s != -1)
        if known == 0 or size % known:
            raise ValueError(f"reshape: cannot reshape array of shape {shape} into {new_shape}")
        new_shape = tuple(size // known if s == -1 else s for s in new_shape)
    if math.prod(new_shape) != size:
        raise ValueError(f"reshape: cannot reshape array of shape {shape} (size {size}) into {new_shape}")
    return new_shape


def permutation(new_axes, ndim: int, shape: Shape) -> Shape:
    """`new_axes` as non-negative axes, checked to be a permutation of range(ndim)."""
    try:
        axes = tuple(operator.index(a) for a in new_axes)
    except TypeError:
        raise TypeError(f"permute: axes must be ints, got {new_axes!r}") from None
    if len(axes) != ndim or any(not -ndim <= a < ndim for a in axes):
        raise ValueError(f"permute: {axes} is not a permutation of the axes of shape {shape}")
    axes = tuple(a % ndim for a in axes)
    if len(set(axes)) != ndim:
        raise ValueError(f"permute: {axes} is not a permutation of the axes of shape {shape}")
    return axes


def broadcast_strides(shape: Shape, strides: Shape, new_shape: Shape) -> Shape:
    """Strides viewing (shape, strides) as `new_shape` by numpy's rules (stride 0 on new and size-1 axes,
    as np.broadcast_to gives them)."""
    extra = len(new_shape) - len(shape)
    if extra < 0:
        raise ValueError(f"broadcast_to: cannot broadcast shape {shape} to {new_shape} (fewer dimensions)")
    out = [0] * extra
    for old, stride, new in zip(shape, strides, new_shape[extra:]):
        if old == 1:
            out.append(0)
        elif old == new:
            out.append(stride)
        else:
            raise ValueError(f"broadcast_to: cannot broadcast shape {shape} to {new_shape}")
    return tuple(out)


def slice_bounds(sl: slice, shape: Shape, dim: int) -> tuple[int, int, int]:
    """(start, stop, step) of `sl` on axis `dim` of `shape` as Python's slicing reads it: negative bounds count from
    the end, bounds past an end are clipped, steps of either sign (NDArray.process_slice, the course's name for it)."""
    if sl.step == 0:
        raise ValueError(f"NDArray index: slice step cannot be zero (axis {dim} of shape {shape})")
    try:
        return sl.indices(shape[dim])
    except TypeError:
        raise IndexError(f"NDArray index: slice {sl} must hold ints (axis {dim})") from None


def index_view(shape: Shape, strides: Shape, offset: int, idxs) -> tuple[Shape, Shape, int]:
    """(shape, strides, offset) of the view selected by ints, slices and one Ellipsis.

    Course semantics: no axis is dropped (an int keeps a size-1 axis); negative indices, negative
    starts and negative steps behave as numpy's.
    """
    ndim = len(shape)
    if not isinstance(idxs, tuple):
        idxs = (idxs,)
    if Ellipsis in idxs:
        at = idxs.index(Ellipsis)
        if Ellipsis in idxs[at + 1 :]:
            raise IndexError("NDArray index: only one Ellipsis allowed")
        idxs = idxs[:at] + (slice(None),) * (ndim - len(idxs) + 1) + idxs[at + 1 :]
    if len(idxs) > ndim:
        raise IndexError(f"NDArray index: {len(idxs)} indices for an array of shape {shape}")
    new_shape, new_strides = list(shape), list(strides)
    for dim, idx in enumerate(idxs):
        n, stride = shape[dim], strides[dim]
        if isinstance(idx, slice):
            if idx.start is None and idx.stop is None and idx.step is None:
                continue
            start, stop, step = slice_bounds(idx, shape, dim)
            length = len(range(start, stop, step))
            if length:
                offset += start * stride
            new_shape[dim] = length
            new_strides[dim] = stride * step
            continue
        if isinstance(idx, bool) or idx is None:
            raise IndexError(f"NDArray index: unsupported index {idx!r} (use ints, slices and ...)")
        try:
            i = operator.index(idx)
        except TypeError:
            raise IndexError(f"NDArray index: unsupported index {idx!r} (use ints, slices and ...)") from None
        if not -n <= i < n:
            raise IndexError(f"NDArray index: index {i} is out of range for axis {dim} of shape {shape}")
        offset += (i % n) * stride
        new_shape[dim] = 1
    return tuple(new_shape), tuple(new_strides), offset


def batch_strides(shape: Shape, strides: Shape):
    """(batch, row, col) strides when the leading axes of a (..., m, n) view collapse to one, else None."""
    live = [(s, st) for s, st in zip(shape[:-2], strides[:-2]) if s != 1]
    if not live or all(st == 0 for _, st in live):
        return (0, strides[-2], strides[-1])
    for (_, st1), (s2, st2) in zip(live, live[1:]):
        if st1 != s2 * st2:
            return None
    return (live[-1][1], strides[-2], strides[-1])


def squeezed(shape: Sequence[int]) -> Shape:
    """`shape` without its size-1 axes."""
    return tuple(s for s in shape if s != 1)
