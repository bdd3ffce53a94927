"""Live training curves: one figure, redrawn in place through a notebook display handle as metrics arrive."""
from __future__ import annotations


from matplotlib.figure import Figure

from .figure import LiveFigure, png_bytes


class LiveCurves:
    """Plot metrics per step; each panel groups metrics sharing a prefix-free name, e.g. panels=(("train loss",
    "test loss"), ("train error", "test error")). In a notebook the same output is updated, never appended, so a
    stored notebook holds one static figure."""

    def __init__(self, panels: tuple[tuple[str, ...], ...], *, title: str = "", xlabel: str = "epoch",
                 width: float = 8.0, height: float = 3.0):
        if not panels or not all(panels):
            raise ValueError("LiveCurves: give at least one panel with at least one metric name")
        self.panels = tuple(tuple(p) for p in panels)
        self.title, self.xlabel = title, xlabel
        self.size = (width, height)
        self.history: dict[str, list[tuple[float, float]]] = {m: [] for p in self.panels for m in p}
        self._live = LiveFigure()

    def update(self, step: float, **metrics: float) -> None:
        """Record metrics for `step` (unknown names raise) and redraw the figure in place."""
        unknown = set(metrics) - set(self.history)
        if unknown:
            raise KeyError(f"LiveCurves.update: unknown metrics {sorted(unknown)}; known: {sorted(self.history)}")
        for name, value in metrics.items():
            self.history[name].append((float(step), float(value)))
        self._redraw()

    def figure(self) -> Figure:
        """The current curves as a matplotlib Figure."""
        fig = Figure(figsize=self.size)
        for i, names in enumerate(self.panels):
            ax = fig.add_subplot(1, len(self.panels), i + 1)
            for name in names:
                points = self.history[name]
                if points:
                    xs, ys = zip(*points)
                    ax.plot(xs, ys, marker="o", markersize=3, label=name)
            ax.set_xlabel(self.xlabel)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        if self.title:
            fig.suptitle(self.title)
        fig.tight_layout()
        return fig

    def _repr_png_(self) -> bytes:
        return png_bytes(self.figure())

    def __repr__(self) -> str:
        metrics = ", ".join(f"{m}: {len(v)} points" for m, v in self.history.items())
        return f"<LiveCurves {self.title or ''} ({metrics})>".replace("  ", " ")

    def _redraw(self) -> None:
        self._live.show(self.figure())
