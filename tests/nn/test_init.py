"""init: creation functions and initializers, with the course's formulas, defaults and numpy-RNG draw order."""
import math

import numpy as np
import pytest

import needle as ndl
from ops_cases import OP_DEVICES


@pytest.mark.parametrize("device", OP_DEVICES, ids=str)
def test_rand_randn_follow_numpy_global_rng(device):
    np.random.seed(3)
    expected_u = np.random.rand(2, 3).astype(np.float32) * 4 - 1
    expected_n = np.random.randn(3, 2).astype(np.float32) * 0.5 + 2
    np.random.seed(3)
    u = ndl.init.rand(2, 3, low=-1, high=3, device=device)
    n = ndl.init.randn(3, 2, mean=2, std=0.5, device=device)
    assert u.dtype == "float32" and u.requires_grad is False and u.device == device
    np.testing.assert_allclose(u.numpy(), expected_u, rtol=1e-6)
    np.testing.assert_allclose(n.numpy(), expected_n, rtol=1e-6)
    f64 = ndl.init.rand(4, dtype="float64", device=device, requires_grad=True)
    assert f64.dtype == "float64" and f64.requires_grad is True


@pytest.mark.parametrize("device", OP_DEVICES, ids=str)
def test_constant_ones_zeros_like(device):
    c = ndl.init.constant(2, 3, c=7.0, device=device)
    np.testing.assert_array_equal(c.numpy(), np.full((2, 3), 7.0))
    assert ndl.ones(2, device=device).numpy().tolist() == [1.0, 1.0]
    z = ndl.zeros_like(c)
    assert z.shape == (2, 3) and z.device == device and not z.numpy().any()
    o = ndl.ones_like(ndl.Tensor(np.zeros(4), device=device), requires_grad=True)
    assert o.dtype == "float64" and o.requires_grad


@pytest.mark.parametrize("device", OP_DEVICES, ids=str)
def test_randb_and_one_hot(device):
    np.random.seed(0)
    expected = np.random.rand(5, 4) <= 0.3
    np.random.seed(0)
    mask = ndl.init.randb(5, 4, p=0.3, device=device)
    np.testing.assert_array_equal(mask.numpy().astype(bool), expected)
    oh = ndl.init.one_hot(4, ndl.Tensor([3, 0, 1], device=device), device=device)
    np.testing.assert_array_equal(oh.numpy(), np.eye(4)[[3, 0, 1]])
    assert oh.dtype == "float32"
    with pytest.raises(ValueError, match="one_hot"):
        ndl.init.one_hot(3, np.array([3]), device=device)


def test_initializer_formulas_and_draw_order():
    np.random.seed(1)
    draws = np.random.rand(5, 8).astype(np.float32), np.random.randn(5, 8).astype(np.float32)
    np.random.seed(1)
    xu = ndl.init.xavier_uniform(5, 8, gain=1.5)
    xn = ndl.init.xavier_normal(5, 8, gain=1.5)
    a = 1.5 * math.sqrt(6 / 13)
    np.testing.assert_allclose(xu.numpy(), draws[0] * 2 * a - a, rtol=1e-5)
    np.testing.assert_allclose(xn.numpy(), draws[1] * 1.5 * math.sqrt(2 / 13), rtol=1e-5)
    np.random.seed(2)
    draws = np.random.rand(5, 8).astype(np.float32), np.random.randn(5, 8).astype(np.float32)
    np.random.seed(2)
    ku = ndl.init.kaiming_uniform(5, 8)
    kn = ndl.init.kaiming_normal(5, 8)
    b = math.sqrt(2) * math.sqrt(3 / 5)
    np.testing.assert_allclose(ku.numpy(), draws[0] * 2 * b - b, rtol=1e-5)
    np.testing.assert_allclose(kn.numpy(), draws[1] * math.sqrt(2) / math.sqrt(5), rtol=1e-5)
    with pytest.raises(ValueError, match="relu"):
        ndl.init.kaiming_uniform(3, 3, nonlinearity="tanh")


def test_kaiming_uniform_with_shape_course_value():
    """The course's hw4 check: seed 0, kaiming_uniform(16*9, 8*9, shape=(3,3,16,8)) sums to -2.5719218."""
    np.random.seed(0)
    w = ndl.init.kaiming_uniform(16 * 9, 8 * 9, shape=(3, 3, 16, 8))
    assert w.shape == (3, 3, 16, 8)
    np.testing.assert_allclose(w.numpy().sum(), -2.5719218, rtol=1e-4)
    np.random.seed(0)
    assert ndl.init.xavier_normal(4, 4, shape=(2, 2, 4)).shape == (2, 2, 4)
