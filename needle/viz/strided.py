"""The strided-array view: a flat buffer, the logical array a (shape, strides, offset) view reads from it, and
which buffer element each logical element is. For chapter 4 (views, compact, broadcasting)."""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from html import escape
from typing import Any, Sequence

import numpy as np

_CELL, _GAP, _MAX_BUFFER = 34, 30, 64


def element_positions(shape: Sequence[int], strides: Sequence[int], offset: int) -> np.ndarray:
    """For each logical index (row-major), the buffer position offset + sum(index * stride)."""
    if len(shape) != len(strides):
        raise ValueError(f"strided view: shape {tuple(shape)} and strides {tuple(strides)} differ in length")
    return np.array([offset + sum(i * s for i, s in zip(index, strides))
                     for index in itertools.product(*(range(n) for n in shape))], dtype=np.int64)


def _color(k: int, n: int) -> str:
    hue = int(210 - 180 * k / max(n - 1, 1))
    return f"hsl({hue}, 70%, 80%)"


@dataclass
class StridedView:
    """An SVG picture of a strided view; shows itself in a notebook."""

    svg: str
    description: str

    def _repr_svg_(self) -> str:
        return self.svg

    def __repr__(self) -> str:
        return f"<strided view: {self.description}>"


def strided_layout(buffer: Sequence[float], shape: Sequence[int], strides: Sequence[int], offset: int = 0) -> StridedView:
    """Draw the view (shape, strides, offset) over `buffer`: the buffer on top, the logical array below it as rows
    of its last axis; matching colours and the small numbers under each logical cell give the buffer position."""
    values = np.asarray(buffer).reshape(-1)
    shape, strides = tuple(int(n) for n in shape), tuple(int(s) for s in strides)
    positions = element_positions(shape, strides, offset)
    if positions.size and (positions.min() < 0 or positions.max() >= values.size):
        raise ValueError(f"strided view: shape {shape}, strides {strides}, offset {offset} reads outside a buffer "
                         f"of {values.size} elements")
    if values.size > _MAX_BUFFER or positions.size > _MAX_BUFFER:
        raise ValueError(f"strided view: draws at most {_MAX_BUFFER} elements (buffer {values.size}, view {positions.size})")
    first = {int(p): k for k, p in reversed(list(enumerate(positions)))}
    cols = shape[-1] if shape else 1
    rows = max(1, positions.size // max(cols, 1))
    width = 20 + max(values.size, cols) * _CELL
    height = 20 + 16 + _CELL + _GAP + 16 + rows * (_CELL + 14)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="monospace" '
             'font-size="11">', f'<text x="10" y="14">buffer ({values.size} elements)</text>']
    y0 = 20
    for p, value in enumerate(values):
        fill = _color(first[p], positions.size) if p in first else "#f4f4f4"
        x = 10 + p * _CELL
        parts.append(f'<rect x="{x}" y="{y0}" width="{_CELL - 2}" height="{_CELL - 2}" fill="{fill}" stroke="#666"/>')
        parts.append(f'<text x="{x + _CELL // 2 - 1}" y="{y0 + 20}" text-anchor="middle">{escape(f"{value:g}")}</text>')
    y1 = y0 + _CELL + _GAP
    layout = "compact" if strides == tuple(int(np.prod(shape[i + 1:])) for i in range(len(shape))) and offset == 0 \
        else "not compact"
    label = f"shape {shape}, strides {strides}, offset {offset} ({layout})"
    parts.append(f'<text x="10" y="{y1 - 4}">view: {escape(label)}</text>')
    for k, p in enumerate(positions):
        r, c = divmod(k, max(cols, 1))
        x, y = 10 + c * _CELL, y1 + r * (_CELL + 14)
        parts.append(f'<rect x="{x}" y="{y}" width="{_CELL - 2}" height="{_CELL - 2}" fill="{_color(first[int(p)], positions.size)}" stroke="#333"/>')
        parts.append(f'<text x="{x + _CELL // 2 - 1}" y="{y + 20}" text-anchor="middle">{escape(f"{values[p]:g}")}</text>')
        parts.append(f'<text x="{x + _CELL // 2 - 1}" y="{y + _CELL + 9}" text-anchor="middle" font-size="9" '
                     f'fill="#555">@{int(p)}</text>')
    parts.append("</svg>")
    return StridedView("\n".join(parts), label)


def strided_view(array: Any) -> StridedView:
    """Draw a needle NDArray (a view over its device buffer) with strided_layout."""
    handle = array._handle
    buffer = type(array).make((handle.size,), (1,), array.device, handle, 0, dtype=array.dtype).numpy()
    return strided_layout(buffer, array.shape, array.strides, array._offset)
