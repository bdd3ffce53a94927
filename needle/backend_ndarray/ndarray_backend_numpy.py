"""The reference device module in pure numpy: flat buffers and the course's kernel names.

Each function sees flat 1-D buffers plus shape/strides/offset, exactly like the C++ and CUDA
modules, so it doubles as the executable specification of the device contract.
"""
from __future__ import annotations

import numpy as np

__device_name__ = "numpy"
__tile_size__ = 8

_DTYPES = ("float32", "float64")


class Array:
    """A flat buffer of `size` float32 or float64 elements."""

    def __init__(self, size: int, dtype: str = "float32"):
        if dtype not in _DTYPES:
            raise ValueError(f"Array: unsupported dtype {dtype!r} (expected 'float32' or 'float64')")
        if size < 0:
            raise ValueError(f"Array: size must be >= 0, got {size}")
        self.array = np.empty(size, dtype=dtype)

    @property
    def size(self) -> int:
        return self.array.size

    @property
    def dtype(self) -> str:
        return self.array.dtype.name

    def ptr(self) -> int:
        return self.array.ctypes.data


def _view(a: Array, shape, strides, offset) -> np.ndarray:
    """The strided view (shape, strides in elements, offset) of a flat buffer, bounds-checked."""
    if len(shape) != len(strides):
        raise ValueError(f"strided view: shape {tuple(shape)} and strides {tuple(strides)} differ in length")
    if any(n < 0 for n in shape):
        raise ValueError(f"strided view: negative dimension in shape {tuple(shape)}")
    lo = hi = offset
    for n, s in zip(shape, strides):
        if n == 0:
            return np.empty(tuple(shape), dtype=a.array.dtype)
        span = (n - 1) * s
        if span < 0:
            lo += span
        else:
            hi += span
    if lo < 0 or hi >= a.size:
        raise ValueError(f"strided view reaches outside its buffer (elements {lo}..{hi} of {a.size})")
    item = a.array.itemsize
    return np.lib.stride_tricks.as_strided(
        a.array[offset:], tuple(shape), tuple(s * item for s in strides), writeable=True
    )


def to_numpy(a: Array, shape, strides, offset) -> np.ndarray:
    return _view(a, shape, strides, offset).copy()


def from_numpy(a: np.ndarray, out: Array) -> None:
    src = np.asarray(a, dtype=out.array.dtype).reshape(-1)
    if src.size != out.size:
        raise ValueError(f"from_numpy: input has {src.size} elements, buffer has {out.size}")
    out.array[:] = src


def fill(out: Array, val) -> None:
    out.array[:] = val


def compact(a: Array, out: Array, shape, strides, offset) -> None:
    n = int(np.prod(shape))
    out.array[:n] = _view(a, shape, strides, offset).reshape(-1)


def ewise_setitem(a: Array, out: Array, shape, strides, offset) -> None:
    n = int(np.prod(shape))
    _view(out, shape, strides, offset)[...] = a.array[:n].reshape(shape)


def scalar_setitem(size, val, out: Array, shape, strides, offset) -> None:
    _view(out, shape, strides, offset)[...] = val


def _same(name: str, *arrays: Array) -> None:
    """Elementwise kernels need operands of one size and dtype (as the C++ device checks)."""
    first = arrays[0]
    for other in arrays[1:]:
        if other.size != first.size or other.dtype != first.dtype:
            raise ValueError(
                f"{name}: operands differ ({first.size} x {first.dtype} vs {other.size} x {other.dtype})"
            )


# IEEE results (inf, nan) without warnings, as the compiled devices give them
def _ewise(fn):
    def kernel(a: Array, b: Array, out: Array) -> None:
        _same(fn.__name__, a, b, out)
        with np.errstate(all="ignore"):
            fn(a.array, b.array, out=out.array)

    return kernel


def _scalar(fn):
    def kernel(a: Array, val, out: Array) -> None:
        _same(fn.__name__, a, out)
        with np.errstate(all="ignore"):
            fn(a.array, out.array.dtype.type(val), out=out.array)

    return kernel


def _unary(fn):
    def kernel(a: Array, out: Array) -> None:
        _same(fn.__name__, a, out)
        with np.errstate(all="ignore"):
            fn(a.array, out=out.array)

    return kernel


ewise_add, scalar_add = _ewise(np.add), _scalar(np.add)
ewise_mul, scalar_mul = _ewise(np.multiply), _scalar(np.multiply)
ewise_div, scalar_div = _ewise(np.divide), _scalar(np.divide)
ewise_power, scalar_power = _ewise(np.power), _scalar(np.power)
ewise_maximum, scalar_maximum = _ewise(np.maximum), _scalar(np.maximum)
ewise_eq, scalar_eq = _ewise(np.equal), _scalar(np.equal)
ewise_ge, scalar_ge = _ewise(np.greater_equal), _scalar(np.greater_equal)
ewise_log, ewise_exp, ewise_tanh = _unary(np.log), _unary(np.exp), _unary(np.tanh)


def _reduce_axis(fn, name):
    def kernel(a: Array, out: Array, outer: int, reduce_size: int, inner: int) -> None:
        if reduce_size <= 0:
            raise ValueError(f"{name}: cannot reduce over an empty axis")
        x = a.array[: outer * reduce_size * inner].reshape(outer, reduce_size, inner)
        out.array[: outer * inner] = fn(x, axis=1).reshape(-1)

    return kernel


reduce_sum_axis = _reduce_axis(np.sum, "reduce_sum")
reduce_max_axis = _reduce_axis(np.max, "reduce_max")


def reduce_sum(a: Array, out: Array, reduce_size: int) -> None:
    reduce_sum_axis(a, out, a.size // reduce_size if reduce_size > 0 else 0, reduce_size, 1)


def reduce_max(a: Array, out: Array, reduce_size: int) -> None:
    reduce_max_axis(a, out, a.size // reduce_size if reduce_size > 0 else 0, reduce_size, 1)


def _check_dims(name: str, *dims: int) -> None:
    if any(d < 0 for d in dims):
        raise ValueError(f"{name}: negative dimension in {dims}")


def matmul(a: Array, b: Array, out: Array, m: int, n: int, p: int) -> None:
    _check_dims("matmul", m, n, p)
    out.array[: m * p] = (a.array[: m * n].reshape(m, n) @ b.array[: n * p].reshape(n, p)).reshape(-1)


def matmul_tiled(a: Array, b: Array, out: Array, m: int, n: int, p: int) -> None:
    t = __tile_size__
    _check_dims("matmul_tiled", m, n, p)
    if m % t or n % t or p % t:
        raise ValueError(f"matmul_tiled: m, n, p = {m}, {n}, {p} must be multiples of the tile size {t}")
    A = a.array[: m * n].reshape(m // t, n // t, t, t)
    B = b.array[: n * p].reshape(n // t, p // t, t, t)
    out.array[: m * p] = np.einsum("ikrs,kjst->ijrt", A, B).reshape(-1)


def matmul_strided(a: Array, b: Array, out: Array, batch, m, n, p, a_offset, a_strides, b_offset, b_strides):
    _check_dims("matmul_strided", batch, m, n, p)
    A = _view(a, (batch, m, n), a_strides, a_offset)
    B = _view(b, (batch, n, p), b_strides, b_offset)
    out.array[: batch * m * p] = np.matmul(A, B).reshape(-1)
