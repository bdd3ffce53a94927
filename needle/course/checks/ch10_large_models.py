"""Chapter 10 (training large models): the backward pass of gradient checkpointing, and a ring allreduce built from
MPI point-to-point messages.

The checkpoint check runs random deep MLPs (Dropout included) through nn.checkpoint with the learner's gradient and
compares every gradient with the plain graph's, bit for bit, then with float64 central differences. The ring check
runs the learner's function on `mpirun -n 2` and `-n 3` processes and compares it with MPI's Allreduce.
"""
from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import numpy as np

import needle as ndl
from needle import nn
from needle.nn import nn_checkpoint

from ..cases import numerical_gradients, rng_for
from ..compare import expect, expect_close
from ..registry import exercise_check, set_hints

TOL64 = dict(rtol=1e-6, atol=1e-8)


@contextlib.contextmanager
def _gradient(fn: Callable) -> Iterator[None]:
    """CheckpointOp.gradient is `fn` inside the block (the learner's, whatever is installed)."""
    saved = nn_checkpoint.CheckpointOp.__dict__["gradient"]
    nn_checkpoint.CheckpointOp.gradient = fn
    try:
        yield
    finally:
        nn_checkpoint.CheckpointOp.gradient = saved


def _mlp_grads(blocks: list, x: np.ndarray, segment: int, seed: int) -> list[np.ndarray]:
    """Gradients of sum(net(x)^2) for the input and every parameter; `segment` blocks per checkpoint (0: none)."""
    params = [p for b in blocks for p in b.parameters()]
    for p in params:
        p.grad = None
    X = ndl.Tensor(x, dtype=x.dtype.name)
    np.random.seed(seed)
    h = nn.checkpoint_sequential(blocks, segment, X)
    (h * h).sum().backward()
    grads = [X] + params
    for g in grads:
        expect(g.grad is not None, "no gradient reached an input or a parameter of a checkpointed segment: return "
                                   "one gradient per input of the node, parameters included")
    return [g.grad.numpy() for g in grads]


@exercise_check("large_models.CheckpointOp.gradient", target="needle.nn.nn_checkpoint:CheckpointOp.gradient",
                hint="the backward pass of a checkpointed segment")
def check_checkpoint_gradient(gradient: Callable) -> int:
    rng = rng_for("large_models.CheckpointOp.gradient")
    cases = 0
    for depth, segment, drop in [(2, 1, 0.0), (3, 2, 0.0), (4, 2, 0.5), (5, 3, 0.3)]:
        width, batch, seed = int(rng.integers(2, 7)), int(rng.integers(1, 5)), int(rng.integers(0, 2**16))
        np.random.seed(seed)
        blocks = [nn.Sequential(nn.Residual(nn.Sequential(nn.Linear(width, width), nn.ReLU())), nn.Dropout(drop)) for _ in range(depth)]
        x = rng.standard_normal((batch, width)).astype(np.float32)
        plain = _mlp_grads(blocks, x, 0, seed)
        with _gradient(gradient):
            got = _mlp_grads(blocks, x, segment, seed)
        names = ["input"] + [f"parameter {i}" for i in range(len(plain) - 1)]
        what = f"{depth} blocks x + ReLU(Linear({width}, {width})(x)), then Dropout({drop}), {segment} per checkpoint"
        for name, g, e in zip(names, got, plain):
            # recomputing the same ops on the same data gives the same numbers: a difference is a bug
            expect_close(g, e, what=f"gradient of the {name} ({what})", rtol=0, atol=0)
        cases += 1
    # a weight used inside the segment and after it: its gradient is the sum of both uses
    w64, x64 = rng.standard_normal((3, 3)), rng.standard_normal((2, 3))
    w, X = ndl.Tensor(w64, dtype="float64"), ndl.Tensor(x64, dtype="float64")
    with _gradient(gradient):
        (nn.checkpoint(lambda t: t @ w, X) @ w).sum().backward()
    ones = np.ones((2, 3))
    expected_w = x64.T @ ones @ w64.T + (x64 @ w64).T @ ones
    expect_close(w.grad, expected_w, what="gradient of W in sum(checkpoint(x -> x @ W)(x) @ W), W used inside the "
                 "segment and after it (return the parameters' gradients too, and leave their .grad as it was)",
                 inputs={"x": x64, "W": w64}, **TOL64)
    expect_close(X.grad, ones @ w64.T @ w64.T, what="gradient of x in sum(checkpoint(x -> x @ W)(x) @ W)",
                 inputs={"x": x64, "W": w64}, **TOL64)
    # the gradients the op passes on must not hold the recomputed graph (its activations) alive
    with _gradient(gradient):
        lin = nn.Linear(3, 3)
        X = ndl.Tensor(rng.standard_normal((2, 3)).astype(np.float32))
        out = nn.checkpoint(lambda t: ndl.ops.relu(lin(t)), X)
        grads = out.op.gradient_as_tuple(ndl.init.ones_like(out), out)
    for i, g in enumerate(grads):
        expect(g is None or g.is_leaf(),
               f"gradient {i} of the checkpointed node is built on the recomputed graph: detach it, or every "
               "activation of the segment stays alive until the optimizer step and checkpointing saves nothing")
    # float64, a function that is not piecewise linear: against central differences
    with _gradient(gradient):
        lin = nn.Linear(4, 3, dtype="float64")
        x = rng.standard_normal((2, 4))

        def f(a: np.ndarray) -> np.ndarray:
            return (ndl.ops.tanh(lin(ndl.Tensor(a, dtype="float64"))) ** 2).numpy()

        X = ndl.Tensor(x, dtype="float64")
        (nn.checkpoint(lambda t: ndl.ops.tanh(lin(t)), X) ** 2).sum().backward()
    expect_close(X.grad, numerical_gradients(f, [x], np.ones((2, 3)))[0], what="gradient of sum(tanh(Linear(4, 3)(x))^2) w.r.t. x, "
                 "float64, against central differences", inputs={"x": x}, **TOL64)
    return cases + 3


