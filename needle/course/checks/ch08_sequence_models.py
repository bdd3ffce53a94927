"""Chapter 08 (course hw4 parts 4-7): Sigmoid, RNNCell, RNN, LSTMCell, LSTM, Embedding, the PTB Dictionary,
Corpus tokenizer, batchify and get_batch, LanguageModel, gradient clipping and one epoch of truncated
backpropagation through time.

Modules are built after np.random.seed and their parameters compared with draws made in the course's order; their
outputs are compared with float64 numpy on random shapes, and their gradients (inputs and every parameter) with
float64 central differences. The PTB pieces run on random words and ids; the epoch runs against needle's own.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

import needle as ndl
from needle import nn

from ..cases import numerical_gradients, rng_for
from ..compare import expect, expect_close
from ..install import reference
from ..registry import exercise_check, set_hints

SEQ = "needle.nn.nn_sequence"
PTB = "needle.data.datasets.ptb_dataset"
MODELS = "needle.apps.models"
TRAINING = "needle.apps.training"
OPTIM = "needle.optim"
TOL = dict(rtol=1e-5, atol=1e-5)
TOL64 = dict(rtol=1e-7, atol=1e-8)


# --- numpy meanings (float64) ---------------------------------------------------------------------------------------

def sigmoid64(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def _preactivation(x: np.ndarray, h: np.ndarray, w: Sequence[np.ndarray]) -> np.ndarray:
    """x W_ih + h W_hh (+ b_ih + b_hh when the weights include biases)."""
    z = x @ w[0] + h @ w[1]
    return z + w[2] + w[3] if len(w) == 4 else z


def rnn_cell64(x: np.ndarray, h: np.ndarray, w: Sequence[np.ndarray], nonlinearity: str = "tanh") -> np.ndarray:
    z = _preactivation(x, h, w)
    return np.tanh(z) if nonlinearity == "tanh" else np.maximum(z, 0)


def lstm_cell64(x: np.ndarray, h: np.ndarray, c: np.ndarray, w: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """PyTorch's gate order along the 4 * hidden columns: input, forget, cell (g), output."""
    i, f, g, o = np.split(_preactivation(x, h, w), 4, axis=1)
    c_next = sigmoid64(f) * c + sigmoid64(i) * np.tanh(g)
    return sigmoid64(o) * np.tanh(c_next), c_next


def rnn64(X: np.ndarray, h0: np.ndarray, layers: Sequence[Sequence[np.ndarray]], nonlinearity: str) -> tuple:
    """Stacked RNN over X (seq_len, bs, in) from h0 (num_layers, bs, hidden): (output, h_n)."""
    inputs, finals = list(X), []
    for k, w in enumerate(layers):
        h, outputs = h0[k], []
        for x in inputs:
            h = rnn_cell64(x, h, w, nonlinearity)
            outputs.append(h)
        inputs = outputs
        finals.append(h)
    return np.stack(inputs), np.stack(finals)


def lstm64(X: np.ndarray, h0: np.ndarray, c0: np.ndarray, layers: Sequence[Sequence[np.ndarray]]) -> tuple:
    """Stacked LSTM: (output (seq_len, bs, hidden), (h_n, c_n))."""
    inputs, hs, cs = list(X), [], []
    for k, w in enumerate(layers):
        h, c, outputs = h0[k], c0[k], []
        for x in inputs:
            h, c = lstm_cell64(x, h, c, w)
            outputs.append(h)
        inputs = outputs
        hs.append(h)
        cs.append(c)
    return np.stack(inputs), (np.stack(hs), np.stack(cs))


# --- shared helpers -------------------------------------------------------------------------------------------------

def _flat(value: Any) -> list:
    """The arrays or Tensors of a nested tuple of outputs, in order."""
    if isinstance(value, (tuple, list)) or type(value).__name__ == "TensorTuple":
        return [leaf for k in range(len(value)) for leaf in _flat(value[k])]
    return [value]


def _t64(a: np.ndarray) -> ndl.Tensor:
    return ndl.Tensor(a, dtype="float64")


def _expect_draws(module: Any, seed: int, specs: list[tuple[str, tuple, Callable]], what: str) -> list[np.ndarray]:
    """The module's parameters `specs` = [(attribute, shape, draw)] equal the draws made in that order after
    np.random.seed(seed); returns their values."""
    np.random.seed(seed)
    wants = [draw(shape) for _, shape, draw in specs]
    values = []
    for (name, shape, _), want in zip(specs, wants):
        p = module
        for part in name.split("."):
            p = p[int(part)] if part.isdigit() else getattr(p, part, None)
        expect(isinstance(p, nn.Parameter), f"{what}.{name} must be an nn.Parameter, got {type(p).__name__}")
        expect(p.shape == shape, f"{what}.{name} has shape {p.shape}, expected {shape}")
        expect_close(p, want, what=f"{what}.{name} after np.random.seed({seed}): the parameters are drawn in the order "
                                   + ", ".join(n for n, _, _ in specs), rtol=1e-6, atol=1e-7)
        values.append(p.numpy())
    return values


def _uniform(bound: float) -> Callable[[tuple], np.ndarray]:
    return lambda shape: np.random.rand(*shape) * 2 * bound - bound


def _cell_specs(prefix: str, n_in: int, n_h: int, gates: int, bias: bool) -> list[tuple[str, tuple, Callable]]:
    u = _uniform(1 / math.sqrt(n_h))
    specs = [(prefix + "W_ih", (n_in, gates * n_h), u), (prefix + "W_hh", (n_h, gates * n_h), u)]
    return specs + ([(prefix + "bias_ih", (gates * n_h,), u), (prefix + "bias_hh", (gates * n_h,), u)] if bias else [])


