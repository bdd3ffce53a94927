"""One training step (forward, backward, optimizer step) of each course model on cpu(), against the same
architecture in PyTorch CPU measured in the same run (needle alone when PyTorch is absent).

A third column runs the same step on cpu_numpy() (numpy's kernels behind the same NDArray), which
separates kernel time from framework overhead.

Models: MLP-ResNet (MNIST shapes, batch 100), ResNet9 (batch 128, 3x32x32), the LSTM language model
(batch 16, seq 20, vocab 10,000, embedding/hidden 200, 2 layers) and the Transformer language model
(batch 16, seq 20, vocab 10,000, embedding 128, hidden 256, 2 layers, 8 heads of 32). The builders take
their sizes as arguments: bench_sweep.py runs them over a grid of sizes. Inputs and labels do not require
gradients, in either framework (as the DataLoader makes them), so both do the same work."""
from __future__ import annotations

import sys

import numpy as np

import needle as ndl
from needle import nn
from needle.apps.mlp_resnet import MLPResNet
from needle.apps.models import LanguageModel, ResNet9

from .common import interleaved_best, print_table, torch_or_none

VOCAB, SEQ, BS = 10_000, 20, 16
HEADS, DIM_HEAD = 8, 32  # LanguageModel's Transformer: nn.Transformer's defaults
LSTM_DIMS = dict(embedding=200, hidden=200, layers=2)
TF_DIMS = dict(embedding=128, hidden=256, layers=2)


def _needle_step(model, opt, X, y, forward=None):
    loss_fn = nn.SoftmaxLoss()
    forward = forward or model

    def step():
        opt.reset_grad()
        loss = loss_fn(forward(X), y)
        loss.backward()
        opt.step()

    return step


def needle_mlp(batch: int):
    """MLP-ResNet(784, 100) with Adam on MNIST-shaped data. MLPResNet has no device argument (as in the
    course), so it runs on the default device."""
    rng = np.random.default_rng(0)
    mlp = MLPResNet(784, 100)
    X = ndl.Tensor(rng.random((batch, 784), dtype=np.float32), requires_grad=False)
    y = ndl.Tensor(rng.integers(0, 10, batch).astype(np.float32), requires_grad=False)
    return _needle_step(mlp, ndl.optim.Adam(mlp.parameters(), lr=1e-3), X, y)


def needle_resnet9(batch: int, dev=None):
    rng = np.random.default_rng(0)
    r9 = ResNet9(device=dev)
    X = ndl.Tensor(rng.random((batch, 3, 32, 32), dtype=np.float32), device=dev, requires_grad=False)
    y = ndl.Tensor(rng.integers(0, 10, batch).astype(np.float32), device=dev, requires_grad=False)
    return _needle_step(r9, ndl.optim.Adam(r9.parameters(), lr=1e-3), X, y)


def needle_lm(kind: str, embedding: int, hidden: int, layers: int, dev=None):
    """LanguageModel ('lstm' with SGD, as the course trains it, or 'transformer' with Adam)."""
    rng = np.random.default_rng(0)
    ids = ndl.Tensor(rng.integers(0, VOCAB, (SEQ, BS)).astype(np.float32), device=dev, requires_grad=False)
    target = ndl.Tensor(rng.integers(0, VOCAB, SEQ * BS).astype(np.float32), device=dev, requires_grad=False)
    lm = LanguageModel(embedding, VOCAB, hidden, layers, seq_model=kind, seq_len=SEQ, device=dev)
    opt = ndl.optim.SGD(lm.parameters(), lr=4.0) if kind == "lstm" else ndl.optim.Adam(lm.parameters(), lr=1e-3)
    return _needle_step(lm, opt, ids, target, lambda x: lm(x)[0])


def needle_cases(dev=None):
    """(name, step function) for each model on `dev` (default cpu()), with fixed random inputs; MLP-ResNet
    only when `dev` is the default device."""
    dev = dev or ndl.cpu()
    cases = [("MLP-ResNet (bs 100)", needle_mlp(100))] if dev == ndl.default_device() else []
    cases.append(("ResNet9 (bs 128)", needle_resnet9(128, dev)))
    cases.append(("LSTM LM (bs 16, seq 20)", needle_lm("lstm", **LSTM_DIMS, dev=dev)))
    cases.append(("Transformer LM (bs 16, seq 20)", needle_lm("transformer", **TF_DIMS, dev=dev)))
    return cases


# ---- the same architectures in PyTorch ----


def _torch_step(torch, model, opt, X, y):
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        loss_fn(model(X), y).backward()
        opt.step()

    return step


