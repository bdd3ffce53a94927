"""Sequence modules against numpy re-computations and PyTorch (when installed)."""
import numpy as np
import pytest

import needle as ndl
from needle import nn
from nn_cases import torch_or_skip

TOL = dict(rtol=1e-4, atol=1e-5)


def _sig(z):
    return 1 / (1 + np.exp(-z))


def _rnn_step(cell, x, h):
    z = x @ cell.W_ih.numpy() + cell.bias_ih.numpy() + h @ cell.W_hh.numpy() + cell.bias_hh.numpy()
    return np.tanh(z) if cell.nonlinearity == "tanh" else np.maximum(z, 0)


def _lstm_step(cell, x, h, c):
    z = x @ cell.W_ih.numpy() + cell.bias_ih.numpy() + h @ cell.W_hh.numpy() + cell.bias_hh.numpy()
    i, f, g, o = np.split(z, 4, axis=1)
    c = _sig(f) * c + _sig(i) * np.tanh(g)
    return _sig(o) * np.tanh(c), c


def test_sigmoid_stable_and_gradient():
    x = ndl.Tensor(np.array([-100.0, -3.0, 0.0, 2.0, 100.0], dtype=np.float32))
    y = nn.Sigmoid()(x)
    np.testing.assert_allclose(y.numpy(), _sig(x.numpy().astype(np.float64)), rtol=1e-6, atol=1e-7)
    y.sum().backward()
    s = _sig(x.numpy().astype(np.float64))
    np.testing.assert_allclose(x.grad.numpy(), s * (1 - s), rtol=1e-5, atol=1e-7)


def test_cell_init_order_and_bounds():
    np.random.seed(0)
    cell = nn.LSTMCell(3, 5)
    np.random.seed(0)
    k = 1 / np.sqrt(5)
    w_ih = np.random.rand(3, 20) * 2 * k - k
    np.testing.assert_allclose(cell.W_ih.numpy(), w_ih, rtol=1e-6)
    assert cell.W_hh.shape == (5, 20) and cell.bias_ih.shape == (20,) and cell.bias_hh.shape == (20,)
    assert np.abs(cell.bias_hh.numpy()).max() <= k
    assert [p.shape for p in nn.RNNCell(3, 5).parameters()] == [(3, 5), (5, 5), (5,), (5,)]
    assert len(nn.RNNCell(3, 5, bias=False).parameters()) == 2


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_rnn_cell_vs_numpy(nonlinearity):
    np.random.seed(1)
    cell = nn.RNNCell(4, 6, nonlinearity=nonlinearity)
    X, H = np.random.randn(3, 4).astype(np.float32), np.random.randn(3, 6).astype(np.float32)
    np.testing.assert_allclose(cell(ndl.Tensor(X), ndl.Tensor(H)).numpy(), _rnn_step(cell, X, H), **TOL)
    np.testing.assert_allclose(cell(ndl.Tensor(X)).numpy(), _rnn_step(cell, X, 0 * H), **TOL)
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.RNNCell(4, 6, nonlinearity="sigmoid")


def test_lstm_cell_vs_numpy():
    np.random.seed(2)
    cell = nn.LSTMCell(4, 6)
    X, H, C = (np.random.randn(3, n).astype(np.float32) for n in (4, 6, 6))
    h, c = cell(ndl.Tensor(X), (ndl.Tensor(H), ndl.Tensor(C)))
    eh, ec = _lstm_step(cell, X, H, C)
    np.testing.assert_allclose(h.numpy(), eh, **TOL)
    np.testing.assert_allclose(c.numpy(), ec, **TOL)
    h0, c0 = cell(ndl.Tensor(X))
    eh, ec = _lstm_step(cell, X, 0 * H, 0 * C)
    np.testing.assert_allclose(h0.numpy(), eh, **TOL)


