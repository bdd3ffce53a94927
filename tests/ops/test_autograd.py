"""Tensor/Value semantics as the course specifies, the graph each operator builds, topological order,
reverse-mode AD (every node's .grad, accumulation, deep graphs), TensorTuple, LAZY_MODE, TENSOR_COUNTER."""
import gc
import re

import numpy as np
import pytest

import needle as ndl
from needle import autograd, backend_selection
from ops_cases import OP_DEVICES


# ---- construction, dtype, device ----
def test_tensor_defaults():
    t = ndl.Tensor([[1, 2], [3, 4]])
    assert t.requires_grad is True
    assert t.is_leaf() and t.op is None and t.inputs == [] and t.num_outputs == 1
    assert t.shape == (2, 2)
    assert t.device == ndl.default_device()
    assert ndl.Tensor(np.zeros(3, dtype=np.float32)).dtype == "float32"


def test_device_dtype_and_requires_grad_are_keyword_only():
    """As in the course: `Tensor(array, device=..., dtype=...)`; a second positional argument is a mistake."""
    with pytest.raises(TypeError):
        ndl.Tensor(np.ones(2), ndl.default_device())


def test_repr_and_str_show_the_values():
    t = ndl.Tensor(np.array([1.5, -2.0]))
    assert repr(t).startswith("needle.Tensor(") and repr(t).endswith(")")
    assert "1.5" in repr(t) and "-2." in str(t) and not str(t).startswith("needle")
    pair = ndl.make_tuple(t, ndl.Tensor(np.array([7.0])))
    assert repr(pair) == str(pair) == "needle.TensorTuple(" + repr(pair[0]) + ", " + repr(pair[1]) + ")"


def test_a_failing_op_names_itself_the_input_shapes_and_the_device():
    a, b = ndl.Tensor(np.ones((2, 3))), ndl.Tensor(np.ones((2, 3)))
    on = "" if backend_selection.NUMPY else f" on {a.device}"
    with pytest.raises(ValueError, match=re.escape(f"MatMul on inputs of shape (2, 3){on}, (2, 3){on}: ")):
        a @ b


def test_float64_is_preserved_and_propagates():
    a = ndl.Tensor(np.arange(6.0).reshape(2, 3))
    assert a.dtype == "float64"
    out = (a * 2 + 1).sum()
    assert out.dtype == "float64"
    out.backward()
    assert a.grad.dtype == "float64"
    assert ndl.Tensor(np.ones(3), dtype="float32").dtype == "float32"


@pytest.mark.parametrize("device", OP_DEVICES, ids=str)
def test_device_placement_and_copy(device):
    t = ndl.Tensor(np.ones((2, 2)), device=device)
    assert t.device == device
    same = ndl.Tensor(t)
    assert same.realize_cached_data() is t.realize_cached_data()  # same device and dtype: shared data
    other = ndl.Tensor(t, dtype="float32")
    assert other.dtype == "float32" and other.realize_cached_data() is not t.realize_cached_data()
    for target in OP_DEVICES:
        moved = ndl.Tensor(t, device=target)
        assert moved.device == target
        np.testing.assert_array_equal(moved.numpy(), np.ones((2, 2)))


@pytest.mark.parametrize("device", OP_DEVICES, ids=str)
def test_numpy_returns_arrays_including_0d(device):
    t = ndl.Tensor(np.arange(4.0), device=device)
    assert isinstance(t.numpy(), np.ndarray)
    total = t.sum()
    assert total.shape == ()
    assert isinstance(total.numpy(), np.ndarray) and total.numpy().shape == ()
    assert float(total.numpy()) == 6.0


def test_detach_and_data():
    a = ndl.Tensor(np.ones(3))
    b = a * 2
    d = b.detach()
    assert d.is_leaf() and d.requires_grad is False
    assert d.realize_cached_data() is b.realize_cached_data()
    assert b.data.is_leaf()
    a.data = ndl.Tensor(np.full(3, 5.0))
    np.testing.assert_array_equal(a.numpy(), [5.0, 5.0, 5.0])
    with pytest.raises(TypeError, match="dtype"):
        a.data = ndl.Tensor(np.ones(3, dtype=np.float32))


