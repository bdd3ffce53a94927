"""Readable comparisons for checks: expected vs got, max error and the failing input, raised as CheckFailed."""
from __future__ import annotations

from typing import Any

import numpy as np

from .errors import CheckFailed


def _show(value: Any, limit: int = 6) -> str:
    """A short, deterministic description of an input or output."""
    if isinstance(value, (list, tuple)) and not isinstance(value, np.ndarray):
        return "(" + ", ".join(_show(v, limit) for v in value) + ")"
    try:
        arr = np.asarray(value)
    except Exception:  # an object numpy cannot read: say what it is
        return type(value).__name__
    if arr.dtype == object:
        return type(value).__name__
    if arr.ndim == 0:
        return repr(arr.item())
    flat = np.array2string(arr.reshape(-1)[:limit], precision=4, separator=", ")
    more = " ..." if arr.size > limit else ""
    layout = "" if arr.flags.c_contiguous else ", strided view"
    return f"array shape {arr.shape} {arr.dtype}{layout}: {flat}{more}"


def to_numpy(value: Any) -> np.ndarray:
    """numpy view of a numpy array, NDArray, Tensor or number."""
    if hasattr(value, "numpy") and not isinstance(value, np.ndarray):
        value = value.numpy()
    return np.asarray(value)


def expect_close(got: Any, expected: Any, *, what: str, inputs: dict[str, Any] | None = None,
                 rtol: float = 1e-5, atol: float = 1e-6, check_dtype: bool = False) -> None:
    """Raise CheckFailed unless `got` matches `expected` in shape (and dtype if asked) and value."""
    __tracebackhide__ = True
    g, e = to_numpy(got), to_numpy(expected)
    problem = None
    if g.shape != e.shape:
        problem = f"shape {g.shape}, expected shape {e.shape}"
    elif check_dtype and g.dtype != e.dtype:
        problem = f"dtype {g.dtype}, expected dtype {e.dtype}"
    elif not np.allclose(g, e, rtol=rtol, atol=atol, equal_nan=False):
        with np.errstate(invalid="ignore"):
            err = np.abs(g.astype(np.float64) - e.astype(np.float64))
        worst = np.unravel_index(int(np.nanargmax(np.where(np.isnan(err), np.inf, err))), err.shape) if err.size else ()
        problem = f"max error {np.nanmax(np.where(np.isnan(err), np.inf, err)):.3g} at index {tuple(int(i) for i in worst)}"
    if problem is None:
        return
    lines = [f"{what}: {problem}", f"  expected: {_show(e)}", f"  got:      {_show(g)}"]
    for name, value in (inputs or {}).items():
        lines.append(f"  input {name}: {_show(value)}")
    raise CheckFailed("\n".join(lines))


def expect(condition: bool, message: str) -> None:
    """Raise CheckFailed with `message` unless `condition` holds."""
    __tracebackhide__ = True
    if not condition:
        raise CheckFailed(message)
