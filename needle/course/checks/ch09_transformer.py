"""Chapter 09 (course hw4_extra): the causal mask, scaled dot-product attention, the split into heads, the pre-norm
AttentionLayer, the residual TransformerLayer and the Transformer with learned positional embeddings.

Forwards are compared with numpy re-computations in float64 on random shapes; gradients with float64 central
differences; modules are built after np.random.seed and their parameters compared with needle's own construction
(the course's order of random draws), and dropout is placed right when seeded training-mode outputs agree with it.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

import needle as ndl
from needle import backend_selection
from needle.backend_ndarray import ndarray as nd_module

from ..cases import numerical_gradients, rng_for
from ..compare import expect, expect_close
from ..install import reference
from ..registry import exercise_check, set_hints

NNT = "needle.nn.nn_transformer"
MASKED = -np.finfo(np.float32).max
TOL64 = dict(rtol=1e-7, atol=1e-8)


# --- numpy meanings (float64) ---------------------------------------------------------------------------------------

def causal_mask64(i: int, j: int) -> np.ndarray:
    """(1, 1, i, j): MASKED where key position c lies after query position r (c > r + j - i), else 0."""
    return MASKED * np.triu(np.ones((1, 1, i, j)), j - i + 1)


def softmax64(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def attention64(q: np.ndarray, k: np.ndarray, v: np.ndarray, causal: bool) -> tuple[np.ndarray, np.ndarray]:
    """softmax(q k^T / sqrt(D) + mask) v and the probabilities, for (B, H, T, D) arrays."""
    logits = q @ k.swapaxes(-1, -2) / np.sqrt(q.shape[-1])
    if causal:
        logits = logits + causal_mask64(q.shape[2], k.shape[2])
    probs = softmax64(logits)
    return probs @ v, probs


def split_heads64(x: np.ndarray, num_head: int, dim_head: int) -> np.ndarray:
    b, t, _ = x.shape
    return x.reshape(b, t, num_head, dim_head).transpose(0, 2, 1, 3)


def layer_norm64(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    return w * (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + eps) + b


def _np(t: Any) -> np.ndarray:
    return np.asarray(t.numpy(), dtype=np.float64)


def _linear64(linear: Any, x: np.ndarray) -> np.ndarray:
    out = x @ _np(linear.weight)
    return out if linear.bias is None else out + _np(linear.bias).reshape(-1)


def _norm64(norm: Any, x: np.ndarray) -> np.ndarray:
    return layer_norm64(x, _np(norm.weight), _np(norm.bias), norm.eps)


def attention_layer64(layer: Any, q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    """needle's AttentionLayer `layer` (its parameters read by name) as numpy on (B, T, features) inputs."""
    h, d = layer.num_head, layer.dim_head
    heads = [split_heads64(_linear64(proj, _norm64(norm, x)), h, d) for x, norm, proj in
             ((q, layer.prenorm_q, layer.q_projection), (k, layer.prenorm_k, layer.k_projection),
              (v, layer.prenorm_v, layer.v_projection))]
    out, _ = attention64(*heads, layer.attn.causal)
    b, _, t, _ = out.shape
    return _linear64(layer.out_projection, out.transpose(0, 2, 1, 3).reshape(b, t, h * d))


def transformer_layer64(layer: Any, x: np.ndarray) -> np.ndarray:
    """needle's TransformerLayer (no dropout) as numpy: two pre-norm residual blocks."""
    x = x + attention_layer64(layer.attention, x, x, x)
    hidden = np.maximum(_linear64(layer.linear1, _norm64(layer.norm, x)), 0)
    return x + _linear64(layer.linear2, hidden)


def transformer64(model: Any, x: np.ndarray) -> np.ndarray:
    """needle's Transformer (no dropout) as numpy, on (T, B, D) inputs, or (B, T, D) when batch_first."""
    if not model.batch_first:
        x = x.transpose(1, 0, 2)
    x = x + _np(model.positional_embedding.weight)[: x.shape[1]]
    for layer in model.layers:
        x = transformer_layer64(layer, x)
    return x if model.batch_first else x.transpose(1, 0, 2)