@exercise_check("large_models.ring_allreduce", target="needle.distributed.ring:ring_allreduce",
                hint="ring allreduce from point-to-point messages")
def check_ring_allreduce(fn: Callable) -> int:
    from needle.distributed import DistributedError

    from ..mpi_trial import function_source, run_allreduce_trial

    try:
        function_source(fn)
    except ValueError as err:
        expect(False, f"ring_allreduce runs in other processes, which receive its source: {err}")
    cases = 0
    for n in (2, 3):
        try:
            records = run_allreduce_trial(fn, n, seed=n, timeout=60)
        except DistributedError as err:  # a deadlock, a crash, an import error in the cell's code
            expect(False, f"ring_allreduce on mpirun -n {n} did not complete: {err}\n(two ranks that both Send a "
                          "large array before receiving wait for each other for ever: Sendrecv does both at once)")
        except FileNotFoundError as err:  # no mpirun: the mpi extra is missing
            expect(False, f"ring_allreduce needs MPI to run: {err}")
        for rec in records:
            what = f"ring_allreduce on rank {rec['rank']} of {n}, a {rec['dtype']} array of {rec['size']} elements"
            expect("error" not in rec, f"{what} raised {rec.get('error')}")
            expect(rec["shape"] == [rec["size"]], f"{what}: shape {tuple(rec['shape'])}, expected ({rec['size']},)")
            tol = 1e-12 if rec["dtype"] == "float64" else 1e-5
            got, expected = rec["example"]
            expect(rec["max_error"] <= tol * max(1, n), f"{what}: max error {rec['max_error']:.3g} against "
                   f"MPI.Allreduce\n  expected: {np.round(expected, 6).tolist()} ... (MPI.Allreduce)\n"
                   f"  got:      {np.round(got, 6).tolist()} ...")
            expect(not rec["input_changed"], f"{what} changed its input array: return a new one")
            cases += 1
    return cases


set_hints({
    "large_models.CheckpointOp.gradient": (
        "CheckpointOp.gradient(out_grad, node): run the segment again on node's inputs, differentiate that local "
        "graph, return one detached gradient per input of node (the segment's inputs, then its parameters)",
        ["The forward pass kept only the segment's inputs; backward has to rebuild the activations it threw away, "
         "by calling self.fn again, and then differentiate the small graph that call builds.",
         "Recompute on fresh leaves holding the inputs' data (so the local graph stops there), under the random "
         "state the forward pass saved in self.random_state (Dropout must draw the same masks); then "
         "compute_gradient_of_variables(output, out_grad) fills .grad of those leaves and of the parameters.",
         "node.inputs[:self.n_inputs] are the inputs, the rest the parameters; restore the parameters' .grad "
         "afterwards (the outer backward sets their totals) and return tuple(g.detach() ...), None for an input "
         "that does not require grad."]),
    "large_models.ring_allreduce": (
        "ring_allreduce(comm, x): the sum of x over all ranks, with comm.Sendrecv only: a reduce-scatter then an "
        "all-gather around the ring",
        ["Cut x into n chunks (np.array_split of a copy). Every step, each rank sends one chunk to its right "
         "neighbour and receives one from its left, all at the same time: comm.Sendrecv(send, dest=right, "
         "recvbuf=buffer, source=left).",
         "Reduce-scatter: in step s (0 .. n-2) rank r sends chunk (r - s) % n and adds what it receives into chunk "
         "(r - s - 1) % n; afterwards chunk (r + 1) % n holds the full sum on rank r.",
         "All-gather: n - 1 more steps send chunk (r - s + 1) % n and overwrite chunk (r - s) % n with what "
         "arrives. Return the copy, never the input."]),
})
