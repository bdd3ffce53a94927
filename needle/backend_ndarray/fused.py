"""Array-level functions of the fused ops (needle/ops/ops_fused.py), each one device kernel call.

They take NDArrays (any device that has the kernels) or, under NEEDLE_BACKEND=np, numpy arrays (run by
the numpy device module's kernels on the same buffers). Layout work stays here: inputs are made compact
on their device (a device kernel, no host copy), outputs allocated, and the kernel sees flat buffers.

Device contract of the fused kernels
------------------------------------
Every buffer of one call has the same dtype (float32 or float64). Integer ids and labels are passed as a
buffer of that dtype holding whole numbers (NDArray stores floats only, and ids arrive as float Tensors;
float32 holds every integer below 2**24 exactly). Kernels check them: an id outside [0, num) raises
IndexError, a fraction raises ValueError (a GPU kernel may report through a flag instead). All sizes are
element counts; buffers are dense row-major; outputs are fully overwritten and never alias inputs.

    embedding_gather(weight, ids, out, n_ids, num, dim)
        out[r, :] = weight[ids[r], :]                 weight (num, dim), ids (n_ids,), out (n_ids, dim)
    embedding_scatter_add(grad, ids, out, n_ids, num, dim)
        out = 0; out[ids[r], :] += grad[r, :]         grad (n_ids, dim), out (num, dim)  (atomics on a GPU)
    softmax_xent(logits, labels, loss, lse, m, k)
        lse[i] = log sum_j exp(logits[i, j]); loss[i] = lse[i] - logits[i, labels[i]]
                                                      logits (m, k), labels/loss/lse (m,)
    softmax_xent_grad(logits, labels, lse, out_grad, out, m, k)
        out[i, j] = out_grad[0] / m * (exp(logits[i, j] - lse[i]) - (j == labels[i]))
                                                      out_grad: 1 element (the loss's adjoint), out (m, k)
    sigmoid(a, out, n)                                out = (1 + tanh(a / 2)) / 2
    sigmoid_grad(y, dy, out, n)                       out = dy * y * (1 - y)      (y = sigmoid(x))
    batchnorm_stats(x, mean, var, outer, c, inner)
        x (outer, c, inner); mean[ch], var[ch] over outer and inner (biased variance)
    batchnorm_forward(x, weight, bias, mean, var, out, outer, c, inner, eps)
        out = (x - mean[ch]) / sqrt(var[ch] + eps) * weight[ch] + bias[ch]
    batchnorm_backward(x, dy, weight, mean, var, dx, dweight, dbias, outer, c, inner, eps, batch_stats)
        dbias[ch] = sum dy, dweight[ch] = sum dy * xhat; dx = weight rstd (dy - [batch_stats] (dbias +
        xhat dweight) / (outer inner)); batch_stats (bool): mean/var are x's own statistics (training)
    layernorm_forward(x, weight, bias, out, rows, dim, eps)
        x (rows, dim), statistics per row; out = (x - mean) / sqrt(var + eps) * weight[j] + bias[j]
    layernorm_backward(x, dy, weight, dx, dweight, dbias, rows, dim, eps)
        the row statistics are recomputed from x; dweight, dbias (dim,) summed over rows
    lstm_cell(z, c, h_out, c_out, bs, h)
        z (bs, 4h) in gate order i, f, g, o; c (bs, h): c' = f c + i g, h' = o tanh(c')
        (i, f, o = sigmoid of their block, g = tanh)
    lstm_cell_grad(z, c, dh, dc_new, dz, dc, bs, h)
        dz (bs, 4h), dc (bs, h) from the adjoints dh of h' and dc_new of c' (gates recomputed from z)
    im2col(a, out, n, h, w, c, kh, kw, stride, pad_h, pad_w, out_h, out_w, offset, strides)
        the windows of a convolution's input: a is the strided view (n, h, w, c) of a buffer at `offset` with
        `strides` (four, in elements: an NCHW tensor seen as NHWC is read in place); out (n, out_h, out_w, kh,
        kw, c) holds at (b, oy, ox, i, j) the pixel a[b, oy * stride + i - pad_h, ox * stride + j - pad_w], or
        zeros where that lies outside a (the padding)
    col2im(col, out, n, h, w, c, kh, kw, stride, pad_h, pad_w, out_h, out_w)
        the adjoint of im2col (a convolution's input gradient): out (n, h, w, c) = 0, then each window
        (b, oy, ox) of col (n, out_h, out_w, kh, kw, c) adds its tap (i, j) at out[b, oy * stride + i - pad_h,
        ox * stride + j - pad_w] where that lies inside out (stride >= 1, pads >= 0)

The reference implementations are the numpy ones in ndarray_backend_numpy.py; the C++ ones live in
kernels/cpu/fused.h. A device module that lacks one of these kernels (a learner's own device, a backend
still growing its set) still runs the op: the numpy kernel on host copies (slow, but never wrong).
"""
from __future__ import annotations