# --- shared checking helpers ----------------------------------------------------------------------------------------

def _tensor(x: np.ndarray, grad: bool = True) -> ndl.Tensor:
    return ndl.Tensor(x, dtype="float64", requires_grad=grad)


def _grad_check(run: Callable[..., Any], xs: list[np.ndarray], numpy_fn: Callable[..., np.ndarray], what: str,
                names: tuple[str, ...]) -> None:
    """d sum(run(*xs) * G) / d xs in float64 against central differences of numpy_fn."""
    inputs = [_tensor(x) for x in xs]
    out = run(*inputs)
    expect(isinstance(out, ndl.Tensor), f"{what} must return a Tensor, got {type(out).__name__}")
    out_grad = rng_for(what).standard_normal(out.shape)
    (out * _tensor(out_grad, grad=False)).sum().backward()
    wants = numerical_gradients(numpy_fn, xs, out_grad)
    for name, t, want in zip(names, inputs, wants):
        expect(t.grad is not None, f"{what}: {name} got no gradient (build the output from needle ops on it)")
        expect_close(t.grad, want, what=f"{what}: gradient w.r.t. {name} (float64, vs central differences)",
                     inputs={name: xs[names.index(name)]}, rtol=1e-5, atol=1e-6)


def _reference_module(name: str, *args: Any, **kwargs: Any) -> Any:
    """needle's own `name` module, built by its reference __init__ even while the learner's methods sit on the class."""
    cls = reference(f"{NNT}:{name}")
    module = cls.__new__(cls)
    reference(f"{NNT}:{name}.__init__")(module, *args, **kwargs)
    return module


def _expect_same_draws(got: Any, want: Any, what: str) -> None:
    """Every parameter of `got` equals one of `want`'s (same shape, same values), one to one: the modules drew the
    same random numbers in the same order, whatever the learner named their attributes."""
    mine, theirs = got.parameters(), want.parameters()
    expect(len(mine) == len(theirs), f"{what} has {len(mine)} parameter tensors, the course's has {len(theirs)} "
                                     f"(shapes {sorted(p.shape for p in theirs)})")
    left = list(theirs)
    for p in mine:
        match = next((q for q in left if q.shape == p.shape and np.allclose(_np(q), _np(p), rtol=1e-6, atol=1e-7)),
                     None)
        expect(match is not None,
               f"{what}: a parameter of shape {p.shape} has values the course's construction never draws there; "
               "create the sub-modules in the course's order (the random numbers are drawn in that order) and pass "
               "the sizes, dtype and device on")
        left.remove(match)
    expect(all(str(p.dtype) == str(theirs[0].dtype) for p in mine),
           f"{what}: parameters of dtype {sorted({str(p.dtype) for p in mine})}: pass dtype on to every sub-module")


def _seeded(fn: Callable[[], Any], seed: int) -> Any:
    np.random.seed(seed)
    return fn()


def _seeded_outputs_agree(got_fn: Callable[[], Any], want_fn: Callable[[], Any], what: str) -> None:
    """Training-mode outputs with dropout, both after np.random.seed(7): dropout in the same places draws the same
    masks."""
    got, want = _seeded(got_fn, 7), _seeded(want_fn, 7)
    expect_close(got, want, what=f"{what} in training mode with dropout, after np.random.seed(7): apply dropout where "
                                 "the course does (and only there), so the same random masks fall in the same places",
                 rtol=1e-6, atol=1e-7)


# --- the causal mask ------------------------------------------------------------------------------------------------

@exercise_check("transformer.create_causal_mask", target=f"{NNT}:MultiHeadAttention.create_causal_mask",
                hint="the additive causal mask for i queries and j keys")
