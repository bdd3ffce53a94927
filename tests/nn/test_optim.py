"""Optimizers: hand-computed updates, the course's golden losses, no in-place gradient changes."""
import gc
import weakref

import numpy as np
import pytest

import needle as ndl
from needle import nn
from nn_cases import get_int_tensor, get_tensor, torch_or_skip


def _param(values):
    return nn.Parameter(ndl.Tensor(np.array(values, dtype=np.float32)))


def _set_grad(p, values):
    p.grad = ndl.Tensor(np.array(values, dtype=np.float32), requires_grad=False)


def test_sgd_dampened_momentum_and_coupled_weight_decay_by_hand():
    p = _param([1.0, -2.0])
    opt = ndl.optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.5)
    _set_grad(p, [0.2, 0.4])
    opt.step()
    # g = grad + 0.5 p = [0.7, -0.6]; u = 0.1 g = [0.07, -0.06]; p -= 0.1 u
    np.testing.assert_allclose(p.numpy(), [1 - 0.007, -2 + 0.006], rtol=1e-6)
    _set_grad(p, [0.2, 0.4])
    opt.step()
    g2 = np.array([0.2, 0.4]) + 0.5 * np.array([0.993, -1.994])
    u2 = 0.9 * np.array([0.07, -0.06]) + 0.1 * g2
    np.testing.assert_allclose(p.numpy(), np.array([0.993, -1.994]) - 0.1 * u2, rtol=1e-6)


def test_adam_bias_correction_by_hand():
    p = _param([0.5])
    opt = ndl.optim.Adam([p], lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.1)
    theta, m, v = 0.5, 0.0, 0.0
    for t, grad in enumerate([0.3, -0.2, 0.1], start=1):
        _set_grad(p, [grad])
        opt.step()
        g = grad + 0.1 * theta
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
        theta -= 0.01 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
        np.testing.assert_allclose(p.numpy(), [theta], rtol=1e-5)
    assert opt.t == 3


def test_parameters_without_grad_are_skipped_and_reset_grad():
    a, b = _param([1.0]), _param([2.0])
    opt = ndl.optim.Adam([a, b], lr=0.1)
    _set_grad(a, [1.0])
    opt.step()
    assert b.numpy()[0] == 2.0 and a.numpy()[0] != 1.0
    opt.reset_grad()
    assert a.grad is None and b.grad is None


def _relu_net_step():
    """A step of a two-layer ReLU net: (optimizer, its weights, an intermediate node, a weak reference to it)."""
    np.random.seed(3)
    w1, w2 = _param(np.random.randn(4, 5)), _param(np.random.randn(5, 2))
    x = ndl.Tensor(np.random.randn(3, 4).astype(np.float32), requires_grad=False)
    hidden = ndl.ops.relu(x @ w1)  # its adjoint is built from its own input: node.grad -> adjoint -> node
    (hidden @ w2).sum().backward()
    return ndl.optim.SGD([w1, w2], lr=0.1), (w1, w2), hidden, weakref.ref(hidden)


def test_reset_grad_frees_the_last_backward_graph_without_the_cycle_collector():
    gc.disable()
    try:
        opt, (w1, w2), hidden, ref = _relu_net_step()
        assert hidden.grad is not None and w1.grad is not None
        del hidden
        assert ref() is not None  # held by the cycle through its .grad, and by w1.grad's graph
        opt.reset_grad()
        assert w1.grad is None and w2.grad is None
        assert ref() is None  # freed by reference counting alone
    finally:
        gc.enable()


def test_gradients_replaced_by_hand_leave_the_graph_to_the_cycle_collector():
    """Without reset_grad (p.grad = p.grad.detach(), as chapter 10 measures memory), nothing of needle's keeps
    the graph alive: one collection frees it, as before the graph was released on reset."""
    opt, (w1, w2), hidden, ref = _relu_net_step()
    for p in (w1, w2):
        p.grad = p.grad.detach()
    del hidden
    gc.collect()
    assert ref() is None
    opt.reset_grad()  # the detached gradients carry no graph: nothing to release