import math

import numpy as np

from . import ndarray_backend_numpy
from .ndarray import NDArray

__all__ = ["embedding_gather", "embedding_scatter_add", "softmax_xent", "softmax_xent_grad", "sigmoid",
           "sigmoid_grad", "batchnorm_stats", "batchnorm_forward", "batchnorm_backward", "layernorm_forward",
           "layernorm_backward", "lstm_cell", "lstm_cell_grad", "im2col", "col2im"]


class _Call:
    """The arrays of one kernel call: all on one device (or all numpy), one dtype, made dense."""

    def __init__(self, op: str, first):
        self.op = op
        self.host = isinstance(first, np.ndarray)
        if self.host:
            if first.dtype not in (np.float32, np.float64):
                raise TypeError(f"{op}: arrays must be float32 or float64, got {first.dtype}")
            self.dtype, self.device = first.dtype.name, None
            self.kernels = ndarray_backend_numpy
        else:
            if not isinstance(first, NDArray):
                raise TypeError(f"{op}: expected an NDArray or a numpy array, got {type(first).__name__}")
            self.dtype, self.device = first.dtype, first.device
            self.kernels = first.device  # forwards to its module; a missing kernel names the device

    def dense(self, a, what: str, ids: bool = False):
        """`a` as a dense array of this call's kind, device and dtype. ids (integer inputs such as ids and
        labels, not activations) may arrive as anything numeric, or on another device (copied over, as
        the course's code does when it reads them on the host); other operands must be on this device."""
        if self.host:
            arr = np.asarray(a.numpy() if isinstance(a, NDArray) else a)
            if arr.dtype.kind not in "biuf":
                raise TypeError(f"{self.op}: {what} must be numbers, got dtype {arr.dtype}")
            return np.ascontiguousarray(arr, dtype=self.dtype)
        if isinstance(a, NDArray):
            if a.device != self.device:
                if not ids:
                    raise ValueError(f"{self.op}: {what} is on {a.device}, the other operands on {self.device}")
                a = a.to(self.device)
            return a.astype(self.dtype).compact()
        arr = np.asarray(a)
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"{self.op}: {what} must be numbers, got dtype {arr.dtype}")
        return NDArray(arr, device=self.device, dtype=self.dtype)

    def empty(self, shape):
        if self.host:
            return np.empty(shape, dtype=self.dtype)
        return NDArray.make(tuple(shape), device=self.device, dtype=self.dtype)

    def buf(self, a):
        """The flat buffer a kernel takes."""
        return ndarray_backend_numpy.Array.wrap(a.reshape(-1)) if self.host else a._handle

    def __call__(self, *args) -> None:
        kernel = getattr(self.device.mod, self.op, None) if not self.host else getattr(self.kernels, self.op)
        if kernel is None:
            self._on_host_copies(args)
            return
        kernel(*(self.buf(a) if isinstance(a, (np.ndarray, NDArray)) else a for a in args))

    def _on_host_copies(self, args) -> None:
        """A device module without this kernel (a learner's own, or a backend still growing its set): the
        numpy kernel on host copies, every array copied back. Correct but slow; devices that have the
        kernel never come here."""
        arrays = {id(a): a.numpy().reshape(-1) for a in args if isinstance(a, NDArray)}
        getattr(ndarray_backend_numpy, self.op)(
            *(ndarray_backend_numpy.Array.wrap(arrays[id(a)]) if isinstance(a, NDArray) else a for a in args))
        for a in args:
            if isinstance(a, NDArray):
                a.device.from_numpy(arrays[id(a)], a._handle)


