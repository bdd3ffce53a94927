"""Chapter 1 (course hw0): softmax regression and a two-layer ReLU net on MNIST, in plain numpy.

Run `python -m needle.apps.simple_ml_numpy` to train both on the bundled MNIST split.
"""
from typing import List, NamedTuple, Tuple

import numpy as np

from ..data.datasets.mnist_dataset import parse_mnist

__all__ = [
    "add",
    "parse_mnist",
    "softmax_loss",
    "softmax_regression_epoch",
    "nn_epoch",
    "loss_err",
    "train_softmax",
    "train_nn",
    "Trained",
]


class Trained(NamedTuple):
    """What a training run returns: the learned parameters and one (train loss, train err, test loss, test err) per epoch."""

    params: Tuple[np.ndarray, ...]
    history: List[Tuple[float, float, float, float]]


def add(x, y):
    """Course hw0 Q1: x + y (numbers or arrays)."""
    return x + y


def _softmax(Z: np.ndarray) -> np.ndarray:
    """Row-wise softmax; subtracting the row max changes nothing but avoids overflow."""
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    return E / E.sum(axis=1, keepdims=True)


def softmax_loss(Z: np.ndarray, y: np.ndarray) -> float:
    """Average softmax (cross-entropy) loss of logits Z (batch, k) against integer labels y (batch,)."""
    return float(np.mean(np.log(np.exp(Z).sum(axis=1)) - Z[np.arange(len(y)), y]))


def _softmax_minus_onehot(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """normalize(exp(logits)) - I_y: the gradient of the summed softmax loss with respect to the logits."""
    G = _softmax(logits)
    G[np.arange(len(y)), y] -= 1
    return G


def _batches(m: int, batch: int):
    """Minibatch slices over m examples, in order (the last may be short)."""
    return (slice(i, min(i + batch, m)) for i in range(0, m, batch))


def softmax_regression_epoch(X: np.ndarray, y: np.ndarray, theta: np.ndarray, lr: float = 0.1, batch: int = 100) -> None:
    """One SGD epoch of softmax regression over minibatches in order; updates theta (n, k) in place.

    Per minibatch of size m: theta -= lr / m * Xb^T (normalize(exp(Xb theta)) - I_y).
    """
    for s in _batches(X.shape[0], batch):
        Xb = X[s]
        theta -= lr / Xb.shape[0] * (Xb.T @ _softmax_minus_onehot(Xb @ theta, y[s]))


def nn_epoch(
    X: np.ndarray, y: np.ndarray, W1: np.ndarray, W2: np.ndarray, lr: float = 0.1, batch: int = 100
) -> None:
    """One SGD epoch of the net logits = ReLU(X W1) W2 (no biases); updates W1, W2 in place.

    Backprop: Z1 = ReLU(X W1), G2 = normalize(exp(Z1 W2)) - I_y, G1 = 1{Z1 > 0} * (G2 W2^T);
    gradients (1/m) X^T G1 and (1/m) Z1^T G2.
    """
    for s in _batches(X.shape[0], batch):
        Xb = X[s]
        Z1 = np.maximum(Xb @ W1, 0)
        G2 = _softmax_minus_onehot(Z1 @ W2, y[s])
        G1 = (Z1 > 0) * (G2 @ W2.T)
        m = Xb.shape[0]
        W1 -= lr / m * (Xb.T @ G1)
        W2 -= lr / m * (Z1.T @ G2)


def loss_err(h: np.ndarray, y: np.ndarray) -> Tuple[float, float]:
    """(average softmax loss, error rate) of logits h against labels y."""
    return softmax_loss(h, y), float(np.mean(h.argmax(axis=1) != y))


def _train(epoch_fn, predict, params, data, epochs: int) -> Trained:
    """Run `epochs` epochs, printing the course's table of losses and error rates after each."""
    X_tr, y_tr, X_te, y_te = data
    history = []
    print("| Epoch | Train Loss | Train Err | Test Loss | Test Err |")
    for epoch in range(epochs):
        epoch_fn()
        row = (*loss_err(predict(X_tr), y_tr), *loss_err(predict(X_te), y_te))
        history.append(row)
        print("|  {:>4} |    {:.5f} |   {:.5f} |   {:.5f} |  {:.5f} |".format(epoch, *row))
    return Trained(params, history)


def train_softmax(X_tr, y_tr, X_te, y_te, epochs: int = 10, lr: float = 0.5, batch: int = 100, cpp: bool = False) -> Trained:
    """Softmax regression from theta = 0; `cpp=True` runs each epoch in the C++ extension."""
    theta = np.zeros((X_tr.shape[1], y_tr.max() + 1), dtype=np.float32)
    if cpp:
        from .simple_ml_ext import softmax_regression_epoch_cpp as epoch
    else:
        epoch = softmax_regression_epoch
    return _train(
        lambda: epoch(X_tr, y_tr, theta, lr=lr, batch=batch), lambda X: X @ theta, (theta,), (X_tr, y_tr, X_te, y_te), epochs
    )


def train_nn(X_tr, y_tr, X_te, y_te, hidden_dim: int = 500, epochs: int = 10, lr: float = 0.5, batch: int = 100) -> Trained:
    """Two-layer ReLU net; np.random.seed(0), W1 = randn(n, h)/sqrt(h), W2 = randn(h, k)/sqrt(k)."""
    n, k = X_tr.shape[1], y_tr.max() + 1
    np.random.seed(0)
    W1 = np.random.randn(n, hidden_dim).astype(np.float32) / np.float32(np.sqrt(hidden_dim))
    W2 = np.random.randn(hidden_dim, k).astype(np.float32) / np.float32(np.sqrt(k))
    return _train(
        lambda: nn_epoch(X_tr, y_tr, W1, W2, lr=lr, batch=batch),
        lambda X: np.maximum(X @ W1, 0) @ W2,
        (W1, W2),
        (X_tr, y_tr, X_te, y_te),
        epochs,
    )


if __name__ == "__main__":
    from ..data import mnist_split

    (X_tr, y_tr), (X_te, y_te) = mnist_split()
    print("Softmax regression, 10 epochs, lr 0.2 (numpy):")
    train_softmax(X_tr, y_tr, X_te, y_te, epochs=10, lr=0.2, batch=100)
    print("Softmax regression, 10 epochs, lr 0.2 (C++):")
    train_softmax(X_tr, y_tr, X_te, y_te, epochs=10, lr=0.2, batch=100, cpp=True)
    print("Two-layer net, hidden 400, 20 epochs, lr 0.2:")
    train_nn(X_tr, y_tr, X_te, y_te, hidden_dim=400, epochs=20, lr=0.2, batch=100)
