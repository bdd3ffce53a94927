"""Chapter 08 checks: each passes needle's reference and the textbook's solution, reports a stub as not attempted, and
fails the classic mistakes (several per exercise) with a message that names the exercise."""
import math

import numpy as np
import pytest

import needle as ndl
from needle import course, init, nn, ops
from needle.apps import training
from needle.course.errors import CheckFailed

from chapter_cases import ChapterContract


# --- planted mistakes: modules --------------------------------------------------------------------------------------

class SigmoidWrongSign(nn.Module):
    def forward(self, x):
        return (1 + ops.exp(x)) ** -1


class SigmoidInNumpy(nn.Module):
    """Right values, but a new leaf Tensor: no gradient reaches the input."""

    def forward(self, x):
        return ndl.Tensor(1 / (1 + np.exp(-x.numpy())), dtype=x.dtype)


def _uniform(bound, device, dtype):
    return lambda *shape: nn.Parameter(init.rand(*shape, low=-bound, high=bound, device=device, dtype=dtype))


class CellBase(nn.Module):
    """A configurable cell: `gates` 1 (RNN) or 4 (LSTM), with switches for the classic mistakes."""
    gates = 1
    bound_rule = staticmethod(lambda h: 1 / math.sqrt(h))
    biases_first = False

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", device=None, dtype="float32"):
        super().__init__()
        self.input_size, self.hidden_size, self.nonlinearity = input_size, hidden_size, nonlinearity
        u = _uniform(self.bound_rule(hidden_size), device, dtype)
        width = self.gates * hidden_size
        if self.biases_first and bias:
            self.bias_ih, self.bias_hh = u(width), u(width)
        self.W_ih, self.W_hh = u(input_size, width), u(hidden_size, width)
        if not self.biases_first:
            self.bias_ih, self.bias_hh = (u(width), u(width)) if bias else (None, None)
        if not bias:
            self.bias_ih = self.bias_hh = None

    def preactivation(self, X, h):
        z = X @ self.W_ih + h @ self.W_hh
        if self.bias_ih is not None:
            z = z + (self.bias_ih + self.bias_hh).reshape((1, z.shape[1])).broadcast_to(z.shape)
        return z


class RNNCellBase(CellBase):
    ignore_h = False
    always_tanh = False

    def forward(self, X, h=None):
        if h is None or self.ignore_h:
            h = init.zeros(X.shape[0], self.hidden_size, device=X.device, dtype=X.dtype)
        z = self.preactivation(X, h)
        return ops.tanh(z) if self.nonlinearity == "tanh" or self.always_tanh else ops.relu(z)


RNNCellBiasesFirst = type("RNNCellBiasesFirst", (RNNCellBase,), {"biases_first": True})
RNNCellBoundOneOverH = type("RNNCellBoundOneOverH", (RNNCellBase,), {"bound_rule": staticmethod(lambda h: 1 / h)})
RNNCellIgnoresState = type("RNNCellIgnoresState", (RNNCellBase,), {"ignore_h": True})
RNNCellAlwaysTanh = type("RNNCellAlwaysTanh", (RNNCellBase,), {"always_tanh": True})


class LSTMCellBase(CellBase):
    gates = 4
    order = (0, 1, 2, 3)  # where i, f, g, o sit among the four blocks
    g_squash = staticmethod(ops.tanh)
    h_uses_tanh = True

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype="float32"):
        super().__init__(input_size, hidden_size, bias, device=device, dtype=dtype)

    def forward(self, X, h=None):
        bs, n = X.shape[0], self.hidden_size
        if h is None:
            zeros = init.zeros(bs, n, device=X.device, dtype=X.dtype)
            h = (zeros, zeros)
        h0, c0 = h
        blocks = ops.split(self.preactivation(X, h0).reshape((bs, 4, n)), axis=1)
        i, f, g, o = (blocks[k] for k in self.order)
        sig = nn.Sigmoid()
        c = sig(f) * c0 + sig(i) * self.g_squash(g)
        return sig(o) * (ops.tanh(c) if self.h_uses_tanh else c), c


LSTMCellIFOG = type("LSTMCellIFOG", (LSTMCellBase,), {"order": (0, 1, 3, 2)})
LSTMCellSigmoidCandidate = type("LSTMCellSigmoidCandidate", (LSTMCellBase,),
                                {"g_squash": staticmethod(lambda g: nn.Sigmoid()(g))})
LSTMCellNoTanhOnOutput = type("LSTMCellNoTanhOnOutput", (LSTMCellBase,), {"h_uses_tanh": False})
LSTMCellBiasesFirst = type("LSTMCellBiasesFirst", (LSTMCellBase,), {"biases_first": True})


