"""Chapter 03, Q2: the nn modules and LogSumExp/LogSoftmax, forward against numpy, gradients against float64
central differences."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

import needle as ndl
from needle import nn

from ...cases import numerical_gradients, random_shape, rng_for, softmax_loss64
from ...compare import expect, expect_close
from ...install import reference
from ...registry import exercise_check
from ...tensors import course_labels, course_tensor, input_gradient_check, raw_array
from .common import LOG, NN, TOL, tensor_out


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
        input_gradient_check(f, x, lambda a: a @ W + b, f"Linear(10, 5) on shape {shape}")
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
        input_gradient_check(ReLU(), x, lambda a: np.maximum(a, 0), "ReLU")
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
                got = ndl.ops.LogSumExp(axes).compute(raw_array(z, "float64", strided))
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
                got = ndl.ops.LogSoftmax().compute(raw_array(z, "float64", strided))
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
    expect_close(tensor_out(SoftmaxLoss()(x, y), "SoftmaxLoss"), 4.041218, what="SoftmaxLoss (course golden value)", **TOL)
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
        input_gradient_check(ln, x, lambda a: w * _norm64(a, 1) + b, f"LayerNorm1d({dim})")
        cases += 2
    return cases


@exercise_check("nn_library.Flatten", target=f"{NN}:Flatten", hint="X.reshape((batch, product of the other axes))")
def check_flatten(Flatten: type) -> int:
    rng = rng_for("nn_library.Flatten")
    for shape in ((2, 3, 4), (3, 1, 2, 2), (4, 5)):
        x = rng.standard_normal(shape)
        expect_close(Flatten()(ndl.Tensor(x)), x.reshape(shape[0], -1), what=f"Flatten() of shape {shape}", **TOL)
        input_gradient_check(Flatten(), x, lambda a: a.reshape(a.shape[0], -1), f"Flatten() of shape {shape}")
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
    input_gradient_check(bn, x, lambda a: w * _norm64(a, 0) + b, "BatchNorm1d(4) in training mode")
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
    input_gradient_check(Residual(lambda t: t * t), x, lambda a: a * a + a, "Residual(lambda t: t * t)")
    return 3
