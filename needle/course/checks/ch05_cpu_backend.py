"""Chapter 05 (course hw3 parts 2–5): the C++ kernels of the CPU device, written in `%%needle_cpp` cells.

Each exercise is a bundle of device kernels with the course's names, installed over `ndl.cpu()`'s module
(`device_kernels.py`). A check runs the learner's kernels through NDArray (views, ops, reductions and matmul on
cpu()) on random shapes and strided views and compares with numpy; every other kernel is needle's, so one bug
gives one failure. The check runs first in a child process (`sandbox.py`); in the notebook it reports that trial.
"""
from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import numpy as np

from .. import kernel_checks as kc
from ..cases import random_shape, rng_for
from ..compare import expect, expect_close
from ..device_kernels import ELEMENTWISE, cpu as CPU_KERNELS, target
from ..errors import CheckFailed
from ..registry import exercise_check
from ..sandbox import Build, note_case, reported



def _nd():
    from needle.backend_ndarray import ndarray

    return ndarray


def kernel_exercise(exercise_id: str, bundle: str, kernels: tuple[str, ...], hint: str, hints: tuple[str, ...] = ()):
    """Register a kernel-bundle exercise of cpu() whose check is `fn()` (run with the learner's bundle installed)."""
    CPU_KERNELS.declare(bundle, kernels)

    def register(fn: Callable[[], int]) -> Callable[[], int]:
        def check(impl) -> int:
            bound = set(getattr(impl, "kernels", {})) if isinstance(impl, Build) else set(kernels)
            missing = [k for k in kernels if k not in bound]
            expect(not missing, "your PYBIND11_MODULE block does not bind " + ", ".join(missing)
                   + " (each kernel needs its m.def(\"name\", ...) line)")
            return fn()

        check.__name__ = fn.__name__
        exercise_check(exercise_id, target=target("cpu", bundle), hint=hint, language="c++", hints=hints)(reported(check))
        return fn

    return register


def _array(x: np.ndarray):
    nd = _nd()
    return nd.NDArray(np.ascontiguousarray(x, dtype=np.float32), device=nd.cpu())


@contextlib.contextmanager
def _case(text: str) -> Iterator[None]:
    """One case: noted for the child-process trial (so a crash or a hang names it)."""
    note_case(text)
    yield


def _strided_views(name: str, count: int) -> Iterator[tuple[object, np.ndarray, str]]:
    return kc.strided_views(rng_for(name), count, _array)


# ---- compact and setitem ----


@kernel_exercise("cpu_backend.compact", "compact", ("compact",),
                 hint="walk the view's multi-index like an odometer, the last axis fastest: the element with index "
                      "(i0, i1, ...) sits at offset + i0*strides[0] + i1*strides[1] + ... in a, and goes to the next "
                      "slot of out. compact gathers; the two setitems scatter along the same walk",
                 hints=("the idea: keep one index per axis, like the wheels of an odometer; visit the view's elements in "
                        "row-major order (the last index turns fastest) and give the k-th element visited to slot k "
                        "of out",
                        "the formula: the element with index (i0, ..., i_{d-1}) sits at offset + sum_j i_j * strides[j] "
                        "of a's buffer; after each visit add 1 to the last index, and when an index reaches shape[j] "
                        "set it to 0 and add 1 to the index before it. Negative strides need a signed position",
                        "the shape of the code: ForEachPosition keeps a std::vector<int32_t> index(ndim, 0), loops k "
                        "over the number of elements, computes pos as an int64_t and calls visit(k, pos); Compact's "
                        "visit copies a.ptr[pos] into out->ptr[k]"))
def check_compact() -> int:
    return kc.check_compact(_strided_views("cpu_backend.compact", 14), _case)


def _setitem_cases(name: str, count: int):
    return kc.setitem_cases(rng_for(name), count)


@kernel_exercise("cpu_backend.ewise_setitem", "ewise_setitem", ("ewise_setitem",),
                 hint="the walk of compact with the roles swapped: element k of the compact source a goes to the "
                      "k-th position of the view (shape, strides, offset) in out; nothing else of out changes",
                 hints=("the idea: the same walk over the view as compact, writing instead of reading: the source a is "
                        "compact, the view lives in out",
                        "the formula: element k of a goes to position offset + sum_j i_j * strides[j] of out, where "
                        "(i_0, i_1, ...) is the view's k-th index in row-major order",
                        "the shape of the code: ForEachPosition with a visit that copies a.ptr[k] into out->ptr[pos]"))
def check_ewise_setitem() -> int:
    return kc.check_setitem(_setitem_cases("cpu_backend.ewise_setitem", 12), _array, _case, scalar=False,
                            texts=lambda v, d: (f"setitem of {v.shape} values into a view with {d}",
                                                f"the array after writing {v.shape} values into its view with {d}"))


