"""Chapter 07 (course hw4 parts 1-3): NDArray pad and flip, the Flip / Dilate / UnDilate ops, convolution by im2col
and its backward pass, Kaiming fans for kernels, nn.Conv, BatchNorm2d and ResNet9.

Forwards are compared with numpy (random shapes, strided inputs, float32 and float64); gradients are called directly
on a node the reference computed and compared with float64 central differences; module checks seed numpy's global RNG
and compare with draws made in the course's order.
"""
from __future__ import annotations

import contextlib
import math
from typing import Any, Callable, Iterator

import numpy as np

import needle as ndl
from needle import nn
from needle.backend_ndarray import ndarray as nd_module
from needle.backend_ndarray import layout

from ..cases import numerical_gradients, random_shape, rng_for
from ..compare import expect, expect_close
from ..errors import CheckFailed
from ..install import reference
from ..registry import exercise_check, set_hints
from ..tensors import GRAPH_GROWS, graph_size, input_gradient_check, raw_array

ND = "needle.backend_ndarray.ndarray"
OPS = "needle.ops.ops_mathematic"
CONV = "needle.ops.ops_conv"
INIT = "needle.init.init_initializers"
NN = "needle.nn.nn_basic"
NN_CONV = "needle.nn.nn_conv"
MODELS = "needle.apps.models"
TOL = dict(rtol=1e-5, atol=1e-5)


# --- numpy meanings -------------------------------------------------------------------------------------------------

def conv_nhwc64(x: np.ndarray, w: np.ndarray, stride: int = 1, padding: int = 0) -> np.ndarray:
    """out[n, i, j, o] = sum_{a, b, c} xpad[n, i*s + a, j*s + b, c] w[a, b, c, o], in float64."""
    x = np.pad(np.asarray(x, dtype=np.float64), ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    k = w.shape[0]
    windows = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(1, 2))[:, ::stride, ::stride]
    return np.einsum("nhwcab,abco->nhwo", windows, np.asarray(w, dtype=np.float64))


def conv_nchw64(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: int) -> np.ndarray:
    """nn.Conv's meaning: NCHW in and out, "same" padding K // 2, bias per output channel."""
    out = conv_nhwc64(x.transpose(0, 2, 3, 1), w, stride, w.shape[0] // 2)
    if b is not None:
        out = out + b
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))


def dilate64(a: np.ndarray, axes: tuple, dilation: int) -> np.ndarray:
    shape = tuple(n * (dilation + 1) if i in axes else n for i, n in enumerate(a.shape))
    out = np.zeros(shape)
    out[tuple(slice(None, None, dilation + 1) if i in axes else slice(None) for i in range(a.ndim))] = a
    return out


def undilate64(a: np.ndarray, axes: tuple, dilation: int) -> np.ndarray:
    return a[tuple(slice(None, None, dilation + 1) if i in axes else slice(None) for i in range(a.ndim))]


def _node(op: Any, compute: Callable, xs: list[np.ndarray]) -> tuple[ndl.Tensor, list[ndl.Tensor]]:
    """A graph node of `op` on float64 inputs, its value computed by needle's reference forward."""
    inputs = [ndl.Tensor(x, dtype="float64") for x in xs]
    node = ndl.Tensor.__new__(ndl.Tensor)
    node._init(op, inputs, cached_data=compute(op, *[t.realize_cached_data() for t in inputs]))
    return node, inputs


def _expect_graph_tensor(got: Any, adjoint: Any, what: str) -> None:
    expect(isinstance(got, ndl.Tensor), f"{what} must be a Tensor built from needle ops, got {type(got).__name__}")
    expect(got is adjoint or not got.is_leaf(),
           f"{what} is a new leaf Tensor (computed outside the graph, e.g. in numpy): build it from needle ops on "
           "out_grad and node.inputs so that it can be differentiated again")


# --- NDArray.pad and NDArray.flip -----------------------------------------------------------------------------------

def _array(x: np.ndarray, dtype: str, strided: bool) -> Any:
    return raw_array(x, dtype, strided)


def _sliced(x: np.ndarray, dtype: str) -> Any:
    """x as a view with a non-zero offset (rows 1.. of a taller array): flips must start from the view's offset."""
    taller = np.concatenate([np.full((1,) + x.shape[1:], 99.0), x], axis=0)
    raw = ndl.Tensor(taller, dtype=dtype, requires_grad=False).realize_cached_data()
    return raw[(slice(1, None),) + (slice(None),) * (x.ndim - 1)]


def _layouts(x: np.ndarray, dtype: str) -> Iterator[tuple[str, Any]]:
    yield "compact", _array(x, dtype, False)
    if x.ndim:
        yield "strided view", _array(x, dtype, True)
        yield "view with an offset", _sliced(x, dtype)


