"""Where a step's time goes: every call into a device's kernel module is timed by name, and the rest of the
step is Python (autograd, ops, NDArray layout logic, the bindings' argument conversion).

The device's module is swapped for a timing proxy while the step runs; kernels are looked up through
`device.mod` (NDArray, fused ops) or the device's attributes, so each call passes through the proxy."""
from __future__ import annotations

import time
from collections import defaultdict
from contextlib import contextmanager
from typing import Callable, Iterator

import needle.backend_ndarray as nd


class _TimedModule:
    """Forwards attribute lookups to `mod`; callables come back wrapped in a timer keyed by their name."""

    def __init__(self, mod, totals: dict, counts: dict):
        self._mod, self._totals, self._counts = mod, totals, counts

    def __getattr__(self, name: str):
        value = getattr(self._mod, name)
        if not callable(value):
            return value
        totals, counts, clock = self._totals, self._counts, time.perf_counter

        def timed(*args, **kwargs):
            start = clock()
            try:
                return value(*args, **kwargs)
            finally:
                totals[name] += clock() - start
                counts[name] += 1

        return timed


@contextmanager
def kernel_timer(device: nd.BackendDevice) -> Iterator[tuple[dict, dict]]:
    """Yields (seconds by kernel name, calls by kernel name), filled by the calls made inside the block."""
    totals: dict = defaultdict(float)
    counts: dict = defaultdict(int)
    real = device.mod
    device.mod = _TimedModule(real, totals, counts)
    try:
        yield totals, counts
    finally:
        device.mod = real


def profile_step(step: Callable[[], None], device: nd.BackendDevice | None = None, calls: int = 3,
                 top: int = 3) -> str:
    """One line: the `top` kernels by time (ms per step), the kernel calls per step, and the Python share:
    the part of the timed steps' wall time spent outside kernel calls (the timer's own cost, well under a
    microsecond per call, counts as Python)."""
    device = device or nd.cpu()
    step()  # warm: first-call allocations and caches are not part of a step
    with kernel_timer(device) as (totals, counts):
        start = time.perf_counter()
        for _ in range(calls):
            step()
        wall = time.perf_counter() - start
    ranked = sorted(totals.items(), key=lambda kv: -kv[1])[:top]
    names = ", ".join(f"{name} {t / calls * 1e3:.1f}" for name, t in ranked)
    ops = sum(counts.values()) // calls
    python = max(0.0, 1.0 - sum(totals.values()) / wall)
    return f"{names}; {ops} kernel calls, Python {python:.0%}"