def _check_gradients(run: Callable[..., Any], numpy_fn: Callable[..., Any], inputs: dict[str, np.ndarray],
                     params: dict[str, Any], what: str) -> None:
    """d <outputs, G> / d(each input, each parameter) against central differences of numpy_fn(*inputs, *params), in
    float64. `run` takes the inputs as Tensors and uses the parameters it owns."""
    tensors = [_t64(a) for a in inputs.values()]
    outs = _flat(run(*tensors))
    for o in outs:
        expect(isinstance(o, ndl.Tensor), f"{what} must return Tensors, got {type(o).__name__}")
    rng = rng_for(what)
    out_grads = [rng.standard_normal(o.shape) for o in outs]
    sum((o * ndl.Tensor(g, dtype="float64", requires_grad=False)).sum() for o, g in zip(outs, out_grads)).backward()

    def flat_numpy(*arrays: np.ndarray) -> np.ndarray:
        return np.concatenate([np.ravel(o) for o in _flat(numpy_fn(*arrays))])

    arrays = list(inputs.values()) + [p.numpy() for p in params.values()]
    want = numerical_gradients(flat_numpy, arrays, np.concatenate([g.ravel() for g in out_grads]))
    for name, t, w in zip(list(inputs) + list(params), tensors + list(params.values()), want):
        grad = getattr(t, "grad", None)
        expect(grad is not None, f"{what}: {name} got no gradient: build the output from it with needle ops")
        expect_close(grad, w, what=f"{what}: gradient w.r.t. {name} (float64, vs central differences)",
                     rtol=1e-5, atol=1e-6)


def _cell_weights(cell: Any, bias: bool, prefix: str = "") -> dict[str, Any]:
    names = ["W_ih", "W_hh"] + (["bias_ih", "bias_hh"] if bias else [])
    return {prefix + n: getattr(cell, n) for n in names}


# --- Sigmoid --------------------------------------------------------------------------------------------------------

@exercise_check("sequence_models.Sigmoid", target=f"{SEQ}:Sigmoid", hint="the Sigmoid module")
def check_sigmoid(Sigmoid: type) -> int:
    rng = rng_for("sequence_models.Sigmoid")
    cases = 0
    for shape in ((5,), (3, 4), (2, 3, 2)):
        x = rng.standard_normal(shape) * 3
        f = Sigmoid()
        expect_close(f(ndl.Tensor(x, dtype="float32")), sigmoid64(x).astype(np.float32),
                     what=f"Sigmoid() on an input of shape {shape}", inputs={"x": x}, **TOL)
        _check_gradients(f, sigmoid64, {"x": x}, {}, f"Sigmoid() on shape {shape}")
        cases += 2
    return cases


# --- RNNCell and LSTMCell -------------------------------------------------------------------------------------------

RNN_CELL_CASES = [(3, 4, 5, True, "tanh"), (1, 2, 3, True, "relu"), (4, 3, 2, False, "tanh"), (2, 5, 4, True, "tanh")]


@exercise_check("sequence_models.RNNCell", target=f"{SEQ}:RNNCell", hint="one step of a recurrent network")
def check_rnn_cell(RNNCell: type) -> int:
    rng = rng_for("sequence_models.RNNCell")
    cases = 0
    for seed, (bs, n_in, n_h, bias, nl) in enumerate(RNN_CELL_CASES):
        what = f"RNNCell({n_in}, {n_h}, bias={bias}, nonlinearity={nl!r})"
        np.random.seed(seed)
        cell = RNNCell(n_in, n_h, bias=bias, nonlinearity=nl, dtype="float64")
        w = _expect_draws(cell, seed, _cell_specs("", n_in, n_h, 1, bias), what)
        expect(len(cell.parameters()) == len(w), f"{what} has {len(cell.parameters())} parameters, expected {len(w)}"
                                                 + ("" if bias else " (no biases: bias_ih = bias_hh = None)"))
        x, h = rng.standard_normal((bs, n_in)), rng.standard_normal((bs, n_h))
        expect_close(cell(_t64(x), _t64(h)), rnn_cell64(x, h, w, nl), what=f"{what} on x {x.shape} and h {h.shape}",
                     inputs={"x": x, "h": h}, **TOL64)
        expect_close(cell(_t64(x)), rnn_cell64(x, np.zeros((bs, n_h)), w, nl), inputs={"x": x},
                     what=f"{what} on x {x.shape} without h (h=None means a zero state)", **TOL64)
        _check_gradients(cell, lambda a, b, *p: rnn_cell64(a, b, p, nl), {"x": x, "h": h}, _cell_weights(cell, bias), what)
        cases += 4
    cell = RNNCell(3, 2)
    out = cell(ndl.Tensor(rng.standard_normal((2, 3)), dtype="float32"))
    expect(str(out.dtype) == "float32" and str(cell.W_ih.dtype) == "float32",
           f"RNNCell(3, 2) must default to float32 parameters and outputs, got {cell.W_ih.dtype} and {out.dtype}")
    return cases + 1


LSTM_CELL_CASES = [(3, 4, 5, True), (1, 2, 3, True), (4, 3, 2, False), (2, 1, 4, True)]


@exercise_check("sequence_models.LSTMCell", target=f"{SEQ}:LSTMCell",
                hint="one step of an LSTM, with PyTorch's gate order")