@exercise_check("cnn.NDArray.pad", target=f"{ND}:NDArray.pad", hint="zero padding of an NDArray")
def check_pad(pad: Callable) -> int:
    rng = rng_for("cnn.NDArray.pad")
    cases = 0
    shapes = [(3,), (2, 3), (2, 1, 3), (1, 2, 3, 2)] + [random_shape(rng, 1, 4, 4) for _ in range(2)]
    for shape in shapes:
        x = rng.standard_normal(shape)
        axes = tuple((int(rng.integers(0, 3)), int(rng.integers(0, 3))) for _ in shape)
        for dtype in ("float32", "float64"):
            for layout_name, a in _layouts(x, dtype):
                got = a.pad(axes)
                what = f"NDArray of shape {shape} ({layout_name}, {dtype}).pad({axes})"
                expect(isinstance(got, nd_module.NDArray), f"{what} must return an NDArray, got {type(got).__name__}")
                expect(got.dtype == dtype, f"{what} returned dtype {got.dtype}: keep the input's dtype")
                expect_close(got, np.pad(x.astype(dtype), axes), what=what, inputs={"x": x}, rtol=1e-6, atol=1e-7)
                expect_close(a, x.astype(dtype), what=f"{what} must not change its input")
                cases += 1
    return cases


@contextlib.contextmanager
def _bounds_checked_views() -> Iterator[None]:
    """While a flip check runs, a view made over an existing buffer must stay inside it (a wrong offset would
    otherwise read memory outside the array, or crash the kernel)."""
    original = nd_module.NDArray.__dict__["make"]

    def make(shape, strides=None, device=None, handle=None, offset: int = 0, dtype="float32"):
        if handle is not None and strides is not None:
            layout.check_bounds("NDArray.make (a view over the input's buffer)", tuple(shape), tuple(strides),
                                int(offset), handle.size)
        return original.__func__(shape, strides, device, handle, offset, dtype)

    nd_module.NDArray.make = staticmethod(make)
    try:
        yield
    finally:
        nd_module.NDArray.make = original


@exercise_check("cnn.NDArray.flip", target=f"{ND}:NDArray.flip", hint="reverse an NDArray along some axes")
def check_flip(flip: Callable) -> int:
    rng = rng_for("cnn.NDArray.flip")
    cases = 0
    specs = [((5,), (0,)), ((3, 4), (0,)), ((3, 4), (1,)), ((3, 4), (0, 1)), ((2, 3, 4), (0, 2)),
             ((2, 3, 2, 3), (1, 2)), ((2, 1, 3, 2), (0, 1, 2, 3)), ((3, 4), ())]
    with _bounds_checked_views():
        for shape, axes in specs:
            x = rng.standard_normal(shape)
            for layout_name, a in _layouts(x, "float32"):
                what = f"NDArray of shape {shape} ({layout_name}).flip({axes})"
                try:
                    got = a.flip(axes)
                except ValueError as err:
                    if "reaches outside" not in str(err):
                        raise
                    raise CheckFailed(f"{what}: your view reads outside the array's buffer ({err}). A flipped axis "
                                      "starts at its last element: the offset must move there, starting from the "
                                      "view's own offset") from None
                expect(isinstance(got, nd_module.NDArray), f"{what} must return an NDArray, got {type(got).__name__}")
                expect_close(got, np.flip(x, axes).astype(np.float32), what=what, inputs={"x": x}, rtol=1e-6, atol=1e-7)
                expect(got.is_compact(), f"{what} returned a view with strides {got.strides}: compact it, as the "
                                         "course asks (a fresh dense array, so no negative strides travel on)")
                expect_close(a, x.astype(np.float32), what=f"{what} must not change its input")
                cases += 1
    return cases


# --- Flip, Dilate, UnDilate ops -------------------------------------------------------------------------------------

def _op_check(name: str, numpy_fn: Callable, cases: list[tuple[tuple, tuple]]) -> Callable:
    """A check of a whole op class: compute against numpy (float32, compact and strided), gradient against central
    differences (float64) on a node the reference computed."""

    def check(cls: type) -> int:
        rng = rng_for(f"cnn.{name}")
        ref_compute = reference(f"{OPS}:{name}.compute")
        count = 0
        for args, shape in cases:
            x = rng.standard_normal(shape)
            op = getattr(ndl.ops.ops_mathematic, name)(*args)
            for strided in (False, True):
                got = op.compute(raw_array(x.astype(np.float32), "float32", strided))
                expect_close(got, numpy_fn(x, *args).astype(np.float32), what=f"{name}{args}.compute",
                             inputs={"input" + (" (strided view)" if strided else ""): x}, rtol=1e-6, atol=1e-7)
                count += 1
            node, _ = _node(op, ref_compute, [x])
            out_grad = rng.standard_normal(node.shape)
            adjoint = ndl.Tensor(out_grad, dtype="float64")
            grads = op.gradient_as_tuple(adjoint, node)
            expect(len(grads) == 1, f"{name}.gradient returned {len(grads)} gradients for 1 input")
            _expect_graph_tensor(grads[0], adjoint, f"{name}{args}.gradient")
            want = numerical_gradients(lambda a: numpy_fn(a, *args), [x], out_grad)[0]
            expect_close(grads[0], want, what=f"{name}{args}.gradient (float64, vs central differences)",
                         inputs={"input": x, "out_grad": out_grad}, rtol=1e-6, atol=1e-6)
            count += 1
        return count

    return check


