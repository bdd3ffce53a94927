"""needle/course/cases.py and tensors.py: the case generators and tensor helpers every chapter's checks are built on."""
import numpy as np
import pytest

import needle as ndl
from needle import nn
from needle.course.cases import numerical_gradients, random_shape, rng_for, softmax_loss64, strided
from needle.course.errors import CheckFailed
from needle.course.tensors import graph_size, input_gradient_check, raw_array


def test_rng_for_is_seeded_by_the_name():
    assert rng_for("a").random() == rng_for("a").random() != rng_for("b").random()


def test_random_shape_draws_every_rank_and_length_in_its_bounds_and_no_other():
    rng = rng_for("shapes")
    shapes = [random_shape(rng) for _ in range(300)]
    assert {len(s) for s in shapes} == {1, 2, 3}
    assert {n for s in shapes for n in s} == {1, 2, 3, 4, 5}
    shapes = [random_shape(rng, min_ndim=0, max_ndim=4, max_dim=2) for _ in range(300)]
    assert {len(s) for s in shapes} == {0, 1, 2, 3, 4} and {n for s in shapes for n in s} == {1, 2}


@pytest.mark.parametrize("shape", [(), (5,), (2, 3), (2, 1, 4)])
def test_strided_is_a_non_contiguous_view_with_the_same_values(shape):
    x = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape) + 1
    view = strided(x)
    np.testing.assert_array_equal(view, x)
    assert view.dtype == x.dtype
    if shape:
        assert not view.flags.c_contiguous and view.strides[-1] == 2 * x.itemsize


def test_numerical_gradients_match_the_analytic_ones_in_float64():
    rng = rng_for("numgrad")
    a, b, g = rng.standard_normal((2, 3)), rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    da, db = numerical_gradients(lambda a, b: a * a * b, [a, b], g)
    np.testing.assert_allclose(da, 2 * a * b * g, rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(db, a * a * g, rtol=1e-7, atol=1e-8)
    assert da.dtype == np.float64


def test_softmax_loss64_is_the_mean_cross_entropy_and_stays_finite_for_huge_logits():
    Z, y = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]]), np.array([1, 2])
    want = np.mean([np.log(np.exp(z).sum()) - z[k] for z, k in zip(Z, y)])
    assert softmax_loss64(Z.astype(np.float32), y) == pytest.approx(want, rel=1e-12)
    assert softmax_loss64(Z + 1e4, y) == pytest.approx(want, rel=1e-9)


@pytest.mark.parametrize("shape", [(), (4,), (2, 3)])
def test_raw_array_gives_the_backend_array_compact_or_as_a_strided_view(shape):
    x = np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape)
    plain, view = raw_array(x, "float32"), raw_array(x, "float32", strided=True)
    for raw in (plain, view):
        np.testing.assert_array_equal(raw.numpy(), x)
        assert raw.shape == shape and str(raw.dtype) == "float32"
    if shape and hasattr(view, "is_compact"):
        assert plain.is_compact() and not view.is_compact()


def test_graph_size_counts_the_tensors_reachable_from_objects_dicts_lists_and_gradients():
    x = ndl.Tensor(np.ones(3))
    y = (x * 2).sum()
    assert graph_size(y) == 3 and graph_size(y, y) == 3  # y, x * 2, x
    y.backward()
    assert graph_size(x) == 2  # x and its gradient
    assert graph_size({"a": [y]}) == graph_size((y,))
    np.random.seed(0)
    model = nn.Linear(2, 3)
    assert graph_size(model) == 2 and graph_size(nn.Linear) == 0  # a class is not searched
    assert graph_size() == 0


class _Scaled(nn.Module):
    """x * scale: with scale 1 + 1e-3 its gradient is off by 0.1% from the identity's."""

    def __init__(self, scale: float):
        super().__init__()
        self.scale = scale

    def forward(self, x):
        return x * self.scale


def test_input_gradient_check_passes_the_right_gradient_and_names_a_wrong_one():
    x = rng_for("igc").standard_normal((3, 4))
    input_gradient_check(_Scaled(1.0), x, lambda a: a, "identity")
    with pytest.raises(CheckFailed, match=r"^scaled: gradient w.r.t. the input \(float64, vs central differences\): "
                                          r"max error"):
        input_gradient_check(_Scaled(1.0 + 1e-3), x, lambda a: a, "scaled")
    with pytest.raises(CheckFailed, match="the input got no gradient"):
        input_gradient_check(lambda t: ndl.Tensor(t.numpy(), dtype="float64"), x, lambda a: a, "detached")
