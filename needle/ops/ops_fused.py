"""Fused ops beyond the course's set: each replaces a chain of five to fifteen ops (and their broadcast
copies, or a one-hot matrix) with one device kernel (the contract: needle/backend_ndarray/fused.py).

- sigmoid: (1 + tanh(x / 2)) / 2 in one kernel (no exp to overflow), gradient from the output.
- embedding gather / scatter-add: Embedding(ids) gives the numbers of one_hot(ids) @ weight without the
  (len(ids), num) one-hot matrix; each op is the other's gradient, so gradients of gradients work.
- softmax cross-entropy: the course's logsumexp(z) - sum(z * one_hot(y)), averaged, without the one-hot
  matrix (np.eye(k)[y] is 800 MB for a 10,000-word vocabulary). Its gradient has no second derivative.
- batch and layer normalization: BatchNorm (training: statistics of the batch), BatchNormEval (given
  statistics) and LayerNorm, each one kernel forward and one backward (no second derivative).
- the LSTM cell: (h', c') from the gate pre-activations and c in one kernel, the gradient in another.

Ids and labels are op inputs (constant Tensors of the values' dtype), so they stay on the device.
Nothing is kept on an op between forward and backward except what its `saved_*` attributes name."""
from __future__ import annotations

import numpy

from ..autograd import Tensor, TensorOp, TensorTupleOp
from ..backend_selection import array_api
from . import array_compat as compat

__all__ = ["Sigmoid", "SigmoidGrad", "sigmoid", "EmbeddingGather", "EmbeddingScatterAdd", "embedding",
           "SoftmaxCrossEntropy", "SoftmaxCrossEntropyGrad", "softmax_cross_entropy", "BatchNorm", "BatchNormEval",
           "BatchNormGrad", "batch_norm", "batch_norm_eval", "batch_norm_statistics", "LayerNorm", "LayerNormGrad",
           "layer_norm", "LSTMStep", "LSTMStepGrad", "lstm_step", "LSTMLayer", "LSTMLayerGrad", "lstm_layer"]

fused = compat.fused


def _constant(values, like: Tensor) -> Tensor:
    """`values` (a Tensor, or anything numpy reads) as a constant Tensor on like's device and dtype."""
    if not isinstance(values, Tensor):
        values = Tensor(numpy.asarray(values), device=like.device, dtype=like.dtype)
    return values.detach()


def _no_second_derivative(name: str):
    raise NotImplementedError(f"{name}: no second derivative (a fused gradient)")


# ---- sigmoid ----


class Sigmoid(TensorOp):
    """1 / (1 + exp(-x)), as (1 + tanh(x / 2)) / 2; gradient y (1 - y) from the output y."""

    def compute(self, a):
        return fused.sigmoid(a)

    def gradient(self, out_grad: Tensor, node: Tensor):
        return SigmoidGrad()(node, out_grad)


class SigmoidGrad(TensorOp):
    """(y, dy) -> dy * y * (1 - y); differentiable again through ordinary ops."""

    def compute(self, y, dy):
        return fused.sigmoid_grad(y, dy)

    def gradient(self, out_grad: Tensor, node: Tensor):
        y, dy = node.inputs
        return out_grad * dy * (1.0 - 2.0 * y), SigmoidGrad()(y, out_grad)


def sigmoid(x: Tensor) -> Tensor:
    return Sigmoid()(x)


# ---- embedding ----


class EmbeddingGather(TensorOp):
    """(weight (num, dim), ids) -> weight[ids], of shape ids.shape + (dim,)."""

    def compute(self, weight, ids):
        return fused.embedding_gather(weight, ids)

    def gradient(self, out_grad: Tensor, node: Tensor):
        weight, ids = node.inputs
        return EmbeddingScatterAdd(weight.shape[0])(out_grad, ids), None


class EmbeddingScatterAdd(TensorOp):
    """(grad (ids.shape + (dim,)), ids) -> (num, dim) zeros with each row of grad added at its id."""

    def __init__(self, num: int):
        self.num = num

    def compute(self, grad, ids):
        return fused.embedding_scatter_add(grad, ids, self.num)

    def gradient(self, out_grad: Tensor, node: Tensor):
        return EmbeddingGather()(out_grad, node.inputs[1]), None


def embedding(weight: Tensor, ids) -> Tensor:
    """Rows of weight (num, dim) at whole-number ids (a Tensor or array of any shape): ids.shape + (dim,).
    An id outside [0, num) raises IndexError, a fraction ValueError."""
    if len(weight.shape) != 2:
        raise ValueError(f"embedding: weight must be 2-D (num, dim), got shape {weight.shape}")
    return EmbeddingGather()(weight, _constant(ids, weight))


# ---- softmax cross-entropy ----


