"""How NDArray meets numpy: an operator ufunc with a numpy operand gives an NDArray (`np.float32(2) * a`, `x @ a`);
numpy functions and other ufuncs (`np.sum(a)`, `np.abs(a)`) work on a copy of the values and return numpy results, as
for any array-like; a numpy function that would write into an NDArray (into a copy, so lost) is refused.

The array class is passed in by NDArray's own hooks and its operators are looked up by name when called, so this
module never imports NDArray.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

# ufunc -> (the array's method for `array <op> other`, the array's method for `other <op> array`)
OPERATOR_UFUNCS = {
    np.add: ("__add__", "__radd__"),
    np.subtract: ("__sub__", "__rsub__"),
    np.multiply: ("__mul__", "__rmul__"),
    np.true_divide: ("__truediv__", "__rtruediv__"),
    np.power: ("__pow__", "__rpow__"),
    np.matmul: ("__matmul__", "__rmatmul__"),
    np.equal: ("__eq__", "__eq__"),
    np.not_equal: ("__ne__", "__ne__"),
    np.greater: ("__gt__", "__lt__"),
    np.greater_equal: ("__ge__", "__le__"),
    np.less: ("__lt__", "__gt__"),
    np.less_equal: ("__le__", "__ge__"),
}

# numpy functions that write into their first argument: on an NDArray they would write into a copy
NUMPY_WRITERS = {np.copyto, np.put, np.place, np.putmask, np.fill_diagonal, np.put_along_axis}


def refuse_numpy_writes(array_type: type, name: str, targets) -> None:
    """numpy works on copies of arrays of `array_type`, so a write into one would be lost: refuse it."""
    if any(isinstance(t, array_type) for t in targets):
        raise TypeError(f"numpy {name}: cannot write into an NDArray (use NDArray operations or setitem)")


def numpy_values(array_type: type, x):
    """`x` with every array of `array_type` (also inside lists, tuples and dicts) replaced by a numpy copy."""
    if isinstance(x, array_type):
        return x.numpy()
    if isinstance(x, (list, tuple)):
        return type(x)(numpy_values(array_type, v) for v in x)
    if isinstance(x, dict):
        return {k: numpy_values(array_type, v) for k, v in x.items()}
    return x


def apply_ufunc(array_type: type, ufunc: np.ufunc, method: str, inputs: tuple, kwargs: dict) -> Any:
    """NDArray.__array_ufunc__: a binary operator ufunc runs the array's operator, anything else numpy on copies."""
    names = OPERATOR_UFUNCS.get(ufunc)
    if names is not None and method == "__call__" and not kwargs and len(inputs) == 2:
        a, b = inputs
        return getattr(a, names[0])(b) if isinstance(a, array_type) else getattr(b, names[1])(a)
    refuse_numpy_writes(array_type, ufunc.__name__, kwargs.get("out", ()))
    return getattr(ufunc, method)(*numpy_values(array_type, inputs), **kwargs)


def apply_function(array_type: type, func: Callable, args: tuple, kwargs: dict) -> Any:
    """NDArray.__array_function__: numpy's `func` on copies of the values, unless it would write into an array."""
    out = kwargs.get("out")
    targets = (out if isinstance(out, tuple) else (out,)) + (args[:1] if func in NUMPY_WRITERS else ())
    refuse_numpy_writes(array_type, func.__name__, targets)
    return func(*numpy_values(array_type, args), **numpy_values(array_type, kwargs))