@pytest.mark.parametrize("num_layers", [1, 2])
def test_rnn_and_lstm_layers_vs_numpy(num_layers):
    np.random.seed(3)
    seq, bs, n_in, hid = 4, 2, 3, 5
    X = np.random.randn(seq, bs, n_in).astype(np.float32)
    H0, C0 = (np.random.randn(num_layers, bs, hid).astype(np.float32) for _ in range(2))
    rnn, lstm = nn.RNN(n_in, hid, num_layers), nn.LSTM(n_in, hid, num_layers)
    out, h_n = rnn(ndl.Tensor(X), ndl.Tensor(H0))
    lout, (lh, lc) = lstm(ndl.Tensor(X), (ndl.Tensor(H0), ndl.Tensor(C0)))
    inp, hs, lin, lhs, lcs = X, [], X, [], []
    for layer in range(num_layers):
        h, outs, lh_, lc_, louts = H0[layer], [], H0[layer], C0[layer], []
        for t in range(seq):
            h = _rnn_step(rnn.rnn_cells[layer], inp[t], h)
            outs.append(h)
            lh_, lc_ = _lstm_step(lstm.lstm_cells[layer], lin[t], lh_, lc_)
            louts.append(lh_)
        inp, lin = np.stack(outs), np.stack(louts)
        hs.append(h)
        lhs.append(lh_)
        lcs.append(lc_)
    np.testing.assert_allclose(out.numpy(), inp, **TOL)
    np.testing.assert_allclose(h_n.numpy(), np.stack(hs), **TOL)
    np.testing.assert_allclose(lout.numpy(), lin, **TOL)
    np.testing.assert_allclose(lh.numpy(), np.stack(lhs), **TOL)
    np.testing.assert_allclose(lc.numpy(), np.stack(lcs), **TOL)


def _load_torch_lstm(ours, ref, torch):
    for k, cell in enumerate(ours.lstm_cells):
        for name in ("W_ih", "W_hh", "bias_ih", "bias_hh"):
            tname = {"W_ih": "weight_ih", "W_hh": "weight_hh"}.get(name, name) + f"_l{k}"
            getattr(cell, name).data = ndl.Tensor(getattr(ref, tname).detach().numpy().T.copy())


def test_lstm_matches_torch_forward_and_backward():
    torch = torch_or_skip()
    torch.manual_seed(0)
    ref = torch.nn.LSTM(3, 4, num_layers=2)
    ours = nn.LSTM(3, 4, num_layers=2)
    _load_torch_lstm(ours, ref, torch)
    X = np.random.default_rng(0).standard_normal((5, 2, 3)).astype(np.float32)
    x, xt = ndl.Tensor(X), torch.tensor(X, requires_grad=True)
    out, (h, c) = ours(x)
    outt, (ht, ct) = ref(xt)
    np.testing.assert_allclose(out.numpy(), outt.detach().numpy(), **TOL)
    np.testing.assert_allclose(c.numpy(), ct.detach().numpy(), **TOL)
    (out.sum() + (h * h).sum() + (c * c).sum()).backward()
    (outt.sum() + (ht * ht).sum() + (ct * ct).sum()).backward()
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        ours.lstm_cells[0].W_hh.grad.numpy(), ref.weight_hh_l0.grad.numpy().T, rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(
        ours.lstm_cells[1].bias_ih.grad.numpy(), ref.bias_ih_l1.grad.numpy(), rtol=1e-4, atol=1e-5
    )


def test_rnn_matches_torch():
    torch = torch_or_skip()
    torch.manual_seed(1)
    ref = torch.nn.RNN(3, 4, num_layers=2, nonlinearity="relu")
    ours = nn.RNN(3, 4, num_layers=2, nonlinearity="relu")
    for k, cell in enumerate(ours.rnn_cells):
        cell.W_ih.data = ndl.Tensor(getattr(ref, f"weight_ih_l{k}").detach().numpy().T.copy())
        cell.W_hh.data = ndl.Tensor(getattr(ref, f"weight_hh_l{k}").detach().numpy().T.copy())
        cell.bias_ih.data = ndl.Tensor(getattr(ref, f"bias_ih_l{k}").detach().numpy())
        cell.bias_hh.data = ndl.Tensor(getattr(ref, f"bias_hh_l{k}").detach().numpy())
    X = np.random.default_rng(1).standard_normal((6, 3, 3)).astype(np.float32)
    H = np.random.default_rng(2).standard_normal((2, 3, 4)).astype(np.float32)
    out, h = ours(ndl.Tensor(X), ndl.Tensor(H))
    outt, ht = ref(torch.tensor(X), torch.tensor(H))
    np.testing.assert_allclose(out.numpy(), outt.detach().numpy(), **TOL)
    np.testing.assert_allclose(h.numpy(), ht.detach().numpy(), **TOL)