def check_create_causal_mask(create_causal_mask: Callable) -> int:
    mha = ndl.nn.MultiHeadAttention(causal=True)
    cases = 0
    for i, j in ((1, 1), (3, 3), (5, 5), (2, 5), (1, 4), (4, 7)):
        what = f"create_causal_mask({i}, {j}, device)"
        got = create_causal_mask(mha, i, j, ndl.cpu())
        if not backend_selection.NUMPY:
            expect(isinstance(got, nd_module.NDArray),
                   f"{what} must return an NDArray (the course's helpers work on raw arrays), got {type(got).__name__}")
            expect(got.device == ndl.cpu(), f"{what} returned an array on {got.device}: put it on the given device")
        expect_close(got, causal_mask64(i, j).astype(np.float32), rtol=0, atol=0,
                     what=f"{what}: 0 where a query may look, -np.finfo(np.float32).max where the key lies in its "
                          "future (the last query sees all j keys)")
        cases += 1
    return cases


# --- scaled dot-product attention -----------------------------------------------------------------------------------

# (B, H, T_query, T_key, D, causal)
ATTENTION_CASES = [(1, 1, 3, 3, 2, False), (2, 3, 4, 4, 5, True), (2, 2, 3, 5, 4, False), (1, 2, 2, 5, 3, True),
                   (3, 1, 5, 5, 1, True), (1, 4, 1, 3, 6, False)]


def _attention_what(case: tuple) -> str:
    b, h, tq, tk, d, causal = case
    return (f"attention ({'causal' if causal else 'not causal'}) of q ({b}, {h}, {tq}, {d}) on k, v "
            f"({b}, {h}, {tk}, {d})")


@exercise_check("transformer.MultiHeadAttention.forward", target=f"{NNT}:MultiHeadAttention.forward",
                hint="scaled dot-product attention over (B, H, T, D) queries, keys and values")
def check_attention_forward(forward: Callable) -> int:
    rng = rng_for("transformer.MultiHeadAttention.forward")
    cases = 0
    for case in ATTENTION_CASES:
        b, h, tq, tk, d, causal = case
        q, k, v = rng.standard_normal((b, h, tq, d)), rng.standard_normal((b, h, tk, d)), rng.standard_normal((b, h, tk, d))
        what = _attention_what(case)
        mha = ndl.nn.MultiHeadAttention(causal=causal)
        mha.eval()
        got = forward(mha, *(ndl.Tensor(a, dtype="float32") for a in (q, k, v)))
        expect(isinstance(got, tuple) and len(got) == 2, f"{what} must return (result, probs), got {type(got).__name__}")
        want_out, want_probs = attention64(q, k, v, causal)
        expect_close(got[1], want_probs, what=f"{what}: the attention probabilities softmax(q k^T / sqrt(D)"
                                              f"{' + mask' if causal else ''})", inputs={"q": q, "k": k},
                     rtol=1e-4, atol=1e-5)
        expect_close(got[0], want_out, what=f"{what}: the result probs @ v", inputs={"q": q, "k": k, "v": v},
                     rtol=1e-4, atol=1e-5)
        mha64 = ndl.nn.MultiHeadAttention(causal=causal, dtype="float64")
        mha64.eval()
        _grad_check(lambda *t: forward(mha64, *t)[0], [q, k, v], lambda *a: attention64(*a, causal)[0], what,
                    ("q", "k", "v"))
        cases += 3
    # dropout acts on the probabilities, in training mode only
    b, h, tq, tk, d, causal = ATTENTION_CASES[1]
    q, k, v = (ndl.Tensor(rng.standard_normal((b, h, t, d)), dtype="float64") for t in (tq, tk, tk))
    mha = ndl.nn.MultiHeadAttention(dropout=0.5, causal=causal, dtype="float64")
    ref_forward = reference(f"{NNT}:MultiHeadAttention.forward")
    _seeded_outputs_agree(lambda: forward(mha, q, k, v)[1], lambda: ref_forward(mha, q, k, v)[1],
                          f"the probabilities of {_attention_what(ATTENTION_CASES[1])} with dropout 0.5")
    _seeded_outputs_agree(lambda: forward(mha, q, k, v)[0], lambda: ref_forward(mha, q, k, v)[0],
                          f"the result of {_attention_what(ATTENTION_CASES[1])} with dropout 0.5")
    return cases + 2


