"""Decoder-only, pre-norm Transformer modules (course hw4_extra)."""
from __future__ import annotations

from typing import Optional

import numpy as np

from needle import backend_selection, init, ops
from needle.autograd import Tensor

from .nn_basic import Dropout, LayerNorm1d, Linear, Module, ReLU
from .nn_sequence import Embedding

__all__ = ["split_heads", "MultiHeadAttention", "AttentionLayer", "TransformerLayer", "Transformer"]


class MultiHeadAttention(Module):
    """Scaled dot-product attention over (B, H, T, D) inputs; no parameters of its own."""

    def __init__(self, *, dropout: float = 0.0, causal: bool = False, device=None, dtype: str = "float32"):
        super().__init__()
        self.device = device
        self.dtype = dtype
        self.causal = causal
        self.dropout = Dropout(dropout)

    def create_causal_mask(self, i: int, j: int, device):
        """(1, 1, i, j) array: -float32 max strictly above the diagonal offset j - i + 1, else 0."""
        mask = -np.finfo(np.float32).max * np.triu(np.ones((1, 1, i, j), dtype=np.float32), j - i + 1)
        return backend_selection.from_numpy(mask, device=device)

    def matmul(self, a: Tensor, b_transpose: Tensor) -> Tensor:
        """Batched a @ b_transpose^T: (..., m, k) and (..., n, k) -> (..., m, n)."""
        return a @ ops.transpose(b_transpose)

    def softmax(self, logit: Tensor) -> Tensor:
        """Softmax over the last axis; the max is subtracted as a constant (no gradient through it)."""
        max_val = Tensor(
            logit.realize_cached_data().max(axis=3, keepdims=True), device=logit.device, dtype=logit.dtype,
            requires_grad=False,
        )
        probs = ops.exp(logit - max_val.broadcast_to(logit.shape))
        denom = ops.summation(probs, axes=(3,)).reshape((*logit.shape[:-1], 1)).broadcast_to(logit.shape)
        return probs / denom

    def forward(self, q: Tensor, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """q (B, H, Tq, D), k (B, H, Tk, D), v (B, H, Tk, Dv) -> (result (B, H, Tq, Dv), probs (B, H, Tq, Tk))."""
        _, _, q_len, q_dim = q.shape
        _, _, kv_len, k_dim = k.shape
        if q_dim != k_dim or k.shape[:3] != v.shape[:3] or q.shape[:2] != k.shape[:2]:
            raise ValueError(f"MultiHeadAttention: shapes q {q.shape}, k {k.shape}, v {v.shape} do not fit")
        logits = self.matmul(q, k) / np.sqrt(q_dim)
        if self.causal:
            mask = Tensor(self.create_causal_mask(q_len, kv_len, logits.device), device=logits.device,
                          dtype=logits.dtype, requires_grad=False)
            logits = logits + mask.broadcast_to(logits.shape)
        probs = self.dropout(self.softmax(logits))
        return probs @ v, probs


def split_heads(x: Tensor, num_head: int, dim_head: int) -> Tensor:
    """(B, T, H*D) -> (B, H, T, D): each head's D features become a separate (T, D) sequence."""
    b, t, _ = x.shape
    return ops.transpose(x.reshape((b, t, num_head, dim_head)), (1, 2))


class AttentionLayer(Module):
    """Pre-norm multi-head attention: LayerNorm, bias-free q/k/v projections, attention, output projection."""

    def __init__(self, q_features: int, num_head: int, dim_head: int, *, k_features: Optional[int] = None,
                 v_features: Optional[int] = None, out_features: Optional[int] = None, dropout: float = 0.0,
                 causal: bool = True, device=None, dtype: str = "float32"):
        super().__init__()
        self.device = device
        self.dtype = dtype
        k_features = q_features if k_features is None else k_features
        v_features = q_features if v_features is None else v_features
        out_features = q_features if out_features is None else out_features
        self.q_features, self.k_features, self.v_features = q_features, k_features, v_features
        self.out_features = out_features
        self.num_head = num_head
        self.dim_head = dim_head
        self.prenorm_q = LayerNorm1d(q_features, device=device, dtype=dtype)
        self.prenorm_k = LayerNorm1d(k_features, device=device, dtype=dtype)
        self.prenorm_v = LayerNorm1d(v_features, device=device, dtype=dtype)
        inner_dim = num_head * dim_head
        self.q_projection = Linear(q_features, inner_dim, bias=False, device=device, dtype=dtype)
        self.k_projection = Linear(k_features, inner_dim, bias=False, device=device, dtype=dtype)
        self.v_projection = Linear(v_features, inner_dim, bias=False, device=device, dtype=dtype)
        self.attn = MultiHeadAttention(dropout=dropout, causal=causal, device=device, dtype=dtype)
        self.out_projection = Linear(inner_dim, out_features, bias=False, device=device, dtype=dtype)

    def forward(self, q: Tensor, k: Optional[Tensor] = None, v: Optional[Tensor] = None) -> Tensor:
        """q (B, Tq, q_features), k/v (B, Tk, k/v_features) (default q) -> (B, Tq, out_features)."""
        k = q if k is None else k
        v = q if v is None else v
        b, q_len, _ = q.shape
        h, d = self.num_head, self.dim_head
        qh = split_heads(self.q_projection(self.prenorm_q(q)), h, d)
        kh = split_heads(self.k_projection(self.prenorm_k(k)), h, d)
        vh = split_heads(self.v_projection(self.prenorm_v(v)), h, d)
        result, _ = self.attn(qh, kh, vh)
        result = ops.transpose(result, (1, 2)).reshape((b, q_len, h * d))
        return self.out_projection(result)


class TransformerLayer(Module):
    """x + Dropout(Attention(x)), then x + Dropout(Linear2(Dropout(ReLU(Linear1(LayerNorm(x))))))."""

    def __init__(self, q_features: int, num_head: int, dim_head: int, hidden_size: int, *, dropout: float = 0.0,
                 causal: bool = True, device=None, dtype: str = "float32"):
        super().__init__()
        self.device = device
        self.dtype = dtype
        self.attention = AttentionLayer(q_features, num_head, dim_head, dropout=dropout, causal=causal,
                                        device=device, dtype=dtype)
        self.dropout = Dropout(dropout)
        self.norm = LayerNorm1d(q_features, device=device, dtype=dtype)
        self.linear1 = Linear(q_features, hidden_size, device=device, dtype=dtype)
        self.relu = ReLU()
        self.linear2 = Linear(hidden_size, q_features, device=device, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        """x (B, T, q_features) -> same shape."""
        x = x + self.dropout(self.attention(x))
        ff = self.linear2(self.dropout(self.relu(self.linear1(self.norm(x)))))
        return x + self.dropout(ff)


class Transformer(Module):
    """A learned positional Embedding (sequence_len, embedding_size) added to the inputs, then num_layers
    TransformerLayers; inputs are (T, B, D) unless batch_first. Returns (x, zeros_like(x))."""

    def __init__(self, embedding_size: int, hidden_size: int, num_layers: int, *, num_head: int = 8,
                 dim_head: int = 32, dropout: float = 0.0, causal: bool = True, device=None, dtype: str = "float32",
                 batch_first: bool = False, sequence_len: int = 2048):
        super().__init__()
        self.device = device
        self.dtype = dtype
        self.batch_first = batch_first
        self.sequence_len = sequence_len
        self.positional_embedding = Embedding(sequence_len, embedding_size, device=device, dtype=dtype)
        self.layers = [
            TransformerLayer(embedding_size, num_head, dim_head, hidden_size, dropout=dropout, causal=causal,
                             device=device, dtype=dtype)
            for _ in range(num_layers)
        ]

    def forward(self, x: Tensor, h=None) -> tuple[Tensor, Tensor]:
        if not self.batch_first:
            x = ops.transpose(x, axes=(0, 1))
        b, t, _ = x.shape
        if t > self.sequence_len:
            raise ValueError(f"Transformer: sequence of length {t} exceeds sequence_len={self.sequence_len}")
        positions = np.broadcast_to(np.arange(t), (b, t))
        x = x + self.positional_embedding(positions)
        for layer in self.layers:
            x = layer(x)
        if not self.batch_first:
            x = ops.transpose(x, axes=(0, 1))
        return x, init.zeros_like(x)
