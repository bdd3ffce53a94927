"""NDArray: a strided n-dimensional array over a flat device buffer.

All shape, stride and offset logic lives here in Python (arithmetic in `layout.py`); a device
module only provides flat-buffer kernels (`compact`, `ewise_add`, `reduce_sum`, `matmul`, ...).
Views (reshape, permute, broadcast_to, slicing) share the buffer; `compact()` copies only when the
layout is not dense.

This module is the course's `array_api` module: besides NDArray it holds the numpy-style functions the ops call
(`array`, `full`, `sum`, `stack`, ...) and re-exports the devices (`cpu`, `default_device`, ...) from devices.py.
Its helpers live beside it: devices.py, dtypes.py, numpy_interop.py and course_fallback.py (the paths for a device
with only the course's kernels).
"""
from __future__ import annotations

import math
from numbers import Number
from typing import Iterable, Sequence

import numpy as np

from . import course_fallback, layout, memory, numpy_interop
from .devices import (BackendDevice, all_devices, check_device, cpu, cpu_numpy, cuda, cuda_sim, default_device,
                      kernel)
from .dtypes import CTYPES, default_dtype, dtype_name

__all__ = [  # the course's public names (`from .ndarray import *`), numpy-style functions included
    "BackendDevice", "NDArray", "cpu", "cpu_numpy", "cuda", "cuda_sim", "default_device", "all_devices", "prod",
    "array", "empty", "full", "broadcast_to", "reshape", "maximum", "log", "exp", "tanh", "sum", "max",
    "flip", "matmul", "transpose", "swapaxes", "stack", "split", "adam_step",
]


def prod(x: Iterable[int]) -> int:
    """Product of a sequence of ints (1 for an empty one), as the course's helper."""
    return math.prod(x)


def _is_scalar(x) -> bool:
    return isinstance(x, (float, int, Number, np.generic)) or (isinstance(x, np.ndarray) and x.ndim == 0)


