"""Shared helpers for the benchmarks: a robust timer, an optional PyTorch import, and a text table."""
from __future__ import annotations

import os
import time
from typing import Any, Callable, Sequence

# Pause before each contender's round: longer than any library's idle worker threads spin (libgomp about
# 10 ms at its default, OpenBLAS ~1.5 ms as set in __init__), so none takes a core from the next contender.
SETTLE = 0.02


def best_time(fn: Callable[[], Any], repeat: int = 5, min_time: float = 0.05, warmup: int = 1) -> float:
    """Best (smallest) seconds per call of `fn` over `repeat` rounds.

    Each round calls `fn` as many times as needed to last at least `min_time` seconds (so fast calls
    are not lost in timer noise) and records the mean; the minimum over rounds discards interference
    from other processes. `warmup` untimed calls first (page faults, thread pools, caches).
    """
    if repeat < 1:
        raise ValueError(f"best_time: repeat must be >= 1, got {repeat}")
    for _ in range(warmup):
        fn()
    # calibrate the number of calls per round from one timed call
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-9)
    calls = max(1, int(min_time / once))
    best = once
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def interleaved_best(fns, rounds: int = 20, min_time: float = 0.02,
                     clock: Callable[[], float] = time.perf_counter) -> list[float]:
    """Best seconds per call of each fn, timed in alternating short rounds (needle, numpy, torch, needle, ...),
    so that load from other processes on the shared machine hits every contender alike; each round starts
    after a pause of SETTLE. `clock` may be time.process_time for CPU time (on one thread: what a kernel
    costs, whatever else runs)."""
    calls = [max(1, int(min_time / best_time(fn, repeat=1, min_time=0.0))) for fn in fns]
    best = [float("inf")] * len(fns)
    for _ in range(rounds):
        for i, fn in enumerate(fns):
            time.sleep(SETTLE)
            start = clock()
            for _ in range(calls[i]):
                fn()
            best[i] = min(best[i], (clock() - start) / calls[i])
    return best


def core_count() -> int:
    """Cores this process may run on (the affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


def torch_or_none():
    """The torch module with its thread count set to our core count, or None when not installed."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(core_count())
    return torch


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if value != value:  # nan
            return "-"
        if abs(value) >= 100:
            return f"{value:.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    return "-" if value is None else str(value)


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Prints rows as an aligned text table: first column left-aligned, the others right-aligned."""
    cells = [[str(c) for c in columns]] + [[_fmt(v) for v in row] for row in rows]
    for row in cells:
        if len(row) != len(columns):
            raise ValueError(f"print_table: row {row} has {len(row)} cells, expected {len(columns)}")
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]

    def line(row: Sequence[str]) -> str:
        parts = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]
        return "  ".join(parts).rstrip()

    print(f"\n{title}")
    print(line(cells[0]))
    print("  ".join("-" * w for w in widths))
    for row in cells[1:]:
        print(line(row))