def _steps(X):
    parts = ops.split(X, axis=0)
    return [parts[t] for t in range(X.shape[0])]


class RNNBase(nn.Module):
    top_first = False
    carry = True
    top_state_only = False

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, nonlinearity="tanh", device=None,
                 dtype="float32"):
        super().__init__()
        order = range(num_layers - 1, -1, -1) if self.top_first else range(num_layers)
        cells = {k: nn.RNNCell(input_size if k == 0 else hidden_size, hidden_size, bias, nonlinearity, device=device,
                               dtype=dtype) for k in order}
        self.rnn_cells = [cells[k] for k in range(num_layers)]

    def forward(self, X, h0=None):
        inputs, finals = _steps(X), []
        for k, cell in enumerate(self.rnn_cells):
            start = ops.split(h0, axis=0)[k] if h0 is not None else None
            h, outputs = start, []
            for x in inputs:
                h = cell(x, h if self.carry else start)
                outputs.append(h)
            inputs = outputs
            finals.append(h)
        if self.top_state_only:
            finals = finals[-1:]
        return ops.stack(inputs, axis=0), ops.stack(finals, axis=0)


RNNTopLayerFirst = type("RNNTopLayerFirst", (RNNBase,), {"top_first": True})
RNNWithoutCarry = type("RNNWithoutCarry", (RNNBase,), {"carry": False})
RNNTopStateOnly = type("RNNTopStateOnly", (RNNBase,), {"top_state_only": True})


