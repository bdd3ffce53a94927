"""Tensor ops: forward (`compute`, on raw arrays) and backward (`gradient`, built from ops, so differentiable).

The course's final op set with its names, constructor arguments and lowercase helpers. `compute`
runs on NDArray (NEEDLE_BACKEND=nd) or numpy (np); the few spelling differences live in
`array_compat`. Errors raised inside `compute` are re-raised by autograd with the op's name and
its input shapes.
"""
from __future__ import annotations

from typing import Optional

import numpy

from ..autograd import NDArray, Tensor, TensorOp, TensorTuple, TensorTupleOp  # noqa: F401
from ..backend_selection import BACKEND, array_api  # noqa: F401
from . import array_compat as compat
from ..axes import keepdims_shape, normalize_axes
from .ops_tuple import *  # noqa: F401,F403
from .ops_tuple import make_tuple


def _scalar(value):
    """Plain Python numbers for scalar ops: numpy scalars and size-1 arrays (hw1 draws scalars with
    np.random.randn(1)) become floats, so they never broadcast or promote float32 data to float64."""
    if isinstance(value, numpy.generic) or (isinstance(value, numpy.ndarray) and value.size == 1):
        return value.item()
    return value


def _same_shape(a, b) -> None:
    if a.shape != b.shape:
        raise ValueError(f"shapes {a.shape} and {b.shape} differ (needle does not broadcast implicitly)")


def _sum_to_shape(grad: Tensor, shape: tuple) -> Tensor:
    """Sums `grad` over the axes that broadcasting added or stretched, giving `shape` (one multi-axis sum)."""
    gshape = grad.shape
    if gshape == shape:
        return grad
    lead = len(gshape) - len(shape)
    axes = tuple(range(lead)) + tuple(i + lead for i, s in enumerate(shape) if s == 1 and gshape[i + lead] != 1)
    if axes:
        grad = summation(grad, axes)
    return grad if grad.shape == shape else reshape(grad, shape)


class EWiseAdd(TensorOp):
    def compute(self, a: NDArray, b: NDArray):
        _same_shape(a, b)
        return a + b

    def gradient(self, out_grad: Tensor, node: Tensor):
        return out_grad, out_grad


def add(a, b):
    return EWiseAdd()(a, b)


class AddScalar(TensorOp):
    def __init__(self, scalar):
        self.scalar = _scalar(scalar)

    def compute(self, a: NDArray):
        return a + self.scalar

    def gradient(self, out_grad: Tensor, node: Tensor):
        return out_grad


def add_scalar(a, scalar):
    return AddScalar(scalar)(a)


class EWiseMul(TensorOp):
    def compute(self, a: NDArray, b: NDArray):
        _same_shape(a, b)
        return a * b

    def gradient(self, out_grad: Tensor, node: Tensor):
        lhs, rhs = node.inputs
        return out_grad * rhs, out_grad * lhs


def multiply(a, b):
    return EWiseMul()(a, b)


class MulScalar(TensorOp):
    def __init__(self, scalar):
        self.scalar = _scalar(scalar)

    def compute(self, a: NDArray):
        return a * self.scalar

    def gradient(self, out_grad: Tensor, node: Tensor):
        return out_grad * self.scalar


def mul_scalar(a, scalar):
    return MulScalar(scalar)(a)


class EWisePow(TensorOp):
    """Op to element-wise raise a tensor to a power."""

    def compute(self, a: NDArray, b: NDArray) -> NDArray:
        _same_shape(a, b)
        return a**b

    def gradient(self, out_grad, node):
        a, b = node.inputs
        return out_grad * b * a ** (b - 1), out_grad * node * log(a)


def power(a, b):
    return EWisePow()(a, b)


class PowerScalar(TensorOp):
    """Op raise a tensor to a scalar power (integers and floats such as -1.5)."""

    def __init__(self, scalar):
        self.scalar = _scalar(scalar)

    def compute(self, a: NDArray) -> NDArray:
        return a**self.scalar

    def gradient(self, out_grad, node):
        a = node.inputs[0]
        if self.scalar == 0:
            return out_grad * 0
        return out_grad * (a ** (self.scalar - 1) * self.scalar)