def _shape_is(op: str, what: str, a, ndim: int | None = None, shape: tuple | None = None) -> None:
    if ndim is not None and len(a.shape) != ndim:
        raise ValueError(f"{op}: {what} must be {ndim}-D, got shape {tuple(a.shape)}")
    if shape is not None and tuple(a.shape) != tuple(shape):
        raise ValueError(f"{op}: {what} must have shape {tuple(shape)}, got {tuple(a.shape)}")


# ---- embedding ----


def embedding_gather(weight, ids):
    """weight[ids]: rows of weight (num, dim) at whole-number ids of any shape -> ids.shape + (dim,)."""
    call = _Call("embedding_gather", weight)
    _shape_is(call.op, "weight", weight, ndim=2)
    num, dim = weight.shape
    ids = call.dense(ids, "ids", ids=True)
    out = call.empty(tuple(ids.shape) + (dim,))
    call(call.dense(weight, "weight"), ids, out, math.prod(ids.shape), num, dim)
    return out


def embedding_scatter_add(grad, ids, num: int):
    """The gather's adjoint: a (num, dim) array of zeros with each row of grad (ids.shape + (dim,)) added
    at its id."""
    call = _Call("embedding_scatter_add", grad)
    ids = call.dense(ids, "ids", ids=True)
    if len(grad.shape) != len(ids.shape) + 1 or tuple(grad.shape[:-1]) != tuple(ids.shape):
        raise ValueError(f"embedding_scatter_add: grad of shape {tuple(grad.shape)} for ids of shape {tuple(ids.shape)}")
    dim = grad.shape[-1]
    out = call.empty((num, dim))
    call(call.dense(grad, "grad"), ids, out, math.prod(ids.shape), num, dim)
    return out


# ---- softmax cross-entropy ----


def softmax_xent(logits, labels):
    """Per-row cross-entropy of logits (m, k) against labels (m,) and the rows' logsumexp: (loss, lse)."""
    call = _Call("softmax_xent", logits)
    _shape_is(call.op, "logits", logits, ndim=2)
    m, k = logits.shape
    labels = call.dense(labels, "labels", ids=True)
    _shape_is(call.op, "labels", labels, shape=(m,))
    loss, lse = call.empty((m,)), call.empty((m,))
    call(call.dense(logits, "logits"), labels, loss, lse, m, k)
    return loss, lse


def softmax_xent_grad(logits, labels, lse, out_grad):
    """out_grad * (softmax(logits) - one_hot(labels)) / m from the forward's row logsumexp."""
    call = _Call("softmax_xent_grad", logits)
    _shape_is(call.op, "logits", logits, ndim=2)
    m, k = logits.shape
    labels, lse, g = call.dense(labels, "labels", ids=True), call.dense(lse, "lse"), call.dense(out_grad, "out_grad")
    _shape_is(call.op, "labels", labels, shape=(m,))
    _shape_is(call.op, "lse", lse, shape=(m,))
    if math.prod(g.shape) != 1:
        raise ValueError(f"softmax_xent_grad: out_grad must hold one number, got shape {tuple(g.shape)}")
    out = call.empty((m, k))
    call(call.dense(logits, "logits"), labels, lse, g, out, m, k)
    return out


