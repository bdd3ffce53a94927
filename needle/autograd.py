"""Core data structures of the computational graph: Value, Tensor, TensorTuple, Op and reverse-mode AD.

Follows the course's final-stage `autograd.py`: the same classes, fields, defaults and graph structure.
Beyond the course: an iterative topological sort (deep graphs never hit the recursion limit), errors
that name the op, its input shapes and devices, and a backward pass that skips inputs which do not
require gradients.
"""
from __future__ import annotations

from contextlib import contextmanager
from functools import reduce
from operator import add
from typing import Dict, Iterable, Iterator, List, Optional, Tuple, Union

import numpy

import needle  # the op classes (needle.ops) and init live above this module; used at call time only

from . import backend_selection as backend
from .backend_selection import NDArray, all_devices, array_api, cpu, default_device  # noqa: F401

LAZY_MODE = False
TENSOR_COUNTER = 0

_WRAPPED_ERRORS = (ValueError, TypeError, IndexError)

# A leaf's gradient carries `_backward_nodes`: the intermediate nodes that its backward pass gave a .grad.
# An adjoint is built from ops on its own node (ReLU's mask, the loss's softmax), so node.grad -> adjoint ->
# node is a reference cycle, freed only by Python's cycle collector, often many steps later: meanwhile its
# arrays stay allocated and new ones fault in fresh memory. release_gradients breaks those cycles when the
# gradients are dropped. The list hangs on the gradients, not the leaves, so a gradient replaced some other
# way (p.grad = p.grad.detach()) leaves the graph to the collector, as before, instead of keeping it alive.


class Op:
    """Operator definition: `compute` runs on raw arrays, `gradient` builds Tensors (so it is differentiable)."""

    #: TupleGetItem's index (see compute_gradient_of_variables); a class default, so that reading it on any
    #: other op is an attribute hit (a getattr miss raises and catches an AttributeError: ~1 us per node)
    tuple_item_index: Optional[int] = None

    def __call__(self, *args):
        raise NotImplementedError()

    def compute(self, *args: Tuple[NDArray]):
        """Forward pass on raw arrays (NDArray or numpy.ndarray); returns the output array."""
        raise NotImplementedError()

    def gradient(self, out_grad: "Value", node: "Value") -> Union["Value", Tuple["Value"]]:
        """Partial adjoints for each input of `node`, given the adjoint `out_grad` of its output."""
        raise NotImplementedError()

    def gradient_as_tuple(self, out_grad: "Value", node: "Value") -> Tuple["Value"]:
        """Convenience method to always return a tuple from gradient call."""
        output = self.gradient(out_grad, node)
        if isinstance(output, tuple):
            return output
        if isinstance(output, list):
            return tuple(output)
        return (output,)


#: The binary elementwise ops (by class name, so that a learner's own EWiseAdd class broadcasts too).
BROADCASTING_OPS = frozenset({"EWiseAdd", "EWiseMul", "EWiseDiv", "EWisePow"})


def _broadcast_operands(op: "Op", args: tuple) -> tuple:
    """Operands of a binary elementwise op brought to their numpy broadcast shape by broadcast_to nodes in the
    graph, so each operand's gradient is summed back to its own shape by BroadcastTo's gradient (as PyTorch
    does); the op itself only ever sees operands of one shape."""
    a, b = args
    sa, sb = getattr(a, "shape", None), getattr(b, "shape", None)
    if sa == sb or sa is None or sb is None:
        return args
    try:
        shape = tuple(numpy.broadcast_shapes(sa, sb))
    except ValueError:
        raise ValueError(f"{type(op).__name__}: shapes {sa} and {sb} do not broadcast") from None
    return (a if sa == shape else needle.ops.broadcast_to(a, shape),
            b if sb == shape else needle.ops.broadcast_to(b, shape))


class TensorOp(Op):
    """An op whose output is a Tensor."""

    def __call__(self, *args):
        if len(args) == 2 and type(self).__name__ in BROADCASTING_OPS:
            args = _broadcast_operands(self, args)
        return Tensor.make_from_op(self, args)


class TensorTupleOp(Op):
    """An op whose output is a TensorTuple."""

    def __call__(self, *args):
        return TensorTuple.make_from_op(self, args)


def _describe(value) -> str:
    """A short description of a raw input array for error messages: its shape (and device)."""
    if isinstance(value, tuple):
        return "(" + ", ".join(_describe(v) for v in value) + ")"
    shape = getattr(value, "shape", None)
    device = None if backend.NUMPY else getattr(value, "device", None)
    return f"{shape}" + (f" on {device}" if device is not None else "")


