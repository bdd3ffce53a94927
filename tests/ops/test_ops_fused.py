"""The fused ops (needle/ops/ops_fused.py) and their device kernels (needle/backend_ndarray/fused.py):
every kernel on every device and on plain numpy arrays (NEEDLE_BACKEND=np's path), float32 and float64,
against numpy written out here; strided inputs; gradients by float64 finite differences; bad arguments."""
import numpy as np
import pytest

import needle as ndl
import needle.backend_ndarray as nd
from needle import ops
from needle.backend_ndarray import fused

NUMPY_BACKEND = ndl.BACKEND == "np"  # then Tensors hold numpy arrays; the kernels are still tested on every device

DTYPES = ["float32", "float64"]
TOL = {"float32": dict(rtol=2e-5, atol=2e-6), "float64": dict(rtol=1e-12, atol=1e-13)}


@pytest.fixture(params=["device", "numpy"])
def kind(request, device):
    """Where the arrays live: an NDArray on each enabled device, or plain numpy arrays."""
    return None if request.param == "numpy" else device


def put(a, kind, dtype):
    """numpy data as an array of `kind` (None: numpy) with `dtype`."""
    a = np.asarray(a, dtype=dtype)
    return a if kind is None else nd.array(a, dtype=dtype, device=kind)


def strided(a, kind, dtype):
    """The same values as a non-contiguous view (a transposed buffer, transposed back)."""
    a = np.asarray(a, dtype=dtype)
    if kind is None:
        return np.asfortranarray(a)
    axes = tuple(reversed(range(a.ndim)))
    return nd.array(np.ascontiguousarray(a.transpose(axes)), dtype=dtype, device=kind).permute(axes)


@pytest.fixture
def op_device(device):
    """The device for Tensors: each NDArray device, or numpy's default under NEEDLE_BACKEND=np."""
    if NUMPY_BACKEND:
        if device != nd.all_devices()[0] and device.enabled():
            pytest.skip("NEEDLE_BACKEND=np: one run on the default device")
        return None
    return device


def get(a) -> np.ndarray:
    return a if isinstance(a, np.ndarray) else a.numpy()


def ref_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x.astype(np.float64)))


def ref_norm(x, axes, eps):
    x = x.astype(np.float64)
    mu = x.mean(axis=axes, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=axes, keepdims=True)
    return (x - mu) / np.sqrt(var + eps), mu, var


def ref_lstm(z, c):
    z, c = z.astype(np.float64), c.astype(np.float64)
    h = c.shape[1]
    i, f, o = (ref_sigmoid(z[:, k * h : (k + 1) * h]) for k in (0, 1, 3))
    g = np.tanh(z[:, 2 * h : 3 * h])
    c_new = f * c + i * g
    return o * np.tanh(c_new), c_new


