"""Planted student bugs: each classic mistake, written into the textbook's own exercise cell as a learner would,
is caught by its check with a message that helps; valid alternative solutions pass; and one bug fails one check.

A case runs the chapter's import cell (and the helper cells), then the modified exercise cell, then course.check.
"""
import re
from pathlib import Path

import nbformat
import pytest

from needle import course
from needle.course.errors import CheckFailed

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
CHAPTERS = {"welcome": "00_welcome", "ml_refresher": "01_ml_refresher", "autodiff": "02_autodiff",
            "nn_library": "03_nn_library", "transformer": "09_transformer", "generative": "11_generative"}
_BEGIN, _END = "### BEGIN SOLUTION", "### END SOLUTION"


def _cells(chapter: str) -> list:
    return nbformat.read(NOTEBOOKS / f"{CHAPTERS[chapter]}.ipynb", as_version=4).cells


def exercise_cell(exercise_id: str) -> str:
    for cell in _cells(exercise_id.split(".")[0]):
        if "exercise" in cell.metadata.get("tags", []) and f'course.exercise("{exercise_id}")' in cell.source:
            return cell.source
    raise KeyError(exercise_id)


def setup_namespace(chapter: str) -> dict:
    """The chapter's first code cell (imports) and its helper cells (those that define functions only)."""
    namespace: dict = {}
    code = [c for c in _cells(chapter) if c.cell_type == "code"]
    first = next(i for i, c in enumerate(code) if "from needle import course" in c.source)
    for cell in code[:first + 1]:
        exec(cell.source, namespace)
    for cell in code[first + 1:]:
        tags = cell.metadata.get("tags", [])
        if not {"exercise", "check"} & set(tags) and "def reduced_axes" in cell.source:
            exec(cell.source, namespace)
    if chapter == "autodiff":  # sum_to_shape lives in the BroadcastTo.gradient exercise cell
        exec(exercise_cell("autodiff.BroadcastTo.gradient").replace("@course.exercise(", "(lambda i: (lambda f: f))("),
             namespace)
    return namespace


def run_exercise(exercise_id: str, source: str, namespace: dict | None = None) -> dict:
    namespace = setup_namespace(exercise_id.split(".")[0]) if namespace is None else namespace
    exec(source.replace(_BEGIN, "").replace(_END, ""), namespace)
    return namespace


def plant(exercise_id: str, old: str, new: str) -> str:
    source = exercise_cell(exercise_id)
    assert old in source, f"{exercise_id}: {old!r} not in the solution"
    return source.replace(old, new, 1)