class Value:
    """A value in the computational graph."""

    op: Optional[Op]
    inputs: List["Value"]
    cached_data: NDArray
    requires_grad: bool

    def realize_cached_data(self):
        """Run compute to realize the cached data (memoised)."""
        if self.cached_data is not None:
            return self.cached_data
        args = [x.realize_cached_data() for x in self.inputs]
        try:
            self.cached_data = self.op.compute(*args)
        except _WRAPPED_ERRORS as err:
            kind = next(t for t in _WRAPPED_ERRORS if isinstance(err, t))
            shapes = ", ".join(_describe(a) for a in args)
            raise kind(f"{type(self.op).__name__} on inputs of shape {shapes}: {err}") from err
        return self.cached_data

    def is_leaf(self) -> bool:
        return self.op is None

    def __del__(self):
        global TENSOR_COUNTER
        TENSOR_COUNTER -= 1

    def _init(
        self,
        op: Optional[Op],
        inputs: List["Value"],
        *,
        num_outputs: int = 1,
        cached_data=None,
        requires_grad: Optional[bool] = None,
    ) -> None:
        global TENSOR_COUNTER
        TENSOR_COUNTER += 1
        if requires_grad is None:  # any(x.requires_grad ...) without a generator (it runs for every op)
            requires_grad = False
            for x in inputs:
                if x.requires_grad:
                    requires_grad = True
                    break
        self.op = op
        self.inputs = inputs
        self.num_outputs = num_outputs
        self.cached_data = cached_data
        self.requires_grad = requires_grad

    @classmethod
    def make_const(cls, data, requires_grad: bool = False):
        """A leaf holding `data` (a raw array, or the data of a Tensor)."""
        if isinstance(data, Value):
            data = data.realize_cached_data()
        value = cls.__new__(cls)
        value._init(None, [], cached_data=data, requires_grad=requires_grad)
        return value

    @classmethod
    def make_from_op(cls, op: Op, inputs: List["Value"]):
        value = cls.__new__(cls)
        value._init(op, inputs)
        if not LAZY_MODE:
            if not value.requires_grad:
                return value.detach()
            value.realize_cached_data()
        return value


class TensorTuple(Value):
    """A tuple of tensors (not nested)."""

    def __len__(self) -> int:
        return len(self.realize_cached_data())

    def __getitem__(self, index: int):
        return needle.ops.tuple_get_item(self, index)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def tuple(self) -> tuple:
        return tuple(self[i] for i in range(len(self)))

    def __repr__(self) -> str:
        return "needle.TensorTuple" + str(self.tuple())

    def __str__(self) -> str:
        return self.__repr__()

    def __add__(self, other: "TensorTuple") -> "TensorTuple":
        if not isinstance(other, TensorTuple) or len(self) != len(other):
            raise ValueError("TensorTuple add: the other operand must be a TensorTuple of the same length")
        return needle.ops.make_tuple(*[self[i] + other[i] for i in range(len(self))])

    @property
    def device(self):
        data = self.realize_cached_data()
        return backend.device_of(data[0]) if len(data) else default_device()

    def detach(self) -> "TensorTuple":
        """A new TensorTuple sharing the data, detached from the graph."""
        return TensorTuple.make_const(self.realize_cached_data())


