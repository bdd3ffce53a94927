"""Chapter 06 (course hw3 parts 6–9): the CUDA kernels of the device, written in `%%needle_cuda` cells.

Each exercise is a bundle of CUDA kernels installed over the active CUDA device (`cuda()` on a GPU, `cuda_sim()`
without one; `cuda_exercises.py`). A check runs the learner's kernels through NDArray on that device, in the checked
mode (out-of-bounds accesses and results that depend on thread order are errors), on random shapes and strided views,
and compares with numpy; every other kernel is needle's, so one bug gives one failure. The cases are the same on
both devices. One case per check is larger than the grid the device launches, so a kernel without a grid-stride
loop misses elements.
"""
from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import numpy as np

from .. import kernel_checks as kc
from ..cases import random_shape, rng_for
from ..compare import expect_close
from ..cuda_exercises import KERNELS, CudaBuild, active_device, kernel_check, target
from ..device_kernels import ELEMENTWISE
from ..errors import CheckFailed
from ..registry import exercise_check

MATMUL_BYPASSES = ("matmul_strided", "matmul_tiled")


def _nd():
    from needle.backend_ndarray import ndarray

    return ndarray


def kernel_exercise(exercise_id: str, bundle: str, kernels: tuple[str, ...], hint: str, hints: tuple[str, ...],
                    hides: tuple[str, ...] = ()):
    """Register a CUDA kernel-bundle exercise whose check is `fn(build)`: `hint` names the goal, `hints` are the
    tiers of `course.hint` (the idea, the formula, the shape of the code)."""
    KERNELS.declare(bundle, kernels, hides)

    def register(fn: Callable[[CudaBuild], int]) -> Callable[[CudaBuild], int]:
        exercise_check(exercise_id, target=target(bundle), hint=hint, hints=hints, language="cuda")(kernel_check(fn))
        return fn

    return register


@contextlib.contextmanager
def _case(description: str) -> Iterator[None]:
    """An error the simulator (or the GPU) reports while a case runs becomes that case's failure."""
    __tracebackhide__ = True
    try:
        yield
    except CheckFailed:
        raise
    except RuntimeError as err:
        raise CheckFailed(f"{description}: the device stopped your kernel:\n  {err}") from None


def _array(x: np.ndarray):
    nd = _nd()
    return nd.NDArray(np.ascontiguousarray(x, dtype=np.float32), device=active_device())


def big_size() -> int:
    """More elements than the device's largest elementwise launch has threads (at most 2**20)."""
    from needle.backend_ndarray import cuda_launch as geo
    from ..cuda_exercises import _base_module

    return min(_base_module(active_device()).x.max_blocks * geo.THREADS + 77, 1 << 20)


