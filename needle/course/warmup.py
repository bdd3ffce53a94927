"""Chapter 0's tiny library: logistic regression in numpy, whose `sigmoid` is the learner's first exercise."""
from __future__ import annotations

import numpy as np


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function 1 / (1 + exp(-x)), elementwise; exp only sees -|x|, so it never overflows."""
    z = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + z), z / (1 + z))


def predict_proba(X: np.ndarray, w: np.ndarray) -> np.ndarray:
    """P(y = 1 | x) for each row of X; looks `sigmoid` up at call time, so an installed exercise is used."""
    return sigmoid(X @ w)


def logistic_epoch(X: np.ndarray, y: np.ndarray, w: np.ndarray, lr: float = 0.5, batch: int = 100) -> float:
    """One epoch of minibatch gradient descent on the mean logistic loss, updating `w` in place; returns the mean loss."""
    losses = []
    for start in range(0, len(X), batch):
        xb, yb = X[start:start + batch], y[start:start + batch]
        p = predict_proba(xb, w)
        losses.append(-np.mean(yb * np.log(p + 1e-12) + (1 - yb) * np.log(1 - p + 1e-12)))
        w -= lr * xb.T @ (p - yb) / len(xb)
    return float(np.mean(losses))