class Tensor(Value):
    """An n-dimensional array that records the ops that produced it."""

    grad: Optional["Tensor"] = None  # set by backward(); None until a gradient reaches this tensor

    def __init__(self, array, *, device=None, dtype=None, requires_grad: bool = True, **kwargs):
        if isinstance(array, Tensor):
            device = array.device if device is None else device
            dtype = array.dtype if dtype is None else dtype
            if device == array.device and dtype == array.dtype:
                cached_data = array.realize_cached_data()
            else:  # fall back: copy through numpy
                cached_data = Tensor._array_from_numpy(array.numpy(), device=device, dtype=dtype)
        else:
            device = device if device else default_device()
            cached_data = Tensor._array_from_numpy(array, device=device, dtype=dtype)
        self._init(None, [], cached_data=cached_data, requires_grad=requires_grad)

    @staticmethod
    def _array_from_numpy(numpy_array, device, dtype):
        return backend.from_numpy(numpy_array, device=device, dtype=dtype)

    @property
    def data(self) -> "Tensor":
        return self.detach()

    @data.setter
    def data(self, value: "Tensor") -> None:
        if not isinstance(value, Tensor):
            raise TypeError(f"Tensor.data: expected a Tensor, got {type(value).__name__}")
        if value.dtype != self.dtype:
            raise TypeError(f"Tensor.data: dtype {value.dtype} does not match the tensor's dtype {self.dtype}")
        self.cached_data = value.realize_cached_data()

    def detach(self) -> "Tensor":
        """A new Tensor sharing the data, detached from the graph."""
        return Tensor.make_const(self.realize_cached_data())

    @property
    def shape(self) -> tuple:
        return self.realize_cached_data().shape

    @property
    def dtype(self):
        return self.realize_cached_data().dtype

    @property
    def device(self):
        return backend.device_of(self.realize_cached_data())

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def backward(self, out_grad: Optional["Tensor"] = None) -> None:
        """Reverse-mode AD from this tensor; out_grad defaults to ones (the gradient of sum(self))."""
        if out_grad is None:
            out_grad = needle.init.ones(*self.shape, dtype=self.dtype, device=self.device)
        elif not isinstance(out_grad, Tensor):
            raise TypeError(f"backward: out_grad must be a Tensor, got {type(out_grad).__name__}")
        elif tuple(out_grad.shape) != tuple(self.shape):
            raise ValueError(f"backward: out_grad has shape {tuple(out_grad.shape)}, the tensor has shape {self.shape}")
        compute_gradient_of_variables(self, out_grad)

    def __repr__(self) -> str:
        return "needle.Tensor(" + str(self.realize_cached_data()) + ")"

    def __str__(self) -> str:
        return self.realize_cached_data().__str__()

    def numpy(self) -> numpy.ndarray:
        return backend.to_numpy(self.realize_cached_data())

    # ---- operators: the graph each one builds is part of the course's contract ----
    def __add__(self, other):
        if isinstance(other, Tensor):
            return needle.ops.EWiseAdd()(self, other)
        return needle.ops.AddScalar(other)(self)

    def __mul__(self, other):
        if isinstance(other, Tensor):
            return needle.ops.EWiseMul()(self, other)
        return needle.ops.MulScalar(other)(self)

    def __pow__(self, other):
        if isinstance(other, Tensor):
            return needle.ops.EWisePow()(self, other)
        return needle.ops.PowerScalar(other)(self)

    def __sub__(self, other):
        if isinstance(other, Tensor):
            return needle.ops.EWiseAdd()(self, needle.ops.Negate()(other))
        return needle.ops.AddScalar(-other)(self)

    def __rsub__(self, other):
        return needle.ops.AddScalar(other)(needle.ops.Negate()(self))

    def __truediv__(self, other):
        if isinstance(other, Tensor):
            return needle.ops.EWiseDiv()(self, other)
        return needle.ops.DivScalar(other)(self)

    def __rtruediv__(self, other):
        return needle.ops.MulScalar(other)(needle.ops.PowerScalar(-1)(self))

    def __matmul__(self, other):
        return needle.ops.MatMul()(self, other)

    def matmul(self, other):
        return needle.ops.MatMul()(self, other)

    def sum(self, axes=None):
        return needle.ops.Summation(axes)(self)

    def broadcast_to(self, shape):
        return needle.ops.BroadcastTo(shape)(self)

    def reshape(self, shape):
        return needle.ops.Reshape(shape)(self)

    def __neg__(self):
        return needle.ops.Negate()(self)

    def transpose(self, axes=None):
        return needle.ops.Transpose(axes)(self)

    __radd__ = __add__
    __rmul__ = __mul__


