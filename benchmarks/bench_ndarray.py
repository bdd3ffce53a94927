"""NDArray on cpu() against numpy, side by side in one run: matmul (square 64-2048 and the skinny shapes of
a language model's output layer, with transposed operands as its backward pass has them), then elementwise
ops, transcendental functions and reductions over 1-16 M elements, as time ratios (needle / numpy; below 1
means needle is faster).

`python -m benchmarks.bench_ndarray` (or `python -m benchmarks ndarray`). Both libraries get the same
inputs and the same timer; numpy's matmul uses its BLAS threads, needle its OpenMP threads (numpy's
elementwise functions run on one thread).
"""
from __future__ import annotations

import os

import numpy as np

import needle.backend_ndarray as nd
from benchmarks.common import core_count, interleaved_best, print_table

MATMUL_SIZES = (64, 128, 256, 512, 1024, 2048)
# (m, k, n, transpose A, transpose B): an LM's output layer, 320 tokens x hidden 100 x vocabulary 10,000:
# forward X @ W, the input gradient dY @ W^T, the weight gradient X^T @ dY
SKINNY = ((320, 100, 10_000, False, False), (320, 10_000, 100, False, True), (100, 320, 10_000, True, False))
ELEMENTWISE_SIZES = (1 << 20, 1 << 22, 1 << 24)


def _pair(shape, seed: int, positive: bool = False):
    """A float32 numpy array and the same values as an NDArray on cpu()."""
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    x = np.abs(x) + 0.5 if positive else x
    return x, nd.array(x, device=nd.cpu())


def _ratio_row(label: str, f_np, f_nd, flop: float | None = None) -> list:
    t_np, t_nd = interleaved_best([f_np, f_nd], rounds=7, min_time=0.05)
    if flop is not None:
        return [label, flop / t_np / 1e9, flop / t_nd / 1e9, t_nd / t_np]
    return [label, t_np * 1e3, t_nd * 1e3, t_nd / t_np]


def _operand(shape, seed: int, transposed: bool):
    """(numpy, NDArray) of `shape`, as a transposed view of stored (shape[1], shape[0]) data when asked."""
    if not transposed:
        return _pair(shape, seed)
    x, a = _pair(shape[::-1], seed)
    return x.T, a.permute((1, 0))


def matmul_rows() -> list[list]:
    cases = [(n, n, n, False, False) for n in MATMUL_SIZES] + list(SKINNY)
    rows = []
    for m, k, n, ta, tb in cases:
        (x, a), (y, b) = _operand((m, k), 0, ta), _operand((k, n), 1, tb)
        label = f"{m}{'ᵀ' if ta else ''} x {k} x {n}{'ᵀ' if tb else ''}"
        rows.append(_ratio_row(label, lambda: x @ y, lambda: a @ b, flop=2.0 * m * k * n))
    return rows


def op_rows() -> list[list]:
    rows = []
    for size in ELEMENTWISE_SIZES:
        (x, a), (y, b) = _pair(size, 2), _pair(size, 3, positive=True)
        label = f"{size >> 20}M"
        for name, f_np, f_nd in [
            ("add", lambda: x + y, lambda: a + b),
            ("div", lambda: x / y, lambda: a / b),
            ("exp", lambda: np.exp(x), lambda: a.exp()),
            ("log", lambda: np.log(y), lambda: b.log()),
            ("tanh", lambda: np.tanh(x), lambda: a.tanh()),
            ("sum", lambda: x.sum(), lambda: a.sum()),
            ("max", lambda: x.max(), lambda: a.max()),
        ]:
            rows.append(_ratio_row(f"{name} {label}", f_np, f_nd))
    x, a = _pair((64, 128, 32, 32), 4)  # NCHW -> NHWC, 8M elements
    rows.append(_ratio_row("compact permute(0,2,3,1) 8M", lambda: np.ascontiguousarray(x.transpose(0, 2, 3, 1)),
                           lambda: a.permute((0, 2, 3, 1)).compact()))
    for shape in ((4096, 4096), (320, 10_000)):
        x, a = _pair(shape, 5)
        for axis in (0, 1):
            rows.append(_ratio_row(f"sum axis={axis} {shape[0]}x{shape[1]}", lambda: x.sum(axis=axis),
                                   lambda: a.sum(axis=axis)))
        rows.append(_ratio_row(f"max axis=1 {shape[0]}x{shape[1]}", lambda: x.max(axis=1), lambda: a.max(axis=1)))
    return rows


def main() -> None:
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"cpu cores: {core_count()}, load average: {load} (ratios are only meaningful on an idle machine)")
    print_table("matmul float32 (GFLOP/s; target needle/numpy time <= 1.1, i.e. >= 0.9x numpy's speed)",
                ["m x k x n (ᵀ: a transposed view)", "numpy", "needle", "needle/numpy"], matmul_rows())
    print_table("float32 ops (ms; target needle/numpy <= 1.0)",
                ["op", "numpy ms", "needle ms", "needle/numpy"], op_rows())


if __name__ == "__main__":
    main()
