"""Attention maps: each head's probabilities for one sentence as a heat map, queries down and keys across."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from matplotlib.figure import Figure

from .figure import FigureView


def attention_maps(probs: Any, tokens: Sequence[str], *, titles: Sequence[str] | None = None, ncols: int = 4,
                   size: float = 2.6) -> FigureView:
    """Heat maps of attention probabilities (heads, T, T) for the T `tokens`: row r is what token r attends to."""
    p = np.asarray(probs.numpy() if hasattr(probs, "numpy") else probs, dtype=np.float64)
    if p.ndim == 2:
        p = p[None]
    if p.ndim != 3 or p.shape[1:] != (len(tokens), len(tokens)):
        raise ValueError(f"attention_maps: probabilities of shape {p.shape} do not fit {len(tokens)} tokens "
                         "(expected (heads, T, T))")
    titles = list(titles) if titles is not None else [f"head {i}" for i in range(len(p))]
    if len(titles) != len(p):
        raise ValueError(f"attention_maps: {len(p)} maps but {len(titles)} titles")
    ncols = max(1, min(ncols, len(p)))
    nrows = -(-len(p) // ncols)
    fig = Figure(figsize=(size * ncols, size * nrows))
    for i, (values, title) in enumerate(zip(p, titles)):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        ax.imshow(values, cmap="viridis", vmin=0.0, vmax=1.0, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.set_xticks(range(len(tokens)), tokens, rotation=90, fontsize=6)
        ax.set_yticks(range(len(tokens)), tokens if i % ncols == 0 else [""] * len(tokens), fontsize=6)
    fig.tight_layout()
    return FigureView(fig, f"attention maps: {len(p)} heads over {len(tokens)} tokens")