def test_embedding_equals_one_hot_product_and_scatters_gradient():
    np.random.seed(4)
    emb = nn.Embedding(7, 3)
    ids = np.array([[0, 6], [2, 2], [5, 0]])
    x = ndl.Tensor(ids.astype(np.float32), requires_grad=False)
    y = emb(x)
    W = emb.weight.numpy()
    one_hot = np.eye(7, dtype=np.float32)[ids]
    np.testing.assert_allclose(y.numpy(), one_hot @ W, rtol=1e-6)
    G = np.random.randn(3, 2, 3).astype(np.float32)
    (y * ndl.Tensor(G)).sum().backward()
    np.testing.assert_allclose(emb.weight.grad.numpy(), one_hot.reshape(-1, 7).T @ G.reshape(-1, 3), rtol=1e-5, atol=1e-6)


def test_embedding_rejects_bad_ids():
    emb = nn.Embedding(5, 2)
    with pytest.raises(IndexError, match="embedding"):
        emb(ndl.Tensor(np.array([[1.0, 5.0]])))
    with pytest.raises(ValueError, match="whole"):
        emb(ndl.Tensor(np.array([[1.5]])))


@pytest.mark.skipif(ndl.BACKEND != "nd", reason="cpu_numpy() is an NDArray device")
def test_embedding_on_cpu_numpy_device():
    dev = ndl.cpu_numpy()
    emb = nn.Embedding(4, 2, device=dev)
    y = emb(ndl.Tensor(np.array([[3.0, 1.0]]), device=dev))
    assert y.device == dev
    np.testing.assert_allclose(y.numpy()[0], emb.weight.numpy()[[3, 1]])


class _ZeroInputRNNCell(nn.RNNCell):
    """A subclass whose forward ignores its input: the layer must call it rather than needle's fast path."""

    def forward(self, X, h=None):
        if h is None:
            h = ndl.init.zeros(X.shape[0], self.hidden_size)
        return ndl.ops.tanh(h @ self.W_hh + 1.0)


class _HalfCellLSTMCell(nn.LSTMCell):
    def forward(self, X, h=None):
        h, c = super().forward(X, h)
        return h, c * 0.5


def test_layers_step_with_a_subclassed_cells_own_forward():
    np.random.seed(0)
    rnn = nn.RNN(3, 4, num_layers=2)
    rnn.rnn_cells = [_ZeroInputRNNCell(3, 4), _ZeroInputRNNCell(4, 4)]
    X = np.random.randn(5, 2, 3).astype(np.float32)
    out, h_n = rnn(ndl.Tensor(X))
    h = np.zeros((2, 4))
    for _ in range(5):
        h = np.tanh(h @ rnn.rnn_cells[1].W_hh.numpy() + 1.0)
    np.testing.assert_allclose(out.numpy()[-1], h, **TOL)

    lstm = nn.LSTM(3, 4)
    lstm.lstm_cells = [_HalfCellLSTMCell(3, 4)]
    cell = lstm.lstm_cells[0]
    out, (h_n, c_n) = lstm(ndl.Tensor(X))
    h, c = np.zeros((2, 4)), np.zeros((2, 4))
    hs = []
    for x in X:
        h, c = _lstm_step(cell, x, h, c)
        c = c * 0.5
        hs.append(h)
    np.testing.assert_allclose(c_n.numpy()[0], c, **TOL)
    np.testing.assert_allclose(h_n.numpy()[0], h, **TOL)
    np.testing.assert_allclose(out.numpy(), np.stack(hs), **TOL)  # the outputs are each step's h, not its c


def test_one_layer_by_default_and_inputs_must_be_rows_of_input_size():
    np.random.seed(0)
    assert nn.RNN(3, 4).num_layers == 1 and len(nn.RNN(3, 4).rnn_cells) == 1
    assert nn.LSTM(3, 4).num_layers == 1 and len(nn.LSTM(3, 4).lstm_cells) == 1
    for cell in (nn.RNNCell(3, 4), nn.LSTMCell(3, 4)):
        with pytest.raises(ValueError):
            cell(ndl.Tensor(np.ones(3, dtype=np.float32)))  # one row without its batch axis