def check_lstm_cell(LSTMCell: type) -> int:
    rng = rng_for("sequence_models.LSTMCell")
    cases = 0
    for seed, (bs, n_in, n_h, bias) in enumerate(LSTM_CELL_CASES):
        what = f"LSTMCell({n_in}, {n_h}, bias={bias})"
        np.random.seed(seed)
        cell = LSTMCell(n_in, n_h, bias=bias, dtype="float64")
        w = _expect_draws(cell, seed, _cell_specs("", n_in, n_h, 4, bias), what)
        x, h, c = rng.standard_normal((bs, n_in)), rng.standard_normal((bs, n_h)), rng.standard_normal((bs, n_h))
        got = cell(_t64(x), (_t64(h), _t64(c)))
        expect(len(_flat(got)) == 2, f"{what} must return (h', c'), got {type(got).__name__} of {len(_flat(got))}")
        want = lstm_cell64(x, h, c, w)
        for name, g, v in zip(("h'", "c'"), _flat(got), want):
            expect_close(g, v, what=f"{what}: {name} for x {x.shape}, h and c {h.shape} (gates i, f, g, o in this "
                                    "order along the 4 * hidden columns)", inputs={"x": x, "h": h, "c": c}, **TOL64)
        zeros = np.zeros((bs, n_h))
        for name, g, v in zip(("h'", "c'"), _flat(cell(_t64(x))), lstm_cell64(x, zeros, zeros, w)):
            expect_close(g, v, what=f"{what}: {name} without a state (h=None means h = c = 0)", inputs={"x": x}, **TOL64)
        _check_gradients(lambda a, b, d: cell(a, (b, d)), lambda a, b, d, *p: lstm_cell64(a, b, d, p),
                         {"x": x, "h": h, "c": c}, _cell_weights(cell, bias), what)
        cases += 4
    return cases


# --- RNN and LSTM ---------------------------------------------------------------------------------------------------

# (seq_len, bs, input, hidden, num_layers, bias, nonlinearity, initial state given)
RNN_CASES = [(3, 2, 3, 4, 1, True, "tanh", True), (4, 3, 2, 3, 2, True, "tanh", False),
             (2, 1, 3, 2, 3, True, "relu", True), (3, 2, 2, 3, 2, False, "tanh", True)]


def _layer_specs(cells_attr: str, n_in: int, n_h: int, layers: int, gates: int, bias: bool) -> list:
    return [spec for k in range(layers)
            for spec in _cell_specs(f"{cells_attr}.{k}.", n_in if k == 0 else n_h, n_h, gates, bias)]


def _expect_cells(model: Any, attr: str, layers: int, what: str) -> list:
    cells = getattr(model, attr, None)
    expect(isinstance(cells, list) and len(cells) == layers,
           f"{what} must keep its cells in a list attribute `{attr}` with one cell per layer ({layers}), got "
           f"{type(cells).__name__}")
    return cells


def _grouped(values: list, per_layer: int) -> list:
    return [values[k:k + per_layer] for k in range(0, len(values), per_layer)]


@exercise_check("sequence_models.RNN", target=f"{SEQ}:RNN", hint="a stacked RNN over a whole sequence")
def check_rnn(RNN: type) -> int:
    rng = rng_for("sequence_models.RNN")
    cases = 0
    for seed, (seq, bs, n_in, n_h, layers, bias, nl, with_h0) in enumerate(RNN_CASES):
        what = f"RNN({n_in}, {n_h}, num_layers={layers}, bias={bias}, nonlinearity={nl!r})"
        np.random.seed(seed)
        model = RNN(n_in, n_h, num_layers=layers, bias=bias, nonlinearity=nl, dtype="float64")
        cells = _expect_cells(model, "rnn_cells", layers, what)
        w = _grouped(_expect_draws(model, seed, _layer_specs("rnn_cells", n_in, n_h, layers, 1, bias), what),
                     4 if bias else 2)
        X = rng.standard_normal((seq, bs, n_in))
        h0 = rng.standard_normal((layers, bs, n_h)) if with_h0 else np.zeros((layers, bs, n_h))
        got = model(_t64(X), _t64(h0) if with_h0 else None)
        expect(len(_flat(got)) == 2, f"{what} must return (output, h_n)")
        state = "h0 of shape " + str(h0.shape) if with_h0 else "h0=None (zeros)"
        for name, g, v in zip(("output", "h_n"), _flat(got), rnn64(X, h0, w, nl)):
            expect_close(g, v, what=f"{what}: {name} for X of shape {X.shape} and {state}", inputs={"X": X}, **TOL64)
        params = {n: p for k, cell in enumerate(cells) for n, p in _cell_weights(cell, bias, f"rnn_cells[{k}].").items()}
        per = 4 if bias else 2
        _check_gradients(lambda a, b: model(a, b), lambda a, b, *p: rnn64(a, b, _grouped(list(p), per), nl),
                         {"X": X, "h0": h0}, params, what)
        cases += 3
    return cases


LSTM_CASES = [(3, 2, 3, 4, 1, True, True), (4, 3, 2, 3, 2, True, False), (2, 1, 3, 2, 3, False, True)]


@exercise_check("sequence_models.LSTM", target=f"{SEQ}:LSTM", hint="a stacked LSTM over a whole sequence")
def check_lstm(LSTM: type) -> int:
    rng = rng_for("sequence_models.LSTM")
    cases = 0
    for seed, (seq, bs, n_in, n_h, layers, bias, with_state) in enumerate(LSTM_CASES):
        what = f"LSTM({n_in}, {n_h}, num_layers={layers}, bias={bias})"
        np.random.seed(seed)
        model = LSTM(n_in, n_h, num_layers=layers, bias=bias, dtype="float64")
        cells = _expect_cells(model, "lstm_cells", layers, what)
        per = 4 if bias else 2
        w = _grouped(_expect_draws(model, seed, _layer_specs("lstm_cells", n_in, n_h, layers, 4, bias), what), per)
        X = rng.standard_normal((seq, bs, n_in))
        shape = (layers, bs, n_h)
        h0, c0 = (rng.standard_normal(shape), rng.standard_normal(shape)) if with_state else (np.zeros(shape),) * 2
        got = model(_t64(X), (_t64(h0), _t64(c0)) if with_state else None)
        expect(len(_flat(got)) == 3, f"{what} must return (output, (h_n, c_n))")
        output, (h_n, c_n) = lstm64(X, h0, c0, w)
        state = "h = (h0, c0) of shape " + str(shape) if with_state else "h=None (zeros)"
        for name, g, v in zip(("output", "h_n", "c_n"), _flat(got), (output, h_n, c_n)):
            expect_close(g, v, what=f"{what}: {name} for X of shape {X.shape} and {state}", inputs={"X": X}, **TOL64)
        params = {n: p for k, cell in enumerate(cells) for n, p in _cell_weights(cell, bias, f"lstm_cells[{k}].").items()}
        _check_gradients(lambda a, b, c: model(a, (b, c)), lambda a, b, c, *p: lstm64(a, b, c, _grouped(list(p), per)),
                         {"X": X, "h0": h0, "c0": c0}, params, what)
        cases += 4
    return cases