def test_every_node_keeps_its_grad_until_reset_grad():
    """As the course's backward leaves them; a reset releases only the graph that reached its own weights."""
    _, (_, w2), hidden, _ = _relu_net_step()
    np.testing.assert_allclose(hidden.grad.numpy(), np.ones((3, 2)) @ w2.numpy().T, rtol=1e-6)
    other, _, hidden_b, _ = _relu_net_step()
    other.reset_grad()
    assert hidden_b.grad is None
    assert hidden.grad is not None


@pytest.mark.parametrize("make", [lambda ps: ndl.optim.SGD(ps, lr=0.1), lambda ps: ndl.optim.Adam(ps, lr=0.1)])
def test_a_parameter_without_grad_does_not_stop_the_ones_after_it(make):
    a, b, c = _param([1.0]), _param([2.0]), _param([3.0])
    _set_grad(b, [1.0])
    make([a, b, c]).step()
    assert a.numpy()[0] == 1.0 and c.numpy()[0] == 3.0 and b.numpy()[0] < 2.0


def test_course_default_hyperparameters():
    """SGD(lr=0.01) and Adam(lr=0.01, eps=1e-8) by default, as in the course: one step on grad 1 moves p by lr."""
    for make in (ndl.optim.SGD, ndl.optim.Adam):
        p = _param([1.0])
        _set_grad(p, [1.0])
        make([p]).step()
        np.testing.assert_allclose(p.numpy(), [0.99], rtol=1e-6)


def test_adam_eps_is_added_to_the_root_of_v_hat():
    """With gradients as small as eps the update is lr * m_hat / (sqrt(v_hat) + eps) = lr / 2, not lr / 0."""
    p = nn.Parameter(ndl.Tensor(np.array([1.0])))
    p.grad = ndl.Tensor(np.array([1e-8]), requires_grad=False)
    ndl.optim.Adam([p], lr=0.1, eps=1e-8).step()
    np.testing.assert_allclose(p.numpy(), [1.0 - 0.05], rtol=1e-6)


def test_adam_runs_the_device_fused_kernel_where_there_is_one(monkeypatch):
    calls = []
    fused = ndl.optim.array_api.adam_step
    monkeypatch.setattr(ndl.optim.array_api, "adam_step", lambda *a, **k: calls.append(1) or fused(*a, **k))
    p = _param([1.0, 2.0])
    _set_grad(p, [0.5, 0.5])
    ndl.optim.Adam([p], lr=0.1).step()
    assert len(calls) == (1 if hasattr(p.device, "adam_step") else 0)
    np.testing.assert_allclose(p.numpy(), [0.9, 1.9], rtol=1e-5)


def test_clip_grad_norm_scales_into_new_tensors():
    a, b = _param([0.0, 0.0]), _param([0.0])
    _set_grad(a, [3.0, 0.0])
    _set_grad(b, [4.0])
    old = a.grad
    opt = ndl.optim.SGD([a, b], lr=1.0)
    norm = opt.clip_grad_norm(max_norm=1.0)
    assert norm == pytest.approx(5.0)
    np.testing.assert_allclose(a.grad.numpy(), [0.6, 0.0], rtol=1e-5)
    np.testing.assert_allclose(b.grad.numpy(), [0.8], rtol=1e-5)
    np.testing.assert_allclose(old.numpy(), [3.0, 0.0])  # not modified in place
    opt.clip_grad_norm(max_norm=10.0)  # under the limit: unchanged
    np.testing.assert_allclose(a.grad.numpy(), [0.6, 0.0], rtol=1e-5)
    opt.clip_grad_norm(max_norm=1.5)  # just above the norm (1): unchanged too, never scaled up
    np.testing.assert_allclose(b.grad.numpy(), [0.8], rtol=1e-5)


def test_clip_grad_norm_default_and_its_epsilon():
    """max_norm defaults to 0.25, and the scale is max_norm / (norm + 1e-6) as in the course."""
    a = _param([0.0, 0.0])
    _set_grad(a, [0.3, 0.4])
    opt = ndl.optim.SGD([a])
    opt.clip_grad_norm()
    np.testing.assert_allclose(a.grad.numpy(), np.array([0.3, 0.4]) * 0.25 / (0.5 + 1e-6), rtol=1e-6)
    _set_grad(a, [1.5e-6, 0.0])  # near the epsilon: 1e-6 / 2.5e-6 = 0.4, not 1e-6 / 0.5e-6 = 2 (no clip)
    opt.clip_grad_norm(max_norm=1e-6)
    np.testing.assert_allclose(a.grad.numpy(), [1.5e-6 * 0.4, 0.0], rtol=1e-5)


