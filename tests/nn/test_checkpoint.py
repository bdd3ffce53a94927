"""nn.checkpoint: the same gradients as the plain graph, bit for bit, and a lower measured peak memory."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import needle as ndl
from needle import nn


def _mlp(width: int, depth: int, drop: float, seed: int) -> list:
    np.random.seed(seed)
    return [nn.Sequential(nn.Residual(nn.Sequential(nn.Linear(width, width), nn.ReLU())), nn.Dropout(drop)) for _ in range(depth)]


def _grads(blocks: list, x: np.ndarray, segment: int, seed: int) -> list:
    """Gradients of sum(net(x)**2) w.r.t. x and every parameter; `segment` blocks per checkpoint (0: none)."""
    for p in (p for b in blocks for p in b.parameters()):
        p.grad = None
    X = ndl.Tensor(x, dtype=x.dtype.name)
    np.random.seed(seed)  # Dropout's masks
    h = nn.checkpoint_sequential(blocks, segment, X)
    (h * h).sum().backward()
    return [X.grad.numpy()] + [p.grad.numpy() for b in blocks for p in b.parameters()]


@settings(max_examples=15, deadline=None)
@given(width=st.integers(1, 9), depth=st.integers(1, 6), segment=st.integers(1, 6), batch=st.integers(1, 5),
       drop=st.sampled_from([0.0, 0.3]), seed=st.integers(0, 2**16))
def test_checkpointed_gradients_equal_the_plain_ones_exactly(width, depth, segment, batch, drop, seed):
    blocks = _mlp(width, depth, drop, seed)
    x = np.random.RandomState(seed).randn(batch, width)
    plain = _grads(blocks, x, 0, seed)
    checked = _grads(blocks, x, segment, seed)
    for a, b in zip(plain, checked):
        np.testing.assert_array_equal(b, a)


def test_gradients_match_finite_differences_in_float64():
    np.random.seed(1)
    lin = nn.Linear(4, 3, dtype="float64")
    x = np.random.randn(2, 4)

    def f(a):
        return float((ndl.ops.tanh(lin(ndl.Tensor(a, dtype="float64"))) ** 2).sum().numpy())

    X = ndl.Tensor(x, dtype="float64")
    (nn.checkpoint(lambda t: ndl.ops.tanh(lin(t)), X) ** 2).sum().backward()
    eps = 1e-6
    numeric = np.zeros_like(x)
    for i in np.ndindex(*x.shape):
        d = np.zeros_like(x)
        d[i] = eps
        numeric[i] = (f(x + d) - f(x - d)) / (2 * eps)
    np.testing.assert_allclose(X.grad.numpy(), numeric, rtol=1e-6, atol=1e-8)



def test_the_segments_gradient_is_a_tensor_for_one_input_and_a_tuple_for_several():
    """gradient's one convention: a checkpoint of one input without parameters has one input, so one Tensor back."""
    x, y = ndl.Tensor(np.ones((2, 3)), dtype="float64"), ndl.Tensor(np.ones((2, 3)), dtype="float64")
    one, two = nn.checkpoint(ndl.ops.tanh, x), nn.checkpoint(lambda a, b: a * b, x, y)
    assert isinstance(one.op.gradient(ndl.ones_like(one), one), ndl.Tensor)
    grads = two.op.gradient(ndl.ones_like(two), two)
    assert isinstance(grads, tuple) and len(grads) == 2
    (one.sum() + two.sum()).backward()
    np.testing.assert_allclose(x.grad.numpy(), 1 - np.tanh(1.0) ** 2 + 1.0)

def test_a_parameter_used_inside_and_outside_gets_both_contributions():
    np.random.seed(2)
    w = ndl.Tensor(np.random.randn(3, 3))
    x = ndl.Tensor(np.random.randn(2, 3))
    ((nn.checkpoint(lambda t: t @ w, x) @ w).sum()).backward()
    plain_w, plain_x = w.grad.numpy(), x.grad.numpy()
    w.grad = x.grad = None
    ((x @ w) @ w).sum().backward()
    np.testing.assert_allclose(plain_w, w.grad.numpy(), rtol=1e-6)
    np.testing.assert_allclose(plain_x, x.grad.numpy(), rtol=1e-6)


