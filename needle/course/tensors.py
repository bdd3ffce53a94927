"""Tensors the checks build and probe: raw backend arrays (strided or not), the course tests' deterministic inputs,
a module's input gradient against central differences, and the size of the graph a training step keeps alive."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

import needle as ndl

from .cases import numerical_gradients, rng_for
from .compare import expect, expect_close


def raw_array(x: np.ndarray, dtype: str, strided: bool = False) -> Any:
    """x as the backend's raw array (NDArray by default); optionally a non-contiguous view with the same values."""
    if not strided or x.ndim == 0:
        return ndl.Tensor(x, dtype=dtype).realize_cached_data()
    wide = np.zeros(x.shape[:-1] + (2 * x.shape[-1],))
    wide[..., ::2] = x
    raw = ndl.Tensor(wide, dtype=dtype).realize_cached_data()
    return raw[tuple([slice(None)] * (x.ndim - 1) + [slice(None, None, 2)])]


def course_tensor(*shape: int, entropy: int = 1, dtype: str = "float32") -> ndl.Tensor:
    """The course tests' deterministic input: integers 0..99 / 20, seeded by shape and entropy."""
    np.random.seed(np.prod(shape) * len(shape) * entropy)
    return ndl.Tensor(np.random.randint(0, 100, size=shape) / 20, dtype=dtype)


def course_labels(n: int, high: int) -> ndl.Tensor:
    """The course tests' deterministic integer labels in [0, high)."""
    np.random.seed(n)
    return ndl.Tensor(np.random.randint(0, high, size=(n,)))


def input_gradient_check(module: Any, x: np.ndarray, numpy_fn: Callable[[np.ndarray], np.ndarray], what: str) -> None:
    """d sum(module(x) * G) / dx in float64 against central differences of numpy_fn."""
    xt = ndl.Tensor(x, dtype="float64")
    y = module(xt)
    out_grad = rng_for(what).standard_normal(y.shape)
    y.backward(ndl.Tensor(out_grad, dtype="float64", device=y.device))  # the gradient of sum(y * out_grad)
    (want,) = numerical_gradients(numpy_fn, [x], out_grad)
    expect(getattr(xt, "grad", None) is not None, f"{what}: the input got no gradient (is the output built from needle ops?)")
    expect_close(xt.grad, want, what=f"{what}: gradient w.r.t. the input (float64, vs central differences)",
                 inputs={"x": x}, rtol=1e-5, atol=1e-6)


def graph_size(*roots: Any) -> int:
    """The number of Tensors reachable through `.inputs` from every Tensor held in `roots` (objects' attributes,
    dicts, lists and tuples are searched): what a training step keeps alive."""
    tensors, seen_objects, stack = {}, set(), list(roots)
    while stack:
        item = stack.pop()
        if isinstance(item, ndl.Tensor):
            if id(item) not in tensors:
                tensors[id(item)] = item
                stack.extend(item.inputs)
                stack.append(getattr(item, "grad", None))
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
        elif hasattr(item, "__dict__") and id(item) not in seen_objects and not isinstance(item, type):
            seen_objects.add(id(item))
            stack.extend(vars(item).values())
    return len(tensors)


GRAPH_GROWS = ("the graph kept alive grows with every step ({sizes} tensors after successive steps): an update "
               "built from needle ops on Tensors that require gradients (p - lr * p.grad, u = momentum * u + g) "
               "chains each step onto the last. Work on .data (or .detach()) so nothing is kept between steps; the "
               "course's hw2 tests count live tensors for this")
