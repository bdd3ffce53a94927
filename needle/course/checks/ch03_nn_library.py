"""Chapter 03 (course hw2): initialisers, modules, LogSumExp, optimizers, data pipeline, MLP-ResNet.

Checks seed numpy's global RNG and compare the learner's object with numpy re-computations drawn in the course's
order, with float64 central differences for gradients, and with the course's golden values from its hw2 tests.
"""
from __future__ import annotations

import gzip
import math
import os
import struct
import tempfile
from typing import Any, Callable

import numpy as np

import needle as ndl
from needle import nn
from needle.data.datasets.mnist_dataset import read_idx

from ..cases import numerical_gradients, random_shape, rng_for, softmax_loss64
from ..compare import expect, expect_close
from ..install import reference
from ..registry import exercise_check, set_hints
from .ch02_autodiff import _raw

INIT = "needle.init.init_initializers"
NN = "needle.nn.nn_basic"
LOG = "needle.ops.ops_logarithmic"
DATA = "needle.data"
APP = "needle.apps.mlp_resnet"
TOL = dict(rtol=1e-5, atol=1e-5)


def course_tensor(*shape: int, entropy: int = 1, dtype: str = "float32") -> ndl.Tensor:
    """The course tests' deterministic input: integers 0..99 / 20, seeded by shape and entropy."""
    np.random.seed(np.prod(shape) * len(shape) * entropy)
    return ndl.Tensor(np.random.randint(0, 100, size=shape) / 20, dtype=dtype)


def course_labels(n: int, high: int) -> ndl.Tensor:
    """The course tests' deterministic integer labels in [0, high)."""
    np.random.seed(n)
    return ndl.Tensor(np.random.randint(0, high, size=(n,)))


def _tensor_out(value: Any, what: str) -> np.ndarray:
    expect(isinstance(value, ndl.Tensor), f"{what} must return a needle Tensor, got {type(value).__name__}")
    return value.numpy()


# --- Q1 initialisers --------------------------------------------------------------------------------------------

def _init_check(name: str, uniform: bool, bound: Callable[..., float], cases: list[tuple]) -> Callable:
    """A check: with the same seed, the learner's initialiser equals one numpy draw of shape (fan_in, fan_out)
    scaled by the formula's bound (U(-a, a) or N(0, std^2)); dtype and requires_grad are forwarded as kwargs."""

    def check(fn: Callable) -> int:
        for seed, (args, kwargs) in enumerate(cases):
            fan_in, fan_out = args[:2]
            np.random.seed(seed)
            draw = np.random.rand(fan_in, fan_out) if uniform else np.random.randn(fan_in, fan_out)
            b = bound(*args, **kwargs)
            want = (draw * 2 * b - b) if uniform else draw * b
            np.random.seed(seed)
            got = fn(*args, **kwargs)
            what = f"{name}{args}" + (f" with {kwargs}" if kwargs else "")
            expect_close(_tensor_out(got, what), want, what=f"{what} (seed {seed})", rtol=1e-5, atol=1e-6)
            expect(str(got.dtype) == "float32", f"{what} should be float32, got {got.dtype}")
        np.random.seed(0)
        got = fn(4, 3, dtype="float64", requires_grad=True)
        expect(str(got.dtype) == "float64" and got.requires_grad,
               f"{name}(4, 3, dtype='float64', requires_grad=True): pass **kwargs on to init.rand/randn "
               f"(got dtype {got.dtype}, requires_grad {got.requires_grad})")
        return len(cases) + 1

    return check


_FAN_CASES = [((5, 8), {}), ((3, 1), {}), ((100, 20), {})]
_INITS = [
    ("xavier_uniform", True, lambda i, o, gain=1.0: gain * math.sqrt(6 / (i + o)),
     _FAN_CASES + [((5, 8), {"gain": 1.5})], "rand(fan_in, fan_out, low=-a, high=a, **kwargs), a = gain*sqrt(6/(fan_in+fan_out))"),
    ("xavier_normal", False, lambda i, o, gain=1.0: gain * math.sqrt(2 / (i + o)),
     _FAN_CASES + [((5, 8), {"gain": 0.5})], "randn(fan_in, fan_out, std=gain*sqrt(2/(fan_in+fan_out)), **kwargs)"),
    ("kaiming_uniform", True, lambda i, o: math.sqrt(2) * math.sqrt(3 / i),
     _FAN_CASES, "rand(fan_in, fan_out, low=-b, high=b, **kwargs), b = sqrt(2)*sqrt(3/fan_in)"),
    ("kaiming_normal", False, lambda i, o: math.sqrt(2) / math.sqrt(i),
     _FAN_CASES, "randn(fan_in, fan_out, std=sqrt(2)/sqrt(fan_in), **kwargs)"),
]
for _name, _uniform, _bound, _cases, _hint in _INITS:
    exercise_check(f"nn_library.{_name}", target=f"{INIT}:{_name}", hint=_hint)(
        _init_check(_name, _uniform, _bound, _cases))


# --- Q2 modules ---------------------------------------------------------------------------------------------------

def _grad_check(module: Any, x: np.ndarray, numpy_fn: Callable[[np.ndarray], np.ndarray], what: str) -> None:
    """d sum(module(x) * G) / dx in float64 against central differences of numpy_fn."""
    xt = ndl.Tensor(x, dtype="float64")
    y = module(xt)
    out_grad = rng_for(what).standard_normal(y.shape)
    (y * ndl.Tensor(out_grad, dtype="float64", requires_grad=False)).sum().backward()
    want = numerical_gradients(numpy_fn, [x], out_grad)[0]
    expect(getattr(xt, "grad", None) is not None, f"{what}: the input got no gradient (is the output built from needle ops?)")
    expect_close(xt.grad, want, what=f"{what}: gradient w.r.t. the input (float64, vs central differences)",
                 inputs={"x": x}, rtol=1e-5, atol=1e-6)


@exercise_check("nn_library.Linear", target=f"{NN}:Linear",
                hint="weight = Parameter(init.kaiming_uniform(in, out)) first, then bias = Parameter(init.kaiming_uniform("
                     "out, 1).reshape((1, out))); forward: X @ weight + bias.broadcast_to(output shape)")
