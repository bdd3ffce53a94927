"""Case generators shared by checks and library tests: seeded RNGs, random shapes, strided views, float64 gradients."""
from __future__ import annotations

import zlib
from typing import Callable, Sequence

import numpy as np


def rng_for(name: str) -> np.random.Generator:
    """A generator seeded from `name`, so every check draws the same cases on every run."""
    return np.random.default_rng(zlib.crc32(name.encode()))


def random_shape(rng: np.random.Generator, min_ndim: int = 1, max_ndim: int = 3, max_dim: int = 5) -> tuple[int, ...]:
    """A random shape with min_ndim..max_ndim axes of length 1..max_dim."""
    return tuple(int(n) for n in rng.integers(1, max_dim + 1, size=int(rng.integers(min_ndim, max_ndim + 1))))


def strided(x: np.ndarray) -> np.ndarray:
    """A non-contiguous view holding the same values as `x` (every other element of a twice-as-wide buffer)."""
    x = np.asarray(x)
    if x.ndim == 0:
        return x
    buf = np.zeros(x.shape[:-1] + (2 * x.shape[-1],), dtype=x.dtype)
    buf[..., ::2] = x
    return buf[..., ::2]


def numerical_gradients(f: Callable[..., np.ndarray], inputs: Sequence[np.ndarray], out_grad: np.ndarray,
                        eps: float = 1e-6) -> list[np.ndarray]:
    """Central differences of sum(f(*inputs) * out_grad) with respect to each input, in float64."""
    inputs = [np.array(x, dtype=np.float64) for x in inputs]
    grads = []
    for x in inputs:
        g = np.zeros_like(x)
        for i in np.ndindex(x.shape):
            old = x[i]
            x[i] = old + eps
            hi = np.sum(np.asarray(f(*inputs), dtype=np.float64) * out_grad)
            x[i] = old - eps
            lo = np.sum(np.asarray(f(*inputs), dtype=np.float64) * out_grad)
            x[i] = old
            g[i] = (hi - lo) / (2 * eps)
        grads.append(g)
    return grads


def softmax_loss64(Z: np.ndarray, y: np.ndarray) -> float:
    """Mean softmax cross-entropy of logits Z (m, k) against integer labels y, in float64 (max-shifted, stable)."""
    Z = np.asarray(Z, dtype=np.float64)
    shifted = Z - Z.max(axis=1, keepdims=True)
    return float(np.mean(np.log(np.exp(shifted).sum(axis=1)) - shifted[np.arange(len(y)), y]))