# --- splitting into heads -------------------------------------------------------------------------------------------

@exercise_check("transformer.split_heads", target=f"{NNT}:split_heads",
                hint="(B, T, H * D) features as H separate heads (B, H, T, D)")
def check_split_heads(split_heads: Callable) -> int:
    rng = rng_for("transformer.split_heads")
    cases = 0
    for b, t, h, d in ((1, 2, 1, 3), (2, 3, 2, 2), (2, 4, 3, 2), (3, 2, 4, 1), (1, 5, 2, 3)):
        x = rng.standard_normal((b, t, h * d))
        what = f"split_heads of shape ({b}, {t}, {h * d}) into {h} heads of {d}"
        got = split_heads(ndl.Tensor(x, dtype="float32"), h, d)
        expect_close(got, split_heads64(x, h, d), inputs={"x": x}, rtol=1e-6, atol=1e-7,
                     what=f"{what}: head i holds features i*D .. (i+1)*D - 1 of every position, as (T, D)")
        _grad_check(lambda a: split_heads(a, h, d), [x], lambda a: split_heads64(a, h, d), what, ("x",))
        cases += 2
    return cases


# --- AttentionLayer -------------------------------------------------------------------------------------------------

# (B, T_query, T_key, q_features, k_features, v_features, out_features, H, D, causal); k_features None: self-attention
LAYER_CASES = [(2, 4, 4, 6, None, None, None, 2, 3, True), (1, 3, 3, 5, None, None, None, 1, 4, False),
               (2, 3, 5, 4, 3, 5, 6, 2, 2, False), (1, 2, 4, 3, 4, 2, 3, 3, 1, True)]


def _layer_what(case: tuple) -> str:
    b, tq, tk, qf, kf, vf, of, h, d, causal = case
    kind = "self-attention" if kf is None else f"attention of {tq} queries on {tk} keys/values"
    sizes = f"q_features={qf}" + ("" if kf is None else f", k_features={kf}, v_features={vf}, out_features={of}")
    return f"AttentionLayer({sizes}, num_head={h}, dim_head={d}, causal={causal}), {kind}, batch {b}"


def _random_norms(layer: Any, rng: np.random.Generator) -> None:
    """Give the three pre-norms different scales and shifts, so that each input must go through its own."""
    for norm in (layer.prenorm_q, layer.prenorm_k, layer.prenorm_v):
        norm.weight.data = ndl.Tensor(rng.uniform(0.5, 2, norm.dim), dtype="float64")
        norm.bias.data = ndl.Tensor(rng.standard_normal(norm.dim), dtype="float64")


@exercise_check("transformer.AttentionLayer.forward", target=f"{NNT}:AttentionLayer.forward",
                hint="the AttentionLayer's forward: pre-norm, projections, heads, attention, output projection")
