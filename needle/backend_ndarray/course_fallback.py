"""NDArray's paths for a device module with only the course's kernels (a learner's own, the course's reference): no
`matmul_strided`, so a batched product is one 2-D product per batch (tiled when `matmul_tiled` fits), and no
`reduce_*_axis`, so a reduction runs over contiguous blocks of the last axis.

They take and return arrays through their methods only (this module never imports NDArray).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .devices import kernel

if TYPE_CHECKING:  # for the annotations only
    from .ndarray import NDArray


def matmul_batched(a: NDArray, b: NDArray, batch: tuple, m: int, n: int, p: int) -> NDArray:
    """a (..., m, n) @ b (..., n, p) over the broadcast `batch` axes: one 2-D product per batch."""
    if not batch:
        return matmul_2d(a.compact(), b.compact())
    out = a._new(batch + (m, p))
    a_all = a.broadcast_to(batch + (m, n))
    b_all = b.broadcast_to(batch + (n, p))
    for idx in np.ndindex(*batch):
        out[idx] = matmul_2d(a_all[idx].compact().reshape((m, n)), b_all[idx].compact().reshape((n, p)))
    return out


def matmul_2d(a: NDArray, b: NDArray) -> NDArray:
    """The course's 2-D matmul on compact operands: tiled when all sizes are multiples of the tile."""
    m, n, p = a._shape[0], a._shape[1], b._shape[1]
    dev = a._device
    t = getattr(dev.mod, "__tile_size__", 0)
    if hasattr(dev.mod, "matmul_tiled") and t and m % t == 0 and n % t == 0 and p % t == 0:

        def tile(x: NDArray) -> NDArray:
            rows, cols = x._shape
            return x.as_strided((rows // t, cols // t, t, t), (cols * t, t, cols, 1)).compact()

        out = a._new((m // t, p // t, t, t))
        dev.matmul_tiled(tile(a)._handle, tile(b)._handle, out._handle, m, n, p)
        return out.permute((0, 2, 1, 3)).compact().reshape((m, p))
    out = a._new((m, p))
    dev.matmul(a._handle, b._handle, out._handle, m, n, p)
    return out


def reduce_last_axis(a: NDArray, out: NDArray, axis_kernel: str, outer: int, reduce: int, inner: int) -> None:
    """Writes into `out` the reduction of compact `a`, seen as (outer, reduce, inner), over its middle axis, with the
    course's kernel for contiguous blocks (`reduce_sum` for `reduce_sum_axis`, ...)."""
    if inner != 1:
        a = a.reshape((outer, reduce, inner)).permute((0, 2, 1)).compact()
    kernel(a._device, axis_kernel[: -len("_axis")])(a._handle, out._handle, reduce)
