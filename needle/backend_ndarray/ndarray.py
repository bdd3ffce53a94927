"""NDArray: a strided n-dimensional array over a flat device buffer.

All shape, stride and offset logic lives here in Python (arithmetic in `layout.py`); a device
module only provides flat-buffer kernels (`compact`, `ewise_add`, `reduce_sum`, `matmul`, ...).
Views (reshape, permute, broadcast_to, slicing) share the buffer; `compact()` copies only when the
layout is not dense.
"""
from __future__ import annotations

import ctypes
import math
import os
import operator
from numbers import Number
from typing import Iterable, Sequence

import numpy as np

from ..labels import integer_labels
from . import layout, memory, ndarray_backend_cuda, ndarray_backend_numpy

# Idle OpenMP threads sleep instead of spinning: between kernels, Python runs on one core, and spinning
# workers steal it (and every other process's) time; measured 2.6 vs 33 ms per MLP step on 2 busy cores.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

try:  # the compiled CPU backend; without it needle still works on cpu_numpy()
    if os.environ.get("NEEDLE_CPU_MODULE"):  # another build of it (tools/cpu_build.py: clang, no OpenMP)
        import importlib.util
        _spec = importlib.util.spec_from_file_location(__package__ + ".ndarray_backend_cpu", os.environ["NEEDLE_CPU_MODULE"])
        ndarray_backend_cpu = importlib.util.module_from_spec(_spec)
        _spec.loader.exec_module(ndarray_backend_cpu)
    else:
        from . import ndarray_backend_cpu
except ImportError as _cpu_import_error:  # pragma: no cover - depends on the build
    ndarray_backend_cpu = None
    _CPU_MISSING = f"the C++ CPU backend is not built ({_cpu_import_error}); reinstall with `pip install -e .`"
else:
    _CPU_MISSING = ""

__all__ = [  # the course's public names (`from .ndarray import *`); the numpy-style functions are in array_functions
    "BackendDevice", "NDArray", "cpu", "cpu_numpy", "cuda", "cuda_sim", "default_device", "all_devices", "prod",
]

_FLOAT_DTYPES = ("float32", "float64")
_CTYPES = {"float32": ctypes.c_float, "float64": ctypes.c_double}
# dtypes NDArray stores as float32: booleans and integers become 0/1 or integral floats
_AS_FLOAT32 = {"bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float16"}


def _dtype_name(dtype) -> str:
    """Normalises a dtype spec ('float32', np.float64, 'bool', ...) to 'float32' or 'float64'."""
    if dtype is None:
        return "float32"
    if dtype.__class__ is str and dtype in _FLOAT_DTYPES:  # fast path (np.dtype objects compare equal too)
        return dtype
    try:
        name = np.dtype(dtype).name
    except TypeError:
        raise TypeError(f"NDArray: unknown dtype {dtype!r} (use 'float32' or 'float64')") from None
    if name in _FLOAT_DTYPES:
        return name
    if name in _AS_FLOAT32:
        return "float32"
    raise TypeError(f"NDArray: unsupported dtype {name!r} (use 'float32' or 'float64')")


def prod(x: Iterable[int]) -> int:
    """Product of a sequence of ints (1 for an empty one), as the course's helper."""
    return math.prod(x)