def check_attention_layer(forward: Callable) -> int:
    rng = rng_for("transformer.AttentionLayer.forward")
    cases = 0
    for case in LAYER_CASES:
        b, tq, tk, qf, kf, vf, of, h, d, causal = case
        np.random.seed(cases)
        layer = ndl.nn.AttentionLayer(qf, h, d, k_features=kf, v_features=vf, out_features=of, causal=causal,
                                      dtype="float64")
        layer.eval()
        _random_norms(layer, rng)
        what = _layer_what(case)
        q = rng.standard_normal((b, tq, qf))
        if kf is None:
            expect_close(forward(layer, _tensor(q, grad=False)), attention_layer64(layer, q, q, q), inputs={"q": q},
                         what=f"{what}: forward(q) (k and v default to q)", **TOL64)
            _grad_check(lambda t: forward(layer, t), [q], lambda a: attention_layer64(layer, a, a, a), what, ("q",))
        else:
            k, v = rng.standard_normal((b, tk, kf)), rng.standard_normal((b, tk, vf))
            expect_close(forward(layer, *(_tensor(a, grad=False) for a in (q, k, v))), attention_layer64(layer, q, k, v),
                         inputs={"q": q, "k": k, "v": v}, what=f"{what}: forward(q, k, v)", **TOL64)
            _grad_check(lambda *t: forward(layer, *t), [q, k, v], lambda *a: attention_layer64(layer, *a), what,
                        ("q", "k", "v"))
        missing = [name for name in ("q_projection", "k_projection", "v_projection", "out_projection")
                   if getattr(layer, name).weight.grad is None]
        expect(not missing, f"{what}: after backward, {', '.join(missing)} got no gradient (use the layer's modules)")
        cases += 2
    return cases


# --- TransformerLayer -----------------------------------------------------------------------------------------------

# (B, T, q_features, num_head, dim_head, hidden_size, causal)
BLOCK_CASES = [(2, 4, 6, 2, 3, 8, True), (1, 3, 4, 1, 4, 5, False), (2, 2, 5, 3, 2, 7, True)]


@exercise_check("transformer.TransformerLayer", target=f"{NNT}:TransformerLayer",
                hint="the pre-norm residual Transformer block: attention, then a feed-forward network")
def check_transformer_layer(TransformerLayer: type) -> int:
    rng = rng_for("transformer.TransformerLayer")
    ref_forward = reference(f"{NNT}:TransformerLayer.forward")
    cases = 0
    for seed, (b, t, qf, h, d, hidden, causal) in enumerate(BLOCK_CASES):
        what = f"TransformerLayer({qf}, {h}, {d}, {hidden}, causal={causal})"
        kwargs = dict(causal=causal, dtype="float64")
        layer = _seeded(lambda: TransformerLayer(qf, h, d, hidden, **kwargs), seed)
        want = _seeded(lambda: _reference_module("TransformerLayer", qf, h, d, hidden, **kwargs), seed)
        _expect_same_draws(layer, want, f"{what} after np.random.seed({seed})")
        layer.eval()
        x = rng.standard_normal((b, t, qf))
        expect_close(layer(_tensor(x, grad=False)), transformer_layer64(want, x), inputs={"x": x},
                     what=f"{what} on an input of shape {x.shape} (eval mode)", **TOL64)
        _grad_check(layer, [x], lambda a: transformer_layer64(want, a), what, ("x",))
        cases += 3
    b, t, qf, h, d, hidden, causal = BLOCK_CASES[0]
    layer = _seeded(lambda: TransformerLayer(qf, h, d, hidden, dropout=0.3, causal=causal, dtype="float64"), 0)
    want = _seeded(lambda: _reference_module("TransformerLayer", qf, h, d, hidden, dropout=0.3, causal=causal,
                                             dtype="float64"), 0)
    x = _tensor(rng.standard_normal((b, t, qf)), grad=False)
    _seeded_outputs_agree(lambda: layer(x), lambda: ref_forward(want, x), f"TransformerLayer({qf}, {h}, {d}, {hidden}, "
                                                                          "dropout=0.3)")
    return cases + 1


# --- Transformer ----------------------------------------------------------------------------------------------------

# (T, B, embedding_size, hidden_size, num_layers, num_head, dim_head, sequence_len, causal, batch_first)
MODEL_CASES = [(3, 2, 4, 5, 2, 2, 2, 6, True, False), (4, 1, 6, 8, 1, 3, 2, 4, True, True),
               (2, 3, 3, 4, 2, 1, 3, 5, False, False)]


