"""Op test cases and checkers: forward against numpy, backward against float64 central differences.

Shared by tests/ops/test_ops*.py. Inputs can be laid out compactly or as non-contiguous views (a
strided slice or a permutation of a larger buffer), on every device of the active backend
(NEEDLE_BACKEND=nd: cpu() and cpu_numpy(); np: the numpy CPU device).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

import needle as ndl
from needle.backend_selection import array_api

OP_DEVICES = [d for d in ndl.all_devices() if d.enabled()]
LAYOUTS = ("compact", "strided", "permuted")


def make_input(x: np.ndarray, device, layout: str = "compact", requires_grad: bool = True) -> ndl.Tensor:
    """A float64 Tensor equal to `x` whose data is compact, a step-2 slice, or a permuted view."""
    x = np.asarray(x, dtype=np.float64)
    if layout == "compact" or x.ndim == 0:
        return ndl.Tensor(x, device=device, dtype="float64", requires_grad=requires_grad)
    if layout == "strided":
        base = np.zeros(x.shape[:-1] + (2 * x.shape[-1],))
        base[..., ::2] = x
        data = ndl.Tensor(base, device=device, dtype="float64").realize_cached_data()
        view = data[(slice(None),) * (x.ndim - 1) + (slice(None, None, 2),)]
    elif layout == "permuted":
        perm = tuple(reversed(range(x.ndim)))
        base = np.ascontiguousarray(np.transpose(x, perm))
        data = ndl.Tensor(base, device=device, dtype="float64").realize_cached_data()
        view = array_api.transpose(data, perm)
    else:
        raise ValueError(f"unknown layout {layout!r}")
    assert view.shape == x.shape
    return ndl.Tensor.make_const(view, requires_grad=requires_grad)


def _scalar_loss(out: ndl.Tensor, weights: np.ndarray) -> float:
    return float(np.sum(out.numpy().astype(np.float64) * weights))


def numeric_grads(fn: Callable, arrays: Sequence[np.ndarray], device, weights: np.ndarray, eps: float = 1e-6):
    """Central differences of sum(fn(*inputs) * weights) w.r.t. each input, running our forward in float64."""
    grads = []
    for k, x in enumerate(arrays):
        g = np.zeros_like(x, dtype=np.float64)
        for idx in np.ndindex(*x.shape):
            vals = []
            for sign in (1, -1):
                shifted = [np.array(a, dtype=np.float64) for a in arrays]
                shifted[k][idx] += sign * eps
                inputs = [make_input(a, device, requires_grad=False) for a in shifted]
                vals.append(_scalar_loss(fn(*inputs), weights))
            g[idx] = (vals[0] - vals[1]) / (2 * eps)
        grads.append(g)
    return grads


def check_forward(fn: Callable, ref: Callable, arrays: Sequence[np.ndarray], device, layout: str, **tol) -> ndl.Tensor:
    """Runs `fn` on Tensors laid out as `layout` and compares with numpy's `ref` on the same arrays."""
    inputs = [make_input(a, device, layout) for a in arrays]
    out = fn(*inputs)
    expected = ref(*[np.asarray(a, dtype=np.float64) for a in arrays])
    np.testing.assert_allclose(out.numpy(), expected, rtol=tol.get("rtol", 1e-7), atol=tol.get("atol", 1e-9))
    assert out.shape == np.shape(expected)
    return out


def check_backward(fn: Callable, arrays: Sequence[np.ndarray], device, layout: str, seed: int = 0, **tol) -> None:
    """Backward of sum(fn(*x) * W) for random W against float64 central differences of our forward."""
    inputs = [make_input(a, device, layout) for a in arrays]
    out = fn(*inputs)
    weights = np.random.default_rng(seed).standard_normal(out.shape)
    (out * ndl.Tensor(weights, device=device, dtype="float64", requires_grad=False)).sum().backward()
    expected = numeric_grads(fn, arrays, device, weights)
    for i, (t, g) in enumerate(zip(inputs, expected)):
        assert t.grad is not None, f"input {i} got no gradient"
        assert t.grad.shape == t.shape, f"input {i}: gradient shape {t.grad.shape} != input shape {t.shape}"
        np.testing.assert_allclose(
            t.grad.numpy(), g, rtol=tol.get("rtol", 1e-5), atol=tol.get("atol", 1e-6), err_msg=f"input {i}"
        )


