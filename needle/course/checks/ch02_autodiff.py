"""Chapter 02 (course hw1): each op's compute and gradient, topological sort, reverse-mode AD, softmax loss, nn_epoch.

Op forwards are compared with numpy on random shapes and strided views (float32); op gradients are called
directly (so they do not depend on the learner's autodiff) and compared with float64 central differences.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, Callable

import numpy as np

import needle as ndl

from ..cases import numerical_gradients, random_shape, rng_for, softmax_loss64
from ..compare import expect, expect_close
from ..tensors import raw_array
from ..install import reference
from ..registry import exercise_check, set_hints, set_uses

OPS = "needle.ops.ops_mathematic"
Case = tuple[tuple, list[tuple[int, ...]]]  # (constructor args, input shapes)


def _swap_last(a: np.ndarray, axes: Any) -> np.ndarray:
    i, j = axes if axes is not None else (-2, -1)
    return np.swapaxes(a, i, j)


@dataclass(frozen=True)
class OpSpec:
    """One op exercise pair: its numpy meaning, its cases, the input domain and the hints."""

    name: str
    numpy: Callable[..., np.ndarray]  # numpy(args, *inputs)
    cases: Callable[[np.random.Generator], list[Case]]
    compute_hint: str
    gradient_hint: str
    domain: str = "normal"  # "normal", "positive" or "nonzero"


def _unary(rng: np.random.Generator, args: tuple = ()) -> list[Case]:
    return [(args, [random_shape(rng)]) for _ in range(3)]


def _binary(rng: np.random.Generator) -> list[Case]:
    return [((), [shape, shape]) for shape in (random_shape(rng) for _ in range(3))]


SPECS = [
    OpSpec("PowerScalar", lambda args, a: a ** args[0],
           lambda rng: _unary(rng, (3,)) + _unary(rng, (-1.5,))[:2],
           "a ** self.scalar", "d(a^s)/da = s * a^(s-1): out_grad * self.scalar * a ** (self.scalar - 1)", "positive"),
    OpSpec("EWisePow", lambda args, a, b: a ** b, _binary,
           "a ** b", "d/da = b * a^(b-1), d/db = a^b * log(a)", "positive"),
    OpSpec("EWiseDiv", lambda args, a, b: a / b, _binary,
           "a / b", "d/da = 1/b, d/db = -a/b^2 (as needle ops on node.inputs)", "nonzero"),
    OpSpec("DivScalar", lambda args, a: a / args[0], lambda rng: _unary(rng, (2.5,)),
           "a / self.scalar", "out_grad / self.scalar"),
    OpSpec("MatMul", lambda args, a, b: a @ b,
           lambda rng: [((), [(3, 4), (4, 5)]), ((), [(6, 3, 2), (6, 2, 3)]), ((), [(3, 2), (3, 2, 3)]),
                        ((), [(2, 2, 3, 4), (4, 1)]), ((), [(1, 3, 4), (5, 4, 2)])],
           "a @ b", "out_grad @ b^T and a^T @ out_grad, then sum over the batch axes an input was broadcast over"),
    OpSpec("Summation", lambda args, a: np.sum(a, axis=args[0]),
           lambda rng: [((None,), [(3, 4)]), (((1,),), [(3, 4)]), ((0,), [(5, 2)]), (((0, 2),), [(2, 3, 4)])],
           "array_api.sum over self.axes (None: everything; an int or a tuple of axes)",
           "reshape out_grad to the input shape with 1s at the summed axes, then broadcast_to the input shape"),
    OpSpec("BroadcastTo", lambda args, a: np.broadcast_to(a, args[0]),
           lambda rng: [(((3, 4),), [(1, 4)]), (((2, 3, 4),), [(3, 1)]), (((3, 2),), [(1, 1)]), (((4, 3),), [(3,)])],
           "array_api.broadcast_to(a, self.shape)",
           "sum out_grad over the axes broadcasting added or stretched, then reshape to the input shape"),
    OpSpec("Reshape", lambda args, a: np.reshape(a, args[0]),
           lambda rng: [(((4, 3),), [(3, 4)]), (((2, 3, 2),), [(12,)]), (((6,),), [(2, 1, 3)])],
           "array_api.reshape(a, self.shape) (compact a first if it is a strided view)",
           "reshape out_grad back to the input's shape"),
    OpSpec("Negate", lambda args, a: -a, _unary, "-a", "-out_grad"),
    OpSpec("Transpose", lambda args, a: _swap_last(a, args[0]),
           lambda rng: [((None,), [(3, 4)]), ((None,), [(2, 3, 4)]), (((0, 2),), [(2, 3, 4)]), (((1, 0),), [(3, 5)])],
           "swap the two axes self.axes (default: the last two); not a full permutation",
           "transpose out_grad with the same two axes"),
    OpSpec("Log", lambda args, a: np.log(a), _unary, "array_api.log(a)", "out_grad / a", "positive"),
    OpSpec("Exp", lambda args, a: np.exp(a), _unary, "array_api.exp(a)", "out_grad * exp(a) (that is the node itself)"),
    OpSpec("ReLU", lambda args, a: np.maximum(a, 0), _unary, "array_api.maximum(a, 0)",
           "out_grad times the mask a > 0 (read node.inputs[0].realize_cached_data(); not ReLU of ReLU)", "nonzero"),
]


def _sample(rng: np.random.Generator, shape: tuple[int, ...], domain: str) -> np.ndarray:
    if domain == "positive":
        return rng.uniform(0.5, 2.0, size=shape)
    if domain == "nonzero":
        return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.3, 2.0, size=shape)
    return rng.standard_normal(shape)


def _op_class(name: str) -> type:
    return getattr(ndl.ops.ops_mathematic, name)


def _check_compute(spec: OpSpec, impl: Any) -> int:
    """Forward of the learner's compute on every case, contiguous and strided, against numpy."""
    rng = rng_for(f"autodiff.{spec.name}.compute")
    cases = 0
    for args, shapes in spec.cases(rng):
        xs = [_sample(rng, s, spec.domain).astype(np.float32) for s in shapes]
        op = _op_class(spec.name)(*args)
        for strided in (False, True):
            got = op.compute(*[raw_array(x, "float32", strided) for x in xs])
            expect_close(got, spec.numpy(args, *xs), what=f"{spec.name}{args}.compute",
                         inputs={f"input {i}" + (" (strided view)" if strided else ""): x for i, x in enumerate(xs)},
                         rtol=1e-5, atol=1e-5)
            cases += 1
    return cases


