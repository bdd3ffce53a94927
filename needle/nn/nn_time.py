"""Sinusoidal embeddings of an integer step (a diffusion model's time t, a token's position): the numbers a network
needs to tell steps apart smoothly, without a learned table."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from needle.autograd import Tensor

from .nn_basic import Module

__all__ = ["SinusoidalEmbedding", "sinusoidal_embedding"]


def _check_dim(dim: int) -> None:
    """Half the embedding is sines, half cosines: dim must be even and at least 2."""
    if dim < 2 or dim % 2:
        raise ValueError(f"sinusoidal_embedding: dim must be an even number >= 2, got {dim}")


def sinusoidal_embedding(t: Any, dim: int, max_period: float = 10000.0) -> np.ndarray:
    """(len(t), dim) float64: [sin(t f_0), ..., sin(t f_{h-1}), cos(t f_0), ..., cos(t f_{h-1})] with h = dim // 2
    and frequencies f_k = max_period^(-k / h), from 1 down to nearly 1 / max_period (the Transformer's positional
    encoding, as DDPM uses it for time)."""
    _check_dim(dim)
    steps = np.asarray(t.numpy() if isinstance(t, Tensor) else t, dtype=np.float64)
    if steps.ndim != 1:
        raise ValueError(f"sinusoidal_embedding: t must be one step per sample, shape (N,), got shape {steps.shape}")
    half = dim // 2
    freqs = np.exp(-math.log(max_period) * np.arange(half) / half)
    angles = steps[:, None] * freqs[None, :]
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)


class SinusoidalEmbedding(Module):
    """t (N,) integers -> (N, dim) constant Tensor of sines and cosines (no parameters, no gradient: t is discrete)."""

    def __init__(self, dim: int, max_period: float = 10000.0, device=None, dtype: str = "float32"):
        super().__init__()
        _check_dim(dim)
        self.dim, self.max_period = dim, max_period
        self.device, self.dtype = device, dtype

    def forward(self, t: Any) -> Tensor:
        table = sinusoidal_embedding(t, self.dim, self.max_period)
        return Tensor(table, device=self.device, dtype=self.dtype, requires_grad=False)