class BackendDevice:
    """A device: a name plus the module holding its flat-buffer kernels (attributes forward to it)."""

    def __init__(self, name: str, mod, missing: str = ""):
        self.name = name
        self.mod = mod
        self._missing = missing or f"device {name}() is not available on this machine"

    def __eq__(self, other) -> bool:
        return isinstance(other, BackendDevice) and self.name == other.name

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return self.name + "()"

    def __getattr__(self, name: str):
        mod = self.__dict__.get("mod")
        if mod is None:
            if name.startswith("__"):  # copy/pickle probing optional hooks: not a use of the device
                raise AttributeError(name)
            raise RuntimeError(self.__dict__.get("_missing", "device not available"))
        try:
            return getattr(mod, name)
        except AttributeError:
            raise AttributeError(f"device {self.name}() has no kernel {name!r}") from None

    # a device is a stateless handle on a kernel module: copies are the device itself, pickles name it
    def __copy__(self) -> "BackendDevice":
        return self

    def __deepcopy__(self, memo) -> "BackendDevice":
        return self

    def __reduce__(self):
        if self.name not in _FACTORIES:
            raise TypeError(f"device {self} cannot be pickled: only {', '.join(_FACTORIES)} can")
        return _FACTORIES[self.name], ()

    def enabled(self) -> bool:
        return self.mod is not None

    def _check(self) -> None:
        if self.mod is None:
            raise RuntimeError(self._missing)

    def randn(self, *shape, dtype="float32") -> "NDArray":
        """Standard normal samples, drawn from numpy's global RNG as the course does."""
        self._check()
        return NDArray(np.random.randn(*shape).astype(_dtype_name(dtype)), device=self)

    def rand(self, *shape, dtype="float32") -> "NDArray":
        """Uniform [0, 1) samples, drawn from numpy's global RNG as the course does."""
        self._check()
        return NDArray(np.random.rand(*shape).astype(_dtype_name(dtype)), device=self)

    def one_hot(self, n: int, i, dtype="float32") -> "NDArray":
        """Rows of the n x n identity selected by the integer labels `i` (the course's np.eye(n)[i])."""
        self._check()
        i = integer_labels(i, n, "one_hot")
        rows = np.zeros(i.shape + (n,), dtype=_dtype_name(dtype))  # never the n x n identity itself
        np.put_along_axis(rows, i[..., None], 1.0, axis=-1)
        return NDArray(rows, device=self)

    def empty(self, shape, dtype="float32") -> "NDArray":
        """An uninitialised compact array."""
        self._check()
        return NDArray.make(layout.as_shape(shape, "empty"), device=self, dtype=dtype)

    def full(self, shape, fill_value, dtype="float32") -> "NDArray":
        """A compact array with every element `fill_value`."""
        arr = self.empty(shape, dtype)
        arr.fill(fill_value)
        return arr

    def zeros(self, *shape, dtype="float32") -> "NDArray":
        return self.full(_shape_args(shape), 0.0, dtype)

    def ones(self, *shape, dtype="float32") -> "NDArray":
        return self.full(_shape_args(shape), 1.0, dtype)


def _shape_args(shape: tuple) -> tuple:
    """`f(2, 3)` and `f((2, 3))` both mean shape (2, 3)."""
    return shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape


_CPU = BackendDevice("cpu", ndarray_backend_cpu, _CPU_MISSING)
_CPU_NUMPY = BackendDevice("cpu_numpy", ndarray_backend_numpy)
_CUDA_MOD, _CUDA_MISSING = ndarray_backend_cuda.gpu()
_CUDA = BackendDevice(
    "cuda", _CUDA_MOD,
    f"cuda() is not available: {_CUDA_MISSING}. ndl.cuda_sim() runs the same CUDA kernels on the CPU; or use cpu().",
)
_CUDA_SIM = BackendDevice(
    "cuda_sim", ndarray_backend_cuda.simulator(), "cuda_sim() is not available: the CUDA simulator was not built"
)


def cpu() -> BackendDevice:
    """The C++ CPU device."""
    return _CPU


def cpu_numpy() -> BackendDevice:
    """The pure-numpy device (the course's reference backend)."""
    return _CPU_NUMPY


def cuda() -> BackendDevice:
    """The CUDA device (a GPU through CuPy); `enabled()` is False without one."""
    return _CUDA


def cuda_sim() -> BackendDevice:
    """The CUDA simulator: cuda()'s kernels compiled for the CPU, every thread a fiber with real barriers."""
    return _CUDA_SIM


def default_device() -> BackendDevice:
    """Where arrays go when no device is named: cpu() when the C++ backend is built, else cpu_numpy();
    NEEDLE_DEVICE=cuda_sim (or cpu, cpu_numpy, cuda) chooses another."""
    return _DEFAULT


_FACTORIES = {"cpu": cpu, "cuda": cuda, "cuda_sim": cuda_sim, "cpu_numpy": cpu_numpy}


