"""nn.Conv (NCHW, same padding) against a direct numpy loop and PyTorch."""
import numpy as np
import pytest

import needle as ndl
from needle import nn
from nn_cases import check_against_torch, torch_or_skip


def _conv_numpy(X, W, b, stride):
    """Direct cross-correlation: X (N, C, H, W), W (K, K, C, O), zero padding K // 2."""
    k = W.shape[0]
    p = k // 2
    Xp = np.pad(X, ((0, 0), (0, 0), (p, p), (p, p)))
    n, _, h, w = Xp.shape
    ho, wo = (h - k) // stride + 1, (w - k) // stride + 1
    out = np.zeros((n, W.shape[3], ho, wo))
    for i in range(ho):
        for j in range(wo):
            patch = Xp[:, :, i * stride : i * stride + k, j * stride : j * stride + k]
            out[:, :, i, j] = np.einsum("nchw,hwco->no", patch, W)
    return out + b.reshape(1, -1, 1, 1)


def test_conv_init_shapes_and_golden_bound():
    np.random.seed(0)
    conv = nn.Conv(16, 8, 3)
    assert conv.weight.shape == (3, 3, 16, 8) and conv.bias.shape == (8,)
    np.random.seed(0)
    bound = np.sqrt(2) * np.sqrt(3 / (16 * 9))
    np.testing.assert_allclose(conv.weight.numpy(), np.random.rand(3, 3, 16, 8) * 2 * bound - bound, rtol=1e-5, atol=1e-6)
    assert conv.weight.numpy().sum() == pytest.approx(-2.5719218, abs=1e-4)  # the course's golden sum
    assert np.abs(conv.bias.numpy()).max() <= 1 / np.sqrt(16 * 9)
    np.random.seed(0)
    np.random.rand(3, 3, 16, 8)  # the weight is drawn first, then the bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    b = 1 / np.sqrt(16 * 9)
    np.testing.assert_allclose(conv.bias.numpy(), np.random.rand(8) * 2 * b - b, rtol=1e-5, atol=1e-7)


def test_conv_kernel_and_stride_are_one_int_or_a_pair_of_equal_ints():
    conv = nn.Conv(2, 3, (3, 3))
    assert conv.kernel_size == 3 and conv.stride == 1 and conv.padding == 1  # stride 1 by default
    assert nn.Conv(2, 3, [5, 5], stride=(2, 2)).stride == 2
    x = ndl.Tensor(np.ones((1, 2, 6, 6), dtype=np.float32))
    assert conv(x).shape == (1, 3, 6, 6)
    for bad in [(3, 5), (3,), (3, 3, 3)]:
        with pytest.raises(ValueError, match="kernel_size must be an int or a pair of equal ints"):
            nn.Conv(2, 3, bad)
    with pytest.raises(ValueError, match="stride must be an int or a pair of equal ints"):
        nn.Conv(2, 3, 3, stride=(1, 2))


@pytest.mark.parametrize("k, stride, hw", [(3, 1, 5), (3, 2, 6), (1, 1, 4), (5, 2, 7)])
def test_conv_forward_backward_vs_numpy(k, stride, hw):
    np.random.seed(k * 10 + stride)
    conv = nn.Conv(3, 4, k, stride=stride)
    X = np.random.randn(2, 3, hw, hw).astype(np.float32)
    x = ndl.Tensor(X)
    y = conv(x)
    W, b = conv.weight.numpy().astype(np.float64), conv.bias.numpy().astype(np.float64)
    expect = _conv_numpy(X.astype(np.float64), W, b, stride)
    np.testing.assert_allclose(y.numpy(), expect, rtol=1e-4, atol=1e-4)
    # gradient of sum(y * G) w.r.t. the bias is G summed over N, H, W
    G = np.random.randn(*expect.shape).astype(np.float32)
    (y * ndl.Tensor(G)).sum().backward()
    np.testing.assert_allclose(conv.bias.grad.numpy(), G.sum((0, 2, 3)), rtol=1e-4, atol=1e-4)
    # weight gradient by central differences on one entry (float64 reference)
    idx = (k // 2, 0, 1, 2)
    eps = 1e-3
    Wp, Wm = W.copy(), W.copy()
    Wp[idx] += eps
    Wm[idx] -= eps
    fd = ((_conv_numpy(X, Wp, b, stride) - _conv_numpy(X, Wm, b, stride)) * G).sum() / (2 * eps)
    np.testing.assert_allclose(conv.weight.grad.numpy()[idx], fd, rtol=1e-3, atol=1e-3)


def test_conv_matches_torch():
    torch = torch_or_skip()
    np.random.seed(7)
    conv = nn.Conv(3, 5, 3, stride=2)
    ref = torch.nn.Conv2d(3, 5, 3, stride=2, padding=1)
    ref.weight.data = torch.tensor(conv.weight.numpy().transpose(3, 2, 0, 1))
    ref.bias.data = torch.tensor(conv.bias.numpy())
    X = np.random.randn(2, 3, 8, 8).astype(np.float32)
    check_against_torch(conv, ref, X, torch)
    np.testing.assert_allclose(conv.weight.grad.numpy(), ref.weight.grad.numpy().transpose(2, 3, 1, 0), rtol=1e-4, atol=1e-3)


def test_conv_bad_input():
    conv = nn.Conv(3, 4, 3)
    with pytest.raises(ValueError, match="NCHW"):
        conv(ndl.Tensor(np.ones((1, 4, 5, 5))))
    with pytest.raises(ValueError, match="kernel_size"):
        nn.Conv(3, 4, (3, 5))
