"""The reference device module in pure numpy: flat buffers and the course's kernel names.

Each function sees flat 1-D buffers plus shape/strides/offset, exactly like the C++ and CUDA
modules, so it doubles as the executable specification of the device contract.
"""
from __future__ import annotations

import numpy as np

from ..labels import id_error

__device_name__ = "numpy"
__tile_size__ = 8

_DTYPES = ("float32", "float64")


class Array:
    """A flat buffer of `size` float32 or float64 elements."""

    def __init__(self, size: int, dtype: str = "float32"):
        if dtype not in _DTYPES:
            raise ValueError(f"Array: unsupported dtype {dtype!r} (expected 'float32' or 'float64')")
        if size < 0:
            raise ValueError(f"Array: size must be >= 0, got {size}")
        self.array = np.empty(size, dtype=dtype)

    @property
    def size(self) -> int:
        return self.array.size

    @property
    def dtype(self) -> str:
        return self.array.dtype.name

    def ptr(self) -> int:
        return self.array.ctypes.data

    @classmethod
    def wrap(cls, flat: np.ndarray) -> "Array":
        """A buffer over an existing 1-D float32/float64 numpy array (no copy; NEEDLE_BACKEND=np uses it)."""
        buf = cls.__new__(cls)
        buf.array = flat
        return buf


def _view(a: Array, shape, strides, offset) -> np.ndarray:
    """The strided view (shape, strides in elements, offset) of a flat buffer, bounds-checked."""
    if len(shape) != len(strides):
        raise ValueError(f"strided view: shape {tuple(shape)} and strides {tuple(strides)} differ in length")
    if any(n < 0 for n in shape):
        raise ValueError(f"strided view: negative dimension in shape {tuple(shape)}")
    lo = hi = offset
    for n, s in zip(shape, strides):
        if n == 0:
            return np.empty(tuple(shape), dtype=a.array.dtype)
        span = (n - 1) * s
        if span < 0:
            lo += span
        else:
            hi += span
    if lo < 0 or hi >= a.size:
        raise ValueError(f"strided view reaches outside its buffer (elements {lo}..{hi} of {a.size})")
    item = a.array.itemsize
    return np.lib.stride_tricks.as_strided(
        a.array[offset:], tuple(shape), tuple(s * item for s in strides), writeable=True
    )


def to_numpy(a: Array, shape, strides, offset) -> np.ndarray:
    return _view(a, shape, strides, offset).copy()


def from_numpy(a: np.ndarray, out: Array) -> None:
    src = np.asarray(a, dtype=out.array.dtype).reshape(-1)
    if src.size != out.size:
        raise ValueError(f"from_numpy: input has {src.size} elements, buffer has {out.size}")
    out.array[:] = src


def fill(out: Array, val) -> None:
    out.array[:] = val


def compact(a: Array, out: Array, shape, strides, offset) -> None:
    n = int(np.prod(shape))
    out.array[:n] = _view(a, shape, strides, offset).reshape(-1)


def ewise_setitem(a: Array, out: Array, shape, strides, offset) -> None:
    n = int(np.prod(shape))
    _view(out, shape, strides, offset)[...] = a.array[:n].reshape(shape)


def scalar_setitem(size, val, out: Array, shape, strides, offset) -> None:
    _view(out, shape, strides, offset)[...] = val


def _same(name: str, *arrays: Array) -> None:
    """Elementwise kernels need operands of one size and dtype (as the C++ device checks)."""
    first = arrays[0]
    for other in arrays[1:]:
        if other.size != first.size or other.dtype != first.dtype:
            raise ValueError(
                f"{name}: operands differ ({first.size} x {first.dtype} vs {other.size} x {other.dtype})"
            )


# IEEE results (inf, nan) without warnings, as the compiled devices give them
def _ewise(fn):
    def kernel(a: Array, b: Array, out: Array) -> None:
        _same(fn.__name__, a, b, out)
        with np.errstate(all="ignore"):
            fn(a.array, b.array, out=out.array)

    return kernel


def _scalar(fn):
    def kernel(a: Array, val, out: Array) -> None:
        _same(fn.__name__, a, out)
        with np.errstate(all="ignore"):
            fn(a.array, out.array.dtype.type(val), out=out.array)

    return kernel


def _unary(fn):
    def kernel(a: Array, out: Array) -> None:
        _same(fn.__name__, a, out)
        with np.errstate(all="ignore"):
            fn(a.array, out=out.array)

    return kernel


