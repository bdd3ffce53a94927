"""Behaviours the course's own local tests rely on, restated in our words (see tools/run_course_tests.sh).

Each test pins a difference from the course that its tests exposed: a scalar op given a size-1 numpy array as
its scalar (hw1 draws it with np.random.randn(1)), and recurrent modules started without a state, whose
W_hh must still receive a (zero) gradient as it does with the course's zero initial state (hw4).
"""
import numpy as np
import pytest

import needle as ndl
from needle import nn

SCALAR_OPS = {
    "add_scalar": (ndl.add_scalar, lambda x, s: x + s, lambda x, s: np.ones_like(x)),
    "mul_scalar": (ndl.mul_scalar, lambda x, s: x * s, lambda x, s: np.full_like(x, s)),
    "divide_scalar": (ndl.divide_scalar, lambda x, s: x / s, lambda x, s: np.full_like(x, 1 / s)),
    "power_scalar": (ndl.power_scalar, lambda x, s: x**s, lambda x, s: s * x ** (s - 1)),
}


@pytest.mark.parametrize("name", sorted(SCALAR_OPS))
@pytest.mark.parametrize("wrap", [np.array, lambda s: np.array([s]), lambda s: np.array([[s]]), np.float64],
                         ids=["0-d", "shape (1,)", "shape (1, 1)", "np.float64"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_scalar_ops_take_a_size_one_numpy_scalar(name, wrap, dtype):
    op, forward, derivative = SCALAR_OPS[name]
    rng = np.random.default_rng(7)
    x = rng.uniform(0.5, 2.0, size=(5, 4)).astype(dtype)
    s = 1.5
    t = ndl.Tensor(x, dtype=dtype)
    y = op(t, wrap(s))
    assert y.shape == x.shape and y.dtype == dtype
    np.testing.assert_allclose(y.numpy(), forward(x.astype(np.float64), s), rtol=1e-5)
    y.sum().backward()
    np.testing.assert_allclose(t.grad.numpy(), derivative(x.astype(np.float64), s), rtol=1e-5)


@pytest.mark.parametrize("name", sorted(SCALAR_OPS))
def test_scalar_ops_reject_a_numpy_array_of_several_values(name):
    op = SCALAR_OPS[name][0]
    with pytest.raises(Exception):
        op(ndl.Tensor(np.ones((2, 2))), np.array([1.0, 2.0])).numpy()


def _seq_modules(kind: str, num_layers: int, bias: bool):
    if kind == "rnn_cell":
        return nn.RNNCell(3, 4, bias=bias)
    if kind == "lstm_cell":
        return nn.LSTMCell(3, 4, bias=bias)
    if kind == "rnn":
        return nn.RNN(3, 4, num_layers, bias)
    return nn.LSTM(3, 4, num_layers, bias)


def _zero_state(kind: str, num_layers: int, bs: int):
    if kind == "rnn_cell":
        return ndl.init.zeros(bs, 4)
    if kind == "lstm_cell":
        return ndl.init.zeros(bs, 4), ndl.init.zeros(bs, 4)
    if kind == "rnn":
        return ndl.init.zeros(num_layers, bs, 4)
    return ndl.init.zeros(num_layers, bs, 4), ndl.init.zeros(num_layers, bs, 4)


def _first(out):
    return out[0] if isinstance(out, tuple) else out


@pytest.mark.parametrize("kind, num_layers", [("rnn_cell", 1), ("lstm_cell", 1), ("rnn", 1), ("rnn", 2),
                                              ("lstm", 1), ("lstm", 2)])
@pytest.mark.parametrize("bias", [True, False])
def test_no_initial_state_acts_as_zeros_and_every_weight_gets_a_gradient(kind, num_layers, bias):
    np.random.seed(5)
    model = _seq_modules(kind, num_layers, bias)
    bs = 2
    x = np.random.randn(*((bs, 3) if kind.endswith("cell") else (1, bs, 3))).astype(np.float32)

    out = _first(model(ndl.Tensor(x), None))
    out.sum().backward()
    for p in model.parameters():
        assert p.grad is not None, "a parameter got no gradient when the state defaults to zeros"
    grads = [p.grad.numpy() for p in model.parameters()]
    W_hh = [model.W_hh] if kind.endswith("cell") else [c.W_hh for c in getattr(model, f"{kind}_cells")]
    for w in W_hh:  # one step from a zero state: h W_hh contributes nothing, so its gradient is zero
        np.testing.assert_array_equal(w.grad.numpy(), np.zeros(w.shape, dtype=np.float32))

    for p in model.parameters():
        p.grad = None
    explicit = _first(model(ndl.Tensor(x), _zero_state(kind, num_layers, bs)))
    np.testing.assert_allclose(out.numpy(), explicit.numpy(), rtol=1e-6, atol=1e-7)
    explicit.sum().backward()
    for g, p in zip(grads, model.parameters()):
        np.testing.assert_allclose(g, p.grad.numpy(), rtol=1e-5, atol=1e-7)