def _check_gradient(spec: OpSpec, impl: Any) -> int:
    """The learner's gradient, called on a node computed by the reference forward, against central differences."""
    rng = rng_for(f"autodiff.{spec.name}.gradient")
    ref_compute = reference(f"{OPS}:{spec.name}.compute")
    cases = 0
    for args, shapes in spec.cases(rng):
        xs = [_sample(rng, s, spec.domain) for s in shapes]
        op = _op_class(spec.name)(*args)
        inputs = [ndl.Tensor(x, dtype="float64") for x in xs]
        node = ndl.Tensor.__new__(ndl.Tensor)
        node._init(op, inputs, cached_data=ref_compute(op, *[t.realize_cached_data() for t in inputs]))
        out_grad = rng.standard_normal(node.shape)
        adjoint = ndl.Tensor(out_grad, dtype="float64")
        grads = op.gradient_as_tuple(adjoint, node)
        expect(len(grads) == len(xs), f"{spec.name}.gradient returned {len(grads)} gradients for {len(xs)} inputs")
        numeric = numerical_gradients(lambda *a: spec.numpy(args, *a), xs, out_grad)
        for i, (got, want) in enumerate(zip(grads, numeric)):
            expect(isinstance(got, ndl.Tensor), f"{spec.name}.gradient must return Tensors built from needle ops, "
                                                f"got {type(got).__name__} for input {i}")
            expect(got is adjoint or not got.is_leaf(),
                   f"{spec.name}.gradient for input {i} is a new leaf Tensor (computed outside the graph, e.g. in "
                   "numpy): build it from needle ops on out_grad and node.inputs so it can be differentiated again")
            expect_close(got, want, what=f"{spec.name}{args}.gradient for input {i} (float64, vs central differences)",
                         inputs={**{f"input {j}": x for j, x in enumerate(xs)}, "out_grad": out_grad},
                         rtol=1e-6, atol=1e-6)
        _check_second_derivative(spec, args, xs, inputs, adjoint, out_grad, grads, rng)
        cases += 1
    return cases


