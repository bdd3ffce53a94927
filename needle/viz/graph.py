"""A tensor-level computation graph as SVG: one box per tensor with its op, shape and gradient; no graphviz needed."""
from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Any

_W, _H, _GAP_X, _GAP_Y, _PAD = 170, 54, 50, 16, 10


def _nodes(output: Any) -> list[Any]:
    """Every value the output depends on, inputs before users (iterative post-order DFS, deep graphs are fine)."""
    order, seen, stack = [], set(), [(output, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        stack.extend((child, False) for child in reversed(list(getattr(node, "inputs", []) or [])))
    return order


def _shape(value: Any) -> str:
    shape = getattr(value, "shape", None)
    return "×".join(str(s) for s in shape) if shape else "scalar"


def _label(node: Any, names: dict[int, str]) -> tuple[str, str, str]:
    """Three lines: name or op, shape, gradient summary."""
    op = getattr(node, "op", None)
    title = names.get(id(node)) or (type(op).__name__ if op is not None else
                                     ("parameter" if getattr(node, "requires_grad", False) else "constant"))
    if names.get(id(node)) and op is not None:
        title += f" = {type(op).__name__}"
    grad = getattr(node, "grad", None)
    grad_line = f"grad {_shape(grad)}" if grad is not None else "no grad"
    return title, _shape(node), grad_line


@dataclass
class GraphView:
    """An SVG drawing of a computation graph; shows itself in a notebook."""

    svg: str
    count: int

    def _repr_svg_(self) -> str:
        return self.svg

    def __repr__(self) -> str:
        return f"<computation graph: {self.count} tensors>"


def draw_graph(output: Any, names: dict[str, Any] | None = None) -> GraphView:
    """Draw the graph that produced `output`, left (inputs) to right (output); `names` labels chosen tensors."""
    label_of = {id(t): n for n, t in (names or {}).items()}
    nodes = _nodes(output)
    level: dict[int, int] = {}
    for node in nodes:
        inputs = list(getattr(node, "inputs", []) or [])
        level[id(node)] = 1 + max((level[id(i)] for i in inputs), default=-1)
    columns: dict[int, list[Any]] = {}
    for node in nodes:
        columns.setdefault(level[id(node)], []).append(node)
    pos = {}
    for col, members in columns.items():
        for row, node in enumerate(members):
            pos[id(node)] = (_PAD + col * (_W + _GAP_X), _PAD + row * (_H + _GAP_Y))
    width = _PAD * 2 + len(columns) * (_W + _GAP_X) - _GAP_X
    height = _PAD * 2 + max(len(m) for m in columns.values()) * (_H + _GAP_Y) - _GAP_Y
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="sans-serif" font-size="12">',
             '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
             'orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>']
    for node in nodes:
        x2, y2 = pos[id(node)]
        for child in getattr(node, "inputs", []) or []:
            x1, y1 = pos[id(child)]
            parts.append(f'<line x1="{x1 + _W}" y1="{y1 + _H // 2}" x2="{x2}" y2="{y2 + _H // 2}" '
                         'stroke="#555" marker-end="url(#arrow)"/>')
    for node in nodes:
        x, y = pos[id(node)]
        leaf = getattr(node, "op", None) is None
        fill = "#e8f1fb" if leaf else ("#fdf0d5" if node is not output else "#e3f4e1")
        parts.append(f'<rect x="{x}" y="{y}" width="{_W}" height="{_H}" rx="6" fill="{fill}" stroke="#333"/>')
        for i, text in enumerate(_label(node, label_of)):
            weight = ' font-weight="bold"' if i == 0 else ""
            parts.append(f'<text x="{x + _W // 2}" y="{y + 16 + 15 * i}" text-anchor="middle"{weight}>'
                         f"{escape(text)}</text>")
    parts.append("</svg>")
    return GraphView("\n".join(parts), len(nodes))