# ---- sigmoid ----


def sigmoid(a):
    """1 / (1 + exp(-a)), computed as (1 + tanh(a / 2)) / 2."""
    call = _Call("sigmoid", a)
    out = call.empty(a.shape)
    call(call.dense(a, "a"), out, math.prod(a.shape))
    return out


def sigmoid_grad(y, dy):
    """dy * y * (1 - y), the sigmoid's gradient from its output y."""
    call = _Call("sigmoid_grad", y)
    _shape_is(call.op, "dy", dy, shape=y.shape)
    out = call.empty(y.shape)
    call(call.dense(y, "y"), call.dense(dy, "dy"), out, math.prod(y.shape))
    return out


# ---- batch and layer normalization ----


def _channels(op: str, x) -> tuple[int, int, int]:
    """x (N, C, ...) as (outer, c, inner) = (N, C, prod(...))."""
    if len(x.shape) < 2:
        raise ValueError(f"{op}: x must have a batch and a channel axis, got shape {tuple(x.shape)}")
    return x.shape[0], x.shape[1], math.prod(x.shape[2:])


def batchnorm_stats(x):
    """Mean and biased variance of x (N, C, ...) per channel (axis 1): two (C,) arrays."""
    call = _Call("batchnorm_stats", x)
    outer, c, inner = _channels(call.op, x)
    mean, var = call.empty((c,)), call.empty((c,))
    call(call.dense(x, "x"), mean, var, outer, c, inner)
    return mean, var


def _per_channel(call: _Call, c: int, **arrays):
    for name, a in arrays.items():
        if math.prod(a.shape) != c:
            raise ValueError(f"{call.op}: {name} must hold {c} values (one per channel), got shape {tuple(a.shape)}")
    return [call.dense(a, name) for name, a in arrays.items()]


def batchnorm_forward(x, weight, bias, mean, var, eps: float):
    """(x - mean) / sqrt(var + eps) * weight + bias per channel (axis 1) of x (N, C, ...)."""
    call = _Call("batchnorm_forward", x)
    outer, c, inner = _channels(call.op, x)
    w, b, mu, v = _per_channel(call, c, weight=weight, bias=bias, mean=mean, var=var)
    out = call.empty(x.shape)
    call(call.dense(x, "x"), w, b, mu, v, out, outer, c, inner, float(eps))
    return out


def batchnorm_backward(x, dy, weight, mean, var, eps: float, batch_stats: bool):
    """(dx, dweight, dbias) of batchnorm_forward; batch_stats: mean/var are x's batch statistics."""
    call = _Call("batchnorm_backward", x)
    outer, c, inner = _channels(call.op, x)
    _shape_is(call.op, "dy", dy, shape=x.shape)
    w, mu, v = _per_channel(call, c, weight=weight, mean=mean, var=var)
    dx, dw, db = call.empty(x.shape), call.empty((c,)), call.empty((c,))
    call(call.dense(x, "x"), call.dense(dy, "dy"), w, mu, v, dx, dw, db, outer, c, inner, float(eps),
         bool(batch_stats))
    return dx, dw, db


def _rows(op: str, x) -> tuple[int, int]:
    if len(x.shape) < 1:
        raise ValueError(f"{op}: x must have at least one axis")
    return math.prod(x.shape[:-1]), x.shape[-1]


def layernorm_forward(x, weight, bias, eps: float):
    """Each row of x (..., D) normalised over its last axis, times weight (D,) plus bias (D,)."""
    call = _Call("layernorm_forward", x)
    rows, dim = _rows(call.op, x)
    w, b = _per_channel(call, dim, weight=weight, bias=bias)
    out = call.empty(x.shape)
    call(call.dense(x, "x"), w, b, out, rows, dim, float(eps))
    return out