def test_constants_are_detached_in_eager_mode():
    a = ndl.Tensor(np.ones(2), requires_grad=False)
    b = a + 1
    assert b.requires_grad is False and b.op is None
    c = a + ndl.Tensor(np.ones(2))
    assert c.requires_grad is True and isinstance(c.op, ndl.ops.EWiseAdd)


# ---- the graph each Python operator builds (the course's tests depend on it) ----
def test_operator_graph_structure():
    a, b = ndl.Tensor(np.ones((2, 2))), ndl.Tensor(np.ones((2, 2)))
    sub = a - b
    assert isinstance(sub.op, ndl.ops.EWiseAdd) and sub.inputs[0] is a
    assert isinstance(sub.inputs[1].op, ndl.ops.Negate) and sub.inputs[1].inputs[0] is b
    c = a - 3
    assert isinstance(c.op, ndl.ops.AddScalar) and c.op.scalar == -3
    assert isinstance((3 * a).op, ndl.ops.MulScalar) and (3 * a).op.scalar == 3
    assert isinstance((a + 2).op, ndl.ops.AddScalar) and isinstance((2 + a).op, ndl.ops.AddScalar)
    assert isinstance((a / 2).op, ndl.ops.DivScalar)
    assert isinstance((a / b).op, ndl.ops.EWiseDiv)
    assert isinstance((a**2).op, ndl.ops.PowerScalar)
    assert isinstance((a**b).op, ndl.ops.EWisePow)
    assert isinstance((a @ b).op, ndl.ops.MatMul) and isinstance(a.matmul(b).op, ndl.ops.MatMul)
    assert isinstance((-a).op, ndl.ops.Negate)
    assert isinstance(a.sum().op, ndl.ops.Summation) and a.sum().shape == ()
    assert isinstance(a.reshape((4,)).op, ndl.ops.Reshape)
    assert isinstance(a.broadcast_to((3, 2, 2)).op, ndl.ops.BroadcastTo)
    x = ndl.Tensor(np.zeros((2, 3, 4)))
    assert x.transpose().shape == (2, 4, 3)  # default: swap the last two axes
    assert x.transpose((0, 1)).shape == (3, 2, 4)  # a pair of axes is swapped, not a permutation


# ---- topological sort ----
def test_topo_sort_course_example_order():
    a1, b1 = ndl.Tensor(np.asarray([[0.88282157]])), ndl.Tensor(np.asarray([[0.90170084]]))
    c1 = 3 * a1 * a1 + 4 * b1 * a1 - a1
    a, b = 0.88282157, 0.90170084
    expected = [a, 3 * a, 3 * a * a, b, 4 * b, 4 * b * a, 3 * a * a + 4 * b * a, -a, 3 * a * a + 4 * b * a - a]
    order = autograd.find_topo_sort([c1])
    np.testing.assert_allclose([float(x.numpy().squeeze()) for x in order], expected, rtol=1e-7)
    assert order[0] is a1 and order[3] is b1 and order[-1] is c1


def test_topo_sort_inputs_left_to_right_and_shared_nodes_once():
    a, b = ndl.Tensor(np.ones(2)), ndl.Tensor(np.ones(2))
    c = a * b
    d = c + a
    e = d * c
    order = autograd.find_topo_sort([e])
    assert order == [a, b, c, d, e]
    assert autograd.find_topo_sort([c, e]) == [a, b, c, d, e]


def test_deep_chain_of_10000_ops_backward():
    x = ndl.Tensor(np.array([1.0, 2.0]))
    y = x
    for _ in range(5000):
        y = y * 1.0001
        y = y + 0.5
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0001**5000] * 2, rtol=1e-10)
    assert len(autograd.find_topo_sort([y])) == 10001


# ---- reverse-mode AD ----
def test_grad_on_every_node_and_accumulation():
    a = ndl.Tensor(np.array([2.0, 3.0]))
    b = a * a  # a used twice: adjoints add
    c = b * a
    c.backward(ndl.Tensor(np.array([1.0, 10.0]), requires_grad=False))
    np.testing.assert_allclose(a.grad.numpy(), [3 * 4.0, 10 * 3 * 9.0])
    np.testing.assert_allclose(b.grad.numpy(), [2.0, 30.0])
    np.testing.assert_allclose(c.grad.numpy(), [1.0, 10.0])
    assert isinstance(a.grad, ndl.Tensor)