def check_linear(Linear: type) -> int:
    np.random.seed(1337)
    f = Linear(7, 4)
    expect_close(f.weight.numpy()[0], [-0.44064468, -0.63199449, -0.41082984, -0.075330488],
                 what="Linear(7, 4) weight row 0 after np.random.seed(1337) (course golden value)", **TOL)
    expect_close(f.bias.numpy(), [[0.077647, 0.814139, -0.770975, 1.120297]],
                 what="Linear(7, 4) bias after the weight, shape (1, 4) (course golden value)", **TOL)
    expect(isinstance(f.weight, nn.Parameter) and isinstance(f.bias, nn.Parameter),
           "weight and bias must be nn.Parameter (so that parameters() finds them)")
    cases = 2
    for shape in ((3, 10), (1, 10)):  # the course's 2-D contract: (N, in_features)
        np.random.seed(199)
        f = Linear(10, 5, dtype="float64")
        x = rng_for(f"Linear{shape}").standard_normal(shape)
        W, b = f.weight.numpy(), f.bias.numpy().reshape(5)
        expect_close(f(ndl.Tensor(x)), (x @ W + b).astype(np.float32), what=f"Linear(10, 5) on an input of shape {shape}",
                     inputs={"x": x}, **TOL)
        _grad_check(f, x, lambda a: a @ W + b, f"Linear(10, 5) on shape {shape}")
        cases += 2
    f = Linear(4, 3, bias=False)
    expect(getattr(f, "bias", None) is None and len(f.parameters()) == 1, "Linear(4, 3, bias=False) must have no bias")
    return cases + 1


@exercise_check("nn_library.ReLU", target=f"{NN}:ReLU", hint="forward: ops.relu(x)")
def check_relu(ReLU: type) -> int:
    rng = rng_for("nn_library.ReLU")
    for _ in range(3):
        x = rng.choice([-1.0, 1.0], size=random_shape(rng)) * rng.uniform(0.2, 2.0)
        expect_close(ReLU()(ndl.Tensor(x)), np.maximum(x, 0), what="ReLU()(x)", inputs={"x": x}, **TOL)
        _grad_check(ReLU(), x, lambda a: np.maximum(a, 0), "ReLU")
    return 6


@exercise_check("nn_library.Sequential", target=f"{NN}:Sequential",
                hint="keep the modules in self.modules; forward: x = module(x) for each module in order")
def check_sequential(Sequential: type) -> int:
    np.random.seed(42)
    f = Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 5))
    expect(isinstance(getattr(f, "modules", None), (tuple, list)) and len(f.modules) == 3,
           "Sequential must keep its modules in the attribute `modules` (the course's tests index model.modules[i])")
    expect(len(f.parameters()) == 4, f"Sequential(Linear, ReLU, Linear) has 4 parameters, parameters() found "
                                     f"{len(f.parameters())}")
    expect_close(f(course_tensor(3, 5)).numpy()[0], [3.296263, 0.057031, 2.97568, -4.618432, -0.902491],
                 what="Sequential(Linear(5, 8), ReLU(), Linear(8, 5)) after seed 42 (course golden value)", **TOL)
    x = rng_for("nn_library.Sequential").standard_normal((4, 5))
    expect_close(Sequential()(ndl.Tensor(x)), x, what="Sequential() with no modules is the identity", **TOL)
    return 4


def _logsumexp64(z: np.ndarray, axes: Any) -> np.ndarray:
    axes = tuple(range(z.ndim)) if axes is None else ((axes,) if isinstance(axes, int) else tuple(axes))
    m = np.max(z, axis=axes, keepdims=True)
    return np.squeeze(np.log(np.sum(np.exp(z - m), axis=axes, keepdims=True)) + m, axis=axes)


_LSE_CASES = [((3, 4), (1,)), ((3, 4), None), ((2, 3, 4), (0, 2)), ((5,), (0,)), ((2, 3, 2), 1)]


@exercise_check("nn_library.LogSumExp.compute", target=f"{LOG}:LogSumExp.compute",
                hint="m = max(Z, axes, keepdims=True); log(sum(exp(Z - broadcast(m)), axes)) + m with the axes dropped")
def check_logsumexp_compute(compute: Callable) -> int:
    rng = rng_for("nn_library.LogSumExp.compute")
    cases = 0
    for shape, axes in _LSE_CASES:
        for scale in (1.0, 1e10):  # the second must not overflow: subtract the max first
            z = rng.standard_normal(shape) * scale
            for strided in (False, True):
                got = ndl.ops.LogSumExp(axes).compute(_raw(z, "float64", strided))
                expect_close(got, _logsumexp64(z, axes), what=f"LogSumExp(axes={axes}).compute",
                             inputs={"Z" + (" (strided view)" if strided else ""): z}, rtol=1e-6, atol=1e-6)
                cases += 1
    return cases


@exercise_check("nn_library.LogSumExp.gradient", target=f"{LOG}:LogSumExp.gradient",
                hint="out_grad (reshaped with 1s at the reduced axes, broadcast) times exp(Z - node) = softmax of Z")
def check_logsumexp_gradient(gradient: Callable) -> int:
    rng = rng_for("nn_library.LogSumExp.gradient")
    ref_compute = reference(f"{LOG}:LogSumExp.compute")
    cases = 0
    for shape, axes in _LSE_CASES:
        for scale in (1.0, 1e5):
            z = rng.standard_normal(shape) * scale
            op = ndl.ops.LogSumExp(axes)
            inputs = [ndl.Tensor(z, dtype="float64")]
            node = ndl.Tensor.__new__(ndl.Tensor)
            node._init(op, inputs, cached_data=ref_compute(op, inputs[0].realize_cached_data()))
            out_grad = rng.standard_normal(node.shape)
            (got,) = op.gradient_as_tuple(ndl.Tensor(out_grad, dtype="float64"), node)
            if scale == 1.0:
                want = numerical_gradients(lambda a: _logsumexp64(a, axes), [z], out_grad)[0]
            else:  # d logsumexp / dz = softmax(z); differences are useless at this scale
                ax = tuple(range(z.ndim)) if axes is None else ((axes,) if isinstance(axes, int) else axes)
                soft = np.exp(z - np.expand_dims(_logsumexp64(z, axes), ax))
                want = soft * np.expand_dims(out_grad, ax)
            expect(isinstance(got, ndl.Tensor), f"LogSumExp.gradient must return Tensors, got {type(got).__name__}")
            expect_close(got, want, what=f"LogSumExp(axes={axes}).gradient (float64, inputs x{scale:g})",
                         inputs={"Z": z, "out_grad": out_grad}, rtol=1e-5, atol=1e-6)
            cases += 1
    return cases


