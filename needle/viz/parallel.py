"""Pictures of training on several devices (chapter 10): ring allreduce step by step, and how data, pipeline and
tensor parallelism cut a network across devices. Each function returns a `FigureView` (PNG in a notebook)."""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, Rectangle

from .figure import FigureView

__all__ = ["ring_allreduce_figure", "parallelism_figure"]

_RANK_COLORS = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860"]


def _ring_states(n: int) -> list[tuple[str, list[list[set]]]]:
    """Which ranks' contributions each chunk on each rank holds, after every step of the ring algorithm."""
    held = [[{r} for _ in range(n)] for r in range(n)]  # held[rank][chunk]
    states = [("start:\nits own numbers", [[set(c) for c in row] for row in held])]
    for step in range(n - 1):
        sent = [(r, (r - step) % n, set(held[r][(r - step) % n])) for r in range(n)]
        for r, chunk, contents in sent:
            held[(r + 1) % n][chunk] |= contents
        states.append((f"reduce-scatter {step + 1}:\nsend chunk r-{step}, add", [[set(c) for c in row] for row in held]))
    for step in range(n - 1):
        sent = [(r, (r - step + 1) % n, set(held[r][(r - step + 1) % n])) for r in range(n)]
        for r, chunk, contents in sent:
            held[(r + 1) % n][chunk] = contents
        states.append((f"all-gather {step + 1}:\nsend chunk r+1-{step}, copy", [[set(c) for c in row] for row in held]))
    return states


def ring_allreduce_figure(n: int = 4) -> FigureView:
    """n ranks in a ring, each array cut into n chunks; every panel is one step: a chunk's colour stripes are the
    ranks whose numbers it already sums. After 2 (n - 1) steps every chunk on every rank holds all n."""
    states = _ring_states(n)
    fig = Figure(figsize=(2.3 * len(states), 2.9))
    for k, (title, held) in enumerate(states):
        ax = fig.add_subplot(1, len(states), k + 1)
        for r in range(n):
            for c in range(n):
                contributors = sorted(held[r][c])
                w = 0.9 / len(contributors)
                for j, who in enumerate(contributors):
                    ax.add_patch(Rectangle((c + 0.05 + j * w, n - 1 - r + 0.1), w, 0.8, color=_RANK_COLORS[who % 6], lw=0))
                if len(contributors) == n:
                    ax.add_patch(Rectangle((c + 0.05, n - 1 - r + 0.1), 0.9, 0.8, fill=False, lw=2, color="black"))
            ax.text(-0.15, n - 1 - r + 0.5, f"rank {r}", ha="right", va="center", fontsize=8)
        ax.set_xlim(-1.3, n)
        ax.set_ylim(-0.2, n + 0.1)
        ax.axis("off")
        ax.set_title(title, fontsize=8)
    fig.suptitle(f"ring allreduce on {n} ranks: rows are ranks, columns the {n} chunks of the array;\na chunk's "
                 "colours are the ranks it sums (black frame: complete)", fontsize=9, y=1.08)
    return FigureView(fig, f"figure: ring allreduce on {n} ranks, step by step")


def _box(ax, x, y, w, h, text, color, fontsize=8):
    ax.add_patch(Rectangle((x, y), w, h, color=color, alpha=0.85, lw=0))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=fontsize)


def _arrow(ax, a, b, text="", color="black"):
    ax.add_patch(FancyArrowPatch(a, b, arrowstyle="-|>", mutation_scale=10, lw=1.2, color=color))
    if text:
        ax.text((a[0] + b[0]) / 2, (a[1] + b[1]) / 2 + 0.12, text, ha="center", fontsize=7, color=color)


def parallelism_figure(layers: int = 4, devices: int = 2) -> FigureView:
    """Three ways to spread a `layers`-layer network over `devices` devices: data parallel (whole copies, split
    batch, gradients allreduced), pipeline (consecutive layers per device, micro-batches flowing through), and tensor
    parallel (every layer's weight matrix split by columns, partial results gathered)."""
    fig = Figure(figsize=(13, 4))
    colors = _RANK_COLORS
    # data parallel
    ax = fig.add_subplot(1, 3, 1)
    for d in range(devices):
        x0 = d * 2.2
        for i in range(layers):
            _box(ax, x0, i * 0.8, 1.6, 0.6, f"layer {i + 1} (full)", colors[d])
        ax.text(x0 + 0.8, -0.55, f"device {d}:\nbatch part {d + 1}/{devices}", ha="center", fontsize=8)
    _arrow(ax, (1.6, layers * 0.8 - 0.1), (2.2, layers * 0.8 - 0.1), "allreduce grads", "crimson")
    ax.set_title("data parallel: a whole copy per device,\nthe batch split, gradients averaged", fontsize=9)
    ax.set_xlim(-0.3, devices * 2.2)
    ax.set_ylim(-0.8, layers * 0.8 + 0.4)
    ax.axis("off")
    # pipeline parallel
    ax = fig.add_subplot(1, 3, 2)
    per = layers // devices
    for i in range(layers):
        d = min(i // max(per, 1), devices - 1)
        _box(ax, 0, i * 0.8, 1.6, 0.6, f"layer {i + 1}", colors[d])
        if i and min((i - 1) // max(per, 1), devices - 1) != d:
            _arrow(ax, (-0.15, i * 0.8 - 0.25), (-0.15, i * 0.8 + 0.05))
            ax.text(-0.2, i * 0.8 - 0.1, "activations", ha="right", va="center", fontsize=7, color="crimson")
    steps = devices + 3
    for d in range(devices):
        for m in range(4):
            t = d + m  # micro-batch m reaches stage d at time d + m (forward only)
            _box(ax, 2.6 + t * 0.45, d * 0.8 + 0.6, 0.42, 0.55, f"{m + 1}", colors[d], fontsize=7)
        ax.text(2.5, d * 0.8 + 0.87, f"dev {d}", ha="right", va="center", fontsize=7)
    ax.text(2.6 + steps * 0.25, -0.35, "time → (micro-batches 1-4; empty slots: the bubble)", ha="center", fontsize=7)
    ax.set_title("pipeline parallel: consecutive layers per device,\nmicro-batches keep every stage busy", fontsize=9)
    ax.set_xlim(-1.3, 2.6 + steps * 0.5)
    ax.set_ylim(-0.8, layers * 0.8 + 0.4)
    ax.axis("off")
    # tensor parallel
    ax = fig.add_subplot(1, 3, 3)
    for i in range(layers):
        for d in range(devices):
            _box(ax, d * (1.6 / devices + 0.05), i * 0.8, 1.6 / devices, 0.6, f"W{i + 1}[:, part {d + 1}]", colors[d],
                 fontsize=6.5)
        _arrow(ax, (1.75, i * 0.8 + 0.3), (2.3, i * 0.8 + 0.3), "gather", "crimson")
    ax.set_title("tensor parallel: every weight matrix split\n(Y = X W = [X W_1, X W_2]), results exchanged", fontsize=9)
    ax.set_xlim(-0.3, 3.0)
    ax.set_ylim(-0.8, layers * 0.8 + 0.4)
    ax.axis("off")
    return FigureView(fig, f"figure: data, pipeline and tensor parallelism of {layers} layers on {devices} devices")