_FLIP_CASES = [(((0,),), (4,)), (((1,),), (3, 4)), (((0, 1),), (3, 4)), (((1, 2),), (2, 3, 4)),
               (((0, 1),), (3, 3, 2, 2))]
_DILATE_CASES = [(((0,), 1), (3,)), (((1,), 2), (2, 3)), (((0, 1), 1), (2, 3)), (((1, 2), 1), (2, 3, 2, 1)),
                 (((0,), 0), (2, 3))]
_UNDILATE_CASES = [(((0,), 1), (6,)), (((1,), 2), (2, 6)), (((0, 1), 1), (4, 6)), (((1, 2), 1), (2, 6, 4, 1)),
                   (((0,), 0), (2, 3))]

exercise_check("cnn.Flip", target=f"{OPS}:Flip", hint="the Flip op")(
    _op_check("Flip", lambda a, axes: np.flip(a, axes), _FLIP_CASES))
exercise_check("cnn.Dilate", target=f"{OPS}:Dilate", hint="the Dilate op")(
    _op_check("Dilate", dilate64, _DILATE_CASES))
exercise_check("cnn.UnDilate", target=f"{OPS}:UnDilate", hint="the UnDilate op")(
    _op_check("UnDilate", undilate64, _UNDILATE_CASES))


# --- convolution ----------------------------------------------------------------------------------------------------

# (N, H, W, C_in, C_out, K, stride, padding); the stride divides H + 2P - K + 1 (and the same for W), as in every
# layer of ResNet9: then the backward pass needs no cropping (see the chapter)
CONV_CASES = [
    (1, 4, 4, 1, 1, 3, 1, 0),
    (2, 5, 5, 3, 2, 3, 1, 1),
    (1, 6, 5, 2, 3, 3, 1, 0),
    (2, 6, 6, 2, 2, 3, 2, 1),
    (1, 8, 8, 3, 2, 7, 4, 3),  # ResNet9's first layer, scaled down
    (1, 8, 6, 2, 1, 3, 2, 0),
    (2, 4, 4, 3, 2, 1, 1, 0),
    (1, 9, 9, 1, 2, 5, 3, 2),
    (1, 6, 8, 2, 2, 2, 1, 1),
]


def _conv_arrays(rng: np.random.Generator, case: tuple) -> tuple[np.ndarray, np.ndarray]:
    n, h, w, ci, co, k, _, _ = case
    return rng.standard_normal((n, h, w, ci)), rng.standard_normal((k, k, ci, co))


def _conv_what(case: tuple) -> str:
    n, h, w, ci, co, k, s, p = case
    return f"conv of an input (N={n}, H={h}, W={w}, C_in={ci}) with a ({k}, {k}, {ci}, {co}) kernel, stride {s}, padding {p}"


@exercise_check("cnn.Conv.compute", target=f"{CONV}:Conv.compute", hint="the forward of Conv on raw NDArrays")
def check_conv_compute(compute: Callable) -> int:
    rng = rng_for("cnn.Conv.compute")
    cases = 0
    for case in CONV_CASES:
        x, w = _conv_arrays(rng, case)
        s, p = case[6], case[7]
        op = ndl.ops.Conv(stride=s, padding=p)
        for strided in (False, True):
            got = op.compute(raw_array(x.astype(np.float32), "float32", strided), raw_array(w.astype(np.float32), "float32"))
            expect_close(got, conv_nhwc64(x.astype(np.float32), w.astype(np.float32), s, p),
                         what=_conv_what(case) + (" (the input a strided view)" if strided else ""),
                         inputs={"X": x, "weight": w}, rtol=1e-4, atol=1e-4)
            cases += 1
    # float64 in, float64 out
    x, w = _conv_arrays(rng, CONV_CASES[1])
    got = ndl.ops.Conv(1, 1).compute(raw_array(x, "float64"), raw_array(w, "float64"))
    expect_close(got, conv_nhwc64(x, w, 1, 1), what=_conv_what(CONV_CASES[1]) + " in float64", check_dtype=False,
                 rtol=1e-10, atol=1e-10)
    return cases + 1


def _reference_conv_grads(x: np.ndarray, w: np.ndarray, s: int, p: int, out_grad: np.ndarray,
                          weights: list[np.ndarray]) -> list[np.ndarray]:
    """d/d(x, w) of <grad_x, weights[0]> + <grad_w, weights[1]> with needle's own Conv.gradient (the oracle for
    second derivatives)."""
    op = ndl.ops.Conv(stride=s, padding=p)
    node, inputs = _node(op, reference(f"{CONV}:Conv.compute"), [x, w])
    grads = reference(f"{CONV}:Conv.gradient")(op, ndl.Tensor(out_grad, dtype="float64"), node)
    total = sum((g * ndl.Tensor(v, dtype="float64", requires_grad=False)).sum() for g, v in zip(grads, weights))
    total.backward()
    return [t.grad.numpy() if t.grad is not None else np.zeros(t.shape) for t in inputs]