def _default_from_env() -> BackendDevice:
    name = os.environ.get("NEEDLE_DEVICE", "").strip().removesuffix("()")
    if not name:
        return _CPU if _CPU.mod is not None else _CPU_NUMPY
    if name not in _FACTORIES:
        raise RuntimeError(f"NEEDLE_DEVICE={name!r} is not a device; use one of {', '.join(_FACTORIES)}")
    device = _FACTORIES[name]()
    device._check()
    return device


_DEFAULT = _default_from_env()


def all_devices() -> list[BackendDevice]:
    """Every device the course knows, enabled or not (tests skip the disabled ones)."""
    return [cpu(), cuda(), cuda_sim(), cpu_numpy()]


def _check_device(device, op: str) -> BackendDevice:
    if not isinstance(device, BackendDevice):
        raise TypeError(f"{op}: expected a device such as cpu() or cpu_numpy(), got {device!r}")
    device._check()
    return device


def _is_scalar(x) -> bool:
    return isinstance(x, (float, int, Number, np.generic)) or (isinstance(x, np.ndarray) and x.ndim == 0)


class NDArray:
    """A strided view (shape, strides, offset) over a flat buffer (`_handle`) on a device."""

    __hash__ = None

    def __init__(self, other, device: BackendDevice | None = None, dtype=None):
        """A new array (always a copy) from an NDArray or anything numpy accepts.

        dtype None keeps a numpy float64 array as float64 and stores everything else (lists, ints,
        bools, float32) as float32; bool and integer dtypes are stored as float32 (0/1); other
        dtypes raise TypeError.
        """
        if device is not None:
            _check_device(device, "NDArray")
        if isinstance(other, NDArray):  # always a copy, as the course's `.to(device) + 0.0`
            device = device if device is not None else other.device
            src = other.copy() if device == other.device else other.to(device)
            self._init(src if dtype is None else src.astype(dtype))
            return
        arr = other if isinstance(other, np.ndarray) else np.asarray(other)
        dtype = _dtype_name(_default_dtype(other, arr) if dtype is None else dtype)
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"NDArray: cannot store data of dtype {arr.dtype} (numbers only)")
        device = _check_device(device if device is not None else default_device(), "NDArray")
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
            dtype = _dtype_name(dtype)
            # a course-style device module's Array(size) knows only float32
            size = math.prod(shape)
            handle = mod.Array(size) if dtype == "float32" else mod.Array(size, dtype)
            memory.track(device.name, handle, size, dtype)
        array._handle = handle
        return array

    def _new(self, shape) -> "NDArray":
        """A fresh compact array of `shape` on this array's device with its dtype."""
        return NDArray.make(shape, device=self._device, dtype=self.dtype)

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
        _check_device(device, "NDArray.to")
        return NDArray(self.numpy(), device=device, dtype=self.dtype)

    def astype(self, dtype) -> "NDArray":
        """This array as 'float32' or 'float64' (itself when already of that dtype)."""
        dtype = _dtype_name(dtype)
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
            raw = (_CTYPES[a.dtype] * handle.size).from_address(handle.ptr())
            raw.owner = a  # numpy's view references `raw`, and `raw` the NDArray that owns the memory
            buf = np.ctypeslib.as_array(raw)
        return a.numpy() if buf is None else buf.reshape(a._shape)

    # numpy interop: an operator with a numpy operand gives an NDArray (`np.float32(2) * a`,
    # `x @ a`); numpy functions and other ufuncs (`np.sum(a)`, `np.abs(a)`) work on a copy of the
    # values and return numpy results, as for any array-like.
    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        if copy is False:
            raise ValueError("NDArray: conversion to numpy always copies (the buffer lives on a device)")
        arr = self.numpy()
        return arr if dtype is None else arr.astype(dtype)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        ops = _OPERATOR_UFUNCS.get(ufunc)
        if ops is not None and method == "__call__" and not kwargs and len(inputs) == 2:
            a, b = inputs
            return ops[0](a, b) if isinstance(a, NDArray) else ops[1](b, a)
        _refuse_numpy_writes(ufunc.__name__, kwargs.get("out", ()))
        return getattr(ufunc, method)(*_numpy_values(inputs), **kwargs)

    def __array_function__(self, func, types, args, kwargs):
        out = kwargs.get("out")
        targets = (out if isinstance(out, tuple) else (out,)) + (args[:1] if func in _NUMPY_WRITERS else ())
        _refuse_numpy_writes(func.__name__, targets)
        return func(*_numpy_values(args), **_numpy_values(kwargs))

    def is_compact(self) -> bool:
        """Dense row-major over the whole buffer from its start (so flat kernels may read it directly)."""
        return (self._offset == 0 and self._strides == layout.compact_strides(self._shape)
                and math.prod(self._shape) == self._handle.size)

    def compact(self) -> "NDArray":
        """This array if compact; a dense view if the layout already is (no copy); else a dense copy."""
        shape, strides = self._shape, self._strides
        size = math.prod(shape)
        if self._offset == 0 and size == self._handle.size and layout.is_contiguous(shape, strides):
            if strides == layout.compact_strides(shape):
                return self
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
        """Normalises a slice against axis `dim` as numpy does (negative starts and steps allowed)."""
        start, stop, step = sl.indices(self._shape[dim])
        return slice(start, stop, step)

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
            _kernel(a._device, scalar)(a._handle, float(other), out._handle)
            return out
        else:
            b = _as_ndarray(other, self._device, self.dtype)
        if b._device is not self._device and b._device != self._device:
            raise ValueError(f"NDArray {op}: operands on different devices ({self.device} and {b.device})")
        if b._shape != self._shape:
            raise ValueError(f"NDArray {op}: shapes {self.shape} and {b.shape} differ (broadcast explicitly)")
        a = self
        if a.dtype != b.dtype:  # promote as numpy does: float32 op float64 -> float64
            a, b = a.astype("float64"), b.astype("float64")
        a, b = a.compact(), b.compact()
        out = a._new(a._shape)
        _kernel(a._device, ewise)(a._handle, b._handle, out._handle)
        return out

    def _unary(self, kernel: str) -> "NDArray":
        a = self.compact()
        out = a._new(a._shape)
        _kernel(a._device, kernel)(a._handle, out._handle)
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
        b = _as_ndarray(other, self._device, self.dtype)
        if b._device is not self._device and b._device != self._device:
            raise ValueError(f"NDArray matmul: operands on different devices ({self.device} and {b.device})")
        if self.ndim < 2 or b.ndim < 2 or self._shape[-1] != b._shape[-2]:
            raise ValueError(
                f"NDArray matmul: shapes {self.shape} and {b.shape} are not aligned (need (..., m, n) @ (..., n, p))"
            )
        a = self
        if a.dtype != b.dtype:
            a, b = a.astype("float64"), b.astype("float64")
        m, n, p = a._shape[-2], a._shape[-1], b._shape[-1]
        if len(a._shape) == 2 == len(b._shape) and n and hasattr(a._device.mod, "matmul_strided"):
            # the common 2-D product: no batch axes to broadcast (half the Python time of a 64 x 64 product)
            out = a._new((m, p))
            a._device.matmul_strided(a._handle, b._handle, out._handle, 1, m, n, p, a._offset, (0,) + a._strides,
                                     b._offset, (0,) + b._strides)
            return out
        try:
            batch = tuple(np.broadcast_shapes(a._shape[:-2], b._shape[:-2]))
        except ValueError:
            raise ValueError(f"NDArray matmul: batch shapes of {self.shape} and {b.shape} do not broadcast") from None
        if n == 0:  # an empty inner dimension sums nothing
            return a._device.full(batch + (m, p), 0.0, a.dtype)
        if not hasattr(a._device.mod, "matmul_strided"):
            return a._matmul_course(b, batch, m, n, p)
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

    def _matmul_course(self, other: "NDArray", batch, m, n, p) -> "NDArray":
        """The course's path for a device with only `matmul`/`matmul_tiled`: one 2-D product per batch."""
        if not batch:
            return _matmul_2d(self.compact(), other.compact())
        out = self._new(batch + (m, p))
        a_all = self.broadcast_to(batch + (m, n))
        b_all = other.broadcast_to(batch + (n, p))
        for idx in np.ndindex(*batch):
            a, b = a_all[idx].compact().reshape((m, n)), b_all[idx].compact().reshape((n, p))
            out[idx] = _matmul_2d(a, b)
        return out

    # ---- reductions ----
    def _reduce(self, axis, keepdims: bool, kernel: str, op: str) -> "NDArray":
        """Reduces over `axis` (None, int or tuple) with the device's (outer, reduce, inner) kernel."""
        shape = self._shape
        axes = layout.normalize_axes(axis, len(shape), f"NDArray {op}")
        if kernel == "reduce_max_axis" and any(shape[ax] == 0 for ax in axes):
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
        elif hasattr(a._device.mod, kernel):
            _kernel(a._device, kernel)(a._handle, out._handle, outer, reduce, inner)
        else:  # course device: reduce contiguous blocks of the last axis only
            if inner != 1:
                a = a.reshape((outer, reduce, inner)).permute((0, 2, 1)).compact()
            _kernel(a._device, kernel[: -len("_axis")])(a._handle, out._handle, reduce)
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


