"""Chapter 05's speed lesson: matmul GFLOP/s over sizes on this machine, with its caches and its peak drawn in.

    info = machine()
    rows = sweep({"numpy (BLAS)": numpy_matmul, ...}, sizes=[64, 128, 256])
    fig = plot(rows, info)

A kernel to time is `make(n)` -> a zero-argument callable that multiplies two n x n float32 matrices once (the
buffers are prepared outside the timed call). Timings are the best of a few runs: the machine's noise only ever
adds time.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable


# float32 FLOPs per cycle per core: two fused multiply-add units of this vector width (2 FLOPs per lane)
_FLOPS_PER_CYCLE = {"avx512": 2 * 16 * 2, "avx2": 2 * 8 * 2, "generic": 2 * 4 * 2}


@dataclass
class Machine:
    cores: int
    ghz: float | None
    isa: str
    caches: dict[str, int]  # "L1d", "L2", "L3" -> bytes

    @property
    def peak_gflops(self) -> float | None:
        """The nominal float32 peak: cores x clock x FLOPs per cycle of the widest vector unit needle found."""
        if self.ghz is None:
            return None
        return self.cores * self.ghz * _FLOPS_PER_CYCLE.get(self.isa, _FLOPS_PER_CYCLE["generic"])

    def describe(self) -> str:
        caches = ", ".join(f"{k} {v // 1024} KiB" for k, v in self.caches.items())
        clock = f"{self.ghz:.2f} GHz" if self.ghz else "clock unknown"
        peak = f"nominal peak {self.peak_gflops:.0f} GFLOP/s" if self.peak_gflops else "peak unknown"
        return f"{self.cores} cores, {clock}, {self.isa} vectors; {caches}; {peak}"


def _size(text: str) -> int:
    text = text.strip().upper()
    scale = {"K": 1024, "M": 1024**2, "G": 1024**3}.get(text[-1:], 1)
    return int(text.rstrip("KMG")) * scale


def _caches() -> dict[str, int]:
    found: dict[str, int] = {}
    root = Path("/sys/devices/system/cpu/cpu0/cache")
    for index in sorted(root.glob("index*")):
        try:
            level = (index / "level").read_text().strip()
            kind = (index / "type").read_text().strip()
            size = _size((index / "size").read_text())
        except (OSError, ValueError):
            continue
        if kind == "Instruction":
            continue
        found[f"L{level}" + ("d" if level == "1" else "")] = size
    if not found:  # not Linux sysfs: ask sysconf where it knows
        for key, name in (("L1d", "SC_LEVEL1_DCACHE_SIZE"), ("L2", "SC_LEVEL2_CACHE_SIZE"), ("L3", "SC_LEVEL3_CACHE_SIZE")):
            try:
                value = os.sysconf(name)
            except (ValueError, OSError):
                continue
            if value > 0:
                found[key] = value
    return found


def _ghz() -> float | None:
    for path in ("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq",):
        try:
            return int(Path(path).read_text()) / 1e6
        except (OSError, ValueError):
            pass
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("cpu MHz"):
                return float(line.split(":")[1]) / 1000
    except (OSError, ValueError):
        pass
    return None


def machine() -> Machine:
    """This machine as the speed lesson sees it: cores needle may use, clock, vector ISA, cache sizes."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    try:
        from needle.backend_ndarray import ndarray_backend_cpu

        isa = str(getattr(ndarray_backend_cpu, "__gemm_isa__", "generic"))
    except ImportError:
        isa = "generic"
    return Machine(cores, _ghz(), isa, _caches())


def best_time(fn: Callable[[], object], min_time: float = 0.1, max_runs: int = 30) -> float:
    """The fastest of several runs of fn() (at least three, until min_time seconds are spent)."""
    fn()  # warm-up: first touch of the memory, caches, lazy binding
    best, spent, runs = math.inf, 0.0, 0
    while runs < 3 or (spent < min_time and runs < max_runs):
        start = time.perf_counter()
        fn()
        took = time.perf_counter() - start
        best, spent, runs = min(best, took), spent + took, runs + 1
    return best


def sweep(kernels: dict[str, Callable[[int], Callable[[], object]]], sizes: list[int],
          max_seconds: dict[str, float] | None = None) -> dict[str, dict[int, float]]:
    """GFLOP/s of each kernel at each size n (2 n^3 FLOPs per product). A kernel skips the sizes where one run
    would take longer than its max_seconds (default 1 s), predicted from the last size as n^3 grows."""
    rows: dict[str, dict[int, float]] = {}
    for label, make in kernels.items():
        limit = (max_seconds or {}).get(label, 1.0)
        rows[label] = {}
        previous = None
        for n in sizes:
            if previous is not None and previous[1] * (n / previous[0]) ** 3 > limit:
                break
            seconds = best_time(make(n))
            rows[label][n] = 2 * n**3 / seconds / 1e9
            previous = (n, seconds)
    return rows


def plot(rows: dict[str, dict[int, float]], info: Machine, title: str = "matmul speed on this machine"):
    """GFLOP/s over matrix size (log axes), the nominal peak as a line, and where three n x n float32 matrices
    stop fitting into each cache level."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9.5, 4.2))
    ax = fig.add_subplot()
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    sizes = sorted({n for row in rows.values() for n in row})
    for label, row in rows.items():
        ns = sorted(row)
        ax.plot(ns, [row[n] for n in ns], marker="o", label=label)
    if info.peak_gflops:
        ax.axhline(info.peak_gflops, color="black", linestyle="--", linewidth=1)
        ax.text(sizes[0], info.peak_gflops * 1.08, f"nominal peak {info.peak_gflops:.0f} GFLOP/s", fontsize=8)
    bottom = ax.get_ylim()[0]
    for name, size in info.caches.items():
        n = math.sqrt(size / (3 * 4))  # a, b and out, float32
        if sizes and sizes[0] / 2 <= n <= sizes[-1] * 2:
            ax.axvline(n, color="gray", linestyle=":", linewidth=1)
            ax.text(n * 1.04, bottom * 1.3, f"a, b, out fill {name}", fontsize=8, rotation=90, color="gray", va="bottom")
    ax.set_xlabel("n (n x n float32 matrices)")
    ax.set_ylabel("GFLOP/s")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig
