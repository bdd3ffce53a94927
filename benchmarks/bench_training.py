"""One training step (forward, backward, optimizer step) of each course model on cpu(), against the same
architecture in PyTorch CPU measured in the same run (needle alone when PyTorch is absent).

A third column runs the same step on cpu_numpy() (numpy's kernels behind the same NDArray), which
separates kernel time from framework overhead.

Models: MLP-ResNet (MNIST shapes, batch 100), ResNet9 (batch 128, 3x32x32), the LSTM language model
(batch 16, seq 20, vocab 10,000, embedding/hidden 200, 2 layers) and the Transformer language model
(batch 16, seq 20, vocab 10,000, embedding 128, hidden 256, 2 layers, 8 heads of 32)."""
from __future__ import annotations

import sys

import numpy as np

import needle as ndl
from needle import nn
from needle.apps.mlp_resnet import MLPResNet
from needle.apps.models import LanguageModel, ResNet9

from .common import best_time, print_table, torch_or_none

VOCAB, SEQ, BS = 10_000, 20, 16
ROUNDS = 5
LSTM_DIMS = dict(embedding=200, hidden=200, layers=2)
TF_DIMS = dict(embedding=128, hidden=256, layers=2, heads=8, dim_head=32)


def _needle_step(model, opt, X, y, forward=None):
    loss_fn = nn.SoftmaxLoss()
    forward = forward or model

    def step():
        opt.reset_grad()
        loss = loss_fn(forward(X), y)
        loss.backward()
        opt.step()

    return step


def needle_cases(dev=None):
    """(name, step function) for each model on `dev` (default cpu()), with fixed random inputs. MLPResNet
    has no device argument (as in the course), so it is built only on the default device."""
    rng = np.random.default_rng(0)
    dev = dev or ndl.cpu()
    cases = []
    if dev == ndl.default_device():
        mlp = MLPResNet(784, 100)
        X = ndl.Tensor(rng.random((100, 784), dtype=np.float32), device=dev)
        y = ndl.Tensor(rng.integers(0, 10, 100).astype(np.float32), device=dev)
        cases.append(("MLP-ResNet (bs 100)", _needle_step(mlp, ndl.optim.Adam(mlp.parameters(), lr=1e-3), X, y)))
    r9 = ResNet9(device=dev)
    X = ndl.Tensor(rng.random((128, 3, 32, 32), dtype=np.float32), device=dev)
    y = ndl.Tensor(rng.integers(0, 10, 128).astype(np.float32), device=dev)
    cases.append(("ResNet9 (bs 128)", _needle_step(r9, ndl.optim.Adam(r9.parameters(), lr=1e-3), X, y)))
    ids = ndl.Tensor(rng.integers(0, VOCAB, (SEQ, BS)).astype(np.float32), device=dev)
    target = ndl.Tensor(rng.integers(0, VOCAB, SEQ * BS).astype(np.float32), device=dev)
    d = LSTM_DIMS
    lstm = LanguageModel(d["embedding"], VOCAB, d["hidden"], d["layers"], seq_model="lstm", device=dev)
    cases.append(("LSTM LM (bs 16, seq 20)", _needle_step(lstm, ndl.optim.SGD(lstm.parameters(), lr=4.0), ids, target,
                                                          lambda x: lstm(x)[0])))
    d = TF_DIMS
    tf = LanguageModel(d["embedding"], VOCAB, d["hidden"], d["layers"], seq_model="transformer", seq_len=SEQ,
                       device=dev)
    cases.append(("Transformer LM (bs 16, seq 20)", _needle_step(tf, ndl.optim.Adam(tf.parameters(), lr=1e-3), ids,
                                                                 target, lambda x: tf(x)[0])))
    return cases