ewise_add, scalar_add = _ewise(np.add), _scalar(np.add)
ewise_mul, scalar_mul = _ewise(np.multiply), _scalar(np.multiply)
ewise_div, scalar_div = _ewise(np.divide), _scalar(np.divide)
ewise_power, scalar_power = _ewise(np.power), _scalar(np.power)
ewise_maximum, scalar_maximum = _ewise(np.maximum), _scalar(np.maximum)
ewise_eq, scalar_eq = _ewise(np.equal), _scalar(np.equal)
ewise_ge, scalar_ge = _ewise(np.greater_equal), _scalar(np.greater_equal)
ewise_log, ewise_exp, ewise_tanh = _unary(np.log), _unary(np.exp), _unary(np.tanh)


def _reduce_axis(fn, name):
    def kernel(a: Array, out: Array, outer: int, reduce_size: int, inner: int) -> None:
        if reduce_size <= 0:
            raise ValueError(f"{name}: cannot reduce over an empty axis")
        x = a.array[: outer * reduce_size * inner].reshape(outer, reduce_size, inner)
        out.array[: outer * inner] = fn(x, axis=1).reshape(-1)

    return kernel


reduce_sum_axis = _reduce_axis(np.sum, "reduce_sum")
reduce_max_axis = _reduce_axis(np.max, "reduce_max")