# --- Embedding ------------------------------------------------------------------------------------------------------

@exercise_check("sequence_models.Embedding", target=f"{SEQ}:Embedding", hint="a table of word vectors")
def check_embedding(Embedding: type) -> int:
    rng = rng_for("sequence_models.Embedding")
    cases = 0
    for seed, (n, d, seq, bs) in enumerate(((7, 3, 4, 2), (5, 4, 3, 3), (10, 2, 6, 1))):
        what = f"Embedding({n}, {d})"
        np.random.seed(seed)
        emb = Embedding(n, d, dtype="float64")
        (weight,) = _expect_draws(emb, seed, [("weight", (n, d), lambda s: np.random.randn(*s))], what)
        ids = rng.integers(0, n, size=(seq, bs))
        ids[0, 0] = ids[-1, -1]  # a repeated word: its row's gradient adds up
        x = ndl.Tensor(ids, dtype="float32", requires_grad=False)  # what get_batch gives
        expect_close(emb(x), weight[ids], what=f"{what} on ids of shape {ids.shape}: row ids[t, b] of the weight at "
                                              "[t, b]", inputs={"ids": ids}, **TOL64)
        _check_gradients(lambda: emb(x), lambda w: w[ids], {}, {"weight": emb.weight}, f"{what} on ids {ids.tolist()}")
        cases += 2
    return cases


# --- PTB: Dictionary, Corpus, batchify, get_batch -------------------------------------------------------------------

def _random_words(rng: np.random.Generator, count: int, vocabulary: int) -> list[str]:
    letters = np.array(list("abcdefghij"))
    vocab = ["".join(rng.choice(letters, size=int(rng.integers(1, 5)))) for _ in range(vocabulary)] + ["<unk>", "N"]
    return [vocab[k] for k in rng.integers(0, len(vocab), size=count)]


def _ids_in_order(words: Sequence[str], start: dict | None = None) -> tuple[list[int], dict]:
    table = dict(start or {})
    return [table.setdefault(w, len(table)) for w in words], table


@exercise_check("sequence_models.Dictionary", target=f"{PTB}:Dictionary", hint="a two-way table of words and ids")
def check_dictionary(Dictionary: type) -> int:
    rng = rng_for("sequence_models.Dictionary")
    d = Dictionary()
    expect(len(d) == 0, f"a new Dictionary must be empty, len() gave {len(d)}")
    words = _random_words(rng, 60, 12)
    got = [d.add_word(w) for w in words]
    want, table = _ids_in_order(words)
    expect(got == want, f"Dictionary.add_word over the words {words[:12]}... returned ids {got[:12]}..., expected "
                        f"{want[:12]}...: a new word gets the next id (0, 1, 2, ... in order of first appearance), a "
                        "known word its old id")
    expect(d.word2idx == table, f"Dictionary.word2idx is {d.word2idx}, expected {table}")
    expect(list(d.idx2word) == list(table), f"Dictionary.idx2word is {d.idx2word}, expected {list(table)}")
    expect(len(d) == len(table), f"len(Dictionary) is {len(d)} after {len(table)} distinct words")
    return 4


