"""Tensor creation: random (numpy's global RNG, in the course's draw order), constant, one-hot, *_like."""
from __future__ import annotations

import numpy

from .. import backend_selection
from ..autograd import Tensor
from ..backend_selection import default_device


def _shape(shape: tuple) -> tuple:
    """`rand(2, 3)` and `rand((2, 3))` both mean shape (2, 3)."""
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape


def _tensor(array, device, dtype, requires_grad: bool) -> Tensor:
    """A leaf Tensor over a freshly made array, converted only when the dtype differs."""
    if dtype is not None and array.dtype != numpy.dtype(backend_selection.storage_dtype(dtype)):
        return Tensor(array, device=device, dtype=dtype, requires_grad=requires_grad)
    return Tensor.make_const(array, requires_grad=requires_grad)


def rand(*shape, low=0.0, high=1.0, device=None, dtype="float32", requires_grad=False) -> Tensor:
    """Generate random numbers uniform between low and high."""
    device = default_device() if device is None else device
    array = device.rand(*_shape(shape), dtype=backend_selection.storage_dtype(dtype)) * (high - low) + low
    return _tensor(array, device, dtype, requires_grad)


def randn(*shape, mean=0.0, std=1.0, device=None, dtype="float32", requires_grad=False) -> Tensor:
    """Generate random normal with specified mean and std deviation."""
    device = default_device() if device is None else device
    array = device.randn(*_shape(shape), dtype=backend_selection.storage_dtype(dtype)) * std + mean
    return _tensor(array, device, dtype, requires_grad)


def constant(*shape, c=1.0, device=None, dtype="float32", requires_grad=False) -> Tensor:
    """Generate constant Tensor."""
    device = default_device() if device is None else device
    array = device.full(_shape(shape), c, dtype=backend_selection.storage_dtype(dtype))
    return _tensor(array, device, dtype, requires_grad)


def ones(*shape, device=None, dtype="float32", requires_grad=False) -> Tensor:
    """Generate all-ones Tensor."""
    return constant(*shape, c=1.0, device=device, dtype=dtype, requires_grad=requires_grad)


def zeros(*shape, device=None, dtype="float32", requires_grad=False) -> Tensor:
    """Generate all-zeros Tensor."""
    return constant(*shape, c=0.0, device=device, dtype=dtype, requires_grad=requires_grad)


def randb(*shape, p=0.5, device=None, dtype="bool", requires_grad=False) -> Tensor:
    """Generate binary random Tensor: 1 where a uniform draw is <= p."""
    device = default_device() if device is None else device
    array = device.rand(*_shape(shape)) <= p
    return Tensor(array, device=device, dtype=dtype, requires_grad=requires_grad)


def one_hot(n, i, device=None, dtype="float32", requires_grad=False) -> Tensor:
    """Generate one-hot encoding Tensor: row k is the n-vector with a 1 at position i[k]."""
    device = default_device() if device is None else device
    array = device.one_hot(n, i, dtype=backend_selection.storage_dtype(dtype))  # the device checks the labels
    return _tensor(array, device, dtype, requires_grad)


def zeros_like(array, *, device=None, requires_grad=False) -> Tensor:
    device = device if device else array.device
    return zeros(*array.shape, dtype=array.dtype, device=device, requires_grad=requires_grad)


def ones_like(array, *, device=None, requires_grad=False) -> Tensor:
    device = device if device else array.device
    return ones(*array.shape, dtype=array.dtype, device=device, requires_grad=requires_grad)
