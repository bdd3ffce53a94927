"""The numpy-style functions of the course's `array_api` (array, full, sum, transpose, stack, ...) over NDArray: the
names the ops call as `array_api.<fn>`, each a thin wrapper over an NDArray method or a few views."""
from __future__ import annotations

from typing import Sequence

from . import layout
from .ndarray import BackendDevice, NDArray, default_device

__all__ = ["array", "empty", "full", "broadcast_to", "reshape", "maximum", "log", "exp", "tanh", "sum", "max", "flip",
           "matmul", "transpose", "swapaxes", "stack", "split", "adam_step"]


def array(a, dtype="float32", device: BackendDevice | None = None) -> NDArray:
    """A new NDArray from anything numpy accepts (dtype None keeps float64, else float32)."""
    if dtype is None and isinstance(a, NDArray):
        dtype = a.dtype
    return NDArray(a, device=device, dtype=dtype)


def empty(shape, dtype="float32", device: BackendDevice | None = None) -> NDArray:
    return (device or default_device()).empty(shape, dtype)


def full(shape, fill_value, dtype="float32", device: BackendDevice | None = None) -> NDArray:
    return (device or default_device()).full(shape, fill_value, dtype)


def broadcast_to(array: NDArray, new_shape) -> NDArray:
    return array.broadcast_to(new_shape)


def reshape(array: NDArray, new_shape) -> NDArray:
    return array.reshape(new_shape)


def maximum(a: NDArray, b) -> NDArray:
    return a.maximum(b)


def log(a: NDArray) -> NDArray:
    return a.log()


def exp(a: NDArray) -> NDArray:
    return a.exp()


def tanh(a: NDArray) -> NDArray:
    return a.tanh()


def sum(a: NDArray, axis=None, keepdims: bool = False) -> NDArray:  # noqa: A001 - course name
    return a.sum(axis=axis, keepdims=keepdims)


def max(a: NDArray, axis=None, keepdims: bool = False) -> NDArray:  # noqa: A001 - course name
    return a.max(axis=axis, keepdims=keepdims)


def flip(a: NDArray, axes) -> NDArray:
    return a.flip(axes)


def matmul(a: NDArray, b: NDArray) -> NDArray:
    return a @ b


def transpose(a: NDArray, axes=None) -> NDArray:
    """numpy's transpose: a full permutation (reverse all axes by default)."""
    return a.permute(tuple(reversed(range(a.ndim))) if axes is None else axes)


def swapaxes(a: NDArray, axis1: int, axis2: int) -> NDArray:
    """A view with two axes exchanged."""
    axis1, axis2 = (layout.normalize_axes(ax, a.ndim, "swapaxes")[0] for ax in (axis1, axis2))
    axes = list(range(a.ndim))
    axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
    return a.permute(axes)


def stack(arrays: Sequence[NDArray], axis: int = 0) -> NDArray:
    """Stacks equal-shape arrays along a new axis."""
    if not arrays:
        raise ValueError("stack: need at least one array")
    shape = arrays[0].shape
    if any(a.shape != shape for a in arrays):
        raise ValueError(f"stack: all arrays must have the same shape, got {[a.shape for a in arrays]}")
    axis = layout.normalize_axes(axis, len(shape) + 1, "stack")[0]
    out = arrays[0]._new(shape[:axis] + (len(arrays),) + shape[axis:])
    for i, a in enumerate(arrays):
        out[(slice(None),) * axis + (i,)] = a
    return out


def split(a: NDArray, axis: int = 0) -> list[NDArray]:
    """Splits along `axis` into a.shape[axis] compact arrays with that axis removed."""
    axis = layout.normalize_axes(axis, a.ndim, "split")[0]
    rest = a.shape[:axis] + a.shape[axis + 1 :]
    return [a[(slice(None),) * axis + (i,)].compact().reshape(rest) for i in range(a.shape[axis])]


def adam_step(param: NDArray, grad: NDArray, m: NDArray | None, v: NDArray | None, *, lr: float, beta1: float,
              beta2: float, eps: float, weight_decay: float, t: int) -> tuple[NDArray, NDArray, NDArray]:
    """One Adam update in a single fused kernel (devices with `adam_step`): new (param, m, v), nothing in place.
    m and v are None at the first step, where the moments start from zero."""
    if param.shape != grad.shape:
        raise ValueError(f"adam_step: parameter shape {param.shape} and gradient shape {grad.shape} differ")
    param, grad = param.compact(), grad.compact()
    first = m is None or v is None
    m, v = (param, param) if first else (m.compact(), v.compact())
    out = [NDArray.make(param.shape, device=param.device, dtype=param.dtype) for _ in range(3)]
    param.device.adam_step(param._handle, grad._handle, m._handle, v._handle, *(o._handle for o in out), lr, beta1,
                           beta2, eps, weight_decay, 1 - beta1**t, 1 - beta2**t, first)
    return out[0], out[1], out[2]