def compute_gradient_of_variables(output_tensor: Value, out_grad: Value) -> None:
    """Reverse-mode AD: stores the adjoint of `output_tensor` w.r.t. every node in that node's `.grad`.

    Adjoints are Tensors built from ops, so they can be differentiated again. Inputs that do not
    require gradients (constants) receive none. A TensorTuple's adjoint is assembled from the
    per-item adjoints of its TupleGetItem users, so unpacking n items costs O(n), not O(n^2).
    """
    node_to_output_grads_list: Dict[Value, List[Value]] = {output_tensor: [out_grad]}
    inner: List[Value] = []  # the intermediate nodes given a .grad (see release_gradients)
    leaves: List[Value] = []
    for node in reversed(find_topo_sort([output_tensor])):
        grads = node_to_output_grads_list.pop(node, None)
        if grads is None:  # nothing flows here (only reaches constants)
            continue
        node.grad = _sum_adjoints(node, grads)
        if node.op is None:
            leaves.append(node)
            continue
        inner.append(node)
        item_of = getattr(node.op, "tuple_item_index", None)  # (a learner's own Op may not derive from Op)
        if item_of is not None:  # TupleGetItem: pass (index, adjoint) on, build the tuple later
            source = node.inputs[0]
            if source.requires_grad:
                node_to_output_grads_list.setdefault(source, []).append((item_of, node.grad))
            continue
        for inp, grad in zip(node.inputs, node.op.gradient_as_tuple(node.grad, node)):
            if grad is not None and inp.requires_grad:
                node_to_output_grads_list.setdefault(inp, []).append(grad)
    for leaf in leaves:
        leaf.grad._backward_nodes = inner
    if _RELEASING is not None:
        _RELEASING.append((inner, leaves))


# the backward passes run inside graphs_released(), as (intermediate nodes, leaves); None outside one
_RELEASING: Optional[List[tuple]] = None


@contextmanager
def graphs_released() -> Iterator[None]:
    """Every backward pass run inside has its graph freed on exit: .grad dropped from its intermediate nodes, and
    from its leaves whose .grad is still the one it gave them. For backward passes whose gradients are used at
    once and kept only as detached copies (a checkpoint's recomputed segment), whoever wrote the code that runs
    them."""
    global _RELEASING
    outer, _RELEASING = _RELEASING, []
    try:
        yield
    finally:
        runs, _RELEASING = _RELEASING, outer
        for inner, leaves in runs:
            _drop_adjoints(inner)
            for leaf in leaves:
                if getattr(leaf.grad, "_backward_nodes", None) is inner:
                    leaf.grad = None


def release_gradients(leaves: Iterable[Value]) -> None:
    """Drops the .grad of the intermediate nodes of the backward pass that gave each of `leaves` its gradient
    (Optimizer.reset_grad calls it), so that graph is freed at once rather than by the cycle collector."""
    released: set = set()
    for leaf in leaves:
        grad = getattr(leaf, "grad", None)
        nodes = grad.__dict__.pop("_backward_nodes", None) if grad is not None else None
        if nodes is not None and id(nodes) not in released:
            released.add(id(nodes))
            _drop_adjoints(nodes)


def _drop_adjoints(nodes: Iterable[Value]) -> None:
    """Drops the .grad of a backward pass's intermediate nodes: their adjoints hold that pass's whole graph."""
    for node in nodes:
        node.grad = None


def _sum_adjoints(node: Value, grads: list) -> Value:
    """The total adjoint of `node`: sum_node_list, with per-item TensorTuple contributions merged."""
    if not isinstance(node, TensorTuple):
        return sum_node_list(grads)
    items: List[List[Value]] = [[] for _ in range(len(node))]
    for grad in grads:
        if isinstance(grad, tuple):  # (index, adjoint of that item)
            items[grad[0]].append(grad[1])
        else:
            for i in range(len(node)):
                items[i].append(grad[i])
    data = node.realize_cached_data()
    parts = [
        sum_node_list(g) if g else needle.init.zeros(*data[i].shape, dtype=data[i].dtype, device=backend.device_of(data[i]))
        for i, g in enumerate(items)
    ]
    return needle.ops.make_tuple(*parts)


def find_topo_sort(node_list: List[Value]) -> List[Value]:
    """Nodes in topological order ending in `node_list` (post-order DFS over inputs, left to right)."""
    visited: set = set()
    topo_order: List[Value] = []
    for node in node_list:
        topo_sort_dfs(node, visited, topo_order)
    return topo_order


def topo_sort_dfs(node: Value, visited: set, topo_order: List[Value]) -> None:
    """Post-order DFS from `node`, appending to `topo_order`; iterative, so depth is unbounded."""
    if node in visited:
        return
    visited.add(node)
    stack = [(node, iter(node.inputs))]
    while stack:
        current, children = stack[-1]
        for child in children:
            if child not in visited:
                visited.add(child)
                stack.append((child, iter(child.inputs)))
                break
        else:
            stack.pop()
            topo_order.append(current)


def sum_node_list(node_list: List[Value]) -> Value:
    """Sums adjoints with `add`, avoiding the extra zero node Python's sum would create."""
    return reduce(add, node_list)
