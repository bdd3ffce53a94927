"""Image grids for datasets: a quick look at samples and their labels."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from matplotlib.figure import Figure

from .figure import FigureView


def _as_images(images: Any) -> np.ndarray:
    """(N, H, W) or (N, H, W, 3) floats from (N, H, W), (N, H, W, C), (N, C, H, W) or flattened square (N, H*W)."""
    x = np.asarray(images.numpy() if hasattr(images, "numpy") else images, dtype=np.float64)
    if x.ndim == 2:
        side = int(round(np.sqrt(x.shape[1])))
        if side * side != x.shape[1]:
            raise ValueError(f"image_grid: rows of length {x.shape[1]} are not square images")
        x = x.reshape(-1, side, side)
    if x.ndim == 4:
        if x.shape[1] in (1, 3) and x.shape[-1] not in (1, 3):
            x = x.transpose(0, 2, 3, 1)
        if x.shape[-1] == 1:
            x = x[..., 0]
        elif x.shape[-1] != 3:
            raise ValueError(f"image_grid: cannot read images of shape {x.shape[1:]} (need 1 or 3 channels)")
    if x.ndim != 3 and not (x.ndim == 4 and x.shape[-1] == 3):
        raise ValueError(f"image_grid: expected a batch of images, got shape {x.shape}")
    if x.max(initial=0) > 1.0:
        x = x / 255.0
    return np.clip(x, 0.0, 1.0)


def image_grid(images: Any, labels: Sequence[Any] | None = None, *, ncols: int = 10,
               class_names: Sequence[str] | None = None, size: float = 1.0) -> FigureView:
    """A grid of images (values in [0, 1] or [0, 255]) titled with their labels, as a notebook-ready figure."""
    x = _as_images(images)
    n = len(x)
    if labels is not None and len(labels) != n:
        raise ValueError(f"image_grid: {n} images but {len(labels)} labels")
    ncols = max(1, min(ncols, n))
    nrows = max(1, -(-n // ncols))
    fig = Figure(figsize=(size * ncols, size * nrows * (1.25 if labels is not None else 1.0)))
    for i in range(nrows * ncols):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        ax.axis("off")
        if i >= n:
            continue
        ax.imshow(x[i], cmap="gray" if x.ndim == 3 else None, vmin=0.0, vmax=1.0, interpolation="nearest")
        if labels is not None:
            label = labels[i].item() if hasattr(labels[i], "item") else labels[i]
            ax.set_title(class_names[int(label)] if class_names is not None else str(label), fontsize=9)
    fig.subplots_adjust(wspace=0.05, hspace=0.3)
    return FigureView(fig, f"image grid: {n} images")