class NDArray:
    """A strided view (shape, strides, offset) over a flat buffer (`_handle`) on a device."""

    __slots__ = ("_shape", "_strides", "_offset", "_device", "_handle", "__weakref__")  # made for every op's output
    __hash__ = None

    def __init__(self, other, device: BackendDevice | None = None, dtype=None):
        """A new array (always a copy) from an NDArray or anything numpy accepts.

        dtype None keeps a numpy float64 array as float64 and stores everything else (lists, ints,
        bools, float32) as float32; bool and integer dtypes are stored as float32 (0/1); other
        dtypes raise TypeError.
        """
        if device is not None:
            check_device(device, "NDArray")
        if isinstance(other, NDArray):  # always a copy, as the course's `.to(device) + 0.0`
            device = device if device is not None else other.device
            src = other.copy() if device == other.device else other.to(device)
            self._init(src if dtype is None else src.astype(dtype))
            return
        arr = other if isinstance(other, np.ndarray) else np.asarray(other)
        dtype = dtype_name(default_dtype(other, arr) if dtype is None else dtype)
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"NDArray: cannot store data of dtype {arr.dtype} (numbers only)")
        device = check_device(device if device is not None else default_device(), "NDArray")
        arr = np.asarray(arr, dtype=dtype, order="C")  # (ascontiguousarray would make 0-d arrays 1-d)
        array = NDArray.make(arr.shape, device=device, dtype=dtype)
        device.from_numpy(arr, array._handle)
        self._init(array)

    def _init(self, other: "NDArray") -> None:
        self._shape = other._shape
        self._strides = other._strides
        self._offset = other._offset
        self._device = other._device
        self._handle = other._handle

    @staticmethod
    def compact_strides(shape: Sequence[int]) -> tuple[int, ...]:
        """Row-major strides of a dense array of `shape`."""
        return layout.compact_strides(tuple(shape))

    @staticmethod
    def make(shape, strides=None, device=None, handle=None, offset: int = 0, dtype="float32") -> "NDArray":
        """A new NDArray over `handle` (a fresh buffer of `dtype` when None) with the given layout."""
        array = object.__new__(NDArray)
        array._shape = shape = shape if shape.__class__ is tuple else tuple(shape)
        array._strides = layout.compact_strides(shape) if strides is None else tuple(strides)
        array._offset = offset
        array._device = device = device if device is not None else default_device()
        if handle is None:
            mod = device.mod
            if mod is None:
                device._check()
            dtype = dtype_name(dtype)
            # a course-style device module's Array(size) knows only float32
            size = math.prod(shape)
            handle = mod.Array(size) if dtype == "float32" else mod.Array(size, dtype)
            if not device.counts_memory:
                memory.track(device.name, handle, size, dtype)
        array._handle = handle
        return array

    @staticmethod
    def _empty(shape: tuple, device: BackendDevice, dtype: str) -> "NDArray":
        """A fresh compact array: make()'s common case (every op's output), its arguments already normal. Built
        here rather than by make() (0.1 us more per op, 2% of a 64^3 product) for a device counting its own memory."""
        if not device.counts_memory:
            return NDArray.make(shape, None, device, None, 0, dtype)
        array = object.__new__(NDArray)
        array._shape = shape
        array._strides = layout.compact_strides(shape)
        array._offset = 0
        array._device = device
        array._handle = device.mod.Array(math.prod(shape), dtype)
        return array

    def _new(self, shape) -> "NDArray":
        """A fresh compact array of `shape` on this array's device with its dtype."""
        return NDArray._empty(shape if shape.__class__ is tuple else tuple(shape), self._device, self.dtype)

    # ---- properties ----
    @property
    def shape(self) -> tuple[int, ...]:
        return self._shape

    @property
    def strides(self) -> tuple[int, ...]:
        return self._strides

    @property
    def device(self) -> BackendDevice:
        return self._device

    @property
    def dtype(self) -> str:
        """'float32' or 'float64' (the buffer's element type)."""
        return getattr(self._handle, "dtype", "float32")

    @property
    def ndim(self) -> int:
        return len(self._shape)

    @property
    def size(self) -> int:
        return math.prod(self._shape)

    @property
    def flat(self) -> "NDArray":
        """A writable 1-D view of this array's elements in row-major order.

        When the layout is contiguous (compact arrays, contiguous slices) it views the same buffer,
        so `a.flat[j] = v` changes `a` and every view sharing that memory (numpy's behaviour, and
        what the course's gradient checks `x.flat[j] += eps` rely on). A non-contiguous array
        (permuted, stepped, broadcast, flipped) cannot be viewed in 1-D: it is first made compact
        in place (it gets its own buffer, so it stops sharing memory with the array it was a view
        of), then viewed; writes still reach this array, but no longer its former base.
        """
        if not layout.is_contiguous(self._shape, self._strides):
            self._init(self.compact())
        return NDArray.make((self.size,), (1,), self._device, self._handle, self._offset)

    def __len__(self) -> int:
        if not self._shape:
            raise TypeError("len() of a 0-d NDArray")
        return self._shape[0]

    def __bool__(self) -> bool:
        if self.size != 1:
            raise ValueError(f"the truth value of an NDArray of shape {self._shape} is ambiguous")
        return bool(self.numpy().reshape(()))

    def __float__(self) -> float:
        if self.size != 1:
            raise TypeError(f"only size-1 NDArrays convert to float, got shape {self._shape}")
        return float(self.numpy().reshape(()))

    def __repr__(self) -> str:
        return f"NDArray({self.numpy()}, device={self.device})"

    def __str__(self) -> str:
        return str(self.numpy())

    # ---- data movement ----
    def fill(self, value) -> None:
        """Sets every element to `value` in place (through the view when not compact)."""
        if self.is_compact():
            self._device.fill(self._handle, float(value))
        else:
            self[...] = value

    def to(self, device: BackendDevice) -> "NDArray":
        """This array on `device` (itself when already there, else a copy)."""
        if device == self._device:
            return self
        check_device(device, "NDArray.to")
        return NDArray(self.numpy(), device=device, dtype=self.dtype)

    def astype(self, dtype) -> "NDArray":
        """This array as 'float32' or 'float64' (itself when already of that dtype)."""
        dtype = dtype_name(dtype)
        if dtype == self.dtype:
            return self
        return NDArray(self.numpy().astype(dtype), device=self._device, dtype=dtype)

    def numpy(self) -> np.ndarray:
        """A numpy copy of the elements."""
        return self._device.to_numpy(self._handle, self._shape, self._strides, self._offset)

    def numpy_view(self) -> np.ndarray:
        """A zero-copy numpy view of the elements on a host device (cpu, cpu_numpy, cuda_sim), a copy elsewhere.
        Writes go through; the view keeps the buffer alive, so it is never freed under it. The array must be
        compact (a view over its whole buffer): of any other view numpy_view would be a copy, and writes to it
        lost, so it raises instead (call .compact() first)."""
        if not (self._offset == 0 and self.size == self._handle.size and layout.is_contiguous(self._shape, self._strides)):
            raise ValueError(
                f"numpy_view: the array (shape {self._shape}, strides {self._strides}, offset {self._offset}) is a "
                f"view into a buffer of {self._handle.size} elements, not compact: writes could not go through; "
                "call .compact() first"
            )
        a = self.compact()  # a view of the same buffer (strides of size-1 axes made canonical), never a copy
        handle = a._handle
        buf = getattr(handle, "array", None)  # cpu_numpy's buffer is a numpy array already
        if a._device.name == "cuda_sim":  # simulated device memory is host memory (buffer protocol)
            buf = np.asarray(handle)[: handle.size]
        elif buf is None and a._device.name == "cpu":
            raw = (CTYPES[a.dtype] * handle.size).from_address(handle.ptr())
            raw.owner = a  # numpy's view references `raw`, and `raw` the NDArray that owns the memory
            buf = np.ctypeslib.as_array(raw)
        return a.numpy() if buf is None else buf.reshape(a._shape)

    # numpy interop (numpy_interop.py): numpy operands of operators give NDArrays, numpy functions work on copies
    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        if copy is False:
            raise ValueError("NDArray: conversion to numpy always copies (the buffer lives on a device)")
        arr = self.numpy()
        return arr if dtype is None else arr.astype(dtype)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return numpy_interop.apply_ufunc(NDArray, ufunc, method, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        return numpy_interop.apply_function(NDArray, func, args, kwargs)

    def is_compact(self) -> bool:
        """Dense row-major over the whole buffer from its start (so flat kernels may read it directly)."""
        return (self._offset == 0 and self._strides == layout.compact_strides(self._shape)
                and math.prod(self._shape) == self._handle.size)

    def compact(self) -> "NDArray":
        """This array if compact; a dense view if the layout already is (no copy); else a dense copy."""
        shape, strides = self._shape, self._strides
        if self._offset == 0 and math.prod(shape) == self._handle.size:
            if strides == layout.compact_strides(shape):  # the common case, first
                return self
            if layout.is_contiguous(shape, strides):
                return NDArray.make(shape, None, self._device, self._handle, self._offset)
        return self.copy()

    def copy(self) -> "NDArray":
        """A dense row-major copy (always a new buffer)."""
        out = self._new(self._shape)
        self._device.compact(self._handle, out._handle, self._shape, self._strides, self._offset)
        return out

    def as_strided(self, shape, strides) -> "NDArray":
        """A view with an arbitrary layout over the same buffer (checked to stay inside it)."""
        shape = layout.as_shape(shape, "as_strided")
        strides = tuple(int(s) for s in strides)
        if len(shape) != len(strides):
            raise ValueError(f"as_strided: shape {shape} and strides {strides} differ in length")
        layout.check_bounds("as_strided", shape, strides, self._offset, self._handle.size)
        return NDArray.make(shape, strides, self._device, self._handle, self._offset)

    # ---- views ----
    def reshape(self, new_shape) -> "NDArray":
        """A view with a new shape (one -1 allowed); the layout must be contiguous."""
        new_shape = layout.resolve_reshape(self._shape, new_shape)
        if not layout.is_contiguous(self._shape, self._strides):
            raise ValueError(
                f"reshape: cannot view shape {self._shape} with strides {self._strides} as {new_shape}; "
                "call .compact() first"
            )
        return NDArray.make(new_shape, None, self._device, self._handle, self._offset)

    def permute(self, new_axes) -> "NDArray":
        """A view with the axes reordered: new axis i is old axis new_axes[i]."""
        axes = tuple(new_axes)
        plain = all(a.__class__ is int for a in axes) and sorted(axes) == list(range(len(self._shape)))
        if not plain:  # validate and normalise (negative axes, numpy ints, errors)
            axes = layout.permutation(new_axes, len(self._shape), self._shape)
        return NDArray.make(
            tuple(self._shape[a] for a in axes),
            tuple(self._strides[a] for a in axes),
            self._device,
            self._handle,
            self._offset,
        )

    def broadcast_to(self, new_shape) -> "NDArray":
        """A view repeating size-1 (or missing leading) axes with stride 0, as numpy does."""
        new_shape = layout.as_shape(new_shape, "broadcast_to")
        strides = layout.broadcast_strides(self._shape, self._strides, new_shape)
        return NDArray.make(new_shape, strides, self._device, self._handle, self._offset)

    def process_slice(self, sl: slice, dim: int) -> slice:
        """`sl` on axis `dim` with plain int start, stop and step, as Python's slicing reads it (negative bounds and
        steps allowed). The course's API and chapter 04's exercise; __getitem__ reads its slices the same way
        (layout.index_view through layout.slice_bounds)."""
        return slice(*layout.slice_bounds(sl, self._shape, dim))

    def __getitem__(self, idxs) -> "NDArray":
        """A view selected by ints, slices and `...`; course semantics: no axis is dropped."""
        shape, strides, offset = layout.index_view(self._shape, self._strides, self._offset, idxs)
        return NDArray.make(shape, strides, self._device, self._handle, offset)

    def __setitem__(self, idxs, other) -> None:
        """Writes `other` (a scalar, or an array broadcastable to the view) into the view, in place.

        An array whose shape differs from the view's only by size-1 axes is accepted too, as the
        course's `out[i] = a` (view (1, m, n), a (m, n)) needs.
        """
        view = self[idxs]
        if other.__class__ is not NDArray and _is_scalar(other):
            self._device.scalar_setitem(view.size, float(other), self._handle, view._shape, view._strides, view._offset)
            return
        other = _as_ndarray(other, self._device, self.dtype)
        if other._shape != view._shape:
            if layout.squeezed(other._shape) == layout.squeezed(view._shape):
                other = other.compact().reshape(view._shape)
            else:
                try:
                    other = other.broadcast_to(view._shape)
                except ValueError:
                    raise ValueError(
                        f"NDArray setitem: cannot assign shape {other.shape} to a view of shape {view.shape}"
                    ) from None
        other = other.astype(self.dtype).to(self._device)
        # the source must be dense, and must not share the buffer it is written into
        other = other.copy() if other._handle is self._handle else other.compact()
        self._device.ewise_setitem(other._handle, self._handle, view._shape, view._strides, view._offset)

    # ---- elementwise ----
    def _binary(self, other, ewise: str, scalar: str, op: str) -> "NDArray":
        """Applies a device kernel to (self, other): `scalar` for a number, `ewise` for an equal-shape array."""
        if isinstance(other, NDArray):
            b = other
        elif _is_scalar(other):
            a = self.compact()
            out = a._new(a._shape)
            kernel(a._device, scalar)(a._handle, float(other), out._handle)
            return out
        else:
            b = _as_ndarray(other, self._device, self.dtype)
        if b._device is not self._device and b._device != self._device:
            raise ValueError(f"NDArray {op}: operands on different devices ({self.device} and {b.device})")
        if b._shape != self._shape:
            raise ValueError(f"NDArray {op}: shapes {self.shape} and {b.shape} differ (broadcast explicitly)")
        a = self
        dtype = a.dtype
        if dtype != b.dtype:  # promote as numpy does: float32 op float64 -> float64
            a, b, dtype = a.astype("float64"), b.astype("float64"), "float64"
        a, b = a.compact(), b.compact()
        out = NDArray._empty(a._shape, a._device, dtype)
        kernel(a._device, ewise)(a._handle, b._handle, out._handle)
        return out

    def _unary(self, kernel_name: str) -> "NDArray":
        a = self.compact()
        out = a._new(a._shape)
        kernel(a._device, kernel_name)(a._handle, out._handle)
        return out

    def __add__(self, other):
        return self._binary(other, "ewise_add", "scalar_add", "add")

    __radd__ = __add__

    def __sub__(self, other):
        return self + self._negated(other)

    def __rsub__(self, other):
        return (-self) + other

    def __mul__(self, other):
        return self._binary(other, "ewise_mul", "scalar_mul", "mul")

    __rmul__ = __mul__

    def __truediv__(self, other):
        return self._binary(other, "ewise_div", "scalar_div", "div")

    def __rtruediv__(self, other):
        return self._lift(other) / self

    def __neg__(self):
        return self * (-1.0)

    def __pow__(self, other):
        return self._binary(other, "ewise_power", "scalar_power", "power")

    def __rpow__(self, other):
        return self._lift(other) ** self

    def _negated(self, other):
        """-other for a scalar or an array-like right operand."""
        return -float(other) if _is_scalar(other) else -_as_ndarray(other, self._device, self.dtype)

    def _lift(self, other) -> "NDArray":
        """`other` as an NDArray shaped like self (the left operand of a reflected operator)."""
        if _is_scalar(other):
            return self._device.full(self._shape, float(other), self.dtype)
        return _as_ndarray(other, self._device, self.dtype)

    def maximum(self, other):
        return self._binary(other, "ewise_maximum", "scalar_maximum", "maximum")

    # comparisons give 0/1 floats; built from the eq and ge kernels so that NaN compares False as in numpy
    def __eq__(self, other):
        return self._binary(other, "ewise_eq", "scalar_eq", "eq")

    def __ge__(self, other):
        return self._binary(other, "ewise_ge", "scalar_ge", "ge")

    def __ne__(self, other):
        return 1 - (self == other)

    def __le__(self, other):
        return (-self) >= self._negated(other)

    def __gt__(self, other):
        return (self >= other) * (self != other)

    def __lt__(self, other):
        return (self <= other) * (self != other)

    def log(self):
        return self._unary("ewise_log")

    def exp(self):
        return self._unary("ewise_exp")

    def tanh(self):
        return self._unary("ewise_tanh")

    # ---- matmul ----
    def __matmul__(self, other) -> "NDArray":
        """Matrix product of (..., m, n) and (..., n, p); leading (batch) axes broadcast as numpy's."""
        b = other if other.__class__ is NDArray else _as_ndarray(other, self._device, self.dtype)
        if b._device is not self._device and b._device != self._device:
            raise ValueError(f"NDArray matmul: operands on different devices ({self.device} and {b.device})")
        sa, sb = self._shape, b._shape
        if len(sa) < 2 or len(sb) < 2 or sa[-1] != sb[-2]:
            raise ValueError(
                f"NDArray matmul: shapes {self.shape} and {b.shape} are not aligned (need (..., m, n) @ (..., n, p))"
            )
        a = self
        dtype = a.dtype
        if dtype != b.dtype:
            a, b, dtype = a.astype("float64"), b.astype("float64"), "float64"
        m, n, p = sa[-2], sa[-1], sb[-1]
        mod = a._device.mod
        kernel = getattr(mod, "matmul_strided", None)
        if len(sa) == 2 == len(sb) and n and kernel is not None:
            # the common 2-D product: no batch axes to broadcast, the kernel called straight from its module (a
            # 64 x 64 product takes ~5 us: every microsecond of Python shows, even passing strides as tuples)
            out = NDArray._empty((m, p), a._device, dtype)
            (sa0, sa1), (sb0, sb1), a_off, b_off = a._strides, b._strides, a._offset, b._offset
            if sa1 == 1 == sb1 and sa0 == n and sb0 == p and a_off == 0 == b_off:
                mod.matmul(a._handle, b._handle, out._handle, m, n, p)
            else:
                kernel(a._handle, b._handle, out._handle, 1, m, n, p, a_off, (0, sa0, sa1), b_off, (0, sb0, sb1))
            return out
        try:
            batch = tuple(np.broadcast_shapes(a._shape[:-2], b._shape[:-2]))
        except ValueError:
            raise ValueError(f"NDArray matmul: batch shapes of {self.shape} and {b.shape} do not broadcast") from None
        if n == 0:  # an empty inner dimension sums nothing
            return a._device.full(batch + (m, p), 0.0, a.dtype)
        if kernel is None:
            return course_fallback.matmul_batched(a, b, batch, m, n, p)
        a = a.broadcast_to(batch + (m, n))
        b = b.broadcast_to(batch + (n, p))
        a_strides, b_strides = layout.batch_strides(a._shape, a._strides), layout.batch_strides(b._shape, b._strides)
        if a_strides is None:
            a, a_strides = a.compact(), (m * n, n, 1)
        if b_strides is None:
            b, b_strides = b.compact(), (n * p, p, 1)
        out = a._new(batch + (m, p))
        a._device.matmul_strided(
            a._handle, b._handle, out._handle, math.prod(batch), m, n, p, a._offset, a_strides, b._offset, b_strides
        )
        return out

    def __rmatmul__(self, other) -> "NDArray":
        return _as_ndarray(other, self._device, self.dtype) @ self

    # ---- reductions ----
    def _reduce(self, axis, keepdims: bool, kernel_name: str, op: str) -> "NDArray":
        """Reduces over `axis` (None, int or tuple) with the device's (outer, reduce, inner) kernel."""
        shape = self._shape
        axes = layout.normalize_axes(axis, len(shape), f"NDArray {op}")
        if kernel_name == "reduce_max_axis" and any(shape[ax] == 0 for ax in axes):
            raise ValueError(f"NDArray {op}: zero-size axis in shape {shape} has no maximum")
        if keepdims:
            out_shape = tuple(1 if i in axes else s for i, s in enumerate(shape))
        else:
            out_shape = tuple(s for i, s in enumerate(shape) if i not in axes)
        # bring the reduced axes together (their order kept), permuting only when they are not already
        first = axes[0] if axes else 0
        a = self
        if axes != tuple(range(first, first + len(axes))):
            keep = tuple(i for i in range(len(shape)) if i not in axes)
            a, first = self.permute(keep + axes), len(keep)
        a = a.compact()
        outer = math.prod(a._shape[:first])
        reduce = math.prod(a._shape[first : first + len(axes)])
        inner = math.prod(a._shape[first + len(axes) :])
        out = a._new(out_shape)
        if reduce == 0:  # an empty sum is zero
            out.fill(0.0)
        elif outer * inner == 0:
            pass
        elif hasattr(a._device.mod, kernel_name):
            kernel(a._device, kernel_name)(a._handle, out._handle, outer, reduce, inner)
        else:
            course_fallback.reduce_last_axis(a, out, kernel_name, outer, reduce, inner)
        return out

    def sum(self, axis=None, keepdims: bool = False) -> "NDArray":
        """Sum over an axis, a tuple of axes, or everything (axis=None gives shape ())."""
        return self._reduce(axis, keepdims, "reduce_sum_axis", "sum")

    def max(self, axis=None, keepdims: bool = False) -> "NDArray":
        """Maximum over an axis, a tuple of axes, or everything (axis=None gives shape ())."""
        return self._reduce(axis, keepdims, "reduce_max_axis", "max")

    # ---- course hw4 additions ----
    def flip(self, axes) -> "NDArray":
        """A compact copy reversed along `axes` (a negative-stride view, then compact)."""
        axes = layout.normalize_axes(axes, self.ndim, "NDArray flip")
        offset, strides = self._offset, list(self._strides)
        for ax in axes:
            if self._shape[ax]:
                offset += (self._shape[ax] - 1) * strides[ax]
            strides[ax] = -strides[ax]
        return NDArray.make(self._shape, tuple(strides), self._device, self._handle, offset).copy()

    def pad(self, axes) -> "NDArray":
        """Zero padding: `axes` holds one (left, right) pair per axis, as np.pad's pad_width."""
        try:
            axes = tuple(tuple(int(v) for v in pair) for pair in axes)
        except TypeError:
            raise TypeError(f"pad: need one (left, right) pair per axis of {self._shape}, got {axes!r}") from None
        if len(axes) != self.ndim or any(len(p) != 2 or min(p) < 0 for p in axes):
            raise ValueError(f"pad: need one non-negative (left, right) pair per axis of {self._shape}, got {axes}")
        out = self._device.full(tuple(s + l + r for s, (l, r) in zip(self._shape, axes)), 0.0, self.dtype)
        out[tuple(slice(l, l + s) for s, (l, _) in zip(self._shape, axes))] = self
        return out


BackendDevice.array_type = NDArray  # the arrays a device makes (devices.py knows no NDArray)


def _as_ndarray(x, device: BackendDevice, dtype: str) -> NDArray:
    """`x` itself when an NDArray, else a new one on `device` (numpy float64 data stays float64)."""
    if isinstance(x, NDArray):
        return x
    arr = np.asarray(x)
    return NDArray(arr, device=device, dtype=default_dtype(x, arr, dtype))


# ---- module-level functions (numpy-style names, used as `array_api.<fn>` by the ops) ----


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
    """One Adam update in a single fused kernel (devices with `adam_step`): (new param, m, v). m and v are None at
    the first step, where the moments start from zero (new arrays are made), and are updated in place after it:
    they are the optimizer's own state, while the parameter's old array may still be read elsewhere."""
    if param.shape != grad.shape:
        raise ValueError(f"adam_step: parameter shape {param.shape} and gradient shape {grad.shape} differ")
    param, grad = param.compact(), grad.compact()
    first = m is None or v is None
    if first:
        m, v = param, param  # not read
        out = [param._new(param.shape) for _ in range(3)]
    else:
        m, v = m.compact(), v.compact()
        out = [param._new(param.shape), m, v]
    param.device.adam_step(param._handle, grad._handle, m._handle, v._handle, *(o._handle for o in out), lr, beta1,
                           beta2, eps, weight_decay, 1 - beta1**t, 1 - beta2**t, first)
    return out[0], out[1], out[2]
