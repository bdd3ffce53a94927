"""needle/labels.py: the one check every label-taking op uses (whole numbers in [0, n), any int or float dtype)."""
import numpy as np
import pytest

import needle as ndl
from needle.labels import LabelError, id_error, integer_labels


@pytest.mark.parametrize("labels", [[0, 2, 1], np.array([0.0, 2.0, 1.0]), np.array([0, 2, 1], dtype=np.uint8),
                                    ndl.Tensor(np.array([0.0, 2.0, 1.0]))])
def test_whole_numbers_in_range_come_back_as_int64(labels):
    out = integer_labels(labels, 3, "one_hot")
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, [0, 2, 1])


@pytest.mark.parametrize("labels, words", [
    ([0, 3], "lie in [0, 3), got min 0 max 3"),
    ([-1, 2], "lie in [0, 3), got min -1 max 2"),
    ([0.5, 1.0], "must be integers, got [0.5]"),
    ([np.nan, 1.0], "must be integers, got [nan]"),
    ([np.inf], "must be integers, got [inf]"),
    ([0.5, 1.0, 1.5, 2.5, 0.25], "must be integers, got [0.5 1.5 2.5]"),  # the first three
])
def test_out_of_range_or_fractional_labels_raise_a_label_error_naming_the_op(labels, words):
    with pytest.raises(LabelError) as info:
        integer_labels(np.array(labels), 3, "SoftmaxLoss")
    assert str(info.value).startswith("SoftmaxLoss: ") and words in str(info.value)
    assert isinstance(info.value, IndexError) and isinstance(info.value, ValueError)


def test_the_last_class_booleans_and_empty_labels_are_valid():
    np.testing.assert_array_equal(integer_labels(np.array([True, False]), 2, "op"), [1, 0])
    np.testing.assert_array_equal(integer_labels(np.array([2.0]), 3, "op"), [2])
    assert integer_labels(np.array([], dtype=np.float64), 3, "op").shape == (0,)
    assert integer_labels(np.array([], dtype=np.int64), 0, "op").shape == (0,)


@pytest.mark.parametrize("labels", [np.array(["a"]), np.array([1 + 0j]), np.array([None])])
def test_labels_of_other_kinds_raise_a_type_error(labels):
    with pytest.raises(TypeError, match=f"op: labels must be integers, got dtype {labels.dtype}"):
        integer_labels(labels, 3, "op")


def test_id_error_reports_the_first_bad_id_as_the_kernels_do():
    """The fused kernels' id check (embedding rows, cross-entropy labels) on devices without C++: the first bad id
    decides, an IndexError outside [0, num) (NaN included), a ValueError for a fraction, None when all are good."""
    assert id_error(np.array([0.0, 1.0, 2.0]), 3, "label", "op") is None
    assert id_error(np.array([], dtype=np.float32), 0, "label", "op") is None
    for ids, kind, words in [
        ([0.0, 3.0, 0.5], IndexError, "op: label 3 (at 1) outside [0, 3)"),
        ([0.0, -1.0], IndexError, "op: label -1 (at 1) outside [0, 3)"),
        ([np.nan], IndexError, "op: label nan (at 0) outside [0, 3)"),
        ([1.0, 0.5, 7.0], ValueError, "op: label must be whole numbers, got 0.5 (at 1)"),
        ([2.5], ValueError, "op: label must be whole numbers, got 2.5 (at 0)"),
    ]:
        err = id_error(np.array(ids), 3, "label", "op")
        assert type(err) is kind and str(err) == words, (ids, err)
