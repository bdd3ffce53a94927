"""NDArray: a strided n-dimensional array over a flat device buffer.

All shape, stride and offset logic lives here in Python; a device module only provides flat-buffer
kernels (`compact`, `ewise_add`, `reduce_sum`, `matmul`, ...). Views (reshape, permute,
broadcast_to, slicing) share the buffer; `compact()` copies only when the layout is not dense.
"""
from __future__ import annotations

import builtins
import math
import operator
from numbers import Number
from typing import Iterable, Sequence

import numpy as np

from . import ndarray_backend_numpy

try:  # the compiled CPU backend; without it needle still works on cpu_numpy()
    from . import ndarray_backend_cpu
except ImportError as _cpu_import_error:  # pragma: no cover - depends on the build
    ndarray_backend_cpu = None
    _CPU_MISSING = f"the C++ CPU backend is not built ({_cpu_import_error}); reinstall with `pip install -e .`"
else:
    _CPU_MISSING = ""

_FLOAT_DTYPES = ("float32", "float64")
# dtypes NDArray stores as float32: booleans and integers become 0/1 or integral floats
_AS_FLOAT32 = {"bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float16"}


def _dtype_name(dtype) -> str:
    """Normalises a dtype spec ('float32', np.float64, ...) to 'float32' or 'float64'."""
    if dtype is None:
        return "float32"
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
    return math.prod(x)


class BackendDevice:
    """A device: a name plus the module holding its flat-buffer kernels."""

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
            raise RuntimeError(self.__dict__.get("_missing", "device not available"))
        try:
            return getattr(mod, name)
        except AttributeError:
            raise AttributeError(f"device {self.name}() has no kernel {name!r}") from None

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
        self._check()
        i = np.asarray(i.numpy() if isinstance(i, NDArray) else i).astype(np.int64)
        if i.size and (i.min() < 0 or i.max() >= n):
            raise IndexError(f"one_hot: labels must lie in [0, {n}), got min {i.min()} max {i.max()}")
        return NDArray(np.eye(n, dtype=_dtype_name(dtype))[i], device=self)

    def empty(self, shape, dtype="float32") -> "NDArray":
        self._check()
        return NDArray.make(_as_shape(shape, "empty"), device=self, dtype=dtype)

    def full(self, shape, fill_value, dtype="float32") -> "NDArray":
        arr = self.empty(shape, dtype)
        arr.fill(fill_value)
        return arr

    def zeros(self, *shape, dtype="float32") -> "NDArray":
        return self.full(shape[0] if len(shape) == 1 and isinstance(shape[0], tuple) else shape, 0.0, dtype)

    def ones(self, *shape, dtype="float32") -> "NDArray":
        return self.full(shape[0] if len(shape) == 1 and isinstance(shape[0], tuple) else shape, 1.0, dtype)


_CPU = BackendDevice("cpu", ndarray_backend_cpu, _CPU_MISSING)
_CPU_NUMPY = BackendDevice("cpu_numpy", ndarray_backend_numpy)
_CUDA = BackendDevice(
    "cuda", None, "cuda() is not available: no GPU/CuPy here. Use cuda_sim() to run the CUDA kernels on the CPU."
)


def cpu() -> BackendDevice:
    """The C++ CPU device."""
    return _CPU


def cpu_numpy() -> BackendDevice:
    """The pure-numpy device (the course's reference backend)."""
    return _CPU_NUMPY


def cuda() -> BackendDevice:
    """The CUDA device; `enabled()` is False without a GPU."""
    return _CUDA


def default_device() -> BackendDevice:
    """cpu() when the C++ backend is built, else cpu_numpy()."""
    return _CPU if _CPU.enabled() else _CPU_NUMPY


def all_devices() -> list[BackendDevice]:
    return [cpu(), cuda(), cpu_numpy()]