def test_gradients_are_graph_nodes():
    x = ndl.Tensor(np.array([1.5]))
    (x * x * x).backward()  # 3x^2
    g = x.grad
    assert g.requires_grad and not g.is_leaf()
    g.backward()  # 6x
    np.testing.assert_allclose(x.grad.numpy(), [9.0])


def test_constant_inputs_get_no_gradient():
    w = ndl.Tensor(np.ones((3, 2)))
    x = ndl.Tensor(np.ones((4, 3)), requires_grad=False)
    (x @ w).sum().backward()
    assert w.grad.shape == (3, 2)
    assert x.grad is None


@pytest.mark.parametrize("build", [
    lambda x, w: (x * w + x).sum(),                                     # elementwise
    lambda x, w: (ndl.broadcast_to(x.sum(axes=(1,)).reshape((4, 1)), (4, 3)) * w).sum(),  # reduction, broadcast
    lambda x, w: ndl.exp(x / 2 - w).sum() + (x ** 2.0).sum(),           # scalar ops and unary ops
])
def test_constants_get_no_gradient_through_any_op(build):
    """backward never sends an adjoint to an input with requires_grad=False, whatever the op."""
    w = ndl.Tensor(np.full((4, 3), 0.5))
    x = ndl.Tensor(np.arange(12.0).reshape(4, 3) / 10, requires_grad=False)
    build(x, w).backward()
    assert x.grad is None and w.grad is not None and w.grad.shape == (4, 3)


@pytest.mark.parametrize("shape, to", [((1, 3), (1, 4, 3)), ((3,), (1, 2, 3)), ((1, 1), (1, 5, 2)), ((2, 1), (1, 2, 3))])
def test_broadcast_gradient_with_leading_size_one_axes(shape, to):
    """Axes added in front, and an output whose leading axis has size 1: the gradient sums back to the input."""
    x = ndl.Tensor(np.arange(np.prod(shape), dtype=np.float64).reshape(shape) + 1)
    weights = np.arange(np.prod(to), dtype=np.float64).reshape(to)
    (ndl.broadcast_to(x, to) * ndl.Tensor(weights)).sum().backward()
    added = len(to) - len(shape)
    expected = weights.sum(axis=tuple(range(added)))
    expected = expected.sum(axis=tuple(i for i, n in enumerate(shape) if n == 1), keepdims=True).reshape(shape)
    np.testing.assert_allclose(x.grad.numpy(), expected)


def _sum_to(grad: np.ndarray, shape: tuple) -> np.ndarray:
    """numpy's broadcast undone: `grad` summed over the axes broadcasting added or stretched, to `shape`."""
    added = grad.ndim - len(shape)
    stretched = tuple(added + i for i, n in enumerate(shape) if n == 1)
    return grad.sum(axis=tuple(range(added)) + stretched).reshape(shape)


@pytest.mark.parametrize("a_shape, b_shape", [((3,), (2, 3)), ((2, 1), (2, 3)), ((2, 3), (3,)), ((1, 3), (2, 1))])
def test_binary_ops_broadcast_either_operand_and_sum_its_gradient_back(a_shape, b_shape):
    """Either operand (the left one too) is broadcast by a node of the graph, so its gradient has its own shape."""
    an = np.arange(1.0, 1 + np.prod(a_shape)).reshape(a_shape)
    bn = np.arange(2.0, 2 + np.prod(b_shape)).reshape(b_shape)
    a, b = ndl.Tensor(an), ndl.Tensor(bn)
    out = a * b
    np.testing.assert_allclose(out.numpy(), an * bn)
    out.sum().backward()
    full = np.broadcast_shapes(a_shape, b_shape)
    np.testing.assert_allclose(a.grad.numpy(), _sum_to(np.broadcast_to(bn, full), a_shape))
    np.testing.assert_allclose(b.grad.numpy(), _sum_to(np.broadcast_to(an, full), b_shape))


