"""The strided-array view: a flat buffer, the logical array a (shape, strides, offset) view reads from it, and
which buffer element each logical element is. For chapter 4 (views, compact, broadcasting)."""
from __future__ import annotations

import colorsys
import itertools
import re
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
    """A light colour from blue (first element) to orange (last), as hex (every SVG renderer reads it)."""
    hue = (210 - 180 * k / max(n - 1, 1)) / 360
    r, g, b = colorsys.hls_to_rgb(hue, 0.8, 0.7)
    return f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"


@dataclass
class StridedView:
    """An SVG picture of a strided view; shows itself in a notebook."""

    svg: str
    description: str

    def _repr_svg_(self) -> str:
        return self.svg

    def __repr__(self) -> str:
        return f"<strided view: {self.description}>"


def _index_of(k: int, shape: Sequence[int]) -> tuple[int, ...]:
    """The logical index of the k-th element in row-major order."""
    return tuple(int(i) for i in np.unravel_index(k, shape)) if shape else ()


def index_arithmetic(index: Sequence[int], strides: Sequence[int], offset: int) -> str:
    """The buffer position of a logical index, written out: 'offset 2 + 1·4 + 3·(-1) = 3'."""
    terms = " + ".join(f"{i}·{s}" if s >= 0 else f"{i}·({s})" for i, s in zip(index, strides))
    position = offset + sum(int(i) * int(s) for i, s in zip(index, strides))
    return f"offset {offset}" + (f" + {terms}" if terms else "") + f" = {position}"


