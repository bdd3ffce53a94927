"""Every op: forward against numpy and backward against float64 central differences, on every device,
with compact and non-contiguous (strided, permuted) inputs; random shapes by hypothesis; bad input."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import needle as ndl
from ops_cases import CASES, LAYOUTS, OP_DEVICES, check_backward, check_forward, make_input

CASE_IDS = [c.name for c in CASES]


@pytest.mark.parametrize("device", OP_DEVICES, ids=str)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_forward_matches_numpy(case, layout, device):
    check_forward(case.fn, case.ref, case.arrays(seed=1), device, layout, **case.tol)


@pytest.mark.parametrize("device", OP_DEVICES, ids=str)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_backward_matches_finite_differences(case, layout, device):
    check_backward(case.fn, case.arrays(seed=2), device, layout, **case.tol)


@pytest.mark.parametrize("device", OP_DEVICES, ids=str)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_float32_in_float32_out(case, device):
    inputs = [ndl.Tensor(a.astype(np.float32), device=device) for a in case.arrays(seed=3)]
    out = case.fn(*inputs)
    assert out.dtype == "float32"
    expected = case.ref(*[a.astype(np.float64) for a in case.arrays(seed=3)])
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-4, atol=1e-4)
    out.sum().backward()
    assert all(t.grad.dtype == "float32" for t in inputs)


# ---- random shapes (hypothesis) ----
shapes = st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple)
UNARY = {
    "exp": (ndl.exp, np.exp),
    "tanh": (ndl.tanh, np.tanh),
    "neg": (ndl.negate, np.negative),
    "square": (lambda a: a**2, lambda a: a**2),
    "sum": (ndl.summation, np.sum),
}


@settings(max_examples=25)
@given(shape=shapes, name=st.sampled_from(sorted(UNARY)), layout=st.sampled_from(LAYOUTS), seed=st.integers(0, 99))
def test_unary_ops_on_random_shapes(shape, name, layout, seed):
    fn, ref = UNARY[name]
    x = np.random.default_rng(seed).standard_normal(shape)
    for device in OP_DEVICES:
        check_forward(fn, ref, [x], device, layout)
        check_backward(fn, [x], device, layout, seed=seed)


@settings(max_examples=20)
@given(shape=shapes, data=st.data(), layout=st.sampled_from(LAYOUTS))
def test_reductions_and_broadcast_on_random_shapes(shape, data, layout):
    ndim = len(shape)
    axes = tuple(sorted(data.draw(st.sets(st.integers(0, ndim - 1), min_size=1))))
    x = np.random.default_rng(ndim).standard_normal(shape)
    kept = tuple(1 if i in axes else s for i, s in enumerate(shape))
    cases = [
        (lambda a: a.sum(axes), lambda a: a.sum(axes)),
        (lambda a: ndl.logsumexp(a, axes), lambda a: np.log(np.exp(a).sum(axes))),
        (lambda a: ndl.broadcast_to(a.sum(axes).reshape(kept), shape), lambda a: np.broadcast_to(a.sum(axes, keepdims=True), shape)),
    ]
    for device in OP_DEVICES:
        for fn, ref in cases:
            check_forward(fn, ref, [x], device, layout)
            check_backward(fn, [x], device, layout)


@settings(max_examples=15)
@given(batch=st.lists(st.integers(1, 3), max_size=2).map(tuple), m=st.integers(1, 4), n=st.integers(1, 4), p=st.integers(1, 4),
       drop=st.integers(0, 2), layout=st.sampled_from(LAYOUTS))
def test_matmul_random_batches(batch, m, n, p, drop, layout):
    rng = np.random.default_rng(m * 100 + n * 10 + p)
    a = rng.standard_normal(batch + (m, n))
    b = rng.standard_normal(batch[drop:] + (n, p))  # b may have fewer batch axes (broadcast)
    for device in OP_DEVICES:
        check_forward(ndl.matmul, np.matmul, [a, b], device, layout)
        check_backward(ndl.matmul, [a, b], device, layout)


# ---- special values ----
@pytest.mark.parametrize("device", OP_DEVICES, ids=str)
def test_logsumexp_stable_for_huge_inputs(device):
    x = np.array([[1e10, 1e10 - 1, 0.0], [-1e10, 5.0, 3.0]])
    t = make_input(x, device)
    out = ndl.logsumexp(t, axes=(1,))
    expected = np.array([1e10 + np.log(1 + np.exp(-1.0)), 5.0 + np.log(1 + np.exp(-2.0))])
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12)
    out.sum().backward()
    assert np.all(np.isfinite(t.grad.numpy()))
    np.testing.assert_allclose(t.grad.numpy().sum(1), [1.0, 1.0], rtol=1e-5)  # 1e10 carries 2e-6 ulp
    big = make_input(np.random.default_rng(0).standard_normal((3, 4)) * 1e5, device)
    assert np.all(np.isfinite(ndl.ops.logsoftmax(big).numpy()))


@pytest.mark.parametrize("device", OP_DEVICES, ids=str)
def test_relu_gradient_is_zero_at_zero(device):
    t = make_input(np.array([-1.0, 0.0, 2.0]), device)
    ndl.relu(t).sum().backward()
    np.testing.assert_array_equal(t.grad.numpy(), [0.0, 0.0, 1.0])


@pytest.mark.parametrize("device", OP_DEVICES, ids=str)
def test_split_stack_roundtrip_and_tuple_gradient(device):
    x = np.arange(24.0).reshape(2, 3, 4)
    t = make_input(x, device)
    parts = ndl.split(t, 1)
    assert len(parts) == 3 and parts[0].shape == (2, 4)
    np.testing.assert_array_equal(ndl.stack(list(parts.tuple()), 1).numpy(), x)
    (parts[2] * 2.0).sum().backward()  # only one item used: the others get zero adjoints
    expected = np.zeros_like(x)
    expected[:, 2, :] = 2.0
    np.testing.assert_array_equal(t.grad.numpy(), expected)


# ---- gradients of gradients ----
@pytest.mark.parametrize("device", OP_DEVICES, ids=str)
def test_second_derivatives(device):
    x = make_input(np.array([0.3, -1.2, 2.0]), device)
    y = (x * x * x).sum()  # dy/dx = 3x^2, d2y/dx2 = 6x
    y.backward()
    gx = x.grad
    np.testing.assert_allclose(gx.numpy(), 3 * x.numpy() ** 2)
    gx.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 6 * x.numpy())

    z = make_input(np.array([0.5, -0.4]), device)
    ndl.tanh(z).sum().backward()  # d/dz tanh = 1 - tanh^2; second derivative -2 tanh (1 - tanh^2)
    z.grad.sum().backward()
    t = np.tanh(z.numpy())
    np.testing.assert_allclose(z.grad.numpy(), -2 * t * (1 - t**2))


@pytest.mark.parametrize("device", OP_DEVICES, ids=str)
@pytest.mark.parametrize("op", ["exp", "log", "matmul", "logsumexp"])
def test_gradient_of_gradient_matches_finite_differences(op, device):
    """d/dx sum(W * grad_x f) checked by central differences of our own first gradient."""
    rng = np.random.default_rng(7)
    fns = {
        "exp": (lambda a: ndl.exp(a).sum(), [rng.uniform(-1, 1, (2, 3))]),
        "log": (lambda a: (ndl.log(a) * ndl.log(a)).sum(), [rng.uniform(0.5, 2, (3,))]),
        "matmul": (lambda a: ((a @ a) * (a @ a)).sum(), [rng.standard_normal((3, 3))]),
        "logsumexp": (lambda a: ndl.logsumexp(a, (1,)).sum(), [rng.standard_normal((2, 4))]),
    }
    f, arrays = fns[op]

    def first_grad(a):
        if not a.requires_grad:  # the finite-difference evaluations pass constants
            a = ndl.Tensor.make_const(a.realize_cached_data(), requires_grad=True)
        f(a).backward()
        return a.grad

    check_backward(first_grad, arrays, device, "compact", rtol=1e-4, atol=1e-6)


# ---- bad input: clear errors naming the op and the shapes ----
@pytest.mark.parametrize("device", OP_DEVICES, ids=str)
@pytest.mark.parametrize(
    "call, words",
    [
        (lambda a, b: a + b, ["EWiseAdd", "(2, 3)", "(3, 2)"]),
        (lambda a, b: a * b, ["EWiseMul", "(2, 3)", "(3, 2)"]),
        (lambda a, b: a @ a, ["MatMul", "(2, 3)"]),
        (lambda a, b: a.reshape((4, 2)), ["Reshape", "(2, 3)"]),
        (lambda a, b: a.broadcast_to((4, 4)), ["BroadcastTo", "(2, 3)"]),
        (lambda a, b: a.sum(axes=2), ["Summation", "axis 2"]),
        (lambda a, b: ndl.logsumexp(a, (5,)), ["LogSumExp", "axis 5"]),
        (lambda a, b: ndl.transpose(a, (0, 3)), ["Transpose", "(2, 3)"]),
        (lambda a, b: ndl.transpose(a.reshape((6,))), ["Transpose", "(6,)", "2 dimensions"]),
        (lambda a, b: ndl.dilate(a, (0,), -1), ["Dilate", "(2, 3)", "dilation must be >= 0"]),
        (lambda a, b: ndl.ops.undilate(a, (1,), -1), ["UnDilate", "(2, 3)", "dilation must be >= 0"]),
        (lambda a, b: ndl.ops.logsoftmax(a.reshape((6,))), ["LogSoftmax", "(6,)"]),
        (lambda a, b: ndl.stack([a, b], 0), ["Stack", "(2, 3)", "(3, 2)"]),
        (lambda a, b: ndl.conv(a.reshape((1, 2, 3, 1)), b.reshape((1, 1, 2, 3))), ["Conv", "channels"]),
    ],
)
def test_bad_input_names_op_and_shapes(call, words, device):
    a = ndl.Tensor(np.ones((2, 3)), device=device)
    b = ndl.Tensor(np.ones((3, 2)), device=device)
    with pytest.raises((ValueError, TypeError, IndexError)) as info:
        call(a, b)
    for word in words:
        assert word in str(info.value), f"{word!r} missing from: {info.value}"


@pytest.mark.parametrize("device", OP_DEVICES, ids=str)
def test_power_zero_has_a_zero_gradient_even_at_zero(device):
    x = ndl.Tensor(np.array([0.0, -2.0, 3.0], dtype=np.float32), device=device)
    (x**0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0, 0.0])


@pytest.mark.parametrize("device", OP_DEVICES, ids=str)
@pytest.mark.parametrize("scalar", [np.float64(1.5), np.array([1.5]), np.array([[1.5]]), np.int64(2)])
def test_numpy_scalars_act_as_python_numbers(scalar, device):
    """hw1 draws scalars with np.random.randn(1): a numpy scalar or a size-1 array is a plain number to the scalar
    ops, so float32 data stays float32 and keeps its shape."""
    x = ndl.Tensor(np.array([[1.0, 2.0]], dtype=np.float32), device=device)
    for op, ref in [(ndl.add_scalar, np.add), (ndl.mul_scalar, np.multiply), (ndl.divide_scalar, np.divide),
                    (ndl.power_scalar, np.power)]:
        out = op(x, scalar)
        assert out.dtype == "float32" and out.shape == (1, 2), (op.__name__, out.dtype, out.shape)
        np.testing.assert_allclose(out.numpy(), ref(x.numpy(), scalar.item()), rtol=1e-6)
    assert type(ndl.ops.AddScalar(scalar).scalar) in (int, float)


@pytest.mark.skipif(len(OP_DEVICES) < 2, reason="needs two devices (NEEDLE_BACKEND=nd)")
def test_mixed_devices_raise_clear_error():
    a = ndl.Tensor(np.ones((2, 2)), device=OP_DEVICES[0])
    b = ndl.Tensor(np.ones((2, 2)), device=OP_DEVICES[1])
    for call, name in [(lambda: a + b, "EWiseAdd"), (lambda: a @ b, "MatMul"), (lambda: ndl.stack([a, b], 0), "MakeTensorTuple")]:
        with pytest.raises(ValueError) as info:
            call()
        message = str(info.value)
        assert name in message and str(OP_DEVICES[0]) in message and str(OP_DEVICES[1]) in message


# ---- one return convention for `gradient`: a Tensor for an op of one input, a tuple (one entry each) for several ----

def _fused_and_conv_graphs():
    """Outputs of the ops that tests/ops_cases.py does not hold (the fused ones and conv), on float64 inputs."""
    rng = np.random.default_rng(0)

    def t(*shape):
        return ndl.Tensor(rng.standard_normal(shape), dtype="float64")

    lstm_h, lstm_c = ndl.ops.lstm_step(t(2, 8), t(2, 2))
    return {
        "sigmoid": ndl.ops.sigmoid(t(3)),
        "embedding": ndl.ops.embedding(t(4, 2), np.array([0, 3])),
        "softmax_cross_entropy": ndl.ops.softmax_cross_entropy(t(2, 3), np.array([0, 2])),
        "batch_norm": ndl.ops.batch_norm(t(4, 2), t(2), t(2), 1e-5)[0],
        "batch_norm_eval": ndl.ops.batch_norm_eval(t(4, 2), t(2), t(2), np.zeros(2), np.ones(2), 1e-5),
        "layer_norm": ndl.ops.layer_norm(t(2, 3), t(3), t(3), 1e-5),
        "lstm_step": lstm_h + lstm_c,
        "conv": ndl.conv(ndl.Tensor(rng.standard_normal((1, 4, 4, 2)), dtype="float64"), t(3, 3, 2, 1)),
    }


def _ones_like(node):
    if isinstance(node, ndl.TensorTuple):
        return ndl.make_tuple(*[ndl.Tensor(np.ones(x.shape), dtype="float64") for x in node])
    return ndl.Tensor(np.ones(node.shape), dtype="float64", requires_grad=False)


GRAPHS = [pytest.param(c.fn, c.arrays(0), id=c.name) for c in CASES] + [
    pytest.param(lambda name=name: _fused_and_conv_graphs()[name], [], id=name)
    for name in ("sigmoid", "embedding", "softmax_cross_entropy", "batch_norm", "batch_norm_eval", "layer_norm",
                 "lstm_step", "conv")] + [
    pytest.param(lambda a: ndl.make_tuple(a), [np.ones(2)], id="make_tuple_of_one"),
    pytest.param(lambda a, b: ndl.make_tuple(a, b), [np.ones(2), np.ones(3)], id="make_tuple_of_two")]


@pytest.mark.parametrize("fn, arrays", GRAPHS)
def test_gradient_returns_a_tensor_for_one_input_and_a_tuple_for_several(fn, arrays):
    out = fn(*[ndl.Tensor(a, dtype="float64") for a in arrays])
    for node in ndl.autograd.find_topo_sort([out]):
        if node.op is None:
            continue
        grad, name, n = node.op.gradient(_ones_like(node), node), type(node.op).__name__, len(node.inputs)
        if n == 1:
            assert isinstance(grad, ndl.autograd.Value), f"{name}: one input, but gradient returned {grad!r}"
        else:
            assert isinstance(grad, tuple) and len(grad) == n, f"{name}: {n} inputs, but gradient returned {grad!r}"
