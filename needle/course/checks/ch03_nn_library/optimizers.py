"""Chapter 03, Q3: SGD and Adam step by step against numpy, with the course's golden values, and no graph kept alive
between steps."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

import needle as ndl
from needle import nn

from ...cases import rng_for
from ...compare import expect, expect_close
from ...registry import exercise_check
from ...tensors import GRAPH_GROWS, course_tensor, graph_size
from .common import TOL


def _params_and_grads(rng: np.random.Generator, steps: int) -> tuple[list[np.ndarray], list[list[np.ndarray]]]:
    shapes = [(3, 2), (4,)]
    return [rng.standard_normal(s) for s in shapes], [[rng.standard_normal(s) for s in shapes] for _ in range(steps)]


def _run_optimizer(Opt: type, kwargs: dict, start: list, grads: list) -> list[np.ndarray]:
    """Parameters after one step per entry of grads. Each gradient is a graph node, as after a real backward, so a
    step that keeps a graph between steps shows up as a growing graph."""
    params = [nn.Parameter(p, dtype="float32") for p in start]
    opt = Opt(params, **kwargs)
    sizes = []
    for step in grads:
        for p, g in zip(params, step):
            p.grad = ndl.Tensor(g, dtype="float32") * 1.0
        before = [p.grad.numpy().copy() for p in params]
        opt.step()
        for p, g in zip(params, before):
            expect_close(p.grad, g, what=f"{Opt.__name__}.step() must not change the gradients in place")
        for p in params:
            p.grad = None
        sizes.append(graph_size(opt, params))
    expect(len(sizes) < 3 or sizes[-1] <= sizes[1], f"{Opt.__name__}({kwargs}).step(): " + GRAPH_GROWS.format(sizes=sizes))
    return [p.numpy() for p in params]


def _sgd64(start: list, grads: list, lr: float, momentum: float = 0.0, weight_decay: float = 0.0) -> list:
    params, u = [p.copy() for p in start], [np.zeros_like(p) for p in start]
    for step in grads:
        for i, g in enumerate(step):
            u[i] = momentum * u[i] + (1 - momentum) * (g + weight_decay * params[i])
            params[i] = params[i] - lr * u[i]
    return params


def _adam64(start: list, grads: list, lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
            weight_decay: float = 0.0) -> list:
    params = [p.copy() for p in start]
    m, v = [np.zeros_like(p) for p in start], [np.zeros_like(p) for p in start]
    for t, step in enumerate(grads, start=1):
        for i, g in enumerate(step):
            g = g + weight_decay * params[i]
            m[i] = beta1 * m[i] + (1 - beta1) * g
            v[i] = beta2 * v[i] + (1 - beta2) * g * g
            params[i] = params[i] - lr * (m[i] / (1 - beta1**t)) / (np.sqrt(v[i] / (1 - beta2**t)) + eps)
    return params


def learn_model_1d(Opt: type, epochs: int = 1, **kwargs: Any) -> float:
    """The course's learn_model_1d: an MLP on 1024 deterministic samples in 32 batches; the last batch loss."""
    np.random.seed(42)
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 16))
    X = course_tensor(1024, 64).numpy()
    np.random.seed(1024)
    y = np.random.randint(0, 16, size=(1024,)).astype(np.uint8)
    opt, loss_fn = Opt(model.parameters(), **kwargs), nn.SoftmaxLoss()
    for _ in range(epochs):
        for X0, y0 in zip(np.array_split(X, 32), np.array_split(y, 32)):
            opt.reset_grad()
            loss = loss_fn(model(ndl.Tensor(X0)), ndl.Tensor(y0))
            loss.backward()
            opt.step()
    return float(loss.numpy())


def _optimizer_check(name: str, numpy_rule: Callable, configs: list[dict], golden: list[tuple[dict, float]]) -> Callable:
    def check(Opt: type) -> int:
        rng = rng_for(f"nn_library.{name}")
        for kwargs in configs:
            start, grads = _params_and_grads(rng, 4)
            got, want = _run_optimizer(Opt, kwargs, start, grads), numpy_rule(start, grads, **kwargs)
            for i, (g, w) in enumerate(zip(got, want)):
                expect_close(g, w, what=f"{name}({kwargs}): parameter {i} after 4 steps, vs numpy (float64)",
                             inputs={"start": start[i], "gradients": [step[i] for step in grads]}, rtol=1e-4, atol=1e-5)
        for kwargs, loss in golden:
            expect_close(learn_model_1d(Opt, **kwargs), loss, what=f"course learn_model_1d with {name}({kwargs}): last loss",
                         **TOL)
        return len(configs) + len(golden)

    return check


exercise_check("nn_library.SGD", target="needle.optim:SGD",
               hint="per parameter with a grad: g = grad + weight_decay * p; u = momentum * u + (1 - momentum) * g; "
                    "p.data = p.data - lr * u (work on .data so no graph is built)")(
    _optimizer_check("SGD", _sgd64, [dict(lr=0.1), dict(lr=0.1, momentum=0.9), dict(lr=0.05, momentum=0.5, weight_decay=0.1)],
                     [(dict(lr=0.01, momentum=0.9, weight_decay=0.01), 3.306993)]))
exercise_check("nn_library.Adam", target="needle.optim:Adam",
               hint="t += 1 per step; g = grad + weight_decay * p; m, v moving averages of g and g**2; "
                    "p -= lr * (m / (1 - beta1**t)) / ((v / (1 - beta2**t)) ** 0.5 + eps)")(
    _optimizer_check("Adam", _adam64, [dict(lr=0.1), dict(lr=0.01, beta1=0.5, beta2=0.9, weight_decay=0.1)],
                     [(dict(lr=0.001), 3.703999), (dict(lr=0.001, weight_decay=0.01), 3.705134)]))
