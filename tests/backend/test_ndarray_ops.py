"""NDArray arithmetic, comparisons, reductions, matmul, flip and pad against numpy, on random views."""
import operator

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from ndarray_cases import DTYPES, EXAMPLES, TOL, arrays, course_device, random_values, views

import needle.backend_ndarray as nd

BINARY = {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "div": operator.truediv,
    "maximum": lambda a, b: a.maximum(b) if isinstance(a, nd.NDArray) else np.maximum(a, b),
}
COMPARE = {name: getattr(operator, name) for name in ("eq", "ne", "ge", "gt", "le", "lt")}


def close(got, want, dtype=None):
    got = got.numpy() if isinstance(got, nd.NDArray) else got
    assert got.shape == np.shape(want)
    np.testing.assert_allclose(got, want, **TOL[dtype or got.dtype.name])


@EXAMPLES
@given(data=st.data(), op=st.sampled_from(sorted(BINARY)))
def test_binary_ops_on_views(device, data, op):
    _, v, y = data.draw(views(device))
    other, z = data.draw(arrays(device, shape=y.shape, dtype=y.dtype.name))
    if op == "div":
        other, z = other * 0.5 + 4.0, z * 0.5 + 4.0  # away from zero
    fn = BINARY[op]
    close(fn(v, other), fn(y, z).astype(y.dtype))
    close(fn(other, v), fn(z, y).astype(y.dtype))
    close(fn(v, v), fn(y, y).astype(y.dtype))


@EXAMPLES
@given(data=st.data(), op=st.sampled_from(sorted(BINARY)), scalar=st.floats(0.5, 3.0, width=32))
def test_scalar_ops_on_views(device, data, op, scalar):
    _, v, y = data.draw(views(device))
    fn = BINARY[op]
    close(fn(v, scalar), fn(y, y.dtype.type(scalar)).astype(y.dtype))
    if op != "maximum":
        close(fn(scalar, v if op != "div" else v * v + 1.0), fn(y.dtype.type(scalar), y if op != "div" else y * y + 1))
    close(v ** 2, y**2)
    close((v * v + 1.0) ** scalar, (y * y + 1) ** y.dtype.type(scalar))
    close(-v, -y)


@EXAMPLES
@given(data=st.data(), op=st.sampled_from(sorted(COMPARE)))
def test_comparisons_give_float_zero_one(device, data, op):
    _, v, y = data.draw(views(device))
    rounded, r = v * 0.0 + 0.5, np.full_like(y, 0.5)  # equal elements exercise eq/ge/le at the boundary
    fn = COMPARE[op]
    for got, want in [(fn(v, rounded), fn(y, r)), (fn(v, 0.0), fn(y, 0.0)), (fn(v, v), fn(y, y))]:
        close(got, want.astype(y.dtype))


def test_comparisons_with_nan_follow_numpy(device):
    x = np.array([1.0, np.nan, 3.0, 2.0])
    a = nd.array(x, device=device)
    for name, fn in COMPARE.items():
        np.testing.assert_array_equal(fn(a, 2.0).numpy(), fn(x, 2.0).astype("float32"), err_msg=name)
        np.testing.assert_array_equal(fn(a, a).numpy(), fn(x, x).astype("float32"), err_msg=name)


def test_maximum_and_max_propagate_nan_as_numpy(device):
    x, y = np.array([1.0, np.nan, 3.0], "float32"), np.array([np.nan, 2.0, 1.0], "float32")
    a, b = nd.array(x, device=device), nd.array(y, device=device)
    np.testing.assert_array_equal(a.maximum(b).numpy(), np.maximum(x, y))
    np.testing.assert_array_equal(b.maximum(a).numpy(), np.maximum(y, x))
    np.testing.assert_array_equal(a.maximum(2.0).numpy(), np.maximum(x, 2.0))
    assert np.isnan(a.max().numpy()) and np.isnan(a.sum().numpy())
    np.testing.assert_array_equal(a.reshape((3, 1)).max(axis=1).numpy(), x)


@EXAMPLES
@given(data=st.data(), fn=st.sampled_from(["log", "exp", "tanh"]))
def test_unary_ops_on_views(device, data, fn):
    _, v, y = data.draw(views(device))
    if fn == "log":
        v, y = v * v + 0.1, y * y + y.dtype.type(0.1)
    close(getattr(v, fn)(), getattr(np, fn)(y))
    close(getattr(nd, fn)(v), getattr(np, fn)(y))


