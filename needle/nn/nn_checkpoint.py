"""Gradient checkpointing: run a piece of a network keeping only its inputs, recompute its activations in backward.

`checkpoint(fn, *inputs)` returns fn's output as one graph node whose inputs are `inputs` plus the parameters
fn used; the activations inside fn are freed after the forward pass. Backward runs fn again on the saved
inputs (with the same numpy random state, so Dropout draws the same masks) and differentiates that local
graph, so the gradients equal the plain ones exactly while the memory held between forward and backward is
only the segment boundaries. The gradients it passes on are detached (no double backward through a
checkpoint, as in PyTorch's reentrant checkpoint). Side effects inside fn happen twice (BatchNorm's running statistics are updated
again during backward), as in PyTorch.
"""
from __future__ import annotations

from typing import Callable, List, Sequence

import numpy as np

from ..autograd import Tensor, TensorOp, Value, compute_gradient_of_variables, graphs_released
from .nn_basic import Module

__all__ = ["checkpoint", "checkpoint_sequential", "Checkpoint"]


def _parameters_reached(output: Value, inputs: List[Value]) -> List[Value]:
    """Leaves requiring grad that `output` depends on without passing through `inputs` (fn's parameters)."""
    stop = {id(x) for x in inputs}
    seen: set = set()
    params: List[Value] = []
    stack = [output]
    while stack:
        node = stack.pop()
        if id(node) in seen or id(node) in stop:
            continue
        seen.add(id(node))
        if node.op is None:
            if node.requires_grad:
                params.append(node)
        elif node.requires_grad:
            stack.extend(node.inputs)
    return params


class CheckpointOp(TensorOp):
    """The op of a checkpointed segment: inputs are fn's inputs then its parameters; gradient recomputes fn."""

    def __init__(self, fn: Callable, n_inputs: int, random_state: tuple):
        self.fn = fn
        self.n_inputs = n_inputs
        self.random_state = random_state

    def compute(self, *args):
        raise RuntimeError("checkpoint: a segment's output is computed when the segment is called, never lazily")

    def gradient(self, out_grad: Tensor, node: Tensor):
        """Run fn again on node's inputs (same random state) and differentiate that local graph: one detached
        gradient per input of node, parameters included."""
        inputs, params = node.inputs[: self.n_inputs], node.inputs[self.n_inputs :]
        leaves = [Tensor.make_const(x.realize_cached_data(), requires_grad=x.requires_grad) for x in inputs]
        state = np.random.get_state()
        np.random.set_state(self.random_state)
        try:
            output = self.fn(*leaves)
        finally:
            np.random.set_state(state)
        wrt = leaves + list(params)
        compute_gradient_of_variables(output, out_grad)  # sets .grad on params too; the outer backward then overwrites it
        # detached: a gradient built from the recomputed graph would otherwise keep its activations alive
        grads = tuple(x.grad.detach() if x.requires_grad and x.grad is not None else None for x in wrt)
        return grads[0] if len(grads) == 1 else grads  # a tensor for one input, as every op

    def gradient_as_tuple(self, out_grad: Tensor, node: Tensor) -> tuple:
        """gradient (needle's, or a learner's installed in its place), with the recomputed graph freed on return
        (its nodes' .grad form reference cycles, which would otherwise wait for the cycle collector)."""
        with graphs_released():
            return super().gradient_as_tuple(out_grad, node)


def checkpoint(fn: Callable[..., Tensor], *inputs: Tensor) -> Tensor:
    """fn(*inputs), keeping only `inputs` for backward (fn's activations are recomputed there).

    fn must return one Tensor and take every tensor it depends on, other than module parameters, as an input.
    """
    for i, x in enumerate(inputs):
        if not isinstance(x, Tensor):
            raise TypeError(f"checkpoint: input {i} is a {type(x).__name__}, expected a Tensor")
    random_state = np.random.get_state()
    output = fn(*inputs)
    if not isinstance(output, Tensor):
        raise TypeError(f"checkpoint: fn must return one Tensor, it returned a {type(output).__name__}")
    if not output.requires_grad:
        return output
    params = _parameters_reached(output, list(inputs))
    node = Tensor.__new__(Tensor)
    node._init(CheckpointOp(fn, len(inputs), random_state), list(inputs) + params,
               cached_data=output.realize_cached_data(), requires_grad=True)
    return node


def checkpoint_sequential(modules: Sequence[Module], segment: int, x: Tensor) -> Tensor:
    """x through `modules` in order, each run of `segment` consecutive modules one checkpoint (0: no checkpoints)."""
    if segment < 0:
        raise ValueError(f"checkpoint_sequential: segment must be >= 0 modules, got {segment!r}")
    if segment == 0:
        for module in modules:
            x = module(x)
        return x
    from .nn_basic import Sequential

    for i in range(0, len(modules), segment):
        x = checkpoint(Sequential(*modules[i : i + segment]), x)
    return x


class Checkpoint(Module):
    """Wraps a module so that its forward runs through `checkpoint` while training (plain in eval mode)."""

    def __init__(self, module: Module):
        super().__init__()
        self.module = module

    def forward(self, *inputs: Tensor) -> Tensor:
        if not self.training:
            return self.module(*inputs)
        return checkpoint(self.module, *inputs)
