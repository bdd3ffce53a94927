"""The fused ops on cpu(): softmax cross-entropy (forward + backward) over 320 x 10,000 float32 logits,
BatchNorm1d / LayerNorm1d forward + backward, and one training step of a small LSTM language model
(the course notebook's size: vocabulary 10,000, embedding 64, hidden 128, one layer, batch 16, seq 20),
each against PyTorch CPU in the same run (needle alone when PyTorch is absent). Public API only, so the
same file measures an older needle too."""
from __future__ import annotations

import numpy as np

import needle as ndl
from needle import nn
from needle.apps.models import LanguageModel

from .common import best_time, print_table, torch_or_none

VOCAB, SEQ, BS, EMB, HIDDEN = 10_000, 20, 16, 64, 128


def needle_cases():
    dev = ndl.cpu()
    rng = np.random.default_rng(0)
    cases = []
    logits = ndl.Tensor(rng.standard_normal((SEQ * BS, VOCAB), dtype=np.float32), device=dev)
    labels = ndl.Tensor(rng.integers(0, VOCAB, SEQ * BS).astype(np.float32), device=dev, requires_grad=False)
    loss_fn = nn.SoftmaxLoss()

    def xent():
        loss_fn(logits, labels).backward()

    cases.append((f"softmax xent fwd+bwd ({SEQ * BS} x {VOCAB})", xent))
    x = ndl.Tensor(rng.standard_normal((256, 512), dtype=np.float32), device=dev)
    for name, mod in (("BatchNorm1d", nn.BatchNorm1d(512, device=dev)), ("LayerNorm1d", nn.LayerNorm1d(512, device=dev))):
        def norm(mod=mod):
            mod(x).sum().backward()

        cases.append((f"{name} fwd+bwd (256 x 512)", norm))
    ids = ndl.Tensor(rng.integers(0, VOCAB, (SEQ, BS)).astype(np.float32), device=dev)
    target = ndl.Tensor(rng.integers(0, VOCAB, SEQ * BS).astype(np.float32), device=dev)
    model = LanguageModel(EMB, VOCAB, HIDDEN, 1, seq_model="lstm", device=dev)
    opt = ndl.optim.SGD(model.parameters(), lr=4.0)

    def step():
        opt.reset_grad()
        loss_fn(model(ids)[0], target).backward()
        opt.step()

    cases.append((f"LSTM LM step (emb {EMB}, hidden {HIDDEN}, 1 layer)", step))
    return cases


def torch_cases(torch):
    tnn = torch.nn
    g = torch.Generator().manual_seed(0)
    cases = []
    logits = torch.randn(SEQ * BS, VOCAB, generator=g, requires_grad=True)
    labels = torch.randint(0, VOCAB, (SEQ * BS,), generator=g)
    loss_fn = tnn.CrossEntropyLoss()
    cases.append(("xent", lambda: loss_fn(logits, labels).backward()))
    x = torch.randn(256, 512, generator=g, requires_grad=True)
    for mod in (tnn.BatchNorm1d(512), tnn.LayerNorm(512)):
        cases.append(("norm", lambda mod=mod: mod(x).sum().backward()))

    class LM(tnn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = tnn.Embedding(VOCAB, EMB)
            self.lstm = tnn.LSTM(EMB, HIDDEN, 1)
            self.linear = tnn.Linear(HIDDEN, VOCAB)

        def forward(self, x):
            out, _ = self.lstm(self.embedding(x))
            return self.linear(out.reshape(-1, HIDDEN))

    model = LM()
    opt = torch.optim.SGD(model.parameters(), lr=4.0)
    ids = torch.randint(0, VOCAB, (SEQ, BS), generator=g)
    target = torch.randint(0, VOCAB, (SEQ * BS,), generator=g)

    def step():
        opt.zero_grad()
        loss_fn(model(ids), target).backward()
        opt.step()

    cases.append(("lstm", step))
    return cases


def main() -> None:
    torch = torch_or_none()
    ours = needle_cases()
    theirs = torch_cases(torch) if torch is not None else [None] * len(ours)
    rows = []
    for (name, fn), other in zip(ours, theirs):
        t = best_time(fn, repeat=7, min_time=0.2)
        tt = best_time(other[1], repeat=7, min_time=0.2) if other is not None else float("nan")
        rows.append([name, t * 1e3, tt * 1e3, t / tt if other is not None else float("nan")])
    print_table("fused ops and a small LSTM LM step, cpu() float32", ["case", "needle ms", "PyTorch ms", "needle / PyTorch"], rows)


if __name__ == "__main__":
    main()