@dataclass
class OpCase:
    """One op under test: how to call it on Tensors, its numpy reference, and how to draw its inputs."""

    name: str
    fn: Callable
    ref: Callable
    shapes: Sequence[tuple]
    low: float = -2.0
    high: float = 2.0
    away_from_zero: bool = False
    tol: dict = field(default_factory=dict)

    def arrays(self, seed: int) -> list[np.ndarray]:
        rng = np.random.default_rng(seed)
        out = []
        for shape in self.shapes:
            x = rng.uniform(self.low, self.high, size=shape)
            if self.away_from_zero:
                x = np.where(np.abs(x) < 0.2, np.copysign(0.2, x), x)
            out.append(x)
        return out


def _logsumexp_ref(x, axes=None):
    m = np.max(x, axis=axes, keepdims=True)
    return np.squeeze(np.log(np.sum(np.exp(x - m), axis=axes, keepdims=True)) + m, axis=axes)


def _logsoftmax_ref(x):
    return x - _logsumexp_ref(x, 1)[:, None]


def _dilate_ref(x, axes, d):
    shape = tuple(s * (d + 1) if i in axes else s for i, s in enumerate(x.shape))
    out = np.zeros(shape)
    out[tuple(slice(None, None, d + 1) if i in axes else slice(None) for i in range(x.ndim))] = x
    return out


def _split_combine(parts):
    """A Tensor depending on every item of a split, each with its own weight."""
    total = parts[0]
    for i in range(1, len(parts)):
        total = total + parts[i] * float(i + 1)
    return total


def _swap(x, i, j):
    return np.swapaxes(x, i, j)