def test_mixed_dtypes_promote_to_float64(device):
    a = nd.array(np.ones(3), device=device, dtype="float32")
    b = nd.array(np.full(3, 0.1), device=device, dtype="float64")
    assert (a + b).dtype == "float64" and (b * a).dtype == "float64"
    close(a + b, np.ones(3) + 0.1)
    assert (a.reshape((1, 3)) @ b.reshape((3, 1))).dtype == "float64"


@st.composite
def reduce_axes(draw, ndim):
    """None, one axis (possibly negative), or a tuple of distinct axes."""
    kind = draw(st.sampled_from(["none", "int", "tuple"] if ndim else ["none", "empty"]))
    if kind == "none":
        return None
    if kind == "empty":
        return ()
    if kind == "int":
        return draw(st.integers(-ndim, ndim - 1))
    return tuple(draw(st.lists(st.integers(-ndim, ndim - 1), unique_by=lambda a: a % ndim, max_size=ndim)))


@EXAMPLES
@given(data=st.data(), keepdims=st.booleans(), reduce=st.sampled_from(["sum", "max"]))
def test_reductions_on_views(device, data, keepdims, reduce):
    _, v, y = data.draw(views(device))
    axis = data.draw(reduce_axes(y.ndim))
    try:
        want = getattr(np, reduce)(y, axis=axis, keepdims=keepdims)
    except ValueError:  # a max over a zero-size axis: ours must refuse too
        with pytest.raises(ValueError, match="max: zero-size axis"):
            v.max(axis=axis, keepdims=keepdims)
        return
    close(getattr(v, reduce)(axis=axis, keepdims=keepdims), np.asarray(want), dtype=y.dtype.name)
    close(getattr(nd, reduce)(v, axis, keepdims), np.asarray(want), dtype=y.dtype.name)


def test_reductions_course_semantics_and_empty_arrays(device):
    x = np.arange(24.0).reshape(2, 3, 4)
    a = nd.array(x, device=device)
    close(a.sum(axis=(1,), keepdims=True), x.sum(axis=1, keepdims=True))  # the course's 1-tuple
    close(a.max(axis=-1), x.max(axis=-1))
    assert a.sum().shape == () and a.sum().numpy() == x.sum()
    e = nd.array(np.zeros((0, 3)), device=device)
    close(e.sum(), np.array(0.0))
    close(e.sum(axis=0, keepdims=True), np.zeros((1, 3)))
    close(e.max(axis=1), np.zeros((0,)))  # no maxima to take: an empty result
    with pytest.raises(ValueError, match=r"max.*zero-size axis.*\(0, 3\)"):
        e.max()
    with pytest.raises(ValueError, match=r"max.*zero-size axis"):
        e.max(axis=0)


@st.composite
def matmul_operands(draw, device):
    """Batched operands (batch dims broadcast, sometimes transposed or sliced views) and their numpy twins."""
    m, n, p = (draw(st.integers(1, 9)) for _ in range(3))
    batch = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    a_batch = tuple(1 if draw(st.booleans()) else s for s in batch)[draw(st.integers(0, len(batch))) :]
    b_batch = tuple(1 if draw(st.booleans()) else s for s in batch)[draw(st.integers(0, len(batch))) :]
    dtype = draw(st.sampled_from(DTYPES))
    out = []
    for lead, (r, c) in [(a_batch, (m, n)), (b_batch, (n, p))]:
        transposed = draw(st.booleans())
        x = random_values(draw(st.integers(0, 2**31)), lead + ((c, r) if transposed else (r, c)), dtype)
        arr = nd.array(x, device=device, dtype=dtype)
        if transposed:
            axes = tuple(range(len(lead))) + (len(lead) + 1, len(lead))
            arr, x = arr.permute(axes), np.transpose(x, axes)
        if draw(st.booleans()):  # a stepped view: rows reversed
            arr, x = arr[..., ::-1, :], x[..., ::-1, :]
        out += [arr, x]
    return out


@EXAMPLES
@given(data=st.data())
def test_matmul_batched_views(device, data):
    a, x, b, y = data.draw(matmul_operands(device))
    close(a @ b, x @ y)
    close(nd.matmul(a, b), x @ y)


@pytest.mark.parametrize("m,n,p", [(8, 16, 24), (16, 8, 8), (5, 7, 3), (8, 8, 9), (1, 1, 1)])
def test_matmul_course_device_takes_the_tiled_path(m, n, p):
    counts = {}
    dev = course_device(counts)
    x, y = np.random.default_rng(0).standard_normal((2, m, n)), np.random.default_rng(1).standard_normal((n, p))
    a, b = nd.array(x[0], device=dev), nd.array(y, device=dev)
    close(a @ b, (x[0] @ y).astype("float32"))
    tiled = m % 8 == 0 and n % 8 == 0 and p % 8 == 0
    assert counts == ({"matmul_tiled": 1} if tiled else {"matmul": 1})
    batched = nd.array(x, device=dev).permute((0, 2, 1))[..., ::-1, :].permute((0, 2, 1))  # a strided batch
    close(batched @ b, (x[..., ::-1] @ y).astype("float32"))