def _reference_gradient(spec: OpSpec, args: tuple, xs: list[np.ndarray], out_grad: np.ndarray) -> list[np.ndarray]:
    """needle's own partial adjoints at xs, as numpy arrays (the oracle for second derivatives)."""
    op = _op_class(spec.name)(*args)
    inputs = [ndl.Tensor(x, dtype="float64") for x in xs]
    node = ndl.Tensor.__new__(ndl.Tensor)
    node._init(op, inputs, cached_data=reference(f"{OPS}:{spec.name}.compute")(op, *[t.realize_cached_data()
                                                                                    for t in inputs]))
    grads = reference(f"{OPS}:{spec.name}.gradient")(op, ndl.Tensor(out_grad, dtype="float64"), node)
    grads = grads if isinstance(grads, tuple) else (grads,)
    return [g.numpy() for g in grads]


def _check_second_derivative(spec: OpSpec, args: tuple, xs: list[np.ndarray], inputs: list, adjoint: Any,
                             out_grad: np.ndarray, grads: tuple, rng: np.random.Generator) -> None:
    """Differentiate the learner's gradient once more (as the course's tests do) and compare with central
    differences of needle's own gradient: catches adjoints cut off the graph with .detach() or constants."""
    weights = [rng.standard_normal(np.shape(g.numpy())) for g in grads]
    total = None
    for g, w in zip(grads, weights):
        term = ndl.summation(g * ndl.Tensor(w, dtype="float64", requires_grad=False))
        total = term if total is None else total + term
    for t in inputs:
        t.grad = None
    total.backward()
    flat_w = np.concatenate([w.ravel() for w in weights])
    numeric = numerical_gradients(
        lambda *a: np.concatenate([g.ravel() for g in _reference_gradient(spec, args, list(a), out_grad)]),
        xs, flat_w)
    for j, (t, want) in enumerate(zip(inputs, numeric)):
        got = t.grad if getattr(t, "grad", None) is not None else np.zeros_like(want)
        expect_close(got, want, what=f"{spec.name}{args}: derivative of your gradient w.r.t. input {j} (a second "
                                     "derivative; the course's tests take them). A gradient cut off the graph (.detach(), "
                                     "numpy, a constant Tensor of values that depend on the input) gets this wrong",
                     inputs={**{f"input {k}": x for k, x in enumerate(xs)}, "out_grad": out_grad},
                     rtol=1e-5, atol=1e-5)


for _spec in SPECS:
    exercise_check(f"autodiff.{_spec.name}.compute", target=f"{OPS}:{_spec.name}.compute",
                   hint=_spec.compute_hint)(partial(_check_compute, _spec))
    exercise_check(f"autodiff.{_spec.name}.gradient", target=f"{OPS}:{_spec.name}.gradient",
                   hint=_spec.gradient_hint)(partial(_check_gradient, _spec))


# Graphs for topological sort and autodiff use only the ops the course gives (add, multiply and their scalar
# forms), so these checks do not depend on the learner's op exercises.
_GIVEN_OPS = {
    "add": (lambda a, b: a + b, lambda a, b: a + b),
    "mul": (lambda a, b: a * b, lambda a, b: a * b),
    "add_scalar": (lambda a, c: a + c, lambda a, c: a + c),
    "mul_scalar": (lambda a, c: a * c, lambda a, c: a * c),
}


def _random_recipe(rng: np.random.Generator, leaves: int, steps: int) -> list[tuple[str, int, Any]]:
    """A random DAG: each step applies a given op to earlier values (index) and another value or a scalar."""
    recipe = []
    for step in range(steps):
        count = leaves + step
        kind = str(rng.choice(list(_GIVEN_OPS)))
        i = int(rng.integers(max(0, count - 3), count))  # mostly recent values: deeper graphs
        other = int(rng.integers(0, count)) if kind in ("add", "mul") else float(np.round(rng.uniform(-2, 2), 2))
        recipe.append((kind, i, other))
    return recipe