def _logsoftmax64(z: np.ndarray) -> np.ndarray:
    return z - _logsumexp64(z, 1)[:, None]


_LSM_SHAPES = [(3, 4), (1, 5), (6, 2)]


@exercise_check("nn_library.LogSoftmax.compute", target=f"{LOG}:LogSoftmax.compute",
                hint="the forward of LogSoftmax: log of the softmax of each row")
def check_logsoftmax_compute(compute: Callable) -> int:
    rng = rng_for("nn_library.LogSoftmax.compute")
    cases = 0
    for shape in _LSM_SHAPES:
        for scale in (1.0, 1e10):  # the second must not overflow: subtract the row max first
            z = rng.standard_normal(shape) * scale
            for strided in (False, True):
                got = ndl.ops.LogSoftmax().compute(_raw(z, "float64", strided))
                expect_close(got, _logsoftmax64(z), what="LogSoftmax.compute",
                             inputs={"Z" + (" (strided view)" if strided else ""): z}, rtol=1e-6, atol=1e-6)
                cases += 1
    return cases


@exercise_check("nn_library.LogSoftmax.gradient", target=f"{LOG}:LogSoftmax.gradient",
                hint="the partial adjoint of LogSoftmax")
def check_logsoftmax_gradient(gradient: Callable) -> int:
    rng = rng_for("nn_library.LogSoftmax.gradient")
    ref_compute = reference(f"{LOG}:LogSoftmax.compute")
    cases = 0
    for shape in _LSM_SHAPES:
        z = rng.standard_normal(shape)
        op = ndl.ops.LogSoftmax()
        inputs = [ndl.Tensor(z, dtype="float64")]
        node = ndl.Tensor.__new__(ndl.Tensor)
        node._init(op, inputs, cached_data=ref_compute(op, inputs[0].realize_cached_data()))
        out_grad = rng.standard_normal(node.shape)
        (got,) = op.gradient_as_tuple(ndl.Tensor(out_grad, dtype="float64"), node)
        want = numerical_gradients(_logsoftmax64, [z], out_grad)[0]
        expect(isinstance(got, ndl.Tensor), f"LogSoftmax.gradient must return Tensors, got {type(got).__name__}")
        expect(not got.is_leaf(), "LogSoftmax.gradient is a new leaf Tensor (computed outside the graph): build it "
                                  "from needle ops on out_grad and node so it can be differentiated again")
        expect_close(got, want, what="LogSoftmax.gradient (float64, vs central differences)",
                     inputs={"Z": z, "out_grad": out_grad}, rtol=1e-5, atol=1e-6)
        cases += 1
    return cases


@exercise_check("nn_library.SoftmaxLoss", target=f"{NN}:SoftmaxLoss",
                hint="mean over the batch of logsumexp(logits, axes=(1,)) - sum(logits * init.one_hot(k, y), axes=(1,))")
def check_softmax_loss(SoftmaxLoss: type) -> int:
    x, y = course_tensor(5, 10), course_labels(5, 10)
    expect_close(_tensor_out(SoftmaxLoss()(x, y), "SoftmaxLoss"), 4.041218, what="SoftmaxLoss (course golden value)", **TOL)
    rng = rng_for("nn_library.SoftmaxLoss")
    for n, k, scale in ((4, 3, 1.0), (6, 5, 1.0), (3, 4, 1e4)):
        z, labels = rng.standard_normal((n, k)) * scale, rng.integers(0, k, size=n)
        zt = ndl.Tensor(z, dtype="float64")
        loss = SoftmaxLoss()(zt, ndl.Tensor(labels))
        expect_close(loss, softmax_loss64(z, labels), what=f"SoftmaxLoss on logits x{scale:g}", inputs={"logits": z, "y": labels}, rtol=1e-6)
        loss.backward()
        soft = np.exp(z - _logsumexp64(z, 1)[:, None])
        expect_close(zt.grad, (soft - np.eye(k)[labels]) / n, what="gradient of SoftmaxLoss w.r.t. the logits",
                     inputs={"logits": z, "y": labels}, rtol=1e-5, atol=1e-7)
    return 4


def _norm64(x: np.ndarray, axis: int, eps: float = 1e-5) -> np.ndarray:
    return (x - x.mean(axis, keepdims=True)) / np.sqrt(x.var(axis, keepdims=True) + eps)


@exercise_check("nn_library.LayerNorm1d", target=f"{NN}:LayerNorm1d",
                hint="per row: (x - mean) / sqrt(biased var + eps), then weight * that + bias (broadcast explicitly)")
def check_layernorm(LayerNorm1d: type) -> int:
    rng = rng_for("nn_library.LayerNorm1d")
    cases = 0
    for rows, dim in ((3, 4), (5, 7), (1, 3)):
        x = rng.standard_normal((rows, dim)) * 3 + 1
        ln = LayerNorm1d(dim, dtype="float64")
        expect(ln.weight.shape == (dim,) and ln.bias.shape == (dim,), f"LayerNorm1d({dim}) weight and bias must have "
                                                                      f"shape ({dim},), got {ln.weight.shape}, {ln.bias.shape}")
        w, b = rng.standard_normal(dim), rng.standard_normal(dim)
        ln.weight.data, ln.bias.data = ndl.Tensor(w, dtype="float64"), ndl.Tensor(b, dtype="float64")
        expect_close(ln(ndl.Tensor(x, dtype="float64")), w * _norm64(x, 1) + b, what=f"LayerNorm1d({dim})",
                     inputs={"x": x, "weight": w, "bias": b}, rtol=1e-6, atol=1e-6)
        _grad_check(ln, x, lambda a: w * _norm64(a, 1) + b, f"LayerNorm1d({dim})")
        cases += 2
    return cases


@exercise_check("nn_library.Flatten", target=f"{NN}:Flatten", hint="X.reshape((batch, product of the other axes))")
def check_flatten(Flatten: type) -> int:
    rng = rng_for("nn_library.Flatten")
    for shape in ((2, 3, 4), (3, 1, 2, 2), (4, 5)):
        x = rng.standard_normal(shape)
        expect_close(Flatten()(ndl.Tensor(x)), x.reshape(shape[0], -1), what=f"Flatten() of shape {shape}", **TOL)
        _grad_check(Flatten(), x, lambda a: a.reshape(a.shape[0], -1), f"Flatten() of shape {shape}")
    return 6