def torch_cases(torch):
    """The same architectures in PyTorch, as (name, step function)."""
    tnn = torch.nn
    g = torch.Generator().manual_seed(0)

    def step_of(model, opt, X, y, forward=None):
        loss_fn = tnn.CrossEntropyLoss()
        forward = forward or model

        def step():
            opt.zero_grad()
            loss_fn(forward(X), y).backward()
            opt.step()

        return step

    def block(dim, hidden):
        inner = tnn.Sequential(tnn.Linear(dim, hidden), tnn.BatchNorm1d(hidden), tnn.ReLU(), tnn.Dropout(0.1),
                               tnn.Linear(hidden, dim), tnn.BatchNorm1d(dim))
        return inner

    class Residual(tnn.Module):
        def __init__(self, fn):
            super().__init__()
            self.fn = fn

        def forward(self, x):
            return self.fn(x) + x

    mlp = tnn.Sequential(tnn.Linear(784, 100), tnn.ReLU(),
                         *[tnn.Sequential(Residual(block(100, 50)), tnn.ReLU()) for _ in range(3)], tnn.Linear(100, 10))
    cases = [("MLP-ResNet (bs 100)", step_of(mlp, torch.optim.Adam(mlp.parameters(), lr=1e-3),
                                             torch.rand(100, 784, generator=g), torch.randint(0, 10, (100,), generator=g)))]

    def cbn(a, b, k, s):
        return tnn.Sequential(tnn.Conv2d(a, b, k, stride=s, padding=k // 2), tnn.BatchNorm2d(b), tnn.ReLU())

    r9 = tnn.Sequential(cbn(3, 16, 7, 4), cbn(16, 32, 3, 2), Residual(tnn.Sequential(cbn(32, 32, 3, 1), cbn(32, 32, 3, 1))),
                        cbn(32, 64, 3, 2), cbn(64, 128, 3, 2),
                        Residual(tnn.Sequential(cbn(128, 128, 3, 1), cbn(128, 128, 3, 1))), tnn.Flatten(),
                        tnn.Linear(128, 128), tnn.ReLU(), tnn.Linear(128, 10))
    cases.append(("ResNet9 (bs 128)", step_of(r9, torch.optim.Adam(r9.parameters(), lr=1e-3),
                                              torch.rand(128, 3, 32, 32, generator=g),
                                              torch.randint(0, 10, (128,), generator=g))))
    ids = torch.randint(0, VOCAB, (SEQ, BS), generator=g)
    target = torch.randint(0, VOCAB, (SEQ * BS,), generator=g)

    class LM(tnn.Module):
        def __init__(self, seq_model, emb, out):
            super().__init__()
            self.embedding, self.seq_model, self.linear = tnn.Embedding(VOCAB, emb), seq_model, tnn.Linear(out, VOCAB)

        def forward(self, x):
            out = self.seq_model(self.embedding(x))
            out = out[0] if isinstance(out, tuple) else out
            return self.linear(out.reshape(-1, out.shape[-1]))

    d = LSTM_DIMS
    lstm = LM(tnn.LSTM(d["embedding"], d["hidden"], d["layers"]), d["embedding"], d["hidden"])
    cases.append(("LSTM LM (bs 16, seq 20)", step_of(lstm, torch.optim.SGD(lstm.parameters(), lr=4.0), ids, target)))

    d = TF_DIMS
    inner = d["heads"] * d["dim_head"]

    class Layer(tnn.Module):
        """Our pre-norm layer: LayerNorm'd q/k/v, bias-free projections, causal attention, ReLU MLP."""

        def __init__(self):
            super().__init__()
            e = d["embedding"]
            self.nq, self.nk, self.nv = tnn.LayerNorm(e), tnn.LayerNorm(e), tnn.LayerNorm(e)
            self.q, self.k, self.v = (tnn.Linear(e, inner, bias=False) for _ in range(3))
            self.out = tnn.Linear(inner, e, bias=False)
            self.norm, self.l1, self.l2 = tnn.LayerNorm(e), tnn.Linear(e, d["hidden"]), tnn.Linear(d["hidden"], e)

        def forward(self, x):
            b, t, _ = x.shape

            def heads(z):
                return z.reshape(b, t, d["heads"], d["dim_head"]).transpose(1, 2)

            a = tnn.functional.scaled_dot_product_attention(heads(self.q(self.nq(x))), heads(self.k(self.nk(x))),
                                                            heads(self.v(self.nv(x))), is_causal=True)
            x = x + self.out(a.transpose(1, 2).reshape(b, t, inner))
            return x + self.l2(torch.relu(self.l1(self.norm(x))))

    class TF(tnn.Module):
        def __init__(self):
            super().__init__()
            self.pos = tnn.Embedding(SEQ, d["embedding"])
            self.layers = tnn.Sequential(*[Layer() for _ in range(d["layers"])])

        def forward(self, x):
            x = x.transpose(0, 1)
            x = x + self.pos(torch.arange(x.shape[1]))
            return self.layers(x).transpose(0, 1)

    tf = LM(TF(), d["embedding"], d["embedding"])
    cases.append(("Transformer LM (bs 16, seq 20)", step_of(tf, torch.optim.Adam(tf.parameters(), lr=1e-3), ids,
                                                            target)))
    return cases


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
        steps = [step, numpy_kernels.get(name), ref.get(name)]
        best = [float("inf") if f else float("nan") for f in steps]
        for _ in range(ROUNDS):
            best = [min(b, best_time(f, repeat=1, min_time=0.2)) if f else b for b, f in zip(best, steps)]
        t_needle, t_np, t_torch = best
        rows.append((name, t_needle * 1e3, t_np * 1e3, t_torch * 1e3, t_needle / t_torch))
        print(f"  {name}: needle {t_needle * 1e3:.1f} ms, torch {t_torch * 1e3:.1f} ms", file=sys.stderr, flush=True)
    print_table("training step (ms; ratio = needle cpu() / PyTorch CPU, target <= 2.0)",
                ["model", "needle cpu()", "needle cpu_numpy()", "torch", "ratio"], rows)


if __name__ == "__main__":
    main()
