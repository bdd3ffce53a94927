"""Launch geometry of every CUDA kernel, in one place for both launchers (CuPy on a GPU, the simulator).

A geometry is (grid, block). Elementwise kernels loop over their elements with a grid stride, so the grid
is capped at `max_blocks`, a property of the executor: a GPU wants enough blocks to fill its multiprocessors,
the simulator one or two per core (each block is a set of fibers on one OS thread).
"""
from __future__ import annotations

THREADS = 256  # threads per block of the 1-D kernels (elementwise, reductions, matmul_strided)
MATMUL_TILE = 64  # matmul_strided: a block computes a 64 x 64 tile of C (kernels/cuda/matmul.cu)
SHARED_TILE = 16  # matmul_shared: 16 x 16 threads, one output each
ROWS_MIN = 1024  # rows at least this long are reduced by a whole block (reduce_*_rows), shorter by one thread
MAX_GRID_Z = 65535

Geometry = tuple[tuple[int, ...], tuple[int, ...]]


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def elementwise(n: int, max_blocks: int) -> Geometry:
    """One thread per element, at most `max_blocks` blocks (the kernels loop with a grid stride)."""
    return (max(1, min(_cdiv(n, THREADS), max_blocks)),), (THREADS,)


def reduce_rows(outer: int, max_blocks: int) -> Geometry:
    """One block per row (blocks loop over rows beyond the grid)."""
    return (max(1, min(outer, max_blocks)),), (THREADS,)


def use_rows_kernel(reduce: int, inner: int) -> bool:
    """A block per output pays off for long contiguous rows; otherwise one thread per output."""
    return inner == 1 and reduce >= ROWS_MIN


def matmul_strided(batch: int, m: int, p: int) -> Geometry:
    """A 64 x 64 tile of C per block, batch entries along z (looped beyond 65535)."""
    return (_cdiv(p, MATMUL_TILE), _cdiv(m, MATMUL_TILE), max(1, min(batch, MAX_GRID_Z))), (THREADS,)


def matmul_shared(m: int, p: int) -> Geometry:
    """The course's shared-memory kernel: a 16 x 16 block per 16 x 16 tile of C."""
    return (_cdiv(p, SHARED_TILE), _cdiv(m, SHARED_TILE)), (SHARED_TILE, SHARED_TILE)