# ufunc -> (op(ndarray, other), reflected op(ndarray, other) for `other <op> ndarray`)
_OPERATOR_UFUNCS = {
    np.add: (operator.add, NDArray.__radd__),
    np.subtract: (operator.sub, NDArray.__rsub__),
    np.multiply: (operator.mul, NDArray.__rmul__),
    np.true_divide: (operator.truediv, NDArray.__rtruediv__),
    np.power: (operator.pow, NDArray.__rpow__),
    np.matmul: (operator.matmul, NDArray.__rmatmul__),
    np.equal: (operator.eq, operator.eq),
    np.not_equal: (operator.ne, operator.ne),
    np.greater: (operator.gt, operator.lt),
    np.greater_equal: (operator.ge, operator.le),
    np.less: (operator.lt, operator.gt),
    np.less_equal: (operator.le, operator.ge),
}


# numpy functions that write into their first argument: on an NDArray they would write into a copy
_NUMPY_WRITERS = {np.copyto, np.put, np.place, np.putmask, np.fill_diagonal, np.put_along_axis}


def _refuse_numpy_writes(name: str, targets) -> None:
    """numpy works on copies of NDArrays, so a write into one would be lost: refuse it."""
    if any(isinstance(t, NDArray) for t in targets):
        raise TypeError(f"numpy {name}: cannot write into an NDArray (use NDArray operations or setitem)")


