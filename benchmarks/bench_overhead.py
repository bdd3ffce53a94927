"""Per-op overhead: the time of ops so small that the arithmetic is nothing, so what is measured is the
framework (Python dispatch, autograd bookkeeping, allocation, the kernel call). needle cpu() against
PyTorch CPU (with autograd) and numpy (without), in one run. Target: the autograd add within 2x PyTorch."""
from __future__ import annotations

import numpy as np

import needle as ndl
import needle.backend_ndarray as nd

from .common import interleaved_best, print_table, torch_or_none

N = 16


def cases(torch) -> list[tuple[str, object, object]]:
    """(name, needle fn, reference fn or None)."""
    rng = np.random.default_rng(0)
    xa, xb = rng.standard_normal(N, dtype=np.float32), rng.standard_normal(N, dtype=np.float32)
    a, b = ndl.Tensor(xa), ndl.Tensor(xb)
    g = ndl.Tensor(np.ones(N, dtype=np.float32), requires_grad=False)
    na, nb = nd.array(xa), nd.array(xb)
    out = [("NDArray add (numpy: a + b)", lambda: na + nb, lambda: xa + xb),
           ("Tensor add, no grad", lambda: a.detach() + b.detach(), None)]
    ta = tb = tg = None
    if torch is not None:
        ta, tb = torch.tensor(xa, requires_grad=True), torch.tensor(xb, requires_grad=True)
        tg = torch.ones(N)

    def ours():
        (a + b).backward(g)

    def theirs():
        (ta + tb).backward(tg)

    out.append(("add fwd+bwd, autograd", ours, theirs if torch is not None else None))

    def ours_chain():
        ((a * b + a) * 2.0).sum().backward()

    def theirs_chain():
        ((ta * tb + ta) * 2.0).sum().backward()

    out.append(("(a*b + a)*2 sum fwd+bwd", ours_chain, theirs_chain if torch is not None else None))
    return out


def main() -> None:
    torch = torch_or_none()
    rows = []
    for name, ours, theirs in cases(torch):
        if theirs is None:
            t = interleaved_best([ours], rounds=7, min_time=0.05)[0]
            rows.append([name, t * 1e6, float("nan"), float("nan")])
        else:
            t, r = interleaved_best([ours, theirs], rounds=7, min_time=0.05)
            rows.append([name, t * 1e6, r * 1e6, t / r])
    print_table(f"per-op overhead on {N}-element float32 tensors (us; reference: PyTorch, numpy for NDArray; "
                "target autograd add <= 2.0)", ["case", "needle us", "reference us", "ratio"], rows)


if __name__ == "__main__":
    main()
