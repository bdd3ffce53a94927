"""The CPU backend built by each compiler (GCC, clang), against numpy, in one run: matmul GFLOP/s and
elementwise/reduction times as ratios to numpy.

`python -m benchmarks.compilers [BUILD_DIR ...]` (or `make bench-compilers`). With no arguments it
builds ndarray_backend_cpu with g++ and clang++ (whichever exist) under build/compilers/ (incremental),
then times each build in its own process, one after the other, each against numpy in that same process;
the builds take turns size by size so that a change in the machine's load hits them alike. Each matmul
ratio is to numpy's best time in its row (numpy's BLAS threads are hit hardest by other load).
Not part of `python -m benchmarks` (it compiles): run it on purpose.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIZES = (256, 512, 1024, 2048)

# run inside each build's process: one matmul size, or the op rows, as JSON on the last line of stdout
_CHILD = r"""
import json, sys
import numpy as np
import needle.backend_ndarray as nd
from benchmarks.common import best_time
from benchmarks import bench_ndarray
mod = nd.cpu().mod
what = sys.argv[1]
if what == "info":
    print(json.dumps({"build": getattr(mod, "__build__", "?"), "isa": mod.__gemm_isa__}))
elif what == "ops":
    print(json.dumps([[r[0], r[3]] for r in bench_ndarray.op_rows()]))
else:
    n = int(what)
    rng = np.random.default_rng(0)
    x, y = (rng.standard_normal((n, n)).astype(np.float32) for _ in range(2))
    a, b = nd.array(x, device=nd.cpu()), nd.array(y, device=nd.cpu())
    t_np = t_nd = float("inf")
    for _ in range(4):  # numpy and needle take turns, so that a burst of load hits both
        t_np = min(t_np, best_time(lambda: x @ y, repeat=2))
        t_nd = min(t_nd, best_time(lambda: a @ b, repeat=2))
    print(json.dumps([2 * n**3 / t_np / 1e9, 2 * n**3 / t_nd / 1e9]))
"""


def default_builds() -> list[Path]:
    sys.path.insert(0, str(ROOT))
    from tools import cpu_build

    out = []
    for name, cxx in (("gcc", "g++"), ("clang", "clang++")):
        if shutil.which(cxx):
            d = ROOT / "build" / "compilers" / name
            print(f"building with {cxx} in {d.relative_to(ROOT)} ...", flush=True)
            cpu_build.build(d, cxx)
            out.append(d)
    return out


def child(build: Path, what: str):
    cmd = [sys.executable, str(ROOT / "tools" / "cpu_build.py"), "run", str(build), "-c", _CHILD, what]
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"{build}: {res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    builds = [Path(a).resolve() for a in argv] or default_builds()
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"load average: {load}; cores: {len(os.sched_getaffinity(0))}")
    names = [b.name for b in builds]
    for b in builds:
        print(f"  {b.name}: {child(b, 'info')}")
    head = ["size", "numpy GF/s (best)"] + [f"{n} GF/s" for n in names] + [f"{n}/numpy" for n in names]
    print("matmul float32 (GFLOP/s: each the best of 2 processes x 4 rounds; ratio: to numpy's best in the row)")
    print("  " + " | ".join(head))
    for n in SIZES:
        first = [child(b, str(n)) for b in builds]
        second = [child(b, str(n)) for b in reversed(builds)][::-1]  # a second pass, in reverse order
        res = [max(p[1], q[1]) for p, q in zip(first, second)]  # each build's best of its two processes
        # numpy's BLAS threads suffer most from other load: compare with its best in this row (conservative)
        np_gf = max(r[0] for r in first + second)
        cells = [f"{n}^3", f"{np_gf:.1f}"] + [f"{r:.1f}" for r in res] + [f"{r / np_gf:.2f}" for r in res]
        print("  " + " | ".join(cells), flush=True)
    print("float32 ops (needle time / numpy time; below 1 is faster)")
    ops = [child(b, "ops") for b in builds]
    print("  " + " | ".join(["op"] + names))
    for i, row in enumerate(ops[0]):
        print("  " + " | ".join([row[0]] + [f"{o[i][1]:.2f}" for o in ops]), flush=True)


if __name__ == "__main__":
    main()
