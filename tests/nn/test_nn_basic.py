"""nn_basic: course golden values, numpy re-computations, PyTorch comparisons (skipped without torch)."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import needle as ndl
from needle import nn
from nn_cases import check_against_torch, get_int_tensor, get_tensor, num_params, torch_or_skip

TOL = dict(rtol=1e-5, atol=1e-5)


def test_linear_init_golden():
    np.random.seed(1337)
    f = nn.Linear(7, 4)
    np.testing.assert_allclose(f.weight.numpy()[0], [-0.44064468, -0.63199449, -0.41082984, -0.075330488], **TOL)
    np.testing.assert_allclose(f.weight.numpy()[6], [-6.5129338e-04, -0.59517515, -0.16083106, -0.55698222], **TOL)
    np.testing.assert_allclose(f.bias.numpy(), [[0.077647, 0.814139, -0.770975, 1.120297]], **TOL)


def test_linear_init_bound_is_kaiming_uniform():
    np.random.seed(0)
    w = nn.Linear(300, 200).weight.numpy()
    bound = np.sqrt(2) * np.sqrt(3 / 300)
    assert w.shape == (300, 200) and np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound


def _linear(x_shape):
    np.random.seed(199)
    f = nn.Linear(10, 5)
    f.bias.data = get_tensor(5)
    return f, get_tensor(*x_shape)


@pytest.mark.parametrize("x_shape", [(1, 10), (3, 10), (1, 3, 10)])
def test_linear_forward_backward_vs_numpy(x_shape):
    f, x = _linear(x_shape)
    y = f(x)
    W, b, X = f.weight.numpy(), f.bias.numpy(), x.numpy()
    np.testing.assert_allclose(y.numpy(), X @ W + b.reshape(5), rtol=1e-5, atol=1e-4)
    (y**2).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), (2 * (X @ W + b.reshape(5))) @ W.T, rtol=1e-5, atol=1e-4)
    G = 2 * (X @ W + b.reshape(5)).reshape(-1, 5)
    np.testing.assert_allclose(f.weight.grad.numpy(), X.reshape(-1, 10).T @ G, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(f.bias.grad.numpy(), G.sum(0).reshape(f.bias.shape), rtol=1e-4, atol=1e-3)


def test_linear_golden_course_values():
    f, x = _linear((3, 10))
    np.testing.assert_allclose(f(x).numpy()[0], [7.763089, 10.086785, 0.380316, 6.242502, 6.944664], **TOL)
    f, x = _linear((1, 3, 10))
    (f(x) ** 2).sum().backward()
    np.testing.assert_allclose(x.grad.numpy()[0, 2, :3], [11.332953, -5.698288, -8.815561], **TOL)


def test_linear_on_a_single_vector_and_a_4d_batch():
    """A 1-D input (in,) gives (out,) and a (2, 3, 4, in) one (2, 3, 4, out), each as numpy's x @ W + b."""
    np.random.seed(3)
    f = nn.Linear(6, 4)
    W, b = f.weight.numpy(), f.bias.numpy().reshape(4)
    for shape in [(6,), (2, 3, 4, 6)]:
        x = np.random.randn(*shape).astype(np.float32)
        y = f(ndl.Tensor(x))
        assert y.shape == (*shape[:-1], 4)
        np.testing.assert_allclose(y.numpy(), x @ W + b, rtol=1e-5, atol=1e-5)


def test_linear_without_bias_and_bad_input():
    f = nn.Linear(4, 3, bias=False)
    assert f.bias is None and len(f.parameters()) == 1
    with pytest.raises(ValueError, match="Linear"):
        f(ndl.Tensor(np.ones((2, 5))))


def test_relu_flatten_sequential_residual_golden():
    np.testing.assert_allclose(nn.ReLU()(get_tensor(2, 2)).numpy(), [[3.35, 4.2], [0.25, 4.5]], **TOL)
    x = get_tensor(2, 2, 4, 3)
    y = nn.Flatten()(x)
    assert y.shape == (2, 24)
    (y**2).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.numpy(), **TOL)
    assert nn.Flatten()(get_tensor(2, 3, 4)).shape == (2, 12)
    np.random.seed(42)
    f = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 5))
    np.testing.assert_allclose(f(get_tensor(3, 5)).numpy()[0], [3.296263, 0.057031, 2.97568, -4.618432, -0.902491], **TOL)
    np.random.seed(42)
    f = nn.Residual(nn.Sequential(nn.Linear(5, 5), nn.ReLU(), nn.Linear(5, 5)))
    x = get_tensor(5, 5)
    np.testing.assert_allclose(f(x).numpy()[0], [0.4660964, 3.8619597, -3.637068, 3.7489638, 2.4931884], **TOL)
    f(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy()[3], [0.24244219, -0.19571924, -0.08556509, 0.9191598, 1.6787351], **TOL)


