"""One SGD step of the course's two-layer net (logits = ReLU(X W1) W2, softmax loss; hw0/hw1 `nn_epoch`) on
cpu(), against hand-written numpy backprop and PyTorch CPU autograd (when installed), in one run."""
from __future__ import annotations

import numpy as np

import needle as ndl

from .common import interleaved_best, print_table, torch_or_none

LR = 0.1
SIZES = [(100, 784, 100, 10), (100, 784, 500, 10), (1000, 784, 500, 10)]  # (batch, inputs, hidden, classes)


def _data(batch, n_in, hidden, classes):
    rng = np.random.default_rng(0)
    X = rng.random((batch, n_in), dtype=np.float32)
    y = rng.integers(0, classes, batch)
    W1 = (rng.standard_normal((n_in, hidden)) / np.sqrt(hidden)).astype(np.float32)
    W2 = (rng.standard_normal((hidden, classes)) / np.sqrt(classes)).astype(np.float32)
    return X, y, W1, W2


def needle_step(X, y, W1, W2):
    dev = ndl.cpu()
    Xt = ndl.Tensor(X, device=dev, requires_grad=False)
    Iy = ndl.init.one_hot(W2.shape[1], y, device=dev)
    w1, w2 = ndl.Tensor(W1, device=dev), ndl.Tensor(W2, device=dev)
    batch = X.shape[0]

    def step():
        Z = ndl.relu(Xt @ w1) @ w2
        loss = (ndl.logsumexp(Z, (1,)) - (Z * Iy).sum((1,))).sum() / batch
        loss.backward()
        w1.data = w1.data - w1.grad.data * LR
        w2.data = w2.data - w2.grad.data * LR

    return step


def numpy_step(X, y, W1, W2):
    """hw0's nn_epoch for one minibatch: the backprop formulas written out by hand, updates in place."""
    W1, W2 = W1.copy(), W2.copy()
    Iy = np.eye(W2.shape[1], dtype=np.float32)[y]
    batch = X.shape[0]

    def step():
        Z1 = np.maximum(X @ W1, 0)
        Z2 = Z1 @ W2
        E = np.exp(Z2 - Z2.max(axis=1, keepdims=True))  # stable softmax, as needle's loss
        G2 = E / E.sum(axis=1, keepdims=True) - Iy
        G1 = (Z1 > 0) * (G2 @ W2.T)
        W1[...] -= LR / batch * (X.T @ G1)
        W2[...] -= LR / batch * (Z1.T @ G2)

    return step


def torch_step(torch, X, y, W1, W2):
    Xt, yt = torch.tensor(X), torch.tensor(y)
    w1, w2 = torch.tensor(W1, requires_grad=True), torch.tensor(W2, requires_grad=True)

    def step():
        loss = torch.nn.functional.cross_entropy(torch.relu(Xt @ w1) @ w2, yt)
        w1.grad = w2.grad = None
        loss.backward()
        with torch.no_grad():
            w1.sub_(LR * w1.grad)
            w2.sub_(LR * w2.grad)

    return step


def main(argv=None) -> None:
    torch = torch_or_none()
    rows = []
    for sizes in SIZES:
        args = _data(*sizes)
        steps = [needle_step(*args), numpy_step(*args)] + ([torch_step(torch, *args)] if torch else [])
        t_needle, t_numpy, t_torch = (interleaved_best(steps) + [float("nan")])[:3]
        rows.append(("batch %d, %d-%d-%d" % sizes, t_needle * 1e3, t_numpy * 1e3, t_torch * 1e3,
                     t_needle / t_numpy, t_needle / t_torch))
    print_table("two-layer net SGD step on cpu() (ms; ratio = needle / other)",
                ["size", "needle ms", "numpy ms", "torch ms", "vs numpy", "vs torch"], rows)


if __name__ == "__main__":
    main()