@exercise_check("cnn.Conv.gradient", target=f"{CONV}:Conv.gradient", hint="the partial adjoints of Conv")
def check_conv_gradient(gradient: Callable) -> int:
    rng = rng_for("cnn.Conv.gradient")
    ref_compute = reference(f"{CONV}:Conv.compute")
    cases = 0
    for case in CONV_CASES:
        x, w = _conv_arrays(rng, case)
        s, p = case[6], case[7]
        op = ndl.ops.Conv(stride=s, padding=p)
        node, inputs = _node(op, ref_compute, [x, w])
        out_grad = rng.standard_normal(node.shape)
        adjoint = ndl.Tensor(out_grad, dtype="float64")
        grads = op.gradient_as_tuple(adjoint, node)
        expect(len(grads) == 2, f"Conv.gradient must return two gradients (input, weight), got {len(grads)}")
        numeric = numerical_gradients(lambda a, b: conv_nhwc64(a, b, s, p), [x, w], out_grad)
        for name, got, want in zip(("the input", "the weight"), grads, numeric):
            what = f"Conv.gradient w.r.t. {name}, {_conv_what(case)}"
            _expect_graph_tensor(got, adjoint, what)
            expect_close(got, want, what=what + " (float64, vs central differences)",
                         inputs={"X": x, "weight": w, "out_grad": out_grad}, rtol=1e-6, atol=1e-6)
        cases += 1
        if case in (CONV_CASES[1], CONV_CASES[3]):  # second derivatives: the gradient must stay in the graph
            weights = [rng.standard_normal(x.shape), rng.standard_normal(w.shape)]
            total = sum((g * ndl.Tensor(v, dtype="float64", requires_grad=False)).sum() for g, v in zip(grads, weights))
            total.backward()
            want = _reference_conv_grads(x, w, s, p, out_grad, weights)
            for name, t, v in zip(("the input", "the weight"), inputs, want):
                got = t.grad.numpy() if t.grad is not None else np.zeros(t.shape)
                expect_close(got, v, what=f"derivative of your Conv gradients w.r.t. {name} (a second derivative), "
                                          f"{_conv_what(case)}: a gradient cut off the graph gets this wrong",
                             rtol=1e-6, atol=1e-6)
            cases += 1
    return cases


# --- Kaiming fans for kernels ---------------------------------------------------------------------------------------

@exercise_check("cnn.kaiming_uniform", target=f"{INIT}:kaiming_uniform", hint="kaiming_uniform with a shape")
def check_kaiming_uniform(kaiming_uniform: Callable) -> int:
    np.random.seed(0)
    got = kaiming_uniform(16 * 9, 8 * 9, shape=(3, 3, 16, 8))
    expect(isinstance(got, ndl.Tensor) and got.shape == (3, 3, 16, 8),
           f"kaiming_uniform(144, 72, shape=(3, 3, 16, 8)) must be a Tensor of shape (3, 3, 16, 8), got "
           f"{getattr(got, 'shape', type(got).__name__)}")
    expect_close(got.numpy().sum(), -2.5719218, what="sum of kaiming_uniform(16*9, 8*9, shape=(3, 3, 16, 8)) after "
                                                     "np.random.seed(0) (course golden value)", rtol=1e-5, atol=1e-4)
    cases = 1
    for seed, (fan_in, fan_out, shape) in enumerate(((27, 48, (3, 3, 3, 16)), (5, 7, None), (784, 784, (7, 2, 56, 8)),
                                                     (1, 2, (1, 1, 1, 2)))):
        np.random.seed(seed)
        draw = np.random.rand(*(shape or (fan_in, fan_out)))
        bound = math.sqrt(2) * math.sqrt(3 / fan_in)
        np.random.seed(seed)
        got = kaiming_uniform(fan_in, fan_out, shape=shape)
        expect_close(got, draw * 2 * bound - bound, rtol=1e-5, atol=1e-6,
                     what=f"kaiming_uniform({fan_in}, {fan_out}, shape={shape}) after np.random.seed({seed}): the shape "
                          "decides the draw, the fans the bound")
        cases += 1
    np.random.seed(0)
    got = kaiming_uniform(4, 3, shape=(2, 2, 1, 3), dtype="float64", requires_grad=True)
    expect(str(got.dtype) == "float64" and got.requires_grad,
           "kaiming_uniform(..., dtype='float64', requires_grad=True): pass **kwargs on to init.rand "
           f"(got dtype {got.dtype}, requires_grad {got.requires_grad})")
    return cases + 1


# --- nn.Conv --------------------------------------------------------------------------------------------------------


