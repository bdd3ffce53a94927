"""Ops that build and take apart TensorTuples: make_tuple, tuple_get_item, fused_add_scalars."""
from __future__ import annotations

from ..autograd import Tensor, TensorOp, TensorTuple, TensorTupleOp, Value


class MakeTensorTuple(TensorTupleOp):
    def compute(self, *args) -> tuple:
        devices = {str(a.device) for a in args if hasattr(a, "device")}  # numpy arrays have no device
        if len(devices) > 1:
            raise ValueError(f"items on different devices {sorted(devices)}; move them with Tensor(x, device=...)")
        return tuple(args)

    def gradient(self, out_grad, node):
        if not isinstance(out_grad, TensorTuple):
            raise TypeError(f"MakeTensorTuple: the adjoint must be a TensorTuple, got {type(out_grad).__name__}")
        grads = tuple(out_grad[i] for i in range(len(out_grad)))
        return grads[0] if len(grads) == 1 else grads  # a tensor for one input, as every op


def make_tuple(*args):
    return MakeTensorTuple()(*args)


class TupleGetItem(TensorOp):
    def __init__(self, index: int):
        self.index = index

    @property
    def tuple_item_index(self) -> int:
        """Tells reverse-mode AD to gather this item's adjoint into its tuple's adjoint (see autograd)."""
        return self.index

    def __call__(self, a: TensorTuple, fold_const: bool = True) -> Value:
        if not isinstance(a, TensorTuple):
            raise TypeError(f"TupleGetItem: expected a TensorTuple, got {type(a).__name__}")
        if fold_const and isinstance(a.op, MakeTensorTuple):
            return a.inputs[self.index]
        return Tensor.make_from_op(self, [a])

    def compute(self, a):
        return a[self.index]

    def gradient(self, out_grad, node):
        import needle.init as init  # init sits above the ops in the import order

        parts = []
        for i, value in enumerate(node.inputs[0].realize_cached_data()):
            if i == self.index % len(node.inputs[0]):
                parts.append(out_grad)
            else:
                parts.append(init.zeros(*value.shape, dtype=value.dtype, device=out_grad.device))
        return MakeTensorTuple()(*parts)


def tuple_get_item(value, index):
    return TupleGetItem(index)(value)


class FusedAddScalars(TensorTupleOp):
    def __init__(self, c0: float, c1: float):
        self.c0 = c0
        self.c1 = c1

    def compute(self, a):
        return a + self.c0, a + self.c1

    def gradient(self, out_grad, node):
        return out_grad[0] + out_grad[1]


def fused_add_scalars(x, c0, c1):
    return FusedAddScalars(c0, c1)(x)