class RNNCellsUnlisted(RNNBase):
    """Keeps its cells as separate attributes: the course's tests (and this chapter) look for `rnn_cells`."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for k, cell in enumerate(self.__dict__.pop("rnn_cells")):
            setattr(self, f"cell{k}", cell)


class LSTMBase(nn.Module):
    same_start = False  # every layer starts from layer 0's (h0, c0)
    drop_c = False

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, device=None, dtype="float32"):
        super().__init__()
        self.lstm_cells = [nn.LSTMCell(input_size if k == 0 else hidden_size, hidden_size, bias, device=device,
                                       dtype=dtype) for k in range(num_layers)]

    def forward(self, X, h=None):
        inputs, hs, cs = _steps(X), [], []
        for k, cell in enumerate(self.lstm_cells):
            layer = 0 if self.same_start else k
            state = (ops.split(h[0], axis=0)[layer], ops.split(h[1], axis=0)[layer]) if h is not None else None
            outputs = []
            for x in inputs:
                state = cell(x, state)
                outputs.append(state[0])
            inputs = outputs
            hs.append(state[0])
            cs.append(state[1])
        h_n = ops.stack(hs, axis=0)
        return (ops.stack(inputs, axis=0), h_n) if self.drop_c else (ops.stack(inputs, axis=0), (h_n, ops.stack(cs, 0)))


LSTMSameStartForEveryLayer = type("LSTMSameStartForEveryLayer", (LSTMBase,), {"same_start": True})
LSTMWithoutCellState = type("LSTMWithoutCellState", (LSTMBase,), {"drop_c": True})


class EmbeddingBase(nn.Module):
    uniform = False
    batch_first_output = False
    numpy_lookup = False

    def __init__(self, num_embeddings, embedding_dim, device=None, dtype="float32"):
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        draw = init.rand if self.uniform else init.randn
        self.weight = nn.Parameter(draw(num_embeddings, embedding_dim, device=device, dtype=dtype))

    def forward(self, x):
        seq_len, bs = x.shape
        if self.numpy_lookup:
            return ndl.Tensor(self.weight.numpy()[x.numpy().astype(int)], dtype=self.weight.dtype)
        rows = init.one_hot(self.num_embeddings, x.reshape((seq_len * bs,)), dtype=self.weight.dtype)
        shape = (bs, seq_len, self.embedding_dim) if self.batch_first_output else (seq_len, bs, self.embedding_dim)
        return (rows @ self.weight).reshape(shape)


EmbeddingUniform = type("EmbeddingUniform", (EmbeddingBase,), {"uniform": True})
EmbeddingBatchFirst = type("EmbeddingBatchFirst", (EmbeddingBase,), {"batch_first_output": True})
EmbeddingNumpyLookup = type("EmbeddingNumpyLookup", (EmbeddingBase,), {"numpy_lookup": True})


def _variant(mistaken, name, **switches):
    """`mistaken` with some of its switches set, under a name of its own (the test's id)."""
    def wrong(*args, **kwargs):
        return mistaken(*args, **kwargs, **switches)

    wrong.__name__ = name
    return wrong


# --- planted mistakes: PTB ------------------------------------------------------------------------------------------

class DictionaryFromOne:
    def __init__(self):
        self.word2idx, self.idx2word = {}, []

    def add_word(self, word):
        if word not in self.word2idx:
            self.idx2word.append(word)
            self.word2idx[word] = len(self.idx2word)
        return self.word2idx[word]

    def __len__(self):
        return len(self.idx2word)


class DictionaryAlwaysNew(DictionaryFromOne):
    """Gives a repeated word a new id every time."""

    def add_word(self, word):
        self.word2idx[word] = len(self.idx2word)
        self.idx2word.append(word)
        return self.word2idx[word]


def _tokenize(self, lines, max_lines=None, *, eos=True, off_by_one=False, fresh_dictionary=False, split_on_space=False):
    if fresh_dictionary:
        self.dictionary = ndl.data.Dictionary()
    ids = []
    for k, line in enumerate(lines):
        if max_lines is not None and (k > max_lines if off_by_one else k >= max_lines):
            break
        words = line.rstrip("\n").split(" ") if split_on_space else line.split()
        ids.extend(self.dictionary.add_word(w) for w in words + (["<eos>"] if eos else []))
    return ids


tokenize_without_eos = _variant(_tokenize, "tokenize_without_eos", eos=False)
tokenize_one_line_too_many = _variant(_tokenize, "tokenize_one_line_too_many", off_by_one=True)
tokenize_with_a_new_dictionary = _variant(_tokenize, "tokenize_with_a_new_dictionary", fresh_dictionary=True)
tokenize_split_on_single_spaces = _variant(_tokenize, "tokenize_split_on_single_spaces", split_on_space=True)


def batchify_rows(data, batch_size, device=None, dtype=None):
    """Consecutive ids along a row: each column jumps through the text."""
    nbatch = len(data) // batch_size
    return np.array(data[:nbatch * batch_size], dtype=dtype or np.int64).reshape(nbatch, batch_size)


def batchify_as_tensor(data, batch_size, device=None, dtype=None):
    nbatch = len(data) // batch_size
    return ndl.Tensor(np.array(data[:nbatch * batch_size]).reshape(batch_size, nbatch).T, device=device, dtype=dtype)


def _get_batch(batches, i, bptt, device=None, dtype=None, *, shift=1, flatten=True, length_rule=None, columns=False):
    length = (length_rule or (lambda b, k, n: min(n, len(b) - 1 - k)))(batches, i, bptt)
    data = batches[i:i + length]
    target = batches[i + shift:i + shift + length]
    target = (target.T if columns else target).reshape(-1) if flatten else target
    dtype = dtype or "float32"
    return (ndl.Tensor(data, device=device, dtype=dtype, requires_grad=False),
            ndl.Tensor(np.ascontiguousarray(target), device=device, dtype=dtype, requires_grad=False))


get_batch_unshifted_target = _variant(_get_batch, "get_batch_unshifted_target", shift=0)
get_batch_unflattened_target = _variant(_get_batch, "get_batch_unflattened_target", flatten=False)
get_batch_too_long_at_the_end = _variant(_get_batch, "get_batch_too_long_at_the_end",
                                         length_rule=lambda batches, i, bptt: min(bptt, len(batches) - i))
get_batch_column_major_target = _variant(_get_batch, "get_batch_column_major_target", columns=True)


# --- planted mistakes: LanguageModel, clipping, epoch ---------------------------------------------------------------

class LanguageModelBase(nn.Module):
    linear_first = False
    always_rnn = False
    keep_time_axis = False
    ignore_state = False

    def __init__(self, embedding_size, output_size, hidden_size, num_layers=1, seq_model="rnn", seq_len=40,
                 device=None, dtype="float32"):
        super().__init__()
        make_linear = lambda: nn.Linear(hidden_size, output_size, device=device, dtype=dtype)
        if self.linear_first:
            self.linear = make_linear()
        self.embedding = nn.Embedding(output_size, embedding_size, device=device, dtype=dtype)
        layers = nn.LSTM if seq_model == "lstm" and not self.always_rnn else nn.RNN
        self.seq_model = layers(embedding_size, hidden_size, num_layers, device=device, dtype=dtype)
        if not self.linear_first:
            self.linear = make_linear()

    def forward(self, x, h=None):
        seq_len, bs = x.shape
        out, h = self.seq_model(self.embedding(x), None if self.ignore_state else h)
        logits = self.linear(out.reshape((seq_len * bs, out.shape[2])))
        return (logits.reshape((seq_len, bs, logits.shape[1])) if self.keep_time_axis else logits), h


LanguageModelLinearFirst = type("LanguageModelLinearFirst", (LanguageModelBase,), {"linear_first": True})
LanguageModelAlwaysRNN = type("LanguageModelAlwaysRNN", (LanguageModelBase,), {"always_rnn": True})
LanguageModelKeepsTimeAxis = type("LanguageModelKeepsTimeAxis", (LanguageModelBase,), {"keep_time_axis": True})
LanguageModelIgnoresState = type("LanguageModelIgnoresState", (LanguageModelBase,), {"ignore_state": True})


def _norm(grads):
    return math.sqrt(sum(float((p.grad.numpy().astype(np.float64) ** 2).sum()) for p in grads))


def clip_each_parameter(self, max_norm=0.25):
    grads = [p for p in self.params if p.grad is not None]
    total = _norm(grads)
    for p in grads:
        factor = max_norm / (_norm([p]) + 1e-6)
        if factor < 1:
            p.grad = p.grad.detach() * factor
    return total


def clip_without_returning_the_norm(self, max_norm=0.25):
    grads = [p for p in self.params if p.grad is not None]
    factor = max_norm / (_norm(grads) + 1e-6)
    if factor < 1:
        for p in grads:
            p.grad = p.grad.detach() * factor


def clip_always_to_max_norm(self, max_norm=0.25):
    """Rescales to max_norm even when the norm is already smaller (stretching small gradients)."""
    grads = [p for p in self.params if p.grad is not None]
    total = _norm(grads)
    for p in grads:
        p.grad = p.grad.detach() * (max_norm / (total + 1e-6))
    return total


def clip_in_place(self, max_norm=0.25):
    grads = [p for p in self.params if p.grad is not None]
    total = _norm(grads)
    factor = max_norm / (total + 1e-6)
    if factor < 1:
        for p in grads:
            p.grad.data = p.grad.detach() * factor
    return total


def _epoch(data, model, seq_len=40, loss_fn=nn.SoftmaxLoss(), opt=None, clip=None, device=None, dtype="float32", *,
           progress=False, detach=True, carry=True, use_clip=True, weighted=True, set_mode=True):
    np.random.seed(4)
    if set_mode:
        model.eval() if opt is None else model.train()
    h, correct, loss_sum, count, chunks = None, 0, 0.0, 0, 0
    for i in range(0, data.shape[0] - 1, seq_len):
        X, y = ndl.data.get_batch(data, i, seq_len, device=device, dtype=dtype)
        logits, h = model(X, h if carry else None)
        if detach:
            h = tuple(t.detach() for t in h) if isinstance(h, tuple) else h.detach()
        loss = loss_fn(logits, y)
        if opt is not None:
            opt.reset_grad()
            loss.backward()
            if clip is not None and use_clip:
                opt.clip_grad_norm(clip)
            opt.step()
        labels = y.numpy()
        correct += int((logits.numpy().argmax(axis=1) == labels).sum())
        loss_sum += float(loss.numpy()) * (len(labels) if weighted else 1)
        count += len(labels)
        chunks += 1
    return correct / count, loss_sum / (count if weighted else chunks)


epoch_without_detach = _variant(_epoch, "epoch_without_detach", detach=False)
epoch_restarting_the_state = _variant(_epoch, "epoch_restarting_the_state", carry=False)
epoch_ignoring_clip = _variant(_epoch, "epoch_ignoring_clip", use_clip=False)
epoch_mean_of_chunk_means = _variant(_epoch, "epoch_mean_of_chunk_means", weighted=False)
epoch_without_eval_mode = _variant(_epoch, "epoch_without_eval_mode", set_mode=False)


def _train(model, data, seq_len=40, n_epochs=1, optimizer=ndl.optim.SGD, lr=4.0, weight_decay=0.0,
           loss_fn=nn.SoftmaxLoss, clip=None, device=None, dtype="float32", *, progress=False, history=None,
           callback=None, fresh_optimizer=False, use_weight_decay=True, use_clip=True, first_result=False):
    np.random.seed(4)
    make = lambda: optimizer(model.parameters(), lr=lr, weight_decay=weight_decay if use_weight_decay else 0.0)
    opt, results = make(), []
    for _ in range(n_epochs):
        results.append(training.epoch_general_ptb(data, model, seq_len, loss_fn(), make() if fresh_optimizer else opt,
                                                  clip if use_clip else None, device, dtype))
    return results[0] if first_result else results[-1]


train_with_a_new_optimizer_each_epoch = _variant(_train, "train_with_a_new_optimizer_each_epoch", fresh_optimizer=True)
train_ignoring_weight_decay = _variant(_train, "train_ignoring_weight_decay", use_weight_decay=False)
train_ignoring_clip = _variant(_train, "train_ignoring_clip", use_clip=False)
train_returning_the_first_epoch = _variant(_train, "train_returning_the_first_epoch", first_result=True)


def evaluate_with_an_optimizer(model, data, seq_len=40, loss_fn=nn.SoftmaxLoss, device=None, dtype="float32", *,
                               progress=False):
    """Trains on the evaluation data."""
    np.random.seed(4)
    return training.epoch_general_ptb(data, model, seq_len, loss_fn(), ndl.optim.SGD(model.parameters(), lr=0.5),
                                      device=device, dtype=dtype)


def evaluate_returning_perplexity(model, data, seq_len=40, loss_fn=nn.SoftmaxLoss, device=None, dtype="float32", *,
                                  progress=False):
    np.random.seed(4)
    acc, loss = training.epoch_general_ptb(data, model, seq_len, loss_fn(), device=device, dtype=dtype)
    return acc, math.exp(loss)


WRONG = {
    "Sigmoid": [SigmoidWrongSign, SigmoidInNumpy],
    "RNNCell": [RNNCellBiasesFirst, RNNCellBoundOneOverH, RNNCellIgnoresState, RNNCellAlwaysTanh],
    "LSTMCell": [LSTMCellIFOG, LSTMCellSigmoidCandidate, LSTMCellNoTanhOnOutput, LSTMCellBiasesFirst],
    "RNN": [RNNTopLayerFirst, RNNWithoutCarry, RNNTopStateOnly, RNNCellsUnlisted],
    "LSTM": [LSTMSameStartForEveryLayer, LSTMWithoutCellState],
    "Embedding": [EmbeddingUniform, EmbeddingBatchFirst, EmbeddingNumpyLookup],
    "Dictionary": [DictionaryFromOne, DictionaryAlwaysNew],
    "Corpus.tokenize_lines": [tokenize_without_eos, tokenize_one_line_too_many, tokenize_with_a_new_dictionary,
                              tokenize_split_on_single_spaces],
    "batchify": [batchify_rows, batchify_as_tensor],
    "get_batch": [get_batch_unshifted_target, get_batch_unflattened_target, get_batch_too_long_at_the_end,
                  get_batch_column_major_target],
    "LanguageModel": [LanguageModelLinearFirst, LanguageModelAlwaysRNN, LanguageModelKeepsTimeAxis,
                      LanguageModelIgnoresState],
    "clip_grad_norm": [clip_each_parameter, clip_without_returning_the_norm, clip_always_to_max_norm, clip_in_place],
    "train_ptb": [train_with_a_new_optimizer_each_epoch, train_ignoring_weight_decay, train_ignoring_clip,
                  train_returning_the_first_epoch],
    "evaluate_ptb": [evaluate_with_an_optimizer, evaluate_returning_perplexity],
    "epoch_general_ptb": [epoch_without_detach, epoch_restarting_the_state, epoch_ignoring_clip,
                          epoch_mean_of_chunk_means, epoch_without_eval_mode],
}
class TestSequenceModelsChapter(ChapterContract):
    chapter, textbook, wrong = "sequence_models", "08_sequence_models", WRONG


def test_the_gate_order_mistake_is_named():
    course.exercise("sequence_models.LSTMCell")(LSTMCellIFOG)
    with pytest.raises(CheckFailed) as failure:
        course.check("sequence_models.LSTMCell")
    assert "i, f, g, o" in str(failure.value)


def test_the_missing_detach_is_named():
    course.exercise("sequence_models.epoch_general_ptb")(epoch_without_detach)
    with pytest.raises(CheckFailed) as failure:
        course.check("sequence_models.epoch_general_ptb")
    assert "detach" in str(failure.value)


# --- a learner's cell installed into needle runs inside needle's RNN and LSTM ---------------------------------------

def test_an_installed_cell_is_the_one_needles_layers_step_with():
    calls = []

    class CountingCell(RNNCellBase):
        def forward(self, X, h=None):
            calls.append(X.shape)
            if h is None:
                h = init.zeros(X.shape[0], self.hidden_size, dtype=X.dtype)
            return ops.tanh(X @ self.W_ih + h @ self.W_hh)

    course.exercise("sequence_models.RNNCell")(CountingCell)
    np.random.seed(0)
    rnn = nn.RNN(3, 4, num_layers=2)
    out, h_n = rnn(ndl.Tensor(np.random.randn(5, 2, 3)))
    assert len(calls) == 10 and out.shape == (5, 2, 4) and h_n.shape == (2, 2, 4)