@exercise_check("cnn.nn.Conv", target=f"{NN_CONV}:Conv", hint="the Conv module: NCHW in and out, same padding")
def check_nn_conv(Conv: type) -> int:
    cases = 0
    rng = rng_for("cnn.nn.Conv")
    for seed, (ci, co, k, s, n, h, w) in enumerate(((3, 4, 3, 1, 2, 5, 5), (2, 3, 3, 2, 1, 6, 6), (2, 2, 1, 1, 2, 3, 4),
                                                   (1, 2, 5, 1, 1, 6, 4), (3, 2, 7, 4, 1, 8, 8))):
        np.random.seed(seed)
        fan_in = ci * k * k
        bound = math.sqrt(2) * math.sqrt(3 / fan_in)
        w_want = np.random.rand(k, k, ci, co) * 2 * bound - bound
        b_bound = 1 / math.sqrt(fan_in)
        b_want = np.random.rand(co) * 2 * b_bound - b_bound
        np.random.seed(seed)
        f = Conv(ci, co, k, stride=s)
        what = f"Conv({ci}, {co}, {k}, stride={s})"
        expect(isinstance(getattr(f, "weight", None), nn.Parameter) and isinstance(getattr(f, "bias", None), nn.Parameter),
               f"{what}: weight and bias must be nn.Parameter attributes")
        expect_close(f.weight, w_want, rtol=1e-5, atol=1e-6,
                     what=f"{what}.weight after np.random.seed({seed}): drawn first, kaiming_uniform with fan_in = "
                          "C_in * K * K and shape (K, K, C_in, C_out)")
        expect_close(f.bias, b_want, rtol=1e-5, atol=1e-6,
                     what=f"{what}.bias after np.random.seed({seed}): drawn after the weight")
        x = rng.standard_normal((n, ci, h, w))
        W, b = f.weight.numpy().astype(np.float64), f.bias.numpy().astype(np.float64)
        expect_close(f(ndl.Tensor(x, dtype="float32")), conv_nchw64(x, W, b, s),
                     what=f"{what} on an NCHW input of shape {x.shape}", inputs={"x": x}, rtol=1e-4, atol=1e-4)
        cases += 3
        if seed < 3:
            f64 = Conv(ci, co, k, stride=s, dtype="float64")
            W64, b64 = f64.weight.numpy(), f64.bias.numpy()
            input_gradient_check(f64, x, lambda a: conv_nchw64(a, W64, b64, s), what)
            expect(f64.weight.grad is not None and f64.bias.grad is not None,
                   f"{what}: after backward, weight and bias must have gradients (build the output from them with needle ops)")
            cases += 1
    f = Conv(2, 3, 3, bias=False)
    expect(getattr(f, "bias", None) is None and len(f.parameters()) == 1, "Conv(2, 3, 3, bias=False) must have no bias")
    return cases + 1


# --- BatchNorm2d ----------------------------------------------------------------------------------------------------

