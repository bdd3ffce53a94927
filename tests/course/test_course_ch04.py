"""Chapter 04 checks: each passes needle's reference and the textbook's solution, reports a stub (also the workbook's
own) as not attempted while needle's reference stays installed, fails the plausible mistakes below, and runs the other
exercises as references; the chapter's pictures (strided views with index arithmetic, the stride walk)."""
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import nbformat
import numpy as np
import pytest

import needle as ndl
from needle import course
from needle.backend_ndarray import NDArray
from needle.course import install, registry, workbook
from needle.course.checks.ch04_ndarray import METHODS, mirror, random_view
from needle.course.errors import CheckFailed
from needle.viz import StrideWalk, side_by_side, stride_walk, strided_layout, strided_view

from chapter_cases import ChapterContract, ref, stub_like

IDS = course.exercises("ndarray")
NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "04_ndarray.ipynb"


def make(a, shape, strides, offset):
    return NDArray.make(tuple(shape), tuple(strides), a.device, a._handle, offset)


# --- plausible mistakes ---------------------------------------------------------------------------------------------

@staticmethod
def compact_strides_column_major(shape):
    strides, step = [], 1
    for n in shape:
        strides.append(step)
        step *= n
    return tuple(strides)


@staticmethod
def compact_strides_counting_own_axis(shape):
    return tuple(math.prod(shape[k:]) for k in range(len(shape)))


def is_compact_strides_only(self):
    return self.strides == NDArray.compact_strides(self.shape)


def is_compact_size_only(self):
    return self.size == self._handle.size


def reshape_without_compact_check(self, new_shape):
    if math.prod(new_shape) != self.size:
        raise ValueError("size")
    return make(self, new_shape, NDArray.compact_strides(tuple(new_shape)), self._offset)


def reshape_by_copying(self, new_shape):
    if math.prod(new_shape) != self.size or not self.is_compact():
        raise ValueError("not compact")
    return NDArray(self.numpy().reshape(new_shape), device=self.device)


def reshape_dropping_the_offset(self, new_shape):
    if math.prod(new_shape) != self.size or not ndl.backend_ndarray.layout.is_contiguous(self.shape, self.strides):
        raise ValueError("not contiguous")
    return make(self, new_shape, NDArray.compact_strides(tuple(new_shape)), 0)


def permute_inverse(self, new_axes):
    inverse = [list(new_axes).index(k) for k in range(len(new_axes))]
    return make(self, [self.shape[k] for k in inverse], [self.strides[k] for k in inverse], self._offset)


def permute_shape_only(self, new_axes):
    return make(self, [self.shape[k] for k in new_axes], self.strides, self._offset)


def broadcast_keeping_strides(self, new_shape):
    extra = len(new_shape) - self.ndim
    return make(self, new_shape, (0,) * extra + tuple(self.strides), self._offset)


def broadcast_same_ndim_only(self, new_shape):
    strides = [0 if n == 1 else s for n, s in zip(self.shape, self.strides)]
    return make(self, tuple(new_shape)[len(new_shape) - self.ndim:], strides, self._offset)


def broadcast_without_error(self, new_shape):
    extra = len(new_shape) - self.ndim
    strides = [s if n == m else 0 for n, s, m in zip(self.shape, self.strides, new_shape[extra:])]
    return make(self, new_shape, [0] * extra + strides, self._offset)


def process_slice_as_the_course_stub(self, sl, dim):
    start, stop, step = sl.start, sl.stop, sl.step
    if start is None:
        start = 0
    if start < 0:
        start = self.shape[dim]
    if stop is None:
        stop = self.shape[dim]
    if stop < 0:
        stop = self.shape[dim] + stop
    if step is None:
        step = 1
    return slice(start, stop, step)


def process_slice_defaults_for_positive_steps(self, sl, dim):
    n = self.shape[dim]
    step = sl.step or 1
    start = 0 if sl.start is None else min(max(sl.start + n if sl.start < 0 else sl.start, 0), n)
    stop = n if sl.stop is None else min(max(sl.stop + n if sl.stop < 0 else sl.stop, 0), n)
    return slice(start, stop, step)


