"""Ops the nn modules need beyond the course's set, each replacing a one-hot matrix product:

- an embedding gather and its scatter-add: Embedding(ids) gives the numbers of one_hot(ids) @ weight
  but copies rows instead of building a (len(ids), num_embeddings) one-hot matrix; its gradient
  scatter-adds rows back. Each op is the other's gradient, so gradients of gradients work too.
- a fused softmax cross-entropy: SoftmaxLoss's logsumexp(z) - sum(z * one_hot(y)) without the one-hot
  matrix (the course's np.eye(k)[y] builds a k x k identity: 800 MB for a 10,000-word vocabulary).
  Its gradient (softmax - one_hot) / n is an op of its own, with no second derivative.
- sigmoid as one op, (1 + tanh(x / 2)) / 2 (no exp to overflow), instead of four.
- BatchNorm/LayerNorm as one op (Normalize) computed on host views with numpy's broadcasting, instead of
  some fifteen ops that each copy a broadcast operand; its gradient has no second derivative.
- an LSTM step's gate arithmetic as two ops (LSTMGates for c', LSTMOutput for h'), same trade-off."""
from __future__ import annotations

import numpy as np

from needle.autograd import Tensor, TensorOp
from needle.backend_selection import array_api

__all__ = ["LSTMGates", "LSTMOutput", "LSTMStepGrad", "Normalize", "NormalizeGrad", "sigmoid", "Sigmoid", "embedding", "EmbeddingGather", "EmbeddingScatter", "softmax_cross_entropy", "SoftmaxCrossEntropy",
           "SoftmaxCrossEntropyGrad"]


def host_view(a) -> np.ndarray:
    """A numpy view of an array's memory (no copy on the host devices when compact; see NDArray.numpy_view)."""
    return a if isinstance(a, np.ndarray) else a.compact().numpy_view()


def _like(values: np.ndarray, ref):
    """values as an array of ref's kind (NDArray on ref's device, or numpy)."""
    if isinstance(ref, np.ndarray):
        return values
    return array_api.array(values, dtype=ref.dtype, device=ref.device)


class Sigmoid(TensorOp):
    """1 / (1 + exp(-x)), computed as (1 + tanh(x / 2)) / 2; gradient s (1 - s) from the output."""

    def compute(self, a):
        return (array_api.tanh(a * 0.5) + 1.0) * 0.5

    def gradient(self, out_grad: Tensor, node: Tensor):
        return out_grad * node * (1.0 - node)


def sigmoid(x: Tensor) -> Tensor:
    return Sigmoid()(x)


def _check_ids(ids: np.ndarray, num: int, op: str) -> np.ndarray:
    flat = np.asarray(ids).astype(np.int64)
    if flat.size and (flat.min() < 0 or flat.max() >= num):
        raise IndexError(f"{op}: ids must lie in [0, {num}), got values in [{flat.min()}, {flat.max()}]")
    if not np.array_equal(flat, ids):
        raise ValueError(f"{op}: ids must be whole numbers")
    return flat


class EmbeddingGather(TensorOp):
    """weight (num, dim) -> weight[ids] with shape ids.shape + (dim,)."""

    def __init__(self, ids: np.ndarray):
        self.ids = ids

    def compute(self, weight):
        rows = host_view(weight)[self.ids.reshape(-1)]
        return _like(rows.reshape(*self.ids.shape, weight.shape[1]), weight)

    def gradient(self, out_grad: Tensor, node: Tensor):
        return EmbeddingScatter(self.ids, node.inputs[0].shape[0])(out_grad)


class EmbeddingScatter(TensorOp):
    """grad (ids.shape + (dim,)) -> (num, dim) with each row added at its id (the gather's adjoint)."""

    def __init__(self, ids: np.ndarray, num: int):
        self.ids = ids
        self.num = num

    def compute(self, grad):
        g = host_view(grad).reshape(-1, grad.shape[-1])
        out = np.zeros((self.num, g.shape[1]), dtype=g.dtype)
        np.add.at(out, self.ids.reshape(-1), g)
        return _like(out, grad)

    def gradient(self, out_grad: Tensor, node: Tensor):
        return EmbeddingGather(self.ids)(out_grad)