def strided_layout(buffer: Sequence[float], shape: Sequence[int], strides: Sequence[int], offset: int = 0, *,
                   highlight: Sequence[int] | None = None, walk: int | None = None) -> StridedView:
    """Draw the view (shape, strides, offset) over `buffer`: the buffer on top, the logical array below it as rows
    of its last axis; matching colours and the small numbers under each logical cell give the buffer position.

    `highlight` (a logical index) outlines that element in the view and in the buffer and writes its index
    arithmetic underneath; `walk` draws the row-major walk through the buffer as arcs, from the first element up to
    step `walk` (-1: the whole walk)."""
    values = np.asarray(buffer).reshape(-1)
    shape, strides = tuple(int(n) for n in shape), tuple(int(s) for s in strides)
    positions = element_positions(shape, strides, offset)
    if positions.size and (positions.min() < 0 or positions.max() >= values.size):
        raise ValueError(f"strided view: shape {shape}, strides {strides}, offset {offset} reads outside a buffer "
                         f"of {values.size} elements")
    if values.size > _MAX_BUFFER or positions.size > _MAX_BUFFER:
        raise ValueError(f"strided view: draws at most {_MAX_BUFFER} elements (buffer {values.size}, view {positions.size})")
    marked = None
    if highlight is not None:
        index = tuple(int(i) for i in highlight)
        if len(index) != len(shape) or any(not 0 <= i < n for i, n in zip(index, shape)):
            raise IndexError(f"strided view: highlight {index} is not an index of shape {shape}")
        marked = int(np.ravel_multi_index(index, shape)) if shape else 0
    first = {int(p): k for k, p in reversed(list(enumerate(positions)))}
    cols = shape[-1] if shape else 1
    rows = max(1, positions.size // max(cols, 1))
    block = shape[-2] if len(shape) >= 3 and shape[-2] else rows  # a gap between the matrices of a 3-D or larger view
    blocks_gap = 10 * ((rows - 1) // block)
    arcs = 0 if walk is None else (positions.size - 1 if walk < 0 else min(int(walk), positions.size - 1))
    arc_room = 0 if walk is None else 10 + 6 * min(int(np.abs(np.diff(positions)).max(initial=1)), 12)
    width = 20 + max(values.size, cols) * _CELL
    y0 = 20
    y1 = y0 + _CELL + arc_room + _GAP
    height = y1 + rows * (_CELL + 14) + blocks_gap + (24 if marked is not None else 6)
    width = max(width, 420 if marked is not None else 0)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="monospace" '
             'font-size="11">', f'<text x="10" y="14">buffer ({values.size} elements)</text>']
    mark_p = int(positions[marked]) if marked is not None else None
    for p, value in enumerate(values):
        fill = _color(first[p], positions.size) if p in first else "#f4f4f4"
        x = 10 + p * _CELL
        edge = 'stroke="#d00" stroke-width="3"' if p == mark_p else 'stroke="#666"'
        parts.append(f'<rect x="{x}" y="{y0}" width="{_CELL - 2}" height="{_CELL - 2}" fill="{fill}" {edge}/>')
        parts.append(f'<text x="{x + _CELL // 2 - 1}" y="{y0 + 20}" text-anchor="middle">{escape(f"{value:g}")}</text>')
    for k in range(arcs):  # the walk: one arc from the k-th element's buffer cell to the next one's
        a, b = int(positions[k]), int(positions[k + 1])
        xa, xb = 10 + a * _CELL + _CELL // 2 - 1, 10 + b * _CELL + _CELL // 2 - 1
        depth = 8 + 6 * min(abs(b - a), 12)
        yb = y0 + _CELL - 2
        colour = "#d00" if k + 1 == marked else "#888"
        if a == b:  # a stride-0 step reads the same cell again
            parts.append(f'<circle cx="{xa}" cy="{yb + 7}" r="5" fill="none" stroke="{colour}"/>')
        else:
            parts.append(f'<path d="M {xa} {yb} Q {(xa + xb) / 2:g} {yb + 2 * depth} {xb} {yb}" fill="none" '
                         f'stroke="{colour}" marker-end="url(#arrow)"/>')
    if arcs:
        parts.insert(1, '<defs><marker id="arrow" viewBox="0 0 6 6" refX="5" refY="3" markerWidth="6" '
                        'markerHeight="6" orient="auto"><path d="M0,0 L6,3 L0,6 z" fill="#888"/></marker></defs>')
    compact = (strides == tuple(int(np.prod(shape[i + 1:])) for i in range(len(shape))) and offset == 0
               and positions.size == values.size)
    label = f"shape {shape}, strides {strides}, offset {offset} ({'compact' if compact else 'not compact'})"
    parts.append(f'<text x="10" y="{y1 - 4}">view: {escape(label)}</text>')
    for k, p in enumerate(positions):
        r, c = divmod(k, max(cols, 1))
        x, y = 10 + c * _CELL, y1 + r * (_CELL + 14) + 10 * (r // block)
        edge = 'stroke="#d00" stroke-width="3"' if k == marked else 'stroke="#333"'
        parts.append(f'<rect x="{x}" y="{y}" width="{_CELL - 2}" height="{_CELL - 2}" fill="{_color(first[int(p)], positions.size)}" {edge}/>')
        parts.append(f'<text x="{x + _CELL // 2 - 1}" y="{y + 20}" text-anchor="middle">{escape(f"{values[p]:g}")}</text>')
        parts.append(f'<text x="{x + _CELL // 2 - 1}" y="{y + _CELL + 9}" text-anchor="middle" font-size="9" '
                     f'fill="#555">@{int(p)}</text>')
    if marked is not None:
        index = _index_of(marked, shape)
        text = (f"step {marked} of the walk: " if walk is not None else "") + \
            f"view{list(index)} is buffer[{index_arithmetic(index, strides, offset)}]"
        parts.append(f'<text x="10" y="{height - 8}" fill="#d00">{escape(text)}</text>')
    parts.append("</svg>")
    description = label + (f", element {list(_index_of(marked, shape))} highlighted" if marked is not None else "")
    return StridedView("\n".join(parts), description)


def strided_view(array: Any, *, highlight: Sequence[int] | None = None, walk: int | None = None) -> StridedView:
    """Draw a needle NDArray (a view over its device buffer) with strided_layout."""
    handle = array._handle
    buffer = type(array).make((handle.size,), (1,), array.device, handle, 0, dtype=array.dtype).numpy()
    return strided_layout(buffer, array.shape, array.strides, array._offset, highlight=highlight, walk=walk)


class StrideWalk:
    """A slider that walks through a view's elements in row-major order, showing each one's index arithmetic.

    In a live notebook it is an ipywidgets slider over the picture; where widgets cannot run (a static
    rendering, nbval, a headless run) the output shows the same picture with the whole walk and the first step."""

    def __init__(self, buffer: Sequence[float], shape: Sequence[int], strides: Sequence[int], offset: int = 0,
                 step: int = 0):
        self.args = (np.asarray(buffer).reshape(-1), tuple(int(n) for n in shape), tuple(int(s) for s in strides),
                     int(offset))
        self.size = int(np.prod(self.args[1]))
        if self.size == 0:
            raise ValueError("stride walk: the view has no elements")
        self.step = min(max(int(step), 0), self.size - 1)
        self.static = self.picture(self.step, whole_walk=True)

    def picture(self, step: int, whole_walk: bool = False) -> StridedView:
        """The view with element `step` (row-major) highlighted and the walk drawn up to it (or whole)."""
        buffer, shape, strides, offset = self.args
        return strided_layout(buffer, shape, strides, offset, highlight=_index_of(step, shape),
                              walk=-1 if whole_walk else step)

    def widget(self):
        """The live slider and picture (an ipywidgets VBox)."""
        import ipywidgets as widgets

        slider = widgets.IntSlider(value=self.step, min=0, max=self.size - 1, description="element",
                                   continuous_update=True)
        html = widgets.HTML(self.picture(self.step).svg)

        def show(change: dict) -> None:
            html.value = self.picture(int(change["new"])).svg

        slider.observe(show, names="value")
        return widgets.VBox([slider, html])

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict:
        bundle = {"image/svg+xml": self.static.svg, "text/plain": repr(self)}
        try:
            view = self.widget()._repr_mimebundle_()
        except Exception:  # no ipywidgets: the static picture alone
            return bundle
        bundle.update({k: v for k, v in view.items() if k != "text/plain"})
        return bundle

    def __repr__(self) -> str:
        _, shape, strides, offset = self.args
        return f"<stride walk: shape {shape}, strides {strides}, offset {offset}, {self.size} elements>"


def stride_walk(array: Any, step: int = 0) -> StrideWalk:
    """A slider walking through a needle NDArray's elements (see StrideWalk)."""
    handle = array._handle
    buffer = type(array).make((handle.size,), (1,), array.device, handle, 0, dtype=array.dtype).numpy()
    return StrideWalk(buffer, array.shape, array.strides, array._offset, step)


def side_by_side(*pictures: StridedView, titles: Sequence[str] = ()) -> StridedView:
    """Several strided pictures in one row (one SVG), each under its title."""
    if not pictures:
        raise ValueError("side_by_side: no pictures")
    parts, x, height = [], 0, 0
    for k, picture in enumerate(pictures):
        w, h = (int(v) for v in re.search(r'width="(\d+)" height="(\d+)"', picture.svg).groups())
        title = titles[k] if k < len(titles) else ""
        parts.append(f'<text x="{x + 10}" y="14" font-weight="bold">{escape(title)}</text>')
        parts.append(picture.svg.replace("<svg ", f'<svg x="{x}" y="20" ', 1))
        x, height = x + w + 30, max(height, h + 20)
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{x - 30}" height="{height}" font-family="monospace" '
            'font-size="11">')
    return StridedView("\n".join([head, *parts, "</svg>"]),
                       " | ".join(f"{t}: {p.description}" if t else p.description
                                  for t, p in zip(list(titles) + [""] * len(pictures), pictures)))