def _evaluate(recipe: list, leaves: list, tensors: bool) -> list:
    values = list(leaves)
    for kind, i, other in recipe:
        fn = _GIVEN_OPS[kind][0 if tensors else 1]
        values.append(fn(values[i], values[other] if isinstance(other, int) else other))
    return values


def _describe_order(nodes: list, names: dict[int, str]) -> str:
    return "[" + ", ".join(names.get(id(n), "?") for n in nodes) + "]"


@exercise_check("autodiff.find_topo_sort", target="needle.autograd:find_topo_sort",
                hint="post-order depth-first search: visit node.inputs left to right, append a node after its "
                     "inputs, skip nodes already visited")
def check_find_topo_sort(find_topo_sort: Callable) -> int:
    rng = rng_for("autodiff.find_topo_sort")
    ref = reference("needle.autograd:find_topo_sort")
    cases = 0
    for leaves, steps in ((1, 3), (2, 6), (3, 12), (2, 25)):
        recipe = _random_recipe(rng, leaves, steps)
        values = _evaluate(recipe, [ndl.Tensor(rng.standard_normal(2)) for _ in range(leaves)], tensors=True)
        names = {id(v): f"v{k}" for k, v in enumerate(values)}
        for outputs in ([values[-1]], [values[-1], values[leaves]]):
            got, want = list(find_topo_sort(outputs)), ref(outputs)
            steps_text = "; ".join(f"v{leaves + s} = {k}(v{i}, {'v%d' % o if isinstance(o, int) else o})"
                                   for s, (k, i, o) in enumerate(recipe))
            problem = _topo_problem(got, want, names)
            expect(problem is None,
                   f"find_topo_sort({_describe_order(outputs, names)}) gave {_describe_order(got, names)}: {problem}\n"
                   f"  one valid order: {_describe_order(want, names)}\n  graph: {steps_text}")
            cases += 1
    return cases


def _topo_problem(got: list, want: list, names: dict[int, str]) -> str | None:
    """Why `got` is not a topological order of the nodes in `want` (any valid order passes), or None."""
    seen: dict[int, int] = {}
    for position, node in enumerate(got):
        if id(node) in seen:
            return f"{names.get(id(node), '?')} appears twice"
        seen[id(node)] = position
    missing = [names.get(id(n), "?") for n in want if id(n) not in seen]
    if missing:
        return f"it leaves out {', '.join(missing)}, which the outputs depend on"
    extra = [names.get(id(n), "?") for n in got if id(n) not in {id(w) for w in want}]
    if extra:
        return f"it holds {', '.join(extra)}, which the outputs do not depend on"
    for node in got:
        for parent in node.inputs:
            if seen[id(parent)] > seen[id(node)]:
                return (f"{names.get(id(node), '?')} comes before its input {names.get(id(parent), '?')} "
                        "(every node must come after all of its inputs)")
    return None


@exercise_check("autodiff.compute_gradient_of_variables", target="needle.autograd:compute_gradient_of_variables",
                hint="walk reversed(find_topo_sort([output])); a node's adjoint is sum_node_list of the partial "
                     "adjoints from its users; store it in node.grad and pass op.gradient_as_tuple to the inputs")
