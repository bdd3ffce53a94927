"""LogSumExp and LogSoftmax, computed stably (max subtracted first) so inputs like 1e10 stay finite."""
from __future__ import annotations

from typing import Optional

import numpy

from ..autograd import NDArray, TensorOp
from ..backend_selection import array_api
from . import array_compat as compat
from ..axes import keepdims_shape, normalize_axes, reduced_shape
from .ops_mathematic import broadcast_to, exp, reshape, summation


def _stable_logsumexp(z: NDArray, axes: tuple[int, ...]) -> NDArray:
    """log(sum(exp(z))) over `axes`, keeping the reduced axes as size 1.

    The shift m is the max clipped to the finite range, so that a row of all -inf gives -inf and a row holding
    +inf gives inf (as scipy's logsumexp), not inf - inf = nan."""
    big = float(numpy.finfo(str(z.dtype)).max)
    m = -array_api.maximum(-array_api.maximum(array_api.max(z, axis=axes, keepdims=True), -big), -big)
    shifted = z - array_api.broadcast_to(m, z.shape)
    return array_api.log(array_api.sum(array_api.exp(shifted), axis=axes, keepdims=True)) + m


class LogSoftmax(TensorOp):
    """z - logsumexp(z) over axis 1 of a 2-D input."""

    def compute(self, Z):
        if Z.ndim != 2:
            raise ValueError(f"expects a 2-D input (batch, classes), got shape {Z.shape}")
        return Z - array_api.broadcast_to(_stable_logsumexp(Z, (1,)), Z.shape)

    def gradient(self, out_grad, node):
        shape = node.inputs[0].shape
        total = broadcast_to(reshape(summation(out_grad, (1,)), (shape[0], 1)), shape)
        return out_grad - exp(node) * total


def logsoftmax(a):
    return LogSoftmax()(a)


class LogSumExp(TensorOp):
    """log(sum(exp(z))) over `axes` (None: all), with the same axes conventions as Summation."""

    def __init__(self, axes: Optional[tuple] = None):
        self.axes = axes

    def compute(self, Z):
        axes = normalize_axes(self.axes, Z.ndim, "LogSumExp")
        return compat.reshape(_stable_logsumexp(Z, axes), reduced_shape(Z.shape, axes))

    def gradient(self, out_grad, node):
        z = node.inputs[0]
        kept = keepdims_shape(z.shape, normalize_axes(self.axes, len(z.shape), "LogSumExp"))
        softmax = exp(z - broadcast_to(reshape(node, kept), z.shape))
        return broadcast_to(reshape(out_grad, kept), z.shape) * softmax


def logsumexp(a, axes=None):
    return LogSumExp(axes=axes)(a)