def _learn_model_1d(make_model, optimizer, epochs=1, **kwargs):
    """The course's learn_model_1d: 1024 deterministic samples, batches of 32; returns the last loss."""
    np.random.seed(42)
    model = make_model()
    X = get_tensor(1024, 64).numpy()
    y = get_int_tensor(1024, low=0, high=16).numpy().astype(np.uint8)
    loss_fn = nn.SoftmaxLoss()
    opt = optimizer(model.parameters(), **kwargs)
    for _ in range(epochs):
        for X0, y0 in zip(np.array_split(X, 32), np.array_split(y, 32)):
            opt.reset_grad()
            loss = loss_fn(model(ndl.Tensor(X0, dtype="float32")), ndl.Tensor(y0))
            loss.backward()
            before = model.parameters()[0].grad.numpy().copy()
            opt.step()
            np.testing.assert_allclose(model.parameters()[0].grad.numpy(), before, err_msg="optimizer changed a gradient")
    return float(loss.numpy())


def _mlp():
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 16))


@pytest.mark.parametrize(
    "make_model, optimizer, kwargs, epochs, expected",
    [
        (_mlp, ndl.optim.SGD, dict(lr=0.01, momentum=0.0), 1, 3.207009),
        (_mlp, ndl.optim.SGD, dict(lr=0.01, momentum=0.9), 1, 3.311805),
        (_mlp, ndl.optim.SGD, dict(lr=0.01, momentum=0.9, weight_decay=0.01), 1, 3.306993),
        (lambda: nn.Sequential(nn.Linear(64, 8), nn.ReLU(), nn.Residual(nn.Linear(8, 8)), nn.Linear(8, 16)),
         ndl.optim.SGD, dict(lr=0.01, weight_decay=0.001), 3, 2.852236),
        (_mlp, ndl.optim.Adam, dict(lr=0.001), 1, 3.703999),
        (_mlp, ndl.optim.Adam, dict(lr=0.001, weight_decay=0.01), 1, 3.705134),
        (lambda: nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.BatchNorm1d(32), nn.Linear(32, 16)),
         ndl.optim.Adam, dict(lr=0.001, weight_decay=0.001), 1, 3.296256),
        (lambda: nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.LayerNorm1d(32), nn.Linear(32, 16)),
         ndl.optim.Adam, dict(lr=0.01, weight_decay=0.01), 1, 2.82192),
    ],
    ids=["sgd", "sgd-momentum", "sgd-momentum-wd", "sgd-residual-3ep", "adam", "adam-wd", "adam-batchnorm",
         "adam-layernorm"],
)
def test_course_golden_losses(make_model, optimizer, kwargs, epochs, expected):
    assert _learn_model_1d(make_model, optimizer, epochs, **kwargs) == pytest.approx(expected, rel=1e-5, abs=1e-5)