# ---- forward kernels against numpy ----


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ["dense", "strided"])
def test_kernels_match_numpy(kind, dtype, layout):
    rng = np.random.default_rng(1)
    mk = put if layout == "dense" else strided
    tol = TOL[dtype]

    x = rng.standard_normal((7, 9)) * 4
    np.testing.assert_allclose(get(fused.sigmoid(mk(x, kind, dtype))), ref_sigmoid(x), **tol)
    y, dy = ref_sigmoid(x), rng.standard_normal((7, 9))
    np.testing.assert_allclose(get(fused.sigmoid_grad(mk(y, kind, dtype), mk(dy, kind, dtype))),
                               dy * y * (1 - y), **tol)

    W, ids = rng.standard_normal((11, 5)), rng.integers(0, 11, (4, 3))
    np.testing.assert_allclose(get(fused.embedding_gather(mk(W, kind, dtype), mk(ids, kind, dtype))), W[ids], **tol)
    G = rng.standard_normal((4, 3, 5))
    expect = np.zeros((11, 5))
    np.add.at(expect, ids.reshape(-1), G.reshape(-1, 5))
    np.testing.assert_allclose(get(fused.embedding_scatter_add(mk(G, kind, dtype), mk(ids, kind, dtype), 11)),
                               expect, **tol)

    Z, labels = rng.standard_normal((6, 13)) * 3, rng.integers(0, 13, 6)
    lse_ref = np.log(np.exp(Z).sum(axis=1))
    loss, lse = fused.softmax_xent(mk(Z, kind, dtype), put(labels, kind, dtype))
    np.testing.assert_allclose(get(lse), lse_ref, **tol)
    np.testing.assert_allclose(get(loss), lse_ref - Z[np.arange(6), labels], **tol)
    grad = fused.softmax_xent_grad(mk(Z, kind, dtype), put(labels, kind, dtype), lse, put(np.array(2.5), kind, dtype))
    expect = (np.exp(Z - lse_ref[:, None]) - np.eye(13)[labels]) * 2.5 / 6
    np.testing.assert_allclose(get(grad), expect, **tol)

    X = rng.standard_normal((4, 3, 2, 5)) * 2 + 1
    w, b = rng.standard_normal(3), rng.standard_normal(3)
    mean, var = fused.batchnorm_stats(mk(X, kind, dtype))
    xhat, mu, v = ref_norm(X, (0, 2, 3), 1e-5)
    np.testing.assert_allclose(get(mean), mu.reshape(3), **tol)
    np.testing.assert_allclose(get(var), v.reshape(3), **tol)
    out = fused.batchnorm_forward(mk(X, kind, dtype), put(w, kind, dtype), put(b, kind, dtype), mean, var, 1e-5)
    np.testing.assert_allclose(get(out), xhat * w[:, None, None] + b[:, None, None], **tol)

    X2 = rng.standard_normal((2, 3, 8)) * 3 - 1
    w2, b2 = rng.standard_normal(8), rng.standard_normal(8)
    out = fused.layernorm_forward(mk(X2, kind, dtype), put(w2, kind, dtype), put(b2, kind, dtype), 1e-5)
    np.testing.assert_allclose(get(out), ref_norm(X2, (2,), 1e-5)[0] * w2 + b2, **tol)

    z, c = rng.standard_normal((3, 4 * 6)) * 2, rng.standard_normal((3, 6))
    h_new, c_new = fused.lstm_cell(mk(z, kind, dtype), mk(c, kind, dtype))
    h_ref, c_ref = ref_lstm(z, c)
    np.testing.assert_allclose(get(h_new), h_ref, **tol)
    np.testing.assert_allclose(get(c_new), c_ref, **tol)


def ref_col2im(col, hw, stride, padding):
    """Each window's taps added at their places, one at a time."""
    n, out_h, out_w, kh, kw, c = col.shape
    out = np.zeros((n, *hw, c))
    for b, oy, ox, i, j in np.ndindex(n, out_h, out_w, kh, kw):
        y, x = oy * stride + i - padding[0], ox * stride + j - padding[1]
        if 0 <= y < hw[0] and 0 <= x < hw[1]:
            out[b, y, x] += col[b, oy, ox, i, j]
    return out


def im2col(x, k, stride, padding):
    """The (n, out_h, out_w, k, k, c) windows of NHWC x, zero-padded (a copy)."""
    x = np.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    n, h, w, c = x.shape
    out_h, out_w = (h - k) // stride + 1, (w - k) // stride + 1
    s = x.strides
    return np.lib.stride_tricks.as_strided(x, (n, out_h, out_w, k, k, c),
                                           (s[0], s[1] * stride, s[2] * stride, s[1], s[2], s[3])).copy()


