"""The few raw-array operations whose spelling differs between the two backends.

With NEEDLE_BACKEND=nd the ops compute on needle NDArrays, with `np` on numpy arrays. Most calls read
the same on both (`array_api.sum`, `.permute`-free `array_api.transpose`, `@`, `array_api.stack`); the
ones that differ live here, chosen once at import, so the op definitions carry no backend checks.
"""
from __future__ import annotations

import numpy

from ..backend_ndarray import fused  # noqa: F401 - the fused ops' kernels, for NDArrays and numpy arrays alike
from ..backend_selection import NUMPY, array_api

if NUMPY:

    def compact(a):
        """A dense row-major array (a copy only when `a` is not already one)."""
        return numpy.ascontiguousarray(a)

    def split(a, axis: int) -> list:
        """The slices along `axis`, that axis removed."""
        return list(numpy.moveaxis(a, axis, 0))

    def rows(a) -> list:
        """The views a[0], a[1], ... along the first axis."""
        return list(a)

    def zeros(shape, like):
        """Zeros of `shape` with the dtype (and device) of `like`."""
        return numpy.zeros(shape, dtype=like.dtype)

    def positive_mask(a):
        """1 where a > 0, else 0, in a's dtype."""
        return (a > 0).astype(a.dtype)

else:

    def compact(a):
        """A dense row-major array (a copy only when `a` is not already one)."""
        return a.compact()

    def split(a, axis: int) -> list:
        """The slices along `axis`, that axis removed."""
        return array_api.split(a, axis)

    def rows(a) -> list:
        """a[0], a[1], ... along the first axis: views of a compact `a` (split's are always copies)."""
        return [reshape(a[t], a.shape[1:]) for t in range(a.shape[0])]

    def zeros(shape, like):
        """Zeros of `shape` with the dtype and device of `like`."""
        return like.device.full(shape, 0.0, dtype=like.dtype)

    def positive_mask(a):
        """1 where a > 0, else 0, in a's dtype."""
        return a > 0


def reshape(a, shape):
    """Reshape, compacting a strided input first (NDArray reshapes only contiguous layouts)."""
    if not NUMPY and a.strides != a.compact_strides(a.shape):
        a = a.compact()
    return array_api.reshape(a, shape)