class SoftmaxCrossEntropy(TensorOp):
    """(logits (m, k), labels (m,)) -> mean over rows of logsumexp(row) - row[label], a 0-d array.

    saved_lse: the rows' logsumexp (m,), set by compute for the gradient (one exp pass fewer)."""

    def __init__(self):
        self.saved_lse = None

    def compute(self, logits, labels):
        loss, self.saved_lse = fused.softmax_xent(logits, labels)  # a bad label's error gets the op's name on its way up
        return compat.reshape(loss.sum(axis=0, keepdims=True) / logits.shape[0], ())

    def gradient(self, out_grad: Tensor, node: Tensor):
        logits, labels = node.inputs
        return SoftmaxCrossEntropyGrad(self.saved_lse)(logits, labels, out_grad), None


class SoftmaxCrossEntropyGrad(TensorOp):
    """(logits, labels, g) -> g * (softmax(logits) - one_hot(labels)) / m, from the forward's row logsumexp."""

    def __init__(self, lse):
        self.lse = lse

    def compute(self, logits, labels, out_grad):
        return fused.softmax_xent_grad(logits, labels, self.lse, out_grad)

    def gradient(self, out_grad: Tensor, node: Tensor):
        _no_second_derivative("softmax_cross_entropy (use ops.logsumexp for one)")


def softmax_cross_entropy(logits: Tensor, labels) -> Tensor:
    """Mean cross-entropy of logits (n, k) against whole-number labels (n,): a 0-d Tensor."""
    if len(logits.shape) != 2:
        raise ValueError(f"softmax_cross_entropy: logits must be 2-D (n, k), got shape {logits.shape}")
    n = logits.shape[0]
    labels = _constant(labels, logits)
    count = int(numpy.prod(labels.shape))
    if count != n:
        raise ValueError(f"softmax_cross_entropy: {count} labels for {n} rows of logits")
    return SoftmaxCrossEntropy()(logits, labels.reshape((n,)))


# ---- batch and layer normalization ----


class BatchNormGrad(TensorTupleOp):
    """(x, weight, mean, var, dy) -> (dx, dweight, dbias); batch_stats: mean/var are x's batch statistics."""

    def __init__(self, eps: float, batch_stats: bool):
        self.eps = eps
        self.batch_stats = batch_stats

    def compute(self, x, weight, mean, var, dy):
        return fused.batchnorm_backward(x, dy, weight, mean, var, self.eps, self.batch_stats)

    def gradient(self, out_grad, node):
        _no_second_derivative("batch_norm")


class BatchNorm(TensorOp):
    """(x (N, C, ...), weight (C,), bias (C,), mean (C,), var (C,)) -> (x - mean) / sqrt(var + eps) * weight
    + bias per channel (axis 1), where mean and var are x's own batch statistics (batch_norm_statistics(x),
    biased variance): the gradient includes their dependence on x, and gives none to them."""

    batch_stats = True

    def __init__(self, eps: float):
        self.eps = eps

    def compute(self, x, weight, bias, mean, var):
        return fused.batchnorm_forward(x, weight, bias, mean, var, self.eps)

    def gradient(self, out_grad: Tensor, node: Tensor):
        x, weight, _, mean, var = node.inputs
        grads = BatchNormGrad(self.eps, self.batch_stats)(x, weight, mean, var, out_grad)
        return grads[0], grads[1], grads[2], None, None


class BatchNormEval(BatchNorm):
    """BatchNorm with given statistics (the running averages, in eval mode): a per-channel affine map."""

    batch_stats = False