def _numpy_values(x):
    """`x` with every NDArray (also inside lists, tuples and dicts) replaced by a numpy copy."""
    if isinstance(x, NDArray):
        return x.numpy()
    if isinstance(x, (list, tuple)):
        return type(x)(_numpy_values(v) for v in x)
    if isinstance(x, dict):
        return {k: _numpy_values(v) for k, v in x.items()}
    return x


def _kernel(device: BackendDevice, name: str):
    """The device's kernel `name`, or a clear error when a (learner's) device module lacks it."""
    kernel = getattr(device.mod, name, None)
    if kernel is None:
        getattr(device, name)  # raises the device's own message
    return kernel


def _matmul_2d(a: NDArray, b: NDArray) -> NDArray:
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


def _default_dtype(x, arr: np.ndarray, fallback: str = "float32") -> str:
    """float64 for numpy float64 data (kept at full precision), else `fallback`."""
    return "float64" if isinstance(x, (np.ndarray, np.generic)) and arr.dtype == np.float64 else fallback


def _as_ndarray(x, device: BackendDevice, dtype: str) -> NDArray:
    """`x` itself when an NDArray, else a new one on `device` (numpy float64 data stays float64)."""
    if isinstance(x, NDArray):
        return x
    arr = np.asarray(x)
    return NDArray(arr, device=device, dtype=_default_dtype(x, arr, dtype))
