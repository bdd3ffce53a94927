"""Sequence modules (course hw4): Sigmoid, RNNCell, RNN, LSTMCell, LSTM and Embedding.

Layers project the whole input sequence with one matmul before stepping through time (the same
numbers as projecting step by step, fewer and larger products); an LSTM layer then runs as one node,
ops.lstm_layer, whose backward sums W_hh's gradient over all steps in one product."""
from __future__ import annotations

from typing import Optional

from needle import init, ops
from needle.autograd import Tensor

from .nn_basic import Module, Parameter

__all__ = ["Sigmoid", "RNNCell", "RNN", "LSTMCell", "LSTM", "Embedding"]


class Sigmoid(Module):
    def forward(self, x: Tensor) -> Tensor:
        return ops.sigmoid(x)


def _uniform(*shape: int, bound: float, device, dtype) -> Parameter:
    return Parameter(init.rand(*shape, low=-bound, high=bound, device=device, dtype=dtype))


class _Cell(Module):
    """Shared weights of RNNCell / LSTMCell: W_ih (in, g*h), W_hh (h, g*h), bias_ih, bias_hh (g*h,),
    all U(-1/sqrt(h), 1/sqrt(h)), created in that order. No __init__ of its own, so that a subclass's
    `super().__init__()` is Module's (as it is for a learner's cell installed on the class)."""

    gates = 1

    def _make_weights(self, input_size: int, hidden_size: int, bias: bool, device, dtype) -> None:
        self.input_size = input_size
        self.hidden_size = hidden_size
        width = self.gates * hidden_size
        bound = 1.0 / hidden_size**0.5
        self.W_ih = _uniform(input_size, width, bound=bound, device=device, dtype=dtype)
        self.W_hh = _uniform(hidden_size, width, bound=bound, device=device, dtype=dtype)
        self.bias_ih = _uniform(width, bound=bound, device=device, dtype=dtype) if bias else None
        self.bias_hh = _uniform(width, bound=bound, device=device, dtype=dtype) if bias else None

    def project_input(self, X: Tensor) -> Tensor:
        """X W_ih + bias_ih + bias_hh for X of shape (rows, input_size)."""
        if len(X.shape) != 2 or X.shape[1] != self.input_size:
            raise ValueError(f"{type(self).__name__}({self.input_size}, {self.hidden_size}): input of shape {X.shape}")
        out = X @ self.W_ih
        if self.bias_ih is not None:
            b = (self.bias_ih + self.bias_hh).reshape((1, out.shape[1]))
            out = out + b.broadcast_to(out.shape)
        return out

    def zero_state(self, xw: Tensor) -> Tensor:
        """The zero state (bs, hidden) for projected inputs xw (..., bs, gates * hidden)."""
        return init.zeros(xw.shape[-2], self.hidden_size, device=xw.device, dtype=xw.dtype)

    def preactivation(self, xw: Tensor, h: Optional[Tensor]) -> Tensor:
        """The projected input plus h W_hh; a missing h is the zero state, kept in the graph (as the course
        does) so that W_hh always gets its gradient, zero after a single step."""
        return xw + (h if h is not None else self.zero_state(xw)) @ self.W_hh


