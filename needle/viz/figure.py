"""A matplotlib figure as a notebook output: PNG for people, a stable one-line text for nbval and consoles."""
from __future__ import annotations

import io

from matplotlib.figure import Figure


def png_bytes(fig: Figure, dpi: int = 80) -> bytes:
    """The figure rendered to PNG bytes (Agg, no pyplot state, no GUI)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


class FigureView:
    """Wraps a Figure so that a notebook shows it as PNG and its text form has no addresses."""

    def __init__(self, figure: Figure, description: str):
        self.figure = figure
        self.description = description

    def _repr_png_(self) -> bytes:
        return png_bytes(self.figure)

    def __repr__(self) -> str:
        return f"<{self.description}>"