def test_matmul_gradient_with_a_leading_size_one_batch():
    a = ndl.Tensor(np.arange(6.0).reshape(1, 2, 3))
    b = ndl.Tensor(np.arange(12.0).reshape(3, 4))
    (a @ b).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), np.ones((1, 2, 4)) @ np.arange(12.0).reshape(3, 4).T)
    np.testing.assert_allclose(b.grad.numpy(), (np.arange(6.0).reshape(2, 3).T @ np.ones((2, 4))))


def test_course_gradient_as_tuple_api():
    a, b = ndl.Tensor(np.array([1.0, 2.0])), ndl.Tensor(np.array([3.0, 4.0]))
    out = ndl.multiply(a, b)
    grads = out.op.gradient_as_tuple(ndl.Tensor(np.ones(2)), out)
    assert isinstance(grads, tuple) and len(grads) == 2
    np.testing.assert_allclose(grads[0].numpy(), [3.0, 4.0])


# ---- TensorTuple ----
def test_tensor_tuple_ops():
    a, b = ndl.Tensor(np.ones(2)), ndl.Tensor(np.full(3, 2.0))
    t = ndl.make_tuple(a, b)
    assert isinstance(t, ndl.TensorTuple) and len(t) == 2
    assert t[0] is a and t[1] is b  # constant folding of make_tuple
    both = t + ndl.make_tuple(a, b)
    np.testing.assert_allclose(both[1].numpy(), [4.0] * 3)
    assert t.detach().is_leaf()
    x = ndl.Tensor(np.array([1.0, 2.0]))
    pair = ndl.fused_add_scalars(x, 1.0, 10.0)
    np.testing.assert_allclose(pair[1].numpy(), [11.0, 12.0])
    (pair[0] * pair[1]).sum().backward()  # d/dx (x+1)(x+10) = 2x + 11
    np.testing.assert_allclose(x.grad.numpy(), [13.0, 15.0])
    direct = ndl.ops.TupleGetItem(1).gradient(ndl.Tensor(np.ones(2)), pair[1])
    assert isinstance(direct, ndl.TensorTuple) and np.all(direct[0].numpy() == 0)


@pytest.mark.parametrize("device", OP_DEVICES, ids=str)
def test_tensor_tuple_device_is_its_items_device(device):
    assert ndl.make_tuple(ndl.Tensor(np.ones(2), device=device), ndl.Tensor(np.ones(3), device=device)).device == device
    assert ndl.make_tuple(ndl.Tensor(np.ones(1), device=device)).device == device
    assert ndl.make_tuple().device == ndl.default_device()  # an empty tuple: the default device


def test_tensor_tuple_add_needs_a_tensor_tuple_of_the_same_length():
    pair = ndl.make_tuple(ndl.Tensor(np.ones(2)), ndl.Tensor(np.ones(3)))
    triple = ndl.make_tuple(*[ndl.Tensor(np.ones(2))] * 3)
    with pytest.raises(ValueError, match="same length"):
        pair + triple
    with pytest.raises(ValueError, match="must be a TensorTuple"):
        pair + ndl.Tensor(np.ones(2))


def test_long_split_unpacking_is_linear():
    """A TensorTuple's adjoint is built once from its items (the course's version sums n full tuples)."""
    n = 300
    x = ndl.Tensor(np.arange(n, dtype=np.float64).reshape(n, 1))
    parts = ndl.split(x, 0)
    total = parts[0]
    for i in range(1, n):
        total = total + parts[i] * float(i)
    before = autograd.TENSOR_COUNTER
    total.sum().backward()
    assert autograd.TENSOR_COUNTER - before < 12 * n
    np.testing.assert_allclose(x.grad.numpy().ravel(), [1.0] + list(range(1, n)))


# ---- LAZY_MODE and TENSOR_COUNTER ----
def test_lazy_mode_defers_compute(monkeypatch):
    monkeypatch.setattr(autograd, "LAZY_MODE", True)
    a = ndl.Tensor(np.ones(3))
    b = a + 1
    assert b.cached_data is None
    np.testing.assert_array_equal(b.numpy(), [2.0] * 3)


def test_tensor_counter_counts_live_values():
    gc.collect()
    start = autograd.TENSOR_COUNTER
    a = ndl.Tensor(np.ones(3))
    b = a * 2 + 1
    assert autograd.TENSOR_COUNTER == start + 3
    del a, b
    gc.collect()
    assert autograd.TENSOR_COUNTER == start