def _bn2d64(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    mean = x.mean(axis=(0, 2, 3), keepdims=True)
    var = x.var(axis=(0, 2, 3), keepdims=True)
    return w.reshape(1, -1, 1, 1) * (x - mean) / np.sqrt(var + eps) + b.reshape(1, -1, 1, 1)


@exercise_check("cnn.nn.BatchNorm2d", target=f"{NN}:BatchNorm2d", hint="batch normalisation of each channel")
def check_batchnorm2d(BatchNorm2d: type) -> int:
    rng = rng_for("cnn.nn.BatchNorm2d")
    cases = 0
    for n, c, h, w in ((2, 3, 4, 5), (4, 2, 3, 3), (1, 4, 2, 6)):
        x = rng.standard_normal((n, c, h, w)) * rng.uniform(0.5, 3, size=(1, c, 1, 1)) + rng.normal(0, 3, (1, c, 1, 1))
        bn = BatchNorm2d(c, dtype="float64")
        wt, bt = rng.standard_normal(c), rng.standard_normal(c)
        bn.weight.data, bn.bias.data = ndl.Tensor(wt, dtype="float64"), ndl.Tensor(bt, dtype="float64")
        what = f"BatchNorm2d({c}) on an NCHW input of shape {x.shape}"
        expect_close(bn(ndl.Tensor(x, dtype="float64")), _bn2d64(x, wt, bt), inputs={"x": x},
                     what=f"{what} in training mode (each channel normalised over N, H and W)", rtol=1e-6, atol=1e-6)
        running_mean = 0.9 * np.zeros(c) + 0.1 * x.mean(axis=(0, 2, 3))
        running_var = 0.9 * np.ones(c) + 0.1 * x.var(axis=(0, 2, 3))
        expect_close(bn.running_mean, running_mean, what=f"{what}: running_mean after one batch", rtol=1e-6, atol=1e-6)
        expect_close(bn.running_var, running_var, what=f"{what}: running_var after one batch (biased variance, "
                                                       "over N, H and W)", rtol=1e-6, atol=1e-6)
        _grad_check(bn, x, lambda a: _bn2d64(a, wt, bt), what)
        bn.eval()
        x2 = rng.standard_normal((2, c, h, w))
        want = (wt.reshape(1, -1, 1, 1) * (x2 - running_mean.reshape(1, -1, 1, 1))
                / np.sqrt(running_var.reshape(1, -1, 1, 1) + 1e-5) + bt.reshape(1, -1, 1, 1))
        expect_close(bn(ndl.Tensor(x2, dtype="float64")), want, inputs={"x": x2},
                     what=f"{what} in eval mode (normalise with the running statistics)", rtol=1e-6, atol=1e-6)
        cases += 4
    return cases


def _grad_check(bn: Any, x: np.ndarray, numpy_fn: Callable, what: str) -> None:
    """The input gradient of a training-mode BatchNorm2d without moving its running statistics further."""
    saved = bn.running_mean, bn.running_var
    input_gradient_check(bn, x, numpy_fn, what)
    bn.running_mean, bn.running_var = saved


# --- ResNet9 --------------------------------------------------------------------------------------------------------

def _reference_resnet9() -> nn.Module:
    """needle's own ResNet9, built by the reference __init__ even while the learner's methods sit on the class."""
    cls = reference(f"{MODELS}:ResNet9")
    model = cls.__new__(cls)
    reference(f"{MODELS}:ResNet9.__init__")(model)
    return model


@exercise_check("cnn.ResNet9", target=f"{MODELS}:ResNet9", hint="the course's ResNet9")
def check_resnet9(ResNet9: type) -> int:
    np.random.seed(0)
    model = ResNet9()
    params = model.parameters()
    count = sum(int(np.prod(p.shape)) for p in params)
    expect(count == 431946, f"ResNet9() has {count} parameters in {len(params)} tensors; the course's has 431,946 "
                            "(check each block's channels: the course's figure labels the block after ConvBN(32, 64, 3, 2) as "
                            "ConvBN(32, 128, 3, 2), a typo for 64 -> 128)")
    np.random.seed(0)
    ref_model = _reference_resnet9()
    ref_params = ref_model.parameters()
    expect(len(params) == len(ref_params), f"ResNet9 has {len(params)} parameter tensors, the course's "
                                           f"{len(ref_params)}")
    for i, (p, q) in enumerate(zip(params, ref_params)):
        expect(p.shape == q.shape, f"ResNet9 parameter {i} has shape {p.shape}, the course's {q.shape}: create the "
                                   "modules in the order of the figure")
        expect_close(p, q, what=f"ResNet9 parameter {i} (shape {p.shape}) after np.random.seed(0): create the modules "
                                "in the order of the figure, so the random draws come in the course's order", **TOL)
    x = rng_for("cnn.ResNet9").standard_normal((2, 3, 32, 32)).astype(np.float32)
    got = model(ndl.Tensor(x))
    expect_close(got, ref_model.model(ndl.Tensor(x)), what="ResNet9()(x) for a batch of two 3x32x32 images, vs the course's "
                                                     "model with the same weights (train mode)", rtol=1e-4, atol=1e-4)
    expect(len(model.parameters()) == len(params), "ResNet9: calling the model must not add parameters")
    return 4


# --- one epoch on CIFAR-10 ------------------------------------------------------------------------------------------

TRAINING = "needle.apps.training"


def _tiny_cnn() -> nn.Module:
    return nn.Sequential(nn.Conv(3, 4, 3, stride=2), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(64, 10))


def _image_loader(n: int, batch_size: int, shuffle: bool) -> Any:
    rng = rng_for(f"cnn.epoch_general_cifar10.{n}")
    images = rng.uniform(0, 1, size=(n, 3, 8, 8)).astype(np.float32)
    labels = rng.integers(0, 10, size=n)
    return ndl.data.DataLoader(ndl.data.NDArrayDataset(images, labels), batch_size=batch_size, shuffle=shuffle)


@exercise_check("cnn.epoch_general_cifar10", target=f"{TRAINING}:epoch_general_cifar10",
                hint="one pass over a CIFAR-10 loader")
def check_epoch_general_cifar10(epoch: Callable) -> int:

    reference_epoch = reference(f"{TRAINING}:epoch_general_cifar10")
    cases = 0
    for training in (False, True):
        results = []
        for run in (epoch, reference_epoch):
            np.random.seed(0)
            model = _tiny_cnn()
            opt = ndl.optim.Adam(model.parameters(), lr=0.01) if training else None
            loader = _image_loader(80, 32, shuffle=training)
            np.random.seed(0)
            got = run(loader, model, nn.SoftmaxLoss(), opt)
            results.append((got, model.parameters()[0].numpy(), model.training))
        got, want = results[0][0], results[1][0]
        mode = "a training epoch (Adam)" if training else "an evaluation epoch (no optimizer)"
        what = f"epoch_general_cifar10 for {mode} of a small conv net on 80 images in batches of 32"
        expect(isinstance(got, tuple) and len(got) == 2, f"{what} must return (accuracy, average loss), got {got!r}")
        expect(all(isinstance(v, (float, int, np.floating, np.integer)) for v in got),
               f"{what} returned {[type(v).__name__ for v in got]}: return plain numbers (float(loss.numpy())), not "
               "Tensors, which keep every batch's graph alive")
        expect(results[0][2] == training, f"{what}: the model must be in {'training' if training else 'eval'} mode "
                                          "(model.train() with an optimizer, model.eval() without)")
        expect_close(got, want, what=f"{what}: (accuracy, loss averaged over the samples), np.random.seed(4) at "
                                     "the start as in the course", **TOL)
        expect_close(results[0][1], results[1][1], what=f"{what}: the first weight afterwards", **TOL)
        cases += 2
    sizes = []
    np.random.seed(0)
    model = _tiny_cnn()
    opt = ndl.optim.SGD(model.parameters(), lr=0.05)
    for batches in (2, 4):
        epoch(_image_loader(16 * batches, 16, shuffle=False), model, nn.SoftmaxLoss(), opt)
        sizes.append(graph_size(model, opt))
    expect(sizes[1] <= sizes[0], "epoch_general_cifar10: " + GRAPH_GROWS.format(sizes=sizes).replace("step", "batch", 1))
    return cases + 1


set_hints({
    "cnn.NDArray.pad": (
        "NDArray.pad(axes): a new array with zeros around this one, one (left, right) pair of widths per axis, as "
        "np.pad's pad_width",
        ["Allocate the bigger array filled with zeros, then write this array into the middle of it: the NDArray "
         "already knows how to write into a view (setitem).",
         "The new length of each axis is left + n + right; this array lands at left .. left + n - 1 along it.",
         "self.device.full(new_shape, 0.0, dtype=self.dtype) makes the zeros; index it with one slice per axis and "
         "assign self."]),
    "cnn.NDArray.flip": (
        "NDArray.flip(axes): a compact copy of this array reversed along the given axes, made from a view with "
        "negative strides",
        ["Reversing an axis needs no data movement: start at that axis's last element and walk backwards. A view "
         "with a negative stride does exactly that; compact() then copies it into a fresh array.",
         "For each flipped axis: the offset grows by (shape[ax] - 1) * strides[ax] (start at the last element), and "
         "the stride changes sign. Start from this view's own offset, which need not be 0.",
         "NDArray.make(shape, strides, device=self.device, handle=self._handle, offset=...) builds the view over the "
         "same buffer; return its compact()."]),
    "cnn.Flip": (
        "the Flip op: compute reverses the raw array along self.axes; gradient is the partial adjoint",
        ["compute works on NDArrays: the array module has a flip function (your NDArray.flip). The gradient: "
         "flipping is a permutation of the entries, so its adjoint moves each out_grad entry back to where it came "
         "from.",
         "Reversing twice is the identity, so the adjoint of a flip is the same flip, applied with needle ops to "
         "out_grad."]),
    "cnn.Dilate": (
        "the Dilate op: compute inserts self.dilation zeros after every element along self.axes; gradient is the "
        "partial adjoint",
        ["compute: a zero array whose dilated axes are (1 + dilation) times longer, with the input written into every "
         "(1 + dilation)-th position (a view with a step). gradient: only those positions came from the input.",
         "The output's dilated axes have length n * (1 + dilation); the input sits at indices 0, 1 + d, 2 (1 + d), "
         "... along each of them. The adjoint keeps exactly those entries of out_grad: that is another op of this "
         "chapter.",
         "a.device.full(shape, 0.0, dtype=a.dtype); index with slice(None, None, d + 1) on the dilated axes and "
         "slice(None) elsewhere, and assign a. The gradient calls undilate on out_grad."]),
    "cnn.UnDilate": (
        "the UnDilate op: compute keeps every (1 + dilation)-th element along self.axes; gradient is the partial "
        "adjoint",
        ["UnDilate is Dilate's inverse: forward it picks out the entries Dilate placed. Its adjoint puts out_grad "
         "back at those positions, with zeros between them.",
         "compute: a view of a with a step of 1 + dilation on the dilated axes. gradient: dilate out_grad with the "
         "same axes and dilation."]),
    "cnn.Conv.compute": (
        "the forward of Conv on raw NDArrays: NHWC input A, (K, K, C_in, C_out) kernel B, zero padding "
        "self.padding and stride self.stride, computed as im2col and one matrix product",
        ["Pad H and W, then view the padded input as every K x K x C_in window at once: an array of shape "
         "(N, H_out, W_out, K, K, C_in) over the same buffer, built from strides alone (no copy). Flatten each "
         "window into a row and the convolution is one matrix product with the kernel flattened the same way.",
         "For a compact NHWC array with strides (Ns, Hs, Ws, Cs), the window view has strides (Ns, Hs * stride, "
         "Ws * stride, Hs, Ws, Cs); H_out = (H + 2P - K) // stride + 1 (H after padding: H + 2P). The rows are "
         "(N * H_out * W_out, K * K * C_in), the kernel (K * K * C_in, C_out).",
         "A.pad(...), .compact(), .as_strided(shape, strides), .compact().reshape(...), @ with "
         "B.compact().reshape(...), and a last reshape to (N, H_out, W_out, C_out)."]),
    "cnn.Conv.gradient": (
        "the partial adjoints of Conv with respect to the input and the kernel, built from needle ops (conv, flip, "
        "dilate, transpose)",
        ["Both adjoints are convolutions again. Each output pixel touched a window of the input through the kernel, "
         "so the input's adjoint sends out_grad back through the kernel turned around (flipped in space, C_in and "
         "C_out exchanged), with enough padding to reach every input pixel. The kernel's adjoint correlates the "
         "input with out_grad, with the batch axis playing the channel's role. A stride s skipped positions: put "
         "s - 1 zeros back between out_grad's pixels first.",
         "With out_grad dilated by stride - 1 on H and W (when stride > 1): grad_X = conv(out_grad, the kernel "
         "flipped on axes (0, 1) with its last two axes swapped, padding K - 1 - P); grad_W = conv(X with axes 0 "
         "and 3 swapped, out_grad arranged as (H', W', N, C_out), padding P), then arranged back to (K, K, C_in, "
         "C_out).",
         "ops.dilate(out_grad, (1, 2), stride - 1), ops.flip(W, (0, 1)), ops.transpose(t, (i, j)) swaps two axes, "
         "ops.conv(a, b, padding=...) (its stride defaults to 1, its padding to 1: pass it). X, W = node.inputs."]),
    "cnn.kaiming_uniform": (
        "kaiming_uniform with an optional shape: draw that shape (a convolution kernel) with the bound computed "
        "from fan_in",
        ["A kernel (K, K, C_in, C_out) is not a matrix, but each output still sums fan_in = K * K * C_in products, "
         "so He's bound is computed from the fans and only the drawn shape changes.",
         "bound = sqrt(2) * sqrt(3 / fan_in); the shape is `shape` when given, else (fan_in, fan_out).",
         "init.rand(*shape, low=-bound, high=bound, **kwargs)."]),
    "cnn.nn.Conv": (
        "the Conv module: NCHW in and out, square kernel, 'same' padding K // 2, weight (K, K, C_in, C_out) drawn "
        "before the bias",
        ["The op works on NHWC: move the channels last, convolve, add the bias to every pixel, move them back. "
         "The weight is Kaiming-uniform with the kernel's fans; the bias is uniform in +-1 / sqrt(fan_in), as "
         "PyTorch does.",
         "fan_in = C_in * K * K, fan_out = C_out * K * K; weight = kaiming_uniform(fan_in, fan_out, shape=(K, K, C_in, "
         "C_out)); bias = init.rand(C_out, low=-1/sqrt(fan_in), high=1/sqrt(fan_in)); padding = K // 2.",
         "ops.transpose swaps two axes: two swaps take NCHW to NHWC and two take it back. ops.conv(x, weight, "
         "stride=..., padding=...); the bias needs reshape((1, 1, 1, C_out)) and broadcast_to. Pass device and "
         "dtype to init."]),
    "cnn.nn.BatchNorm2d": (
        "BatchNorm2d: normalise each channel of an NCHW input over N, H and W, with BatchNorm1d doing the work",
        ["BatchNorm1d normalises the columns of an (rows, features) matrix. Make the channels the columns and every "
         "(n, h, w) position a row, normalise, and restore the layout.",
         "NCHW -> NHWC (channels last) -> reshape (N*H*W, C) -> BatchNorm1d -> reshape (N, H, W, C) -> NCHW. A "
         "reshape straight from NCHW to (N*H*W, C) mixes the channels up.",
         "ops.transpose swaps two axes; super().forward(rows) is BatchNorm1d's forward."]),
    "cnn.epoch_general_cifar10": (
        "one pass over a CIFAR-10 loader: train when an optimizer is given, evaluate otherwise; return (accuracy, "
        "mean loss) over the samples",
        ["Chapter 03's epoch again, with accuracy instead of the error rate: set the model's mode, then per batch "
         "a forward pass and the loss; with an optimizer, reset the gradients, backward and step. Accumulate the "
         "correct predictions and the loss weighted by the batch size.",
         "accuracy = correct predictions / samples (prediction = argmax of the logits); mean loss = sum of "
         "loss * batch size / samples. np.random.seed(4) first, as the course does.",
         "Read numbers with .numpy() and float(...), so that no batch's graph stays alive."]),
    "cnn.ResNet9": (
        "the course's ResNet9: convolution blocks with batch norm and ReLU, two residual pairs, and two linear "
        "layers, created in the figure's order",
        ["A ConvBN block is Conv -> BatchNorm2d -> ReLU. The network: two strided blocks, a residual pair, two more "
         "strided blocks, another residual pair, then Flatten, Linear, ReLU, Linear.",
         "ConvBN(3, 16, 7, 4), ConvBN(16, 32, 3, 2), Residual(ConvBN(32, 32, 3, 1), ConvBN(32, 32, 3, 1)), "
         "ConvBN(32, 64, 3, 2), ConvBN(64, 128, 3, 2), Residual(ConvBN(128, 128, 3, 1), ConvBN(128, 128, 3, 1)), "
         "Flatten, Linear(128, 128), ReLU, Linear(128, 10).",
         "A helper function that returns nn.Sequential(nn.Conv(...), nn.BatchNorm2d(...), nn.ReLU()); wrap the whole "
         "thing in one nn.Sequential stored as an attribute, and pass device and dtype to every layer."]),
})
