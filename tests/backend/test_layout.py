"""The stride arithmetic of strided views (backend_ndarray/layout.py) on its own, against numpy's views of the
same buffer: element strides, contiguity, indexing, broadcasting, reshape targets, axes, bounds, batched matmul."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from needle.backend_ndarray import layout
from ndarray_cases import index_for, shapes

EXAMPLES = settings(max_examples=60, deadline=None)


def _elements(a: np.ndarray) -> tuple:
    """numpy's strides of `a` in elements, not bytes."""
    return tuple(s // a.itemsize for s in a.strides)


def _offset(view: np.ndarray, base: np.ndarray) -> int:
    """Where `view` starts in `base`'s buffer, in elements."""
    return (view.__array_interface__["data"][0] - base.__array_interface__["data"][0]) // base.itemsize


@st.composite
def numpy_views(draw, max_dims: int = 4):
    """(compact base, a view of it): permuted, sliced with any steps, possibly broadcast."""
    base = np.arange(int(np.prod(shape := draw(shapes(max_dims=max_dims))))).reshape(shape)
    view = base.transpose(draw(st.permutations(range(base.ndim))))
    view = view[draw(index_for(view.shape, allow_int=False))[1]]
    if draw(st.booleans()):
        view = np.broadcast_to(view, tuple(draw(st.lists(st.integers(1, 3), max_size=2))) + view.shape)
    return base, view


@EXAMPLES
@given(shapes(max_dims=5, max_side=5))
def test_compact_strides_are_numpys(shape):
    assert layout.compact_strides(shape) == _elements(np.empty(shape, dtype=np.float32))


@EXAMPLES
@given(numpy_views())
def test_is_contiguous_agrees_with_numpy(pair):
    _, view = pair
    if view.size == 0:  # numpy calls every empty view contiguous; needle only those with a 0 before odd strides
        return
    assert layout.is_contiguous(view.shape, _elements(view)) == view.flags.c_contiguous


def test_is_contiguous_ignores_size_one_axes_and_empty_arrays():
    assert layout.is_contiguous((2, 1, 3), (3, 99, 1))
    assert layout.is_contiguous((2, 0, 3), (5, 7, 1))
    assert not layout.is_contiguous((2, 3), (1, 2))
    assert not layout.is_contiguous((2, 2, 3), (6, 6, 1))  # the stride of a real axis counts


@EXAMPLES
@given(st.data())
def test_index_view_gives_numpys_view(data):
    shape = data.draw(shapes(min_dims=1, max_dims=4, max_side=5))
    base = np.arange(int(np.prod(shape))).reshape(shape)
    ours, theirs = data.draw(index_for(shape))
    view = base[theirs]
    got_shape, got_strides, got_offset = layout.index_view(shape, layout.compact_strides(shape), 0, ours)
    assert got_shape == view.shape
    if view.size:
        np.testing.assert_array_equal(
            np.lib.stride_tricks.as_strided(base.ravel()[got_offset:], got_shape,
                                            tuple(s * base.itemsize for s in got_strides)), view)
        assert got_offset == _offset(view, base)


def test_index_view_course_cases_and_errors():
    assert layout.index_view((4, 5), (5, 1), 0, (..., 2)) == ((4, 1), (5, 1), 2)
    assert layout.index_view((4, 5), (5, 1), 0, 3) == ((1, 5), (5, 1), 15)
    assert layout.index_view((4, 5), (5, 1), 0, slice(None, None, -1)) == ((4, 5), (-5, 1), 15)
    assert layout.index_view((4,), (1,), 0, slice(2, 2)) == ((0,), (1,), 0)  # empty: the offset stays
    with pytest.raises(IndexError, match="only one Ellipsis"):
        layout.index_view((4, 5), (5, 1), 0, (..., ...))
    with pytest.raises(IndexError, match="3 indices for an array of shape"):
        layout.index_view((4, 5), (5, 1), 0, (1, 1, 1))
    with pytest.raises(ValueError, match="step cannot be zero"):
        layout.index_view((4,), (1,), 0, slice(None, None, 0))
    with pytest.raises(IndexError, match="out of range for axis 1"):
        layout.index_view((4, 5), (5, 1), 0, (0, 5))
    with pytest.raises(IndexError, match="out of range"):
        layout.index_view((4, 5), (5, 1), 0, -5)
    for bad in (True, None, 1.5):
        with pytest.raises(IndexError, match="unsupported index"):
            layout.index_view((4,), (1,), 0, bad)
    with pytest.raises(IndexError, match="must hold ints"):
        layout.index_view((4,), (1,), 0, slice("a", None))


@EXAMPLES
@given(st.data())
def test_broadcast_strides_are_numpys(data):
    shape = data.draw(shapes(max_dims=3))
    base = np.arange(int(np.prod(shape))).reshape(shape)
    target = tuple(data.draw(st.lists(st.integers(1, 3), max_size=2))) + tuple(
        data.draw(st.integers(1, 3)) if n == 1 else n for n in shape)
    assert layout.broadcast_strides(shape, _elements(base), target) == _elements(np.broadcast_to(base, target))


def test_broadcast_strides_refuse_what_numpy_refuses():
    with pytest.raises(ValueError, match="fewer dimensions"):
        layout.broadcast_strides((2, 3), (3, 1), (3,))
    with pytest.raises(ValueError, match=r"cannot broadcast shape \(2, 3\) to \(2, 4\)"):
        layout.broadcast_strides((2, 3), (3, 1), (2, 4))


@pytest.mark.parametrize("shape, target", [((2, 3, 4), (-1,)), ((2, 3, 4), (4, -1)), ((6,), (2, -1, 1)),
                                           ((0, 3), (-1, 3)), ((2, 3), 6), ((5,), (5,))])
def test_resolve_reshape_is_numpys(shape, target):
    assert layout.resolve_reshape(shape, target) == np.empty(shape).reshape(target).shape


@pytest.mark.parametrize("shape, target, error", [
    ((6,), (-1, -1), "invalid target shape"), ((4,), (-2, -2), "invalid target shape"),  # sizes agree: still wrong
    ((6,), (4, -1), "cannot reshape"), ((6,), (7,), "cannot reshape"), ((0, 3), (0, -1), "cannot reshape")])
def test_resolve_reshape_refuses_what_numpy_refuses(shape, target, error):
    with pytest.raises(ValueError, match="reshape: " + error):
        layout.resolve_reshape(shape, target)


@EXAMPLES
@given(st.integers(1, 5), st.data())
def test_normalize_axes_is_numpys(ndim, data):
    axes = data.draw(st.lists(st.integers(-ndim, ndim - 1), unique_by=lambda a: a % ndim, max_size=ndim))
    assert layout.normalize_axes(tuple(axes), ndim, "sum") == tuple(sorted(a % ndim for a in axes))
    assert layout.normalize_axes(axes[0] if axes else None, ndim, "sum") == (
        (axes[0] % ndim,) if axes else tuple(range(ndim)))


def test_normalize_axes_errors_name_the_op():
    with pytest.raises(ValueError, match="max: axis 2 is out of range for an array with 2 dimensions"):
        layout.normalize_axes(2, 2, "max")
    with pytest.raises(ValueError, match="max: axis -3 is out of range"):
        layout.normalize_axes((-3,), 2, "max")
    with pytest.raises(ValueError, match="sum: repeated axis"):
        layout.normalize_axes((0, -2), 2, "sum")
    with pytest.raises(TypeError, match="sum: axis must be an int or a tuple of ints"):
        layout.normalize_axes(("a",), 2, "sum")
    assert layout.normalize_axes(np.int64(-1), 3, "sum") == (2,)


def test_permutation_and_shapes():
    assert layout.permutation((-1, 0, 1), 3, (2, 3, 4)) == (2, 0, 1)
    assert layout.permutation((-3, -2, -1), 3, (2, 3, 4)) == (0, 1, 2)
    for bad in ((0, 1), (0, 1, 3), (3, 1, 2), (0, 0, 1), (0, 1, -4)):
        with pytest.raises(ValueError, match="is not a permutation of the axes of shape"):
            layout.permutation(bad, 3, (2, 3, 4))
    with pytest.raises(TypeError, match="permute: axes must be ints"):
        layout.permutation((0, 1.0, 2), 3, (2, 3, 4))
    assert layout.as_shape(3, "empty") == (3,) and layout.as_shape((2, np.int64(0)), "empty") == (2, 0)
    with pytest.raises(ValueError, match="empty: negative dimension in shape"):
        layout.as_shape((2, -1), "empty")
    with pytest.raises(TypeError, match="full: shape must be a tuple of ints"):
        layout.int_tuple((2, 1.5), "full")
    assert layout.squeezed((1, 2, 1, 3, 1)) == (2, 3) and layout.squeezed((2, 2)) == (2, 2)


def test_check_bounds_covers_every_element():
    layout.check_bounds("as_strided", (2, 3), (3, 1), 0, 6)
    layout.check_bounds("as_strided", (2, 3), (-3, -1), 5, 6)  # flipped: from the last element down
    layout.check_bounds("as_strided", (0, 3), (100, 100), 50, 1)  # empty: nothing to reach
    for shape, strides, offset in (((2, 3), (3, 1), 1), ((2, 3), (-3, 1), 2), ((2, 3), (3, -1), 1), ((7,), (1,), 0)):
        with pytest.raises(ValueError, match="as_strided: shape .* reaches outside the buffer of 6 elements"):
            layout.check_bounds("as_strided", shape, strides, offset, 6)


@EXAMPLES
@given(numpy_views(max_dims=5))
def test_batch_strides_address_every_matrix_of_the_batch(pair):
    """Where batch_strides gives (batch, row, col) strides, matrix k of the flattened batch starts k * batch
    strides into the view; where it gives None the batch axes do not collapse to one stride."""
    _, view = pair
    if view.ndim < 2 or view.size == 0:
        return
    strides = _elements(view)
    got = layout.batch_strides(view.shape, strides)
    starts = [_offset(view[idx], view) for idx in np.ndindex(*view.shape[:-2])]  # row-major over the batch
    if got is None:
        assert len({b - a for a, b in zip(starts, starts[1:])}) > 1
        return
    assert got[1:] == strides[-2:]
    assert starts == [k * got[0] for k in range(len(starts))]


def test_batch_strides_cases():
    assert layout.batch_strides((2, 3, 4), (12, 4, 1)) == (12, 4, 1)
    assert layout.batch_strides((2, 1, 3, 4), (12, 99, 4, 1)) == (12, 4, 1)  # a size-1 axis does not count
    assert layout.batch_strides((5, 3, 4), (0, 4, 1)) == (0, 4, 1)  # broadcast batch
    assert layout.batch_strides((1, 3, 4), (12, 4, 1)) == (0, 4, 1)
    assert layout.batch_strides((3, 1, 1), (1, 1, 1)) == (1, 1, 1)  # a batch of 1x1 matrices
    assert layout.batch_strides((3, 1, 1), (-1, 1, 1)) == (-1, 1, 1)  # flipped
    assert layout.batch_strides((2, 2, 3, 4), (24, 12, 4, 1)) == (12, 4, 1)
    assert layout.batch_strides((2, 2, 3, 4), (12, 24, 4, 1)) is None  # transposed batch axes
    assert layout.batch_strides((2, 2, 3, 4), (0, 12, 4, 1)) is None