def _first_difference(got: list, want: list) -> str:
    k = next((j for j, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
    return (f"{len(got)} ids, expected {len(want)}; first difference at position {k}: got "
            f"{got[max(0, k - 3):k + 5]}, expected {want[max(0, k - 3):k + 5]}")


@exercise_check("sequence_models.Corpus.tokenize_lines", target=f"{PTB}:Corpus.tokenize_lines",
                hint="turn lines of text into word ids")
def check_tokenize_lines(tokenize_lines: Callable) -> int:
    rng = rng_for("sequence_models.Corpus.tokenize_lines")
    Corpus, Dictionary = reference(f"{PTB}:Corpus"), reference(f"{PTB}:Dictionary")
    cases = 0
    lines = [" ".join(_random_words(rng, int(rng.integers(0, 7)), 8)) + "\n" for _ in range(9)]
    lines[3] = "  " + lines[3].replace(" ", "   ")  # runs of spaces and leading blanks
    for max_lines in (None, 4, 0, 20):
        corpus = Corpus.__new__(Corpus)
        corpus.dictionary = Dictionary()
        got = tokenize_lines(corpus, iter(lines), max_lines)
        used = lines if max_lines is None else lines[:max_lines]
        words = [w for line in used for w in line.split() + ["<eos>"]]
        want, table = _ids_in_order(words)
        what = f"Corpus.tokenize_lines(lines, max_lines={max_lines}) on {len(lines)} lines such as {lines[0]!r}"
        expect(isinstance(got, list), f"{what} must return a list of ids, got {type(got).__name__}")
        expect(got == want, f"{what}: {_first_difference(got, want)}. Expected every word of the first max_lines "
                            "lines (split on whitespace), then '<eos>' at the end of each line")
        expect(corpus.dictionary.word2idx == table, f"{what}: the corpus's dictionary must hold every word, '<eos>' "
                                                    "too, in order of first appearance")
        cases += 2
    corpus = Corpus.__new__(Corpus)
    corpus.dictionary = Dictionary()
    first = tokenize_lines(corpus, ["a b c\n", "b d\n"])
    second = tokenize_lines(corpus, ["d e a\n"])
    expect(first + second == _ids_in_order("a b c <eos> b d <eos> d e a <eos>".split())[0],
           "Corpus.tokenize_lines called twice on one corpus (train, then test) must share its dictionary: known words "
           f"keep their ids, got {first} then {second}")
    return cases + 1


@exercise_check("sequence_models.batchify", target=f"{PTB}:batchify", hint="arrange a stream of ids in columns")
def check_batchify(batchify: Callable) -> int:
    rng = rng_for("sequence_models.batchify")
    cases = 0
    for n, bs in ((20, 4), (23, 4), (10, 1), (17, 5), (6, 6)):
        data = rng.integers(0, 50, size=n).tolist()
        nbatch = n // bs
        want = np.array(data[:nbatch * bs]).reshape(bs, nbatch).T
        got = batchify(data, bs, ndl.cpu(), "float32")
        what = f"batchify(a list of {n} ids, batch_size={bs})"
        expect(isinstance(got, np.ndarray), f"{what} must return a numpy array (as the course does), got "
                                            f"{type(got).__name__}")
        expect_close(got, want, what=f"{what}: column b holds ids b * nbatch ... (b + 1) * nbatch - 1, nbatch = "
                                     f"{n} // {bs}, the rest dropped", inputs={"data": data}, rtol=0, atol=0)
        cases += 1
    return cases


@exercise_check("sequence_models.get_batch", target=f"{PTB}:get_batch", hint="one chunk of inputs and next-word targets")
def check_get_batch(get_batch: Callable) -> int:
    rng = rng_for("sequence_models.get_batch")
    batches = rng.integers(0, 100, size=(11, 3)).astype(np.float32)
    cases = 0
    for i, bptt in ((0, 4), (4, 4), (8, 4), (9, 5), (0, 10), (3, 1), (0, 20)):
        length = min(bptt, len(batches) - 1 - i)
        what = f"get_batch(batches of shape {batches.shape}, i={i}, bptt={bptt})"
        got = get_batch(batches, i, bptt, device=ndl.cpu(), dtype="float32")
        expect(isinstance(got, tuple) and len(got) == 2 and all(isinstance(t, ndl.Tensor) for t in got),
               f"{what} must return (data, target) as two Tensors")
        data, target = got
        expect_close(data, batches[i:i + length], what=f"{what}: data, rows i .. i + L - 1 with L = min(bptt, "
                                                       f"{len(batches)} - 1 - i) = {length}", rtol=0, atol=0)
        expect_close(target, batches[i + 1:i + 1 + length].reshape(-1),
                     what=f"{what}: target, the next word of each input (rows i + 1 .. i + L), flattened to (L * bs,)",
                     rtol=0, atol=0)
        expect(data.device == ndl.cpu() and str(data.dtype) == "float32",
               f"{what}: data must live on the device asked for, in the dtype asked for; got {data.device}, {data.dtype}")
        cases += 2
    return cases


# --- LanguageModel --------------------------------------------------------------------------------------------------

def _reference_lm(*args: Any, **kwargs: Any) -> nn.Module:
    """needle's own LanguageModel, built by the reference __init__ even while the learner's methods sit on the class."""
    cls = reference(f"{MODELS}:LanguageModel")
    model = cls.__new__(cls)
    reference(f"{MODELS}:LanguageModel.__init__")(model, *args, **kwargs)
    return model


@exercise_check("sequence_models.LanguageModel", target=f"{MODELS}:LanguageModel",
                hint="embedding, sequence model and linear layer as one model")
def check_language_model(LanguageModel: type) -> int:
    rng = rng_for("sequence_models.LanguageModel")
    ref_forward = reference(f"{MODELS}:LanguageModel.forward")
    cases = 0
    for seed, (emb, vocab, hidden, layers, kind, seq, bs) in enumerate(
            ((4, 9, 5, 1, "rnn", 3, 2), (3, 7, 4, 2, "lstm", 4, 3), (5, 6, 3, 2, "rnn", 2, 1))):
        what = f"LanguageModel({emb}, {vocab}, {hidden}, num_layers={layers}, seq_model={kind!r})"
        np.random.seed(seed)
        model = LanguageModel(emb, vocab, hidden, num_layers=layers, seq_model=kind, dtype="float64")
        np.random.seed(seed)
        ref = _reference_lm(emb, vocab, hidden, num_layers=layers, seq_model=kind, dtype="float64")
        count = sum(int(np.prod(p.shape)) for p in model.parameters())
        want_count = sum(int(np.prod(p.shape)) for p in ref.parameters())
        expect(count == want_count, f"{what} has {count} parameters, expected {want_count}: Embedding({vocab}, {emb}), "
                                    f"the {kind.upper()} from {emb} to {hidden} with {layers} layers, Linear({hidden}, "
                                    f"{vocab})")
        ids = rng.integers(0, vocab, size=(seq, bs))
        x = ndl.Tensor(ids, dtype="float32", requires_grad=False)
        out, h = model(x)
        want_out, want_h = ref_forward(ref, x)
        expect_close(out, want_out, what=f"{what}: logits for ids of shape {ids.shape} (shape (seq_len * bs, vocab)), "
                                         f"after np.random.seed({seed}): create the Embedding, the sequence model and "
                                         "the Linear layer in this order", inputs={"ids": ids}, **TOL64)
        expect(len(_flat(h)) == len(_flat(want_h)), f"{what}: the state must be h_n for an RNN and (h_n, c_n) for an "
                                                     f"LSTM, got {len(_flat(h))} Tensors")
        for g, v in zip(_flat(h), _flat(want_h)):
            expect_close(g, v, what=f"{what}: the returned state", **TOL64)
        out2, _ = model(x, h)
        expect_close(out2, ref_forward(ref, x, want_h)[0], what=f"{what}: logits when starting from the state the "
                                                                "first call returned (pass h on)", **TOL64)
        (out2 * out2).sum().backward()
        missing = [tuple(p.shape) for p in model.parameters() if p.grad is None]
        expect(not missing, f"{what}: parameters of shapes {missing} got no gradient")
        cases += 4
    return cases


# --- gradient clipping ----------------------------------------------------------------------------------------------

@exercise_check("sequence_models.clip_grad_norm", target=f"{OPTIM}:Optimizer.clip_grad_norm",
                hint="rescale all gradients together when their norm is too large")
def check_clip_grad_norm(clip_grad_norm: Callable) -> int:
    rng = rng_for("sequence_models.clip_grad_norm")
    cases = 0
    for max_norm, scale in ((0.25, 1.0), (1.0, 0.01), (5.0, 3.0), (0.5, 0.2)):
        shapes = [(3, 2), (4,), (1, 5)]
        grads = [rng.standard_normal(s) * scale for s in shapes]
        params = [nn.Parameter(rng.standard_normal(s), dtype="float32") for s in shapes] + [
            nn.Parameter(np.zeros(2), dtype="float32")]  # a parameter without a gradient
        for p, g in zip(params, grads):
            p.grad = ndl.Tensor(g, dtype="float32")
        olds = [p.grad for p in params[:3]]
        opt = ndl.optim.SGD(params, lr=0.1)
        total = math.sqrt(sum(float((g.astype(np.float32).astype(np.float64) ** 2).sum()) for g in grads))
        factor = min(1.0, max_norm / (total + 1e-6))
        what = f"clip_grad_norm(max_norm={max_norm}) on gradients of joint norm {total:.4f}"
        returned = clip_grad_norm(opt, max_norm)
        expect(returned is not None and abs(float(returned) - total) <= 1e-4 * max(1.0, total),
               f"{what} returned {returned!r}: return the joint norm before clipping (as PyTorch's "
               "clip_grad_norm_ does), so a training loop can plot it")
        for k, (p, g) in enumerate(zip(params, grads)):
            expect_close(p.grad, g * factor, what=f"{what}: gradient {k} (shape {g.shape}), scaled by max_norm / "
                                                  "(norm + 1e-6) when that is below 1, else unchanged", **TOL)
        for k, (old, g) in enumerate(zip(olds, grads)):
            expect_close(old, g, what=f"{what}: the gradient Tensor {k} the optimizer held before must not change in "
                                      "place (assign new Tensors to p.grad)", **TOL)
        expect(params[3].grad is None, f"{what}: a parameter without a gradient must keep grad None")
        cases += 1
    return cases


# --- one epoch of truncated BPTT ------------------------------------------------------------------------------------

def _tiny_lm(kind: str) -> nn.Module:
    return _reference_lm(4, 12, 5, num_layers=1, seq_model=kind)


@exercise_check("sequence_models.epoch_general_ptb", target=f"{TRAINING}:epoch_general_ptb",
                hint="one pass over PTB in chunks, carrying the hidden state")
def check_epoch_general_ptb(epoch: Callable) -> int:
    reference_epoch = reference(f"{TRAINING}:epoch_general_ptb")
    data = rng_for("sequence_models.epoch_general_ptb").integers(0, 12, size=(23, 3)).astype(np.float32)
    cases = 0
    for kind, training, clip in (("lstm", False, None), ("rnn", True, None), ("lstm", True, None), ("lstm", True, 0.05)):
        results = []
        for run in (epoch, reference_epoch):
            np.random.seed(0)
            model = _tiny_lm(kind)
            opt = ndl.optim.SGD(model.parameters(), lr=1.0) if training else None
            got = run(data, model, seq_len=5, loss_fn=nn.SoftmaxLoss(), opt=opt, clip=clip, device=ndl.cpu(),
                      dtype="float32")
            results.append((got, [p.numpy() for p in model.parameters()], model.training))
        got, want = results[0][0], results[1][0]
        mode = f"a training epoch (SGD, clip={clip})" if training else "an evaluation epoch (no optimizer)"
        what = (f"epoch_general_ptb for {mode} of a small {kind.upper()} language model over ids of shape {data.shape}"
                " with seq_len 5 (the last chunk is shorter)")
        expect(isinstance(got, tuple) and len(got) == 2, f"{what} must return (accuracy, average loss), got {got!r}")
        expect(all(isinstance(v, (float, int, np.floating, np.integer)) for v in got),
               f"{what} returned {[type(v).__name__ for v in got]}: return plain numbers, not Tensors (a Tensor "
               "keeps its graph alive)")
        expect(results[0][2] == training, f"{what}: the model must be in {'training' if training else 'eval'} mode")
        for k, (p, q) in enumerate(zip(results[0][1], results[1][1])):
            expect_close(p, q, what=f"{what}: parameter {k} (shape {p.shape}) afterwards. Each chunk starts from the "
                                    "state the previous one ended with, detached, so that its backward pass stops at "
                                    "the chunk's start" + (f"; the gradients are clipped to norm {clip}" if clip else ""),
                         **TOL)
        expect_close(got, want, what=f"{what}: (accuracy, loss) averaged over every predicted word", **TOL)
        cases += 2
    return cases



def _run_twice(run: Callable, reference_run: Callable, kind: str, **kwargs: Any) -> tuple:
    """(result, parameters afterwards, training flag) of the learner's and the reference function on equal models."""
    out = []
    for fn in (run, reference_run):
        np.random.seed(0)
        model = _tiny_lm(kind)
        got = fn(model, _PTB_IDS, **kwargs)
        out.append((got, [p.numpy() for p in model.parameters()], model.training))
    return out[0], out[1]


_PTB_IDS = rng_for("sequence_models.train_ptb").integers(0, 12, size=(17, 2)).astype(np.float32)


def _expect_same_run(mine: tuple, theirs: tuple, what: str) -> None:
    got, want = mine[0], theirs[0]
    expect(isinstance(got, tuple) and len(got) == 2, f"{what} must return (accuracy, average loss), got {got!r}")
    for k, (p, q) in enumerate(zip(mine[1], theirs[1])):
        expect_close(p, q, what=f"{what}: parameter {k} (shape {p.shape}) afterwards", **TOL)
    expect_close(got, want, what=f"{what}: (accuracy, loss) of the last epoch", **TOL)


@exercise_check("sequence_models.train_ptb", target=f"{TRAINING}:train_ptb", hint="train a language model for some epochs")
def check_train_ptb(train_ptb: Callable) -> int:
    reference_train = reference(f"{TRAINING}:train_ptb")
    cases = 0
    for kind, kwargs in (("rnn", dict(seq_len=4, n_epochs=2, lr=2.0)),
                         ("lstm", dict(seq_len=5, n_epochs=3, optimizer=ndl.optim.Adam, lr=0.01, weight_decay=0.01)),
                         ("lstm", dict(seq_len=6, n_epochs=2, lr=1.0, clip=0.05))):
        what = f"train_ptb({kind.upper()} model, ids of shape {_PTB_IDS.shape}, " + ", ".join(
            f"{k}={getattr(v, '__name__', v)}" for k, v in kwargs.items()) + ")"
        mine, theirs = _run_twice(train_ptb, reference_train, kind, **kwargs)
        expect(mine[2], f"{what}: the model must be in training mode afterwards")
        _expect_same_run(mine, theirs, what + ": one optimizer for all epochs, with lr and weight_decay; each epoch "
                                              "with epoch_general_ptb, passing seq_len, a loss_fn() instance, clip, "
                                              "device and dtype")
        cases += 1
    return cases


@exercise_check("sequence_models.evaluate_ptb", target=f"{TRAINING}:evaluate_ptb", hint="evaluate a language model")
def check_evaluate_ptb(evaluate_ptb: Callable) -> int:
    reference_evaluate = reference(f"{TRAINING}:evaluate_ptb")
    cases = 0
    for kind, seq_len in (("rnn", 4), ("lstm", 7)):
        what = f"evaluate_ptb({kind.upper()} model, ids of shape {_PTB_IDS.shape}, seq_len={seq_len})"
        mine, theirs = _run_twice(evaluate_ptb, reference_evaluate, kind, seq_len=seq_len)
        expect(not mine[2], f"{what}: the model must be in eval mode")
        _expect_same_run(mine, theirs, what + ": one epoch without an optimizer (the parameters must not change)")
        cases += 1
    return cases

_GATES = "PyTorch's order of the four gates along the 4 * hidden columns: input, forget, cell candidate, output"
set_hints({
    "sequence_models.Sigmoid": (
        "the Sigmoid module: the logistic function 1 / (1 + e^(-x)) applied to every entry",
        ["A Module without parameters whose forward composes needle ops, so that autodiff gives the gradient for free.",
         "exp of the negated input, plus one, then the reciprocal (a power of -1 or a division of 1 by it)."]),
    "sequence_models.RNNCell": (
        "RNNCell: four uniform parameters drawn in the course's order, and a forward that mixes the input with the "
        "previous hidden state",
        ["Two weight matrices, one for the input and one for the hidden state, and two bias vectors; all uniform in "
         "+-1/sqrt(hidden_size). The new state is the nonlinearity of the sum of both products and both biases. A "
         "missing state is the zero state.",
         "Shapes: W_ih (input_size, hidden_size), W_hh (hidden_size, hidden_size), bias_ih and bias_hh "
         "(hidden_size,), drawn in that order (None without bias). The biases need a reshape to (1, hidden_size) and "
         "a broadcast to (bs, hidden_size).",
         "init.rand(*shape, low=-k, high=k, device=device, dtype=dtype) wrapped in nn.Parameter; init.zeros for a "
         "missing h; ops.tanh or ops.relu at the end."]),
    "sequence_models.RNN": (
        "RNN: a stack of RNN cells stepped through a whole sequence, each layer reading the outputs of the one below",
        ["Layer 0 reads the input sequence; every layer above reads the hidden states of the layer below. Each layer "
         "carries its own hidden state from one time step to the next, starting from its slice of h0.",
         "Tensors have no indexing: ops.split(X, axis=0) gives the time steps, ops.split(h0, axis=0) the layers' "
         "states, and ops.stack(list, axis=0) puts the outputs and the final states back together.",
         "self.rnn_cells = [nn.RNNCell(...) for each layer] (input_size for the first, hidden_size above). forward: "
         "loop over layers, inside it over time steps; return (stack of the top layer's outputs, stack of each layer's "
         "last state)."]),
    "sequence_models.LSTMCell": (
        "LSTMCell: the same four parameters as RNNCell with four gates' worth of columns, and a forward that updates "
        "a cell state and a hidden state",
        ["One product of the input and one of the hidden state give all four gates at once. " + _GATES + ". The gates "
         "i, f and o squash with a sigmoid, g with tanh. The cell state keeps f of the old one and adds i of g; the "
         "hidden state is o times tanh of the new cell state.",
         "W_ih (input_size, 4 * hidden), W_hh (hidden, 4 * hidden), biases (4 * hidden,). Split the (bs, 4 * hidden) "
         "preactivation into four (bs, hidden) blocks by reshaping it to (bs, 4, hidden) and splitting along axis 1. "
         "h and c default to zeros.",
         "i, f, g, o = ops.split(z.reshape((bs, 4, hidden)), axis=1); c' = f * c + i * g; h' = o * ops.tanh(c'); "
         "return (h', c'). Sigmoid() is your module of this chapter."]),
    "sequence_models.LSTM": (
        "LSTM: a stack of LSTM cells stepped through a whole sequence, carrying (h, c) per layer",
        ["The RNN's loops again, with a pair of states per layer instead of one; the output sequence is the top "
         "layer's hidden states.",
         "h = (h0, c0), each (num_layers, bs, hidden), or None for zeros. Split both along axis 0 to get each layer's "
         "pair; return (output, (stack of last h's, stack of last c's)).",
         "self.lstm_cells = [nn.LSTMCell(...) for each layer]; ops.split and ops.stack as in your RNN."]),
    "sequence_models.Embedding": (
        "Embedding: a (num_embeddings, embedding_dim) table of standard-normal vectors, and a forward that looks up "
        "the row of every id",
        ["Looking up rows is a product with one-hot vectors: a one-hot row picks exactly one row of the table. Its "
         "gradient then adds into the rows that were used, which autodiff does for you.",
         "Flatten the (seq_len, bs) ids, make the one-hot matrix (seq_len * bs, num_embeddings), multiply by the "
         "weight and reshape to (seq_len, bs, embedding_dim).",
         "weight = nn.Parameter(init.randn(n, d, device=device, dtype=dtype)); init.one_hot(n, ids, device=..., "
         "dtype=...) takes the ids as a Tensor or array."]),
    "sequence_models.Dictionary": (
        "Dictionary.add_word: give a new word the next free id, and a known word its old one",
        ["word2idx maps a word to its id and idx2word lists the words by id; the two must always agree.",
         "The next free id is the number of words so far; a new word goes into both tables."]),
    "sequence_models.Corpus.tokenize_lines": (
        "Corpus.tokenize_lines: the word ids of the first max_lines lines, each line ending with the word '<eos>'",
        ["Every word goes through the corpus's dictionary (which assigns ids), so train and test share one "
         "vocabulary. The end of each line is a word of its own, so the model learns where sentences end.",
         "Loop over the lines with their index, stop at max_lines when it is given, split each line on whitespace "
         "and append '<eos>'; collect self.dictionary.add_word(w) for each word."]),
    "sequence_models.batchify": (
        "batchify: cut a stream of ids into batch_size equally long pieces, one piece per column",
        ["Column b must be one contiguous stretch of the text, so that the hidden state carried down a column reads "
         "a real sentence. Ids that do not fill a last row are dropped.",
         "nbatch = len(data) // batch_size; the first nbatch * batch_size ids reshaped to (batch_size, nbatch) give "
         "the pieces as rows; transpose to (nbatch, batch_size). Return numpy."]),
    "sequence_models.get_batch": (
        "get_batch: the chunk of inputs starting at row i, and for each input the word that follows it",
        ["The target of an input word is the next word of the same column, one row down. The chunk is bptt rows "
         "long, or shorter at the end, where the last row has no next word.",
         "L = min(bptt, len(batches) - 1 - i); data = rows i .. i + L - 1; target = rows i + 1 .. i + L, flattened. "
         "Both become Tensors on the device and dtype given."]),
    "sequence_models.LanguageModel": (
        "LanguageModel: embed the ids, run the sequence model, and map every hidden state to one score per word",
        ["Three modules in a row, created in this order (the order of the random draws): an Embedding from the "
         "vocabulary to embedding_size, an RNN or LSTM from embedding_size to hidden_size, a Linear layer from "
         "hidden_size to the vocabulary. The state goes in and comes out, so the next chunk can continue from it.",
         "The sequence model returns (seq_len, bs, hidden); reshape to (seq_len * bs, hidden) for the Linear layer; "
         "return (logits, h).",
         "nn.Embedding(output_size, embedding_size, ...), nn.RNN or nn.LSTM(embedding_size, hidden_size, num_layers, "
         "...), nn.Linear(hidden_size, output_size, ...), each with device and dtype."]),
    "sequence_models.clip_grad_norm": (
        "Optimizer.clip_grad_norm: scale all gradients by one factor so that their joint norm is at most max_norm",
        ["The norm is taken over all parameters' gradients together, as if they were one long vector; clipping "
         "shrinks the step without turning it. Gradients below the limit stay as they are.",
         "norm = sqrt(sum over parameters of sum(grad^2)); factor = max_norm / (norm + 1e-6); when factor < 1, "
         "every gradient becomes grad * factor. Return the norm.",
         "Skip parameters whose grad is None; read numbers with .numpy(); assign new Tensors (p.grad = p.grad.detach() "
         "* factor) instead of changing the old ones."]),
    "sequence_models.epoch_general_ptb": (
        "epoch_general_ptb: one pass over the batchified ids in chunks of seq_len, carrying the hidden state from "
        "chunk to chunk without backpropagating into the previous chunk",
        ["Chapter 07's epoch, over chunks from get_batch instead of a loader, with two additions: the hidden state "
         "returned for one chunk is the starting state of the next, cut from the old graph (truncated "
         "backpropagation through time), and the gradients may be clipped before the step.",
         "Chunks start at rows 0, seq_len, 2 seq_len, ... while a target remains (i < nbatch - 1). Per chunk: out, h = "
         "model(X, h); h detached (a tuple for an LSTM); loss; with opt: reset_grad, backward, clip_grad_norm(clip) "
         "when clip is given, step. Average accuracy and loss over every predicted word.",
         "h.detach(), or tuple(t.detach() for t in h); weight each chunk's mean loss by its number of targets; "
         "return plain floats."]),
    "sequence_models.train_ptb": (
        "train_ptb: train a language model for n_epochs with one optimizer, returning the last epoch's (accuracy, loss)",
        ["The optimizer is made once, from the class passed in, with the learning rate and weight decay; the loss "
         "function arrives as a class too. Each epoch is one call of the epoch function of this chapter.",
         "np.random.seed(4); opt = optimizer(model.parameters(), lr=lr, weight_decay=weight_decay); then n_epochs "
         "times training.epoch_general_ptb(data, model, seq_len, loss_fn(), opt, clip, device, dtype)."]),
    "sequence_models.evaluate_ptb": (
        "evaluate_ptb: one epoch without an optimizer, returning (accuracy, loss)",
        ["Evaluation is an epoch that never steps: the epoch function puts the model in eval mode itself.",
         "np.random.seed(4); return training.epoch_general_ptb(data, model, seq_len, loss_fn(), device=device, "
         "dtype=dtype)."]),
})
