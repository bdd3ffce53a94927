"""Chapter 1 (numpy and C++) and chapter 2 (needle autodiff) MNIST functions, against independent numpy."""
import numpy as np
import pytest

import needle as ndl
from needle.apps import simple_ml, simple_ml_numpy as sm
from needle.apps.simple_ml_ext import softmax_regression_epoch_cpp
from needle.data import mnist_split


def numeric_grad(f, x, eps=1e-6):
    """Central finite differences of a scalar function of a float64 array."""
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + eps
        up = f(x)
        x[i] = old - eps
        down = f(x)
        x[i] = old
        g[i] = (up - down) / (2 * eps)
    return g


def xent(Z, y):
    """Mean cross-entropy from probabilities (a different formula from softmax_loss's log-sum-exp)."""
    P = np.exp(Z) / np.exp(Z).sum(axis=1, keepdims=True)
    return -np.mean(np.log(P[np.arange(len(y)), y]))


def fd_nn_epoch(X, y, W1, W2, lr, batch):
    """The two-layer net's SGD epoch with finite-difference gradients (returns new float64 weights)."""
    E1, E2 = W1.copy(), W2.copy()
    for s in range(0, len(y), batch):
        Xb, yb = X[s : s + batch], y[s : s + batch]
        g1 = numeric_grad(lambda w: xent(np.maximum(Xb @ w, 0) @ E2, yb), E1)
        g2 = numeric_grad(lambda w: xent(np.maximum(Xb @ E1, 0) @ w, yb), E2)
        E1, E2 = E1 - lr * g1, E2 - lr * g2
    return E1, E2


@pytest.fixture(scope="module")
def mnist():
    return mnist_split()


def small_problem(seed=0, m=50, n=5, k=3):
    rng = np.random.RandomState(seed)
    return rng.randn(m, n), rng.randint(k, size=m).astype(np.uint8)


# ---------------------------------------------------------------- chapter 1


def test_add():
    assert sm.add(5, 6) == 11
    assert sm.add(3.2, 1.0) == pytest.approx(4.2)
    assert type(sm.add(4.0, 4)) is float
    np.testing.assert_array_equal(sm.add(np.array([1, 2]), np.array([3, 4])), [4, 6])


def test_softmax_loss_numpy(mnist):
    _, y = mnist[1]
    assert sm.softmax_loss(np.zeros((len(y), 10)), y) == pytest.approx(np.log(10))
    Z = np.random.RandomState(1).randn(len(y), 10)
    assert sm.softmax_loss(Z, y) == pytest.approx(xent(Z, y), rel=1e-12)


@pytest.mark.parametrize("batch", [50, 20, 7])
def test_softmax_regression_epoch_follows_the_numerical_gradient(batch):
    X, y = small_problem()
    theta = np.zeros((5, 3))
    expected = theta.copy()
    for s in range(0, len(y), batch):  # SGD over in-order minibatches, the last one short
        Xb, yb = X[s : s + batch], y[s : s + batch]
        expected -= 0.5 * numeric_grad(lambda th: xent(Xb @ th, yb), expected)
    sm.softmax_regression_epoch(X, y, theta, lr=0.5, batch=batch)
    np.testing.assert_allclose(theta, expected, rtol=1e-5, atol=1e-7)


def nn_epoch_numpy(X, y, W1, W2, lr, batch):
    sm.nn_epoch(X, y, W1, W2, lr=lr, batch=batch)  # in place
    return W1, W2


def nn_epoch_needle(X, y, W1, W2, lr, batch):
    T1, T2 = simple_ml.nn_epoch(X, y, ndl.Tensor(W1, dtype="float64"), ndl.Tensor(W2, dtype="float64"), lr=lr, batch=batch)
    assert isinstance(T1, ndl.Tensor) and T1.dtype == "float64"
    return T1.numpy(), T2.numpy()