def reduce_sum(a: Array, out: Array, reduce_size: int) -> None:
    reduce_sum_axis(a, out, a.size // reduce_size if reduce_size > 0 else 0, reduce_size, 1)


def reduce_max(a: Array, out: Array, reduce_size: int) -> None:
    reduce_max_axis(a, out, a.size // reduce_size if reduce_size > 0 else 0, reduce_size, 1)


def _check_dims(name: str, *dims: int) -> None:
    if any(d < 0 for d in dims):
        raise ValueError(f"{name}: negative dimension in {dims}")


def matmul(a: Array, b: Array, out: Array, m: int, n: int, p: int) -> None:
    _check_dims("matmul", m, n, p)
    out.array[: m * p] = (a.array[: m * n].reshape(m, n) @ b.array[: n * p].reshape(n, p)).reshape(-1)


def matmul_tiled(a: Array, b: Array, out: Array, m: int, n: int, p: int) -> None:
    t = __tile_size__
    _check_dims("matmul_tiled", m, n, p)
    if m % t or n % t or p % t:
        raise ValueError(f"matmul_tiled: m, n, p = {m}, {n}, {p} must be multiples of the tile size {t}")
    A = a.array[: m * n].reshape(m // t, n // t, t, t)
    B = b.array[: n * p].reshape(n // t, p // t, t, t)
    out.array[: m * p] = np.einsum("ikrs,kjst->ijrt", A, B).reshape(-1)


def matmul_strided(a: Array, b: Array, out: Array, batch, m, n, p, a_offset, a_strides, b_offset, b_strides):
    _check_dims("matmul_strided", batch, m, n, p)
    A = _view(a, (batch, m, n), a_strides, a_offset)
    B = _view(b, (batch, n, p), b_strides, b_offset)
    out.array[: batch * m * p] = np.matmul(A, B).reshape(-1)


# ---- the fused ops' kernels (contract: needle/backend_ndarray/fused.py), readable numpy versions ----


def _flat(a: Array, n: int, what: str, op: str) -> np.ndarray:
    """The first n elements of a buffer, or a ValueError naming the op when it holds fewer."""
    if n < 0:
        raise ValueError(f"{op}: negative size {n} for {what}")
    if a.size < n:
        raise ValueError(f"{op}: {what} holds {a.size} elements, needs {n}")
    return a.array[:n]


def _fused_args(op: str, *arrays: Array) -> None:
    """One dtype for every buffer of a fused kernel (ids and labels included)."""
    first = arrays[0]
    for a in arrays[1:]:
        if a.dtype != first.dtype:
            raise ValueError(f"{op}: dtype mismatch ({first.dtype} vs {a.dtype})")


def _ids(a: Array, n: int, num: int, what: str, op: str) -> np.ndarray:
    """n whole-number ids in [0, num) from a float buffer, as int64: IndexError / ValueError otherwise."""
    v = _flat(a, n, what + "s", op)
    error = id_error(v, num, what, op)
    if error is not None:
        raise error
    return v.astype(np.int64)


def embedding_gather(weight: Array, ids: Array, out: Array, n_ids: int, num: int, dim: int) -> None:
    _fused_args("embedding_gather", weight, ids, out)
    w = _flat(weight, num * dim, "weight", "embedding_gather").reshape(num, dim)
    idx = _ids(ids, n_ids, num, "id", "embedding_gather")
    _flat(out, n_ids * dim, "out", "embedding_gather")[:] = w[idx].reshape(-1)


def embedding_scatter_add(grad: Array, ids: Array, out: Array, n_ids: int, num: int, dim: int) -> None:
    _fused_args("embedding_scatter_add", grad, ids, out)
    g = _flat(grad, n_ids * dim, "grad", "embedding_scatter_add").reshape(n_ids, dim)
    idx = _ids(ids, n_ids, num, "id", "embedding_scatter_add")
    o = _flat(out, num * dim, "out", "embedding_scatter_add").reshape(num, dim)
    o[...] = 0
    np.add.at(o, idx, g)


def softmax_xent(logits: Array, labels: Array, loss: Array, lse: Array, m: int, k: int) -> None:
    _fused_args("softmax_xent", logits, labels, loss, lse)
    if k == 0 and m:
        raise ValueError("softmax_xent: no classes (k = 0)")
    z = _flat(logits, m * k, "logits", "softmax_xent").reshape(m, k)
    y = _ids(labels, m, k, "label", "softmax_xent")
    lo, ls = _flat(loss, m, "loss", "softmax_xent"), _flat(lse, m, "lse", "softmax_xent")
    if m == 0:
        return
    with np.errstate(all="ignore"):
        top = z.max(axis=1)
        shifted = z - np.where(np.isinf(top), 0, top)[:, None]
        l = np.log(np.exp(shifted).sum(axis=1)) + np.where(np.isinf(top), 0, top)
        l = np.where(np.isinf(top), top, l).astype(z.dtype)
        ls[:] = l
        lo[:] = l - z[np.arange(m), y]


def softmax_xent_grad(logits: Array, labels: Array, lse: Array, out_grad: Array, out: Array, m: int, k: int) -> None:
    _fused_args("softmax_xent_grad", logits, labels, lse, out_grad, out)
    z = _flat(logits, m * k, "logits", "softmax_xent_grad").reshape(m, k)
    y = _ids(labels, m, k, "label", "softmax_xent_grad")
    l = _flat(lse, m, "lse", "softmax_xent_grad")
    scale = _flat(out_grad, 1, "out_grad", "softmax_xent_grad")[0] / z.dtype.type(m) if m else z.dtype.type(0)
    o = _flat(out, m * k, "out", "softmax_xent_grad").reshape(m, k)
    with np.errstate(all="ignore"):
        np.exp(z - l[:, None], out=o)
        o *= scale
        o[np.arange(m), y] -= scale


def sigmoid(a: Array, out: Array, n: int) -> None:
    _fused_args("sigmoid", a, out)
    x = _flat(a, n, "a", "sigmoid")
    _flat(out, n, "out", "sigmoid")[:] = (np.tanh(x * x.dtype.type(0.5)) + 1) * x.dtype.type(0.5)


def sigmoid_grad(y: Array, dy: Array, out: Array, n: int) -> None:
    _fused_args("sigmoid_grad", y, dy, out)
    s, g = _flat(y, n, "y", "sigmoid_grad"), _flat(dy, n, "dy", "sigmoid_grad")
    _flat(out, n, "out", "sigmoid_grad")[:] = g * s * (1 - s)


def _channels(x: Array, outer: int, c: int, inner: int, op: str) -> np.ndarray:
    if outer * inner == 0 and c:
        raise ValueError(f"{op}: no elements to take statistics over")
    return _flat(x, outer * c * inner, "x", op).reshape(outer, c, inner)


def batchnorm_stats(x: Array, mean: Array, var: Array, outer: int, c: int, inner: int) -> None:
    _fused_args("batchnorm_stats", x, mean, var)
    xs = _channels(x, outer, c, inner, "batchnorm_stats")
    out_mean, out_var = _flat(mean, c, "mean", "batchnorm_stats"), _flat(var, c, "var", "batchnorm_stats")
    mu = xs.mean(axis=(0, 2), dtype=np.float64)
    out_var[:] = ((xs - mu[None, :, None]) ** 2).mean(axis=(0, 2))
    out_mean[:] = mu


def _per_channel(op: str, c: int, **arrays: Array) -> list:
    return [_flat(a, c, name, op)[None, :, None] for name, a in arrays.items()]


def batchnorm_forward(x, weight, bias, mean, var, out, outer: int, c: int, inner: int, eps: float) -> None:
    op = "batchnorm_forward"
    _fused_args(op, x, weight, bias, mean, var, out)
    xs = _flat(x, outer * c * inner, "x", op).reshape(outer, c, inner)
    w, b, mu, v = _per_channel(op, c, weight=weight, bias=bias, mean=mean, var=var)
    o = _flat(out, outer * c * inner, "out", op)
    rstd = 1 / np.sqrt(v + xs.dtype.type(eps))
    o[:] = ((xs - mu) * rstd * w + b).reshape(-1)


def batchnorm_backward(x, dy, weight, mean, var, dx, dweight, dbias, outer: int, c: int, inner: int, eps: float,
                       batch_stats: bool) -> None:
    op = "batchnorm_backward"
    _fused_args(op, x, dy, weight, mean, var, dx, dweight, dbias)
    xs = _channels(x, outer, c, inner, op)
    g = _flat(dy, outer * c * inner, "dy", op).reshape(outer, c, inner)
    w, mu, v = _per_channel(op, c, weight=weight, mean=mean, var=var)
    gx = _flat(dx, outer * c * inner, "dx", op)
    gw, gb = _flat(dweight, c, "dweight", op), _flat(dbias, c, "dbias", op)
    rstd = 1 / np.sqrt(v.astype(np.float64) + eps)
    xhat = (xs - mu) * rstd
    sg, sgx = g.sum(axis=(0, 2), dtype=np.float64), (g * xhat).sum(axis=(0, 2))
    gb[:] = sg
    gw[:] = sgx
    n = outer * inner
    if batch_stats:
        grad = w * rstd * (g - sg[None, :, None] / n - xhat * sgx[None, :, None] / n)
    else:
        grad = w * rstd * g
    gx[:] = grad.reshape(-1)


def _rows(x: Array, rows: int, dim: int, eps: float, op: str):
    if dim == 0 and rows:
        raise ValueError(f"{op}: rows of length 0")
    xs = _flat(x, rows * dim, "x", op).reshape(rows, dim)
    mu = xs.mean(axis=1, keepdims=True, dtype=np.float64)
    rstd = 1 / np.sqrt(((xs - mu) ** 2).mean(axis=1, keepdims=True) + eps)
    return xs, (xs - mu) * rstd, rstd


def layernorm_forward(x, weight, bias, out, rows: int, dim: int, eps: float) -> None:
    op = "layernorm_forward"
    _fused_args(op, x, weight, bias, out)
    w, b = _flat(weight, dim, "weight", op), _flat(bias, dim, "bias", op)
    o = _flat(out, rows * dim, "out", op)
    _, xhat, _ = _rows(x, rows, dim, eps, op)
    o[:] = (xhat * w + b).reshape(-1)


def layernorm_backward(x, dy, weight, dx, dweight, dbias, rows: int, dim: int, eps: float) -> None:
    op = "layernorm_backward"
    _fused_args(op, x, dy, weight, dx, dweight, dbias)
    g = _flat(dy, rows * dim, "dy", op).reshape(rows, dim)
    w = _flat(weight, dim, "weight", op)
    gx, gw, gb = _flat(dx, rows * dim, "dx", op), _flat(dweight, dim, "dweight", op), _flat(dbias, dim, "dbias", op)
    _, xhat, rstd = _rows(x, rows, dim, eps, op)
    d = g * w
    grad = rstd * (d - d.mean(axis=1, keepdims=True) - xhat * (d * xhat).mean(axis=1, keepdims=True))
    gx[:] = grad.reshape(-1)
    gw[:] = (g * xhat).sum(axis=0)
    gb[:] = g.sum(axis=0, dtype=np.float64)


def _lstm(z: Array, c: Array, bs: int, h: int, op: str):
    """The gates i, f, g, o of (bs, 4h) pre-activations, the state c and the new state c' = f c + i g."""
    zs = _flat(z, bs * 4 * h, "z", op).reshape(bs, 4 * h)
    half = zs.dtype.type(0.5)
    i, f, o = ((np.tanh(zs[:, k * h : (k + 1) * h] * half) + 1) * half for k in (0, 1, 3))
    g = np.tanh(zs[:, 2 * h : 3 * h])
    cs = _flat(c, bs * h, "c", op).reshape(bs, h)
    return i, f, g, o, cs, f * cs + i * g


def lstm_cell(z: Array, c: Array, h_out: Array, c_out: Array, bs: int, h: int) -> None:
    _fused_args("lstm_cell", z, c, h_out, c_out)
    ho, co = _flat(h_out, bs * h, "h_out", "lstm_cell"), _flat(c_out, bs * h, "c_out", "lstm_cell")
    _, _, _, o, _, c_new = _lstm(z, c, bs, h, "lstm_cell")
    co[:] = c_new.reshape(-1)
    ho[:] = (o * np.tanh(c_new)).reshape(-1)


def lstm_cell_grad(z: Array, c: Array, dh: Array, dc_new: Array, dz: Array, dc: Array, bs: int, h: int) -> None:
    op = "lstm_cell_grad"
    _fused_args(op, z, c, dh, dc_new, dz, dc)
    gzo, gco = _flat(dz, bs * 4 * h, "dz", op), _flat(dc, bs * h, "dc", op)
    i, f, g, o, cs, c_new = _lstm(z, c, bs, h, op)
    gh = _flat(dh, bs * h, "dh", op).reshape(bs, h)
    t = np.tanh(c_new)
    d = _flat(dc_new, bs * h, "dc_new", op).reshape(bs, h) + gh * o * (1 - t * t)
    gz = np.concatenate([d * g * i * (1 - i), d * cs * f * (1 - f), d * i * (1 - g * g), gh * t * o * (1 - o)], axis=1)
    gzo[:] = gz.reshape(-1)
    gco[:] = (d * f).reshape(-1)


def col2im(col: Array, out: Array, n: int, h: int, w: int, c: int, kh: int, kw: int, stride: int, pad_h: int,
           pad_w: int, out_h: int, out_w: int) -> None:
    op = "col2im"
    _fused_args(op, col, out)
    if stride < 1 or pad_h < 0 or pad_w < 0:
        raise ValueError(f"{op}: stride must be >= 1 and padding >= 0, got stride {stride}, padding {pad_h}, {pad_w}")
    cols = _flat(col, n * out_h * out_w * kh * kw * c, "col", op).reshape(n, out_h, out_w, kh, kw, c)
    o = _flat(out, n * h * w * c, "out", op).reshape(n, h, w, c)
    # every tap (i, j) adds its (out_h, out_w) grid of windows to a zero-padded image at stride steps
    padded = np.zeros((n, max(pad_h + h, (out_h - 1) * stride + kh), max(pad_w + w, (out_w - 1) * stride + kw), c),
                      dtype=o.dtype)
    for i in range(kh):
        for j in range(kw):
            padded[:, i : i + stride * out_h : stride, j : j + stride * out_w : stride, :] += cols[:, :, :, i, j, :]
    o[...] = padded[:, pad_h : pad_h + h, pad_w : pad_w + w, :]


def im2col(a: Array, out: Array, n: int, h: int, w: int, c: int, kh: int, kw: int, stride: int, pad_h: int, pad_w: int,
           out_h: int, out_w: int, offset: int, strides) -> None:
    op = "im2col"
    _fused_args(op, a, out)
    if stride < 1 or pad_h < 0 or pad_w < 0:
        raise ValueError(f"{op}: stride must be >= 1 and padding >= 0, got stride {stride}, padding {pad_h}, {pad_w}")
    try:
        x = _view(a, (n, h, w, c), strides, offset)
    except ValueError as err:
        raise ValueError(f"{op}: {err}") from None
    o = _flat(out, n * out_h * out_w * kh * kw * c, "out", op)
    # the image zero-padded far enough for every window, then its windows as one strided view
    padded = np.zeros((n, max(pad_h + h, (out_h - 1) * stride + kh), max(pad_w + w, (out_w - 1) * stride + kw), c),
                      dtype=o.dtype)
    padded[:, pad_h : pad_h + h, pad_w : pad_w + w, :] = x
    sn, sh, sw, sc = padded.strides
    o[:] = np.lib.stride_tricks.as_strided(padded, (n, out_h, out_w, kh, kw, c),
                                           (sn, sh * stride, sw * stride, sh, sw, sc)).reshape(-1)