def _residual(torch, fn):
    class Residual(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fn = fn

        def forward(self, x):
            return self.fn(x) + x

    return Residual()


def torch_mlp(torch, batch: int):
    tnn = torch.nn
    g = torch.Generator().manual_seed(0)

    def block(dim, hidden):
        return tnn.Sequential(tnn.Linear(dim, hidden), tnn.BatchNorm1d(hidden), tnn.ReLU(), tnn.Dropout(0.1),
                              tnn.Linear(hidden, dim), tnn.BatchNorm1d(dim))

    mlp = tnn.Sequential(tnn.Linear(784, 100), tnn.ReLU(),
                         *[tnn.Sequential(_residual(torch, block(100, 50)), tnn.ReLU()) for _ in range(3)],
                         tnn.Linear(100, 10))
    return _torch_step(torch, mlp, torch.optim.Adam(mlp.parameters(), lr=1e-3), torch.rand(batch, 784, generator=g),
                       torch.randint(0, 10, (batch,), generator=g))


def torch_resnet9(torch, batch: int):
    tnn = torch.nn
    g = torch.Generator().manual_seed(0)

    def cbn(a, b, k, s):
        return tnn.Sequential(tnn.Conv2d(a, b, k, stride=s, padding=k // 2), tnn.BatchNorm2d(b), tnn.ReLU())

    r9 = tnn.Sequential(cbn(3, 16, 7, 4), cbn(16, 32, 3, 2),
                        _residual(torch, tnn.Sequential(cbn(32, 32, 3, 1), cbn(32, 32, 3, 1))),
                        cbn(32, 64, 3, 2), cbn(64, 128, 3, 2),
                        _residual(torch, tnn.Sequential(cbn(128, 128, 3, 1), cbn(128, 128, 3, 1))), tnn.Flatten(),
                        tnn.Linear(128, 128), tnn.ReLU(), tnn.Linear(128, 10))
    return _torch_step(torch, r9, torch.optim.Adam(r9.parameters(), lr=1e-3),
                       torch.rand(batch, 3, 32, 32, generator=g), torch.randint(0, 10, (batch,), generator=g))


def _torch_transformer(torch, embedding: int, hidden: int, layers: int):
    tnn = torch.nn
    inner = HEADS * DIM_HEAD

    class Layer(tnn.Module):
        """Our pre-norm layer: LayerNorm'd q/k/v, bias-free projections, causal attention, ReLU MLP."""

        def __init__(self):
            super().__init__()
            e = embedding
            self.nq, self.nk, self.nv = tnn.LayerNorm(e), tnn.LayerNorm(e), tnn.LayerNorm(e)
            self.q, self.k, self.v = (tnn.Linear(e, inner, bias=False) for _ in range(3))
            self.out = tnn.Linear(inner, e, bias=False)
            self.norm, self.l1, self.l2 = tnn.LayerNorm(e), tnn.Linear(e, hidden), tnn.Linear(hidden, e)

        def forward(self, x):
            b, t, _ = x.shape

            def heads(z):
                return z.reshape(b, t, HEADS, DIM_HEAD).transpose(1, 2)

            a = tnn.functional.scaled_dot_product_attention(heads(self.q(self.nq(x))), heads(self.k(self.nk(x))),
                                                            heads(self.v(self.nv(x))), is_causal=True)
            x = x + self.out(a.transpose(1, 2).reshape(b, t, inner))
            return x + self.l2(torch.relu(self.l1(self.norm(x))))

    class TF(tnn.Module):
        def __init__(self):
            super().__init__()
            self.pos = tnn.Embedding(SEQ, embedding)
            self.layers = tnn.Sequential(*[Layer() for _ in range(layers)])

        def forward(self, x):
            x = x.transpose(0, 1)
            x = x + self.pos(torch.arange(x.shape[1]))
            return self.layers(x).transpose(0, 1)

    return TF()


def torch_lm(torch, kind: str, embedding: int, hidden: int, layers: int):
    tnn = torch.nn
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, VOCAB, (SEQ, BS), generator=g)
    target = torch.randint(0, VOCAB, (SEQ * BS,), generator=g)
    if kind == "lstm":
        seq_model, out = tnn.LSTM(embedding, hidden, layers), hidden
    else:
        seq_model, out = _torch_transformer(torch, embedding, hidden, layers), embedding

    class LM(tnn.Module):
        def __init__(self):
            super().__init__()
            self.embedding, self.seq_model = tnn.Embedding(VOCAB, embedding), seq_model
            self.linear = tnn.Linear(out, VOCAB)

        def forward(self, x):
            h = self.seq_model(self.embedding(x))
            h = h[0] if isinstance(h, tuple) else h
            return self.linear(h.reshape(-1, h.shape[-1]))

    lm = LM()
    opt = torch.optim.SGD(lm.parameters(), lr=4.0) if kind == "lstm" else torch.optim.Adam(lm.parameters(), lr=1e-3)
    return _torch_step(torch, lm, opt, ids, target)


def torch_cases(torch):
    """The same models as needle_cases, in PyTorch, as (name, step function)."""
    return [("MLP-ResNet (bs 100)", torch_mlp(torch, 100)), ("ResNet9 (bs 128)", torch_resnet9(torch, 128)),
            ("LSTM LM (bs 16, seq 20)", torch_lm(torch, "lstm", **LSTM_DIMS)),
            ("Transformer LM (bs 16, seq 20)", torch_lm(torch, "transformer", **TF_DIMS))]


def main(argv=None) -> None:
    torch = torch_or_none()
    ours = needle_cases()
    # the same steps with numpy's kernels (the cpu_numpy() device): what is left is framework overhead
    numpy_kernels = dict(needle_cases(ndl.cpu_numpy()))
    ref = dict(torch_cases(torch)) if torch is not None else {}
    rows = []
    for name, step in ours:
        # rounds alternate between the contenders and each keeps its best, so a burst of load from other
        # processes on the shared machine does not land on one side only
        steps = [f for f in (step, numpy_kernels.get(name), ref.get(name)) if f is not None]
        best = iter(interleaved_best(steps, rounds=5, min_time=0.2))
        t_needle = next(best)
        t_np = next(best) if name in numpy_kernels else float("nan")
        t_torch = next(best) if name in ref else float("nan")
        rows.append((name, t_needle * 1e3, t_np * 1e3, t_torch * 1e3, t_needle / t_torch))
        print(f"  {name}: needle {t_needle * 1e3:.1f} ms, torch {t_torch * 1e3:.1f} ms", file=sys.stderr, flush=True)
    print_table("training step (ms; ratio = needle cpu() / PyTorch CPU, target <= 1.5)",
                ["model", "needle cpu()", "needle cpu_numpy()", "torch", "ratio"], rows)


if __name__ == "__main__":
    main()
