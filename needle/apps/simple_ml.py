"""Chapter 2 (course hw1 Q5-Q6): the softmax loss and a two-layer net trained with needle's autodiff.

As in the course's final `apps/simple_ml.py`, the chapter-4 training loops (CIFAR-10, PTB) and the
models are importable from here too.
"""
from typing import Tuple

import numpy as np

import needle as ndl

from ..data.datasets.mnist_dataset import parse_mnist
from .models import *  # noqa: F401,F403
from .training import *  # noqa: F401,F403
from .training import __all__ as _training_all

__all__ = ["parse_mnist", "softmax_loss", "nn_epoch", "loss_err", *_training_all]


def softmax_loss(Z: ndl.Tensor, y_one_hot: ndl.Tensor) -> ndl.Tensor:
    """Average softmax loss of logits Z (batch, k) against one-hot labels, as a scalar Tensor.

    mean over rows of log(sum_j exp z_j) - z_y, built from needle ops so it can be differentiated.
    """
    log_sum_exp = ndl.log(ndl.summation(ndl.exp(Z), axes=(1,)))
    true_logit = ndl.summation(Z * y_one_hot, axes=(1,))
    return ndl.summation(log_sum_exp - true_logit) / Z.shape[0]


def _one_hot(y: np.ndarray, k: int, like: ndl.Tensor) -> ndl.Tensor:
    """Labels y (m,) as a one-hot (m, k) Tensor on the device and dtype of `like`."""
    return ndl.init.one_hot(k, y, device=like.device, dtype=like.dtype)


def nn_epoch(
    X: np.ndarray, y: np.ndarray, W1: ndl.Tensor, W2: ndl.Tensor, lr: float = 0.1, batch: int = 100
) -> Tuple[ndl.Tensor, ndl.Tensor]:
    """One SGD epoch of logits = ReLU(X W1) W2 over minibatches in order; returns the new (W1, W2).

    X and y stay numpy; each minibatch becomes Tensors, the loss is differentiated by `.backward()`,
    and the weights are updated outside the graph and rebuilt as fresh Tensors.
    """
    k = W2.shape[1]
    for start in range(0, X.shape[0], batch):
        Xb = ndl.Tensor(X[start : start + batch], device=W1.device, dtype=W1.dtype, requires_grad=False)
        loss = softmax_loss(ndl.relu(Xb @ W1) @ W2, _one_hot(y[start : start + batch], k, W1))
        loss.backward()
        W1 = ndl.Tensor(W1.numpy() - lr * W1.grad.numpy(), device=W1.device, dtype=W1.dtype)
        W2 = ndl.Tensor(W2.numpy() - lr * W2.grad.numpy(), device=W2.device, dtype=W2.dtype)
    return W1, W2


def loss_err(h: ndl.Tensor, y: np.ndarray) -> Tuple[np.ndarray, float]:
    """(average softmax loss as numpy, error rate) of logits Tensor h against numpy labels y."""
    loss = softmax_loss(h, _one_hot(y, h.shape[-1], h)).numpy()
    return loss, float(np.mean(h.numpy().argmax(axis=1) != y))
