"""The cases both kernel chapters check through NDArray: chapter 05 on cpu(), chapter 06 on the CUDA device.

Each chapter passes its device's array maker (`array(x)`: a float32 NDArray on the device) and its way of running
one case (`case(text)`: chapter 05 notes it for the child-process trial, chapter 06 also turns an error the device
reports into that case's failure); what is particular to a chapter (its larger-than-the-grid cases, its messages)
stays in its checks module.
"""
from __future__ import annotations

from typing import Any, Callable, ContextManager, Iterator

import numpy as np

from .cases import random_shape
from .compare import expect, expect_close

Array = Callable[[np.ndarray], Any]
Case = Callable[[str], ContextManager]


def describe(view) -> str:
    return f"shape {view.shape}, strides {view.strides}, offset {view._offset}"


def random_slices(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[slice, ...]:
    """A slice per axis: random start, stop and step (1–3, sometimes negative), never empty."""
    out = []
    for n in shape:
        step = int(rng.integers(1, 4)) * (-1 if n > 1 and rng.random() < 0.25 else 1)
        start = int(rng.integers(0, n))
        if step > 0:
            stop = int(rng.integers(start + 1, n + 1))
        else:
            stop = int(rng.integers(-1, start)) if start > 0 else -1
            stop = None if stop < 0 else stop
        out.append(slice(start, stop, step))
    return tuple(out)


def strided_views(rng: np.random.Generator, count: int, array: Array) -> Iterator[tuple[Any, np.ndarray, str]]:
    """(NDArray view, the same view in numpy, its description): permuted, sliced with steps and offsets, broadcast."""
    for i in range(count):
        shape = random_shape(rng, 2 if i % 4 != 1 else 1, 4, 6)
        data = rng.standard_normal(shape).astype(np.float32)
        a, ref = array(data), data
        kind = i % 4
        if kind in (0, 3):  # axes permuted
            perm = tuple(int(p) for p in rng.permutation(len(shape)))
            if perm == tuple(range(len(shape))):
                perm = perm[::-1]
            a, ref = a.permute(perm), np.transpose(ref, perm)
        if kind in (1, 3):  # sliced: an offset, steps, reversed axes
            sl = random_slices(rng, a.shape)
            a, ref = a[sl], ref[sl]
        if kind == 2:  # one axis repeated by broadcasting (stride 0)
            axis = int(rng.integers(0, len(shape)))
            a = array(data.take([0], axis=axis)).broadcast_to(shape)
            ref = np.broadcast_to(data.take([0], axis=axis), shape)
        yield a, np.array(ref), describe(a)


def setitem_cases(rng: np.random.Generator, count: int):
    """(rng, target array in numpy, permutation, slices): the view written is target.permute(perm)[slices]."""
    for _ in range(count):
        shape = random_shape(rng, 1, 4, 6)
        data = rng.standard_normal(shape).astype(np.float32)
        perm = tuple(int(p) for p in rng.permutation(len(shape)))
        yield rng, data, perm, random_slices(rng, tuple(shape[p] for p in perm))


def check_setitem(cases, array: Array, case: Case, scalar: bool,
                  texts: Callable[[Any, str], tuple[str, str]]) -> int:
    """Writing into target.permute(perm)[slices] (an array of values, or with `scalar` one value) changes that view of
    the target as numpy does, and nothing else. `texts(what is written, the view's description)` gives the case's
    text and the failure's."""
    count = 0
    for rng, data, perm, sl in cases:
        target_nd, expected = array(data), data.copy()
        view = target_nd.permute(perm)[sl]
        if scalar:
            written, inputs = float(np.float32(rng.standard_normal())), None
        else:
            written = rng.standard_normal(view.shape).astype(np.float32)
            inputs = {"values": written}
        np.transpose(expected, perm)[sl] = written
        case_text, what = texts(written, describe(view))
        with case(case_text):
            target_nd.permute(perm)[sl] = written if scalar else array(written)
        expect_close(target_nd.numpy(), expected, rtol=0, atol=0, what=what, inputs=inputs)
        count += 1
    return count


def check_compact(views: Iterator[tuple[Any, np.ndarray, str]], case: Case) -> int:
    """compact() of each view equals numpy's, and leaves the source buffer as it was."""
    from needle.backend_ndarray.ndarray import NDArray

    cases = 0
    for view, ref, desc in views:
        before = view._handle  # the source buffer must be left as it was
        source = NDArray.make((before.size,), device=view.device, handle=before).numpy()
        with case(f"compact() of a view with {desc}"):
            got = view.compact()
        expect(got.is_compact(), f"compact() of a view with {desc} did not give a compact array")
        expect_close(got.numpy(), ref, what=f"compact() of a view with {desc}", rtol=0, atol=0)
        after = NDArray.make((before.size,), device=view.device, handle=before).numpy()
        expect_close(after, source, rtol=0, atol=0,
                     what=f"the source buffer after compact() of a view with {desc} (it must not change)")
        cases += 1
    return cases


# ---- elementwise and scalar ops ----


def ops() -> list[tuple[str, Callable, Callable, str]]:
    """(kernel, NDArray expression, numpy expression, input kind) for every elementwise kernel."""
    f32 = np.float32
    return [
        ("ewise_add", lambda a, b, s: a + b, lambda a, b, s: a + b, "any"),
        ("scalar_add", lambda a, b, s: a + s, lambda a, b, s: a + f32(s), "any"),
        ("ewise_mul", lambda a, b, s: a * b, lambda a, b, s: a * b, "any"),
        ("scalar_mul", lambda a, b, s: a * s, lambda a, b, s: a * f32(s), "any"),
        ("ewise_div", lambda a, b, s: a / b, lambda a, b, s: a / b, "nonzero"),
        ("scalar_div", lambda a, b, s: a / s, lambda a, b, s: a / f32(s), "any"),
        ("scalar_power", lambda a, b, s: a ** 3.0, lambda a, b, s: a ** f32(3.0), "any"),
        ("scalar_power", lambda a, b, s: a ** 0.5, lambda a, b, s: a ** f32(0.5), "positive"),
        ("ewise_maximum", lambda a, b, s: a.maximum(b), lambda a, b, s: np.maximum(a, b), "any"),
        ("scalar_maximum", lambda a, b, s: a.maximum(s), lambda a, b, s: np.maximum(a, f32(s)), "any"),
        ("ewise_eq", lambda a, b, s: a == b, lambda a, b, s: (a == b).astype(f32), "shared"),
        ("scalar_eq", lambda a, b, s: a == s, lambda a, b, s: (a == f32(s)).astype(f32), "shared"),
        ("ewise_ge", lambda a, b, s: a >= b, lambda a, b, s: (a >= b).astype(f32), "shared"),
        ("scalar_ge", lambda a, b, s: a >= s, lambda a, b, s: (a >= f32(s)).astype(f32), "shared"),
        ("ewise_log", lambda a, b, s: a.log(), lambda a, b, s: np.log(a), "positive"),
        ("ewise_exp", lambda a, b, s: a.exp(), lambda a, b, s: np.exp(a), "any"),
        ("ewise_tanh", lambda a, b, s: a.tanh(), lambda a, b, s: np.tanh(a), "any"),
    ]


def operands(rng: np.random.Generator, shape: tuple[int, ...], kind: str) -> tuple[np.ndarray, np.ndarray, float]:
    """(a, b, scalar) of an elementwise case whose inputs are of `kind` (any, positive, nonzero, shared)."""
    a = rng.standard_normal(shape).astype(np.float32)
    b = rng.standard_normal(shape).astype(np.float32)
    s = float(np.float32(rng.uniform(0.5, 2.0) * rng.choice([-1, 1])))
    if kind == "positive":
        a = np.abs(a) + np.float32(0.25)
    if kind == "nonzero":
        b = np.where(np.abs(b) < 0.25, np.float32(0.5), b).astype(np.float32)
    if kind == "shared":  # some equal elements, so that == and >= see ties
        b = np.where(rng.random(shape) < 0.5, a, b).astype(np.float32)
        s = float(a.reshape(-1)[0])
    return a, b, s


def check_op(kernel: str, op: Callable, numpy_op: Callable, a: np.ndarray, b: np.ndarray, s: float, a_nd, b_nd,
             case: Case, what: str, desc: str) -> None:
    """One elementwise case: op(a_nd, b_nd, s) equals numpy's, and a_nd is left as it was."""
    with np.errstate(all="ignore"):
        expected = numpy_op(a, b, s)
    with case(desc):
        got = op(a_nd, b_nd, s)
    if kernel in ("ewise_log", "ewise_exp", "ewise_tanh"):
        inputs = {"a": a}
    else:
        inputs = {"a": a, "scalar": s} if kernel.startswith("scalar") else {"a": a, "b": b}
    expect_close(got, expected, what=what, inputs=inputs, rtol=1e-5, atol=1e-6)
    expect_close(a_nd, a, what=f"the input a after {kernel} (it must not change)", rtol=0, atol=0)


def elementwise_desc(kernel: str, shape: tuple[int, ...], s: float) -> str:
    return f"{kernel} on arrays of shape {shape}" + (f" with the scalar {s:.4g}" if "scalar" in kernel else "")


# ---- reductions ----


def check_reduction(a, data: np.ndarray, axis, keepdims: bool, case: Case, what: Callable[[str], str],
                    desc: Callable[[str], str]) -> int:
    """a.sum and a.max over `axis` equal numpy's (in float64); the number of cases."""
    for name, method, numpy_fn in (("sum", a.sum, np.sum), ("max", a.max, np.max)):
        with case(desc(name)):
            got = method(axis=axis, keepdims=keepdims)
        expected = numpy_fn(data.astype(np.float64), axis=axis, keepdims=keepdims)
        expect_close(got, expected, what=what(name), inputs={"a": data}, rtol=1e-5, atol=1e-5)
    return 2


def check_raw_reductions(rng: np.random.Generator, device, array: Array, case: Case,
                         case_text: Callable[[str], str] | None = None) -> int:
    """reduce_sum and reduce_max called straight, into a buffer that holds old numbers (out starts uninitialised);
    `case_text(kernel)` names the case (default: the failure's text)."""
    for kernel, numpy_fn in (("reduce_sum", np.sum), ("reduce_max", np.max)):
        data = (rng.standard_normal((4, 6)) - 2).astype(np.float32)
        a, out = array(data), device.full((4,), 7.0)
        desc = f"{kernel}(a, out, reduce_size=6) into an out that held 7.0 before (out is not zeroed for you)"
        with case(case_text(kernel) if case_text else desc):
            getattr(device, kernel)(a._handle, out._handle, 6)
        expect_close(out, numpy_fn(data.astype(np.float64), axis=1), rtol=1e-5, atol=1e-5, what=desc,
                     inputs={"a": data})
    return 2


# ---- matmul ----


def matmul_operands(rng: np.random.Generator, i: int, m: int, n: int, p: int, array: Array, batch: bool):
    """(a, b, a_nd, b_nd, layout) of the i-th product: every third a transposed b, every third a batch of 2."""
    a = rng.standard_normal((m, n)).astype(np.float32)
    b = rng.standard_normal((n, p)).astype(np.float32)
    a_nd, b_nd, layout = array(a), array(b), ""
    if i % 3 == 1:  # a transposed operand (compacted by needle before your kernel runs)
        b_nd, layout = array(b.T).permute((1, 0)), " (b a transposed view)"
    if i % 3 == 2 and batch:  # a batch: one product per matrix
        a, b = np.stack([a, a[::-1]]), np.stack([b, -b])
        a_nd, b_nd, layout = array(a), array(b), " (a batch of 2)"
    return a, b, a_nd, b_nd, layout