@exercise_check("transformer.Transformer", target=f"{NNT}:Transformer",
                hint="the Transformer: learned positional embeddings added to the inputs, then a stack of layers")
def check_transformer(Transformer: type) -> int:
    rng = rng_for("transformer.Transformer")
    ref_forward = reference(f"{NNT}:Transformer.forward")
    cases = 0
    for seed, (t, b, emb, hidden, n, h, d, seq_len, causal, batch_first) in enumerate(MODEL_CASES):
        kwargs = dict(num_head=h, dim_head=d, causal=causal, dtype="float64", batch_first=batch_first,
                      sequence_len=seq_len)
        what = (f"Transformer({emb}, {hidden}, {n}, num_head={h}, dim_head={d}, causal={causal}, "
                f"batch_first={batch_first}, sequence_len={seq_len})")
        model = _seeded(lambda: Transformer(emb, hidden, n, **kwargs), seed)
        want = _seeded(lambda: _reference_module("Transformer", emb, hidden, n, **kwargs), seed)
        _expect_same_draws(model, want, f"{what} after np.random.seed({seed})")
        model.eval()
        x = rng.standard_normal((b, t, emb) if batch_first else (t, b, emb))
        got = model(_tensor(x, grad=False))
        expect(isinstance(got, tuple) and len(got) == 2,
               f"{what} must return a pair (output, hidden state) like the RNNs, got {type(got).__name__}")
        expect_close(got[0], transformer64(want, x), inputs={"x": x},
                     what=f"{what} on an input of shape {x.shape} ({'(B, T, D)' if batch_first else '(T, B, D)'})",
                     **TOL64)
        expect_close(got[1], np.zeros(x.shape), what=f"{what}: the second output, zeros of the output's shape")
        _grad_check(lambda a: model(a)[0], [x], lambda a: transformer64(want, a), what, ("x",))
        cases += 3
    t, b, emb, hidden, n, h, d, seq_len, causal, batch_first = MODEL_CASES[0]
    kwargs = dict(num_head=h, dim_head=d, dropout=0.2, causal=causal, dtype="float64", sequence_len=seq_len)
    model = _seeded(lambda: Transformer(emb, hidden, n, **kwargs), 0)
    want = _seeded(lambda: _reference_module("Transformer", emb, hidden, n, **kwargs), 0)
    x = _tensor(rng.standard_normal((t, b, emb)), grad=False)
    _seeded_outputs_agree(lambda: model(x)[0], lambda: ref_forward(want, x)[0],
                          f"Transformer({emb}, {hidden}, {n}, dropout=0.2)")
    return cases + 1


