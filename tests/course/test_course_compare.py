"""needle/course/compare.py: what a learner reads when a check fails (expected, got, the worst index and the inputs)."""
import numpy as np
import pytest

import needle as ndl
from needle.course.compare import _show, expect, expect_close, to_numpy
from needle.course.errors import CheckFailed

A20 = np.arange(20.0)


@pytest.mark.parametrize("value, text", [
    ((1, np.arange(3.0)), "(1, array shape (3,) float64: [0., 1., 2.])"),
    (object(), "object"),
    (np.float32(2.5), "2.5"),
    (np.arange(6.0)[::2], "array shape (3,) float64, strided view: [0., 2., 4.]"),
    (np.arange(6.0), "array shape (6,) float64: [0., 1., 2., 3., 4., 5.]"),
    (np.arange(7.0), "array shape (7,) float64: [0., 1., 2., 3., 4., 5.] ..."),
    (np.array([1 / 3, 2 / 3]), "array shape (2,) float64: [0.3333, 0.6667]"),
])
def test_show_describes_values_briefly(value, text):
    assert _show(value) == text


@pytest.mark.parametrize("value, around, text", [
    (A20, (10,), "array shape (20,) float64: ... 7, 8, 9, [10], 11, 12 ... (flat elements 7..12, [ ] marks index (10,))"),
    (A20, (0,), "array shape (20,) float64: [0], 1, 2, 3, 4, 5 ... (flat elements 0..5, [ ] marks index (0,))"),
    (A20, (19,), "array shape (20,) float64: ... 14, 15, 16, 17, 18, [19] (flat elements 14..19, [ ] marks index (19,))"),
    (np.arange(20).reshape(4, 5), (2, 3),
     "array shape (4, 5) int64: ... 10, 11, 12, [13], 14, 15 ... (flat elements 10..15, [ ] marks index (2, 3))"),
    (A20 / 3, (4,), "array shape (20,) float64: ... 0.3333, 0.6667, 1, [1.3333], 1.6667, 2 ... "
                    "(flat elements 1..6, [ ] marks index (4,))"),
    (A20, (1, 2), "array shape (20,) float64: [0., 1., 2., 3., 4., 5.] ..."),  # an index of another shape
    (np.arange(6.0), (2,), "array shape (6,) float64: [0., 1., 2., 3., 4., 5.]"),  # all of it fits anyway
])
def test_show_around_an_index_gives_the_values_next_to_it(value, around, text):
    assert _show(value, around=around) == text


class _Unreadable:
    def __array__(self, *args, **kwargs):
        raise RuntimeError("no numpy view")


def test_show_names_the_type_of_what_numpy_cannot_read():
    assert _show(_Unreadable()) == "_Unreadable"


def _failure(*args, **kwargs) -> str:
    with pytest.raises(CheckFailed) as info:
        expect_close(*args, **kwargs)
    return str(info.value)


def test_a_value_mismatch_names_the_worst_index_and_shows_every_input():
    text = _failure(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.5, 3.0]), what="f(x)",
                    inputs={"x": np.array([0.0, 1.0, 2.0]), "input y": 3, "w": np.ones(2)})
    assert text == ("f(x): max error 0.5 at index (1,)\n"
                    "  expected: array shape (3,) float64: [1. , 2.5, 3. ]\n"
                    "  got:      array shape (3,) float64: [1., 2., 3.]\n"
                    "  input x: array shape (3,) float64: [0., 1., 2.]\n"
                    "  input y: 3\n"
                    "  input w: array shape (2,) float64: [1., 1.]")


def test_a_mismatch_in_a_big_array_shows_the_window_around_it_in_expected_got_and_same_shaped_inputs():
    want = np.zeros((2, 8))
    want[0, 7] = 1.0
    text = _failure(np.zeros((2, 8)), want, what="big", inputs={"x": np.ones((2, 8)), "b": np.ones(3)})
    window = "(flat elements 4..9, [ ] marks index (0, 7))"
    assert text == ("big: max error 1 at index (0, 7)\n"
                    f"  expected: array shape (2, 8) float64: ... 0, 0, 0, [1], 0, 0 ... {window}\n"
                    f"  got:      array shape (2, 8) float64: ... 0, 0, 0, [0], 0, 0 ... {window}\n"
                    f"  input x: array shape (2, 8) float64: ... 1, 1, 1, [1], 1, 1 ... {window}\n"
                    "  input b: array shape (3,) float64: [1., 1., 1.]")


def test_nan_is_the_worst_error_and_shape_and_dtype_are_checked_first():
    assert _failure(np.array([1.0, np.nan]), np.array([0.0, 1.0]), what="f").startswith(
        "f: max error inf at index (1,)")
    assert _failure(np.ones(3), np.ones((3, 1)), what="f").startswith("f: shape (3,), expected shape (3, 1)")
    assert _failure(np.ones(3, np.float32), np.ones(3), what="f", check_dtype=True).startswith(
        "f: dtype float32, expected dtype float64")
    assert _failure(np.array([np.nan]), np.array([np.nan]), what="f").startswith("f: max error inf at index (0,)")
    expect_close(np.ones(3, np.float32), np.ones(3), what="f")  # dtype only when asked
    expect_close(np.zeros((0, 2)), np.zeros((0, 2)), what="empty")


def test_default_tolerances_and_keyword_only_arguments():
    expect_close(1.0 + 5e-6, 1.0, what="within rtol 1e-5 + atol 1e-6")
    assert _failure(1.0 + 5e-5, 1.0, what="f").startswith("f: max error 5e-05 at index ()")
    expect_close(1.0 + 5e-5, 1.0, what="f", rtol=1e-4)
    with pytest.raises(TypeError):
        expect_close(1.0, 1.0, "what given by position")


def test_to_numpy_reads_tensors_ndarrays_and_numbers():
    np.testing.assert_array_equal(to_numpy(ndl.Tensor(np.arange(3.0))), [0, 1, 2])
    np.testing.assert_array_equal(to_numpy(ndl.Tensor(np.arange(3.0)).realize_cached_data()), [0, 1, 2])
    assert to_numpy(2.5) == 2.5 and to_numpy(np.ones(2)).shape == (2,)


def test_expect_raises_its_message_and_both_hide_their_frames_from_pytest():
    expect(True, "never shown")
    with pytest.raises(CheckFailed, match="^the message$") as info:
        expect(False, "the message")
    frames = []
    tb = info.value.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    assert frames[-1].f_code.co_name == "expect" and frames[-1].f_locals["__tracebackhide__"] is True
    with pytest.raises(CheckFailed) as info:
        expect_close(1.0, 2.0, what="f")
    tb = info.value.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    assert tb.tb_frame.f_code.co_name == "expect_close" and tb.tb_frame.f_locals["__tracebackhide__"] is True
