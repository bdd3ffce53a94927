"""Kernel efficiency on one thread, in process CPU time: needle cpu() against numpy and PyTorch, each held to
one thread. Other processes on a shared machine then change the numbers little (wall-clock ratios there
swing 2x from run to run, because a sleeping worker thread waits for a core), so this is where a kernel
change shows. Cases: the matmuls of an LSTM language model's step (the output layer 320 x 100 x 10,000 and
its transposed backward products, the recurrent 16 x 1600 x 400 ones), a conv weight gradient, square
sizes, and exp/log/tanh/div/max over 1 M elements.

`python -m benchmarks single_thread`: it re-runs itself in a child process with OMP_NUM_THREADS=1 (OpenMP
reads it at start-up)."""
from __future__ import annotations

import os
import subprocess
import sys
import time

ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
# (m, k, n, transpose A, transpose B)
MATMULS = ((64, 64, 64, False, False), (256, 256, 256, False, False), (1024, 1024, 1024, False, False),
           (320, 100, 10_000, False, False), (320, 10_000, 100, False, True), (100, 320, 10_000, True, False),
           (16, 400, 1600, False, False), (16, 1600, 400, False, True), (400, 16, 1600, True, False),
           (147, 8192, 16, True, False))


def cpu_time(fn, rounds: int = 5, min_time: float = 0.1) -> float:
    """Best CPU seconds per call over `rounds` rounds of at least `min_time` CPU seconds each."""
    fn()
    best = float("inf")
    for _ in range(rounds):
        start, calls = time.process_time(), 0
        while time.process_time() - start < min_time:
            fn()
            calls += 1
        best = min(best, (time.process_time() - start) / calls)
    return best


def _rows() -> tuple[list, list]:
    import numpy as np

    from .bench_ndarray import _operand, _pair
    from .common import torch_or_none

    torch = torch_or_none()
    mm = []
    for m, k, n, ta, tb in MATMULS:
        (x, a), (y, b) = _operand((m, k), 0, ta), _operand((k, n), 1, tb)
        fns = [lambda: a @ b, lambda: x @ y]
        if torch is not None:
            tx, ty = torch.from_numpy(x), torch.from_numpy(y)  # the same memory, transposed views stay views
            fns.append(lambda: tx @ ty)
        t = [cpu_time(f) for f in fns] + [float("nan")]
        label = f"{m}{'ᵀ' if ta else ''} x {k} x {n}{'ᵀ' if tb else ''}"
        mm.append([label, t[0] * 1e3, t[1] * 1e3, t[2] * 1e3, t[0] / t[1], t[0] / t[2]])
    ops = []
    (x, a), (y, b) = _pair(1 << 20, 2), _pair(1 << 20, 3, positive=True)
    for name, f_np, f_nd in [("exp", lambda: np.exp(x), lambda: a.exp()), ("log", lambda: np.log(y), lambda: b.log()),
                             ("tanh", lambda: np.tanh(x), lambda: a.tanh()), ("div", lambda: x / y, lambda: a / b),
                             ("max", lambda: x.max(), lambda: a.max())]:
        t_np, t_nd = cpu_time(f_np), cpu_time(f_nd)
        ops.append([f"{name} 1M", t_np * 1e3, t_nd * 1e3, t_nd / t_np])
    return mm, ops


def main() -> None:
    if any(os.environ.get(k) != v for k, v in ONE_THREAD.items()):
        subprocess.run([sys.executable, "-m", "benchmarks.bench_single_thread"], env={**os.environ, **ONE_THREAD},
                       check=True)
        return
    from .common import print_table

    mm, ops = _rows()
    print_table("matmul on one thread (CPU ms; ᵀ: a transposed view)",
                ["m x k x n", "needle", "numpy", "torch", "needle/numpy", "needle/torch"], mm)
    print_table("float32 ops on one thread (CPU ms)", ["op", "numpy", "needle", "needle/numpy"], ops)


if __name__ == "__main__":
    main()