# (exercise id, text in the textbook's solution, the learner's version, what the check's message must say)
BUGS = [
    ("welcome.sigmoid", "    z = np.exp(-np.abs(x))\n    return np.where(x >= 0, 1 / (1 + z), z / (1 + z))",
     "    return 1 / (1 + np.exp(-x))", r"overflow"),
    ("welcome.sigmoid", "1 / (1 + z), z / (1 + z)", "1 / (1 + z), 1 / (1 + z)", r"max error .* at index"),
    ("ml_refresher.parse_mnist", ".astype(np.float32) / np.float32(255)", ".astype(np.float32)", r"pixels / 255"),
    ("ml_refresher.softmax_loss", "float(np.mean(", "float(np.sum(", r"max error"),
    ("ml_refresher.softmax_regression_epoch", "theta -= lr / len(yb) * (Xb.T @ Z)", "theta -= lr * (Xb.T @ Z)",
     r"max error"),
    ("ml_refresher.nn_epoch", "G1 = (Z1 > 0) * (G2 @ W2.T)", "G1 = G2 @ W2.T", r"max error"),
    ("autodiff.Transpose.compute", "return array_api.swapaxes(a, i, j)",
     "return array_api.permute(a, tuple(reversed(range(a.ndim))))", r"Transpose"),
    ("autodiff.EWiseDiv.gradient", "-out_grad * a / (b * b)", "out_grad * a / (b * b)",
     r"EWiseDiv\(\)\.gradient for input 1"),
    ("autodiff.Log.gradient", "return out_grad / node.inputs[0]", "return out_grad / node.inputs[0].detach()",
     r"second\s+derivative"),
    ("autodiff.Exp.gradient", "return out_grad * node", "return out_grad * Tensor(node.numpy(), dtype=node.dtype)",
     r"second\s+derivative"),
    ("autodiff.PowerScalar.gradient", "a ** (self.scalar - 1) * self.scalar", "a ** (self.scalar - 1)",
     r"PowerScalar\(3,\)\.gradient"),
    ("autodiff.BroadcastTo.gradient", "    axes = tuple(range(added)) + tuple(stretched)\n",
     "    axes = tuple(range(added))\n", r"BroadcastTo"),
    ("autodiff.MatMul.gradient", "return sum_to_shape(grad_a, a.shape), sum_to_shape(grad_b, b.shape)",
     "return grad_a, grad_b", r"MatMul"),
    ("autodiff.find_topo_sort", "        for parent in node.inputs:\n            visit(parent)\n        order.append(node)",
     "        order.append(node)\n        for parent in node.inputs:\n            visit(parent)",
     r"comes before its input"),
    ("autodiff.compute_gradient_of_variables", "node.grad = sum_node_list(contributions.pop(node))",
     "node.grad = sum_node_list(contributions.pop(node)).detach()", r"differentiated again"),
    ("autodiff.compute_gradient_of_variables", "node.grad = sum_node_list(contributions.pop(node))",
     "node.grad = contributions.pop(node)[-1]", r"grad \(float64, vs central differences\)"),
    ("autodiff.softmax_loss", "return ndl.summation(log_sum_exp - true_logit) / Z.shape[0]",
     "return ndl.summation(log_sum_exp - true_logit)", r"softmax_loss"),
    ("autodiff.nn_epoch", "W1 = Tensor(W1.numpy() - lr * W1.grad.numpy(), dtype=W1.dtype)",
     "W1 = W1 - lr * W1.grad", r"still a node of the graph"),
    ("nn_library.Linear",
     "        self.weight = nn.Parameter(init.kaiming_uniform(in_features, out_features, device=device, dtype=dtype))\n"
     "        self.bias = None\n        if bias:\n            b = init.kaiming_uniform(out_features, 1, device=device, dtype=dtype)\n",
     "        self.bias = None\n        if bias:\n            b = init.kaiming_uniform(out_features, 1, device=device, dtype=dtype)\n"
     "        self.weight = nn.Parameter(init.kaiming_uniform(in_features, out_features, device=device, dtype=dtype))\n"
     "        if bias:\n",
     r"course golden value"),
    ("nn_library.LogSumExp.compute", "shifted = Z - array_api.broadcast_to(m, Z.shape)", "shifted = Z; m = m * 0",
     r"LogSumExp"),
    ("nn_library.Dropout", "return x * mask / (1 - self.p)", "return x * mask", r"Dropout"),
    ("nn_library.SGD", "g = p.grad.data + self.weight_decay * p.data", "g = p.grad + self.weight_decay * p",
     r"grows with every step"),
    ("nn_library.Adam", "m_hat = self.m[i] / (1 - b1 ** self.t)", "m_hat = self.m[i]", r"Adam"),
    ("nn_library.Adam", "g = p.grad.data + self.weight_decay * p.data", "g = p.grad + self.weight_decay * p",
     r"grows with every step"),
    ("nn_library.epoch", "total_loss += float(loss.numpy()) * len(labels)", "total_loss += loss * len(labels)",
     r"plain numbers|Tensor"),
    ("generative.discriminator_loss", "fake_term = softplus(fake_logits)", "fake_term = softplus(-fake_logits)",
     r"max error"),
    ("generative.gan_step", "fake = generator(z).detach()", "fake = generator(z)", r"detach"),
    ("generative.noise_schedule", "np.cumprod(alphas)", "np.cumsum(alphas)", r"alpha_bars"),
    ("generative.diffusion_loss", "return (diff * diff).sum() / int(np.prod(diff.shape))",
     "return (diff * diff).sum() / diff.shape[0]", r"mean over every number"),
    ("generative.p_sample_step", "    if t > 0:\n        mean = mean + z", "    if t >= 0:\n        mean = mean + z",
     r"no noise is added"),
    ("nn_library.LogSoftmax.gradient", "return out_grad - ops.exp(node) * row_sums", "return out_grad - ops.exp(node)",
     r"LogSoftmax"),
    ("transformer.create_causal_mask", "j - i + 1)", "1)", r"future"),
    ("transformer.MultiHeadAttention.forward", "/ np.sqrt(dim)", "/ dim", r"q k\^T / sqrt\(D\)"),
    ("transformer.MultiHeadAttention.forward", "probs = self.dropout(self.softmax(logits))",
     "probs = self.softmax(logits)", r"apply dropout where the course does"),
    ("transformer.split_heads", "return ops.transpose(x.reshape((b, t, num_head, dim_head)), (1, 2))",
     "return x.reshape((b, num_head, t, dim_head))", r"head i holds features"),
    ("transformer.AttentionLayer.forward", "merged = ops.transpose(result, (1, 2)).reshape((b, q_len, h * d))",
     "merged = result.reshape((b, q_len, h * d))", r"forward\(q\) \(k and v default to q\): max error"),
    ("transformer.TransformerLayer", "return x + self.dropout(self.linear2(hidden))",
     "return self.dropout(self.linear2(hidden))", r"\(eval mode\): max error"),
    ("transformer.TransformerLayer",
     "        self.linear1 = nn.Linear(q_features, hidden_size, device=device, dtype=dtype)\n"
     "        self.linear2 = nn.Linear(hidden_size, q_features, device=device, dtype=dtype)\n",
     "        self.linear2 = nn.Linear(hidden_size, q_features, device=device, dtype=dtype)\n"
     "        self.linear1 = nn.Linear(q_features, hidden_size, device=device, dtype=dtype)\n",
     r"in the course's order"),
    ("transformer.Transformer", "np.broadcast_to(np.arange(t), (b, t))", "np.broadcast_to(np.arange(b)[:, None], (b, t))",
     r"\(T, B, D\)\): max error"),
]


