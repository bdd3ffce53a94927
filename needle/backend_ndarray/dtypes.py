"""The two element types NDArray stores (float32, float64) and how other dtypes map onto them."""
from __future__ import annotations

import ctypes

import numpy as np

FLOAT_DTYPES = ("float32", "float64")
CTYPES = {"float32": ctypes.c_float, "float64": ctypes.c_double}
# dtypes NDArray stores as float32: booleans and integers become 0/1 or integral floats
AS_FLOAT32 = {"bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float16"}


def dtype_name(dtype) -> str:
    """Normalises a dtype spec ('float32', np.float64, 'bool', ...) to 'float32' or 'float64'."""
    if dtype is None:
        return "float32"
    if dtype.__class__ is str and dtype in FLOAT_DTYPES:  # fast path (np.dtype objects compare equal too)
        return dtype
    try:
        name = np.dtype(dtype).name
    except TypeError:
        raise TypeError(f"NDArray: unknown dtype {dtype!r} (use 'float32' or 'float64')") from None
    if name in FLOAT_DTYPES:
        return name
    if name in AS_FLOAT32:
        return "float32"
    raise TypeError(f"NDArray: unsupported dtype {name!r} (use 'float32' or 'float64')")


def default_dtype(x, arr: np.ndarray, fallback: str = "float32") -> str:
    """float64 for numpy float64 data (kept at full precision), else `fallback`."""
    return "float64" if isinstance(x, (np.ndarray, np.generic)) and arr.dtype == np.float64 else fallback