def _strided_views(name: str, count: int) -> Iterator[tuple[object, np.ndarray, str]]:
    """The views of `kernel_checks.strided_views`, then a large transposed view (larger than the grid)."""
    rng = rng_for(name)
    yield from kc.strided_views(rng, count, _array)
    rows = 7
    data = rng.standard_normal((rows, -(-big_size() // rows))).astype(np.float32)
    a = _array(data).permute((1, 0))[:, 1:]
    yield a, np.array(data.T[:, 1:]), kc.describe(a) + " (larger than the grid)"


# ---- compact and setitem ----

_POSITION = ("position(): element i of the view (row-major) has a multi-index; its last index is i % shape[ndim-1], "
             "and dividing i by that length leaves the number whose digits are the other indices (a mixed radix). "
             "meta[d] is shape[d] and meta[ndim + d] is strides[d]",
             "the position is offset + the sum over d of index_d * strides[d]; loop d from ndim - 1 down to 0, "
             "adding (i % meta[d]) * meta[ndim + d] to the offset and dividing i by meta[d]; keep it all in long long "
             "(strides may be negative)")


@kernel_exercise("cuda_backend.compact", "compact", ("compact_f32",),
                 hint="gather the view's elements into out, one thread per element, in row-major order",
                 hints=("each thread takes the elements FOR_EACH_INDEX(i, n) gives it (its number in the grid, then "
                        "steps of the grid's size) and copies the view's element i to out[i]",) + _POSITION
                 + ("compact_f32: FOR_EACH_INDEX(i, n) out[i] = a[position(i, meta, ndim, offset)]",))
def check_compact(build: CudaBuild) -> int:
    return kc.check_compact(_strided_views("cuda_backend.compact", 12), _case)


def _setitem_cases(name: str, count: int):
    """(rng, target array in numpy, permutation, slices): the view written is target.permute(perm)[slices]; the last
    case is larger than the grid."""
    rng = rng_for(name)
    yield from kc.setitem_cases(rng, count)
    data = rng.standard_normal((5, -(-big_size() // 5) + 2)).astype(np.float32)
    yield rng, data, (1, 0), (slice(1, None), slice(None))


@kernel_exercise("cuda_backend.ewise_setitem", "ewise_setitem", ("ewise_setitem_f32",),
                 hint="scatter the compact a into the view of out: element i of a goes to the view's position i",
                 hints=("the walk of compact with the roles swapped: the same position(), the copy the other way",
                        "one grid-stride loop over i < n: out at position(i, ...) receives a[i]; nothing else of out "
                        "changes"))
def check_ewise_setitem(build: CudaBuild) -> int:
    return kc.check_setitem(_setitem_cases("cuda_backend.ewise_setitem", 10), _array, _case, scalar=False,
                            texts=lambda v, d: _written(f"writing {v.shape} values into a view with {d}"))


@kernel_exercise("cuda_backend.scalar_setitem", "scalar_setitem", ("scalar_setitem_f32",),
                 hint="write val to every position of the view of out",
                 hints=("the walk of compact once more, with val in place of a's element",
                        "one grid-stride loop over i < n: out at position(i, ...) receives val"))
def check_scalar_setitem(build: CudaBuild) -> int:
    return kc.check_setitem(_setitem_cases("cuda_backend.scalar_setitem", 10), _array, _case, scalar=True,
                            texts=lambda v, d: _written(f"writing {v:.4g} into a view with {d}"))


def _written(desc: str) -> tuple[str, str]:
    return desc, f"the array after {desc}"


# ---- elementwise and scalar ops ----


@kernel_exercise("cuda_backend.elementwise", "elementwise", tuple(k + "_f32" for k in ELEMENTWISE),
                 hint="each kernel: element i of out from element i of the input(s), and val if there is one",
                 hints=("the elements are independent: one FOR_EACH_INDEX(i, n) loop per kernel, no shared memory, "
                        "no barrier",
                        "comparisons give 1.0f or 0.0f; CUDA's single-precision math functions end in f: powf, fmaxf, "
                        "logf, expf, tanhf",
                        "ewise_add_f32 is FOR_EACH_INDEX(i, n) out[i] = a[i] + b[i]; the other kernels differ only in "
                        "the expression"))
def check_elementwise(build: CudaBuild) -> int:
    rng = rng_for("cuda_backend.elementwise")
    cases = 0
    for kernel, op, numpy_op, kind in kc.ops():
        for trial in range(2):
            shape = random_shape(rng, 1, 3, 7) if trial == 0 else (3, -(-big_size() // 3))
            a, b, s = kc.operands(rng, shape, kind)
            if kernel + "_f32" not in build.kernels:
                continue  # still a stub: needle's kernel runs, nothing to check
            desc = kc.elementwise_desc(kernel, a.shape, s)
            kc.check_op(kernel, op, numpy_op, a, b, s, _array(a), _array(b), _case, what=desc, desc=desc)
            cases += 1
    return cases


# ---- reductions ----


@kernel_exercise("cuda_backend.reductions", "reductions", ("reduce_sum_f32", "reduce_max_f32"),
                 hint="out[i] combines the reduce_size consecutive elements of a that start at i * reduce_size",
                 hints=("one thread per output: a grid-stride loop over the n outputs, and inside it a plain loop "
                        "over the output's block of a",
                        "a sum starts from 0; a maximum starts from its block's first element (the numbers may all be "
                        "negative); out holds old numbers on entry, so assign to it, never add to it",
                        "FOR_EACH_INDEX(i, n) { const float* block = a + i * reduce_size; ...loop over j < "
                        "reduce_size...; out[i] = ...; }"),
                 hides=("reduce_sum_axis", "reduce_max_axis"))
def check_reductions(build: CudaBuild) -> int:
    rng = rng_for("cuda_backend.reductions")
    device = active_device()
    cases = 0
    for i in range(9):
        shape = random_shape(rng, 1, 3, 7) if i < 8 else (-(-big_size() // 4), 4)
        data = rng.standard_normal(shape).astype(np.float32) - np.float32(3.0 if i % 3 == 0 else 0.0)
        axis = None if i % 5 == 4 else (int(rng.integers(0, len(shape))) if i < 8 else 1)
        keepdims = bool(i % 2)
        a = _array(data)
        desc = lambda name: f"a.{name}(axis={axis}, keepdims={keepdims}) of shape {shape}"  # noqa: E731
        cases += kc.check_reduction(a, data, axis, keepdims, _case, what=desc, desc=desc)
    cases += kc.check_raw_reductions(rng, device, _array, _case)
    return cases


# ---- matmul ----


def _matmul_check(name: str, kernel: str, sizes: list[int]) -> int:
    from ..cuda_exercises import overlay

    with overlay(active_device()).preferring(kernel):  # the kernel under check, even while the other is installed
        return _matmul_cases(name, kernel, sizes)


def _matmul_cases(name: str, kernel: str, sizes: list[int]) -> int:
    rng = rng_for(name)
    device = active_device()
    cases = 0
    shapes = [(int(rng.choice(sizes)), int(rng.choice(sizes)), int(rng.choice(sizes))) for _ in range(7)]
    shapes.append((37, 40, 21))  # several tiles along every axis, none of them full at the edges
    for i, (m, n, p) in enumerate(shapes):
        a, b, a_nd, b_nd, layout = kc.matmul_operands(rng, i, m, n, p, _array, batch=True)
        desc = f"a @ b for a {a.shape}, b {b.shape}{layout}"
        with _case(desc):
            got = a_nd @ b_nd
        expect_close(got, a.astype(np.float64) @ b.astype(np.float64), rtol=1e-4, atol=1e-4, what=desc,
                     inputs={"a": a, "b": b})
        cases += 1
    m, n, p = 5, 19, 3
    a = rng.standard_normal((m, n)).astype(np.float32)
    b = rng.standard_normal((n, p)).astype(np.float32)
    out = device.full((m, p), 7.0)
    desc = f"{kernel}(a, b, out, {m}, {n}, {p}) into an out that held 7.0 before (out is not zeroed for you)"
    with _case(desc):
        getattr(device, kernel)(_array(a)._handle, _array(b)._handle, out._handle, m, n, p)
    expect_close(out, a.astype(np.float64) @ b.astype(np.float64), rtol=1e-4, atol=1e-4, what=desc,
                 inputs={"a": a, "b": b})
    return cases + 1


@kernel_exercise("cuda_backend.matmul", "matmul", ("matmul_f32",),
                 hint="one thread computes one element of out = a @ b (all three compact and row-major)",
                 hints=("a 2-D grid: the thread's column of out comes from the x indices (blockIdx.x * blockDim.x + "
                        "threadIdx.x), its row from the y indices",
                        "the grid is rounded up to whole 16 x 16 blocks, so threads outside out must do nothing; "
                        "element (r, c) of an m x n matrix sits at r * n + c",
                        "if (row < m && col < p) { sum a[row][k] * b[k][col] over k < n in a float; write it to "
                        "out[row][col] }"),
                 hides=MATMUL_BYPASSES)
def check_matmul(build: CudaBuild) -> int:
    return _matmul_check("cuda_backend.matmul", "matmul", [1, 2, 3, 5, 7, 13, 16, 17, 31])


@kernel_exercise("cuda_backend.matmul_shared", "matmul_shared", ("matmul_shared_f32",),
                 hint="out = a @ b again, each block staging 16 x 16 tiles of a and b in shared memory",
                 hints=("a loop over k0 = 0, TILE, 2 TILE, ... < n: every thread loads one element of each tile, the "
                        "block waits, every thread adds its row of the a tile times its column of the b tile to its "
                        "sum, the block waits again",
                        "thread (tx, ty) loads a[row][k0 + tx] into a_tile[ty][tx] and b[k0 + ty][col] into "
                        "b_tile[ty][tx], 0.0f where that lies outside a or b; then for k < TILE it adds "
                        "a_tile[ty][k] * b_tile[k][tx]",
                        "both waits are __syncthreads(): the first so that no thread reads a tile element before it "
                        "is loaded, the second so that no thread overwrites a tile another still reads"),
                 hides=MATMUL_BYPASSES)
def check_matmul_shared(build: CudaBuild) -> int:
    return _matmul_check("cuda_backend.matmul_shared", "matmul_shared", [1, 3, 8, 15, 16, 17, 33])


__all__ = ["ELEMENTWISE", "big_size", "check_compact", "check_elementwise", "check_matmul", "check_matmul_shared",
           "check_reductions", "check_ewise_setitem", "check_scalar_setitem"]
