"""Chapter 09 checks: each passes needle's reference and the textbook's solution, reports a stub as not attempted, and
fails the classic mistakes (several per exercise) with a message that names the exercise."""
import numpy as np
import pytest

import needle as ndl
from needle import course, init, nn, ops
from needle.autograd import Tensor
from needle.course.errors import CheckFailed

from chapter_cases import ChapterContract


# --- planted mistakes: the causal mask ------------------------------------------------------------------------------

def _mask(i, j, offset, value=-np.finfo(np.float32).max):
    return ndl.backend_ndarray.array(value * np.triu(np.ones((1, 1, i, j), dtype=np.float32), offset))


def mask_hides_the_diagonal(self, i, j, device):
    """Each query may not even see its own position."""
    return _mask(i, j, j - i)


def mask_offset_for_square_only(self, i, j, device):
    """Right when i == j; with more keys than queries (a cache of earlier keys) it hides the past."""
    return _mask(i, j, 1)


def mask_of_minus_one(self, i, j, device):
    """-1 is not "minus infinity": the masked keys still get weight."""
    return _mask(i, j, j - i + 1, value=-1.0)


def mask_lower_triangle(self, i, j, device):
    """Hides the past instead of the future."""
    return ndl.backend_ndarray.array(-np.finfo(np.float32).max * np.tril(np.ones((1, 1, i, j), dtype=np.float32),
                                                                         j - i - 1))


def mask_as_numpy(self, i, j, device):
    return -np.finfo(np.float32).max * np.triu(np.ones((1, 1, i, j), dtype=np.float32), j - i + 1)


# --- planted mistakes: attention ------------------------------------------------------------------------------------

def _attend(self, q, k, v, *, scale=None, mask=True, dropout_first=False, softmax_axis_keys=True):
    _, _, q_len, d = q.shape
    logits = self.matmul(q, k) / (np.sqrt(d) if scale is None else scale)
    if self.causal and mask:
        m = Tensor(self.create_causal_mask(q_len, k.shape[2], logits.device), device=logits.device,
                   dtype=logits.dtype, requires_grad=False)
        logits = logits + m.broadcast_to(logits.shape)
    if dropout_first:
        probs = self.softmax(self.dropout(logits))
    elif softmax_axis_keys:
        probs = self.dropout(self.softmax(logits))
    else:  # softmax over the queries: transpose, softmax over the last axis, transpose back
        probs = self.dropout(ops.transpose(self.softmax(ops.transpose(logits)), (2, 3)))
    return probs @ v, probs


def attention_scaled_by_d(self, q, k, v):
    return _attend(self, q, k, v, scale=q.shape[3])


def attention_unscaled(self, q, k, v):
    return _attend(self, q, k, v, scale=1.0)


def attention_ignores_causal(self, q, k, v):
    return _attend(self, q, k, v, mask=False)


def attention_dropout_on_logits(self, q, k, v):
    return _attend(self, q, k, v, dropout_first=True)


def attention_softmax_over_queries(self, q, k, v):
    return _attend(self, q, k, v, softmax_axis_keys=False)


def attention_returns_logits(self, q, k, v):
    logits = self.matmul(q, k) / np.sqrt(q.shape[3])
    result, _ = _attend(self, q, k, v)
    return result, logits


def attention_detached_softmax(self, q, k, v):
    """Right numbers, but the probabilities are computed in numpy: no gradient reaches q and k."""
    result, probs = _attend(self, q, k, v)
    probs = Tensor(probs.numpy(), dtype=probs.dtype, requires_grad=False)
    return probs @ v, probs


def attention_without_dropout(self, q, k, v):
    logits = self.matmul(q, k) / np.sqrt(q.shape[3])
    if self.causal:
        m = Tensor(self.create_causal_mask(q.shape[2], k.shape[2], logits.device), device=logits.device,
                   dtype=logits.dtype, requires_grad=False)
        logits = logits + m.broadcast_to(logits.shape)
    probs = self.softmax(logits)
    return probs @ v, probs


# --- planted mistakes: heads ----------------------------------------------------------------------------------------

def split_heads_reshape_only(x, num_head, dim_head):
    b, t, _ = x.shape
    return x.reshape((b, num_head, t, dim_head))


def split_heads_interleaved(x, num_head, dim_head):
    """Feature f goes to head f % H instead of f // D."""
    b, t, _ = x.shape
    return ops.transpose(ops.transpose(x.reshape((b, t, dim_head, num_head)), (2, 3)), (1, 2))