def embedding(weight: Tensor, ids) -> Tensor:
    """Rows of weight (num, dim) at integer ids of any shape: ids.shape + (dim,)."""
    if len(weight.shape) != 2:
        raise ValueError(f"embedding: weight must be 2-D (num, dim), got shape {weight.shape}")
    return EmbeddingGather(_check_ids(np.asarray(ids), weight.shape[0], "embedding"))(weight)


class SoftmaxCrossEntropy(TensorOp):
    """logits (n, k) -> mean over rows of logsumexp(row) - row[label] (a 0-d array)."""

    def __init__(self, labels: np.ndarray):
        self.labels = labels
        self.probs = None

    def compute(self, logits):
        n = logits.shape[0]
        api = np if isinstance(logits, np.ndarray) else array_api
        top = logits.max(axis=1, keepdims=True)
        e = api.exp(logits - api.broadcast_to(top, logits.shape))
        total = api.sum(e, axis=1, keepdims=True)
        self.probs = e / api.broadcast_to(total, logits.shape)  # kept for the gradient
        lse = float(np.asarray(api.sum(api.log(total) + top)))
        picked = float(host_view(logits)[np.arange(n), self.labels].sum(dtype=np.float64))
        return _like(np.array((lse - picked) / n, dtype=logits.dtype), logits)

    def gradient(self, out_grad: Tensor, node: Tensor):
        return SoftmaxCrossEntropyGrad(self.labels, self.probs)(node.inputs[0], out_grad)


class SoftmaxCrossEntropyGrad(TensorOp):
    """(logits, scalar g) -> g * (softmax(logits) - one_hot(labels)) / n, from the forward's softmax."""

    def __init__(self, labels: np.ndarray, probs):
        self.labels = labels
        self.probs = probs

    def compute(self, logits, out_grad):
        scale = float(np.asarray(out_grad)) / logits.shape[0]
        grad = host_view(self.probs) * np.asarray(scale, dtype=self.probs.dtype)
        grad[np.arange(grad.shape[0]), self.labels] -= scale
        return _like(grad, logits)

    def gradient(self, out_grad: Tensor, node: Tensor):
        raise NotImplementedError("softmax_cross_entropy: no second derivative (use ops.logsumexp for one)")


def softmax_cross_entropy(logits: Tensor, labels) -> Tensor:
    """Mean cross-entropy of logits (n, k) against integer labels (n,): a 0-d Tensor."""
    if len(logits.shape) != 2:
        raise ValueError(f"softmax_cross_entropy: logits must be 2-D (n, k), got shape {logits.shape}")
    n, k = logits.shape
    ids = _check_ids(np.asarray(labels), k, "softmax_cross_entropy").reshape(-1)
    if ids.shape[0] != n:
        raise ValueError(f"softmax_cross_entropy: {ids.shape[0]} labels for {n} rows of logits")
    return SoftmaxCrossEntropy(ids)(logits)


class Normalize(TensorOp):
    """(x, weight, bias) -> weight * (x - mean) / sqrt(var + eps) + bias, the statistics taken over `axes`
    (batch mean and biased variance) or given as `stats` = (mean, var) per feature; weight and bias are per
    feature along `feature_axis`. One op for BatchNorm and LayerNorm instead of some fifteen (and their
    broadcast copies); it keeps the batch statistics in .mean / .var for the running averages."""

    def __init__(self, axes: tuple, feature_axis: int, eps: float, stats=None):
        self.axes = axes
        self.feature_axis = feature_axis
        self.eps = eps
        self.stats = stats

    def _feature_shape(self, ndim: int, size: int) -> tuple:
        return tuple(size if i == self.feature_axis else 1 for i in range(ndim))

    def compute(self, x, weight, bias):
        xh = host_view(x)
        shape = self._feature_shape(xh.ndim, weight.shape[0])
        if self.stats is None:
            self.mean = xh.mean(axis=self.axes, keepdims=True)
            centred = xh - self.mean
            self.var = (centred * centred).mean(axis=self.axes, keepdims=True)
        else:
            self.mean, self.var = (host_view(s).reshape(shape) for s in self.stats)
            centred = xh - self.mean
        self.inv = 1.0 / np.sqrt(self.var + np.asarray(self.eps, dtype=self.var.dtype))
        self.xhat = centred * self.inv
        self.w = host_view(weight).reshape(shape)
        return _like(self.xhat * self.w + host_view(bias).reshape(shape), x)

    def gradient(self, out_grad: Tensor, node: Tensor):
        return tuple(NormalizeGrad(self, k)(out_grad) for k in range(3))