@pytest.mark.parametrize("exercise_id, old, new, message", BUGS,
                         ids=[f"{b[0]}-{k}" for k, b in enumerate(BUGS)])
def test_planted_bug_is_caught_with_a_helpful_message(exercise_id, old, new, message):
    run_exercise(exercise_id, plant(exercise_id, old, new))
    assert course.installed_ids() == [exercise_id]
    with pytest.raises(CheckFailed) as info:
        course.check(exercise_id)
    text = str(info.value)
    assert text.startswith(f"{exercise_id}: ") and re.search(message, text), text


def test_the_textbook_solutions_pass_when_run_like_this(capsys):
    for exercise_id in sorted({b[0] for b in BUGS}):
        run_exercise(exercise_id, exercise_cell(exercise_id))
        course.check(exercise_id)
        assert f"✓ {exercise_id}" in capsys.readouterr().out


def test_kahns_algorithm_is_a_valid_topological_sort(capsys):
    run_exercise("autodiff.find_topo_sort", '''
@course.exercise("autodiff.find_topo_sort")
def find_topo_sort(node_list):
    nodes, stack = {}, list(node_list)
    while stack:
        node = stack.pop()
        if id(node) not in nodes:
            nodes[id(node)] = node
            stack.extend(node.inputs)
    waiting = {k: len({id(p) for p in n.inputs}) for k, n in nodes.items()}
    users = {k: [] for k in nodes}
    for k, n in nodes.items():
        for p in {id(p): p for p in n.inputs}.values():
            users[id(p)].append(n)
    ready = [n for k, n in nodes.items() if waiting[k] == 0]
    order = []
    while ready:
        node = ready.pop()
        order.append(node)
        for user in users[id(node)]:
            waiting[id(user)] -= 1
            if waiting[id(user)] == 0:
                ready.append(user)
    return order
''')
    course.check("autodiff.find_topo_sort")
    assert "✓ autodiff.find_topo_sort" in capsys.readouterr().out