@EXAMPLES
@given(data=st.data())
def test_course_device_on_random_views(data):
    """A learner's course-style device (no strided matmul, no axis reductions) through the fallbacks."""
    dev = course_device({})
    _, v, y = data.draw(views(dev))
    axis = data.draw(reduce_axes(y.ndim))
    close(v.sum(axis=axis), np.asarray(np.sum(y, axis=axis)), dtype=y.dtype.name)
    if y.size:
        close(v.max(axis=axis, keepdims=True), np.max(y, axis=axis, keepdims=True), dtype=y.dtype.name)
    a, x, b, z = data.draw(matmul_operands(dev))
    close(a @ b, x @ z)


def test_course_device_reductions_and_elementwise():
    dev = course_device({})
    x = np.random.default_rng(2).standard_normal((3, 4, 5)).astype("float32")
    a = nd.array(x, device=dev)
    close(a.sum(axis=(0, 2)), x.sum(axis=(0, 2)))
    close(a.max(axis=1, keepdims=True), x.max(axis=1, keepdims=True))
    close(a.permute((2, 0, 1)) + 1.0, np.transpose(x, (2, 0, 1)) + 1)
    with pytest.raises(AttributeError, match=r"course\(\) has no kernel 'ewise_power'"):
        a ** a


def test_matmul_empty_and_errors(device):
    a = nd.array(np.ones((3, 0)), device=device)
    close(a @ nd.array(np.ones((0, 2)), device=device), np.zeros((3, 2)))
    close(nd.array(np.ones((0, 4)), device=device) @ nd.array(np.ones((4, 2)), device=device), np.zeros((0, 2)))
    with pytest.raises(ValueError, match=r"matmul.*\(3, 0\).*\(3, 2\)"):
        a @ nd.array(np.ones((3, 2)), device=device)
    with pytest.raises(ValueError, match=r"matmul.*\(2, 2, 3\).*\(3, 3, 1\).*broadcast"):
        nd.array(np.ones((2, 2, 3)), device=device) @ nd.array(np.ones((3, 3, 1)), device=device)
    with pytest.raises(ValueError, match=r"matmul.*\(3,\)"):
        nd.array(np.ones(3), device=device) @ nd.array(np.ones((3, 1)), device=device)


@EXAMPLES
@given(data=st.data())
def test_flip_and_pad_on_views(device, data):
    _, v, y = data.draw(views(device))
    axes = tuple(data.draw(st.lists(st.integers(0, max(y.ndim - 1, 0)), unique=True, max_size=y.ndim)))
    f = v.flip(axes)
    close(f, np.flip(y, axes))
    assert f.is_compact()
    pads = tuple((data.draw(st.integers(0, 2)), data.draw(st.integers(0, 2))) for _ in y.shape)
    close(v.pad(pads), np.pad(y, pads) if pads else y)


def test_fill_full_and_module_functions(device):
    a = nd.array(np.arange(12.0).reshape(3, 4), device=device)
    a[:, 1:3].fill(7.0)  # a non-compact view fills through
    x = np.arange(12.0).reshape(3, 4)
    x[:, 1:3] = 7
    close(a, x)
    close(nd.full((2, 3), 1.5, device=device), np.full((2, 3), 1.5))
    close(nd.full((2,), 1.5, dtype="float64", device=device), np.full(2, 1.5))
    assert nd.empty((2, 3), device=device).shape == (2, 3)
    s = [nd.array(np.full((2, 3), i), device=device) for i in range(4)]
    close(nd.stack(s, axis=1), np.stack([np.full((2, 3), i) for i in range(4)], axis=1))
    parts = nd.split(nd.stack(s, axis=2), axis=2)
    assert len(parts) == 4 and all(p.shape == (2, 3) for p in parts)
    close(parts[3], np.full((2, 3), 3.0))
    close(nd.transpose(a), x.T)
    close(nd.swapaxes(a.reshape((3, 2, 2)), 0, -1), np.swapaxes(x.reshape(3, 2, 2), 0, -1))
    close(nd.broadcast_to(a[0], (2, 1, 4)), np.broadcast_to(x[0:1], (2, 1, 4)))
    close(nd.maximum(a, 5.0), np.maximum(x, 5))