def check_compute_gradient_of_variables(compute_gradients: Callable) -> int:
    rng = rng_for("autodiff.compute_gradient_of_variables")
    cases = 0
    for leaves, steps in ((1, 2), (2, 5), (3, 10), (2, 20)):
        recipe = _random_recipe(rng, leaves, steps)
        xs = [rng.standard_normal(3) for _ in range(leaves)]
        tensors = [ndl.Tensor(x, dtype="float64") for x in xs]
        output = _evaluate(recipe, tensors, tensors=True)[-1]
        out_grad = rng.standard_normal(3)
        compute_gradients(output, ndl.Tensor(out_grad, dtype="float64"))
        numeric = numerical_gradients(lambda *a: _evaluate(recipe, list(a), tensors=False)[-1], xs, out_grad)
        for k, (tensor, want) in enumerate(zip(tensors, numeric)):
            got = getattr(tensor, "grad", None)
            if not np.any(want) and got is None:  # the output does not depend on this leaf
                continue
            expect(isinstance(got, ndl.Tensor), f"leaf v{k} has .grad = {got!r}, expected a Tensor")
            expect_close(got, want, what=f"leaf v{k}.grad (float64, vs central differences)",
                         inputs={f"v{j}": x for j, x in enumerate(xs)}, rtol=1e-6, atol=1e-6)
        expect_close(output.grad, out_grad, what="output.grad (should be out_grad itself)")
        cases += 1
    # gradients of gradients (the course's tests take them): d/dx of sum(v * d(x*x*x)/dx) = 6 x v
    x = rng.uniform(0.5, 2.0, size=4)
    v = rng.standard_normal(4)
    xt = ndl.Tensor(x, dtype="float64")
    compute_gradients(xt * xt * xt, ndl.Tensor(np.ones(4), dtype="float64"))
    first = xt.grad
    expect(isinstance(first, ndl.Tensor), f"x.grad = {first!r} after the first pass, expected a Tensor")
    expect_close(first, 3 * x**2, what="x.grad of y = x*x*x (float64)", inputs={"x": x})
    xt.grad = None
    compute_gradients(first, ndl.Tensor(v, dtype="float64"))
    expect(isinstance(getattr(xt, "grad", None), ndl.Tensor),
           "differentiating x.grad once more gave x no gradient: the adjoints you store must stay needle Tensors "
           "that belong to the graph (no .detach(), no numpy, no new Tensor(...) of their values), so that a "
           "gradient can be differentiated again")
    expect_close(xt.grad, 6 * x * v, what="second derivative: gradient of sum(v * x.grad) for y = x*x*x (float64)",
                 inputs={"x": x, "v": v}, rtol=1e-6, atol=1e-6)
    return cases + 1


@exercise_check("autodiff.softmax_loss", target="needle.apps.simple_ml:softmax_loss",
                hint="ndl.log(ndl.summation(ndl.exp(Z), axes=(1,))) minus ndl.summation(Z * y_one_hot, axes=(1,)), "
                     "summed and divided by the batch size")
def check_softmax_loss(softmax_loss: Callable) -> int:
    rng = rng_for("autodiff.softmax_loss")
    cases = 0
    for _ in range(3):
        m, k = int(rng.integers(1, 8)), int(rng.integers(2, 6))
        Z, y = rng.standard_normal((m, k)), rng.integers(0, k, size=m)
        one_hot = np.eye(k)[y]
        Zt = ndl.Tensor(Z, dtype="float64")
        loss = softmax_loss(Zt, ndl.Tensor(one_hot, dtype="float64", requires_grad=False))
        expect(isinstance(loss, ndl.Tensor), f"softmax_loss must return a Tensor, got {type(loss).__name__}")
        expect_close(loss, softmax_loss64(Z, y), what="softmax_loss(Z, y_one_hot)", inputs={"Z": Z, "y": y},
                     rtol=1e-10, atol=1e-10)
        loss.backward()
        numeric = numerical_gradients(lambda z: softmax_loss64(z, y), [Z], np.ones(()))[0]
        expect_close(Zt.grad, numeric, what="gradient of softmax_loss w.r.t. Z (float64)", inputs={"Z": Z, "y": y},
                     rtol=1e-6, atol=1e-7)
        cases += 1
    return cases


@exercise_check("autodiff.nn_epoch", target="needle.apps.simple_ml:nn_epoch",
                hint="per minibatch: Tensors for X and the one-hot y, loss = softmax_loss(relu(X @ W1) @ W2, y), "
                     "loss.backward(), then new W = Tensor(W.numpy() - lr * W.grad.numpy())")