def split_heads_transpose_last(x, num_head, dim_head):
    """(B, T, H, D) with the wrong pair swapped: (B, T, D, H)."""
    b, t, _ = x.shape
    return ops.transpose(x.reshape((b, t, num_head, dim_head)), (2, 3))


# --- planted mistakes: AttentionLayer -------------------------------------------------------------------------------

def _layer(self, q, k=None, v=None, *, norms=None, merge_reshape_only=False, skip_out=False, k_from_q=False):
    k = q if k is None else k
    v = q if v is None else v
    b, t, _ = q.shape
    h, d = self.num_head, self.dim_head
    norm_q, norm_k, norm_v = norms(self) if norms else (self.prenorm_q, self.prenorm_k, self.prenorm_v)
    qh = nn.split_heads(self.q_projection(norm_q(q)), h, d)
    kh = nn.split_heads(self.k_projection(norm_k(q if k_from_q else k)), h, d)
    vh = nn.split_heads(self.v_projection(norm_v(v)), h, d)
    result, _ = self.attn(qh, kh, vh)
    if merge_reshape_only:
        result = result.reshape((b, t, h * d))
    else:
        result = ops.transpose(result, (1, 2)).reshape((b, t, h * d))
    return result if skip_out else self.out_projection(result)


def layer_one_norm_for_all(self, q, k=None, v=None):
    return _layer(self, q, k, v, norms=lambda s: (s.prenorm_q,) * 3)


def layer_without_prenorm(self, q, k=None, v=None):
    return _layer(self, q, k, v, norms=lambda s: (lambda x: x,) * 3)


def layer_merge_reshape_only(self, q, k=None, v=None):
    return _layer(self, q, k, v, merge_reshape_only=True)


def layer_without_out_projection(self, q, k=None, v=None):
    return _layer(self, q, k, v, skip_out=True)


def layer_keys_from_queries(self, q, k=None, v=None):
    return _layer(self, q, k, v, k_from_q=True)


# --- planted mistakes: TransformerLayer -----------------------------------------------------------------------------

class BlockBase(nn.Module):
    linear_first = False
    post_norm = False
    residual_ff = True
    dropouts = ("attn", "relu", "ff")
    pass_dropout = True
    pass_dtype = True

    def __init__(self, q_features, num_head, dim_head, hidden_size, *, dropout=0.0, causal=True, device=None,
                 dtype="float32"):
        super().__init__()
        make_attention = lambda: nn.AttentionLayer(q_features, num_head, dim_head, causal=causal, device=device,
                                                   dtype=dtype, dropout=dropout if self.pass_dropout else 0.0)
        if not self.linear_first:
            self.attention = make_attention()
        ff_dtype = dtype if self.pass_dtype else "float32"
        self.linear1 = nn.Linear(q_features, hidden_size, device=device, dtype=ff_dtype)
        self.linear2 = nn.Linear(hidden_size, q_features, device=device, dtype=ff_dtype)
        if self.linear_first:
            self.attention = make_attention()
        self.norm = nn.LayerNorm1d(q_features, device=device, dtype=dtype)
        self.dropout = nn.Dropout(dropout)
        self.relu = nn.ReLU()

    def _drop(self, where, x):
        return self.dropout(x) if where in self.dropouts else x

    def forward(self, x):
        x = x + self._drop("attn", self.attention(x))
        inner = x if self.post_norm else self.norm(x)
        ff = self._drop("ff", self.linear2(self._drop("relu", self.relu(self.linear1(inner)))))
        x = x + ff if self.residual_ff else ff
        return self.norm(x) if self.post_norm else x


BlockLinearFirst = type("BlockLinearFirst", (BlockBase,), {"linear_first": True})
BlockPostNorm = type("BlockPostNorm", (BlockBase,), {"post_norm": True})
BlockWithoutFeedForwardResidual = type("BlockWithoutFeedForwardResidual", (BlockBase,), {"residual_ff": False})
BlockMissingInnerDropout = type("BlockMissingInnerDropout", (BlockBase,), {"dropouts": ("attn", "ff")})
BlockAttentionWithoutDropout = type("BlockAttentionWithoutDropout", (BlockBase,), {"pass_dropout": False})


class BlockIgnoresCausal(BlockBase):
    def __init__(self, q_features, num_head, dim_head, hidden_size, *, dropout=0.0, causal=True, device=None,
                 dtype="float32"):
        super().__init__(q_features, num_head, dim_head, hidden_size, dropout=dropout, causal=True, device=device,
                         dtype=dtype)


