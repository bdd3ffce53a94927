"""Readable comparisons for checks: expected vs got, max error and the failing input, raised as CheckFailed."""
from __future__ import annotations

from typing import Any

import numpy as np

from .errors import CheckFailed


def _show(value: Any, limit: int = 6, around: tuple[int, ...] | None = None) -> str:
    """A short, deterministic description of an input or output; with `around`, the values next to that index."""
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
    layout = "" if arr.flags.c_contiguous else ", strided view"
    if around is not None and len(around) == arr.ndim and arr.size > limit:
        at = int(np.ravel_multi_index(around, arr.shape))
        start = max(0, min(at - limit // 2, arr.size - limit))
        window = arr.reshape(-1)[start:start + limit]
        items = [np.format_float_positional(v, precision=4, trim="-") if np.issubdtype(arr.dtype, np.floating)
                 else str(v) for v in window]
        items[at - start] = f"[{items[at - start]}]"
        before = "... " if start > 0 else ""
        after = " ..." if start + limit < arr.size else ""
        return (f"array shape {arr.shape} {arr.dtype}{layout}: {before}{', '.join(items)}{after} "
                f"(flat elements {start}..{start + len(window) - 1}, [ ] marks index {tuple(around)})")
    flat = np.array2string(arr.reshape(-1)[:limit], precision=4, separator=", ")
    more = " ..." if arr.size > limit else ""
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
    problem, worst = None, None
    if g.shape != e.shape:
        problem = f"shape {g.shape}, expected shape {e.shape}"
    elif check_dtype and g.dtype != e.dtype:
        problem = f"dtype {g.dtype}, expected dtype {e.dtype}"
    elif not np.allclose(g, e, rtol=rtol, atol=atol, equal_nan=False):
        with np.errstate(invalid="ignore"):
            err = np.abs(g.astype(np.float64) - e.astype(np.float64))
        worst = np.unravel_index(int(np.nanargmax(np.where(np.isnan(err), np.inf, err))), err.shape) if err.size else ()
        worst = tuple(int(i) for i in worst)
        problem = f"max error {np.nanmax(np.where(np.isnan(err), np.inf, err)):.3g} at index {worst}"
    if problem is None:
        return
    lines = [f"{what}: {problem}", f"  expected: {_show(e, around=worst)}", f"  got:      {_show(g, around=worst)}"]
    for name, value in (inputs or {}).items():
        label = name if name.startswith("input") else f"input {name}"
        shape = np.shape(value) if isinstance(value, np.ndarray) else None
        lines.append(f"  {label}: {_show(value, around=worst if shape == e.shape else None)}")
    raise CheckFailed("\n".join(lines))


def expect(condition: bool, message: str) -> None:
    """Raise CheckFailed with `message` unless `condition` holds."""
    __tracebackhide__ = True
    if not condition:
        raise CheckFailed(message)