def check_nn_epoch(nn_epoch: Callable) -> int:
    rng = rng_for("autodiff.nn_epoch")
    ref = reference("needle.apps.simple_ml:nn_epoch")
    cases = 0
    for m, n, hidden, k, batch in ((20, 5, 6, 3, 7), (30, 4, 5, 4, 10)):
        X = (rng.standard_normal((m, n)) / np.sqrt(n)).astype(np.float32)
        y = rng.integers(0, k, size=m).astype(np.uint8)
        W1 = (rng.standard_normal((n, hidden)) / np.sqrt(hidden)).astype(np.float32)
        W2 = (rng.standard_normal((hidden, k)) / np.sqrt(k)).astype(np.float32)
        got = nn_epoch(X, y, ndl.Tensor(W1), ndl.Tensor(W2), lr=0.2, batch=batch)
        want = ref(X, y, ndl.Tensor(W1), ndl.Tensor(W2), lr=0.2, batch=batch)
        expect(isinstance(got, tuple) and len(got) == 2, "nn_epoch must return the new (W1, W2)")
        for name, w in zip(("W1", "W2"), got):
            expect(isinstance(w, ndl.Tensor) and w.is_leaf(),
                   f"nn_epoch returned a {name} that is still a node of the graph (it was computed by needle ops, "
                   f"such as {name} - lr * {name}.grad): every step would chain onto the last, so the graph, the "
                   "memory and the time of backward grow with each step. Make the new weights fresh leaf Tensors "
                   "(computed in numpy, or .detach()ed)")
        for name, g, w in zip(("W1", "W2"), got, want):
            expect_close(g, w, what=f"{name} after one epoch (lr=0.2, batch={batch})", inputs={"X": X, "y": y},
                         rtol=1e-4, atol=1e-5)
        cases += 1
    return cases


_BACKEND = ("compute works on raw backend arrays (NDArray), not Tensors: use Python operators or array_api "
            "functions, never needle ops.")
_GRAD = ("gradient returns one partial adjoint per input (a tuple for two inputs), each a Tensor with that input's "
         "shape, built with needle ops from out_grad and node.inputs so it can be differentiated again.")

