"""Optimizers (course hw2): SGD with the course's dampened momentum, and Adam with bias correction.

Both use coupled L2 weight decay (grad + weight_decay * param). Updates run on the raw arrays
(cached_data), so no graph is built, no Tensor wrappers are made, and gradients are never modified
in place: every step allocates new arrays."""
from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np

from needle import autograd
from needle.autograd import Tensor
from needle.backend_selection import array_api

__all__ = ["Optimizer", "SGD", "Adam"]


class Optimizer:
    def __init__(self, params: Iterable[Tensor]):
        self.params = list(params)

    def step(self) -> None:
        raise NotImplementedError

    def reset_grad(self) -> None:
        """Drops every parameter's gradient (p.grad = None), and the .grad of the intermediate nodes of the
        backward pass that computed them (autograd.release_gradients): the graph is freed now."""
        autograd.release_gradients(self.params)
        for p in self.params:
            p.grad = None

    def _grads(self, weight_decay: float, fused: str = "") -> Iterator[tuple[int, Tensor, object]]:
        """(index, param, grad + weight_decay * param as a raw array) for each parameter with a gradient;
        the gradient is None where the parameter's device has the `fused` kernel for the whole update."""
        for i, p in enumerate(self.params):
            if getattr(p, "grad", None) is None:
                continue
            if fused and hasattr(getattr(p.realize_cached_data(), "device", None), fused):
                yield i, p, None
                continue
            g = p.grad.realize_cached_data()
            if weight_decay:
                g = g + weight_decay * p.realize_cached_data()
            yield i, p, g

    def clip_grad_norm(self, max_norm: float = 0.25) -> float:
        """Scales all gradients (into new Tensors) so their joint L2 norm is at most max_norm;
        returns the norm before clipping."""
        grads = [p for p in self.params if getattr(p, "grad", None) is not None]
        total = sum(float(np.asarray((g * g).sum())) for g in (p.grad.realize_cached_data() for p in grads)) ** 0.5
        scale = max_norm / (total + 1e-6)
        if scale < 1:
            for p in grads:
                p.grad = p.grad.detach() * scale
        return total


class SGD(Optimizer):
    """u <- momentum u + (1 - momentum) g (u starts at 0); p <- p - lr u. momentum = 0 is plain SGD."""

    def __init__(self, params, lr: float = 0.01, momentum: float = 0.0, weight_decay: float = 0.0):
        super().__init__(params)
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.u: dict[int, object] = {}

    def step(self) -> None:
        mom = self.momentum
        for i, p, g in self._grads(self.weight_decay):
            if mom:
                g = (1 - mom) * g if i not in self.u else mom * self.u[i] + (1 - mom) * g
                self.u[i] = g
            p.cached_data = p.realize_cached_data() + (-self.lr) * g  # two passes (p - lr g would negate: three)


class Adam(Optimizer):
    """m, v: moving averages of g and g^2; p <- p - lr m_hat / (sqrt(v_hat) + eps) with the bias
    corrections m_hat = m / (1 - beta1^t), v_hat = v / (1 - beta2^t). Weight decay is coupled L2 (not AdamW)."""

    def __init__(self, params, lr: float = 0.01, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
                 weight_decay: float = 0.0):
        super().__init__(params)
        self.lr = lr
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weight_decay = weight_decay
        self.t = 0
        self.m: dict[int, object] = {}
        self.v: dict[int, object] = {}

    def step(self) -> None:
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        step_size = self.lr / (1 - b1**self.t)
        v_scale = (1 - b2**self.t) ** -0.5
        for i, p, g in self._grads(self.weight_decay, fused="adam_step"):
            if g is None:  # the device fuses the whole update (and the weight decay) into one kernel
                p.cached_data, self.m[i], self.v[i] = array_api.adam_step(
                    p.realize_cached_data(), p.grad.realize_cached_data(), self.m.get(i), self.v.get(i), lr=self.lr,
                    beta1=b1, beta2=b2, eps=self.eps, weight_decay=self.weight_decay, t=self.t)
                continue
            m = (1 - b1) * g if i not in self.m else b1 * self.m[i] + (1 - b1) * g
            v = (1 - b2) * (g * g) if i not in self.v else b2 * self.v[i] + (1 - b2) * (g * g)
            self.m[i], self.v[i] = m, v
            p.cached_data = p.realize_cached_data() - step_size * m / ((v**0.5) * v_scale + self.eps)