def test_softmax_loss_golden_and_numpy():
    x, y = get_tensor(5, 10), get_int_tensor(5, low=0, high=10)
    loss = nn.SoftmaxLoss()(x, y)
    np.testing.assert_allclose(loss.numpy(), 4.041218, **TOL)
    loss.backward()
    X, Y = x.numpy().astype(np.float64), y.numpy().astype(int)
    p = np.exp(X - X.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    p[np.arange(5), Y] -= 1
    np.testing.assert_allclose(x.grad.numpy(), p / 5, **TOL)


def _bn_numpy(X, w, b, eps=1e-5):
    mu, var = X.mean(0), X.var(0)
    return w * (X - mu) / np.sqrt(var + eps) + b


def test_batchnorm1d_forward_backward_golden():
    x = get_tensor(4, 4)
    bn = nn.BatchNorm1d(4)
    bn.weight.data = get_tensor(4, entropy=42)
    bn.bias.data = get_tensor(4, entropy=1337)
    y = bn(x)
    np.testing.assert_allclose(y.numpy()[0], [7.49529, 0.047213316, 2.690084, 5.5227957], **TOL)
    np.testing.assert_allclose(y.numpy(), _bn_numpy(x.numpy(), bn.weight.numpy(), bn.bias.numpy()), rtol=1e-5, atol=1e-4)
    x = get_tensor(5, 4)
    (nn.BatchNorm1d(4)(x) ** 2).sum().backward()
    np.testing.assert_allclose(x.grad.numpy()[0], [2.1338463e-04, 5.2094460e-06, -2.8359889e-05, -4.4368207e-06], **TOL)


@pytest.mark.parametrize("shape", [(3,), (2, 4), (2, 4, 5)])
def test_batchnorm_refuses_inputs_without_its_feature_axis(shape):
    with pytest.raises(ValueError, match=r"BatchNorm1d\(3\): input of shape"):
        nn.BatchNorm1d(3)(ndl.Tensor(np.ones(shape, dtype=np.float32)))


def test_batchnorm1d_running_stats_are_biased_golden():
    bn = nn.BatchNorm1d(3)
    for i in range(10):
        x = get_tensor(4, 3, entropy=i)
        y = bn(x)
    np.testing.assert_allclose(bn.running_mean.numpy(), [2.020656, 1.69489, 1.498846], **TOL)
    np.testing.assert_allclose(bn.running_var.numpy(), [1.412775, 1.386191, 1.096604], **TOL)
    bn.eval()
    (y**2).sum().backward()
    np.testing.assert_allclose(x.grad.numpy()[0], [8.7022781e-06, -4.9751252e-06, 9.5367432e-05], **TOL)
    # eval mode normalises with the running statistics
    X = get_tensor(6, 3, entropy=99).numpy()
    expect = (X - bn.running_mean.numpy()) / np.sqrt(bn.running_var.numpy() + 1e-5)
    np.testing.assert_allclose(bn(ndl.Tensor(X)).numpy(), expect, rtol=1e-5, atol=1e-5)


def test_batchnorm2d_matches_per_channel_numpy():
    np.random.seed(0)
    X = np.random.randn(3, 4, 5, 6).astype(np.float32)
    bn = nn.BatchNorm2d(4)
    bn.weight.data = ndl.Tensor(np.arange(1, 5, dtype=np.float32))
    x = ndl.Tensor(X)
    y = bn(x)
    mu, var = X.mean((0, 2, 3), keepdims=True), X.var((0, 2, 3), keepdims=True)
    w = np.arange(1, 5, dtype=np.float32).reshape(1, 4, 1, 1)
    np.testing.assert_allclose(y.numpy(), w * (X - mu) / np.sqrt(var + 1e-5), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(bn.running_var.numpy(), 0.9 + 0.1 * var.reshape(4), rtol=1e-5, atol=1e-5)
    # gradient: the same as BatchNorm1d on the (N*H*W, C) layout
    (y * y).sum().backward()
    bn1 = nn.BatchNorm1d(4)
    bn1.weight.data = ndl.Tensor(np.arange(1, 5, dtype=np.float32))
    x1 = ndl.Tensor(X.transpose(0, 2, 3, 1).reshape(-1, 4))
    (bn1(x1) ** 2).sum().backward()
    np.testing.assert_allclose(
        x.grad.numpy(), x1.grad.numpy().reshape(3, 5, 6, 4).transpose(0, 3, 1, 2), rtol=1e-4, atol=1e-4
    )


def test_batchnorm_against_torch():
    torch = torch_or_skip()
    np.random.seed(1)
    X = np.random.randn(8, 3, 4, 4).astype(np.float32)
    ours, ref = nn.BatchNorm2d(3), torch.nn.BatchNorm2d(3)
    check_against_torch(ours, ref, X, torch)
    np.testing.assert_allclose(ours.running_mean.numpy(), ref.running_mean.numpy(), rtol=1e-5, atol=1e-6)


@settings(max_examples=15)
@given(rows=st.integers(1, 6), dim=st.integers(1, 8), seed=st.integers(0, 2**16))
def test_layernorm_property_vs_numpy(rows, dim, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, dim)).astype(np.float32) * 3
    ln = nn.LayerNorm1d(dim)
    y = ln(ndl.Tensor(X)).numpy()
    expect = (X - X.mean(1, keepdims=True)) / np.sqrt(X.var(1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(y, expect, rtol=1e-4, atol=1e-4)


def test_layernorm_golden_and_3d():
    np.testing.assert_allclose(
        nn.LayerNorm1d(3)(get_tensor(3, 3)).numpy()[0], [-0.06525002, -1.1908097, 1.2560595], **TOL
    )
    x = get_tensor(1, 5)
    (nn.LayerNorm1d(5)(x) ** 4).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [[0.150192, 0.702322, -3.321343, 0.31219, 2.156639]], rtol=1e-4, atol=1e-4)
    X = get_tensor(2, 3, 4).numpy()
    y = nn.LayerNorm1d(4)(ndl.Tensor(X)).numpy()
    np.testing.assert_allclose(y, (X - X.mean(-1, keepdims=True)) / np.sqrt(X.var(-1, keepdims=True) + 1e-5), rtol=1e-4, atol=1e-4)


def test_dropout_mask_rule_golden():
    np.random.seed(3)
    x = get_tensor(2, 3)
    y = nn.Dropout(0.45)(x)
    np.testing.assert_allclose(y.numpy(), [[6.818182, 0, 0], [0.18181819, 0, 6.090909]], **TOL)
    np.random.seed(3)
    x = get_tensor(2, 3)
    nn.Dropout(0.26)(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [[1.3513514, 0, 0], [1.3513514, 0, 1.3513514]], **TOL)
    d = nn.Dropout(0.9)
    d.eval()
    np.testing.assert_allclose(d(x).numpy(), x.numpy())
    assert np.all(nn.Dropout(1.0)(x).numpy() == 0)
    for p in (1.5, -0.5):
        with pytest.raises(ValueError, match="Dropout"):
            nn.Dropout(p)
    assert nn.Dropout().p == 0.5  # the course's default


def test_dropout_zero_still_draws_like_the_course():
    np.random.seed(5)
    x = ndl.Tensor(np.ones((3, 4)))
    np.testing.assert_allclose(nn.Dropout(0.0)(x).numpy(), x.numpy())
    after_ours = np.random.rand()
    np.random.seed(5)
    np.random.rand(3, 4)
    assert after_ours == np.random.rand()


class _Useless(nn.Module):
    def __init__(self):
        super().__init__()
        self.stuff = {"layer1": nn.Linear(4, 4), "layer2": [nn.Dropout(0.1), nn.Sequential(nn.Linear(4, 4))]}


def test_parameter_discovery_and_training_flags():
    model = nn.Sequential(
        nn.BatchNorm1d(4), nn.Sequential(nn.LayerNorm1d(4), nn.Linear(4, 4), nn.Dropout(0.1)), nn.Linear(4, 4), _Useless()
    )
    refs = [model.modules[0], model.modules[1].modules[2], model.modules[3].stuff["layer2"][0],
            model.modules[3].stuff["layer2"][1].modules[0]]
    assert all(m.training for m in refs)
    model.eval()
    assert not any(m.training for m in refs)
    model.train()
    assert all(m.training for m in refs)
    # BN (2) + LN (2) + Linear (2) + Linear (2) + two Linears in the dict/list (4); buffers are not parameters
    assert len(model.parameters()) == 12
    assert all(isinstance(p, nn.Parameter) for p in model.parameters())
    assert num_params(model) == 8 + 8 + 20 + 20 + 40


def test_state_dict_names_and_buffers():
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    sd = model.state_dict()
    assert list(sd) == ["modules.0.weight", "modules.0.bias", "modules.1.weight", "modules.1.bias",
                        "modules.1.running_mean", "modules.1.running_var"]
    assert sd["modules.0.bias"].shape == (1, 2)


def test_softmax_loss_is_0d_and_checks_labels():
    logits = ndl.Tensor(np.zeros((3, 4), dtype=np.float32))
    loss = nn.SoftmaxLoss()(logits, ndl.Tensor(np.array([0.0, 1.0, 3.0])))
    assert loss.shape == () and loss.numpy() == pytest.approx(np.log(4))
    with pytest.raises(IndexError, match=r"SoftmaxCrossEntropy on inputs of shape .*label 4 \(at 2\) outside \[0, 4\)"):
        nn.SoftmaxLoss()(logits, ndl.Tensor(np.array([0.0, 1.0, 4.0])))
    with pytest.raises(ValueError, match="2 labels for 3 rows"):
        nn.SoftmaxLoss()(logits, ndl.Tensor(np.array([0.0, 1.0])))


def test_softmax_loss_survives_huge_logits_and_scales_by_out_grad():
    X = np.array([[1e5, 0.0, -1e5], [3.0, 2.0, 1.0]], dtype=np.float32)
    x = ndl.Tensor(X)
    loss = nn.SoftmaxLoss()(x, ndl.Tensor(np.array([1.0, 0.0])))
    p = np.exp(X[1] - X[1].max()) / np.exp(X[1] - X[1].max()).sum()
    assert loss.numpy() == pytest.approx((1e5 - np.log(p[0])) / 2, rel=1e-6)
    (loss * 3.0).backward()
    expect = np.stack([np.array([1.0, -1.0, 0.0]), p - np.array([1.0, 0, 0])]) * 3.0 / 2
    np.testing.assert_allclose(x.grad.numpy(), expect, rtol=1e-5, atol=1e-6)


def _finite_difference(f, arrays, k, eps=1e-6):
    """Central differences of the scalar f(*arrays) with respect to arrays[k] (float64)."""
    grad = np.zeros_like(arrays[k])
    for idx in np.ndindex(*arrays[k].shape):
        plus = [a.copy() for a in arrays]
        minus = [a.copy() for a in arrays]
        plus[k][idx] += eps
        minus[k][idx] -= eps
        grad[idx] = (f(*plus) - f(*minus)) / (2 * eps)
    return grad


@pytest.mark.parametrize("kind", ["batchnorm2d-train", "batchnorm1d-eval", "layernorm-3d"])
def test_fused_normalization_gradients_by_finite_differences(kind):
    rng = np.random.default_rng(5)
    shape, dim = {"batchnorm2d-train": ((3, 2, 2, 3), 2), "batchnorm1d-eval": ((4, 3), 3),
                  "layernorm-3d": ((2, 3, 4), 4)}[kind]
    X, W, B = rng.standard_normal(shape), rng.standard_normal(dim), rng.standard_normal(dim)
    G = rng.standard_normal(shape)
    if kind.startswith("batchnorm2d"):
        module = nn.BatchNorm2d(dim, dtype="float64")
    elif kind.startswith("batchnorm1d"):
        module = nn.BatchNorm1d(dim, dtype="float64")
        module.running_mean = ndl.Tensor(rng.standard_normal(dim), dtype="float64", requires_grad=False)
        module.running_var = ndl.Tensor(rng.random(dim) + 0.5, dtype="float64", requires_grad=False)
        module.eval()
    else:
        module = nn.LayerNorm1d(dim, dtype="float64")

    def loss(x, w, b):  # (training-mode output does not depend on the running statistics it updates)
        module.weight.data = ndl.Tensor(w, dtype="float64")
        module.bias.data = ndl.Tensor(b, dtype="float64")
        return float((module(ndl.Tensor(x, dtype="float64")).numpy() * G).sum())

    x = ndl.Tensor(X, dtype="float64")
    module.weight.data, module.bias.data = ndl.Tensor(W, dtype="float64"), ndl.Tensor(B, dtype="float64")
    (module(x) * ndl.Tensor(G, dtype="float64")).sum().backward()
    for k, got in enumerate([x.grad, module.weight.grad, module.bias.grad]):
        np.testing.assert_allclose(got.numpy(), _finite_difference(loss, [X, W, B], k), rtol=1e-5, atol=1e-6)
