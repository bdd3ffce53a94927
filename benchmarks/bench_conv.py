"""Conv forward + backward at ResNet9's layer shapes (batch 128, 3x32x32 input) on cpu(), against the same
im2col algorithm in numpy and against PyTorch CPU (when installed), measured side by side in one run.

Each step computes out = conv(x, w) and backpropagates a fixed output gradient to w (and to x, except
for the first layer, whose input is data). The target is needle / PyTorch <= 2.
"""
from __future__ import annotations

import sys

import numpy as np

import needle as ndl

from .common import interleaved_best, print_table, torch_or_none

BATCH = 128
# (name, input H = W, C_in, C_out, kernel, stride, how many times ResNet9 runs this shape)
LAYERS = [
    ("ConvBN(3,16,7,4)", 32, 3, 16, 7, 4, 1),
    ("ConvBN(16,32,3,2)", 8, 16, 32, 3, 2, 1),
    ("ConvBN(32,32,3,1)", 4, 32, 32, 3, 1, 2),
    ("ConvBN(32,64,3,2)", 4, 32, 64, 3, 2, 1),
    ("ConvBN(64,128,3,2)", 2, 64, 128, 3, 2, 1),
    ("ConvBN(128,128,3,1)", 1, 128, 128, 3, 1, 2),
]


def _arrays(size, c_in, c_out, k, stride):
    rng = np.random.default_rng(0)
    pad = k // 2
    out = (size + 2 * pad - k) // stride + 1
    x = rng.standard_normal((BATCH, size, size, c_in), dtype=np.float32)
    w = rng.standard_normal((k, k, c_in, c_out), dtype=np.float32)
    g = rng.standard_normal((BATCH, out, out, c_out), dtype=np.float32)
    return x, w, g, pad


def needle_step(x, w, g, stride, pad, input_grad: bool):
    dev = ndl.cpu()
    X = ndl.Tensor(x, device=dev, requires_grad=input_grad)
    W = ndl.Tensor(w, device=dev)
    G = ndl.Tensor(g, device=dev, requires_grad=False)

    def step():
        ndl.conv(X, W, stride=stride, padding=pad).backward(G)

    return step


def numpy_step(x, w, g, stride, pad, input_grad: bool):
    """The same computation in numpy: im2col by as_strided + one matmul; backward by matmuls and col2im."""
    k, c_out = w.shape[0], w.shape[3]

    def step():
        xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
        n, h, wd, c = xp.shape
        oh, ow = (h - k) // stride + 1, (wd - k) // stride + 1
        sn, sh, sw, sc = xp.strides
        windows = np.lib.stride_tricks.as_strided(xp, (n, oh, ow, k, k, c), (sn, sh * stride, sw * stride, sh, sw, sc))
        cols = windows.reshape(n * oh * ow, k * k * c)
        w2 = w.reshape(k * k * c, c_out)
        _ = (cols @ w2).reshape(n, oh, ow, c_out)
        g2 = g.reshape(-1, c_out)
        _ = cols.T @ g2
        if input_grad:
            dcols = (g2 @ w2.T).reshape(n, oh, ow, k, k, c)
            dxp = np.zeros_like(xp)
            for a in range(k):
                for b in range(k):
                    dxp[:, a : a + stride * oh : stride, b : b + stride * ow : stride, :] += dcols[:, :, :, a, b, :]

    return step


def torch_step(torch, x, w, g, stride, pad, input_grad: bool):
    X = torch.tensor(x.transpose(0, 3, 1, 2).copy(), requires_grad=input_grad)
    W = torch.tensor(w.transpose(3, 2, 0, 1).copy(), requires_grad=True)
    G = torch.tensor(g.transpose(0, 3, 1, 2).copy())

    def step():
        torch.nn.functional.conv2d(X, W, stride=stride, padding=pad).backward(G)

    return step


def main(argv=None) -> None:
    torch = torch_or_none()
    rows, totals = [], np.zeros(3)
    for i, (name, size, c_in, c_out, k, stride, count) in enumerate(LAYERS):
        x, w, g, pad = _arrays(size, c_in, c_out, k, stride)
        input_grad = i > 0
        steps = [needle_step(x, w, g, stride, pad, input_grad), numpy_step(x, w, g, stride, pad, input_grad)]
        if torch:
            steps.append(torch_step(torch, x, w, g, stride, pad, input_grad))
        t_needle, t_numpy, t_torch = (interleaved_best(steps) + [float("nan")])[:3]
        totals += count * np.array([t_needle, t_numpy, t_torch])
        rows.append((f"{name} {size}x{size}", t_needle * 1e3, t_numpy * 1e3, t_torch * 1e3, t_needle / t_numpy, t_needle / t_torch))
        print(f"  {name}: needle {t_needle * 1e3:.2f} ms", file=sys.stderr, flush=True)
    t_needle, t_numpy, t_torch = totals
    rows.append(("all 8 convs of ResNet9", t_needle * 1e3, t_numpy * 1e3, t_torch * 1e3, t_needle / t_numpy, t_needle / t_torch))
    print_table(
        f"conv forward + backward on cpu(), batch {BATCH}, NHWC (ms; ratio = needle / other, target vs torch <= 2.0)",
        ["layer", "needle ms", "numpy ms", "torch ms", "vs numpy", "vs torch"],
        rows,
    )


if __name__ == "__main__":
    main()
