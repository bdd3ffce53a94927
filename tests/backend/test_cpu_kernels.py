"""The C++ CPU backend's flat-buffer kernels, called directly and through NDArray, against numpy.

Covers what the NDArray-level tests do not reach: large arrays (the multi-threaded and blocked code
paths), raw (shape, strides, offset) views with negative and zero strides, the packed matmul on
transposed/broadcast batches and awkward sizes, special values for exp/log/tanh, and bad arguments
(which must raise ValueError, never crash: those run in a subprocess).
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import needle.backend_ndarray as nd

cpu = nd.cpu()
if not cpu.enabled():  # pragma: no cover - depends on the build
    pytest.skip("the C++ CPU backend is not built", allow_module_level=True)
mod = cpu.mod

DTYPES = ("float32", "float64")
TOL = {"float32": dict(rtol=1e-5, atol=1e-5), "float64": dict(rtol=1e-12, atol=1e-12)}
FEW = settings(max_examples=25, deadline=None)
SOME = settings(max_examples=60, deadline=None)


def buffer(values: np.ndarray) -> "mod.Array":
    """A device buffer holding `values` (flattened) in their dtype."""
    out = mod.Array(values.size, values.dtype.name)
    mod.from_numpy(np.ascontiguousarray(values).ravel(), out)
    return out


def read(buf, shape=None) -> np.ndarray:
    """The whole buffer as a numpy array (optionally reshaped)."""
    flat = mod.to_numpy(buf, (buf.size,), (1,), 0)
    return flat if shape is None else flat.reshape(shape)


def layout(view: np.ndarray, base: np.ndarray) -> tuple[tuple, tuple, int]:
    """(shape, strides, offset) of a numpy view of `base`, in elements, as the kernels take them."""
    item = base.itemsize
    offset = (view.__array_interface__["data"][0] - base.__array_interface__["data"][0]) // item
    return view.shape, tuple(s // item for s in view.strides), offset


@st.composite
def strided_views(draw, max_dims: int = 6, writable: bool = False):
    """(base 1-D numpy array, a view of it): random shape, permutation, steps of either sign, offsets
    and (unless writable) stride-0 broadcast axes."""
    dtype = draw(st.sampled_from(DTYPES))
    shape = tuple(draw(st.lists(st.integers(0 if draw(st.booleans()) else 1, 5), max_size=max_dims)))
    size = int(np.prod(shape)) if shape else 1
    base = np.random.default_rng(draw(st.integers(0, 2**31))).standard_normal(size + 3).astype(dtype)
    start = draw(st.integers(0, 3))
    v = base[start : start + size].reshape(shape)
    v = np.transpose(v, draw(st.permutations(range(v.ndim))))
    index = []
    for n in v.shape:
        step = draw(st.sampled_from([1, 1, 2, -1, -2]))
        lo = draw(st.integers(0, max(n - 1, 0)))
        index.append(slice(lo, None, step) if step > 0 else slice(n - 1 - lo, None, step))
    v = v[tuple(index)] if index else v  # () would give a numpy scalar, not a view
    if not writable and v.ndim and v.size and draw(st.booleans()):
        axis = draw(st.integers(0, v.ndim - 1))
        v = v[(slice(None),) * axis + (slice(0, 1),)]
        shape = list(v.shape)
        shape[axis] = draw(st.integers(1, 4))
        v = np.broadcast_to(v, tuple(shape))
    return base, v


# ---- strided copies -------------------------------------------------------------------------------


@SOME
@given(case=strided_views())
def test_compact_and_to_numpy_gather_any_view(case):
    base, v = case
    shape, strides, offset = layout(v, base)
    out = mod.Array(v.size, base.dtype.name)
    mod.compact(buffer(base), out, shape, strides, offset)
    np.testing.assert_array_equal(read(out, v.shape), v)
    np.testing.assert_array_equal(mod.to_numpy(buffer(base), shape, strides, offset), v)


@SOME
@given(case=strided_views(writable=True), scalar=st.floats(-10, 10))
def test_setitem_scatters_into_any_view(case, scalar):
    base, v = case
    shape, strides, offset = layout(v, base)
    values = np.arange(v.size, dtype=base.dtype).reshape(v.shape) + 0.5
    buf = buffer(base)
    mod.ewise_setitem(buffer(values), buf, shape, strides, offset)
    want = base.copy()
    # the same layout over numpy's copy (as_strided may step back before want[offset:], within want)
    view_of_want = np.lib.stride_tricks.as_strided(want[offset:], v.shape, tuple(s * base.itemsize for s in strides))
    view_of_want[...] = values
    np.testing.assert_array_equal(read(buf), want)
    mod.scalar_setitem(v.size, scalar, buf, shape, strides, offset)
    view_of_want[...] = scalar
    np.testing.assert_array_equal(read(buf), want)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axes", [(0, 2, 3, 1), (3, 2, 1, 0), (1, 0, 2, 3), (0, 1, 3, 2)])
def test_large_permuted_compact_uses_every_thread_path(dtype, axes):
    x = np.random.default_rng(1).standard_normal((9, 33, 33, 65)).astype(dtype)
    a = nd.array(x, device=cpu, dtype=dtype)
    np.testing.assert_array_equal(a.permute(axes).compact().numpy(), np.transpose(x, axes))
    np.testing.assert_array_equal(a[::-1, 1::3, :, ::-2].compact().numpy(), x[::-1, 1::3, :, ::-2])
    b = nd.array(np.zeros((9, 33, 33, 65)), device=cpu, dtype=dtype)
    b[:, ::2, :, 1:] = 7.0
    b[1:, :, ::-1, :5] = a[:-1, :, :, -5:]
    want = np.zeros_like(x)
    want[:, ::2, :, 1:] = 7.0
    want[1:, :, ::-1, :5] = x[:-1, :, :, -5:]
    np.testing.assert_array_equal(b.numpy(), want)


def test_fill_and_from_numpy_round_trip_large_buffers():
    for dtype in DTYPES:
        buf = mod.Array(600_001, dtype)
        mod.fill(buf, 2.5)
        assert buf.dtype == dtype and buf.size == 600_001
        np.testing.assert_array_equal(read(buf), np.full(600_001, 2.5, dtype))
        x = np.random.default_rng(2).standard_normal(600_001)
        mod.from_numpy(x, buf)
        np.testing.assert_array_equal(read(buf), x.astype(dtype))


def test_large_buffers_are_reused_after_free_and_keep_no_stale_size():
    first = mod.Array(3_000_000)
    address = first.ptr()
    del first
    again = mod.Array(3_000_000)  # same size class: the cached block comes back, no fresh page faults
    assert again.ptr() == address
    mod.fill(again, 1.5)
    np.testing.assert_array_equal(read(again), np.full(3_000_000, 1.5, "float32"))
    other = mod.Array(3_000_000, "float64")  # twice the bytes: a different block
    assert other.ptr() != again.ptr()


# ---- elementwise ----------------------------------------------------------------------------------

BINARY = {
    "add": np.add,
    "mul": np.multiply,
    "div": np.divide,
    "maximum": np.maximum,
    "power": np.power,
    "eq": lambda x, y: (x == y).astype(x.dtype),
    "ge": lambda x, y: (x >= y).astype(x.dtype),
}


@pytest.mark.parametrize("size", [0, 1, 17, 600_001])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", sorted(BINARY))
def test_ewise_and_scalar_ops_match_numpy(op, dtype, size):
    rng = np.random.default_rng(3)
    x = rng.uniform(0.1, 3, size).astype(dtype)
    y = rng.uniform(0.1, 3, size).astype(dtype)
    if op in ("eq", "ge", "maximum") and size:
        y[::3] = x[::3]  # ties
    out = mod.Array(size, dtype)
    getattr(mod, f"ewise_{op}")(buffer(x), buffer(y), out)
    np.testing.assert_allclose(read(out), BINARY[op](x, y), **TOL[dtype])
    for scalar in (2.0, 0.5, -1.25):
        getattr(mod, f"scalar_{op}")(buffer(x), scalar, out)
        np.testing.assert_allclose(read(out), BINARY[op](x, np.array(scalar, dtype)), **TOL[dtype])


def test_maximum_and_comparisons_follow_numpy_on_nan_and_inf():
    x = np.array([np.nan, 1.0, -np.inf, np.inf, 0.0, -0.0, np.nan], "float32")
    y = np.array([1.0, np.nan, 0.0, np.nan, -0.0, 0.0, np.nan], "float32")
    out = mod.Array(x.size)
    mod.ewise_maximum(buffer(x), buffer(y), out)
    np.testing.assert_array_equal(read(out), np.maximum(x, y))
    mod.ewise_eq(buffer(x), buffer(y), out)
    np.testing.assert_array_equal(read(out), (x == y).astype("float32"))
    mod.ewise_ge(buffer(x), buffer(y), out)
    np.testing.assert_array_equal(read(out), (x >= y).astype("float32"))


def awkward_inputs(dtype: str) -> np.ndarray:
    """Large, small, denormal, zero, negative, infinite and nan inputs, plus a dense sweep."""
    info = np.finfo(dtype)
    special = [0.0, -0.0, np.inf, -np.inf, np.nan, info.tiny, info.tiny / 8, -info.tiny, info.max, -info.max,
               info.eps, 1e-30, -1e-30, 1e-7, -1e-7, 0.5, 0.625, -0.625, 1.0, -1.0, 9.0, -9.0, 20.0, 88.0,
               88.72, 89.0, -87.0, -88.0, -100.0, -103.0, -104.0, -200.0, 709.0, 710.0, -745.0]
    sweep = np.concatenate([np.linspace(-110, 110, 20_011), np.geomspace(1e-38, 3e38, 4003)])
    return np.concatenate([special, sweep, -sweep]).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fn", ["exp", "log", "tanh"])
def test_exp_log_tanh_are_accurate_on_awkward_inputs(fn, dtype):
    x = awkward_inputs(dtype)
    out = mod.Array(x.size, dtype)
    getattr(mod, f"ewise_{fn}")(buffer(x), out)
    got = read(out)
    with np.errstate(all="ignore"):
        want = getattr(np, fn)(x.astype("float64")).astype(dtype)  # correctly rounded reference
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(got) & (got > 0), np.isinf(want) & (want > 0))
    np.testing.assert_array_equal(np.isinf(got) & (got < 0), np.isinf(want) & (want < 0))
    finite = np.isfinite(want)
    rtol = 1e-6 if dtype == "float32" else 1e-12
    tiny = np.finfo(dtype).tiny * 4  # denormal results: absolute precision of the smallest normal
    np.testing.assert_allclose(got[finite], want[finite], rtol=rtol, atol=tiny)
    if fn == "tanh":  # odd, and exactly +-1 for large |x|
        np.testing.assert_array_equal(got[np.abs(x) > 20], np.sign(x[np.abs(x) > 20]))


def float32_ulps(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    """|got - want| in units in the last place of the float32 nearest to `want` (a float64 reference)."""
    spacing = np.spacing(np.abs(want).astype("float32")).astype("float64")
    return np.abs(got.astype("float64") - want) / spacing


def every_float32(step: int) -> np.ndarray:
    """Every `step`-th float32 bit pattern, positive and negative: all binades, denormals, inf and nan."""
    return np.arange(0, 2**32, step, dtype=np.uint64).astype(np.uint32).view(np.float32)


@pytest.mark.parametrize("fn,bound", [("exp", 2), ("log", 2), ("tanh", 3)])
def test_float32_exp_log_tanh_are_within_a_few_ulp_over_all_binades(fn, bound):
    x = every_float32(509)  # ~8.4 M inputs, a prime stride so every mantissa region is visited
    out = mod.Array(x.size, "float32")
    getattr(mod, f"ewise_{fn}")(buffer(x), out)
    got = read(out)
    with np.errstate(all="ignore"):
        want = getattr(np, fn)(x.astype("float64"))
        finite = np.isfinite(want) & (np.abs(want) <= np.finfo("float32").max)
        assert float32_ulps(got[finite], want[finite]).max() <= bound
        np.testing.assert_array_equal(got[~finite], want[~finite].astype("float32"))


def test_float32_log_and_tanh_special_values_follow_numpy():
    info = np.finfo("float32")
    denormals = np.array([info.smallest_subnormal, info.smallest_subnormal * 3, info.tiny / 2, info.tiny * 0.999], "float32")
    x = np.concatenate([denormals, -denormals, np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -20.0, info.max], "float32")])
    out = mod.Array(x.size, "float32")
    with np.errstate(all="ignore"):
        mod.ewise_log(buffer(x), out)
        np.testing.assert_allclose(read(out), np.log(x.astype("float64")), rtol=2e-7)
        mod.ewise_tanh(buffer(x), out)
        np.testing.assert_array_equal(read(out), np.tanh(x))  # tanh(denormal) = denormal exactly
    tiny = np.geomspace(1e-30, 2**-13, 2001).astype("float32")
    mod.ewise_tanh(buffer(np.concatenate([tiny, -tiny])), out := mod.Array(2 * tiny.size, "float32"))
    assert float32_ulps(read(out), np.tanh(np.concatenate([tiny, -tiny]).astype("float64"))).max() <= 2
    big = np.concatenate([np.linspace(9.02, 100, 1001), [1e30, info.max]]).astype("float32")
    mod.ewise_tanh(buffer(np.concatenate([big, -big])), out := mod.Array(2 * big.size, "float32"))
    np.testing.assert_array_equal(read(out), np.concatenate([np.ones_like(big), -np.ones_like(big)]))


# ---- reductions -----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "outer,reduce,inner",
    [(1, 1, 1), (3, 1, 5), (1, 7, 1), (5, 130, 1), (4, 70, 3), (1, 1_100_003, 1), (3, 400_003, 1), (2, 513, 2049),
     (700, 3, 130), (1, 2, 600_001)],
)
def test_axis_reductions_match_numpy(outer, reduce, inner, dtype):
    x = np.random.default_rng(4).standard_normal((outer, reduce, inner)).astype(dtype)
    out = mod.Array(outer * inner, dtype)
    mod.reduce_sum_axis(buffer(x), out, outer, reduce, inner)
    want = x.astype("float64").sum(axis=1)
    np.testing.assert_allclose(read(out, want.shape), want, rtol=TOL[dtype]["rtol"], atol=1e-4 if dtype == "float32" else 1e-10)
    mod.reduce_max_axis(buffer(x), out, outer, reduce, inner)
    np.testing.assert_array_equal(read(out, want.shape), x.max(axis=1))


def test_course_block_reductions_and_max_propagates_nan():
    x = np.arange(12, dtype="float32")
    out = mod.Array(3)
    mod.reduce_sum(buffer(x), out, 4)
    np.testing.assert_array_equal(read(out), x.reshape(3, 4).sum(axis=1))
    mod.reduce_max(buffer(x), out, 4)
    np.testing.assert_array_equal(read(out), x.reshape(3, 4).max(axis=1))
    y = np.random.default_rng(5).standard_normal((3, 100_000)).astype("float32")
    y[1, 77_777] = np.nan
    mod.reduce_max(buffer(y), out, 100_000)
    np.testing.assert_array_equal(read(out), y.max(axis=1))
    y[1, 77_777] = 0.0
    y[0, 5] = np.inf  # an inf sends the block down the NaN-checking path: the result must not change
    y[2, :] = -np.inf
    y[2, 99_999] = -3.0
    mod.reduce_max(buffer(y), out, 100_000)
    np.testing.assert_array_equal(read(out), y.max(axis=1))


@FEW
@given(case=strided_views(max_dims=4), data=st.data())
def test_ndarray_sum_and_max_over_random_axes_of_views(case, data):
    base, v = case
    if v.size == 0:
        return
    a = nd.array(base, device=cpu, dtype=base.dtype.name)
    shape, strides, offset = layout(v, base)
    view = nd.NDArray.make(shape, strides, device=cpu, handle=a._handle, offset=offset)
    axes = tuple(sorted(data.draw(st.sets(st.integers(0, v.ndim - 1), min_size=1)))) if v.ndim else None
    np.testing.assert_allclose(view.sum(axis=axes).numpy(), v.sum(axis=axes), **TOL[base.dtype.name])
    np.testing.assert_array_equal(view.max(axis=axes).numpy(), v.max(axis=axes))


# ---- matmul ---------------------------------------------------------------------------------------

SIZES = [1, 2, 7, 12, 13, 33, 65, 257]


def matmul_tol(dtype: str, n: int) -> dict:
    eps = 1e-6 if dtype == "float32" else 1e-14
    return dict(rtol=eps * 20, atol=eps * 20 * max(n, 1))


@FEW
@given(
    m=st.sampled_from(SIZES), n=st.sampled_from(SIZES + [0, 400]), p=st.sampled_from(SIZES), batch=st.integers(1, 3),
    dtype=st.sampled_from(DTYPES), ta=st.booleans(), tb=st.booleans(), bcast=st.sampled_from(["none", "a", "b"]),
    seed=st.integers(0, 2**31),
)
def test_matmul_strided_on_transposed_and_broadcast_batches(m, n, p, batch, dtype, ta, tb, bcast, seed):
    rng = np.random.default_rng(seed)
    a_base = rng.standard_normal((batch, n, m) if ta else (batch, m, n)).astype(dtype)
    b_base = rng.standard_normal((batch, p, n) if tb else (batch, n, p)).astype(dtype)
    a = a_base.transpose(0, 2, 1) if ta else a_base
    b = b_base.transpose(0, 2, 1) if tb else b_base
    if bcast == "a":
        a = np.broadcast_to(a[:1], a.shape)
    elif bcast == "b":
        b = np.broadcast_to(b[:1], b.shape)
    (_, a_str, a_off), (_, b_str, b_off) = layout(a, a_base), layout(b, b_base)
    out = mod.Array(batch * m * p, dtype)
    mod.matmul_strided(buffer(a_base), buffer(b_base), out, batch, m, n, p, a_off, a_str, b_off, b_str)
    np.testing.assert_allclose(read(out, (batch, m, p)), a.astype("float64") @ b, **matmul_tol(dtype, n))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "m,n,p",
    [(3100, 400, 40),  # taller than one packed A panel, deeper than one k block
     (13, 5, 8300),  # wider than one packed B panel
     (300, 1000, 700),  # several B blocks shared by the threads
     (1, 2000, 1),
     (129, 129, 129)],
)
def test_matmul_large_shapes_cross_every_block_boundary(m, n, p, dtype):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((m, n)).astype(dtype)
    y = rng.standard_normal((n, p)).astype(dtype)
    got = (nd.array(x, device=cpu, dtype=dtype) @ nd.array(y, device=cpu, dtype=dtype)).numpy()
    np.testing.assert_allclose(got, x.astype("float64") @ y, **matmul_tol(dtype, n))
    out = mod.Array(m * p, dtype)
    mod.matmul(buffer(x), buffer(y), out, m, n, p)
    np.testing.assert_allclose(read(out, (m, p)), got, **matmul_tol(dtype, n))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,n,p", [(16, 1600, 400), (16, 400, 1600), (320, 1000, 100), (5, 700, 37), (64, 8200, 16),
                                   (8, 60000, 20)])
def test_matmul_of_a_language_models_shapes_with_transposed_operands(m, n, p, dtype):
    """An LSTM's backward products: x @ W.T (B packed from its columns) and x.T @ y, with 16-row products
    (the narrow kernel's tile), threads taking row panels (64 x 8200 x 16) or column panels (16 x 400 x 1600)
    of C, and a deep one with a C of one tile (8 x 60000 x 20) that the threads split along its depth."""
    rng = np.random.default_rng(10)
    x, w = rng.standard_normal((m, n)).astype(dtype), rng.standard_normal((p, n)).astype(dtype)
    a, b = nd.array(x, device=cpu, dtype=dtype), nd.array(w, device=cpu, dtype=dtype)
    np.testing.assert_allclose((a @ b.permute((1, 0))).numpy(), x.astype("float64") @ w.T, **matmul_tol(dtype, n))
    y = rng.standard_normal((m, p)).astype(dtype)
    got = (a.permute((1, 0)) @ nd.array(y, device=cpu, dtype=dtype)).numpy()
    np.testing.assert_allclose(got, x.T.astype("float64") @ y, **matmul_tol(dtype, m))


@pytest.mark.parametrize("dtype", DTYPES)
def test_matmul_at_every_edge_of_the_tiles_in_place_and_packed(dtype):
    """Small products at every remainder of the tiles' rows (tiles of 1, 2, 4, 6 and 8 rows) and columns
    (vectors of 2 to 16 elements): with a row-major B they are read in place, with a transposed B packed."""
    rng = np.random.default_rng(11)
    for m in range(1, 18):
        for p in (1, 3, 8, 15, 16, 17, 31, 32, 33, 47, 50, 64, 65):
            n = int(rng.integers(1, 70))
            x, y = rng.standard_normal((m, n)).astype(dtype), rng.standard_normal((n, p)).astype(dtype)
            a = nd.array(x, device=cpu, dtype=dtype)
            want = x.astype("float64") @ y
            np.testing.assert_allclose((a @ nd.array(y, device=cpu, dtype=dtype)).numpy(), want,
                                       **matmul_tol(dtype, n), err_msg=f"{m} x {n} x {p}")
            bt = nd.array(np.ascontiguousarray(y.T), device=cpu, dtype=dtype).permute((1, 0))
            np.testing.assert_allclose((a @ bt).numpy(), want, **matmul_tol(dtype, n), err_msg=f"{m} x {n} x {p}ᵀ")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,n,p", [(1100, 3, 1000), (40, 513, 40), (70, 300, 90)])
def test_matmul_either_side_of_reading_in_place(m, n, p, dtype):
    """Products with a row-major B just past the in-place limits (C over 2^20 elements, depth over 512), packed,
    and one below them split between threads."""
    rng = np.random.default_rng(12)
    x, y = rng.standard_normal((m, n)).astype(dtype), rng.standard_normal((n, p)).astype(dtype)
    got = (nd.array(x, device=cpu, dtype=dtype) @ nd.array(y, device=cpu, dtype=dtype)).numpy()
    np.testing.assert_allclose(got, x.astype("float64") @ y, **matmul_tol(dtype, n))


@pytest.mark.parametrize("dtype", DTYPES)
def test_batched_matmul_through_ndarray(dtype):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 6, 65, 80)).astype(dtype)  # 12 products of 0.5 MFLOP: one per thread at a time
    y = rng.standard_normal((6, 50, 80)).astype(dtype)
    a, b = nd.array(x, device=cpu, dtype=dtype), nd.array(y, device=cpu, dtype=dtype)
    want = x.astype("float64") @ np.swapaxes(y, -1, -2)
    np.testing.assert_allclose((a @ nd.swapaxes(b, 1, 2)).numpy(), want, **matmul_tol(dtype, 80))
    w = rng.standard_normal((80, 17)).astype(dtype)  # a stack against one shared matrix
    np.testing.assert_allclose((a @ nd.array(w, device=cpu, dtype=dtype)).numpy(), x.astype("float64") @ w,
                               **matmul_tol(dtype, 80))


@pytest.mark.parametrize("dtype", DTYPES)
def test_matmul_tiled_uses_the_course_layout(dtype):
    m, n, p, t = 16, 24, 8, mod.__tile_size__
    rng = np.random.default_rng(8)
    x, y = rng.standard_normal((m, n)).astype(dtype), rng.standard_normal((n, p)).astype(dtype)

    def tiled(z):
        return z.reshape(z.shape[0] // t, t, z.shape[1] // t, t).transpose(0, 2, 1, 3)

    out = mod.Array(m * p, dtype)
    mod.matmul_tiled(buffer(tiled(x)), buffer(tiled(y)), out, m, n, p)
    np.testing.assert_allclose(read(out, (m // t, p // t, t, t)), tiled(x @ y), **matmul_tol(dtype, n))


PORTABLE_GEMM = textwrap.dedent(
    """
    import numpy as np
    import needle.backend_ndarray as nd
    mod = nd.cpu().mod
    rng = np.random.default_rng(9)
    for dtype, tol in (("float32", 1e-4), ("float64", 1e-11)):
        for m, n, p in ((1, 1, 1), (7, 33, 257), (13, 400, 9), (65, 2, 31), (29, 45, 6), (30, 20, 40)):
            x, y = rng.standard_normal((m, n)).astype(dtype), rng.standard_normal((p, n)).astype(dtype)
            a, b = nd.array(x, device=nd.cpu(), dtype=dtype), nd.array(y, device=nd.cpu(), dtype=dtype)
            got = (a @ b.permute((1, 0))).numpy()  # packed
            np.testing.assert_allclose(got, x.astype("float64") @ y.T, rtol=tol, atol=tol * n)
            got = (a @ nd.array(np.ascontiguousarray(y.T), device=nd.cpu(), dtype=dtype)).numpy()  # in place
            np.testing.assert_allclose(got, x.astype("float64") @ y.T, rtol=tol, atol=tol * n)
    print(mod.__gemm_isa__)
    """
)


@pytest.mark.parametrize("isa", ["avx2", "generic"])
def test_portable_gemm_kernels_match_numpy(isa):
    """The AVX2 and plain x86-64 kernels, forced with NEEDLE_CPU_ISA, on a machine that may have AVX-512."""
    env = dict(os.environ, NEEDLE_CPU_ISA=isa)
    proc = subprocess.run([sys.executable, "-c", PORTABLE_GEMM], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    used = proc.stdout.split()[-1]
    if isa == "avx2" and used == "generic":  # pragma: no cover - a CPU without AVX2
        pytest.skip("this CPU has no AVX2")
    assert used == isa


# ---- bad arguments: ValueError, never a crash -----------------------------------------------------

BAD_CALLS = textwrap.dedent(
    """
    import numpy as np
    from needle.backend_ndarray import ndarray_backend_cpu as mod
    f, d, big = mod.Array(10), mod.Array(10, "float64"), mod.Array(1000)
    cases = {
        "dtype name": lambda: mod.Array(3, "int8"),
        "negative size": lambda: mod.Array(-1),
        "ewise dtype": lambda: mod.ewise_add(f, d, f),
        "ewise size": lambda: mod.ewise_mul(f, big, f),
        "scalar size": lambda: mod.scalar_add(big, 1.0, f),
        "unary size": lambda: mod.ewise_exp(big, f),
        "unary dtype": lambda: mod.ewise_tanh(f, d),
        "compact outside": lambda: mod.compact(f, big, (4, 4), (4, 1), 0),
        "compact negative": lambda: mod.compact(f, big, (3,), (-1,), 1),
        "compact offset": lambda: mod.compact(f, big, (2,), (1,), 9),
        "compact out small": lambda: mod.compact(big, f, (20,), (1,), 0),
        "compact rank": lambda: mod.compact(big, f, (2, 2), (1,), 0),
        "compact huge broadcast": lambda: mod.compact(f, big, (2**40, 2**40), (0, 0), 0),
        "compact huge strides": lambda: mod.compact(big, f, (2, 2), (2**62, 2**62), 0),
        "compact negative shape": lambda: mod.compact(big, f, (-2, 3), (1, 1), 0),
        "setitem outside": lambda: mod.ewise_setitem(big, f, (5, 3), (3, 1), 0),
        "setitem source small": lambda: mod.ewise_setitem(f, big, (20,), (1,), 0),
        "scalar setitem size": lambda: mod.scalar_setitem(3, 1.0, f, (2,), (1,), 0),
        "scalar setitem outside": lambda: mod.scalar_setitem(4, 1.0, f, (4,), (4,), 0),
        "to_numpy outside": lambda: mod.to_numpy(f, (11,), (1,), 0),
        "from_numpy size": lambda: mod.from_numpy(np.zeros(11), f),
        "reduce empty axis": lambda: mod.reduce_sum_axis(f, f, 1, 0, 1),
        "reduce input small": lambda: mod.reduce_sum_axis(f, f, 2, 6, 1),
        "reduce out small": lambda: mod.reduce_max_axis(big, f, 20, 5, 2),
        "reduce overflow": lambda: mod.reduce_max_axis(big, f, 2**40, 2**40, 2**40),
        "reduce block": lambda: mod.reduce_sum(f, f, 3),
        "reduce zero block": lambda: mod.reduce_max(f, f, 0),
        "matmul dtype": lambda: mod.matmul(f, d, f, 2, 2, 2),
        "matmul a small": lambda: mod.matmul(f, big, big, 5, 5, 5),
        "matmul out small": lambda: mod.matmul(big, big, f, 5, 5, 5),
        "matmul aliasing": lambda: mod.matmul(big, f, big, 2, 2, 2),
        "matmul strides rank": lambda: mod.matmul_strided(big, big, big, 1, 2, 2, 2, 0, (4, 2), 0, (4, 2, 1)),
        "matmul strided outside": lambda: mod.matmul_strided(big, f, big, 2, 3, 3, 3, 0, (9, 3, 1), 0, (9, 3, 1)),
        "matmul negative offset": lambda: mod.matmul_strided(big, big, f, 1, 2, 2, 2, -1, (0, 2, 1), 0, (0, 2, 1)),
        "matmul huge": lambda: mod.matmul_strided(big, big, f, 2**40, 2**40, 1, 1, 0, (0, 0, 0), 0, (0, 0, 0)),
        "matmul_tiled multiple": lambda: mod.matmul_tiled(big, big, big, 4, 8, 8),
        "matmul_tiled small": lambda: mod.matmul_tiled(f, big, big, 8, 8, 8),
    }
    for name, call in cases.items():
        try:
            call()
        except ValueError:
            continue
        raise SystemExit(f"{name}: no ValueError")
    print("all", len(cases), "raised ValueError")
    """
)


def test_bad_arguments_raise_value_error_without_crashing():
    proc = subprocess.run([sys.executable, "-c", BAD_CALLS], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "raised ValueError" in proc.stdout


@FEW
@given(
    shape=st.lists(st.integers(-3, 2**33), min_size=0, max_size=4),
    strides=st.lists(st.integers(-(2**40), 2**40), min_size=0, max_size=4),
    offset=st.integers(-(2**40), 2**40),
)
def test_fuzzed_views_either_work_or_raise(shape, strides, offset):
    """Random (mostly invalid) layouts: the bounds check must catch every one that leaves the buffer."""
    src, out = mod.Array(64), mod.Array(64)
    mod.fill(src, 1.0)
    try:
        mod.compact(src, out, tuple(shape), tuple(strides), offset)
    except (ValueError, TypeError):
        return
    assert len(shape) == len(strides)


def test_build_info_names_compiler_and_threads():
    """The module says how it was built (`make install` prints it when OpenMP is missing; see the README)."""
    assert isinstance(mod.__openmp__, bool)
    assert mod.__build__.split()[0] in ("gcc", "clang")
    assert ("no OpenMP" in mod.__build__) == (not mod.__openmp__)