class RNNCell(_Cell):
    """h' = tanh | relu(x W_ih + b_ih + h W_hh + b_hh)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 device=None, dtype: str = "float32"):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNNCell: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__()
        self._make_weights(input_size, hidden_size, bias, device, dtype)
        self.nonlinearity = nonlinearity

    def step(self, xw: Tensor, h: Optional[Tensor]) -> Tensor:
        z = self.preactivation(xw, h)
        return ops.tanh(z) if self.nonlinearity == "tanh" else ops.relu(z)

    def forward(self, X: Tensor, h: Optional[Tensor] = None) -> Tensor:
        return self.step(self.project_input(X), h)


class LSTMCell(_Cell):
    """PyTorch's gate order i, f, g, o: c' = f c + i g, h' = o tanh(c')."""

    gates = 4

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype: str = "float32"):
        super().__init__()
        self._make_weights(input_size, hidden_size, bias, device, dtype)

    def step(self, xw: Tensor, state: Optional[tuple]) -> tuple[Tensor, Tensor]:
        h, c = state if state is not None else (None, None)
        return ops.lstm_step(self.preactivation(xw, h), c if c is not None else self.zero_state(xw))

    def forward(self, X: Tensor, h: Optional[tuple] = None) -> tuple[Tensor, Tensor]:
        return self.step(self.project_input(X), h)


_NEEDLE_FORWARDS = (RNNCell.forward, LSTMCell.forward)


def _unpack(parts) -> list:
    """The Tensors of a TensorTuple, as a list."""
    return [parts[k] for k in range(len(parts))]


def _layer_states(h: Optional[Tensor], num_layers: int) -> list:
    """Splits a (num_layers, bs, hidden) state into one per layer (None means zeros)."""
    if h is None:
        return [None] * num_layers
    if h.shape[0] != num_layers:
        raise ValueError(f"initial state of shape {h.shape} does not have {num_layers} layers")
    return _unpack(ops.split(h, axis=0))


def _runs_own_forward(cell: Module) -> bool:
    """Whether the cell's forward is needle's own, so that a layer may take the fast path (project the whole
    sequence at once, then `step`); any other forward (a subclass's, or one a course exercise installed on the
    class) is called once per time step, so that it is the code that runs."""
    return type(cell).forward in _NEEDLE_FORWARDS


def _run_layers(cells: list, X: Tensor, states: list, out_of) -> tuple[Tensor, list]:
    """Runs stacked cells over X (seq_len, bs, in): each layer projects its whole input at once,
    then steps through time. out_of(state) is the hidden output of a cell state. Returns the
    top layer's outputs (seq_len, bs, hidden) and each layer's final state."""
    if len(X.shape) != 3:
        raise ValueError(f"expected input of shape (seq_len, bs, input_size), got {X.shape}")
    seq_len, bs, _ = X.shape
    layer_in = X
    for layer, cell in enumerate(cells):
        if _runs_own_forward(cell):
            xw = cell.project_input(layer_in.reshape((seq_len * bs, layer_in.shape[2])))
            xw = xw.reshape((seq_len, bs, xw.shape[1]))
            if isinstance(cell, LSTMCell):  # the whole layer as one node (ops.lstm_layer)
                h0, c0 = states[layer] or (cell.zero_state(xw), cell.zero_state(xw))
                layer_in, h_last, c_last = ops.lstm_layer(xw, h0, c0, cell.W_hh)
                states[layer] = (h_last, c_last)
                continue
            xw, step = _unpack(ops.split(xw, axis=0)), cell.step
        else:
            xw, step = _unpack(ops.split(layer_in, axis=0)), cell
        state, outputs = states[layer], []
        for t in range(seq_len):
            state = step(xw[t], state)
            outputs.append(out_of(state))
        states[layer] = state
        layer_in = ops.stack(outputs, axis=0)
    return layer_in, states


class RNN(Module):
    """Stacked RNN cells (attribute `rnn_cells`): X (seq_len, bs, in), h0 (num_layers, bs, hidden) ->
    (output (seq_len, bs, hidden), h_n (num_layers, bs, hidden))."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 nonlinearity: str = "tanh", device=None, dtype: str = "float32"):
        super().__init__()
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.rnn_cells = [
            RNNCell(input_size if k == 0 else hidden_size, hidden_size, bias, nonlinearity, device, dtype)
            for k in range(num_layers)
        ]

    def forward(self, X: Tensor, h0: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
        out, states = _run_layers(self.rnn_cells, X, _layer_states(h0, self.num_layers), lambda h: h)
        return out, ops.stack(states, axis=0)


class LSTM(Module):
    """Stacked LSTM cells (attribute `lstm_cells`): X (seq_len, bs, in), h = (h0, c0) each
    (num_layers, bs, hidden) -> (output (seq_len, bs, hidden), (h_n, c_n))."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 device=None, dtype: str = "float32"):
        super().__init__()
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.lstm_cells = [
            LSTMCell(input_size if k == 0 else hidden_size, hidden_size, bias, device, dtype)
            for k in range(num_layers)
        ]

    def forward(self, X: Tensor, h: Optional[tuple] = None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        h0, c0 = h if h is not None else (None, None)
        hs, cs = _layer_states(h0, self.num_layers), _layer_states(c0, self.num_layers)
        states = [None if a is None else (a, b) for a, b in zip(hs, cs)]
        out, states = _run_layers(self.lstm_cells, X, states, lambda s: s[0])
        return out, (ops.stack([s[0] for s in states], axis=0), ops.stack([s[1] for s in states], axis=0))


class Embedding(Module):
    """weight (num_embeddings, embedding_dim) ~ N(0, 1); ids (seq_len, bs) -> (seq_len, bs, embedding_dim).
    Gathers rows (the numbers of one_hot(ids) @ weight without building the one-hot matrix)."""

    def __init__(self, num_embeddings: int, embedding_dim: int, device=None, dtype: str = "float32"):
        super().__init__()
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.weight = Parameter(init.randn(num_embeddings, embedding_dim, device=device, dtype=dtype))

    def forward(self, x: Tensor) -> Tensor:
        return ops.embedding(self.weight, x)