CASES = [
    OpCase("add", lambda a, b: a + b, np.add, [(3, 4), (3, 4)]),
    OpCase("add_scalar", lambda a: a + 1.5, lambda a: a + 1.5, [(2, 3, 2)]),
    OpCase("sub", lambda a, b: a - b, np.subtract, [(4, 3), (4, 3)]),
    OpCase("rsub", lambda a: 2.0 - a, lambda a: 2.0 - a, [(5,)]),
    OpCase("multiply", lambda a, b: a * b, np.multiply, [(2, 5), (2, 5)]),
    OpCase("mul_scalar", lambda a: 3 * a, lambda a: 3 * a, [(3, 3)]),
    OpCase("power", lambda a, b: a**b, np.power, [(2, 3), (2, 3)], low=0.5, high=2.0),
    OpCase("power_scalar_int", lambda a: a**3, lambda a: a**3, [(3, 2)]),
    OpCase("power_scalar_one", lambda a: a**1, lambda a: a, [(3, 2)]),
    OpCase("power_scalar_zero", lambda a: a**0, np.ones_like, [(3, 2)]),
    OpCase("power_scalar_frac", lambda a: a ** (-1.5), lambda a: a ** (-1.5), [(3, 2)], low=0.5, high=2.0),
    OpCase("divide", lambda a, b: a / b, np.divide, [(3, 4), (3, 4)], away_from_zero=True),
    OpCase("divide_scalar", lambda a: a / 4.0, lambda a: a / 4.0, [(2, 2, 2)]),
    OpCase("rtruediv", lambda a: 2.0 / a, lambda a: 2.0 / a, [(4,)], away_from_zero=True),
    OpCase("negate", lambda a: -a, np.negative, [(3, 4)]),
    OpCase("log", ndl.log, np.log, [(3, 4)], low=0.2, high=3.0),
    OpCase("exp", ndl.exp, np.exp, [(3, 4)]),
    OpCase("relu", ndl.relu, lambda a: np.maximum(a, 0), [(4, 5)], away_from_zero=True),
    OpCase("tanh", ndl.tanh, np.tanh, [(4, 3)]),
    OpCase("transpose_default", lambda a: ndl.transpose(a), lambda a: _swap(a, -1, -2), [(2, 3, 4)]),
    OpCase("transpose_pair", lambda a: ndl.transpose(a, (0, 2)), lambda a: _swap(a, 0, 2), [(2, 3, 4)]),
    OpCase("transpose_2d", lambda a: a.transpose(), lambda a: a.T, [(3, 5)]),
    OpCase("transpose_perm", lambda a: ndl.transpose(a, (1, 2, 0)), lambda a: np.transpose(a, (1, 2, 0)), [(2, 3, 4)]),
    OpCase("reshape", lambda a: ndl.reshape(a, (4, 6)), lambda a: a.reshape(4, 6), [(2, 3, 4)]),
    OpCase("reshape_flat", lambda a: a.reshape((-1,)), lambda a: a.reshape(-1), [(3, 4)]),
    OpCase("broadcast_to", lambda a: ndl.broadcast_to(a, (2, 3, 4)), lambda a: np.broadcast_to(a, (2, 3, 4)), [(3, 1)]),
    OpCase("broadcast_lead", lambda a: ndl.broadcast_to(a, (3, 2, 4)), lambda a: np.broadcast_to(a, (3, 2, 4)), [(4,)]),
    OpCase("summation_all", lambda a: ndl.summation(a), np.sum, [(3, 4)]),
    OpCase("summation_int", lambda a: ndl.summation(a, axes=1), lambda a: a.sum(1), [(2, 3, 4)]),
    OpCase("summation_tuple", lambda a: a.sum((0, 2)), lambda a: a.sum((0, 2)), [(2, 3, 4)]),
    OpCase("summation_neg", lambda a: a.sum(-1), lambda a: a.sum(-1), [(3, 5)]),
    OpCase("matmul", lambda a, b: a @ b, np.matmul, [(3, 4), (4, 5)]),
    OpCase("matmul_batched", ndl.matmul, np.matmul, [(2, 3, 4), (2, 4, 3)]),
    OpCase("matmul_bcast_left", ndl.matmul, np.matmul, [(3, 4), (2, 4, 3)]),
    OpCase("matmul_bcast_right", ndl.matmul, np.matmul, [(2, 3, 4), (4, 2)]),
    OpCase("matmul_bcast_both", ndl.matmul, np.matmul, [(2, 1, 3, 4), (3, 4, 2)]),
    OpCase("logsumexp_all", lambda a: ndl.logsumexp(a), _logsumexp_ref, [(3, 4)]),
    OpCase("logsumexp_axis", lambda a: ndl.logsumexp(a, axes=(1,)), lambda a: _logsumexp_ref(a, 1), [(3, 4, 2)]),
    OpCase("logsumexp_tuple", lambda a: ndl.ops.logsumexp(a, (0, 2)), lambda a: _logsumexp_ref(a, (0, 2)), [(3, 2, 4)]),
    OpCase("logsoftmax", ndl.ops.logsoftmax, _logsoftmax_ref, [(4, 5)]),
    OpCase("stack0", lambda a, b, c: ndl.stack([a, b, c], 0), lambda *x: np.stack(x, 0), [(2, 3)] * 3),
    OpCase("stack_last", lambda a, b: ndl.stack([a, b], axis=-1), lambda *x: np.stack(x, -1), [(3, 2)] * 2),
    OpCase("split1", lambda a: _split_combine(ndl.split(a, 1)), lambda a: _split_combine(list(np.moveaxis(a, 1, 0))), [(2, 3, 2)]),
    OpCase("flip", lambda a: ndl.flip(a, (0, 2)), lambda a: np.flip(a, (0, 2)), [(2, 3, 4)]),
    OpCase("dilate", lambda a: ndl.dilate(a, (0, 1), 1), lambda a: _dilate_ref(a, (0, 1), 1), [(2, 3, 2)]),
    OpCase("dilate2", lambda a: ndl.dilate(a, (2,), 2), lambda a: _dilate_ref(a, (2,), 2), [(2, 2, 3)]),
    OpCase("dilate0", lambda a: ndl.dilate(a, (1,), 0), lambda a: a, [(2, 3)]),
    OpCase("undilate0", lambda a: ndl.ops.undilate(a, (0, 1), 0), lambda a: a, [(3, 2)]),
    OpCase("undilate", lambda a: ndl.ops.undilate(a, (1,), 1), lambda a: a[:, ::2], [(2, 6, 2)]),
]
