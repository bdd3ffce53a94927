"""CUDA: the simulator's speed on the course's matmul kernels (always), and on a GPU (when cuda() is enabled)
needle's matmul against cuBLAS through cupy.matmul, float32 GFLOP/s at 1024-8192, measured in one run."""
from __future__ import annotations

import numpy as np

import needle.backend_ndarray as nd
from benchmarks.common import best_time, print_table


def _simulator() -> None:
    dev = nd.cuda_sim()
    if not dev.enabled():
        print("cuda_sim() is not built")
        return
    rows = []
    for n in (128, 256):
        a, b = (nd.array(np.random.randn(n, n), device=dev) for _ in range(2))
        out = nd.empty((n, n), device=dev)
        shared = best_time(lambda: dev.matmul_shared(a._handle, b._handle, out._handle, n, n, n), repeat=2)
        library = best_time(lambda: a @ b, repeat=2)
        rows.append([n, library * 1e3, shared * 1e3])
    print_table("cuda_sim(): course matmul kernels on the CPU", ["n", "matmul_strided ms", "matmul_shared ms"], rows)


def _gpu() -> None:
    dev = nd.cuda()
    if not dev.enabled():
        print("cuda() is not enabled (no GPU or no CuPy): GPU figures skipped")
        return
    import cupy

    rows = []
    for n in (1024, 2048, 4096, 8192):
        a_np, b_np = np.random.randn(n, n).astype(np.float32), np.random.randn(n, n).astype(np.float32)
        a, b = nd.array(a_np, device=dev), nd.array(b_np, device=dev)
        ca, cb = cupy.asarray(a_np), cupy.asarray(b_np)

        def ours():
            a @ b
            cupy.cuda.Device().synchronize()

        def cublas():
            cupy.matmul(ca, cb)
            cupy.cuda.Device().synchronize()

        flops = 2 * n**3
        t_ours, t_cublas = best_time(ours, repeat=3), best_time(cublas, repeat=3)
        rows.append([n, flops / t_ours / 1e9, flops / t_cublas / 1e9, t_cublas / t_ours])
    print_table("cuda(): float32 matmul vs cuBLAS", ["n", "needle GFLOP/s", "cuBLAS GFLOP/s", "needle/cuBLAS (target >= 0.5)"], rows)


def main() -> None:
    _simulator()
    _gpu()


if __name__ == "__main__":
    main()