@kernel_exercise("cpu_backend.scalar_setitem", "scalar_setitem", ("scalar_setitem",),
                 hint="the walk of compact once more: every position of the view (shape, strides, offset) in out "
                      "receives val; size is the number of positions",
                 hints=("the idea: the walk of compact, writing one value wherever the view reaches",
                        "the formula: every position offset + sum_j i_j * strides[j] of out receives val",
                        "the shape of the code: ForEachPosition with a visit that stores val at out->ptr[pos] (the "
                        "count k is not needed)"))
def check_scalar_setitem() -> int:
    return kc.check_setitem(_setitem_cases("cpu_backend.scalar_setitem", 12), _array, _case, scalar=True,
                            texts=lambda v, d: (f"setitem of the scalar {v:.4g} into a view with {d}",
                                                f"the array after writing {v:.4g} into its view with {d}"))


# ---- elementwise and scalar ops ----


@kernel_exercise("cpu_backend.elementwise", "elementwise", ELEMENTWISE,
                 hint="each kernel is one loop over the flat buffers: element i of the input(s), and the scalar if "
                      "there is one, gives element i of out. Comparisons give 1.0 or 0.0; log, exp, tanh and power "
                      "come from <cmath>",
                 hints=("the idea: NDArray hands your kernels compact buffers of equal size, so element i of the inputs "
                        "gives element i of out, whatever the shape",
                        "the formula: Apply holds one element's arithmetic per Op (x + y, x * y, x / y, x to the power "
                        "y, the larger of x and y, 1.0f or 0.0f for == and >=, log, exp or tanh of x); each loop runs "
                        "i from 0 to a.size",
                        "the shape of the code: Apply is a switch over op with one return per case; Ewise stores "
                        "Apply(op, a.ptr[i], b.ptr[i]) in out->ptr[i], Scalar passes val as y, Unary passes 0"))
def check_elementwise() -> int:
    rng = rng_for("cpu_backend.elementwise")
    cases = 0
    for kernel, op, numpy_op, kind in kc.ops():
        for trial in range(2):
            shape = random_shape(rng, 1, 3, 7)
            a, b, s = kc.operands(rng, shape, kind)
            a_nd, b_nd = _array(a), _array(b)
            if trial == 1 and a.ndim >= 2:  # a strided operand (compacted by needle before your kernel runs)
                a, a_nd = a.T.copy(), _array(a).permute(tuple(reversed(range(a.ndim))))
                b, b_nd = b.T.copy(), _array(b).permute(tuple(reversed(range(b.ndim))))
            kc.check_op(kernel, op, numpy_op, a, b, s, a_nd, b_nd, _case, what=kernel,
                        desc=kc.elementwise_desc(kernel, a.shape, s))
            cases += 1
    return cases


# ---- reductions ----


@kernel_exercise("cpu_backend.reductions", "reductions", ("reduce_sum", "reduce_max"),
                 hint="out has a.size / reduce_size elements; element i combines the consecutive block "
                      "a[i*reduce_size], ..., a[(i+1)*reduce_size - 1]. A maximum starts from a value of its block "
                      "(the numbers may all be negative), and out arrives uninitialised",
                 hints=("the idea: the input is a row of consecutive blocks of reduce_size elements; each block becomes "
                        "one element of out",
                        "the formula: out[i] = the sum (or the maximum) of a[i*reduce_size + j] for j < reduce_size; "
                        "a sum starts from 0, a maximum from the block's first element",
                        "the shape of the code: a loop over the blocks, an accumulator per block, a loop over the "
                        "block's elements, then one store into out->ptr[i]"))
def check_reductions() -> int:
    nd = _nd()
    rng = rng_for("cpu_backend.reductions")
    cases = 0
    for i in range(12):
        shape = random_shape(rng, 1, 3, 7)
        data = rng.standard_normal(shape).astype(np.float32) - np.float32(3.0 if i % 3 == 0 else 0.0)
        axis = None if i % 5 == 4 else int(rng.integers(0, len(shape)))
        keepdims = bool(i % 2)
        a = _array(data)
        cases += kc.check_reduction(a, data, axis, keepdims, _case,
                                    what=lambda name: f"a.{name}(axis={axis}, keepdims={keepdims})",
                                    desc=lambda name: f"{name}(axis={axis}, keepdims={keepdims}) of shape {shape}")
    # straight into a buffer that holds old numbers: out starts uninitialised
    cases += kc.check_raw_reductions(rng, nd.cpu(), _array, _case,
                                     case_text=lambda kernel: f"{kernel}(a, out, 6) of 24 numbers, out holding 7.0 before")
    return cases


# ---- matmul ----