def batch_norm_statistics(x: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and biased variance of x (N, C, ...) per channel, as constant (C,) Tensors."""
    mean, var = fused.batchnorm_stats(x.realize_cached_data())
    return Tensor.make_const(mean), Tensor.make_const(var)


class Dense(TensorOp):
    """x's values as one dense array (no copy when x already is one), for kernels that would each copy a strided
    view: batch norm's statistics, forward and backward (a conv's NCHW output is NHWC seen through strides)."""

    def compute(self, a):
        return compat.compact(a)

    def gradient(self, out_grad, node):
        return out_grad


def batch_norm(x: Tensor, weight: Tensor, bias: Tensor, eps: float) -> tuple[Tensor, Tensor, Tensor]:
    """Training-mode batch normalization over all axes but 1: (output, batch mean, batch variance)."""
    x = Dense()(x)
    mean, var = batch_norm_statistics(x)
    return BatchNorm(eps)(x, weight, bias, mean, var), mean, var


def batch_norm_eval(x: Tensor, weight: Tensor, bias: Tensor, mean, var, eps: float) -> Tensor:
    """Batch normalization with fixed statistics mean, var (C,) (Tensors or arrays)."""
    return BatchNormEval(eps)(x, weight, bias, _constant(mean, x), _constant(var, x))


class LayerNormGrad(TensorTupleOp):
    """(x, weight, dy) -> (dx, dweight, dbias); the row statistics are recomputed from x."""

    def __init__(self, eps: float):
        self.eps = eps

    def compute(self, x, weight, dy):
        return fused.layernorm_backward(x, dy, weight, self.eps)

    def gradient(self, out_grad, node):
        _no_second_derivative("layer_norm")


class LayerNorm(TensorOp):
    """(x (..., D), weight (D,), bias (D,)) -> each row normalised over the last axis (biased variance),
    times weight plus bias."""

    def __init__(self, eps: float):
        self.eps = eps

    def compute(self, x, weight, bias):
        return fused.layernorm_forward(x, weight, bias, self.eps)

    def gradient(self, out_grad: Tensor, node: Tensor):
        x, weight, _ = node.inputs
        grads = LayerNormGrad(self.eps)(x, weight, out_grad)
        return grads[0], grads[1], grads[2]


def layer_norm(x: Tensor, weight: Tensor, bias: Tensor, eps: float) -> Tensor:
    return LayerNorm(eps)(x, weight, bias)


# ---- LSTM cell ----


class LSTMStepGrad(TensorTupleOp):
    """(z, c, dh, dc') -> (dz, dc), the gates recomputed from z."""

    def compute(self, z, c, dh, dc_new):
        return fused.lstm_cell_grad(z, c, dh, dc_new)

    def gradient(self, out_grad, node):
        _no_second_derivative("lstm_step")


class LSTMStep(TensorTupleOp):
    """(z (bs, 4h) pre-activations in PyTorch's gate order i, f, g, o; c (bs, h)) -> (h', c') with
    c' = f c + i g and h' = o tanh(c'): one LSTM step's gate arithmetic, one kernel."""

    def compute(self, z, c):
        return fused.lstm_cell(z, c)

    def gradient(self, out_grad, node):
        z, c = node.inputs
        grads = LSTMStepGrad()(z, c, out_grad[0], out_grad[1])
        return grads[0], grads[1]


def lstm_step(z: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
    """(h', c') of one LSTM step (see LSTMStep)."""
    h_new, c_new = LSTMStep()(z, c)
    return h_new, c_new


class LSTMLayerGrad(TensorTupleOp):
    """(W_hh, dH, dh_T, dc_T) -> (dxw, dh0, dc0, dW_hh): backpropagation through time over the states that
    LSTMLayer saved. The step adjoints dz_t are stacked, so W_hh's gradient is one product over all steps,
    H_prev^T dZ, instead of T thin ones summed."""

    def __init__(self, saved: tuple):
        self.saved = saved

    def compute(self, w_hh, dH, dh_last, dc_last):
        hs, cs, zs = self.saved
        w_t = array_api.transpose(w_hh, (1, 0))
        d_outputs = compat.rows(dH)
        dh, dc, dzs = dh_last + d_outputs[-1], dc_last, [None] * len(zs)
        for t in reversed(range(len(zs))):
            dzs[t], dc = fused.lstm_cell_grad(zs[t], cs[t], dh, dc)
            dh = dzs[t] @ w_t if t == 0 else dzs[t] @ w_t + d_outputs[t - 1]
        dZ = array_api.stack(dzs, axis=0)
        steps, bs, width = dZ.shape
        h_prev = compat.reshape(array_api.stack(hs[:-1], axis=0), (steps * bs, w_hh.shape[0]))
        dw = array_api.transpose(h_prev, (1, 0)) @ compat.reshape(dZ, (steps * bs, width))
        return dZ, dh, dc, dw

    def gradient(self, out_grad, node):
        _no_second_derivative("lstm_layer")


class LSTMLayer(TensorTupleOp):
    """A whole LSTM layer over time, one node: (xw (T, bs, 4h) the projected inputs with both biases; h0, c0
    (bs, h); W_hh (h, 4h)) -> (H (T, bs, h) the hidden states, h_T, c_T). Step t computes z_t = xw[t] +
    h_{t-1} W_hh and (h_t, c_t) = lstm_step(z_t, c_{t-1}), as the cell does; the gradient is LSTMLayerGrad.
    saved: (hs, cs, zs), every state and pre-activation of the last compute."""

    def __init__(self):
        self.saved = None

    def compute(self, xw, h0, c0, w_hh):
        hs, cs, zs = [h0], [c0], []
        for x in compat.rows(xw):
            zs.append(x + hs[-1] @ w_hh)
            h, c = fused.lstm_cell(zs[-1], cs[-1])
            hs.append(h)
            cs.append(c)
        self.saved = (hs, cs, zs)
        return array_api.stack(hs[1:], axis=0), hs[-1], cs[-1]

    def gradient(self, out_grad, node):
        grads = LSTMLayerGrad(self.saved)(node.inputs[3], out_grad[0], out_grad[1], out_grad[2])
        return grads[0], grads[1], grads[2], grads[3]


def lstm_layer(xw: Tensor, h0: Tensor, c0: Tensor, w_hh: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(H, h_T, c_T) of one LSTM layer over a whole sequence (see LSTMLayer)."""
    out, h_last, c_last = LSTMLayer()(xw, h0, c0, w_hh)
    return out, h_last, c_last