BlockFloat32 = type("BlockFloat32", (BlockBase,), {"pass_dtype": False})  # forgets dtype in the feed-forward


# --- planted mistakes: Transformer ----------------------------------------------------------------------------------

class ModelBase(nn.Module):
    embedding_last = False
    positions = "arange"
    transpose = True

    def __init__(self, embedding_size, hidden_size, num_layers, *, num_head=8, dim_head=32, dropout=0.0, causal=True,
                 device=None, dtype="float32", batch_first=False, sequence_len=2048):
        super().__init__()
        self.batch_first = batch_first
        make_embedding = lambda: nn.Embedding(sequence_len, embedding_size, device=device, dtype=dtype)
        if not self.embedding_last:
            self.positional_embedding = make_embedding()
        self.layers = [nn.TransformerLayer(embedding_size, num_head, dim_head, hidden_size, dropout=dropout,
                                           causal=causal, device=device, dtype=dtype) for _ in range(num_layers)]
        if self.embedding_last:
            self.positional_embedding = make_embedding()

    def forward(self, x, h=None):
        if not self.batch_first and self.transpose:
            x = ops.transpose(x, (0, 1))
        b, t, _ = x.shape
        ids = np.broadcast_to(np.arange(t) if self.positions == "arange" else np.zeros(t, dtype=int), (b, t))
        if self.positions == "batch":
            ids = np.broadcast_to(np.arange(b)[:, None], (b, t))
        x = x + self.positional_embedding(ids)
        for layer in self.layers:
            x = layer(x)
        if not self.batch_first and self.transpose:
            x = ops.transpose(x, (0, 1))
        return x, init.zeros_like(x)


ModelEmbeddingLast = type("ModelEmbeddingLast", (ModelBase,), {"embedding_last": True})
ModelPositionsFromBatch = type("ModelPositionsFromBatch", (ModelBase,), {"positions": "batch"})
ModelAllPositionZero = type("ModelAllPositionZero", (ModelBase,), {"positions": "zero"})


class ModelWithoutTranspose(ModelBase):
    """Treats (T, B, D) as (B, T, D): positions and the causal mask run along the batch."""
    transpose = False

    def forward(self, x, h=None):
        b, t, _ = x.shape
        x = x + self.positional_embedding(np.broadcast_to(np.arange(t), (b, t)))
        for layer in self.layers:
            x = layer(x)
        return x, init.zeros_like(x)


class ModelReturnsOutputOnly(ModelBase):
    def forward(self, x, h=None):
        return super().forward(x, h)[0]


WRONG = {
    "create_causal_mask": [mask_hides_the_diagonal, mask_offset_for_square_only, mask_of_minus_one,
                           mask_lower_triangle, mask_as_numpy],
    "MultiHeadAttention.forward": [attention_scaled_by_d, attention_unscaled, attention_ignores_causal,
                                   attention_dropout_on_logits, attention_softmax_over_queries, attention_without_dropout,
                                   attention_returns_logits, attention_detached_softmax],
    "split_heads": [split_heads_reshape_only, split_heads_interleaved, split_heads_transpose_last],
    "AttentionLayer.forward": [layer_one_norm_for_all, layer_without_prenorm, layer_merge_reshape_only,
                               layer_without_out_projection, layer_keys_from_queries],
    "TransformerLayer": [BlockLinearFirst, BlockPostNorm, BlockWithoutFeedForwardResidual, BlockMissingInnerDropout,
                         BlockAttentionWithoutDropout, BlockIgnoresCausal, BlockFloat32],
    "Transformer": [ModelEmbeddingLast, ModelPositionsFromBatch, ModelAllPositionZero, ModelWithoutTranspose,
                    ModelReturnsOutputOnly],
}


class TestTransformerChapter(ChapterContract):
    chapter = "transformer"
    textbook = "09_transformer"
    wrong = WRONG

    def test_a_mask_that_hides_the_diagonal_is_named_in_the_message(self):
        course.exercise("transformer.create_causal_mask")(mask_hides_the_diagonal)
        with pytest.raises(CheckFailed, match="future"):
            course.check("transformer.create_causal_mask")

    def test_a_block_built_in_another_order_is_told_about_the_draws(self):
        course.exercise("transformer.TransformerLayer")(BlockLinearFirst)
        with pytest.raises(CheckFailed, match="order"):
            course.check("transformer.TransformerLayer")