@exercise_check("nn_library.BatchNorm1d", target=f"{NN}:BatchNorm1d",
                hint="training: batch mean and biased variance over axis 0, running = (1-momentum)*running + "
                     "momentum*observed (no graph: use .data/.detach()); eval: use the running statistics")
def check_batchnorm(BatchNorm1d: type) -> int:
    bn = BatchNorm1d(3)
    for name, value in (("weight", 1), ("bias", 0), ("running_mean", 0), ("running_var", 1)):
        got = getattr(bn, name, None)
        expect(isinstance(got, ndl.Tensor) and got.shape == (3,) and np.all(got.numpy() == value),
               f"BatchNorm1d(3).{name} must be a Tensor of shape (3,) filled with {value}")
    for i in range(10):
        bn(course_tensor(4, 3, entropy=i))
    expect_close(bn.running_mean, [2.020656, 1.69489, 1.498846], what="running_mean after 10 batches (course golden)", **TOL)
    expect_close(bn.running_var, [1.412775, 1.386191, 1.096604],
                 what="running_var after 10 batches (course golden: the biased batch variance)", **TOL)
    rng = rng_for("nn_library.BatchNorm1d")
    x, w, b = rng.standard_normal((6, 4)) * 2 + 1, rng.standard_normal(4), rng.standard_normal(4)
    bn = BatchNorm1d(4, dtype="float64")
    bn.weight.data, bn.bias.data = ndl.Tensor(w, dtype="float64"), ndl.Tensor(b, dtype="float64")
    expect_close(bn(ndl.Tensor(x, dtype="float64")), w * _norm64(x, 0) + b, what="BatchNorm1d(4) in training mode",
                 inputs={"x": x}, rtol=1e-6, atol=1e-6)
    _grad_check(bn, x, lambda a: w * _norm64(a, 0) + b, "BatchNorm1d(4) in training mode")
    mean, var = bn.running_mean.numpy(), bn.running_var.numpy()
    bn.eval()
    x2 = rng.standard_normal((3, 4))
    expect_close(bn(ndl.Tensor(x2, dtype="float64")), w * (x2 - mean) / np.sqrt(var + 1e-5) + b,
                 what="BatchNorm1d(4) in eval mode (normalise with the running statistics)", inputs={"x": x2}, rtol=1e-6)
    expect_close(bn.running_mean, mean, what="running_mean must not change in eval mode")
    return 6


@exercise_check("nn_library.Dropout", target=f"{NN}:Dropout",
                hint="training: mask = init.randb(*x.shape, p=1 - self.p); x * mask / (1 - self.p); eval: x")
def check_dropout(Dropout: type) -> int:
    rng = rng_for("nn_library.Dropout")
    cases = 0
    for seed, (shape, p) in enumerate((((5, 4), 0.5), ((3, 7), 0.2), ((2, 3, 4), 0.9))):
        x = rng.standard_normal(shape) + 3
        np.random.seed(seed)
        mask = np.random.rand(*shape) <= 1 - p
        np.random.seed(seed)
        expect_close(Dropout(p)(ndl.Tensor(x)), x * mask / (1 - p),
                     what=f"Dropout({p}) in training mode (mask = np.random.rand(*shape) <= 1 - p, seed {seed})",
                     inputs={"x": x}, **TOL)
        d = Dropout(p)
        d.eval()
        expect_close(d(ndl.Tensor(x)), x, what=f"Dropout({p}) in eval mode must be the identity", **TOL)
        cases += 2
    return cases


@exercise_check("nn_library.Residual", target=f"{NN}:Residual", hint="self.fn(x) + x")
def check_residual(Residual: type) -> int:
    np.random.seed(42)
    f = Residual(nn.Sequential(nn.Linear(5, 5), nn.ReLU(), nn.Linear(5, 5)))
    x = course_tensor(5, 5)
    expect_close(f(x).numpy()[0], [0.4660964, 3.8619597, -3.637068, 3.7489638, 2.4931884],
                 what="Residual(Sequential(Linear, ReLU, Linear)) after seed 42 (course golden value)", **TOL)
    expect(len(f.parameters()) == 4, "Residual must keep fn as an attribute so that parameters() finds its 4 parameters")
    x = rng_for("nn_library.Residual").standard_normal((3, 4))
    _grad_check(Residual(lambda t: t * t), x, lambda a: a * a + a, "Residual(lambda t: t * t)")
    return 3


# --- Q3 optimizers ------------------------------------------------------------------------------------------------

def _params_and_grads(rng: np.random.Generator, steps: int) -> tuple[list[np.ndarray], list[list[np.ndarray]]]:
    shapes = [(3, 2), (4,)]
    return [rng.standard_normal(s) for s in shapes], [[rng.standard_normal(s) for s in shapes] for _ in range(steps)]


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


# --- Q4 data ------------------------------------------------------------------------------------------------------

def _images(name: str) -> list[np.ndarray]:
    rng = rng_for(name)
    return [rng.standard_normal(shape) for shape in ((4, 5, 1), (6, 6, 3), (3, 7, 2))]


@exercise_check("nn_library.RandomFlipHorizontal", target=f"{DATA}.data_transforms:RandomFlipHorizontal",
                hint="flip_img = np.random.rand() < self.p (one draw); flip the W axis: img[:, ::-1, :]")
def check_flip(Flip: type) -> int:
    cases = 0
    for p in (0.5, 0.2, 1.0):
        for seed, img in enumerate(_images("nn_library.RandomFlipHorizontal")):
            np.random.seed(seed)
            want = img[:, ::-1, :] if np.random.rand() < p else img
            np.random.seed(seed)
            expect_close(Flip(p)(img), want, what=f"RandomFlipHorizontal({p}) with seed {seed}", inputs={"img": img})
            cases += 1
    return cases


def _crop64(img: np.ndarray, padding: int) -> np.ndarray:
    """The zero-padded window shifted by one randint(-padding, padding + 1, size=2) draw, without np.pad."""
    sx, sy = np.random.randint(low=-padding, high=padding + 1, size=2)
    h, w = img.shape[:2]
    out = np.zeros_like(img)
    rows, cols = slice(max(-sx, 0), h - max(sx, 0)), slice(max(-sy, 0), w - max(sy, 0))
    out[rows, cols] = img[max(sx, 0):h + min(sx, 0), max(sy, 0):w + min(sy, 0)]
    return out


