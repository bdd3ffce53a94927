"""Pictures of the CUDA execution model (chapter 06): the grid of blocks of threads and their warps, the memory
hierarchy, coalesced and strided loads, a tiled matrix product, and which thread handled which element of a launch.

Every function returns a `FigureView` of a matplotlib Figure (no pyplot state): PNG in a notebook, a stable one-line
text for nbval.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, Rectangle

from .figure import FigureView

__all__ = ["grid_figure", "memory_figure", "coalescing_figure", "tiles_figure", "launch_map_figure"]

_WARP_COLORS = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C"]


def grid_figure(grid: tuple[int, int] = (3, 2), block: tuple[int, int] = (16, 4), warp: int = 32) -> FigureView:
    """A 2-D grid of 2-D blocks; each small square a thread, coloured by its warp (32 consecutive threads of a
    block, x fastest), with blockIdx and threadIdx written on one of them."""
    gx, gy = grid
    bx, by = block
    fig = Figure(figsize=(9, 3.6))
    ax = fig.add_subplot()
    pad = 2.2
    for j in range(gy):
        for i in range(gx):
            x0, y0 = i * (bx + pad), (gy - 1 - j) * (by + pad)
            ax.add_patch(Rectangle((x0 - 0.25, y0 - 0.25), bx + 0.5, by + 0.5, fill=False, lw=1.5))
            ax.text(x0 + bx / 2, y0 + by + 0.35, f"block ({i}, {j})", ha="center", va="bottom", fontsize=9)
            for ty in range(by):
                for tx in range(bx):
                    linear = tx + ty * bx
                    color = _WARP_COLORS[(linear // warp) % len(_WARP_COLORS)]
                    ax.add_patch(Rectangle((x0 + tx + 0.08, y0 + by - 1 - ty + 0.08), 0.84, 0.84, color=color, lw=0))
    # one thread named: block (1, 1), thread (5, 2)
    x0, y0 = 1 * (bx + pad), 0.0
    ax.add_patch(Rectangle((x0 + 5, y0 + by - 1 - 2), 1, 1, fill=False, lw=2.5, color="black"))
    ax.annotate(f"blockIdx = (1, 1), threadIdx = (5, 2): global x = 1 * {bx} + 5 = {bx + 5}, y = 1 * {by} + 2 = {by + 2}",
                xy=(x0 + 5.5, y0 + by - 2.5), xytext=(x0 + 5.5, -2.6), ha="center", fontsize=8.5,
                arrowprops=dict(arrowstyle="->", lw=1))
    ax.set_xlim(-1, gx * (bx + pad))
    ax.set_ylim(-3.2, gy * (by + pad))
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(f"a grid of {gx} x {gy} blocks, each {bx} x {by} threads; colours: the block's warps of {warp} threads",
                 fontsize=10)
    return FigureView(fig, "figure: the grid of blocks of threads")


def memory_figure() -> FigureView:
    """Registers per thread, shared memory per block, global memory for the whole grid, with rough latencies."""
    fig = Figure(figsize=(9, 3.4))
    ax = fig.add_subplot()
    ax.add_patch(Rectangle((0, 0), 10, 1, color="#C9D6E8"))
    ax.text(5, 0.5, "global memory (GBs, ~400-800 cycles; every thread of every block reads and writes it)",
            ha="center", va="center", fontsize=9)
    for b in range(2):
        x0 = 0.3 + b * 5
        ax.add_patch(Rectangle((x0, 1.6), 4.4, 2.6, fill=False, lw=1.5))
        ax.text(x0 + 2.2, 4.3, f"block {b} (on one multiprocessor)", ha="center", va="bottom", fontsize=9)
        ax.add_patch(Rectangle((x0 + 0.2, 1.8), 4.0, 0.7, color="#F2D0A9"))
        ax.text(x0 + 2.2, 2.15, "__shared__ memory (48 KB+, ~30 cycles)", ha="center", va="center", fontsize=8.5)
        for t in range(4):
            tx = x0 + 0.25 + t * 1.02
            ax.add_patch(Rectangle((tx, 2.8), 0.9, 1.2, fill=False, lw=1))
            ax.text(tx + 0.45, 3.62, f"thread {t}", ha="center", va="center", fontsize=7.5)
            ax.add_patch(Rectangle((tx + 0.08, 2.88), 0.74, 0.42, color="#B7DDB0"))
            ax.text(tx + 0.45, 3.09, "registers", ha="center", va="center", fontsize=6.5)
            ax.add_patch(FancyArrowPatch((tx + 0.45, 2.8), (tx + 0.45, 2.5), arrowstyle="<->", mutation_scale=8))
        ax.add_patch(FancyArrowPatch((x0 + 2.2, 1.6), (x0 + 2.2, 1.0), arrowstyle="<->", mutation_scale=10, lw=1.5))
    ax.set_xlim(-0.2, 10.2)
    ax.set_ylim(-0.2, 4.8)
    ax.axis("off")
    ax.set_title("where a kernel's data lives: the closer to the thread, the faster and the smaller", fontsize=10)
    return FigureView(fig, "figure: the memory hierarchy")


def coalescing_figure(stride: int = 4, lanes: int = 32, segment_bytes: int = 128) -> FigureView:
    """The addresses one warp's 32 threads read for `a[i]` (coalesced) and for `a[i * stride]` (strided), and the
    128-byte memory segments each load touches."""
    fig = Figure(figsize=(9, 3.6))
    axes = fig.subplots(2, 1)
    per_segment = segment_bytes // 4
    for ax, s, title in ((axes[0], 1, "a[i]: 32 neighbouring floats"),
                         (axes[1], stride, f"a[i * {stride}]: every {stride}th float")):
        addresses = np.arange(lanes) * s
        span = max(int(addresses[-1]) + 1, per_segment)
        segments = sorted({int(a) // per_segment for a in addresses})
        for seg in range(-(-span // per_segment)):
            ax.add_patch(Rectangle((seg * per_segment, 0), per_segment, 1,
                                   color="#F2D0A9" if seg in segments else "#EEEEEE", ec="white", lw=2))
        for lane, addr in enumerate(addresses):
            ax.plot([lane * span / lanes + 0.5 * span / lanes, addr + 0.5], [2.2, 1.0], color="#4C72B0", lw=0.6)
            ax.add_patch(Rectangle((lane * span / lanes, 2.2), span / lanes * 0.9, 0.5, color="#4C72B0"))
        ax.text(-0.01 * span, 2.45, f"{lanes} threads\nof a warp", ha="right", va="center", fontsize=8)
        ax.text(-0.01 * span, 0.5, f"memory,\n{segment_bytes}-byte\nsegments", ha="right", va="center", fontsize=8)
        ax.set_xlim(-0.12 * span, span)
        ax.set_ylim(-0.1, 2.8)
        ax.axis("off")
        ax.set_title(f"{title}: {len(segments)} memory transaction{'s' if len(segments) > 1 else ''} of "
                     f"{segment_bytes} bytes for 128 useful bytes", fontsize=9.5)
    return FigureView(fig, "figure: coalesced and strided loads of a warp")


def tiles_figure(m: int = 48, n: int = 64, p: int = 48, tile: int = 16, block: tuple[int, int] = (1, 1),
                 step: int = 1) -> FigureView:
    """The shared-memory matmul: the block computing out-tile `block` (column, row) reads a band of tile-rows of a
    and tile-columns of b; at step `step` it holds one tile of each in shared memory."""
    bx, by = block
    fig = Figure(figsize=(9, 3.2))
    axes = fig.subplots(1, 3, gridspec_kw={"width_ratios": [n, p, p]})
    specs = ((axes[0], m, n, "a (m x n)", [(step, by, "#DD8452")], [(k, by) for k in range(n // tile)]),
             (axes[1], n, p, "b (n x p)", [(bx, step, "#DD8452")], [(bx, k) for k in range(n // tile)]),
             (axes[2], m, p, "out (m x p)", [(bx, by, "#55A868")], []))
    for ax, rows, cols, title, hot, band in specs:
        ax.add_patch(Rectangle((0, 0), cols, rows, fill=False, lw=1.2))
        for c, r in band:
            ax.add_patch(Rectangle((c * tile, rows - (r + 1) * tile), tile, tile, color="#F6E3CC", ec="white"))
        for c, r, color in hot:
            ax.add_patch(Rectangle((c * tile, rows - (r + 1) * tile), tile, tile, color=color, ec="white"))
        for x in range(0, cols + 1, tile):
            ax.plot([x, x], [0, rows], color="#BBBBBB", lw=0.5)
        for y in range(0, rows + 1, tile):
            ax.plot([0, cols], [y, y], color="#BBBBBB", lw=0.5)
        ax.set_xlim(-1, cols + 1)
        ax.set_ylim(-1, rows + 1)
        ax.set_aspect("equal")
        ax.axis("off")
        ax.set_title(title, fontsize=9.5)
    fig.subplots_adjust(top=0.78)
    fig.suptitle(f"block ({bx}, {by}) computes the green {tile} x {tile} tile of out; at step k = {step} its threads "
                 f"hold the orange tiles in shared memory", fontsize=9.5)
    return FigureView(fig, "figure: the tiles of a shared-memory matmul")


def launch_map_figure(values: Sequence[np.ndarray], titles: Sequence[str], cols: int = 16) -> FigureView:
    """Images of per-element numbers (which block, which thread, which pass of the loop handled element i), each
    laid out row-major in rows of `cols` elements with the number written in each cell."""
    fig = Figure(figsize=(9, 1.1 + 1.1 * len(values) * (-(-len(values[0]) // cols)) / 3))
    axes = fig.subplots(len(values), 1, squeeze=False)[:, 0]
    for ax, v, title in zip(axes, values, titles):
        v = np.asarray(v, dtype=np.float64)
        rows = -(-v.size // cols)
        grid = np.full(rows * cols, np.nan)
        grid[: v.size] = v
        grid = grid.reshape(rows, cols)
        ax.imshow(grid, cmap="tab10", vmin=0, vmax=9, aspect="equal")
        for (r, c), x in np.ndenumerate(grid):
            if not np.isnan(x):
                ax.text(c, r, f"{int(x)}", ha="center", va="center", fontsize=7, color="white")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(title, fontsize=9)
    return FigureView(fig, "figure: which thread handled which element")