set_hints({
    "transformer.create_causal_mask": (
        "create_causal_mask(i, j, device): an (1, 1, i, j) array added to the attention logits, 0 where query r may "
        "look at key c and a huge negative number where key c lies in query r's future",
        ["A language model predicts the next word, so position r must not see later positions. Adding a huge "
         "negative number to a logit makes its softmax weight exactly 0. With j keys and i queries the queries are "
         "the last i positions, so the last query sees every key.",
         "Masked entries are those strictly above the diagonal shifted by j - i: column c > r + (j - i). "
         "np.triu(ones, k) keeps the entries on and above diagonal k.",
         "-np.finfo(np.float32).max * np.triu(np.ones((1, 1, i, j), dtype=np.float32), j - i + 1), turned into an "
         "NDArray on `device` (ndl.backend_ndarray.array(..., device=device))."]),
    "transformer.MultiHeadAttention.forward": (
        "scaled dot-product attention: probabilities softmax(q k^T / sqrt(D) (+ the causal mask)) after dropout, "
        "and the result probs @ v; return (result, probs)",
        ["Each query scores every key by a dot product; dividing by sqrt(D) keeps the scores' spread independent "
         "of D. A softmax over the keys turns the scores of one query into weights, and the result is the weighted "
         "average of the values. The heads are just another batch axis.",
         "logits = self.matmul(q, k) / sqrt(D) (shape (B, H, T_q, T_k)); when self.causal, add the mask of "
         "create_causal_mask(T_q, T_k, device) broadcast to the logits; probs = self.dropout(self.softmax(logits)); "
         "result = probs @ v.",
         "Wrap the mask as Tensor(mask, device=logits.device, dtype=logits.dtype, requires_grad=False) and "
         ".broadcast_to(logits.shape). Read T and D from q.shape and k.shape."]),
    "transformer.split_heads": (
        "split_heads(x, num_head, dim_head): (B, T, H * D) -> (B, H, T, D), head i taking features i*D .. (i+1)*D-1",
        ["Multi-head attention runs H small attentions side by side, each on its own D of the H * D features. "
         "Cut the feature axis into (H, D), then move the head axis in front of time so that each head is a "
         "(T, D) sequence of its own.",
         "reshape to (B, T, H, D), then swap axes 1 and 2. A reshape straight to (B, H, T, D) keeps the numbers in "
         "memory order and mixes positions with heads.",
         "x.reshape((b, t, num_head, dim_head)) and ops.transpose(..., (1, 2))."]),
    "transformer.AttentionLayer.forward": (
        "the AttentionLayer's forward: pre-norm and project q, k, v, split into heads, attend, merge the heads and "
        "project the result to out_features",
        ["Each input gets its own LayerNorm and its own bias-free projection to H * D features; split each into "
         "heads; self.attn does the attention of all heads at once; then undo the split and project.",
         "q' = split_heads(q_projection(prenorm_q(q)), H, D), the same for k and v (k and v default to q); "
         "result, _ = self.attn(q', k', v'); merge: swap axes 1 and 2 back and reshape to (B, T_q, H * D); then "
         "out_projection.",
         "ops.transpose(result, (1, 2)).reshape((b, t_q, h * d)); self.num_head and self.dim_head hold H and D."]),
    "transformer.TransformerLayer": (
        "the pre-norm residual TransformerLayer: x + Dropout(Attention(x)), then x + Dropout(Linear2(Dropout(ReLU("
        "Linear1(LayerNorm(x))))))",
        ["Two residual blocks: self-attention (which normalises its own inputs), then a two-layer feed-forward "
         "network applied to every position on its own, after a LayerNorm. Each block adds its output to its input, "
         "so the signal and the gradient have a straight path through the stack.",
         "Create AttentionLayer(q_features, num_head, dim_head, dropout=..., causal=...), then Linear(q_features, "
         "hidden_size), then Linear(hidden_size, q_features) (the order of the random draws); LayerNorm1d, ReLU and "
         "Dropout draw nothing.",
         "forward: x = x + self.dropout(self.attention(x)); then x + self.dropout(self.linear2(self.dropout("
         "self.relu(self.linear1(self.norm(x)))))). Pass device and dtype to every sub-module."]),
    "transformer.Transformer": (
        "the Transformer: a learned positional Embedding(sequence_len, embedding_size) added to the inputs, then "
        "num_layers TransformerLayers; (T, B, D) inputs unless batch_first; returns (output, zeros like it)",
        ["Attention by itself ignores order: shuffle the positions and each output moves with its input. A learned "
         "vector per position, added to each input, tells the layers where a word stands.",
         "Create the positional Embedding(sequence_len, embedding_size) first, then the layers (a list). forward: "
         "swap axes 0 and 1 unless batch_first; add positional_embedding(ids) with ids[b, t] = t; run the layers; "
         "swap back; return (x, init.zeros_like(x)).",
         "Position ids as an array: np.broadcast_to(np.arange(t), (b, t)), or a Tensor of them; the Embedding "
         "returns (B, T, embedding_size). Pass hidden_size, num_head, dim_head, dropout, causal, device and dtype "
         "on."]),
})
