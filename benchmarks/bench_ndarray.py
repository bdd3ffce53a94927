"""NDArray on cpu() against numpy, side by side in one run: matmul GFLOP/s, then elementwise ops,
a permuted compact and one-axis sums as time ratios (needle / numpy; below 1 means needle is faster).

`python -m benchmarks.bench_ndarray` (or `python -m benchmarks ndarray`). Both libraries get the same
inputs and the same timer; numpy's matmul uses its BLAS threads, needle its OpenMP threads.
"""
from __future__ import annotations

import os

import numpy as np

import needle.backend_ndarray as nd
from benchmarks.common import best_time, core_count, print_table

MATMUL_SIZES = (256, 512, 1024, 2048)
ELEMENTWISE_SIZES = (1 << 22, 1 << 24)


def _pair(shape, seed: int):
    """A float32 numpy array and the same values as an NDArray on cpu()."""
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    return x, nd.array(x, device=nd.cpu())


def matmul_rows() -> list[list]:
    rows = []
    for n in MATMUL_SIZES:
        (x, a), (y, b) = _pair((n, n), 0), _pair((n, n), 1)
        flop = 2.0 * n**3
        t_np = best_time(lambda: x @ y, repeat=5)
        t_nd = best_time(lambda: a @ b, repeat=5)
        rows.append([f"{n} x {n} x {n}", flop / t_np / 1e9, flop / t_nd / 1e9, t_np / t_nd])
    return rows


def op_rows() -> list[list]:
    rows = []
    for size in ELEMENTWISE_SIZES:
        (x, a), (y, b) = _pair(size, 2), _pair(size, 3)
        label = f"{size >> 20}M"
        for name, f_np, f_nd in [
            ("add", lambda: x + y, lambda: a + b),
            ("mul", lambda: x * y, lambda: a * b),
            ("exp", lambda: np.exp(x), lambda: a.exp()),
        ]:
            rows.append([f"{name} {label}", *_times(f_np, f_nd)])
    x, a = _pair((64, 128, 32, 32), 4)  # NCHW -> NHWC, 8M elements
    rows.append(["compact permute(0,2,3,1) 8M", *_times(lambda: np.ascontiguousarray(x.transpose(0, 2, 3, 1)),
                                                        lambda: a.permute((0, 2, 3, 1)).compact())])
    x, a = _pair((4096, 4096), 5)
    for axis in (0, 1):
        rows.append([f"sum axis={axis} 4096x4096", *_times(lambda: x.sum(axis=axis), lambda: a.sum(axis=axis))])
    return rows


def _times(f_np, f_nd) -> list[float]:
    t_np, t_nd = best_time(f_np, repeat=7), best_time(f_nd, repeat=7)
    return [t_np * 1e3, t_nd * 1e3, t_nd / t_np]


def main() -> None:
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"cpu cores: {core_count()}, load average: {load} (ratios are only meaningful on an idle machine)")
    print_table("matmul float32 (GFLOP/s; target ratio needle/numpy >= 0.8 at 1024)",
                ["size", "numpy", "needle", "needle/numpy"], matmul_rows())
    print_table("float32 ops (ms; target needle/numpy <= 1.2)",
                ["op", "numpy ms", "needle ms", "needle/numpy"], op_rows())


if __name__ == "__main__":
    main()
