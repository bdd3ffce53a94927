"""Attention and Transformer modules against numpy re-computations and PyTorch's attention."""
import numpy as np
import pytest

import needle as ndl
from needle import nn
from nn_cases import torch_or_skip

TOL = dict(rtol=1e-4, atol=1e-5)


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _attention(q, k, v, causal):
    logits = q @ k.swapaxes(-1, -2) / np.sqrt(q.shape[-1])
    if causal:
        i, j = logits.shape[-2:]
        logits = logits + -np.finfo(np.float32).max * np.triu(np.ones((i, j)), j - i + 1)
    p = _softmax(logits)
    return p @ v, p


def _layernorm(x):
    return (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)


def _attention_layer(layer, x):
    b, t, _ = x.shape
    h, d = layer.num_head, layer.dim_head

    def heads(z, proj):
        return (_layernorm(z) @ proj.weight.numpy()).reshape(b, t, h, d).transpose(0, 2, 1, 3)

    out, _ = _attention(heads(x, layer.q_projection), heads(x, layer.k_projection), heads(x, layer.v_projection),
                        layer.attn.causal)
    return out.transpose(0, 2, 1, 3).reshape(b, t, h * d) @ layer.out_projection.weight.numpy()


@pytest.mark.parametrize("causal", [False, True])
def test_multihead_attention_vs_numpy(causal):
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((2, 3, 4, 5)).astype(np.float32) for _ in range(3))
    mha = nn.MultiHeadAttention(causal=causal)
    out, probs = mha(ndl.Tensor(q), ndl.Tensor(k), ndl.Tensor(v))
    eout, eprobs = _attention(q, k, v, causal)
    np.testing.assert_allclose(out.numpy(), eout, **TOL)
    np.testing.assert_allclose(probs.numpy(), eprobs, **TOL)
    assert mha.parameters() == []


def test_causal_mask_layout():
    mask = np.asarray(nn.MultiHeadAttention().create_causal_mask(3, 5, ndl.cpu()))
    assert mask.shape == (1, 1, 3, 5)
    assert (mask[0, 0][np.triu_indices(3, 3, m=5)] < -1e38).all() and mask[0, 0, 2, :5].max() == 0


def test_attention_gradient_matches_torch():
    torch = torch_or_skip()
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal((2, 2, 4, 3)).astype(np.float32) for _ in range(3)]
    ours = [ndl.Tensor(a) for a in arrays]
    ref = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, _ = nn.MultiHeadAttention(causal=True)(*ours)
    outt = torch.nn.functional.scaled_dot_product_attention(*ref, is_causal=True)
    np.testing.assert_allclose(out.numpy(), outt.detach().numpy(), **TOL)
    (out * out).sum().backward()
    (outt * outt).sum().backward()
    for a, b in zip(ours, ref):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-4, atol=1e-4)


def test_attention_layer_vs_numpy():
    np.random.seed(2)
    layer = nn.AttentionLayer(6, num_head=2, dim_head=3, causal=True)
    assert [p.shape for p in layer.parameters()][-4:] == [(6, 6), (6, 6), (6, 6), (6, 6)]
    x = np.random.randn(2, 5, 6).astype(np.float32)
    np.testing.assert_allclose(layer(ndl.Tensor(x)).numpy(), _attention_layer(layer, x), **TOL)


def test_transformer_layer_and_model_vs_numpy():
    np.random.seed(3)
    model = nn.Transformer(6, 10, 2, num_head=2, dim_head=3, sequence_len=8)
    x = np.random.randn(4, 2, 6).astype(np.float32)  # (T, B, D): batch_first=False
    out, h = model(ndl.Tensor(x))
    assert out.shape == (4, 2, 6) and np.all(h.numpy() == 0)
    z = x.transpose(1, 0, 2) + model.positional_embedding.weight.numpy()[:4]
    for layer in model.layers:
        z = z + _attention_layer(layer.attention, z)
        hidden = np.maximum(_layernorm(z) @ layer.linear1.weight.numpy() + layer.linear1.bias.numpy(), 0)
        z = z + hidden @ layer.linear2.weight.numpy() + layer.linear2.bias.numpy()
    np.testing.assert_allclose(out.numpy(), z.transpose(1, 0, 2), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="sequence_len"):
        model(ndl.Tensor(np.zeros((9, 1, 6))))


