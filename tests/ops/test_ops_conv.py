"""Conv (NHWC, im2col): forward against a direct nested-loop convolution, gradients by float64 central
differences (all strides/paddings, including padding > K-1), non-contiguous inputs, second order."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import needle as ndl
from ops_cases import LAYOUTS, OP_DEVICES, check_backward, make_input


def conv_loops(x: np.ndarray, w: np.ndarray, stride: int, padding: int) -> np.ndarray:
    """The definition: out[n, i, j, o] = sum_{a, b, c} xpad[n, i*s + a, j*s + b, c] * w[a, b, c, o]."""
    x = np.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    n, h, wd, c = x.shape
    kh, kw, _, co = w.shape
    oh, ow = (h - kh) // stride + 1, (wd - kw) // stride + 1
    out = np.zeros((n, oh, ow, co))
    for b in range(n):
        for i in range(oh):
            for j in range(ow):
                for o in range(co):
                    total = 0.0
                    for a in range(kh):
                        for bb in range(kw):
                            for ch in range(c):
                                total += x[b, i * stride + a, j * stride + bb, ch] * w[a, bb, ch, o]
                    out[b, i, j, o] = total
    return out


# (N, H, W, C_in, C_out, K, stride, padding)
SHAPES = [
    (2, 5, 5, 3, 2, 3, 1, 1),
    (1, 6, 5, 2, 3, 3, 2, 1),
    (2, 7, 7, 1, 2, 3, 2, 0),
    (1, 6, 6, 2, 2, 3, 3, 0),
    (1, 5, 5, 2, 1, 2, 2, 2),
    (1, 4, 4, 1, 2, 3, 1, 3),  # padding > K - 1: some output gradients fall entirely in the padding
    (2, 4, 4, 3, 2, 1, 2, 0),
    (1, 8, 8, 3, 2, 7, 4, 3),  # ResNet9's first layer, scaled down
    (1, 7, 5, 2, 2, 2, 3, 1),  # kernel smaller than the stride: some input phases get no taps
    (1, 9, 6, 1, 2, 5, 2, 2),
    (1, 3, 4, 2, 2, 3, 3, 1),  # a phase whose output rows all fall in the padding, while its columns do not
    (2, 1, 1, 2, 2, 3, 1, 1),  # a 1 x 1 image (ResNet9's last blocks): only the centre tap ever touches it
    (1, 2, 3, 2, 2, 3, 2, 1),  # taps left out on both axes, more on one than the other
    (1, 1, 2, 1, 1, 2, 20, 5),  # the one window lies wholly in the padding: no tap touches the input
]
IDS = ["x".join(map(str, s)) for s in SHAPES]


def _arrays(shape, seed=0):
    n, h, w, ci, co, k, _, _ = shape
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, h, w, ci)), rng.standard_normal((k, k, ci, co))


@pytest.mark.parametrize("device", OP_DEVICES, ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=IDS)
def test_conv_forward_matches_loops(shape, device):
    x, w = _arrays(shape)
    s, p = shape[6], shape[7]
    out = ndl.conv(make_input(x, device), make_input(w, device), stride=s, padding=p)
    np.testing.assert_allclose(out.numpy(), conv_loops(x, w, s, p), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("device", OP_DEVICES, ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=IDS)
def test_conv_backward_matches_finite_differences(shape, device):
    x, w = _arrays(shape, seed=1)
    s, p = shape[6], shape[7]
    check_backward(lambda a, b: ndl.conv(a, b, stride=s, padding=p), [x, w], device, "compact")


@pytest.mark.parametrize("device", OP_DEVICES, ids=str)
@pytest.mark.parametrize("layout", LAYOUTS[1:])
def test_conv_non_contiguous_inputs(layout, device):
    x, w = _arrays((2, 5, 4, 3, 2, 3, 2, 1), seed=2)
    fn = lambda a, b: ndl.conv(a, b, stride=2, padding=1)  # noqa: E731
    out = fn(make_input(x, device, layout), make_input(w, device, layout))
    np.testing.assert_allclose(out.numpy(), conv_loops(x, w, 2, 1), rtol=1e-10, atol=1e-10)
    check_backward(fn, [x, w], device, layout)


@pytest.mark.parametrize("device", OP_DEVICES, ids=str)
def test_conv_class_default_padding_and_float32(device):
    x, w = _arrays((2, 6, 6, 3, 4, 3, 1, 0), seed=3)
    a, b = ndl.Tensor(x.astype(np.float32), device=device), ndl.Tensor(w.astype(np.float32), device=device)
    out = ndl.ops.Conv()(a, b)  # the class defaults to stride 1, padding 0; the helper conv() to padding 1
    assert out.shape == (2, 4, 4, 4) and out.dtype == "float32"
    np.testing.assert_allclose(out.numpy(), conv_loops(x, w, 1, 0), rtol=1e-4, atol=1e-4)
    assert ndl.conv(a, b).shape == (2, 6, 6, 4)


@pytest.mark.parametrize("device", OP_DEVICES, ids=str)
def test_conv_gradient_of_gradient(device):
    """d/dw of sum(V * dL/dx), L = sum(conv(x, w) * G), by central differences of our first gradient."""
    x, w = _arrays((1, 4, 4, 2, 2, 3, 2, 1), seed=4)
    g = np.random.default_rng(5).standard_normal((1, 2, 2, 2))

    def input_grad(b):
        a = make_input(x, device)  # dL/dx is linear in x: only its dependence on w is second order
        G = ndl.Tensor(g, device=device, dtype="float64", requires_grad=False)
        (ndl.conv(a, b, stride=2, padding=1) * G).sum().backward()
        return a.grad

    def weight_grad(a):
        b = make_input(w, device)  # dL/dw is linear in w: only its dependence on x is second order
        G = ndl.Tensor(g, device=device, dtype="float64", requires_grad=False)
        (ndl.conv(a, b, stride=2, padding=1) * G).sum().backward()
        return b.grad

    check_backward(input_grad, [w], device, "compact", rtol=1e-4)
    check_backward(weight_grad, [x], device, "compact", rtol=1e-4)


@pytest.mark.parametrize("device", OP_DEVICES, ids=str)
def test_conv_data_input_without_grad_gets_none(device):
    x = ndl.Tensor(np.ones((1, 4, 4, 2)), device=device, requires_grad=False)
    w = ndl.Tensor(np.ones((3, 3, 2, 1)), device=device)
    ndl.conv(x, w).sum().backward()
    assert w.grad.shape == (3, 3, 2, 1)
    assert x.grad is None


@settings(max_examples=15)
@given(h=st.integers(1, 7), w=st.integers(1, 7), k=st.integers(1, 4), s=st.integers(1, 3), p=st.integers(0, 3),
       c_in=st.integers(1, 2), c_out=st.integers(1, 2))
def test_conv_random_geometry(h, w, k, s, p, c_in, c_out):
    if h + 2 * p < k or w + 2 * p < k:
        return  # no output: covered by the error test in test_ops.py
    rng = np.random.default_rng(h * 1000 + w * 100 + k * 10 + s)
    x, wt = rng.standard_normal((1, h, w, c_in)), rng.standard_normal((k, k, c_in, c_out))
    fn = lambda a, b: ndl.conv(a, b, stride=s, padding=p)  # noqa: E731
    for device in OP_DEVICES:
        np.testing.assert_allclose(fn(make_input(x, device), make_input(wt, device)).numpy(), conv_loops(x, wt, s, p),
                                   rtol=1e-10, atol=1e-10)
        check_backward(fn, [x, wt], device, "compact")


def test_the_weight_gradient_reuses_the_forwards_im2col_of_that_input_only(monkeypatch):
    """Conv.saved_im2col: one im2col for forward and weight gradient; a node whose input was replaced builds its own."""
    from needle.ops import ops_conv

    built = []
    im2col = ops_conv._im2col
    monkeypatch.setattr(ops_conv, "_im2col", lambda x, *a: built.append(x) or im2col(x, *a))
    rng = np.random.default_rng(0)
    x = ndl.Tensor(rng.standard_normal((1, 5, 5, 2)), dtype="float64", requires_grad=False)
    w = ndl.Tensor(rng.standard_normal((3, 3, 2, 2)), dtype="float64")
    out = ndl.conv(x, w, stride=1, padding=1)
    ndl.summation(out).backward()
    assert len(built) == 1
    want = w.grad.numpy()
    x.cached_data = ndl.Tensor(x.numpy(), dtype="float64").realize_cached_data()  # same values, another array
    again = out.op.gradient(ndl.Tensor(np.ones(out.shape), dtype="float64"), out)[1]
    assert len(built) == 2
    np.testing.assert_allclose(again.numpy(), want)


def test_taps_that_only_ever_meet_padding_are_left_out_of_im2col():
    """A 3 x 3 kernel over a 1 x 1 image (padding 1) multiplies only its centre tap; over 2 x 2 at stride 2, rows
    and columns 1-2 of its taps; over 2 x 3, rows 1-2 only (its second window reaches the last column). The
    others get a zero gradient."""
    rng = np.random.default_rng(7)
    for (h, w), stride, taps in (((1, 1), 1, 1), ((2, 2), 2, 4), ((2, 3), 2, 6), ((4, 4), 1, 9)):
        x = ndl.Tensor(rng.standard_normal((2, h, w, 3)), dtype="float64", requires_grad=False)
        wt = ndl.Tensor(rng.standard_normal((3, 3, 3, 2)), dtype="float64")
        out = ndl.conv(x, wt, stride=stride, padding=1)
        assert out.op.saved_im2col[1].shape[1] == taps * 3
        np.testing.assert_allclose(out.numpy(), conv_loops(x.numpy(), wt.numpy(), stride, 1), rtol=1e-10, atol=1e-10)
        out.sum().backward()
        grad = wt.grad.numpy()
        assert (grad != 0).sum() == taps * 3 * 2


@pytest.mark.parametrize("device", OP_DEVICES, ids=str)
@pytest.mark.parametrize("kh, kw, stride, padding", [(2, 3, 1, 1), (3, 1, 2, 1), (1, 3, 2, 2)])
def test_conv_with_a_kernel_of_other_height_and_width(kh, kw, stride, padding, device):
    """nn.Conv's kernels are square, the op's need not be: each axis keeps its own taps (and trims its own)."""
    rng = np.random.default_rng(kh * 10 + kw)
    x, w = rng.standard_normal((2, 3, 4, 2)), rng.standard_normal((kh, kw, 2, 3))
    fn = lambda a, b: ndl.conv(a, b, stride=stride, padding=padding)  # noqa: E731
    np.testing.assert_allclose(fn(make_input(x, device), make_input(w, device)).numpy(), conv_loops(x, w, stride, padding),
                               rtol=1e-10, atol=1e-10)
    check_backward(fn, [x, w], device, "compact")


def test_the_weight_gradient_names_an_output_gradient_that_does_not_fit():
    from needle.ops.ops_conv import ConvBackwardWeight

    x = ndl.Tensor(np.ones((2, 5, 5, 3)), dtype="float64").realize_cached_data()
    op = ConvBackwardWeight(1, 1, (3, 3))
    for g_shape in [(3, 5, 5, 4), (2, 4, 5, 4), (2, 5, 6, 4)]:  # another batch, height, width
        g = ndl.Tensor(np.ones(g_shape), dtype="float64").realize_cached_data()
        with pytest.raises(ValueError) as info:
            op.compute(x, g)
        assert str(info.value) == (f"output gradient {g_shape} does not match the conv output (2, 5, 5) of input "
                                   "(2, 5, 5, 3)")


@pytest.mark.parametrize("x_shape, w_shape, stride, padding, message", [
    ((1, 5, 5, 2), (3, 3, 4, 1), 1, 0, "input channels 2 (shape (1, 5, 5, 2)) != weight C_in 4 ((3, 3, 4, 1))"),
    ((1, 5, 5, 2), (3, 3, 2, 1), 0, 0, "stride must be >= 1 and padding >= 0, got stride=0, padding=0"),
    ((1, 5, 5, 2), (3, 3, 2, 1), 1, -1, "stride must be >= 1 and padding >= 0, got stride=1, padding=-1"),
    ((1, 2, 6, 2), (4, 2, 2, 1), 1, 0, "kernel (4, 2) is larger than the padded input (2, 6) (padding 0)"),
    ((1, 6, 3, 2), (2, 4, 2, 1), 1, 0, "kernel (2, 4) is larger than the padded input (6, 3) (padding 0)"),
    ((1, 2, 6, 2), (5, 1, 2, 1), 1, 1, "kernel (5, 1) is larger than the padded input (2, 6) (padding 1)"),
    ((1, 6, 1, 2), (4, 4, 2, 1), 1, 1, "kernel (4, 4) is larger than the padded input (6, 1) (padding 1)"),
    ((1, 5, 5), (3, 3, 2, 1), 1, 0, "expects NHWC input and (K, K, C_in, C_out) weight, got (1, 5, 5) and (3, 3, 2, 1)"),
])
def test_bad_conv_arguments_are_named(x_shape, w_shape, stride, padding, message):
    x, w = ndl.Tensor(np.ones(x_shape)), ndl.Tensor(np.ones(w_shape))
    with pytest.raises(ValueError) as info:
        ndl.conv(x, w, stride=stride, padding=padding)
    assert message in str(info.value) and "Conv" in str(info.value)