def _peak_of_backward(blocks: list, x: ndl.Tensor, segment: int) -> int:
    device = x.device
    ndl.reset_peak_memory_stats(device)
    base = ndl.memory_stats(device).current
    nn.checkpoint_sequential(blocks, segment, x).sum().backward()
    return ndl.memory_stats(device).peak - base


def test_checkpointing_a_deep_mlp_lowers_its_peak_memory():
    depth, width, batch = 16, 64, 512
    blocks = _mlp(width, depth, 0.0, 0)
    x = ndl.Tensor(np.random.randn(batch, width).astype(np.float32), requires_grad=False)
    activation = batch * width * 4  # bytes of one layer's output
    plain = _peak_of_backward(blocks, x, 0)
    for b in blocks:
        for p in b.parameters():
            p.grad = None
    checked = _peak_of_backward(blocks, x, 4)
    # plain backward holds every layer's activations (Linear's and ReLU's output: 2 per block, 32 in all);
    # with 4-block segments only the 4 boundaries and one segment's 8 recomputed ones (and their adjoints)
    assert plain >= 2 * depth * activation
    assert checked <= plain / 2
    assert plain - checked >= depth * activation


def test_checkpoint_module_is_plain_in_eval_mode_and_checks_its_arguments():
    np.random.seed(3)
    block = nn.Checkpoint(nn.Sequential(nn.Linear(3, 3), nn.ReLU()))
    x = ndl.Tensor(np.random.randn(2, 3).astype(np.float32))
    assert type(block(x).op).__name__ == "CheckpointOp"
    block.eval()
    assert type(block(x).op).__name__ != "CheckpointOp"
    assert len(block.parameters()) == 2
    with pytest.raises(TypeError, match="checkpoint: input 0 is a ndarray"):
        nn.checkpoint(lambda t: t, np.zeros(3))
    with pytest.raises(TypeError, match="fn must return one Tensor"):
        nn.checkpoint(lambda t: (t, t), x)
    with pytest.raises(ValueError, match="segment must be >= 0 modules, got -1"):
        nn.checkpoint_sequential([block], -1, x)


def test_an_input_the_segment_ignores_gets_no_gradient_and_a_constant_none():
    a = ndl.Tensor(np.arange(3.0), dtype="float64")
    unused = ndl.Tensor(np.ones(3), dtype="float64")
    const = ndl.Tensor(np.ones(3), dtype="float64", requires_grad=False)
    out = nn.checkpoint(lambda x, y, z: x * x * z, a, unused, const)
    out.sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), 2 * np.arange(3.0))
    assert unused.grad is None and const.grad is None


def _exercise_style_gradient(self, out_grad, node):
    """CheckpointOp.gradient as chapter 10's contract writes it: no freeing of its own."""
    from needle.autograd import Tensor, compute_gradient_of_variables

    inputs, params = node.inputs[: self.n_inputs], node.inputs[self.n_inputs :]
    leaves = [Tensor.make_const(x.realize_cached_data(), requires_grad=x.requires_grad) for x in inputs]
    output = self.fn(*leaves)
    before = [p.grad for p in params]
    compute_gradient_of_variables(output, out_grad)
    grads = tuple(x.grad.detach() if x.requires_grad else None for x in leaves + list(params))
    for p, g in zip(params, before):
        p.grad = g
    return grads


@pytest.mark.parametrize("own_gradient", [False, True], ids=["needle's", "a learner's"])
def test_the_recomputed_graph_is_freed_when_the_gradient_returns(monkeypatch, own_gradient):
    """Its nodes' .grad make reference cycles; they are broken on return, whoever wrote gradient, so the
    recomputed activations never wait for the cycle collector (chapter 10's peak memory depends on it)."""
    import gc
    import weakref

    if own_gradient:
        monkeypatch.setattr(nn.nn_checkpoint.CheckpointOp, "gradient", _exercise_style_gradient)
    np.random.seed(0)
    lin = nn.Linear(3, 3)
    made = []

    def segment(t):
        hidden = ndl.ops.relu(lin(t))
        made.append(weakref.ref(hidden))
        return hidden * hidden

    x = ndl.Tensor(np.random.randn(2, 3).astype(np.float32))
    gc.disable()
    try:
        nn.checkpoint(segment, x).sum().backward()
        assert len(made) == 2  # the forward, then the recomputation
        assert made[1]() is None
        assert x.grad is not None and lin.weight.grad is not None
    finally:
        gc.enable()
