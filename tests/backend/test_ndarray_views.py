"""NDArray views against numpy: getitem, permute, broadcast_to, reshape, compact, setitem, flat."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from ndarray_cases import EXAMPLES, arrays, index_for, views

import needle.backend_ndarray as nd

def assert_same_view(v: nd.NDArray, y: np.ndarray) -> None:
    """Same shape, same element strides (as the course's tests compare them) and same values."""
    assert v.shape == y.shape
    if y.size:
        assert v.strides == tuple(s // y.itemsize for s in y.strides)
    np.testing.assert_array_equal(v.numpy(), y)


@EXAMPLES
@given(data=st.data())
def test_random_views_match_numpy_and_share_memory(device, data):
    base, v, y = data.draw(views(device))
    assert_same_view(v, y)
    assert v._handle.ptr() == base._handle.ptr()
    assert v.dtype == base.dtype == y.dtype.name


@EXAMPLES
@given(data=st.data())
def test_getitem_keeps_every_axis_and_follows_numpy_slices(device, data):
    base, x = data.draw(arrays(device))
    ours, theirs = data.draw(index_for(x.shape))
    v = base[ours]
    assert v.ndim == base.ndim
    assert_same_view(v, x[theirs])


def test_getitem_course_examples(device):
    x = np.arange(36.0).reshape(6, 6)
    a = nd.array(x, device=device)
    assert a[2, 2].shape == (1, 1) and a[2, 2].numpy().item() == 14
    assert_same_view(a[-2:, ::-2], x[-2:, ::-2])
    assert_same_view(a[..., 1], x[:, 1:2])
    assert_same_view(a[1:5:2, ...], x[1:5:2])
    assert_same_view(a[5:1], x[5:1])  # empty slices are allowed
    assert_same_view(a[:, -100:100], x[:, -100:100])


@EXAMPLES
@given(data=st.data())
def test_compact_copies_only_when_needed(device, data):
    base, v, y = data.draw(views(device))
    c = v.compact()
    assert c.is_compact() and c.strides == nd.NDArray.compact_strides(y.shape)
    np.testing.assert_array_equal(c.numpy(), y)
    dense = v.size == base.size and np.array_equal(v.numpy(), base.numpy().reshape(v.shape))
    if v.is_compact():
        assert c is v
    shares = c._handle.ptr() == base._handle.ptr()
    assert shares == (v.size == base.size and v._offset == 0 and _contiguous(v)), (v.shape, v.strides)
    if shares:
        assert dense


def _contiguous(v: nd.NDArray) -> bool:
    return all(s == e for n, s, e in zip(v.shape, v.strides, nd.NDArray.compact_strides(v.shape)) if n != 1)


@EXAMPLES
@given(data=st.data())
def test_reshape_is_a_view_of_contiguous_arrays(device, data):
    base, x = data.draw(arrays(device))
    new_shape = data.draw(st.permutations(x.shape + (1,)))
    r = base.reshape(tuple(new_shape))
    assert r._handle.ptr() == base._handle.ptr()
    np.testing.assert_array_equal(r.numpy(), x.reshape(new_shape))
    np.testing.assert_array_equal(base.reshape(-1).numpy(), x.reshape(-1))
    if x.ndim >= 1 and x.shape[0] > 1:  # a contiguous slice still reshapes without a copy
        s = base[1:]
        assert s.reshape(-1)._handle.ptr() == base._handle.ptr()
        np.testing.assert_array_equal(s.reshape(-1).numpy(), x[1:].reshape(-1))


def test_reshape_of_non_contiguous_view_raises(device):
    a = nd.array(np.arange(6.0).reshape(2, 3), device=device).permute((1, 0))
    with pytest.raises(ValueError, match=r"reshape.*\(3, 2\).*compact"):
        a.reshape((6,))
    np.testing.assert_array_equal(a.compact().reshape((6,)).numpy(), np.arange(6.0).reshape(2, 3).T.reshape(6))
    # size-1 axes do not make a layout non-contiguous
    b = nd.array(np.arange(3.0).reshape(3, 1), device=device).permute((1, 0))
    assert b.reshape((3,))._handle.ptr() == b._handle.ptr()


@EXAMPLES
@given(data=st.data())
def test_setitem_writes_in_place_through_views(device, data):
    base, v, y = data.draw(views(device, writable=True))
    x = base.numpy()
    y = _numpy_view_of(x, v)  # numpy view of x with v's layout, to assign through
    ours, theirs = data.draw(index_for(v.shape))
    target = y[theirs + (Ellipsis,)]  # a view even for 0-d arrays
    ptr = base._handle.ptr()
    if data.draw(st.booleans()):
        value = data.draw(st.floats(-10, 10, width=32))
        v[ours] = value
        target[...] = value
    else:
        value = np.random.default_rng(data.draw(st.integers(0, 99))).standard_normal(target.shape).astype(x.dtype)
        if data.draw(st.booleans()):  # a broadcastable source
            value = value[tuple(slice(0, 1) for _ in value.shape)]
        v[ours] = nd.array(value, device=device, dtype=value.dtype)
        target[...] = value
    assert base._handle.ptr() == ptr
    np.testing.assert_array_equal(base.numpy(), x)
    np.testing.assert_array_equal(v.numpy(), y)


def _numpy_view_of(x: np.ndarray, v: nd.NDArray) -> np.ndarray:
    """The numpy view of flat buffer `x` with v's (shape, strides, offset)."""
    flat = x.reshape(-1)
    return np.lib.stride_tricks.as_strided(
        flat[v._offset :], v.shape, tuple(s * x.itemsize for s in v.strides), writeable=True
    )


def test_setitem_with_overlapping_source_and_size1_axes(device):
    x = np.arange(10.0)
    a = nd.array(x, device=device)
    a[1:] = a[:-1]  # overlapping source and target: numpy semantics (copy first)
    x[1:] = x[:-1].copy()
    np.testing.assert_array_equal(a.numpy(), x)
    out = nd.empty((3, 2, 2), device=device)
    for i in range(3):
        out[i] = nd.array(np.full((2, 2), i), device=device)  # view (1, 2, 2), source (2, 2)
    np.testing.assert_array_equal(out.numpy(), np.arange(3.0).repeat(4).reshape(3, 2, 2))
    with pytest.raises(ValueError, match=r"setitem.*\(4,\).*\(1, 2, 2\)"):
        out[0] = nd.array(np.ones(4), device=device)


@EXAMPLES
@given(data=st.data())
def test_broadcast_to_matches_numpy(device, data):
    base, x = data.draw(arrays(device, shape=data.draw(st.lists(st.sampled_from([1, 2, 3]), max_size=4).map(tuple))))
    target = tuple(data.draw(st.sampled_from([1, 4])) if n == 1 else n for n in x.shape)
    target = tuple(data.draw(st.lists(st.integers(1, 3), max_size=2))) + target
    b = base.broadcast_to(target)
    assert_same_view(b, np.broadcast_to(x, target))
    assert b._handle.ptr() == base._handle.ptr()


@EXAMPLES
@given(data=st.data())
def test_as_strided_views_the_same_buffer(device, data):
    base, x = data.draw(arrays(device))
    n = x.size
    length = data.draw(st.integers(0, n))
    step = data.draw(st.integers(0, 2))
    if length and (length - 1) * step >= n:
        step = 0
    v = base.as_strided((length,), (step,))
    flat = x.reshape(-1)
    np.testing.assert_array_equal(v.numpy(), np.array([flat[i * step] for i in range(length)], dtype=x.dtype))
    assert v._handle.ptr() == base._handle.ptr()


def test_flat_is_a_writable_view(device):
    a = nd.array(np.arange(6.0).reshape(2, 3), device=device)
    f = a.flat
    assert f.shape == (6,) and f._handle.ptr() == a._handle.ptr()
    a.flat[4] += 0.5  # the course's gradient-check idiom
    assert a.numpy()[1, 1] == 4.5
    row = a[1:]  # contiguous view: .flat writes through to the base as numpy's does
    row.flat[0] = -1.0
    assert a.numpy()[1, 0] == -1.0
    t = a.permute((1, 0))  # non-contiguous: compacted in place, then viewed
    t.flat[1] = 7.0
    assert t.numpy()[0, 1] == 7.0 and t.is_compact()
    assert a.numpy()[1, 0] == -1.0  # t no longer shares its former base's buffer
    np.testing.assert_array_equal(np.asarray(a.flat), a.numpy().reshape(-1))