@exercise_check("nn_library.RandomCrop", target=f"{DATA}.data_transforms:RandomCrop",
                hint="shift_x, shift_y = np.random.randint(-p, p + 1, size=2); zero-pad H and W by p; take the H x W "
                     "window starting at row p + shift_x, column p + shift_y")
def check_crop(Crop: type) -> int:
    cases = 0
    for padding in (1, 3):
        for seed, img in enumerate(_images("nn_library.RandomCrop")):
            for s in range(3):
                np.random.seed(10 * seed + s)
                want = _crop64(img, padding)
                np.random.seed(10 * seed + s)
                expect_close(Crop(padding)(img), want, what=f"RandomCrop({padding}) with seed {10 * seed + s}",
                             inputs={"img": img})
                cases += 1
    return cases


def _mnist_files() -> tuple[str, str]:
    folder = ndl.data.data_dir() / "mnist"
    return str(folder / "t10k-images-idx3-ubyte.gz"), str(folder / "t10k-labels-idx1-ubyte.gz")


@exercise_check("nn_library.MNISTDataset", target=f"{DATA}.datasets.mnist_dataset:MNISTDataset",
                hint="__init__: parse_mnist the two files; __getitem__: (images[index], labels[index]), each image "
                     "reshaped to 28x28x1 for apply_transforms and back to 784; __len__: the number of labels")
def check_mnist_dataset(MNISTDataset: type) -> int:
    ds = MNISTDataset(*_mnist_files())
    expect(len(ds) == 10000, f"len(MNISTDataset(t10k)) should be 10000, got {len(ds)}")
    idx = [1, 42, 1000, 2000, 3000, 4000, 5000, 5005]
    expect_close([np.linalg.norm(ds[i][0]) for i in idx],
                 [9.857545, 8.980832, 8.57207, 6.891522, 8.192135, 9.400087, 8.645003, 7.405202],
                 what="norms of t10k images 1, 42, 1000, ... (course golden values: pixels / 255)", **TOL)
    expect_close([ds[i][1] for i in idx], [2, 4, 9, 6, 6, 9, 3, 1], what="t10k labels (course golden values)")
    X, y = ds[np.array([3, 1, 4])]
    expect(np.shape(X) == (3, 784) and np.shape(y) == (3,), f"ds[index array of 3] should give images (3, 784) and "
                                                            f"labels (3,), got {np.shape(X)}, {np.shape(y)}")
    flipped = MNISTDataset(*_mnist_files(), transforms=[ndl.data.RandomFlipHorizontal(1.0)])
    got = np.asarray(flipped[7][0]).reshape(28, 28)
    expect_close(got, np.asarray(ds[7][0]).reshape(28, 28)[:, ::-1],
                 what="MNISTDataset with RandomFlipHorizontal(1.0): transforms see 28x28x1 images")
    return 5


@exercise_check("nn_library.DataLoader", target=f"{DATA}.data_basic:DataLoader",
                hint="__iter__: if shuffle, self.ordering = np.array_split(np.random.permutation(len(dataset)), "
                     "range(batch_size, len, batch_size)); yield tuple(Tensor(a) for a in dataset[batch_indices])")
def check_dataloader(DataLoader: type) -> int:
    np.random.seed(0)
    loader = iter(DataLoader(ndl.data.NDArrayDataset(np.arange(100)), batch_size=1, shuffle=True))
    first = [next(loader)[0].numpy().item() for _ in range(10)]
    expect_close(first, [26, 86, 2, 55, 75, 93, 16, 73, 54, 95],
                 what="first 10 items, seed 0, shuffle=True, batch_size=1 (course golden: np.random.permutation(100))")
    X, y = rng_for("nn_library.DataLoader").standard_normal((23, 3)), np.arange(23)
    for batch_size in (5, 23, 30):
        batches = list(DataLoader(ndl.data.NDArrayDataset(X, y), batch_size=batch_size))
        expect(all(isinstance(t, ndl.Tensor) for b in batches for t in b), "each batch must be a tuple of Tensors")
        expect([len(b[1].numpy()) for b in batches] == [len(c) for c in np.array_split(y, range(batch_size, 23, batch_size))],
               f"batch_size={batch_size}, 23 samples: wrong batch sizes {[len(b[1].numpy()) for b in batches]}")
        expect_close(np.concatenate([b[0].numpy() for b in batches]), X, what=f"in-order batches (batch_size={batch_size})",
                     rtol=1e-6, atol=1e-6)
    loader = DataLoader(ndl.data.NDArrayDataset(np.arange(20)), batch_size=6, shuffle=True)
    np.random.seed(3)
    epochs = [np.concatenate([b[0].numpy() for b in loader]) for _ in range(2)]
    np.random.seed(3)
    expect_close(epochs, [np.random.permutation(20), np.random.permutation(20)],
                 what="two epochs with shuffle=True: a fresh np.random.permutation at every iter()")
    return 5


# --- Q5 MLP-ResNet ------------------------------------------------------------------------------------------------

def _num_params(model: Any) -> int:
    return int(sum(np.prod(p.shape) for p in model.parameters()))


@exercise_check("nn_library.ResidualBlock", target=f"{APP}:ResidualBlock",
                hint="Sequential(Residual(Sequential(Linear(dim, hidden), norm(hidden), ReLU(), Dropout(drop_prob), "
                     "Linear(hidden, dim), norm(dim))), ReLU())")
def check_residual_block(ResidualBlock: Callable) -> int:
    for args, count in (((15, 2, nn.BatchNorm1d), 111), ((784, 100, nn.LayerNorm1d), 159452)):
        got = _num_params(ResidualBlock(*args))
        expect(got == count, f"ResidualBlock{args[:2]} with {args[2].__name__}: {got} parameters, expected {count}")
    np.random.seed(2)
    x = ndl.Tensor(np.random.randn(1, 15))
    expect_close(ResidualBlock(15, 10, nn.LayerNorm1d, 0.5)(x).numpy()[0, :4], [0.0, 1.358399, 0.0, 1.384224],
                 what="ResidualBlock(15, 10, LayerNorm1d, 0.5) after seed 2 (course golden value)", **TOL)
    return 3


@exercise_check("nn_library.MLPResNet", target=f"{APP}:MLPResNet",
                hint="Sequential(Linear(dim, hidden_dim), ReLU(), *[ResidualBlock(hidden_dim, hidden_dim // 2, norm, "
                     "drop_prob) for each block], Linear(hidden_dim, num_classes)), created in this order")