# (h, w, kernel, stride, padding): ResNet9's shapes, a stride past the kernel, padding past kernel - 1, 1 x 1
CONV_GEOMETRIES = [(5, 4, 3, 2, 1), (4, 4, 3, 1, 1), (9, 9, 7, 4, 3), (1, 1, 3, 1, 1), (7, 5, 2, 3, 0), (3, 4, 2, 1, 3)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("h,w,k,stride,padding", CONV_GEOMETRIES)
def test_col2im_matches_numpy_and_is_the_adjoint_of_im2col(kind, dtype, h, w, k, stride, padding):
    rng = np.random.default_rng(h * 100 + k * 10 + stride)
    x = rng.standard_normal((2, h, w, 3))
    windows = im2col(x, k, stride, padding)
    col = rng.standard_normal(windows.shape)
    for mk in (put, strided):
        got = get(fused.col2im(mk(col, kind, dtype), (h, w), stride, (padding, padding)))
        np.testing.assert_allclose(got, ref_col2im(col, (h, w), stride, (padding, padding)), **TOL[dtype])
    # <im2col(x), col> = <x, col2im(col)>: what makes it the input gradient of a convolution
    np.testing.assert_allclose((windows * col).sum(), (x * got).sum(), rtol=1e-4 if dtype == "float32" else 1e-10)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("h,w,k,stride,padding", CONV_GEOMETRIES)
def test_im2col_reads_any_layout_and_pads_with_zeros(kind, dtype, h, w, k, stride, padding):
    """NHWC images dense, as a view of NCHW data (nn.Conv's input, read in place), and with an offset (a slice)."""
    rng = np.random.default_rng(h * 10 + w + k)
    x = rng.standard_normal((3, h, w, 2))
    want = im2col(x, k, stride, padding)
    n, out_h, out_w = want.shape[:3]
    want = want.reshape(n * out_h * out_w, -1)
    views = [put(x, kind, dtype), strided(x, kind, dtype)]
    if kind is not None:
        nchw = nd.array(np.ascontiguousarray(np.concatenate([x, x]).transpose(0, 3, 1, 2)), dtype=dtype, device=kind)
        views.append(nchw[3:].permute((0, 2, 3, 1)))  # offset 3 images in, NCHW seen as NHWC
    for view in views:
        got = fused.im2col(view, (k, k), stride, (padding, padding), (out_h, out_w))
        np.testing.assert_array_equal(get(got), want.astype(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_backward_kernels_match_finite_differences_of_the_forward_kernels(kind, dtype):
    """batchnorm/layernorm/lstm backward kernels against central differences of the float64 references."""
    rng = np.random.default_rng(2)
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == "float32" else dict(rtol=1e-6, atol=1e-8)

    def numeric(f, arrays, k, eps=1e-6):
        g = np.zeros_like(arrays[k])
        for idx in np.ndindex(*arrays[k].shape):
            plus, minus = [a.copy() for a in arrays], [a.copy() for a in arrays]
            plus[k][idx] += eps
            minus[k][idx] -= eps
            g[idx] = (f(*plus) - f(*minus)) / (2 * eps)
        return g

    X, w, G = rng.standard_normal((3, 2, 4)), rng.standard_normal(2), rng.standard_normal((3, 2, 4))
    mean, var = (m.reshape(2) for m in ref_norm(X, (0, 2), 1e-5)[1:])
    for batch_stats in (True, False):
        def bn(x, w_, mean_=mean, var_=var):
            if batch_stats:
                xh = ref_norm(x, (0, 2), 1e-5)[0]
            else:
                xh = (x - mean_[:, None]) / np.sqrt(var_[:, None] + 1e-5)
            return float((xh * w_[:, None] * G).sum())

        dx, dw, db = fused.batchnorm_backward(put(X, kind, dtype), put(G, kind, dtype), put(w, kind, dtype),
                                              put(mean, kind, dtype), put(var, kind, dtype), 1e-5, batch_stats)
        np.testing.assert_allclose(get(dx), numeric(bn, [X, w], 0), **tol)
        np.testing.assert_allclose(get(dw), numeric(bn, [X, w], 1), **tol)
        np.testing.assert_allclose(get(db), G.sum(axis=(0, 2)), **tol)

    X2, w2, G2 = rng.standard_normal((5, 6)), rng.standard_normal(6), rng.standard_normal((5, 6))
    dx, dw, db = fused.layernorm_backward(put(X2, kind, dtype), put(G2, kind, dtype), put(w2, kind, dtype), 1e-5)
    ln = lambda x, w_: float((ref_norm(x, (1,), 1e-5)[0] * w_ * G2).sum())  # noqa: E731
    np.testing.assert_allclose(get(dx), numeric(ln, [X2, w2], 0), **tol)
    np.testing.assert_allclose(get(dw), numeric(ln, [X2, w2], 1), **tol)
    np.testing.assert_allclose(get(db), G2.sum(axis=0), **tol)

    z, c = rng.standard_normal((2, 12)), rng.standard_normal((2, 3))
    gh, gc = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    cell = lambda z_, c_: float((ref_lstm(z_, c_)[0] * gh).sum() + (ref_lstm(z_, c_)[1] * gc).sum())  # noqa: E731
    dz, dc = fused.lstm_cell_grad(put(z, kind, dtype), put(c, kind, dtype), put(gh, kind, dtype), put(gc, kind, dtype))
    np.testing.assert_allclose(get(dz), numeric(cell, [z, c], 0), **tol)
    np.testing.assert_allclose(get(dc), numeric(cell, [z, c], 1), **tol)


def test_softmax_xent_extreme_logits(kind):
    Z = np.array([[1e5, 0.0, -1e5], [3.0, 2.0, 1.0], [-np.inf, 0.0, 1.0]], dtype=np.float32)
    loss, lse = fused.softmax_xent(put(Z, kind, "float32"), put([1, 0, 2], kind, "float32"))
    p = np.exp(Z[1] - 3) / np.exp(Z[1] - 3).sum()
    np.testing.assert_allclose(get(loss), [1e5, -np.log(p[0]), np.log(1 + np.exp(-1))], rtol=1e-6)
    assert np.isfinite(get(lse)).all()


# ---- ops: gradients by float64 finite differences on every device ----


def _check_op_gradients(device, f, arrays, eps=1e-6):
    """Compares backward() of sum(f(*tensors) * G) with central differences, for every input."""
    rng = np.random.default_rng(9)
    tensors = [ndl.Tensor(a, device=device, dtype="float64") for a in arrays]
    out = f(*tensors)
    G = rng.standard_normal(out.shape)
    (out * ndl.Tensor(G, device=device, dtype="float64")).sum().backward()

    def value(*xs):
        ts = [ndl.Tensor(x, device=device, dtype="float64", requires_grad=False) for x in xs]
        return float((f(*ts).numpy() * G).sum())

    for k, t in enumerate(tensors):
        numeric = np.zeros_like(arrays[k])
        for idx in np.ndindex(*arrays[k].shape):
            plus, minus = [a.copy() for a in arrays], [a.copy() for a in arrays]
            plus[k][idx] += eps
            minus[k][idx] -= eps
            numeric[idx] = (value(*plus) - value(*minus)) / (2 * eps)
        np.testing.assert_allclose(t.grad.numpy(), numeric, rtol=1e-5, atol=1e-7, err_msg=f"input {k}")


def test_op_gradients_by_finite_differences(op_device):
    device = op_device
    rng = np.random.default_rng(3)
    _check_op_gradients(device, ops.sigmoid, [rng.standard_normal((3, 4)) * 3])
    ids = ndl.Tensor(np.array([[1.0, 3.0], [3.0, 0.0]]), device=device, dtype="float64", requires_grad=False)
    _check_op_gradients(device, lambda w: ops.embedding(w, ids), [rng.standard_normal((4, 3))])
    labels = np.array([2.0, 0.0, 4.0])
    _check_op_gradients(device, lambda z: ops.softmax_cross_entropy(z, labels) * 1.0, [rng.standard_normal((3, 5))])
    _check_op_gradients(device, lambda x, w, b: ops.batch_norm(x, w, b, 1e-5)[0],
                        [rng.standard_normal((4, 2, 3)), rng.standard_normal(2), rng.standard_normal(2)])
    mean, var = rng.standard_normal(2), rng.random(2) + 0.5
    _check_op_gradients(device, lambda x, w, b: ops.batch_norm_eval(x, w, b, mean, var, 1e-5),
                        [rng.standard_normal((4, 2)), rng.standard_normal(2), rng.standard_normal(2)])
    _check_op_gradients(device, lambda x, w, b: ops.layer_norm(x, w, b, 1e-5),
                        [rng.standard_normal((2, 3, 4)), rng.standard_normal(4), rng.standard_normal(4)])
    _check_op_gradients(device, lambda z, c: ops.lstm_step(z, c)[0] * ops.lstm_step(z, c)[1],
                        [rng.standard_normal((2, 8)), rng.standard_normal((2, 2))])
    # a whole layer, every output used (all steps' states, the last h and c): xw, h0, c0 and W_hh
    _check_op_gradients(device, lambda xw, h, c, w: _layer_outputs(ops.lstm_layer(xw, h, c, w)),
                        [rng.standard_normal((3, 2, 8)), rng.standard_normal((2, 2)), rng.standard_normal((2, 2)),
                         rng.standard_normal((2, 8))])


def _layer_outputs(outputs):
    """H (T, bs, h), h_T, c_T of lstm_layer in one tensor (T + 2, bs, h)."""
    out, h_last, c_last = outputs
    return ops.stack([*ops.split(out, axis=0), h_last, c_last], axis=0)


@pytest.mark.parametrize("steps", [1, 4])
def test_lstm_layer_is_the_steps_it_fuses(op_device, steps):
    """Outputs and every gradient of lstm_layer equal those of the same steps as separate ops."""
    rng = np.random.default_rng(11)
    arrays = [rng.standard_normal((steps, 3, 8)), rng.standard_normal((3, 2)), rng.standard_normal((3, 2)),
              rng.standard_normal((2, 8))]
    G = [rng.standard_normal((steps, 3, 2)), rng.standard_normal((3, 2)), rng.standard_normal((3, 2))]

    def run(fused_layer: bool):
        xw, h, c, w = (ndl.Tensor(a, device=op_device, dtype="float64") for a in arrays)
        if fused_layer:
            out, h_last, c_last = ops.lstm_layer(xw, h, c, w)
        else:
            h_last, c_last, hs = h, c, []
            for x in ops.split(xw, axis=0):
                h_last, c_last = ops.lstm_step(x + h_last @ w, c_last)
                hs.append(h_last)
            out = ops.stack(hs, axis=0)
        loss = sum(((t * ndl.Tensor(g, device=op_device, dtype="float64")).sum() for t, g in
                    zip((out, h_last, c_last), G)), start=ndl.Tensor(0.0, device=op_device, dtype="float64"))
        loss.backward()
        return [t.numpy() for t in (out, h_last, c_last)] + [t.grad.numpy() for t in (xw, h, c, w)]

    for got, want in zip(run(True), run(False)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_lstm_layer_has_no_second_derivative(op_device):
    tensors = [ndl.Tensor(np.ones(shape), device=op_device, dtype="float64") for shape in ((3, 1, 8), (1, 2), (1, 2),
                                                                                         (2, 8))]
    outputs = ops.lstm_layer(*tensors)
    layer = outputs[0].inputs[0]
    dxw = layer.op.gradient(ops.make_tuple(*(ndl.ones_like(t) for t in outputs)), layer)[0]
    with pytest.raises(NotImplementedError, match="lstm_layer: no second derivative"):
        dxw.sum().backward()


def test_sigmoid_and_embedding_have_second_derivatives(op_device):
    device = op_device
    x = ndl.Tensor(np.array([0.3, -1.2]), device=device, dtype="float64")
    s = ops.sigmoid(x)
    (g,) = [ops.SigmoidGrad()(s, ndl.Tensor(np.ones(2), device=device, dtype="float64"))]
    g.sum().backward()
    sv = 1 / (1 + np.exp(-np.array([0.3, -1.2])))
    np.testing.assert_allclose(x.grad.numpy(), sv * (1 - sv) * (1 - 2 * sv), rtol=1e-10)
    w = ndl.Tensor(np.arange(6.0).reshape(3, 2), device=device, dtype="float64")
    ids = ndl.Tensor(np.array([2.0, 2.0]), device=device, dtype="float64", requires_grad=False)
    grad = ops.EmbeddingScatterAdd(3)(ops.embedding(w, ids), ids)  # scatter of a gather
    np.testing.assert_allclose(grad.numpy(), [[0, 0], [0, 0], [8, 10]])
    grad.sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), [[0, 0], [0, 0], [2, 2]])


def test_lstm_step_gives_h_then_c_in_pytorchs_gate_order(op_device):
    rng = np.random.default_rng(4)
    z, c = rng.standard_normal((2, 12)), rng.standard_normal((2, 3))
    h_new, c_new = ops.lstm_step(ndl.Tensor(z, device=op_device, dtype="float64"),
                                 ndl.Tensor(c, device=op_device, dtype="float64"))
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    i, f, g, o = sig(z[:, :3]), sig(z[:, 3:6]), np.tanh(z[:, 6:9]), sig(z[:, 9:])
    np.testing.assert_allclose(c_new.numpy(), f * c + i * g, rtol=1e-12)
    np.testing.assert_allclose(h_new.numpy(), o * np.tanh(f * c + i * g), rtol=1e-12)


def test_sigmoid_grad_is_differentiable_in_both_inputs(op_device):
    """SigmoidGrad(y, dy) = dy y (1 - y): d/dy = dy (1 - 2y), d/ddy = y (1 - y), by central differences."""
    rng = np.random.default_rng(5)
    _check_op_gradients(op_device, lambda y, dy: ops.SigmoidGrad()(y, dy),
                        [rng.uniform(0.1, 0.9, (2, 3)), rng.standard_normal((2, 3)) * 2])


def test_softmax_cross_entropy_takes_labels_of_any_shape_holding_one_per_row(op_device):
    rng = np.random.default_rng(6)
    logits = rng.standard_normal((3, 4))
    want = np.mean(np.log(np.exp(logits).sum(1)) - logits[np.arange(3), [1, 3, 0]])
    for labels in ([1, 3, 0], np.array([[1.0], [3.0], [0.0]]), ndl.Tensor(np.array([[1.0, 3.0, 0.0]]), device=op_device)):
        loss = ops.softmax_cross_entropy(ndl.Tensor(logits, device=op_device, dtype="float64"), labels)
        assert loss.shape == () and abs(float(loss.numpy()) - want) < 1e-12
    with pytest.raises(IndexError, match=r"^SoftmaxCrossEntropy on inputs of shape \(3, 4\).*: softmax_xent: label 4 "
                                         r"\(at 1\) outside \[0, 4\)"):
        ops.softmax_cross_entropy(ndl.Tensor(logits, device=op_device), [1, 4, 0])
    with pytest.raises(ValueError, match="softmax_cross_entropy: 2 labels for 3 rows of logits"):
        ops.softmax_cross_entropy(ndl.Tensor(logits, device=op_device), [1, 2])


@pytest.mark.skipif(NUMPY_BACKEND, reason="NDArray devices")
def test_ops_keep_activations_on_the_device(device, monkeypatch):
    """No op of a training step reads its arrays back to the host (numpy_view / numpy are never called)."""
    from needle.apps.models import LanguageModel

    model = LanguageModel(4, 20, 5, 1, seq_model="lstm", device=device, dtype="float32")
    x = ndl.Tensor(np.random.default_rng(0).integers(0, 20, (3, 2)).astype(np.float32), device=device)
    y = ndl.Tensor(np.random.default_rng(1).integers(0, 20, 6).astype(np.float32), device=device)
    bn, ln = ndl.nn.BatchNorm1d(20, device=device), ndl.nn.LayerNorm1d(20, device=device)

    def refuse(self, *args):
        raise AssertionError("an activation was copied to the host")

    monkeypatch.setattr(nd.NDArray, "numpy", refuse)
    monkeypatch.setattr(nd.NDArray, "numpy_view", refuse)
    out, _ = model(x)
    loss = ndl.nn.SoftmaxLoss()(ln(bn(out)), y)
    loss.backward()


# ---- bad arguments: clear errors, never a crash ----


def test_bad_ids_and_labels_raise(kind):
    W = put(np.ones((4, 2)), kind, "float32")
    with pytest.raises(IndexError, match=r"embedding_gather: id 4 \(at 1\) outside \[0, 4\)"):
        fused.embedding_gather(W, put([1, 4], kind, "float32"))
    with pytest.raises(IndexError, match="outside"):
        fused.embedding_gather(W, put([-1], kind, "float32"))
    with pytest.raises(ValueError, match="whole numbers"):
        fused.embedding_scatter_add(put(np.ones((1, 2)), kind, "float32"), put([0.5], kind, "float32"), 4)
    with pytest.raises(IndexError, match="softmax_xent: label"):
        fused.softmax_xent(put(np.ones((2, 3)), kind, "float32"), put([0, 3], kind, "float32"))
    with pytest.raises(IndexError, match="outside"):
        fused.softmax_xent(put(np.ones((1, 3)), kind, "float32"), put([np.nan], kind, "float32"))
    # every device reports the first bad id, whichever its fault (labels.id_error words it as the C++ kernels do)
    with pytest.raises(ValueError, match=r"embedding_gather: id must be whole numbers, got 0.5 \(at 0\)"):
        fused.embedding_gather(W, put([0.5, 9], kind, "float32"))
    with pytest.raises(IndexError, match=r"embedding_gather: id 9 \(at 0\) outside \[0, 4\)"):
        fused.embedding_gather(W, put([9, 0.5], kind, "float32"))


def test_bad_shapes_raise_value_errors(kind):
    a = put(np.ones((2, 3)), kind, "float32")
    with pytest.raises(ValueError, match="weight must be 2-D"):
        fused.embedding_gather(put(np.ones(3), kind, "float32"), put([0], kind, "float32"))
    with pytest.raises(ValueError, match="labels must have shape"):
        fused.softmax_xent(a, put([0, 1, 2], kind, "float32"))
    with pytest.raises(ValueError, match="one per channel"):
        fused.batchnorm_forward(a, *(put(np.ones(2), kind, "float32") for _ in range(4)), 1e-5)
    with pytest.raises(ValueError, match=r"z must be \(bs, 4 \* hidden\)"):
        fused.lstm_cell(a, a)
    with pytest.raises(ValueError, match="c must have shape"):
        fused.lstm_cell(put(np.ones((2, 8)), kind, "float32"), a)
    with pytest.raises(ValueError, match="grad of shape"):
        fused.embedding_scatter_add(a, put([0], kind, "float32"), 4)
    with pytest.raises(ValueError, match="col must be 6-D"):
        fused.col2im(a, (2, 3), 1, (0, 0))


def test_activations_on_another_device_are_refused_ids_are_copied_over():
    a = nd.array(np.ones((2, 3)), device=nd.cpu_numpy())
    if not nd.cpu().enabled():
        pytest.skip("one device only")
    with pytest.raises(ValueError, match="lse is on cpu"):
        fused.softmax_xent_grad(a, nd.array([0.0, 1.0], device=nd.cpu_numpy()), nd.array([1.0, 1.0], device=nd.cpu()),
                                nd.array(1.0, device=nd.cpu_numpy()))
    loss, _ = fused.softmax_xent(a, nd.array([0.0, 1.0], device=nd.cpu()))  # labels from another device
    assert loss.device == nd.cpu_numpy()
    np.testing.assert_allclose(loss.numpy(), np.log(3) * np.ones(2), rtol=1e-6)


@pytest.mark.parametrize("dev", [d for d in nd.all_devices() if d.enabled()], ids=str)
def test_kernels_check_raw_buffers(dev):
    """Called directly with bad buffers, sizes or dtypes, each kernel raises ValueError (never crashes)."""
    f32 = lambda n: dev.Array(n, "float32")  # noqa: E731
    small, big, other = f32(2), f32(1000), dev.Array(1000, "float64")
    ids = f32(4)
    dev.fill(ids, 0.0)
    calls = {
        "embedding_gather": [(small, ids, big, 4, 10, 10), (big, ids, small, 4, 10, 10), (big, ids, other, 4, 10, 10)],
        "embedding_scatter_add": [(small, ids, big, 4, 10, 10), (big, ids, small, 4, 10, 10)],
        "softmax_xent": [(small, ids, big, big, 4, 10), (big, ids, small, big, 4, 10), (big, other, big, big, 4, 10)],
        "softmax_xent_grad": [(big, ids, small, big, big, 4, 10), (big, ids, big, big, small, 4, 10)],
        "sigmoid": [(small, big, 10), (big, other, 10)],
        "sigmoid_grad": [(small, big, big, 10)],
        "batchnorm_stats": [(small, big, big, 4, 3, 2), (big, small, big, 4, 3, 2), (big, big, big, 0, 3, 0)],
        "batchnorm_forward": [(small, big, big, big, big, big, 4, 3, 2, 1e-5)],
        "batchnorm_backward": [(big, big, big, big, big, small, big, big, 4, 3, 2, 1e-5, True)],
        "layernorm_forward": [(small, big, big, big, 4, 10, 1e-5), (big, big, big, big, 4, 0, 1e-5)],
        "layernorm_backward": [(big, big, big, big, small, big, 4, 10, 1e-5)],
        "lstm_cell": [(small, big, big, big, 4, 10), (big, big, big, small, 4, 10)],
        "lstm_cell_grad": [(big, big, big, big, small, big, 4, 10)],
        "im2col": [(small, big, 1, 2, 2, 3, 3, 3, 1, 1, 1, 2, 2, 0, [12, 6, 3, 1]),  # the view past the buffer
                   (big, small, 1, 2, 2, 3, 3, 3, 1, 1, 1, 2, 2, 0, [12, 6, 3, 1]),
                   (big, other, 1, 2, 2, 3, 3, 3, 1, 1, 1, 2, 2, 0, [12, 6, 3, 1]),
                   (big, f32(1000), 1, 2, 2, 3, 3, 3, 0, 1, 1, 2, 2, 0, [12, 6, 3, 1]),
                   (big, f32(1000), 1, 2, 2, 3, 3, 3, 1, 1, 1, 2, 2, 999, [12, 6, 3, 1]),
                   (big, f32(1000), 1, 2, 2, 3, 3, 3, 1, 1, 1, 2, 2, 0, [12, 6, 3])],
        "col2im": [(small, big, 1, 2, 2, 3, 3, 3, 1, 1, 1, 2, 2), (big, small, 1, 2, 2, 3, 3, 3, 1, 1, 1, 2, 2),
                   (big, other, 1, 2, 2, 3, 3, 3, 1, 1, 1, 2, 2), (big, f32(1000), 1, 2, 2, 3, 3, 3, 0, 1, 1, 2, 2)],
    }
    for name, bad in calls.items():
        for args in bad:
            with pytest.raises(ValueError, match=name):
                getattr(dev, name)(*args)
    with pytest.raises((ValueError, TypeError)):
        dev.sigmoid(big, big, -1)
    with pytest.raises(ValueError, match="overflow|holds"):
        dev.embedding_gather(big, ids, big, 4, 2**62, 2**62)


def test_a_device_module_without_the_fused_kernels_falls_back_to_numpy_on_host_copies():
    """A course-style device module (no fused kernels) still runs every fused op, with the same numbers."""
    import types

    base = nd.cpu_numpy()
    names = [n for n in dir(base.mod) if not n.startswith("_") and n not in fused.__all__]
    mod = types.SimpleNamespace(**{n: getattr(base.mod, n) for n in names}, __tile_size__=base.mod.__tile_size__)
    dev = nd.BackendDevice("course_like", mod)
    rng = np.random.default_rng(4)
    Z, labels = rng.standard_normal((3, 5)), np.array([4.0, 0.0, 2.0])
    loss, lse = fused.softmax_xent(nd.array(Z, device=dev), nd.array(labels, device=dev))
    expect_loss, expect_lse = fused.softmax_xent(Z, labels)
    np.testing.assert_allclose(loss.numpy(), expect_loss, rtol=1e-6)
    np.testing.assert_allclose(lse.numpy(), expect_lse, rtol=1e-6)
    dx, dw, db = fused.layernorm_backward(*(nd.array(a, device=dev) for a in (Z, Z * 2, np.ones(5))), 1e-5)
    ex = fused.layernorm_backward(Z.astype(np.float32), (Z * 2).astype(np.float32), np.ones(5, np.float32), 1e-5)
    for got, want in zip((dx, dw, db), ex):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sliced_views_with_an_offset(device, dtype):
    """Inputs that are slices of a larger buffer (an offset, rows with gaps) give the numbers of their values."""
    rng = np.random.default_rng(6)
    big = rng.standard_normal((7, 20)) * 3
    view = nd.array(big, dtype=dtype, device=device)[2:5, 1:14]
    Z, labels = big[2:5, 1:14], np.array([0, 12, 5])
    loss, lse = fused.softmax_xent(view, nd.array(labels, dtype=dtype, device=device))
    ref = np.log(np.exp(Z).sum(axis=1))
    np.testing.assert_allclose(lse.numpy(), ref, **TOL[dtype])
    np.testing.assert_allclose(loss.numpy(), ref - Z[np.arange(3), labels], **TOL[dtype])
    W = nd.array(big, dtype=dtype, device=device)[1:6, 3:11]  # a (5, 8) weight inside the buffer
    got = fused.embedding_gather(W, nd.array([[4, 0], [2, 2]], dtype=dtype, device=device))
    np.testing.assert_allclose(got.numpy(), big[1:6, 3:11][[[4, 0], [2, 2]]], **TOL[dtype])
    z = nd.array(big, dtype=dtype, device=device)[:3, 4:20]  # (3, 16): 4 gates of 4
    c = nd.array(big, dtype=dtype, device=device)[4:7, :4]
    h_new, c_new = fused.lstm_cell(z, c)
    h_ref, c_ref = ref_lstm(big[:3, 4:20], big[4:7, :4])
    np.testing.assert_allclose(h_new.numpy(), h_ref, **TOL[dtype])
    np.testing.assert_allclose(c_new.numpy(), c_ref, **TOL[dtype])


@pytest.mark.skipif(NUMPY_BACKEND, reason="NDArray layouts (numpy arrays under NEEDLE_BACKEND=np)")
def test_batch_norm_makes_a_strided_input_dense_once(device):
    """A (N, C, H, W) view of NHWC data (what nn.Conv returns) is made dense once, by a Dense node whose
    gradient passes through, so the statistics, forward and backward kernels read one dense copy instead of
    each making their own; x itself is left as it was."""
    rng = np.random.default_rng(12)
    nhwc = rng.standard_normal((2, 3, 3, 4))
    leaf = ndl.Tensor(nhwc, device=device, dtype="float64")
    x = ndl.ops.transpose(leaf, (0, 3, 1, 2))
    assert not x.realize_cached_data().is_compact()
    w, b = (ndl.Tensor(np.ones(4), device=device, dtype="float64") for _ in range(2))
    y, mean, _ = ops.batch_norm(x, w, b, 1e-5)
    dense = y.inputs[0]
    assert dense.inputs[0] is x and dense.realize_cached_data().is_compact()
    assert not x.realize_cached_data().is_compact()
    np.testing.assert_allclose(dense.numpy(), nhwc.transpose(0, 3, 1, 2))
    np.testing.assert_allclose(mean.numpy(), nhwc.mean(axis=(0, 1, 2)), rtol=1e-12)
    expect = ref_norm(nhwc.transpose(0, 3, 1, 2), (0, 2, 3), 1e-5)[0] + 1  # weight 1, bias 1
    np.testing.assert_allclose(y.numpy(), expect, rtol=1e-10, atol=1e-12)
    r = rng.standard_normal(y.shape)
    (y * ndl.Tensor(r, device=device, dtype="float64")).sum().backward()
    x_dense = ndl.Tensor(np.ascontiguousarray(nhwc.transpose(0, 3, 1, 2)), device=device, dtype="float64")
    (ops.batch_norm(x_dense, w, b, 1e-5)[0] * ndl.Tensor(r, device=device, dtype="float64")).sum().backward()
    np.testing.assert_allclose(leaf.grad.numpy(), x_dense.grad.numpy().transpose(0, 2, 3, 1), rtol=1e-10, atol=1e-12)