def _as_shape(shape, op: str) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    try:
        shape = tuple(operator.index(s) for s in shape)
    except TypeError:
        raise TypeError(f"{op}: shape must be a tuple of ints, got {shape!r}") from None
    if any(s < 0 for s in shape):
        raise ValueError(f"{op}: negative dimension in shape {shape}")
    return shape


def _compact_strides(shape: Sequence[int]) -> tuple[int, ...]:
    stride, res = 1, []
    for s in reversed(shape):
        res.append(stride)
        stride *= s
    return tuple(reversed(res))


def _is_scalar(x) -> bool:
    return isinstance(x, Number) or (isinstance(x, np.ndarray) and x.ndim == 0) or isinstance(x, np.generic)


class NDArray:
    """A strided view (shape, strides, offset) over a flat buffer on a device."""

    __array_ufunc__ = None  # numpy defers to our operators: np.float32(2) * a stays an NDArray
    __hash__ = None

    def __init__(self, other, device: BackendDevice | None = None, dtype=None):
        if isinstance(other, NDArray):  # always a copy, as the course's `.to(device) + 0.0`
            device = device if device is not None else other.device
            src = other.copy() if device == other.device else other.to(device)
            self._init(src if dtype is None else src.astype(dtype))
            return
        arr = other if isinstance(other, np.ndarray) else np.asarray(other)
        if dtype is None:
            dtype = "float64" if arr.dtype == np.float64 else "float32"
        dtype = _dtype_name(dtype)
        device = device if device is not None else default_device()
        device._check()
        arr = np.ascontiguousarray(arr, dtype=dtype)
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
        return _compact_strides(shape)

    @staticmethod
    def make(shape, strides=None, device=None, handle=None, offset: int = 0, dtype="float32") -> "NDArray":
        """A new NDArray over `handle` (allocated when None) with the given layout."""
        array = NDArray.__new__(NDArray)
        array._shape = tuple(shape)
        array._strides = _compact_strides(shape) if strides is None else tuple(strides)
        array._offset = offset
        array._device = device if device is not None else default_device()
        if handle is None:
            array._device._check()
            handle = array._device.Array(prod(shape), _dtype_name(dtype))
        array._handle = handle
        return array

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
        return self._handle.dtype

    @property
    def ndim(self) -> int:
        return len(self._shape)

    @property
    def size(self) -> int:
        return prod(self._shape)

    @property
    def flat(self) -> "NDArray":
        """A 1-D view of the (compacted) array; writes through when the array is compact."""
        return self.compact().reshape((self.size,))

    def __len__(self) -> int:
        if not self._shape:
            raise TypeError("len() of a 0-d NDArray")
        return self._shape[0]

    def __repr__(self) -> str:
        return f"NDArray({self.numpy()}, device={self.device})"

    def __str__(self) -> str:
        return str(self.numpy())

    # ---- data movement ----
    def fill(self, value) -> None:
        """Sets every element of this (compact) array to `value` in place."""
        if self.is_compact():
            self.device.fill(self._handle, float(value))
        else:
            self[...] = value

    def to(self, device: BackendDevice) -> "NDArray":
        if not isinstance(device, BackendDevice):
            raise TypeError(f"NDArray.to: expected a device such as cpu(), got {device!r}")
        if device == self.device:
            return self
        return NDArray(self.numpy(), device=device, dtype=self.dtype)

    def astype(self, dtype) -> "NDArray":
        dtype = _dtype_name(dtype)
        if dtype == self.dtype:
            return self
        return NDArray(self.numpy().astype(dtype), device=self.device, dtype=dtype)

    def numpy(self) -> np.ndarray:
        return self.device.to_numpy(self._handle, self._shape, self._strides, self._offset)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        arr = self.numpy()
        return arr if dtype is None else arr.astype(dtype)

    def is_compact(self) -> bool:
        """Dense row-major over the whole buffer (so flat kernels may read it directly)."""
        return self._strides == _compact_strides(self._shape) and self.size == self._handle.size

    def compact(self) -> "NDArray":
        """This array if compact, else a dense row-major copy."""
        if self.is_compact():
            return self
        out = NDArray.make(self._shape, device=self.device, dtype=self.dtype)
        self.device.compact(self._handle, out._handle, self._shape, self._strides, self._offset)
        return out

    def copy(self) -> "NDArray":
        out = NDArray.make(self._shape, device=self.device, dtype=self.dtype)
        self.device.compact(self._handle, out._handle, self._shape, self._strides, self._offset)
        return out

    def as_strided(self, shape, strides) -> "NDArray":
        """A view with an arbitrary layout over the same buffer (bounds are checked by the kernels)."""
        shape = _as_shape(shape, "as_strided")
        strides = tuple(int(s) for s in strides)
        if len(shape) != len(strides):
            raise ValueError(f"as_strided: shape {shape} and strides {strides} differ in length")
        _check_bounds("as_strided", shape, strides, self._offset, self._handle.size)
        return NDArray.make(shape, strides, self.device, self._handle, self._offset)

    # ---- views ----
    def reshape(self, new_shape) -> "NDArray":
        """A view with a new shape (one -1 allowed); the layout must be contiguous."""
        new_shape = _resolve_reshape(self._shape, new_shape)
        if self._strides != _compact_strides(self._shape):
            raise ValueError(
                f"reshape: cannot view shape {self._shape} with strides {self._strides} as {new_shape}; "
                "call .compact() first"
            )
        return NDArray.make(new_shape, None, self.device, self._handle, self._offset)

    def permute(self, new_axes) -> "NDArray":
        """A view with the axes reordered: new axis i is old axis new_axes[i]."""
        new_axes = tuple(operator.index(a) for a in new_axes)
        if sorted(a % self.ndim if self.ndim else a for a in new_axes) != list(range(self.ndim)):
            raise ValueError(f"permute: {new_axes} is not a permutation of the axes of shape {self._shape}")
        new_axes = tuple(a % self.ndim for a in new_axes)
        return NDArray.make(
            tuple(self._shape[a] for a in new_axes),
            tuple(self._strides[a] for a in new_axes),
            self.device,
            self._handle,
            self._offset,
        )

    def broadcast_to(self, new_shape) -> "NDArray":
        """A view repeating size-1 (or missing leading) axes with stride 0, as numpy does."""
        new_shape = _as_shape(new_shape, "broadcast_to")
        extra = len(new_shape) - self.ndim
        if extra < 0:
            raise ValueError(f"broadcast_to: cannot broadcast shape {self._shape} to {new_shape}")
        strides = [0] * extra
        for i, (old, stride) in enumerate(zip(self._shape, self._strides)):
            new = new_shape[extra + i]
            if old == new:
                strides.append(stride)
            elif old == 1:
                strides.append(0)
            else:
                raise ValueError(f"broadcast_to: cannot broadcast shape {self._shape} to {new_shape}")
        return NDArray.make(new_shape, tuple(strides), self.device, self._handle, self._offset)

    def process_slice(self, sl: slice, dim: int) -> slice:
        """Normalises a slice against axis `dim` as numpy does (negative starts and steps allowed)."""
        start, stop, step = sl.indices(self._shape[dim])
        return slice(start, stop, step)

    def _view_of(self, idxs) -> "NDArray":
        """The view selected by ints and slices; course semantics: no axis is dropped."""
        if not isinstance(idxs, tuple):
            idxs = (idxs,)
        if any(i is Ellipsis for i in idxs):
            at = idxs.index(Ellipsis)
            if Ellipsis in idxs[at + 1 :]:
                raise IndexError("NDArray index: only one Ellipsis allowed")
            fill = (slice(None),) * (self.ndim - len(idxs) + 1)
            idxs = idxs[:at] + fill + idxs[at + 1 :]
        if len(idxs) > self.ndim:
            raise IndexError(f"NDArray index: {len(idxs)} indices for an array of shape {self._shape}")
        idxs = idxs + (slice(None),) * (self.ndim - len(idxs))
        shape, strides, offset = [], [], self._offset
        for dim, idx in enumerate(idxs):
            n, stride = self._shape[dim], self._strides[dim]
            if isinstance(idx, slice):
                start, stop, step = idx.indices(n)
                length = len(range(start, stop, step))
                if length:
                    offset += start * stride
                shape.append(length)
                strides.append(stride * step)
            else:
                try:
                    i = operator.index(idx)
                except TypeError:
                    raise IndexError(f"NDArray index: unsupported index {idx!r} (use ints and slices)") from None
                if not -n <= i < n:
                    raise IndexError(f"NDArray index: index {i} is out of range for axis {dim} of shape {self._shape}")
                offset += (i % n) * stride
                shape.append(1)
                strides.append(stride)
        return NDArray.make(tuple(shape), tuple(strides), self.device, self._handle, offset)

    def __getitem__(self, idxs) -> "NDArray":
        return self._view_of(idxs)

    def __setitem__(self, idxs, other) -> None:
        """Writes `other` (an array broadcastable to the view, or a scalar) into the view, in place."""
        view = self._view_of(idxs)
        if _is_scalar(other):
            self.device.scalar_setitem(view.size, float(other), self._handle, view._shape, view._strides, view._offset)
            return
        other = _as_ndarray(other, self.device, self.dtype)
        if other.shape != view.shape:
            if prod(other.shape) == view.size and other.ndim != view.ndim:
                other = other.compact().reshape(view.shape)
            else:
                try:
                    other = other.broadcast_to(view.shape)
                except ValueError:
                    raise ValueError(
                        f"NDArray setitem: cannot assign shape {other.shape} to a view of shape {view.shape}"
                    ) from None
        other = other.astype(self.dtype).to(self.device).copy()  # copy: source and target may overlap
        self.device.ewise_setitem(other._handle, self._handle, view._shape, view._strides, view._offset)

    # ---- elementwise ----
    def _binary(self, other, ewise: str, scalar: str, op: str) -> "NDArray":
        if _is_scalar(other):
            a = self.compact()
            out = NDArray.make(a._shape, device=a.device, dtype=a.dtype)
            getattr(a.device, scalar)(a._handle, float(other), out._handle)
            return out
        other = _as_ndarray(other, self.device, self.dtype)
        if other.device != self.device:
            raise ValueError(f"NDArray {op}: operands on different devices ({self.device} and {other.device})")
        if other.shape != self.shape:
            raise ValueError(f"NDArray {op}: shapes {self.shape} and {other.shape} differ (broadcast explicitly)")
        a, b = self, other
        if a.dtype != b.dtype:  # promote as numpy does: float32 op float64 -> float64
            a, b = a.astype("float64"), b.astype("float64")
        a, b = a.compact(), b.compact()
        out = NDArray.make(a._shape, device=a.device, dtype=a.dtype)
        getattr(a.device, ewise)(a._handle, b._handle, out._handle)
        return out

    def _unary(self, kernel: str) -> "NDArray":
        a = self.compact()
        out = NDArray.make(a._shape, device=a.device, dtype=a.dtype)
        getattr(a.device, kernel)(a._handle, out._handle)
        return out

    def __add__(self, other):
        return self._binary(other, "ewise_add", "scalar_add", "add")

    __radd__ = __add__

    def __sub__(self, other):
        return self + (-other)

    def __rsub__(self, other):
        return other + (-self)

    def __mul__(self, other):
        return self._binary(other, "ewise_mul", "scalar_mul", "mul")

    __rmul__ = __mul__

    def __truediv__(self, other):
        return self._binary(other, "ewise_div", "scalar_div", "div")

    def __rtruediv__(self, other):
        if not _is_scalar(other):
            return _as_ndarray(other, self.device, self.dtype) / self
        return self.device.full(self.shape, float(other), self.dtype) / self

    def __neg__(self):
        return self * (-1.0)

    def __pow__(self, other):
        return self._binary(other, "ewise_power", "scalar_power", "power")

    def __rpow__(self, other):
        if not _is_scalar(other):
            return _as_ndarray(other, self.device, self.dtype) ** self
        return self.device.full(self.shape, float(other), self.dtype) ** self

    def maximum(self, other):
        return self._binary(other, "ewise_maximum", "scalar_maximum", "maximum")

    def __eq__(self, other):
        return self._binary(other, "ewise_eq", "scalar_eq", "eq")

    def __ge__(self, other):
        return self._binary(other, "ewise_ge", "scalar_ge", "ge")

    def __ne__(self, other):
        return 1 - (self == other)

    def __gt__(self, other):
        return (self >= other) * (self != other)

    def __lt__(self, other):
        return 1 - (self >= other)

    def __le__(self, other):
        return 1 - (self > other)

    def log(self):
        return self._unary("ewise_log")

    def exp(self):
        return self._unary("ewise_exp")

    def tanh(self):
        return self._unary("ewise_tanh")

    # ---- matmul ----
    def __matmul__(self, other: "NDArray") -> "NDArray":
        """Matrix product; leading (batch) axes broadcast as numpy's matmul."""
        other = _as_ndarray(other, self.device, self.dtype)
        if other.device != self.device:
            raise ValueError(f"NDArray matmul: operands on different devices ({self.device} and {other.device})")
        if self.ndim < 2 or other.ndim < 2 or self.shape[-1] != other.shape[-2]:
            raise ValueError(f"NDArray matmul: shapes {self.shape} and {other.shape} are not aligned")
        a, b = self, other
        if a.dtype != b.dtype:
            a, b = a.astype("float64"), b.astype("float64")
        m, n, p = a.shape[-2], a.shape[-1], b.shape[-1]
        try:
            batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        except ValueError:
            raise ValueError(f"NDArray matmul: batch shapes of {self.shape} and {other.shape} do not broadcast") from None
        if not hasattr(a.device.mod, "matmul_strided"):
            return a._matmul_course(b, batch, m, n, p)
        a = a.broadcast_to(batch + (m, n))
        b = b.broadcast_to(batch + (n, p))
        nb = prod(batch)
        a_strides, b_strides = _batch_strides(a), _batch_strides(b)
        if a_strides is None:
            a, a_strides = a.compact(), (m * n, n, 1)
        if b_strides is None:
            b, b_strides = b.compact(), (n * p, p, 1)
        out = NDArray.make(batch + (m, p), device=a.device, dtype=a.dtype)
        a.device.matmul_strided(
            a._handle, b._handle, out._handle, nb, m, n, p, a._offset, a_strides, b._offset, b_strides
        )
        return out

    def _matmul_course(self, other: "NDArray", batch, m, n, p) -> "NDArray":
        """The course's path for a device with only `matmul`/`matmul_tiled`: one 2-D product per batch."""
        out = NDArray.make(batch + (m, p), device=self.device, dtype=self.dtype)
        a_all = self.broadcast_to(batch + (m, n))
        b_all = other.broadcast_to(batch + (n, p))
        for idx in np.ndindex(*batch):
            a, b = a_all[idx].compact().reshape((m, n)), b_all[idx].compact().reshape((n, p))
            out[idx] = _matmul_2d(a, b).reshape((1,) * len(batch) + (m, p))
        return out

    # ---- reductions ----
    def _reduce(self, axis, keepdims: bool, kernel: str, op: str) -> "NDArray":
        axes = _normalize_axes(axis, self.ndim, op)
        if any(self._shape[ax] == 0 for ax in axes) and kernel == "reduce_max_axis":
            raise ValueError(f"NDArray {op}: zero-size axis in shape {self._shape} has no maximum")
        out_shape = tuple(1 if i in axes else s for i, s in enumerate(self._shape))
        if not keepdims:
            out_shape = tuple(s for i, s in enumerate(self._shape) if i not in axes)
        keep = [i for i in range(self.ndim) if i not in axes]
        # permute the reduced axes next to each other (their order kept) only when they are not already
        first = min(axes) if axes else 0
        contiguous = list(axes) == list(range(first, first + len(axes)))
        a = self if contiguous else self.permute(tuple(keep) + tuple(axes))
        if not contiguous:
            first = len(keep)
        a = a.compact()
        outer = prod(a._shape[:first])
        reduce = prod(a._shape[first : first + len(axes)])
        inner = prod(a._shape[first + len(axes) :])
        out = NDArray.make(out_shape, device=a.device, dtype=a.dtype)
        if reduce == 0:  # an empty sum is zero
            out.fill(0.0)
            return out
        if hasattr(a.device.mod, kernel):
            getattr(a.device, kernel)(a._handle, out._handle, outer, reduce, inner)
        else:  # course device: reduce contiguous blocks of the last axis only
            if inner != 1:
                a = a.reshape((outer, reduce, inner)).permute((0, 2, 1)).compact()
            getattr(a.device, kernel.replace("_axis", ""))(a._handle, out._handle, reduce)
        return out

    def sum(self, axis=None, keepdims: bool = False) -> "NDArray":
        """Sum over an axis, a tuple of axes, or everything (axis=None)."""
        return self._reduce(axis, keepdims, "reduce_sum_axis", "sum")

    def max(self, axis=None, keepdims: bool = False) -> "NDArray":
        """Maximum over an axis, a tuple of axes, or everything (axis=None)."""
        return self._reduce(axis, keepdims, "reduce_max_axis", "max")

    # ---- course hw4 additions ----
    def flip(self, axes) -> "NDArray":
        """A compact copy reversed along `axes` (a negative-stride view, then compact)."""
        axes = _normalize_axes(axes, self.ndim, "flip")
        offset, strides = self._offset, list(self._strides)
        for ax in axes:
            if self._shape[ax]:
                offset += (self._shape[ax] - 1) * strides[ax]
            strides[ax] = -strides[ax]
        return NDArray.make(self._shape, tuple(strides), self.device, self._handle, offset).copy()

    def pad(self, axes) -> "NDArray":
        """Zero padding: axes is one (left, right) pair per axis, as np.pad's pad_width."""
        axes = tuple(tuple(int(v) for v in pair) for pair in axes)
        if len(axes) != self.ndim or any(len(p) != 2 or min(p) < 0 for p in axes):
            raise ValueError(f"pad: need one non-negative (left, right) pair per axis of {self._shape}, got {axes}")
        out = self.device.full(tuple(s + l + r for s, (l, r) in zip(self._shape, axes)), 0.0, self.dtype)
        out[tuple(slice(l, l + s) for s, (l, _) in zip(self._shape, axes))] = self
        return out