def _matmul_cases(rng: np.random.Generator, sizes: list[int], count: int, tiled: bool):
    for i in range(count):
        m, n, p = (int(rng.choice(sizes)) for _ in range(3))
        if not tiled and m % 8 == 0 and n % 8 == 0 and p % 8 == 0:
            m += 1
        yield i, m, n, p


def _matmul_check(name: str, kernel: str, sizes: list[int], tiled: bool) -> int:
    nd = _nd()
    rng = rng_for(name)
    cases = 0
    for i, m, n, p in _matmul_cases(rng, sizes, 8, tiled):
        a, b, a_nd, b_nd, layout = kc.matmul_operands(rng, i, m, n, p, _array, batch=not tiled)
        note_case(f"{kernel}: ({m} x {n}) @ ({n} x {p}){layout}")
        expect_close(a_nd @ b_nd, a.astype(np.float64) @ b.astype(np.float64), rtol=1e-4, atol=1e-4,
                     what=f"a @ b for a {a.shape}, b {b.shape}{layout}", inputs={"a": a, "b": b})
        cases += 1
    # the kernel alone, into an out buffer that holds old numbers: out starts uninitialised
    m, n, p = (16, 8, 24) if tiled else (5, 7, 3)
    a = rng.standard_normal((m, n)).astype(np.float32)
    b = rng.standard_normal((n, p)).astype(np.float32)
    if tiled:
        tile = lambda x: x.reshape(x.shape[0] // 8, 8, x.shape[1] // 8, 8).transpose(0, 2, 1, 3)  # noqa: E731
        a_in, b_in = _array(tile(a)), _array(tile(b))
        out = nd.cpu().full((m // 8, p // 8, 8, 8), 7.0)
        expected = tile(a.astype(np.float64) @ b.astype(np.float64))
    else:
        a_in, b_in = _array(a), _array(b)
        out = nd.cpu().full((m, p), 7.0)
        expected = a.astype(np.float64) @ b.astype(np.float64)
    note_case(f"{kernel}(a, b, out, {m}, {n}, {p}) into an out holding 7.0 before")
    getattr(nd.cpu(), kernel)(a_in._handle, b_in._handle, out._handle, m, n, p)
    expect_close(out, expected, rtol=1e-4, atol=1e-4, inputs={"a": a, "b": b},
                 what=f"{kernel}(a, b, out, {m}, {n}, {p}) into an out that held 7.0 before (out is not zeroed for you)")
    return cases + 1


@kernel_exercise("cpu_backend.matmul", "matmul", ("matmul",),
                 hint="out (m x p) = a (m x n) times b (n x p), all three compact and row-major: element (i, j) of a "
                      "sits at position i*n + j of its buffer. out arrives uninitialised",
                 hints=("the idea: element (i, j) of out is the dot product of row i of a with column j of b",
                        "the formula: out[i*p + j] = sum over k < n of a[i*n + k] * b[k*p + j], for every i < m and "
                        "j < p; every element of out is written, since it arrives uninitialised",
                        "the shape of the code: loops over i and j, a scalar_t accumulator starting at 0, a loop over "
                        "k adding the products, then one store into out->ptr[i * p + j]"))
def check_matmul() -> int:
    return _matmul_check("cpu_backend.matmul", "matmul", [1, 2, 3, 5, 7, 8, 9, 13, 16, 17], tiled=False)


@kernel_exercise("cpu_backend.matmul_tiled", "matmul_tiled", ("matmul_tiled",),
                 hint="the buffers hold TILE x TILE tiles, each contiguous: a is an (m/TILE) x (n/TILE) grid of "
                      "tiles, b (n/TILE) x (p/TILE), out (m/TILE) x (p/TILE). Tile (i, j) of out is the sum over k of "
                      "tile (i, k) of a times tile (k, j) of b; AlignedDot adds one such tile product into out",
                 hints=("the idea: the same product as matmul, computed one TILE x TILE tile at a time: three tiles "
                        "fit the L1 cache, and a tile's rows fit vector registers",
                        "the formula: tile (i, j) of out is the sum over k of tile (i, k) of a times tile (k, j) of b; "
                        "tile (i, k) of a starts at (i * n/TILE + k) * TILE*TILE in a's buffer (b likewise with p/TILE, "
                        "out with p/TILE); inside AlignedDot, out[r][c] += sum_s a[r][s] * b[s][c]",
                        "the shape of the code: set out to zero, then loops over i < m/TILE, j < p/TILE and k < n/TILE "
                        "that call AlignedDot with the three tiles' pointers; AlignedDot is three loops of TILE"))
def check_matmul_tiled() -> int:
    return _matmul_check("cpu_backend.matmul_tiled", "matmul_tiled", [8, 16, 24, 32], tiled=True)


__all__ = ["ELEMENTWISE", "CheckFailed"]