@pytest.mark.parametrize("epoch", [nn_epoch_numpy, nn_epoch_needle], ids=["numpy", "needle"])
@pytest.mark.parametrize("batch", [50, 16])
def test_nn_epoch_follows_the_numerical_gradient(epoch, batch):
    X, y = small_problem(seed=2)
    rng = np.random.RandomState(3)
    W1, W2 = rng.randn(5, 10) / np.sqrt(10), rng.randn(10, 3) / np.sqrt(3)
    E1, E2 = fd_nn_epoch(X, y, W1, W2, lr=0.5, batch=batch)
    W1, W2 = epoch(X, y, W1, W2, lr=0.5, batch=batch)
    np.testing.assert_allclose(W1, E1, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(W2, E2, rtol=1e-5, atol=1e-7)


def test_loss_err():
    h = np.array([[1.0, 2.0, 0.0], [3.0, 0.0, 0.0], [0.0, 0.0, 5.0]])
    y = np.array([1, 1, 2])
    loss, err = sm.loss_err(h, y)
    assert loss == pytest.approx(xent(h, y)) and err == pytest.approx(1 / 3)


@pytest.mark.parametrize("m, batch", [(1000, 100), (1050, 100), (37, 64)])
def test_cpp_epoch_equals_numpy_epoch(mnist, m, batch):
    X, y = mnist[0][0][:m], mnist[0][1][:m]
    theta_np, theta_cpp = np.zeros((784, 10), np.float32), np.zeros((784, 10), np.float32)
    for _ in range(2):
        sm.softmax_regression_epoch(X, y, theta_np, lr=0.2, batch=batch)
        softmax_regression_epoch_cpp(X, y, theta_cpp, lr=0.2, batch=batch)
    assert np.abs(theta_np).max() > 0.01
    np.testing.assert_allclose(theta_cpp, theta_np, rtol=1e-4, atol=1e-5)


def test_cpp_epoch_rejects_bad_arguments():
    X, y, theta = np.zeros((4, 3), np.float32), np.zeros(4, np.uint8), np.zeros((3, 2), np.float32)
    for bad, match in [
        (dict(X=X.astype(np.float64)), "X must have dtype float32"),
        (dict(theta=np.zeros((2, 3), np.float32).T), "theta must be C-contiguous"),
        (dict(y=np.full(4, 2, np.uint8)), "label 2 out of range for 2 classes"),
        (dict(y=np.zeros(3, np.uint8)), r"shapes X \(4, 3\), y \(3,\)"),
        (dict(batch=0), "batch must be positive"),
    ]:
        args = dict(X=X, y=y, theta=theta, lr=0.1, batch=2) | bad
        with pytest.raises(ValueError, match=match):
            softmax_regression_epoch_cpp(**args)


def test_train_softmax_and_nn_learn_the_bundled_digits(mnist, capsys):
    (X_tr, y_tr), (X_te, y_te) = mnist
    theta, = sm.train_softmax(X_tr, y_tr, X_te, y_te, epochs=2, lr=0.2).params
    run_cpp = sm.train_softmax(X_tr, y_tr, X_te, y_te, epochs=2, lr=0.2, cpp=True)
    np.testing.assert_allclose(run_cpp.params[0], theta, rtol=1e-4, atol=1e-5)
    assert run_cpp.history[-1][3] < 0.12  # test error after 2 epochs
    nn = sm.train_nn(X_tr[:2000], y_tr[:2000], X_te, y_te, hidden_dim=64, epochs=2, lr=0.2)
    assert nn.params[0].dtype == np.float32 and nn.history[-1][3] < 0.2
    out = capsys.readouterr().out
    assert out.count("| Epoch | Train Loss | Train Err | Test Loss | Test Err |") == 3
    assert "|     1 |" in out


# ---------------------------------------------------------------- chapter 2 (needle Tensors)


def test_parse_mnist_is_shared():
    assert simple_ml.parse_mnist is sm.parse_mnist


@pytest.mark.parametrize("m, k", [(7, 3), (64, 10)])
def test_softmax_loss_tensor_value_and_gradient(m, k):
    rng = np.random.RandomState(m)
    Z_np, y = rng.randn(m, k), rng.randint(k, size=m)
    onehot = np.eye(k)[y]
    Z = ndl.Tensor(Z_np, dtype="float64")
    loss = simple_ml.softmax_loss(Z, ndl.Tensor(onehot, dtype="float64", requires_grad=False))
    assert loss.shape == () and float(loss.numpy()) == pytest.approx(xent(Z_np, y), rel=1e-10)
    loss.backward()
    np.testing.assert_allclose(Z.grad.numpy(), numeric_grad(lambda z: xent(z, y), Z_np.copy()), rtol=1e-5, atol=1e-8)


def test_nn_epoch_tensor_on_mnist_matches_numpy_and_loss_err(mnist):
    X, y = mnist[0][0][:1000], mnist[0][1][:1000]
    np.random.seed(0)
    W1 = np.random.randn(784, 100).astype(np.float32) / np.float32(10)
    W2 = np.random.randn(100, 10).astype(np.float32) / np.float32(np.sqrt(10))
    T1, T2 = simple_ml.nn_epoch(X, y, ndl.Tensor(W1), ndl.Tensor(W2), lr=0.2, batch=100)
    sm.nn_epoch(X, y, W1, W2, lr=0.2, batch=100)
    assert T1.dtype == "float32"
    np.testing.assert_allclose(T1.numpy(), W1, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(T2.numpy(), W2, rtol=1e-4, atol=1e-5)
    h = ndl.relu(ndl.Tensor(X) @ T1) @ T2
    loss, err = simple_ml.loss_err(h, y)
    expected = sm.loss_err(np.maximum(X @ W1, 0) @ W2, y)
    assert float(loss) == pytest.approx(expected[0], rel=1e-4) and err == pytest.approx(expected[1])


def test_chapter4_training_functions_are_importable_from_simple_ml():
    for name in ["epoch_general_cifar10", "train_cifar10", "evaluate_cifar10", "epoch_general_ptb", "train_ptb", "evaluate_ptb"]:
        assert callable(getattr(simple_ml, name))