def _batch_strides(a: NDArray):
    """(batch, row, col) strides of a view whose batch axes collapse to one stride, else None."""
    *batch, m, n = a.shape
    bs = a.strides[: len(batch)]
    live = [(s, st) for s, st in zip(batch, bs) if s != 1]
    if not live:
        return (0, a.strides[-2], a.strides[-1])
    # collapsible when each live batch axis steps by (next live size * next stride), or all are zero
    if all(st == 0 for _, st in live):
        return (0, a.strides[-2], a.strides[-1])
    for (s1, st1), (s2, st2) in zip(live, live[1:]):
        if st1 != s2 * st2:
            return None
    return (live[-1][1], a.strides[-2], a.strides[-1])


def _matmul_2d(a: NDArray, b: NDArray) -> NDArray:
    """The course's 2-D matmul: the tiled kernel when all sizes are multiples of the tile."""
    m, n, p = a.shape[0], a.shape[1], b.shape[1]
    dev = a.device
    t = getattr(dev.mod, "__tile_size__", 0)
    if hasattr(dev.mod, "matmul_tiled") and t and m % t == 0 and n % t == 0 and p % t == 0:

        def tile(x: NDArray, tsize: int) -> NDArray:
            return x.as_strided(
                (x.shape[0] // tsize, x.shape[1] // tsize, tsize, tsize),
                (x.shape[1] * tsize, tsize, x.shape[1], 1),
            )

        out = NDArray.make((m // t, p // t, t, t), device=dev, dtype=a.dtype)
        dev.matmul_tiled(tile(a, t).compact()._handle, tile(b, t).compact()._handle, out._handle, m, n, p)
        return out.permute((0, 2, 1, 3)).compact().reshape((m, p))
    out = NDArray.make((m, p), device=dev, dtype=a.dtype)
    dev.matmul(a._handle, b._handle, out._handle, m, n, p)
    return out


def _check_bounds(op, shape, strides, offset, size) -> None:
    if prod(shape) == 0:
        return
    lo = offset + builtins.sum((n - 1) * s for n, s in zip(shape, strides) if s < 0)
    hi = offset + builtins.sum((n - 1) * s for n, s in zip(shape, strides) if s > 0)
    if lo < 0 or hi >= size:
        raise ValueError(f"{op}: shape {shape} with strides {strides} reaches outside the buffer of {size} elements")


def _resolve_reshape(shape, new_shape) -> tuple[int, ...]:
    if isinstance(new_shape, (int, np.integer)):
        new_shape = (new_shape,)
    try:
        new_shape = tuple(operator.index(s) for s in new_shape)
    except TypeError:
        raise TypeError(f"reshape: shape must be a tuple of ints, got {new_shape!r}") from None
    size = prod(shape)
    if new_shape.count(-1) > 1 or any(s < -1 for s in new_shape):
        raise ValueError(f"reshape: invalid target shape {new_shape}")
    if -1 in new_shape:
        known = prod(s for s in new_shape if s != -1)
        if known == 0 or size % known:
            raise ValueError(f"reshape: cannot reshape array of shape {shape} into {new_shape}")
        new_shape = tuple(size // known if s == -1 else s for s in new_shape)
    if prod(new_shape) != size:
        raise ValueError(f"reshape: cannot reshape array of shape {shape} (size {size}) into {new_shape}")
    return new_shape


def _normalize_axes(axis, ndim: int, op: str) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = []
    for ax in axes:
        ax = operator.index(ax)
        if not -ndim <= ax < ndim:
            raise ValueError(f"NDArray {op}: axis {ax} is out of range for an array with {ndim} dimensions")
        out.append(ax % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"NDArray {op}: repeated axis in {axis}")
    return tuple(sorted(out))


def _as_ndarray(x, device: BackendDevice, dtype: str) -> NDArray:
    if isinstance(x, NDArray):
        return x
    arr = np.asarray(x)
    return NDArray(arr, device=device, dtype="float64" if arr.dtype == np.float64 else dtype)


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
    if not -len(shape) - 1 <= axis <= len(shape):
        raise ValueError(f"stack: axis {axis} is out of range for {len(shape) + 1} dimensions")
    axis %= len(shape) + 1
    out = NDArray.make(shape[:axis] + (len(arrays),) + shape[axis:], device=arrays[0].device, dtype=arrays[0].dtype)
    for i, a in enumerate(arrays):
        index = (slice(None),) * axis + (i,)
        out[index] = a.compact().reshape(shape[:axis] + (1,) + shape[axis:])
    return out


def split(a: NDArray, axis: int = 0) -> list[NDArray]:
    """Splits along `axis` into a.shape[axis] arrays with that axis removed."""
    axis = _normalize_axes(axis, a.ndim, "split")[0]
    rest = a.shape[:axis] + a.shape[axis + 1 :]
    return [a[(slice(None),) * axis + (i,)].compact().reshape(rest) for i in range(a.shape[axis])]