def test_adam_matches_torch_without_weight_decay():
    torch = torch_or_skip()
    np.random.seed(0)
    w0 = np.random.randn(5, 3).astype(np.float32)
    grads = [np.random.randn(5, 3).astype(np.float32) for _ in range(4)]
    p = nn.Parameter(ndl.Tensor(w0))
    pt = torch.nn.Parameter(torch.tensor(w0))
    ours, ref = ndl.optim.Adam([p], lr=0.05), torch.optim.Adam([pt], lr=0.05)
    for g in grads:
        p.grad = ndl.Tensor(g)
        pt.grad = torch.tensor(g)
        ours.step()
        ref.step()
    np.testing.assert_allclose(p.numpy(), pt.detach().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_fused_adam_kernel_matches_the_elementwise_update(dtype, weight_decay):
    """cpu() runs Adam as one fused kernel, cpu_numpy() as the readable elementwise formula: same parameters."""
    from needle.backend_ndarray import cpu, cpu_numpy

    if not hasattr(cpu(), "adam_step"):
        pytest.skip("the C++ backend has no fused adam_step")
    result = {}
    for dev in (cpu(), cpu_numpy()):
        rng = np.random.default_rng(0)
        params = [ndl.Tensor(rng.standard_normal(s).astype(dtype), device=dev) for s in [(7, 5), (5,), (3, 2, 2)]]
        opt = ndl.optim.Adam(params, lr=0.01, weight_decay=weight_decay)
        for _ in range(4):
            for p in params:  # a strided (transposed) gradient view on one of them
                g = rng.standard_normal(p.shape[::-1]).astype(dtype).T
                p.grad = ndl.Tensor(g, device=dev)
            opt.step()
        result[dev.name] = [p.numpy() for p in params]
    for a, b in zip(result["cpu"], result["cpu_numpy"]):
        np.testing.assert_allclose(a, b, rtol=1e-5 if dtype == "float32" else 1e-12, atol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fused_adam_updates_its_moments_in_place_with_the_same_numbers(dtype):
    """After the first step the moments are written over (their own loop, vectorised); the parameter's new value
    is a new array, its old one untouched. 2**20 values: the threaded path."""
    from needle.backend_ndarray import cpu, array, adam_step

    if not hasattr(cpu(), "adam_step"):
        pytest.skip("the C++ backend has no fused adam_step")
    rng = np.random.default_rng(1)
    p, g, m, v = (rng.standard_normal(1 << 20).astype(dtype) for _ in range(4))
    v = np.abs(v)
    kw = dict(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.1, t=3)
    m_nd, v_nd, p_nd = (array(a, dtype=dtype, device=cpu()) for a in (m, v, p))
    new_p, new_m, new_v = adam_step(p_nd, array(g, dtype=dtype, device=cpu()), m_nd, v_nd, **kw)
    assert new_m is m_nd and new_v is v_nd and new_p is not p_nd
    np.testing.assert_array_equal(p_nd.numpy(), p)
    grad = g + 0.1 * p
    want_m, want_v = 0.9 * m + 0.1 * grad, 0.999 * v + 0.001 * grad * grad
    want_p = p - 0.01 / (1 - 0.9**3) * want_m / (np.sqrt(want_v) / np.sqrt(1 - 0.999**3) + 1e-8)
    tol = dict(rtol=2e-5, atol=1e-6) if dtype == "float32" else dict(rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(new_m.numpy(), want_m, **tol)
    np.testing.assert_allclose(new_v.numpy(), want_v, **tol)
    np.testing.assert_allclose(new_p.numpy(), want_p, **tol)
    # the numbers of the out-of-place loop (distinct output buffers), to the last bit or so (contractions into
    # fused multiply-adds may differ between the two loops)
    outs = [cpu().Array(1 << 20, dtype) for _ in range(3)]
    inputs = [array(a, dtype=dtype, device=cpu())._handle for a in (p, g, m, v)]
    cpu().adam_step(*inputs, *outs, 0.01, 0.9, 0.999, 1e-8, 0.1, 1 - 0.9**3, 1 - 0.999**3, False)
    for out, got in zip(outs, (new_p, new_m, new_v)):
        np.testing.assert_allclose(cpu().to_numpy(out, (1 << 20,), (1,), 0), got.numpy(),
                                   rtol=1e-6 if dtype == "float32" else 1e-14, atol=1e-7 if dtype == "float32" else 1e-15)


def test_fused_adam_kernel_rejects_mismatched_buffers():
    from needle.backend_ndarray import cpu

    if not hasattr(cpu(), "adam_step"):
        pytest.skip("the C++ backend has no fused adam_step")
    a, b = cpu().Array(4), cpu().Array(5)
    with pytest.raises(ValueError, match="adam_step: operand sizes differ"):
        cpu().adam_step(a, b, a, a, a, a, a, 0.1, 0.9, 0.999, 1e-8, 0.0, 0.1, 0.001, True)
    with pytest.raises(ValueError, match="adam_step: dtype"):
        cpu().adam_step(a, cpu().Array(4, "float64"), a, a, a, a, a, 0.1, 0.9, 0.999, 1e-8, 0.0, 0.1, 0.001, True)