def layernorm_backward(x, dy, weight, eps: float):
    """(dx, dweight, dbias) of layernorm_forward."""
    call = _Call("layernorm_backward", x)
    rows, dim = _rows(call.op, x)
    _shape_is(call.op, "dy", dy, shape=x.shape)
    (w,) = _per_channel(call, dim, weight=weight)
    dx, dw, db = call.empty(x.shape), call.empty((dim,)), call.empty((dim,))
    call(call.dense(x, "x"), call.dense(dy, "dy"), w, dx, dw, db, rows, dim, float(eps))
    return dx, dw, db


# ---- LSTM cell ----


def _lstm_shapes(op: str, z, c) -> tuple[int, int]:
    if len(z.shape) != 2 or z.shape[1] % 4:
        raise ValueError(f"{op}: z must be (bs, 4 * hidden), got shape {tuple(z.shape)}")
    bs, h = z.shape[0], z.shape[1] // 4
    _shape_is(op, "c", c, shape=(bs, h))
    return bs, h


def lstm_cell(z, c):
    """(h', c') of one LSTM step from pre-activations z (bs, 4h) (gates i, f, g, o) and state c (bs, h)."""
    call = _Call("lstm_cell", z)
    bs, h = _lstm_shapes(call.op, z, c)
    h_out, c_out = call.empty((bs, h)), call.empty((bs, h))
    call(call.dense(z, "z"), call.dense(c, "c"), h_out, c_out, bs, h)
    return h_out, c_out


def lstm_cell_grad(z, c, dh, dc_new):
    """(dz, dc) of lstm_cell from the adjoints of h' and c'."""
    call = _Call("lstm_cell_grad", z)
    bs, h = _lstm_shapes(call.op, z, c)
    _shape_is(call.op, "dh", dh, shape=(bs, h))
    _shape_is(call.op, "dc_new", dc_new, shape=(bs, h))
    dz, dc = call.empty((bs, 4 * h)), call.empty((bs, h))
    call(call.dense(z, "z"), call.dense(c, "c"), call.dense(dh, "dh"), call.dense(dc_new, "dc_new"), dz, dc, bs, h)
    return dz, dc



# ---- convolution ----


def im2col(x, kernel_hw: tuple, stride: int, padding: tuple, out_hw: tuple):
    """The (n * out_h * out_w, kh * kw * c) matrix of the windows of NHWC `x` (any strides: read in place on a
    device with the kernel), zero-padded by padding = (pad_h, pad_w) at the top and left."""
    call = _Call("im2col", x)
    _shape_is(call.op, "x", x, ndim=4)
    n, h, w, c = x.shape
    (kh, kw), (pad_h, pad_w), (out_h, out_w) = kernel_hw, padding, out_hw
    if call.host or getattr(call.device.mod, "im2col", None) is None:  # the reference on dense host copies
        x, offset, strides = call.dense(x, "x"), 0, [h * w * c, w * c, c, 1]
    else:
        offset, strides = x._offset, list(x._strides)
    out = call.empty((n * out_h * out_w, kh * kw * c))
    call(x, out, n, h, w, c, kh, kw, int(stride), int(pad_h), int(pad_w), out_h, out_w, offset, strides)
    return out


def col2im(col, hw: tuple, stride: int, padding: tuple):
    """The (n, h, w, c) image whose im2col is adjoint to `col` (n, out_h, out_w, kh, kw, c): every window's
    taps added at their places (stride and padding (pad_h, pad_w) as in the forward convolution)."""
    call = _Call("col2im", col)
    _shape_is(call.op, "col", col, ndim=6)
    n, out_h, out_w, kh, kw, c = col.shape
    (h, w), (pad_h, pad_w) = hw, padding
    out = call.empty((n, h, w, c))
    call(call.dense(col, "col"), out, n, h, w, c, kh, kw, int(stride), int(pad_h), int(pad_w), out_h, out_w)
    return out