def power_scalar(a, scalar):
    return PowerScalar(scalar)(a)


class EWiseDiv(TensorOp):
    """Op to element-wise divide two nodes."""

    def compute(self, a, b):
        _same_shape(a, b)
        return a / b

    def gradient(self, out_grad, node):
        a, b = node.inputs
        return out_grad / b, -out_grad * a / (b * b)


def divide(a, b):
    return EWiseDiv()(a, b)


class DivScalar(TensorOp):
    def __init__(self, scalar):
        self.scalar = _scalar(scalar)

    def compute(self, a):
        return a / self.scalar

    def gradient(self, out_grad, node):
        return out_grad / self.scalar


def divide_scalar(a, scalar):
    return DivScalar(scalar)(a)


class Transpose(TensorOp):
    """Swaps two axes (default: the last two), as the course does; a full permutation is also accepted."""

    def __init__(self, axes: Optional[tuple] = None):
        self.axes = axes

    def _permutation(self, ndim: int) -> tuple[int, ...]:
        if ndim < 2 and self.axes is None:
            raise ValueError(f"needs at least 2 dimensions to swap the last two, got {ndim}")
        axes = (ndim - 2, ndim - 1) if self.axes is None else tuple(self.axes)
        if len(axes) == 2:
            (i,), (j,) = normalize_axes(axes[0], ndim, "Transpose"), normalize_axes(axes[1], ndim, "Transpose")
            perm = list(range(ndim))
            perm[i], perm[j] = perm[j], perm[i]
            return tuple(perm)
        if sorted(a % ndim for a in axes) != list(range(ndim)):
            raise ValueError(f"axes {axes} are neither a pair of axes nor a permutation of {ndim} axes")
        return tuple(a % ndim for a in axes)

    def compute(self, a):
        return array_api.transpose(a, self._permutation(a.ndim))

    def gradient(self, out_grad, node):
        if self.axes is None or len(self.axes) == 2:  # a swap is its own inverse
            return transpose(out_grad, self.axes)
        return transpose(out_grad, tuple(int(i) for i in numpy.argsort(self._permutation(out_grad.ndim))))


def transpose(a, axes=None):
    return Transpose(axes)(a)


class Reshape(TensorOp):
    def __init__(self, shape):
        self.shape = shape

    def compute(self, a):
        return compat.reshape(a, self.shape)

    def gradient(self, out_grad, node):
        return reshape(out_grad, node.inputs[0].shape)


def reshape(a, shape):
    return Reshape(shape)(a)


class BroadcastTo(TensorOp):
    def __init__(self, shape):
        self.shape = shape

    def compute(self, a):
        return array_api.broadcast_to(a, self.shape)

    def gradient(self, out_grad, node):
        return _sum_to_shape(out_grad, node.inputs[0].shape)


def broadcast_to(a, shape):
    return BroadcastTo(shape)(a)


class Summation(TensorOp):
    """Sum over an int, a tuple of axes, or everything (axes=None gives shape ())."""

    def __init__(self, axes: Optional[tuple] = None):
        self.axes = axes

    def compute(self, a):
        return array_api.sum(a, axis=normalize_axes(self.axes, a.ndim, "Summation"))

    def gradient(self, out_grad, node):
        shape = node.inputs[0].shape
        kept = keepdims_shape(shape, normalize_axes(self.axes, len(shape), "Summation"))
        return broadcast_to(reshape(out_grad, kept), shape)


def summation(a, axes=None):
    return Summation(axes)(a)


class MatMul(TensorOp):
    """Matrix product; leading (batch) axes broadcast as numpy's matmul."""

    def compute(self, a, b):
        return a @ b

    def gradient(self, out_grad, node):
        a, b = node.inputs
        grad_a = _sum_to_shape(matmul(out_grad, transpose(b)), a.shape) if a.requires_grad else None
        grad_b = _sum_to_shape(matmul(transpose(a), out_grad), b.shape) if b.requires_grad else None
        return grad_a, grad_b


def matmul(a, b):
    return MatMul()(a, b)