def test_transformer_parameter_creation_order():
    """The positional Embedding first, then per layer: attention projections, Linear1, Linear2."""
    np.random.seed(4)
    model = nn.Transformer(4, 8, 1, num_head=2, dim_head=2, sequence_len=5)
    np.random.seed(4)
    np.testing.assert_allclose(model.positional_embedding.weight.numpy(), np.random.randn(5, 4).astype(np.float32))
    shapes = [p.shape for p in model.parameters()]
    assert shapes[0] == (5, 4) and shapes[-4:] == [(4, 8), (1, 8), (8, 4), (1, 4)]


def test_attention_values_may_be_wider_than_keys_and_misfits_are_named():
    rng = np.random.default_rng(5)
    q, k, v = rng.standard_normal((1, 2, 3, 4)), rng.standard_normal((1, 2, 5, 4)), rng.standard_normal((1, 2, 5, 6))
    out, probs = nn.MultiHeadAttention()(*(ndl.Tensor(a, dtype="float64") for a in (q, k, v)))
    eout, eprobs = _attention(q, k, v, causal=False)
    np.testing.assert_allclose(out.numpy(), eout, rtol=1e-10)
    with pytest.raises(ValueError, match=r"MultiHeadAttention: shapes q \(1, 2, 3, 4\), k \(1, 2, 5, 3\)"):
        nn.MultiHeadAttention()(ndl.Tensor(q), ndl.Tensor(k[..., :3]), ndl.Tensor(v))


def test_defaults_are_the_courses():
    """TransformerLayer and Transformer: no dropout, causal attention, 2048 positions, (T, B, D) inputs."""
    np.random.seed(0)
    layer = nn.TransformerLayer(8, 2, 4, 16)
    assert layer.dropout.p == 0.0 and layer.attention.attn.causal is True
    model = nn.Transformer(8, 16, 1, num_head=2, dim_head=4)
    assert model.sequence_len == 2048 and model.positional_embedding.num_embeddings == 2048
    assert model.batch_first is False and model.layers[0].attention.attn.causal is True
    assert model.layers[0].dropout.p == 0.0


def test_a_sequence_of_exactly_sequence_len_fits_and_a_longer_one_is_refused():
    np.random.seed(0)
    model = nn.Transformer(8, 16, 1, num_head=2, dim_head=4, sequence_len=5, batch_first=True)
    out, _ = model(ndl.Tensor(np.random.randn(2, 5, 8).astype(np.float32)))
    assert out.shape == (2, 5, 8)
    with pytest.raises(ValueError, match="Transformer: sequence of length 6 exceeds sequence_len=5"):
        model(ndl.Tensor(np.random.randn(2, 6, 8).astype(np.float32)))


def test_attention_softmax_stays_finite_for_huge_scores():
    """Scores of ±500 in float32: exp would overflow without the max subtracted first."""
    q = np.zeros((1, 1, 2, 4), dtype=np.float32)
    q[..., 0] = [500.0, -500.0]
    k = np.zeros((1, 1, 3, 4), dtype=np.float32)
    k[..., 0] = [2.0, 1.0, 0.0]
    v = np.arange(12, dtype=np.float32).reshape(1, 1, 3, 4)
    result, probs = nn.MultiHeadAttention(causal=False)(ndl.Tensor(q), ndl.Tensor(k), ndl.Tensor(v))
    scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(4)
    want = np.exp(scores - scores.max(-1, keepdims=True))
    want /= want.sum(-1, keepdims=True)
    assert np.isfinite(probs.numpy()).all()
    np.testing.assert_allclose(probs.numpy(), want, atol=1e-6)
    np.testing.assert_allclose(result.numpy(), want @ v, rtol=1e-5, atol=1e-5)


def test_options_are_keyword_only_and_attention_is_causal_with_eight_heads_by_default():
    with pytest.raises(TypeError):
        nn.MultiHeadAttention(0.1)
    with pytest.raises(TypeError):
        nn.Transformer(8, 16, 1, 2)
    with pytest.raises(TypeError):
        nn.TransformerLayer(8, 2, 4, 16, 0.1)
    np.random.seed(0)
    assert nn.AttentionLayer(8, 2, 4).attn.causal is True and nn.MultiHeadAttention().causal is False
    attention = nn.Transformer(8, 16, 1).layers[0].attention
    assert attention.num_head == 8 and attention.dim_head == 32


def test_attention_refuses_queries_with_other_batch_or_heads_than_the_keys():
    q, k = ndl.Tensor(np.ones((1, 2, 3, 4))), ndl.Tensor(np.ones((1, 1, 3, 4)))
    with pytest.raises(ValueError, match=r"MultiHeadAttention: shapes q \(1, 2, 3, 4\), k \(1, 1, 3, 4\)"):
        nn.MultiHeadAttention()(q, k, k)