def process_slice_with_none_stop(self, sl, dim):
    start, stop, step = sl.indices(self.shape[dim])
    return slice(start, None if stop < 0 else stop, step)


def _getitem(rule):
    def getitem(self, idxs):
        slices = as_slices(self, idxs)
        shape, strides, offset = [], [], self._offset
        for sl, stride in zip(slices, self.strides):
            n, s, o = rule(sl, stride)
            shape.append(n)
            strides.append(s)
            offset += o
        return make(self, shape, strides, offset)

    return getitem


def as_slices(array, idxs):
    """The notebook's given helper (the course's preamble), with the reference process_slice."""
    idxs = idxs if isinstance(idxs, tuple) else (idxs,)
    if Ellipsis in idxs:
        at = idxs.index(Ellipsis)
        idxs = idxs[:at] + (slice(None),) * (array.ndim - len(idxs) + 1) + idxs[at + 1:]
    idxs = idxs + (slice(None),) * (array.ndim - len(idxs))
    return tuple(array.process_slice(i, d) if isinstance(i, slice) else slice(i % array.shape[d], i % array.shape[d] + 1, 1)
                 for d, i in enumerate(idxs))


getitem_forgetting_the_step = _getitem(lambda sl, s: (len(range(sl.start, sl.stop, sl.step)), s, sl.start * s))
getitem_offset_without_stride = _getitem(lambda sl, s: (len(range(sl.start, sl.stop, sl.step)), s * sl.step, sl.start))
getitem_length_ignoring_step = _getitem(lambda sl, s: (abs(sl.stop - sl.start), s * sl.step, sl.start * s))


def getitem_from_offset_zero(self, idxs):
    view = _getitem(lambda sl, s: (len(range(sl.start, sl.stop, sl.step)), s * sl.step, sl.start * s))(self, idxs)
    return make(self, view.shape, view.strides, view._offset - self._offset)


def permute_dropping_the_offset(self, new_axes):
    return make(self, [self.shape[k] for k in new_axes], [self.strides[k] for k in new_axes], 0)


def broadcast_dropping_the_offset(self, new_shape):
    view = install.reference("needle.backend_ndarray.ndarray:NDArray.broadcast_to")(self, new_shape)
    return make(self, view.shape, view.strides, 0)


def process_slice_without_clipping(self, sl, dim):
    n = self.shape[dim]
    step = sl.step or 1
    start = (0 if step > 0 else n - 1) if sl.start is None else (sl.start + n if sl.start < 0 else sl.start)
    stop = (n if step > 0 else -1) if sl.stop is None else (sl.stop + n if sl.stop < 0 else sl.stop)
    return slice(start, stop, step)