def test_a_linear_written_to_the_courses_2d_spec_passes(capsys):
    run_exercise("nn_library.Linear", plant("nn_library.Linear", '''        lead = X.shape[:-1]
        out = X.reshape((int(np.prod(lead)), self.in_features)) @ self.weight
        if self.bias is not None:
            out = out + self.bias.broadcast_to(out.shape)
        return out.reshape((*lead, self.out_features))''', '''        out = X @ self.weight
        if self.bias is not None:
            out = out + self.bias.broadcast_to(out.shape)
        return out'''))
    course.check("nn_library.Linear")
    assert "✓ nn_library.Linear" in capsys.readouterr().out


def test_attention_written_with_a_plain_batched_matmul_passes(capsys):
    run_exercise("transformer.MultiHeadAttention.forward", plant(
        "transformer.MultiHeadAttention.forward", "logits = self.matmul(q, k) / np.sqrt(dim)",
        "logits = (q @ ops.transpose(k)) / np.sqrt(dim)"))
    course.check("transformer.MultiHeadAttention.forward")
    assert "✓ transformer.MultiHeadAttention.forward" in capsys.readouterr().out


def test_a_wrong_split_heads_fails_only_its_own_check(capsys):
    """The AttentionLayer calls split_heads, but its check runs it with needle's: one bug, one failure."""
    bug = next(b for b in BUGS if b[0] == "transformer.split_heads")
    namespace = run_exercise("transformer.split_heads", plant(*bug[:3]))
    run_exercise("transformer.AttentionLayer.forward", exercise_cell("transformer.AttentionLayer.forward"), namespace)
    course.check("transformer.AttentionLayer.forward")
    assert "✓ transformer.AttentionLayer.forward" in capsys.readouterr().out
    with pytest.raises(CheckFailed):
        course.check("transformer.split_heads")


def test_a_wrong_linear_fails_only_its_own_check(capsys):
    """One bug, one failure: the bias drawn before the weight fails Linear alone, not the modules built on it."""
    bug = next(b for b in BUGS if b[0] == "nn_library.Linear")
    namespace = run_exercise("nn_library.Linear", plant(*bug[:3]))
    for other in ("nn_library.Sequential", "nn_library.Residual", "nn_library.ResidualBlock", "nn_library.MLPResNet"):
        run_exercise(other, exercise_cell(other), namespace)
        course.check(other)
        assert f"✓ {other}" in capsys.readouterr().out
    with pytest.raises(CheckFailed):
        course.check("nn_library.Linear")


def test_a_dependency_used_on_purpose_is_named_when_it_fails():
    namespace = setup_namespace("autodiff")
    broken = plant("autodiff.BroadcastTo.gradient", "    axes = tuple(range(added)) + tuple(stretched)\n",
                   "    axes = tuple(range(added))\n")
    run_exercise("autodiff.BroadcastTo.gradient", broken, namespace)
    with pytest.raises(CheckFailed):
        course.check("autodiff.BroadcastTo.gradient")
    run_exercise("autodiff.MatMul.gradient", exercise_cell("autodiff.MatMul.gradient"), namespace)
    with pytest.raises(CheckFailed, match="this uses your autodiff.BroadcastTo.gradient, which fails its own check"):
        course.check("autodiff.MatMul.gradient")
