"""Weight initializers (Xavier/Glorot, Kaiming/He): fan_in x fan_out Tensors, or any `shape=` with the same bound."""
from __future__ import annotations

import math
from typing import Any, Optional

from ..autograd import Tensor
from .init_basic import rand, randn

_RELU_GAIN = math.sqrt(2.0)


def _draw_shape(fan_in: int, fan_out: int, shape: Optional[tuple]) -> tuple:
    return (fan_in, fan_out) if shape is None else tuple(shape)


def _check_relu(nonlinearity: str) -> None:
    if nonlinearity != "relu":
        raise ValueError(f"kaiming init: only nonlinearity='relu' is supported, got {nonlinearity!r}")


def xavier_uniform(fan_in: int, fan_out: int, gain: float = 1.0, **kwargs: Any) -> Tensor:
    """U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out))."""
    shape = _draw_shape(fan_in, fan_out, kwargs.pop("shape", None))
    a = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return rand(*shape, low=-a, high=a, **kwargs)


def xavier_normal(fan_in: int, fan_out: int, gain: float = 1.0, **kwargs: Any) -> Tensor:
    """N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    shape = _draw_shape(fan_in, fan_out, kwargs.pop("shape", None))
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    return randn(*shape, mean=0.0, std=std, **kwargs)


def kaiming_uniform(fan_in: int, fan_out: int, shape=None, nonlinearity: str = "relu", **kwargs: Any) -> Tensor:
    """U(-b, b) with b = sqrt(2) * sqrt(3 / fan_in); `shape` (e.g. a conv kernel) keeps the bound from fan_in."""
    _check_relu(nonlinearity)
    bound = _RELU_GAIN * math.sqrt(3.0 / fan_in)
    return rand(*_draw_shape(fan_in, fan_out, shape), low=-bound, high=bound, **kwargs)


def kaiming_normal(fan_in: int, fan_out: int, nonlinearity: str = "relu", **kwargs: Any) -> Tensor:
    """N(0, std^2) with std = sqrt(2) / sqrt(fan_in)."""
    _check_relu(nonlinearity)
    shape = _draw_shape(fan_in, fan_out, kwargs.pop("shape", None))
    return randn(*shape, mean=0.0, std=_RELU_GAIN / math.sqrt(fan_in), **kwargs)