class Negate(TensorOp):
    def compute(self, a):
        return -a

    def gradient(self, out_grad, node):
        return negate(out_grad)


def negate(a):
    return Negate()(a)


class Log(TensorOp):
    def compute(self, a):
        return array_api.log(a)

    def gradient(self, out_grad, node):
        return out_grad / node.inputs[0]


def log(a):
    return Log()(a)


class Exp(TensorOp):
    def compute(self, a):
        return array_api.exp(a)

    def gradient(self, out_grad, node):
        return out_grad * node


def exp(a):
    return Exp()(a)


class ReLU(TensorOp):
    def compute(self, a):
        return array_api.maximum(a, 0)

    def gradient(self, out_grad, node):
        return out_grad * Tensor.make_const(compat.positive_mask(node.inputs[0].realize_cached_data()))


def relu(a):
    return ReLU()(a)


class Tanh(TensorOp):
    def compute(self, a):
        return array_api.tanh(a)

    def gradient(self, out_grad, node):
        return out_grad * (1 - node * node)


def tanh(a):
    return Tanh()(a)


class Stack(TensorOp):
    def __init__(self, axis: int):
        """Stacks equal-shape tensors along a new axis `axis`."""
        self.axis = axis

    def compute(self, args) -> NDArray:
        return array_api.stack(args, self.axis)

    def gradient(self, out_grad, node):
        return split(out_grad, self.axis)


def stack(args, axis):
    return Stack(axis)(make_tuple(*args))


class Split(TensorTupleOp):
    def __init__(self, axis: int):
        """Splits a tensor along `axis` into a tuple of tensors with that axis removed (inverse of Stack)."""
        self.axis = axis

    def compute(self, A):
        (axis,) = normalize_axes(self.axis, A.ndim, "Split")
        return tuple(compat.split(A, axis))

    def gradient(self, out_grad, node):
        return stack(out_grad.tuple(), self.axis)


def split(a, axis):
    return Split(axis)(a)


class Flip(TensorOp):
    def __init__(self, axes: Optional[tuple] = None):
        self.axes = axes

    def compute(self, a):
        return array_api.flip(a, normalize_axes(self.axes, a.ndim, "Flip"))

    def gradient(self, out_grad, node):
        return flip(out_grad, self.axes)


def flip(a, axes):
    return Flip(axes)(a)


def _dilated_slices(axes: tuple[int, ...], ndim: int, dilation: int) -> tuple:
    return tuple(slice(None, None, dilation + 1) if i in axes else slice(None) for i in range(ndim))


class Dilate(TensorOp):
    """Inserts `dilation` zeros after every element along `axes` (length n becomes n * (1 + dilation))."""

    def __init__(self, axes: tuple, dilation: int):
        self.axes = axes
        self.dilation = dilation

    def compute(self, a):
        if self.dilation < 0:
            raise ValueError(f"dilation must be >= 0, got {self.dilation}")
        axes = normalize_axes(self.axes, a.ndim, "Dilate")
        shape = tuple(s * (self.dilation + 1) if i in axes else s for i, s in enumerate(a.shape))
        out = compat.zeros(shape, a)
        out[_dilated_slices(axes, a.ndim, self.dilation)] = a
        return out

    def gradient(self, out_grad, node):
        return undilate(out_grad, self.axes, self.dilation)


def dilate(a, axes, dilation):
    return Dilate(axes, dilation)(a)


class UnDilate(TensorOp):
    """Keeps every (1 + dilation)-th element along `axes`: the inverse (and gradient) of Dilate."""

    def __init__(self, axes: tuple, dilation: int):
        self.axes = axes
        self.dilation = dilation

    def compute(self, a):
        if self.dilation < 0:
            raise ValueError(f"dilation must be >= 0, got {self.dilation}")
        return a[_dilated_slices(normalize_axes(self.axes, a.ndim, "UnDilate"), a.ndim, self.dilation)]

    def gradient(self, out_grad, node):
        return dilate(out_grad, self.axes, self.dilation)


def undilate(a, axes, dilation):
    return UnDilate(axes, dilation)(a)


from .ops_conv import Conv, conv  # noqa: E402,F401  (Conv lives in its own module; exported here as in the course)