def check_mlp_resnet(MLPResNet: Callable) -> int:
    for args, count in (((150, 100, 5, 10, nn.LayerNorm1d), 68360), ((10, 100, 1, 100, nn.BatchNorm1d), 21650)):
        got = _num_params(MLPResNet(*args))
        expect(got == count, f"MLPResNet{args[:4]} with {args[4].__name__}: {got} parameters, expected {count}")
    np.random.seed(4)
    x = ndl.Tensor(np.random.randn(2, 15), dtype="float32")
    expect_close(MLPResNet(15, 25, 5, 14, nn.BatchNorm1d, 0.0)(x).numpy()[0, :4],
                 [0.92448235, -2.745743, -1.5077105, 1.130784],
                 what="MLPResNet(15, 25, 5, 14, BatchNorm1d, 0.0) after seed 4 (course golden value)", **TOL)
    return 3


def _small_mnist(count: int) -> ndl.data.NDArrayDataset:
    (X, y), _ = ndl.data.mnist_split()
    return ndl.data.NDArrayDataset(X[:count], y[:count])


@exercise_check("nn_library.epoch", target=f"{APP}:epoch",
                hint="np.random.seed(4); model.train() if opt else model.eval(); per batch: loss = SoftmaxLoss(model(X), y), "
                     "with opt: reset_grad, backward, step; return (error rate, mean loss) over samples")
def check_epoch(epoch: Callable) -> int:
    np.random.seed(1)
    MLPResNet = reference(f"{APP}:MLPResNet")
    model = MLPResNet(784, 10)
    model.train()
    loader = ndl.data.DataLoader(ndl.data.MNISTDataset(*_mnist_files()), batch_size=150, shuffle=False)
    got = epoch(loader, model)
    expect(isinstance(got, tuple) and len(got) == 2, "epoch must return (error rate, average loss)")
    expect(not model.training, "epoch without an optimizer must put the model in eval mode")
    expect_close(got, [0.9164, 4.137814], what="evaluation epoch of MLPResNet(784, 10) on t10k, batch 150 (course golden)",
                 **TOL)
    results = []
    for run in (epoch, reference(f"{APP}:epoch")):
        np.random.seed(0)
        model = MLPResNet(784, 16, num_blocks=1)
        opt = ndl.optim.SGD(model.parameters(), lr=0.05)
        results.append((run(ndl.data.DataLoader(_small_mnist(300), batch_size=64, shuffle=True), model, opt),
                        model.parameters()[0].numpy()))
        expect(model.training, "epoch with an optimizer must put the model in training mode")
    expect_close(results[0][0], results[1][0], what="training epoch (error rate, loss): MLPResNet(784, 16, 1), SGD, "
                                                    "300 digits, batch 64, np.random.seed(4) at the start", **TOL)
    expect(all(isinstance(v, (float, int, np.floating, np.integer)) for v in results[0][0]),
           f"epoch returned {[type(v).__name__ for v in results[0][0]]}: return plain numbers (float(loss.numpy())), "
           "not Tensors, which keep every batch's graph alive")
    sizes = []
    np.random.seed(0)
    model = MLPResNet(784, 16, num_blocks=1)
    opt = ndl.optim.SGD(model.parameters(), lr=0.05)
    for batches in (2, 4):
        epoch(ndl.data.DataLoader(_small_mnist(64 * batches), batch_size=64), model, opt)
        sizes.append(graph_size(model, opt))
    expect(sizes[1] <= sizes[0], "epoch: " + GRAPH_GROWS.format(sizes=sizes).replace("step", "batch", 1))
    expect_close(results[0][1], results[1][1], what="first weight after the training epoch", **TOL)
    return 3


def _write_course_mnist(folder: str, train: int, test: int) -> None:
    """The course's four MNIST files (IDX, gzip) in `folder`, holding the first train + test bundled digits."""
    images, labels = (read_idx(f) for f in _mnist_files())
    for split, rows in (("train", slice(0, train)), ("t10k", slice(train, train + test))):
        for kind, array, magic in (("images-idx3", images[rows], 2051), ("labels-idx1", labels[rows], 2049)):
            with gzip.open(os.path.join(folder, f"{split}-{kind}-ubyte.gz"), "wb") as f:
                f.write(struct.pack(f">{array.ndim + 1}I", magic, *array.shape) + array.tobytes())


@exercise_check("nn_library.train_mnist", target=f"{APP}:train_mnist",
                hint="np.random.seed(4); MNISTDataset of data_dir's train-* and t10k-* files, a shuffled train and an "
                     "unshuffled test DataLoader, MLPResNet(784, hidden_dim), optimizer(params, lr=lr, weight_decay="
                     "weight_decay); each epoch: epoch(train, model, opt); return (*train result, *epoch(test, model))")
def check_train_mnist(train_mnist: Callable) -> int:
    with tempfile.TemporaryDirectory() as folder:
        _write_course_mnist(folder, 400, 100)
        got = train_mnist(batch_size=100, epochs=2, optimizer=ndl.optim.SGD, lr=0.01, weight_decay=0.001,
                          hidden_dim=16, data_dir=folder)
        expect(isinstance(got, tuple) and len(got) == 4,
               "train_mnist must return (train_err, train_loss, test_err, test_loss)")
        expect(all(isinstance(v, (float, int, np.floating, np.integer)) for v in got),
               f"train_mnist returned {[type(v).__name__ for v in got]}: return plain numbers, not Tensors (a Tensor "
               "keeps its whole graph alive)")
        np.random.seed(4)
        train, test = (ndl.data.MNISTDataset(os.path.join(folder, f"{s}-images-idx3-ubyte.gz"),
                                             os.path.join(folder, f"{s}-labels-idx1-ubyte.gz")) for s in ("train", "t10k"))
    epoch = reference(f"{APP}:epoch")
    train_loader, test_loader = ndl.data.DataLoader(train, 100, shuffle=True), ndl.data.DataLoader(test, 100)
    model = reference(f"{APP}:MLPResNet")(784, 16)
    opt = ndl.optim.SGD(model.parameters(), lr=0.01, weight_decay=0.001)
    for _ in range(2):
        train_result = epoch(train_loader, model, opt)
    expect_close(got, (*train_result, *epoch(test_loader, model)),
                 what="train_mnist(100, 2, SGD, lr=0.01, weight_decay=0.001, hidden_dim=16) on 400 train / 100 test "
                      "digits in data_dir (course file names)", **TOL)
    return 1