class NormalizeGrad(TensorOp):
    """The gradient of Normalize for input k (0: x, 1: weight, 2: bias) from the forward's saved values."""

    def __init__(self, norm: Normalize, k: int):
        self.norm = norm
        self.k = k

    def compute(self, out_grad):
        n, g = self.norm, host_view(out_grad)
        param_axes = tuple(i for i in range(g.ndim) if i != n.feature_axis)
        if self.k == 1:
            return _like((g * n.xhat).sum(axis=param_axes), out_grad)
        if self.k == 2:
            return _like(g.sum(axis=param_axes), out_grad)
        dxhat = g * n.w
        if n.stats is not None:  # fixed statistics: a per-feature affine map
            return _like(dxhat * n.inv, out_grad)
        mean_d = dxhat.mean(axis=n.axes, keepdims=True)
        mean_dx = (dxhat * n.xhat).mean(axis=n.axes, keepdims=True)
        return _like(n.inv * (dxhat - mean_d - n.xhat * mean_dx), out_grad)

    def gradient(self, out_grad: Tensor, node: Tensor):
        raise NotImplementedError("normalize: no second derivative (fused BatchNorm/LayerNorm)")


def _sigmoid_np(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


class LSTMGates(TensorOp):
    """(z (bs, 4h) pre-activations in PyTorch's gate order i, f, g, o; c (bs, h)) -> c' = f c + i g.
    With LSTMOutput, one LSTM step is two ops instead of some fifteen; the gates are kept for both."""

    def compute(self, z, c):
        zh = host_view(z)
        h = zh.shape[1] // 4
        self.i, self.f = _sigmoid_np(zh[:, :h]), _sigmoid_np(zh[:, h : 2 * h])
        self.g, self.o = np.tanh(zh[:, 2 * h : 3 * h]), _sigmoid_np(zh[:, 3 * h :])
        self.c = np.array(host_view(c))
        return _like(self.f * self.c + self.i * self.g, c)

    def gradient(self, out_grad: Tensor, node: Tensor):
        return LSTMStepGrad(self, "gates_z")(out_grad), LSTMStepGrad(self, "gates_c")(out_grad)


class LSTMOutput(TensorOp):
    """(z, c') -> h' = o tanh(c'), with o from the LSTMGates op of the same step."""

    def __init__(self, gates: LSTMGates):
        self.gates = gates

    def compute(self, z, c_new):
        self.tanh_c = np.tanh(host_view(c_new))
        return _like(self.gates.o * self.tanh_c, c_new)

    def gradient(self, out_grad: Tensor, node: Tensor):
        return LSTMStepGrad(self, "output_z")(out_grad), LSTMStepGrad(self, "output_c")(out_grad)


class LSTMStepGrad(TensorOp):
    """Gradients of LSTMGates / LSTMOutput from their saved gate values (no second derivative)."""

    def __init__(self, op, which: str):
        self.op = op
        self.which = which

    def compute(self, out_grad):
        d = host_view(out_grad)
        gates = self.op if self.which.startswith("gates") else self.op.gates
        i, f, g, o = gates.i, gates.f, gates.g, gates.o
        if self.which == "gates_c":
            return _like(d * f, out_grad)
        if self.which == "output_c":
            t = self.op.tanh_c
            return _like(d * o * (1.0 - t * t), out_grad)
        h = d.shape[1]
        dz = np.zeros((d.shape[0], 4 * h), dtype=d.dtype)
        if self.which == "gates_z":
            dz[:, :h] = d * g * i * (1.0 - i)
            dz[:, h : 2 * h] = d * gates.c * f * (1.0 - f)
            dz[:, 2 * h : 3 * h] = d * i * (1.0 - g * g)
        else:  # output_z: only the output gate
            dz[:, 3 * h :] = d * self.op.tanh_c * o * (1.0 - o)
        return _like(dz, out_grad)

    def gradient(self, out_grad: Tensor, node: Tensor):
        raise NotImplementedError("LSTM step: no second derivative (fused gates)")