set_hints({
    "autodiff.PowerScalar.compute": (
        "the forward of PowerScalar: every element of the raw array raised to the op's integer or float scalar",
        [_BACKEND, "The op stores its exponent in self.scalar; raw arrays support Python's power operator."]),
    "autodiff.EWisePow.compute": (
        "the forward of EWisePow: elementwise power, the first array raised to the second",
        [_BACKEND, "Both inputs have the same shape; Python's power operator works elementwise on raw arrays."]),
    "autodiff.EWiseDiv.compute": (
        "the forward of EWiseDiv: the first raw array divided elementwise by the second",
        [_BACKEND, "Python's true-division operator works elementwise on two raw arrays of the same shape."]),
    "autodiff.DivScalar.compute": (
        "the forward of DivScalar: every element divided by the op's scalar",
        [_BACKEND, "The divisor is stored in self.scalar."]),
    "autodiff.MatMul.compute": (
        "the forward of MatMul: the matrix product of the two raw arrays, batched over leading axes",
        [_BACKEND, "Python has a matrix-multiplication operator, and raw arrays implement it (with broadcasting of "
                   "the batch axes, as numpy's does)."]),
    "autodiff.Summation.compute": (
        "the forward of Summation: the sum over the op's axes (all of them when the axes are None)",
        [_BACKEND, "array_api has a sum function that takes an axis argument: an int, a tuple of ints, or None."]),
    "autodiff.BroadcastTo.compute": (
        "the forward of BroadcastTo: the raw array broadcast to the op's target shape",
        [_BACKEND, "The target shape is self.shape; array_api has a function named like the op."]),
    "autodiff.Reshape.compute": (
        "the forward of Reshape: the raw array with the op's new shape (same elements, same order)",
        [_BACKEND, "The new shape is self.shape. A strided view cannot always be reshaped in place: make it "
                   "compact (contiguous) first, then use array_api's reshape."]),
    "autodiff.Negate.compute": (
        "the forward of Negate: every element with its sign flipped",
        [_BACKEND, "Raw arrays support unary minus."]),
    "autodiff.Transpose.compute": (
        "the forward of Transpose: swap two axes of the raw array (self.axes, or the last two when it is None); "
        "not a full permutation",
        [_BACKEND, "Work out the pair of axes first: self.axes if given, else the last two (ndim - 2, ndim - 1). "
                   "array_api has a function that swaps exactly two axes."]),
    "autodiff.Log.compute": (
        "the forward of Log: the natural logarithm of every element",
        [_BACKEND, "array_api has an elementwise natural log."]),
    "autodiff.Exp.compute": (
        "the forward of Exp: e raised to every element",
        [_BACKEND, "array_api has an elementwise exponential."]),
    "autodiff.ReLU.compute": (
        "the forward of ReLU: each element, or 0 where it is negative",
        [_BACKEND, "array_api has an elementwise maximum of an array and a scalar."]),
    "autodiff.Negate.gradient": (
        "the partial adjoint of Negate with respect to its input",
        [_GRAD, "w = -a, so dw/da = -1 and the adjoint of a is the adjoint of w with its sign flipped."]),
    "autodiff.PowerScalar.gradient": (
        "the partial adjoint of PowerScalar(s) with respect to its input",
        [_GRAD, "w = a^s, so dw/da = s a^(s-1); the partial adjoint is out_grad times that, elementwise.",
         "Take a from node.inputs[0]; Tensors support ** with a number and * with a Tensor or a number."]),
    "autodiff.EWisePow.gradient": (
        "the two partial adjoints of EWisePow, with respect to the base and to the exponent",
        [_GRAD, "w = a^b: dw/da = b a^(b-1) and dw/db = a^b ln a; multiply each by out_grad elementwise.",
         "a^b is the node itself (no need to recompute it); ndl.log builds the log; return a tuple of two."]),
    "autodiff.EWiseDiv.gradient": (
        "the two partial adjoints of EWiseDiv, with respect to the numerator and to the denominator",
        [_GRAD, "w = a / b: dw/da = 1 / b and dw/db = -a / b^2; multiply each by out_grad elementwise.",
         "Unpack a, b = node.inputs and return a tuple of two Tensor expressions."]),
    "autodiff.DivScalar.gradient": (
        "the partial adjoint of DivScalar(c) with respect to its input",
        [_GRAD, "w = a / c with c a constant, so dw/da = 1 / c."]),
    "autodiff.Log.gradient": (
        "the partial adjoint of Log with respect to its input",
        [_GRAD, "w = ln a, so dw/da = 1 / a; divide out_grad by the input Tensor, elementwise."]),
    "autodiff.Exp.gradient": (
        "the partial adjoint of Exp with respect to its input",
        [_GRAD, "w = e^a, so dw/da = e^a, and e^a is the output: the node itself, no need to recompute it."]),
    "autodiff.ReLU.gradient": (
        "the partial adjoint of ReLU with respect to its input",
        [_GRAD, "dw/da is 1 where a > 0 and 0 elsewhere: multiply out_grad by that 0/1 mask.",
         "The mask is a constant (its own derivative is 0): compare the raw input, "
         "node.inputs[0].realize_cached_data() > 0, and wrap it with Tensor.make_const."]),
    "autodiff.Reshape.gradient": (
        "the partial adjoint of Reshape with respect to its input",
        [_GRAD, "Reshaping only moves elements; the adjoint moves them back: the input's shape is "
                "node.inputs[0].shape, and ndl.reshape goes there."]),
    "autodiff.Transpose.gradient": (
        "the partial adjoint of Transpose with respect to its input",
        [_GRAD, "Swapping two axes is its own inverse: transpose out_grad with the same self.axes."]),
    "autodiff.Summation.gradient": (
        "the partial adjoint of Summation with respect to its input",
        [_GRAD, "Every input element along a summed axis contributes with derivative 1, so the adjoint is out_grad "
                "copied back along the summed axes.",
         "Build the shape keepdims=True would give (1 at each summed axis; all axes when self.axes is None; an int "
         "axis and negative axes too), reshape out_grad to it, then broadcast_to the input's shape."]),
    "autodiff.BroadcastTo.gradient": (
        "the partial adjoint of BroadcastTo: write the helper sum_to_shape(grad, shape) and use it",
        [_GRAD, "Broadcasting uses one input element many times, so its adjoint sums the contributions: sum over "
                "every axis broadcasting added (leading axes) or stretched (length 1 in the input, longer in grad).",
         "added = len(grad.shape) - len(shape); the axes to sum are range(added) plus added + i for each i with "
         "shape[i] == 1 and grad.shape[added + i] != 1; ndl.summation over that tuple (skip it when empty), then "
         "ndl.reshape to shape."]),
    "autodiff.MatMul.gradient": (
        "the two partial adjoints of MatMul, for batched and broadcast inputs too",
        [_GRAD, "For Z = AB: the adjoint of A is out_grad times B transposed, the adjoint of B is A transposed "
                "times out_grad (check the shapes: (m,p)(p,n) and (n,m)(m,p)).",
         "ndl.transpose swaps the last two axes; an input broadcast over batch axes was used once per batch, so "
         "finish each adjoint with sum_to_shape(..., that input's shape)."]),
    "autodiff.find_topo_sort": (
        "a list of every node reachable from node_list, each after all of its inputs, ending with the outputs",
        ["The course's way: a post-order depth-first search. To visit a node, first visit each of its inputs "
         "(left to right), then append the node. A visited set makes each node appear once.",
         "Keep a set of visited nodes and an output list; a helper visit(node) returns at once if the node was "
         "visited, marks it, visits node.inputs, then appends it. Call it for each node of node_list.",
         "Any valid topological order passes (Kahn's algorithm too). For very deep graphs, replace the recursion by "
         "an explicit stack."]),
    "autodiff.compute_gradient_of_variables": (
        "reverse-mode AD: store in node.grad the adjoint of every node the output depends on",
        ["Walk the nodes in reverse topological order, so a node is reached after all of its users have handed "
         "it their partial adjoints. Collect, per node, the list of contributions it received.",
         "Start with {output: [out_grad]}; for each node in reversed(find_topo_sort([output])): its adjoint is "
         "sum_node_list(its contributions); then for each input with its partial adjoint from "
         "node.op.gradient_as_tuple(adjoint, node), append the partial adjoint to that input's list.",
         "Skip nodes that received nothing and leaves (node.op is None) when passing on; skip None partial "
         "adjoints. Keep everything as needle Tensors (no .detach(), no numpy): the gradient must stay a graph."]),
    "autodiff.softmax_loss": (
        "the mean softmax loss of logits Z against one-hot labels, as a 0-d Tensor built from needle ops",
        ["Per row: log of the sum of exps of the logits, minus the logit of the true class. With one-hot labels, "
         "the true logit is the row sum of Z times the one-hot row.",
         "loss = (1/m) * sum_i ( log sum_j e^{Z_ij} - sum_j Z_ij Y_ij ); needle has exp, log and summation with "
         "axes=(1,) for row sums.",
         "Two row-sum Tensors of shape (m,), their difference summed to a scalar, divided by Z.shape[0]."]),
    "autodiff.nn_epoch": (
        "one epoch of minibatch SGD on the two-layer ReLU network with needle's autodiff; return the new "
        "(W1, W2) as fresh leaf Tensors",
        ["For each minibatch in order: Tensors for the inputs and the one-hot labels (no gradient needed), the "
         "forward pass and the loss from section 7, backward, then the SGD step.",
         "logits = ReLU(Xb W1) W2; loss = softmax_loss(logits, Yb); after loss.backward(), W1.grad and W2.grad hold "
         "the gradients; W <- W - lr * grad.",
         "Do the update outside the graph (on numpy arrays, then a new Tensor of W1's dtype): a needle expression "
         "would chain every step into one ever-growing graph."]),
})

# MatMul's adjoint calls the learner's sum_to_shape helper (written with BroadcastTo.gradient) on purpose.
set_uses({"autodiff.MatMul.gradient": ["autodiff.BroadcastTo.gradient"]})