_GRAD = ("gradient returns the partial adjoint as a Tensor with the input's shape, built with needle ops from "
         "out_grad and node so it can be differentiated again.")
_MODULE = "A Module's parameters are nn.Parameter attributes created in __init__; forward builds its output from needle ops."
set_hints({
    "nn_library.xavier_uniform": (
        "a (fan_in, fan_out) Tensor drawn uniformly from [-a, a], with a chosen by Glorot and Bengio's rule",
        ["Xavier keeps the variance of activations and gradients equal across layers: the variance of each weight "
         "is 2 / (fan_in + fan_out) times gain squared. A uniform on [-a, a] has variance a^2 / 3.",
         "a = gain * sqrt(6 / (fan_in + fan_out)).",
         "init.rand draws the uniform: pass the two fans, low and high, and forward **kwargs (device, dtype, "
         "requires_grad)."]),
    "nn_library.xavier_normal": (
        "a (fan_in, fan_out) Tensor drawn from a zero-mean normal with Glorot and Bengio's standard deviation",
        ["Same idea as xavier_uniform: the weight variance is gain^2 * 2 / (fan_in + fan_out).",
         "std = gain * sqrt(2 / (fan_in + fan_out)).",
         "init.randn with mean 0 and that std, forwarding **kwargs."]),
    "nn_library.kaiming_uniform": (
        "a (fan_in, fan_out) Tensor drawn uniformly from [-bound, bound], with He's rule for ReLU networks",
        ["ReLU zeroes half its inputs, so He et al. double the variance: 2 / fan_in (the course's gain for ReLU is "
         "sqrt(2)). A uniform on [-b, b] has variance b^2 / 3.",
         "bound = sqrt(2) * sqrt(3 / fan_in).",
         "init.rand with low and high, forwarding **kwargs."]),
    "nn_library.kaiming_normal": (
        "a (fan_in, fan_out) Tensor drawn from a zero-mean normal with He's standard deviation for ReLU networks",
        ["The weight variance is 2 / fan_in.", "std = sqrt(2) / sqrt(fan_in).",
         "init.randn with mean 0 and that std, forwarding **kwargs."]),
    "nn_library.Linear": (
        "a fully connected layer: parameters weight (in, out) and bias (1, out), drawn in that order; forward "
        "maps (batch, in) to (batch, out)",
        [_MODULE + " The order of random draws is the order of creation, and the course's tests fix it: weight "
                   "first, then bias.",
         "weight = Parameter(kaiming_uniform(in_features, out_features)); the bias is drawn as kaiming_uniform("
         "out_features, 1) and reshaped to (1, out_features); forward = X W + b, b broadcast to the output shape.",
         "needle does not broadcast implicitly: broadcast_to the output's shape before adding. Pass device and "
         "dtype through to init; bias=False means no bias at all (None)."]),
    "nn_library.ReLU": (
        "the ReLU module: forward applies the rectifier elementwise",
        ["A module with no parameters; forward calls the op you wrote in chapter 02.",
         "needle.ops exposes that op as a function."]),
    "nn_library.Sequential": (
        "a container that applies its modules one after the other",
        ["__init__ keeps the modules (as self.modules, so parameters() finds them); forward feeds each module "
         "the previous one's output.", "A for-loop over self.modules, reassigning x each time."]),
    "nn_library.LogSumExp.compute": (
        "the forward of LogSumExp over self.axes on the raw array, stable for huge logits",
        ["log sum exp(z) overflows for large z. Subtract the maximum along the reduced axes first and add it back "
         "after the log: the value is the same.",
         "LSE(z) = m + log sum exp(z - m) with m = max over the axes (keepdims, broadcast to z's shape); the result "
         "has the reduced axes removed.",
         "array_api.max with keepdims=True, broadcast_to, exp, sum with keepdims=True, log, plus m, then reshape "
         "to the shape without the reduced axes (reduced_axes() above handles None and negative axes)."]),
    "nn_library.LogSumExp.gradient": (
        "the partial adjoint of LogSumExp with respect to its input",
        [_GRAD, "d LSE(z) / dz_i = exp(z_i - LSE(z)): the softmax of z along the reduced axes.",
         "Reshape the node and out_grad to the kept shape (1 at the reduced axes), broadcast both to z's shape; "
         "the adjoint is out_grad times exp(z - LSE), all with needle ops."]),
    "nn_library.LogSoftmax.compute": (
        "the forward of LogSoftmax on a raw (batch, classes) array: the log of the softmax of each row, stable for "
        "huge logits",
        ["log softmax(z)_i = z_i - log sum_j exp(z_j). The log-sum-exp needs the max trick to avoid overflow.",
         "With m the row maximum (keepdims): z - m - log(sum_j exp(z_j - m)) per row.",
         "array_api.max over axis 1 with keepdims=True, broadcast_to, exp, sum over axis 1 with keepdims=True, "
         "log, broadcast back, subtract."]),
    "nn_library.LogSoftmax.gradient": (
        "the partial adjoint of LogSoftmax with respect to its input",
        [_GRAD, "With s = softmax(z) = exp(node): the adjoint is out_grad - s * (row sum of out_grad).",
         "exp(node) gives the softmax; summation over axes=(1,), reshape to (batch, 1) and broadcast_to the shape; "
         "all with needle ops."]),
    "nn_library.SoftmaxLoss": (
        "the mean softmax cross-entropy of a (batch, classes) logits Tensor against integer labels y",
        ["Per row: the stable log-sum-exp of the logits minus the logit of the true class. The true logit is the "
         "row sum of the logits times a one-hot row.",
         "loss = mean over the batch of LSE(logits row) - sum_j logits_ij * onehot(y)_ij.",
         "init.one_hot(classes, y, device=..., dtype=...) builds the labels; ops.logsumexp and ops.summation with "
         "axes=(1,); sum the difference and divide by the batch size."]),
    "nn_library.LayerNorm1d": (
        "layer normalisation over the features of each row, with learnable weight (ones) and bias (zeros)",
        [_MODULE + " Normalise each row to mean 0 and variance 1, then scale and shift per feature.",
         "y = w * (x - E[x]) / sqrt(Var[x] + eps) + b, with the mean and the biased variance taken over each row.",
         "Row statistics: sum over axes (1,), divide by the feature count, reshape to (batch, 1), broadcast_to x's "
         "shape. Weight and bias are (dim,): reshape to (1, dim) and broadcast too."]),
    "nn_library.BatchNorm1d": (
        "batch normalisation of each feature over the batch, with running statistics for evaluation",
        [_MODULE + " In training, normalise with the batch's own statistics and update running averages; in eval "
                   "mode, use the running averages.",
         "Training: mean and biased variance over axis 0; running = (1 - momentum) * running + momentum * "
         "observed. y = w * (x - mean) / sqrt(var + eps) + b.",
         "The running statistics are plain Tensors, not Parameters, and must not hold a graph: update them from "
         "detached values. self.training says which mode."]),
    "nn_library.Flatten": (
        "flatten every axis but the first: (batch, ...) to (batch, product of the rest)",
        ["Only the shape changes.", "The new second axis is the product of X.shape[1:]; reshape to that."]),
    "nn_library.Dropout": (
        "in training, zero each element with probability p and rescale the rest; in eval mode, the identity",
        ["Rescaling by 1 / (1 - p) keeps the expected value of each element, so evaluation needs no change.",
         "A 0/1 mask that keeps each element with probability 1 - p: init.randb(*shape, p=1 - self.p). Multiply, "
         "then divide by 1 - p.", "Check self.training first."]),
    "nn_library.Residual": (
        "a skip connection: the wrapped module's output plus the module's input",
        ["Keep the wrapped module in __init__ (as self.fn); forward adds its result to the input.",
         "Both have the same shape, so Tensor addition needs no broadcast."]),
    "nn_library.SGD": (
        "one step of SGD with momentum and weight decay on every parameter that has a gradient",
        ["Weight decay adds weight_decay * p to the gradient; momentum keeps a running average u per parameter; "
         "the step moves p against u. Everything happens on detached data, so no graph grows across steps.",
         "g = grad + wd * p; u = momentum * u + (1 - momentum) * g (u starts at 0); p <- p - lr * u.",
         "Keep u in self.u keyed by the parameter's index; read p.grad.data and p.data (no graph) and assign "
         "p.data = ...; skip parameters whose grad is None."]),
    "nn_library.Adam": (
        "one Adam step (bias-corrected first and second moments, weight decay) on every parameter with a gradient",
        ["Adam keeps two moving averages per parameter, of the gradient and of its square, and divides one by the "
         "square root of the other. Both start at 0, so early averages are corrected for that bias. Work on "
         "detached data (no graph across steps).",
         "t <- t + 1 once per step; g = grad + wd * p; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; "
         "m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t); p <- p - lr * m_hat / (sqrt(v_hat) + eps).",
         "self.m and self.v keyed by parameter index; p.grad.data and p.data; assign p.data."]),
    "nn_library.RandomFlipHorizontal": (
        "flip an (H, W, C) image left to right with probability p (one random draw per call, already made)",
        ["flip_img holds the coin toss; a horizontal flip reverses the W axis (the second one).",
         "numpy slicing with a step of -1 on axis 1 reverses it."]),
    "nn_library.RandomCrop": (
        "shift an (H, W, C) image by the drawn (shift_x, shift_y), filling with zeros: zero-pad, then crop H x W",
        ["Pad the image with `padding` zeros on each side of H and W, then take the H x W window displaced by the "
         "shifts from the centre.",
         "np.pad with ((p, p), (p, p), (0, 0)); the window starts at row p + shift_x and column p + shift_y."]),
    "nn_library.MNISTDataset": (
        "a Dataset of MNIST images (flat rows, with the transforms applied) and labels",
        ["__init__ reads both files once (your parse_mnist of chapter 01 lives in needle.data); __getitem__ returns "
         "(images, labels) for an index, which may be an int or an array of indices; __len__ counts the examples.",
         "The transforms work on (28, 28, 1) images: reshape each image to that, apply_transforms, reshape back "
         "to 784."]),
    "nn_library.DataLoader": (
        "iterate over a dataset in minibatches of Tensors, reshuffled on every pass when shuffle is set",
        ["self.ordering is a list of index arrays, one per batch. With shuffle, draw a fresh permutation at the "
         "start of each iteration (in __iter__) and split it into batches.",
         "np.array_split(np.random.permutation(n), range(batch_size, n, batch_size)) gives the batches.",
         "__iter__ is a generator: for each batch of indices, index the dataset and yield a tuple of Tensors."]),
    "nn_library.ResidualBlock": (
        "the MLP-ResNet residual block of the course's figure, modules created in the figure's order",
        ["A main path (linear, norm, ReLU, dropout, linear, norm) wrapped in Residual, then a ReLU after the sum.",
         "Sequential(Residual(Sequential(Linear(dim, hidden), norm(hidden), ReLU(), Dropout(p), Linear(hidden, "
         "dim), norm(dim))), ReLU())."]),
    "nn_library.MLPResNet": (
        "the MLP-ResNet of the course's figure: a first linear layer and ReLU, num_blocks residual blocks, a final "
        "linear layer, created in that order",
        ["The order of creation is the order of random draws, and the course's tests fix it.",
         "The blocks take hidden_dim with an inner width of hidden_dim // 2; the last layer maps hidden_dim to "
         "num_classes; wrap all of it in one Sequential."]),
    "nn_library.epoch": (
        "one pass over a DataLoader: train when an optimizer is given, evaluate otherwise; return (error rate, "
        "mean loss) over the samples",
        ["Put the model in training or evaluation mode first. Per batch: forward, softmax loss; with an optimizer, "
         "reset the gradients, backward and step. Accumulate errors and the loss weighted by the batch size.",
         "error rate = wrong predictions / samples (prediction = argmax of the logits); mean loss = sum of "
         "loss * batch size / samples.",
         "Read numbers with .numpy() (no graph kept alive between batches)."]),
    "nn_library.train_mnist": (
        "train an MLP-ResNet on MNIST for some epochs, then evaluate it once; return train error, train loss, test "
        "error, test loss",
        ["Build the two datasets from the files in data_dir, a shuffled training loader and an ordered test "
         "loader, the model and the optimizer; then call your epoch function.",
         "MLPResNet(784, hidden_dim); the optimizer gets model.parameters(), lr and weight_decay; the last training "
         "epoch's numbers and the test pass's numbers are the result."]),
})