getitem_floor_length = _getitem(lambda sl, s: (max(0, (sl.stop - sl.start) // sl.step), s * sl.step, sl.start * s))


WRONG = {
    "compact_strides": [compact_strides_column_major, compact_strides_counting_own_axis],
    "is_compact": [is_compact_strides_only, is_compact_size_only],
    "reshape": [reshape_without_compact_check, reshape_by_copying, reshape_dropping_the_offset],
    "permute": [permute_inverse, permute_shape_only, permute_dropping_the_offset],
    "broadcast_to": [broadcast_keeping_strides, broadcast_same_ndim_only, broadcast_without_error,
                     broadcast_dropping_the_offset],
    "process_slice": [process_slice_as_the_course_stub, process_slice_defaults_for_positive_steps,
                      process_slice_with_none_stop, process_slice_without_clipping],
    "__getitem__": [getitem_forgetting_the_step, getitem_offset_without_stride, getitem_length_ignoring_step,
                    getitem_from_offset_zero, getitem_floor_length],
}


def test_every_python_method_of_hw3_part1_is_an_exercise():
    assert sorted(IDS) == sorted(f"ndarray.{m}" for m in METHODS) == sorted(f"ndarray.{m}" for m in WRONG)


class TestNdarrayChapter(ChapterContract):
    """The shared chapter tests; the textbook's exercise cells need the notebook's given helper (`as_slices`) and its
    example array, so the two textbook tests are this chapter's own."""

    chapter, textbook, wrong = "ndarray", "04_ndarray", WRONG

    def test_a_stub_leaves_needles_method_on_ndarray(self, exercise_id):
        reference = ref(exercise_id)  # compact_strides: the staticmethod object itself, as NDArray holds it
        course.exercise(exercise_id)(stub_like(reference))
        assert vars(NDArray)[exercise_id.split(".", 1)[1]] is reference

    def test_textbook_solutions_pass_and_are_installed(self, capsys):
        """The textbook's solutions pass, and every NDArray view and Tensor op then runs through them."""
        given, cells = _exercise_cells()
        ns = _namespace()
        exec(given[0], ns)
        for source in cells:
            exec(source, ns)
        assert sorted(install.installed_ids()) == sorted(IDS)
        for exercise_id in IDS:
            course.check(exercise_id)
        assert capsys.readouterr().out.count("✓ ndarray.") == len(IDS)
        rng = np.random.default_rng(0)
        x_np = rng.standard_normal((2, 3, 4))
        x = ndl.Tensor(x_np, device=ndl.cpu(), dtype="float64")
        y = ndl.summation(ndl.transpose(x, (0, 2)).reshape((4, 6)) @ ndl.Tensor(np.ones((6, 1)), dtype="float64"))
        assert np.isclose(y.numpy(), x_np.sum())
        a = NDArray(np.arange(24.0).reshape(2, 3, 4))
        np.testing.assert_array_equal(a[1, ::-2, 1:].numpy(), np.arange(24.0).reshape(2, 3, 4)[1:2, ::-2, 1:])

    def test_workbook_stubs_keep_the_reference_and_never_pass(self, capsys):
        """The workbook's stubs never pass and leave needle's references in place for the notebook's later cells."""
        given, cells = _exercise_cells()
        ns = _namespace()
        exec(given[0], ns)
        for source in cells:
            stubbed = workbook.stub_source(source)
            assert "### BEGIN SOLUTION" not in stubbed
            exec(stubbed, ns)
        assert course.installed_ids() == []
        assert all(install.is_stub(exercise_id) for exercise_id in IDS)
        capsys.readouterr()
        for exercise_id in IDS:
            course.check(exercise_id)  # never raises, never passes
            out = capsys.readouterr().out
            assert out.startswith(f"◦ {exercise_id}: not attempted yet (its cell still holds the stub"), out
        # the stubs' names are needle's references, so the notebook's later cells run on them
        assert ns["compact_strides"] is vars(NDArray)["compact_strides"] and ns["getitem"] is NDArray.__getitem__
        a = ns["a"]
        assert NDArray.compact_strides((2, 3, 4)) == (12, 4, 1) and a.reshape((2, 6)).strides == (6, 1)
        np.testing.assert_array_equal(a.permute((1, 0))[::-1, 1:].numpy(), np.arange(12.0).reshape(3, 4).T[::-1, 1:])
        assert ns["as_slices"](a, (1, slice(None, None, -2))) == (slice(1, 2, 1), slice(3, -1, -2))


def test_a_method_written_inside_a_class_is_installed_and_checked(capsys):
    class MyNDArray:
        def permute(self, new_axes):
            return make(self, [self.shape[k] for k in new_axes], [self.strides[k] for k in new_axes], self._offset)

    course.exercise("ndarray.permute")(MyNDArray)
    course.check("ndarray.permute")
    assert capsys.readouterr().out.startswith("✓ ndarray.permute:")
    assert NDArray(np.zeros((2, 3))).permute((1, 0)).strides == (1, 3)


def test_failures_say_what_went_wrong():
    course.exercise("ndarray.reshape")(reshape_by_copying)
    with pytest.raises(CheckFailed, match="no copy"):
        course.check("ndarray.reshape")
    course.exercise("ndarray.reshape")(reshape_without_compact_check)
    with pytest.raises(CheckFailed, match="must raise ValueError"):
        course.check("ndarray.reshape")
    course.exercise("ndarray.broadcast_to")(broadcast_keeping_strides)
    with pytest.raises(CheckFailed, match="reads outside the buffer|wrong elements"):
        course.check("ndarray.broadcast_to")
    course.exercise("ndarray.__getitem__")(getitem_forgetting_the_step)
    with pytest.raises(CheckFailed) as failure:
        course.check("ndarray.__getitem__")
    message = str(failure.value)  # the input's layout, both views' layouts, both arrays and the first wrong element
    assert "a[1:3, ::2] with a: shape (4, 5), strides (5, 1), offset 0" in message
    assert "your view:    shape (2, 3), strides (5, 1), offset 5" in message
    assert "numpy's view: shape (2, 3), strides (5, 2), offset 5" in message
    assert "first wrong element: index (0, 1)" in message


def test_numpy_style_int_indexing_is_told_that_the_axis_stays():
    def getitem_dropping_int_axes(self, idxs):
        view = install.reference("needle.backend_ndarray.ndarray:NDArray.__getitem__")(self, idxs)
        idxs = idxs if isinstance(idxs, tuple) else (idxs,)
        keep = [k for k in range(view.ndim) if k >= len(idxs) or not isinstance(idxs[k], int)]
        return make(self, [view.shape[k] for k in keep], [view.strides[k] for k in keep], view._offset)

    course.exercise("ndarray.__getitem__")(getitem_dropping_int_axes)
    with pytest.raises(CheckFailed, match="an int index keeps its axis, with length 1"):
        course.check("ndarray.__getitem__")


def test_a_view_reaching_outside_the_buffer_fails_before_anything_reads_it():
    def getitem_far_away(self, idxs):
        view = install.reference("needle.backend_ndarray.ndarray:NDArray.__getitem__")(self, idxs)
        return make(self, view.shape, view.strides, view._offset + 10**9)

    course.exercise("ndarray.__getitem__")(getitem_far_away)
    with pytest.raises(CheckFailed, match="reads outside the buffer"):
        course.check("ndarray.__getitem__")


def test_one_bug_one_failure_the_other_exercises_run_as_references():
    # a wrong compact_strides and process_slice are installed; the checks of their users still pass
    course.exercise("ndarray.compact_strides")(compact_strides_column_major)
    course.exercise("ndarray.process_slice")(process_slice_as_the_course_stub)
    course.exercise("ndarray.is_compact")(is_compact_size_only)
    for exercise_id in ("ndarray.reshape", "ndarray.__getitem__"):
        course.exercise(exercise_id)(ref(exercise_id))
        course.check(exercise_id)
    # and the wrong ones are back in place after each check
    assert NDArray.compact_strides((2, 3)) == (1, 2)


# --- the textbook's solutions and the workbook's stubs ----------------------------------------------------------------

def _exercise_cells():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    given = [c.source for c in nb.cells if c.cell_type == "code" and "def as_slices" in c.source]
    cells = [c.source for c in nb.cells if "exercise" in c.metadata.get("tags", [])]
    return given, cells


def _namespace():
    a = NDArray(np.arange(12, dtype=np.float32).reshape(3, 4))  # the notebook's example array
    return {"course": course, "NDArray": NDArray, "math": math, "np": np, "ndl": ndl, "a": a}


def test_the_notebook_has_one_exercise_cell_per_exercise():
    _, cells = _exercise_cells()
    assert sorted(i for c in cells for i in workbook.exercise_ids(c)) == sorted(IDS)


def test_one_exercise_solved_in_a_workbook_of_stubs_is_checked_alone(capsys):
    """A stub everywhere but permute: permute's check passes (right) or fails (wrong); the stubs stay not attempted."""
    given, cells = _exercise_cells()
    for wrong in (False, True):
        course.reset()
        ns = _namespace()
        exec(given[0], ns)
        for source in cells:
            exec(source if "ndarray.permute" in source else workbook.stub_source(source), ns)
        if wrong:
            course.exercise("ndarray.permute")(permute_shape_only)
        capsys.readouterr()
        if wrong:
            with pytest.raises(CheckFailed, match="ndarray.permute"):
                course.check("ndarray.permute")
        else:
            course.check("ndarray.permute")
            assert capsys.readouterr().out.startswith("✓ ndarray.permute:")
        course.check("ndarray.reshape")
        assert capsys.readouterr().out.startswith("◦ ndarray.reshape: not attempted yet")


def test_hints_name_the_idea_without_code():
    for exercise_id in IDS:
        hint = registry.get(exercise_id).hint
        assert not any(token in hint for token in ("(", ")", "=", "self.", "[", "_", "return")), (exercise_id, hint)


def test_every_exercise_has_three_hint_tiers_revealed_one_by_one(capsys):
    for exercise_id in IDS:
        tiers = registry.get(exercise_id).hints
        assert len(tiers) == 3 and len(set(tiers)) == 3, exercise_id
        for k in range(1, 4):
            course.hint(exercise_id)
            assert capsys.readouterr().out.startswith(f"hint {k}/3 for {exercise_id}: {tiers[k - 1]}")


# --- the chapter's pictures -----------------------------------------------------------------------------------------

SVG = "{http://www.w3.org/2000/svg}"


def _texts(svg):
    return [t.text for t in ET.fromstring(svg).iter(f"{SVG}text")]


def test_highlight_writes_the_index_arithmetic():
    a = NDArray(np.arange(12, dtype=np.float32).reshape(3, 4))[::-1, 1:]
    picture = strided_view(a, highlight=(1, 0))
    assert "view[1, 0] is buffer[offset 9 + 1·(-4) + 0·1 = 5]" in _texts(picture.svg)
    with pytest.raises(IndexError):
        strided_view(a, highlight=(3, 0))


def test_a_view_of_part_of_a_buffer_is_not_called_compact():
    assert "(not compact)" in repr(strided_layout(np.arange(12), (2, 4), (4, 1), 0))
    assert "(compact)" in repr(strided_layout(np.arange(8), (2, 4), (4, 1), 0))


def test_stride_walk_is_a_slider_live_and_a_static_picture_otherwise():
    view = NDArray(np.arange(6, dtype=np.float32).reshape(2, 3)).permute((1, 0))
    walk = stride_walk(view, step=2)
    bundle = walk._repr_mimebundle_()
    assert {"image/svg+xml", "text/plain", "application/vnd.jupyter.widget-view+json"} <= set(bundle)
    assert bundle["text/plain"] == "<stride walk: shape (3, 2), strides (1, 3), offset 0, 6 elements>"
    assert bundle["image/svg+xml"].count("marker-end") == 5  # the whole walk: one arc per step
    slider, picture = walk.widget().children
    slider.value = 3
    assert "step 3 of the walk: view[1, 1] is buffer[offset 0 + 1·1 + 1·3 = 4]" in _texts(picture.value)
    assert picture.value.count("marker-end") == 3  # the walk so far
    # a broadcast reads one cell again: a loop instead of an arc
    assert "<circle" in StrideWalk(np.arange(2), (2, 3), (1, 0)).static.svg


def test_the_random_views_of_the_checks_cover_every_kind_of_layout():
    rng = np.random.default_rng(1)
    seen = set()
    for _ in range(200):
        base, view = random_view(rng)
        a = mirror(view, base)
        np.testing.assert_array_equal(a.numpy(), view)
        seen |= {"negative" if any(s < 0 for s in a.strides) else "", "zero" if 0 in a.strides else "",
                 "offset" if a._offset else "", "permuted" if list(a.strides) != sorted(a.strides, reverse=True) else ""}
    assert {"negative", "zero", "offset", "permuted"} <= seen


def test_side_by_side_puts_pictures_in_one_row():
    a = NDArray(np.arange(6, dtype=np.float32).reshape(2, 3))
    row = side_by_side(strided_view(a.permute((1, 0))), strided_view(a), titles=["view", "copy"])
    root = ET.fromstring(row.svg)
    inner = root.findall(f"{SVG}svg")
    assert len(inner) == 2 and int(inner[1].get("x")) > int(inner[0].get("x")) == 0
    assert {"view", "copy"} <= set(_texts(row.svg))
    assert repr(row).startswith("<strided view: view: shape (3, 2)")


# --- the course's own hw3 part-1 cases on the textbook's solutions -----------------------------------------------------

def _install_textbook_solutions():
    given, cells = _exercise_cells()
    ns = _namespace()
    exec(given[0], ns)
    for source in cells:
        exec(source, ns)


COURSE_VIEW_CASES = [  # (shape, numpy view, needle view) as the course's test_ndarray.py writes them
    ((8, 16), lambda X: X.reshape(2, 4, 16), lambda X: X.reshape((2, 4, 16))),
    ((8, 16), lambda X: X.reshape(128), lambda X: X.reshape((128,))),
    ((4, 5, 6), lambda X: X.transpose(1, 0, 2), lambda X: X.permute((1, 0, 2))),
    ((4, 5, 6), lambda X: X.transpose(2, 1, 0), lambda X: X.permute((2, 1, 0))),
    ((1, 3, 4), lambda X: np.broadcast_to(X, (6, 3, 4)), lambda X: X.broadcast_to((6, 3, 4))),
    ((8, 16), lambda X: X[3:4, 3:4], lambda X: X[3:4, 3:4]),
    ((8, 16), lambda X: X[1:2, 1:3], lambda X: X[1:2, 1:3]),
    ((8, 16), lambda X: X[1:4, 3:4], lambda X: X[1:4, 3:4]),
    ((8, 8, 2, 2, 2, 2), lambda X: X[1:3, 5:8, 1:2, 0:1, 0:1, 1:2], lambda X: X[1:3, 5:8, 1:2, 0:1, 0:1, 1:2]),
    ((7, 8), lambda X: X.transpose()[3:7, 2:5], lambda X: X.permute((1, 0))[3:7, 2:5]),
]


@pytest.mark.parametrize("shape, np_fn, nd_fn", COURSE_VIEW_CASES)
def test_the_course_hw3_view_cases_pass_on_the_textbook_solutions(shape, np_fn, nd_fn):
    _install_textbook_solutions()
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    a = NDArray(x, device=ndl.cpu())
    view = nd_fn(a)
    assert view._handle.ptr() == a._handle.ptr()  # the course's test: no copy
    np.testing.assert_array_equal(view.numpy(), np_fn(x))
    np.testing.assert_array_equal(view.compact().numpy(), np_fn(x))


def test_the_course_hw3_setitem_cases_write_through_the_learners_views():
    _install_textbook_solutions()
    rng = np.random.default_rng(1)
    for lhs_shape, lhs, rhs_shape, rhs in [((4, 5, 6), (slice(1, 2), slice(0, 5), slice(0, 6)),
                                            (7, 7, 7), (slice(0, 1), slice(0, 5), slice(0, 6))),
                                           ((4, 5, 6), (slice(1, 4, 2), slice(None, None, -2), slice(0, 6, 3)),
                                            (6, 3, 2), (slice(0, 6, 3), slice(0, 3), slice(0, 2)))]:
        x, y = rng.standard_normal(lhs_shape).astype(np.float32), rng.standard_normal(rhs_shape).astype(np.float32)
        a, b = NDArray(x, device=ndl.cpu()), NDArray(y, device=ndl.cpu())
        ptr = a._handle.ptr()
        a[lhs] = b[rhs]
        x[lhs] = y[rhs]
        assert a._handle.ptr() == ptr
        np.testing.assert_array_equal(a.numpy(), x)
        a[lhs] = 2.5
        x[lhs] = 2.5
        np.testing.assert_array_equal(a.numpy(), x)
