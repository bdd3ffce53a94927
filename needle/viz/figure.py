"""A matplotlib figure as a notebook output: PNG for people, a stable one-line text for nbval and consoles."""
from __future__ import annotations

import io
from typing import Any

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


class LiveFigure:
    """One notebook output redrawn in place: the first show() displays a figure through a display handle, later
    ones update it, so a running cell animates and a stored notebook holds one static figure. Outside IPython,
    show() does nothing."""

    def __init__(self) -> None:
        self.handle: Any = None

    def show(self, figure: Figure) -> None:
        """Display `figure`, or replace the one shown before."""
        try:
            from IPython import get_ipython
            from IPython.display import Image, display
        except ImportError:
            return
        if get_ipython() is None:
            return
        image = Image(data=png_bytes(figure), format="png")
        if self.handle is None:
            self.handle = display(image, display_id=True)
        else:
            self.handle.update(image)
